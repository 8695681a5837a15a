"""Stand-in SBCs for the Genesys part (test-only): SIP-TLS responders until the SBC emulators exist.

    cd tests/lab && python -m emulators.genesys.responders --listen PORT:CERT_FILE:KEY_FILE:NAME [...]

Each listener serves the certificate chain and key currently in its files (read on every connection, so a test can
rotate a responder's certificate by rewriting them) and answers SIP OPTIONS (``emulators.common.siptls``).
"""

from __future__ import annotations

import argparse
import threading

from emulators.common.siptls import SipTlsListener


def _material(cert_file: str, key_file: str):
    def current():
        try:
            with open(cert_file, encoding="ascii") as fh:
                chain = fh.read()
            with open(key_file, encoding="ascii") as fh:
                key = fh.read()
        except OSError:
            return None  # no bound certificate: the listener closes before the handshake
        return chain, key
    return current


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--listen", action="append", required=True, help="PORT:CERT_FILE:KEY_FILE:NAME")
    args = parser.parse_args(argv)
    for spec in args.listen:
        port, cert_file, key_file, name = spec.split(":", 3)
        SipTlsListener("127.0.0.1", int(port), _material(cert_file, key_file), name=name).start()
        print(f"responder {name} on 127.0.0.1:{port} (SIP over TLS)", flush=True)
    threading.Event().wait()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
