"""Ribbon SBC Edge (1000/2000/SWe Lite) emulator: /rest with cookie sessions, XML envelope, certificates,
on-box CSR, SIP-TLS. Test-only."""
