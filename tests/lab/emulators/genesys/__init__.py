"""Genesys Cloud emulator for the lab (test-only). See ``server.py``."""
