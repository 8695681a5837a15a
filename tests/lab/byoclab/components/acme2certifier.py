"""Lab part ``acme2certifier``: a second, non-Let's-Encrypt ACME server standing in for an internal enterprise CA.

acme2certifier 0.46.3 (PyPI, installed in the venv) with its openssl CA handler, in front of a small CA that
this part makes at start (cryptography, a self-signed issuing CA), plain HTTP on 127.0.0.1, DNS-01 validated
against the ``bind`` part's primary. It is served by ``tests/lab/a2c/serve.py`` (see that file for how the
configuration path and the DNS port are handled without touching /var/www, /opt or port 53).

Facts: acme-and-dns.md §6.1 (configuration keys, standalone set-up, DNS port), §7.5 (verified issuance).
"""

from __future__ import annotations

import datetime
import json
import os
import sys
import urllib.error
import urllib.request
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from ..core import LOOPBACK, REPO, LabError, free_port

SERVE = REPO / "tests" / "lab" / "a2c" / "serve.py"

# acme-and-dns.md §7.5: the verified run issued 10-day certificates; short enough to look like an internal CA
# with short-lived certificates, long enough for any test run.
CERT_VALIDITY_DAYS = 10


def _version() -> str:
    try:
        from importlib.metadata import version

        return version("acme2certifier")
    except Exception:  # noqa: BLE001 - metadata missing only in a broken venv; the log still says it
        return "unknown"


def make_ca(work: Path) -> tuple[Path, Path]:
    """A self-signed issuing CA for the openssl handler (acme-and-dns.md §6.1: "an openssl CA made with
    `openssl req -x509 ... basicConstraints=critical,CA:TRUE`"; made here with cryptography instead)."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([
        x509.NameAttribute(NameOID.ORGANIZATION_NAME, "byoc lab"),
        x509.NameAttribute(NameOID.COMMON_NAME, "byoc lab acme2certifier issuing CA"),
    ])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name).issuer_name(name).public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=365))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(x509.KeyUsage(digital_signature=True, content_commitment=False, key_encipherment=False,
                                     data_encipherment=False, key_agreement=False, key_cert_sign=True,
                                     crl_sign=True, encipher_only=False, decipher_only=False), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    cert_file, key_file = work / "ca-cert.pem", work / "ca-key.pem"
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    fd = os.open(key_file, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                   serialization.NoEncryption()))
    return cert_file, key_file


def write_config(work: Path, port: int, dns_host: str, ca_cert: Path, ca_key: Path) -> Path:
    """acme_srv.cfg for the lab (acme-and-dns.md §6.1 key sections); every path inside the lab directory."""
    certs = work / "certs"
    certs.mkdir(exist_ok=True)
    lines = [
        "[DEFAULT]",
        "debug: False",
        # URLs in the directory and in Location headers are built from server_name when it is set; pin it so
        # that they always carry the lab's address and port.
        f"server_name: {LOOPBACK}:{port}",
        # acme-and-dns.md §6.1: dns_server_list takes addresses and is queried on port 53; serve.py points the
        # process's resolvers at the BIND primary's port (--dns-port). DEFAULT is the section 0.46 reads
        # (the [Challenge] spelling is deprecated there).
        f"dns_server_list: {json.dumps([dns_host])}",
        "",
        "[Nonce]",
        "nonce_check_disable: False",
        "signature_check_disable: False",
        "",
        "[CAhandler]",
        "handler_module: acme2certifier.cahandlers.openssl_ca_handler",
        f"issuing_ca_key: {ca_key}",
        f"issuing_ca_cert: {ca_cert}",
        # Required by the handler's config check; it need not exist until something is revoked.
        f"issuing_ca_crl: {work / 'ca-crl.pem'}",
        f"cert_save_path: {certs}",
        f"cert_validity_days: {CERT_VALIDITY_DAYS}",
        # Clients such as certbot's acme library send CSRs without a subject. With an empty subject RFC 5280
        # §4.2.1.6 wants the SAN extension critical, which the openssl handler does not do, so strict
        # verifiers (cryptography's PolicyBuilder) reject the leaf. cn_enforce copies the first SAN into the CN,
        # which makes the leaf conformant, as an enterprise CA template would. (No ca_cert_chain_list: the
        # handler already appends the issuing CA to the chain; listing it again duplicates it.)
        "cn_enforce: True",
        "",
        "[DBhandler]",
        "handler: wsgi",
        f"dbfile: {work / 'acme_srv.db'}",
        "",
        "[Certificate]",
        "revocation_reason_check_disable: False",
        "",
        "[Challenge]",
        # Real validation, never the "disable" switches (acme-and-dns.md §6.1).
        "challenge_validation_disable: False",
        "challenge_validation_timeout: 10",
        "dns_validation_pause_timer: 0",
        "",
        "[Order]",
        "tnauthlist_support: False",
        "",
        "[Renewalinfo]",
        # acme-and-dns.md §6.1: the ARI window is about this percentage of the lifetime (default 85).
        "renewalthreshold_pctg: 85",
        "",
    ]
    config = work / "acme_srv.cfg"
    config.write_text("\n".join(lines))
    os.chmod(config, 0o600)
    return config


def http_get_json(url: str, timeout: float = 3.0) -> dict:
    req = urllib.request.Request(url, headers={"User-Agent": "byoc-lab/1 (acme2certifier readiness probe)"})
    with urllib.request.urlopen(req, timeout=timeout) as resp:  # plain http on loopback, by design (§6.1)
        return json.loads(resp.read())


class Acme2certifier:
    name = "acme2certifier"
    requires = ("bind",)

    def start(self, lab) -> dict:
        bind = lab.components.get("bind")
        if not bind or "primary" not in bind:
            raise LabError(f"{self.name}: the bind part is not running (lab.components['bind']['primary'] missing)")
        dns_host, dns_port = bind["primary"]["host"], int(bind["primary"]["port"])
        work = lab.workdir(self.name)
        ca_cert, ca_key = make_ca(work)
        port = free_port()
        config = write_config(work, port, dns_host, ca_cert, ca_key)
        proc = lab.spawn(self.name, [sys.executable, str(SERVE), "--config", str(config), "--port", str(port),
                                     "--dns-port", str(dns_port)], cwd=work)
        directory_url = f"http://{LOOPBACK}:{port}/directory"
        seen: dict = {}

        def ready() -> bool:
            try:
                seen["dir"] = http_get_json(directory_url)
            except (OSError, urllib.error.URLError, ValueError):
                return False
            return "newOrder" in seen["dir"]

        # Importing acme2certifier and creating its SQLite schema takes a few seconds on a 2-core host.
        lab.wait_ready(self.name, proc, ready, timeout=60)
        directory = seen["dir"]
        meta = directory.get("meta") or {}
        profiles = meta.get("profiles") or {}
        version = _version()
        return {
            "summary": f"acme2certifier {version} (openssl CA handler) {directory_url}, DNS-01 via {dns_host}:{dns_port}",
            "version": version,
            "directory": directory_url,
            "roots": [str(ca_cert)],
            "ari": "renewalInfo" in directory,
            "profiles": profiles if isinstance(profiles, dict) else {},
            "eab": None,
            "cert_validity_days": CERT_VALIDITY_DAYS,
            "dns_server": f"{dns_host}:{dns_port}",
            "config": str(config),
        }


def components() -> list:
    return [Acme2certifier()]
