"""Lab part ``ribbon_core``: one Ribbon SBC Core HA pair (emulator in tests/lab/emulators/ribbon_core).

lab.json ``components.ribbon_core``:

- ``api_url``: ConfD REST base (``https://127.0.0.1:<port>``; the pair's logical management address, always the
  active node); ``ca_file``: the CA that signed the management TLS certificate (the lab CA);
- ``credentials``: ``{"username", "password"}`` for HTTP Basic on the REST API;
- ``sftp``: ``{"username", "password", "directory": "/opt/sonus/external"}``, the same on both nodes;
- ``nodes``: one entry per node, ``{"name", "host", "port", "host_key", "root"}``: ``port`` is the node's SFTP
  port, ``host_key`` its SSH host key (``"<type> <base64>"`` as in known_hosts), ``root`` the lab directory that
  stands for the node's /opt/sonus/external (for tests to read back files);
- ``sip_tls``: ``{"host", "port", "name", "server_name"}``: the SIP-TLS listener of the pair (serves the
  certificate of the TLS profile ``tls_profile`` on the active node); ``name`` (= ``server_name``) is its DNS name
  in the lab zone (served by the ``bind`` part, A 127.0.0.1); ``tls_profile``: ``defaultTlsProfile``;
- ``mutual_auth``: true: the profile starts with ``authClient true`` (sbc-apis.md B3), so a SIP-TLS client must
  present a certificate that chains to a ``remote`` PKI object installed on the pair (none at start: every client
  is refused until, for example, the Genesys MANAGED CA is installed). Tests that only look at the served
  certificate can PATCH ``authClient false`` through the REST API;
- ``initial``: ``{"name", "fingerprint", "passphrase"}``: the certificate object bound at start, issued by the lab
  CA; ``control_url``: the test-only fault API (``/_control``; never used by the product; ``sessions/drop`` closes
  the established SIP-TLS sessions).

Every start begins clean: the nodes' /opt/sonus/external directories of an earlier run in the same lab directory
are removed first (issue 9 §5).
"""

from __future__ import annotations

import hashlib
import json
import os
import secrets
import shutil
import sys

from cryptography import x509
from cryptography.hazmat.primitives import serialization

from byoclab.core import LOOPBACK, REPO, free_port, tcp_open

from .bind import SIP_NAMES

SERVER_NAME = SIP_NAMES["ribbon_core"]
MUTUAL_AUTH = True  # issue 9 §2: in the lab, mutual authentication is on for the Ribbon Core pair


class RibbonCore:
    name = "ribbon_core"
    requires: list[str] = []

    def start(self, lab) -> dict:
        work = lab.workdir("ribbon_core")
        api_port, sip_port = free_port(), free_port()
        mgmt_cert, mgmt_key = lab.ca.issue("ribbon-core-mgmt", [LOOPBACK, "localhost"])
        sip_cert, sip_key = lab.ca.issue("ribbon-core-sip", [SERVER_NAME, LOOPBACK], expired=lab.expired_sip)
        nodes = []
        for name in ("a", "b"):
            node_dir = work / f"node-{name}"
            if node_dir.exists():
                shutil.rmtree(node_dir)  # a new lab never sees an earlier run's SFTP files or host key
            root = node_dir / "external"
            root.mkdir(parents=True)
            nodes.append({"name": name, "root": str(root), "sftp_port": free_port(),
                          "host_key_file": str(node_dir / "hostkey")})
        cfg = {
            "host": LOOPBACK, "api_port": api_port, "sip_port": sip_port,
            "tls_cert": str(mgmt_cert), "tls_key": str(mgmt_key),
            "username": "admin", "password": secrets.token_urlsafe(12),
            "sftp_username": "admin", "sftp_password": secrets.token_urlsafe(12),
            "nodes": nodes, "sip_profile": "defaultTlsProfile", "auth_client": MUTUAL_AUTH,
            "seed": {"name": "lab-initial", "cert_file": str(sip_cert), "key_file": str(sip_key),
                     "passphrase": secrets.token_urlsafe(12)},
        }
        cfg_file = work / "config.json"
        fd = os.open(cfg_file, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as fh:
            json.dump(cfg, fh)
        proc = lab.spawn("ribbon_core", [sys.executable, "-m", "emulators.ribbon_core", "--config", str(cfg_file)],
                         cwd=REPO / "tests" / "lab")
        # The emulator binds the SFTP and SIP-TLS sockets before its HTTPS API, so the API answering means all are
        # up (probing the SFTP ports here would only log "Error reading SSH protocol banner").
        lab.wait_ready("ribbon_core", proc, lambda: all(
            os.path.exists(n["host_key_file"] + ".pub") for n in nodes) and tcp_open(api_port))
        initial = x509.load_pem_x509_certificate(sip_cert.read_bytes())
        base = f"https://{LOOPBACK}:{api_port}"
        return {
            "summary": f"Ribbon SBC Core HA pair: REST {base}, SFTP {nodes[0]['sftp_port']}/{nodes[1]['sftp_port']},"
                       f" SIP-TLS {sip_port}",
            "api_url": base,
            "control_url": f"{base}/_control",
            "ca_file": str(lab.ca.cert_file),
            "credentials": {"username": cfg["username"], "password": cfg["password"]},
            "sftp": {"username": cfg["sftp_username"], "password": cfg["sftp_password"],
                     "directory": "/opt/sonus/external"},
            "nodes": [{"name": n["name"], "host": LOOPBACK, "port": n["sftp_port"], "root": n["root"],
                       "host_key": open(n["host_key_file"] + ".pub").read().strip()} for n in nodes],
            "sip_tls": {"host": LOOPBACK, "port": sip_port, "name": SERVER_NAME, "server_name": SERVER_NAME},
            "mutual_auth": MUTUAL_AUTH,
            "tls_profile": cfg["sip_profile"],
            "initial": {"name": "lab-initial", "passphrase": cfg["seed"]["passphrase"],
                        "fingerprint": hashlib.sha256(initial.public_bytes(serialization.Encoding.DER)).hexdigest()},
        }


def components() -> list:
    return [RibbonCore()]
