"""Ribbon SBC Core (5400/7000/SWe) emulator: ConfD-style REST, per-node SFTP, HA pair, SIP-TLS. Test-only."""
