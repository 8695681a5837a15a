"""Lab part ``genesys``: the Genesys Cloud emulator, its emulated Edges, and stand-in SBC responders.

What it starts:

- ``genesys-responders``: SIP-TLS responders (``emulators.genesys.responders``) that stand in for SBCs until the
  SBC emulators exist. Their leaf certificates are signed by a lab "SBC issuing CA" (itself signed by a lab "SBC
  root CA") and are served without the intermediate, so the Edge needs both CAs in its trust store.
- ``genesys``: the emulator (``emulators.genesys.server``) on HTTPS, certificate from ``lab.ca``. Its org has one
  MANAGED CA created here, which signs the emulated Edges' certificates. The seeded trunks point at the responders;
  they are disconnected until the SBC CA chain is added as REMOTE certificate authorities.
- The emulated Edges resolve trunk proxy names through the ``bind`` part's primary server (which serves the lab zone
  ``lab.test`` with the SBC emulators' SIP-TLS names), never through /etc/hosts or the machine's resolver, and check
  the SBC's certificate against the name. Each Edge presents its certificate (clientAuth, signed by the MANAGED CA)
  and keeps one SIP-TLS connection per proxy open between health rounds.

Keys of ``components.genesys`` in lab.json:

``summary``                 one line for humans
``api_url``                 ``https://127.0.0.1:P``: API and ``/oauth/token`` on the same base (trust ``tls.ca_file``)
``login_url``               the same base (the SDK derives it from ``api_url``)
``client_id``, ``client_secret``   OAuth client-credentials of the emulated org
``org``                     ``{"id", "name"}``
``control_url``             ``api_url + "/_control"``: the TEST-ONLY fault/inspection API (docs/genesys.md)
``managed_ca_pem_file``     PEM of the org's MANAGED CA (what SBCs must trust)
``poll_interval``           seconds between the emulated Edges' health rounds
``token_ttl``               lifetime of a minted token, seconds
``sbc_ca``                  ``{"root_pem_file", "intermediate_pem_file", "chain_pem_file"}``: the CAs that sign the
                            responders (``chain_pem_file`` = intermediate then root)
``responders``              ``[{"name", "address" ("127.0.0.1:port"), "port", "cert_file"}]``
``edges``                   ``[{"id", "name", "client_cert_file", "client_key_file"}]``: the certificate (and its key)
                            the Edge presents to SBCs (signed by the MANAGED CA, extended key usage clientAuth), for
                            tests that act as an Edge. The Edges start ONLINE, ACTIVE, active, with 0 conversations
                            (config keys ``online_status``, ``status_code``, ``state``, ``conversation_count`` per
                            Edge change that); ``POST control_url/edges/<id or name>`` changes them (TEST-ONLY:
                            offline, a non-ACTIVE status code, a conversation count, a schedule), see docs/genesys.md
``dns``                     ``{"host", "port"}``: the DNS server the Edges resolve proxy names with
``trunks``                  ``[{"id", "name", "edge_id", "trunk_base_id", "proxies"}]`` (trunk instances)
``trunk_bases``             ``[{"id", "name", "proxies"}]``
"""

from __future__ import annotations

import datetime
import ipaddress
import json
import os
import secrets
import ssl
import sys
import urllib.request
import uuid
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from byoclab.core import LOOPBACK, REPO, free_port

LAB_DIR = REPO / "tests" / "lab"
RESPONDERS = 3
POLL_INTERVAL = 1.0
TOKEN_TTL = 3600


def _name(cn: str, org: str = "BYOC lab") -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, org), x509.NameAttribute(NameOID.COMMON_NAME, cn)])


def _ca(cn: str, issuer=None, path_length=None, days: int = 30):
    key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.datetime.now(datetime.timezone.utc)
    subject = _name(cn)
    signer_cert, signer_key = issuer if issuer else (None, key)
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject).issuer_name(signer_cert.subject if signer_cert else subject)
        .public_key(key.public_key()).serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5)).not_valid_after(now + datetime.timedelta(days=days))
        .add_extension(x509.BasicConstraints(ca=True, path_length=path_length), critical=True)
        .add_extension(x509.KeyUsage(False, False, False, False, False, True, True, False, False), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(signer_key, hashes.SHA256())
    )
    return cert, key


def _leaf(names: list[str], issuer, client: bool = False):
    ca_cert, ca_key = issuer
    key = ec.generate_private_key(ec.SECP256R1())
    sans: list[x509.GeneralName] = []
    for n in names:
        try:
            sans.append(x509.IPAddress(ipaddress.ip_address(n)))
        except ValueError:
            sans.append(x509.DNSName(n))
    now = datetime.datetime.now(datetime.timezone.utc)
    usages = [ExtendedKeyUsageOID.SERVER_AUTH] + ([ExtendedKeyUsageOID.CLIENT_AUTH] if client else [])
    cert = (
        x509.CertificateBuilder()
        .subject_name(_name(names[0])).issuer_name(ca_cert.subject).public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5)).not_valid_after(now + datetime.timedelta(days=7))
        .add_extension(x509.SubjectAlternativeName(sans), critical=False)
        .add_extension(x509.ExtendedKeyUsage(usages), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .sign(ca_key, hashes.SHA256())
    )
    return cert, key


def _pem(cert) -> str:
    return cert.public_bytes(serialization.Encoding.PEM).decode("ascii")


def _write(path: Path, text: str, private: bool = False) -> str:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600 if private else 0o644)
    with os.fdopen(fd, "w", encoding="ascii") as fh:
        fh.write(text)
    return str(path)


def _key_pem(key) -> str:
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption()).decode("ascii")


class Genesys:
    name = "genesys"
    requires: list[str] = ["bind"]  # the Edges resolve SIP server names through the lab's DNS

    def start(self, lab) -> dict:
        work = lab.workdir("genesys")
        pki = work / "pki"
        pki.mkdir(exist_ok=True)

        # The org's MANAGED CA and the Edges' certificates it signs.
        managed = _ca("Genesys Cloud lab org MANAGED CA")
        managed_file = _write(pki / "managed-ca.pem", _pem(managed[0]))
        edges = []
        for i in (1, 2):
            cert, key = _leaf([f"edge-{i}.byoc-lab.test", LOOPBACK], managed, client=True)
            edges.append({"id": str(uuid.uuid4()), "name": f"Lab Edge {i}", "address": LOOPBACK,
                          "cert_file": _write(pki / f"edge-{i}.pem", _pem(cert)),
                          "key_file": _write(pki / f"edge-{i}.key", _key_pem(key), private=True)})

        # The SBC side: root -> issuing CA -> one leaf per responder (served without the intermediate).
        sbc_root = _ca("BYOC lab SBC root CA")
        sbc_int = _ca("BYOC lab SBC issuing CA", issuer=sbc_root, path_length=0)
        sbc_ca = {
            "root_pem_file": _write(pki / "sbc-root-ca.pem", _pem(sbc_root[0])),
            "intermediate_pem_file": _write(pki / "sbc-issuing-ca.pem", _pem(sbc_int[0])),
            "chain_pem_file": _write(pki / "sbc-ca-chain.pem", _pem(sbc_int[0]) + _pem(sbc_root[0])),
        }
        responders, argv = [], [sys.executable, "-m", "emulators.genesys.responders"]
        for i in range(1, RESPONDERS + 1):
            port = free_port()
            cert, key = _leaf([LOOPBACK, f"sbc-{i}.byoc-lab.test"], sbc_int)
            cert_file = _write(pki / f"sbc-{i}.pem", _pem(cert))
            key_file = _write(pki / f"sbc-{i}.key", _key_pem(key), private=True)
            responders.append({"name": f"sbc-{i}", "address": f"{LOOPBACK}:{port}", "port": port,
                               "cert_file": cert_file, "key_file": key_file})
            argv += ["--listen", f"{port}:{cert_file}:{key_file}:sbc-{i}"]
        env = {"PYTHONPATH": str(LAB_DIR)}
        proc = lab.spawn("genesys-responders", argv, env=env, cwd=LAB_DIR)
        lab.wait_ready("genesys-responders", proc, lambda: all(_tcp(r["port"]) for r in responders))

        # Trunk bases: one per responder; the first two on Edge 1, the third on both Edges.
        bases, trunks = [], []
        for i, resp in enumerate(responders, 1):
            edge_ids = [edges[0]["id"]] if i < RESPONDERS else [e["id"] for e in edges]
            base = {"id": str(uuid.uuid4()), "name": f"Lab SBC {i}", "proxies": [resp["address"]],
                    "protocol": "tls", "edges": edge_ids, "trunks": {eid: str(uuid.uuid4()) for eid in edge_ids}}
            bases.append(base)
            for eid in edge_ids:
                trunks.append({"id": base["trunks"][eid], "name": base["name"], "edge_id": eid,
                               "trunk_base_id": base["id"], "proxies": base["proxies"]})

        port = free_port()
        cert_file, key_file = lab.ca.issue("genesys-api", [LOOPBACK, "localhost"])
        client_id, client_secret = str(uuid.uuid4()), secrets.token_urlsafe(24)
        org = {"id": str(uuid.uuid4()), "name": "BYOC lab org"}
        config = {
            "port": port, "cert_file": str(cert_file), "key_file": str(key_file), "org": org,
            "clients": {client_id: client_secret}, "token_ttl": TOKEN_TTL, "rate_limit_per_minute": 300,
            "poll_interval": POLL_INTERVAL,
            "managed_ca": {"id": str(uuid.uuid4()), "name": "Genesys Cloud managed CA", "pem_file": managed_file},
            "site": {"id": str(uuid.uuid4()), "name": "Lab Site"},
            "edges": edges, "trunk_bases": bases + _fleet_bases(lab, edges),
            "dns": dict(lab.components["bind"]["primary"]),
        }
        config_file = _write(work / "config.json", json.dumps(config, indent=2), private=True)
        proc = lab.spawn("genesys", [sys.executable, "-m", "emulators.genesys.server", "--config", config_file],
                         env=env, cwd=LAB_DIR)
        api_url = f"https://{LOOPBACK}:{port}"
        ctx = ssl.create_default_context(cafile=str(lab.ca.cert_file))

        def ready() -> bool:
            with urllib.request.urlopen(f"{api_url}/_control/health", context=ctx, timeout=2) as resp:
                return resp.status == 200 and json.loads(resp.read())["rounds_completed"] >= 1

        lab.wait_ready("genesys", proc, ready)
        return {
            "summary": f"Genesys Cloud emulator on {api_url}: {len(edges)} Edges, {len(trunks)} trunks to "
                       f"{len(responders)} SIP-TLS responders, health every {POLL_INTERVAL:g}s",
            "api_url": api_url, "login_url": api_url,
            "client_id": client_id, "client_secret": client_secret, "org": org,
            "control_url": f"{api_url}/_control",
            "managed_ca_pem_file": managed_file,
            "poll_interval": POLL_INTERVAL, "token_ttl": TOKEN_TTL,
            "sbc_ca": sbc_ca,
            "responders": [{k: r[k] for k in ("name", "address", "port", "cert_file")} for r in responders],
            "edges": [{"id": e["id"], "name": e["name"], "client_cert_file": e["cert_file"],
                       "client_key_file": e["key_file"]} for e in edges],
            "dns": dict(lab.components["bind"]["primary"]),
            "trunks": trunks,
            "trunk_bases": [{"id": b["id"], "name": b["name"], "proxies": b["proxies"]} for b in bases],
        }


def _fleet_bases(lab, edges: list[dict]) -> list[dict]:
    """Lab fleet mode (components/fleet.py, started before this part): one trunk base per fleet device, on both
    Edges, from the fleet's ``trunk_bases_file`` (``[{"id", "name", "proxies"}]``); none otherwise."""
    path = (lab.components.get("fleet") or {}).get("trunk_bases_file")
    if not path:
        return []
    with open(path, encoding="utf-8") as fh:
        specs = json.load(fh)
    return [dict(spec, protocol="tls", edges=[e["id"] for e in edges],
                 trunks={e["id"]: str(uuid.uuid4()) for e in edges}) for spec in specs]


def _tcp(port: int) -> bool:
    from byoclab.core import tcp_open
    return tcp_open(port)


def components() -> list:
    return [Genesys()]
