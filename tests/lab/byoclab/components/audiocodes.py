"""Lab part ``audiocodes``: two emulated AudioCodes Mediant SBCs -- an HA pair (``mediant-ha``, one management
address that follows the active unit) and a standalone unit (``mediant-sa``).

Each device is one process (``python -m emulators.audiocodes``) with a REST API on HTTPS and a SIP-TLS listener.
The management certificate is **self-signed**, as on a factory device (sbc-apis.md A4: context 0 "default" ships
with a self-signed certificate ``CN=ACL_<serial>``, and OAMP uses context 0). The lab generates it, so that it can
export it: ``ca_file`` (top level) is a bundle of both devices' self-signed certificates; each device also has its
own ``ca_file``. Users (sbc-apis.md A1): an Administrator and a Monitor (read-only) user per device.

lab.json ``components.audiocodes``::

    {"summary", "ca_file", "devices": {"<name>": {"api_url", "username", "password", "readonly_username",
     "readonly_password", "sip_tls": {"host", "port", "name"}, "mutual_auth", "ha", "control_url", "ca_file",
     "serial"}}}

``sip_tls.name`` is the device's SIP-TLS name in the lab zone (``bind.SIP_NAMES``, served by the lab DNS).
``mutual_auth``: the SIP Interface requests a client certificate and verifies it against the bound TLS context's
trusted roots (on for ``mediant-ha``).
"""

from __future__ import annotations

import datetime
import ipaddress
import json
import os
import secrets
import sys

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID

from ..core import LOOPBACK, REPO, free_port, tcp_open
from .bind import SIP_NAMES

DEVICES = [("mediant-ha", True), ("mediant-sa", False)]
# Issue 9 section 2: mutual authentication on for at least one AudioCodes device. sbc-apis.md A4: SIP Interface
# column ``TLSMutualAuthentication``; the emulator's factory configuration of that device sets it to 1.
MUTUAL_AUTH = {"mediant-ha"}


def _self_signed(serial: str) -> tuple[bytes, bytes]:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, f"ACL_{serial}")])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (
        x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5)).not_valid_after(now + datetime.timedelta(days=365))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName("localhost"),
                                                    x509.IPAddress(ipaddress.ip_address(LOOPBACK))]), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .sign(key, hashes.SHA256())
    )
    return (cert.public_bytes(serialization.Encoding.PEM),
            key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                              serialization.NoEncryption()))


def _private(path, data: bytes) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(data)


class AudioCodes:
    name = "audiocodes"
    requires: list[str] = []

    def start(self, lab) -> dict:
        work = lab.workdir("audiocodes")
        devices, bundle, started = {}, b"", []
        for dev_name, ha in DEVICES:
            serial = str(secrets.randbelow(90000000) + 10000000)
            cert_pem, key_pem = _self_signed(serial)
            cert_file, key_file = work / f"{dev_name}-mgmt.pem", work / f"{dev_name}-mgmt.key"
            cert_file.write_bytes(cert_pem)
            _private(key_file, key_pem)
            bundle += cert_pem
            port, sip_port = free_port(), free_port()
            users = {"Admin": {"password": secrets.token_urlsafe(12), "level": "admin"},
                     "Monitor": {"password": secrets.token_urlsafe(12), "level": "monitor"}}
            config = {"name": dev_name, "ha": ha, "port": port, "sip_port": sip_port, "serial": serial,
                      "mutual_auth": dev_name in MUTUAL_AUTH, "users": users, "default_cert_file": str(cert_file),
                      "default_key_file": str(key_file)}
            if lab.expired_sip:
                # an operator's context (the emulator's sip_seed) serving an expired lab-CA certificate by name
                sip_cert, sip_key = lab.ca.issue(f"audiocodes-{dev_name}-sip", [SIP_NAMES[dev_name]], expired=True)
                config["sip_seed"] = {"cert_file": str(sip_cert), "key_file": str(sip_key)}
            config_file = work / f"{dev_name}.json"
            _private(config_file, json.dumps(config, indent=2).encode())
            proc = lab.spawn(f"audiocodes-{dev_name}", [sys.executable, "-m", "emulators.audiocodes",
                                                        "--config", str(config_file)], cwd=REPO / "tests" / "lab")
            started.append((dev_name, proc, port, sip_port))
            devices[dev_name] = {
                "api_url": f"https://{LOOPBACK}:{port}/api/v1",
                "username": "Admin", "password": users["Admin"]["password"],
                "readonly_username": "Monitor", "readonly_password": users["Monitor"]["password"],
                "sip_tls": {"host": LOOPBACK, "port": sip_port, "name": SIP_NAMES[dev_name]},  # lab zone (bind)
                "mutual_auth": dev_name in MUTUAL_AUTH,
                "ha": ha, "control_url": f"https://{LOOPBACK}:{port}/_control",
                "ca_file": str(cert_file), "serial": serial,
            }
        for dev_name, proc, port, sip_port in started:
            lab.wait_ready(f"audiocodes-{dev_name}", proc,
                           lambda p=port, s=sip_port: tcp_open(p) and tcp_open(s))
        ca_file = work / "management-ca.pem"
        ca_file.write_bytes(bundle)
        return {
            "summary": "AudioCodes Mediant emulators: " + ", ".join(
                f"{n} ({'HA pair' if d['ha'] else 'standalone'}{', mutual TLS' if d['mutual_auth'] else ''})"
                f" {d['api_url']} SIP-TLS :{d['sip_tls']['port']}"
                for n, d in devices.items()),
            "ca_file": str(ca_file),
            "devices": devices,
        }


def components() -> list:
    return [AudioCodes()]
