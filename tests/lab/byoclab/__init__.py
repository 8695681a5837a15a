"""The byoc.certificates local lab: real ACME and DNS servers (and, later, vendor emulators) on loopback."""
