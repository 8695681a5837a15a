"""Lab part ``ribbon_edge``: one Ribbon SBC Edge unit (emulator in tests/lab/emulators/ribbon_edge).

lab.json ``components.ribbon_edge``:

- ``api_url``: ``https://127.0.0.1:<port>`` (the unit's /rest API); ``ca_file``: the CA of its management TLS
  certificate (the lab CA);
- ``credentials``: ``{"username", "password"}`` for ``POST /rest/login``;
- ``sip_tls``: ``{"host", "port", "name", "server_name"}``: the SIP-TLS listener (serves certificate 1 with the
  intermediates held in the CA slots); ``name`` (= ``server_name``) is its DNS name in the lab zone (``bind``
  part, A 127.0.0.1);
- ``mutual_auth``: false at start; TLS profile 1's ``MutualAuth`` (``POST /rest/tlsprofile/1``, REST name
  UNCONFIRMED, see the emulator) turns it on: then clients must present a certificate that chains to a trusted CA
  slot;
- ``initial``: ``{"fingerprint", "ca_fingerprint"}``: certificate 1 and CA slot 2 at start (issued by the lab CA);
- ``idle_seconds``: the session idle timeout (600, sbc-apis.md C1); ``require_csrf``: whether X-CSRF-Token is
  enforced (true);
- ``control_url``: the test-only fault API (``/_control``: state, session expiry, application faults,
  ``sessions/drop``).
"""

from __future__ import annotations

import hashlib
import json
import os
import secrets
import sys
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import serialization

from byoclab.core import LOOPBACK, REPO, free_port, tcp_open

from .bind import SIP_NAMES

SERVER_NAME = SIP_NAMES["ribbon_edge"]
MUTUAL_AUTH = False


class RibbonEdge:
    name = "ribbon_edge"
    requires: list[str] = []

    def start(self, lab) -> dict:
        work = lab.workdir("ribbon_edge")
        api_port, sip_port = free_port(), free_port()
        mgmt_cert, mgmt_key = lab.ca.issue("ribbon-edge-mgmt", [LOOPBACK, "localhost"])
        sip_cert, sip_key = lab.ca.issue("ribbon-edge-sip", [SERVER_NAME, LOOPBACK], expired=lab.expired_sip)
        cfg = {
            "host": LOOPBACK, "api_port": api_port, "sip_port": sip_port,
            "tls_cert": str(mgmt_cert), "tls_key": str(mgmt_key),
            "username": "restuser", "password": secrets.token_urlsafe(12),
            "idle_seconds": 600, "require_csrf": True, "model": "SWe Lite", "mutual_auth": MUTUAL_AUTH,
            "seed": {"cert_file": str(sip_cert), "key_file": str(sip_key), "ca_file": str(lab.ca.cert_file)},
        }
        cfg_file = work / "config.json"
        fd = os.open(cfg_file, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as fh:
            json.dump(cfg, fh)
        proc = lab.spawn("ribbon_edge", [sys.executable, "-m", "emulators.ribbon_edge", "--config", str(cfg_file)],
                         cwd=REPO / "tests" / "lab")
        lab.wait_ready("ribbon_edge", proc, lambda: tcp_open(api_port) and tcp_open(sip_port))
        base = f"https://{LOOPBACK}:{api_port}"
        return {
            "summary": f"Ribbon SBC Edge unit: REST {base}/rest, SIP-TLS {sip_port}",
            "api_url": base,
            "control_url": f"{base}/_control",
            "ca_file": str(lab.ca.cert_file),
            "credentials": {"username": cfg["username"], "password": cfg["password"]},
            "sip_tls": {"host": LOOPBACK, "port": sip_port, "name": SERVER_NAME, "server_name": SERVER_NAME},
            "mutual_auth": MUTUAL_AUTH,
            "initial": {"fingerprint": sha(sip_cert), "ca_fingerprint": sha(Path(lab.ca.cert_file))},
            "idle_seconds": cfg["idle_seconds"], "require_csrf": cfg["require_csrf"],
        }


def sha(path) -> str:
    cert = x509.load_pem_x509_certificate(path.read_bytes())
    return hashlib.sha256(cert.public_bytes(serialization.Encoding.DER)).hexdigest()


def components() -> list:
    return [RibbonEdge()]
