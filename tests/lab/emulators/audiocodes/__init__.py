"""AudioCodes Mediant SBC emulator (REST ``/api/v1`` + SIP-TLS). Run with ``python -m emulators.audiocodes``."""
