"""Lab parts: Pebble, the Let's Encrypt test ACME server, in four flavours.

=================  =========================  ===============================================================
part               binary                     what it is for
=================  =========================  ===============================================================
``pebble``         Pebble 2.10 (sid .deb)     ARI, profiles, ``replaces``; "fast" (no random sleeps, no
                                              authz reuse, no bad nonces) so tests are deterministic
``pebble-random``  Pebble 2.10                Pebble's own randomness (VA sleeps, 50 % authz reuse, 5 %
                                              badNonce) for robustness tests of the client
``pebble-2.4``     Debian's Pebble 2.4        the old baseline: no ARI, no profiles; fast
``pebble-eab``     Pebble 2.10                fast, and external account binding required (HS256 key)
=================  =========================  ===============================================================

Every part validates DNS-01 against the ``bind`` part's primary server (``-dnsserver``), or, when the lab runs
with a lagging secondary (``lab.py up --lag-secondary SECONDS``), against that secondary (``bind.validation_server``:
a CA may ask any authoritative server, and the lab must not be more optimistic than that). Every part serves its ACME API
and its management API over HTTPS with a certificate from the lab CA, and after start fetches the issuance
root(s) from the management API into files (Pebble makes new roots on every start), so that tests verify
issued chains against the root and never against the listener CA.

Facts: acme-and-dns.md §5.1 (flags, config keys, env vars, management API), §5.4 (2.4 vs 2.10), §7.2/§7.5
(local runs, port pitfall), toolchain.md §2.2.
"""

from __future__ import annotations

import base64
import json
import os
import secrets
import socket
import ssl
import subprocess
import urllib.error
import urllib.request
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization

from ..core import BUILD, LOOPBACK, LabError, free_port

# acme-and-dns.md §5.4: Debian bookworm's package installs /usr/bin/pebble (2.4.0); 2.10.0 comes from sid's .deb,
# extracted by scripts/bootstrap.sh under .build/pebble-2.10*.
PEBBLE_24 = Path("/usr/bin/pebble")

# acme-and-dns.md §5.1 / toolchain.md §2.2: the "fast" profile. Without these, Pebble sleeps 0-15 s before each
# validation, reuses valid authzs 50 % of the time (a second order then has no challenge) and rejects 5 % of
# good nonces.
FAST_ENV = {"PEBBLE_VA_NOSLEEP": "1", "PEBBLE_AUTHZREUSE": "0", "PEBBLE_WFE_NONCEREJECT": "0"}

# Environment variables Pebble reads (acme-and-dns.md §5.1). A part must not inherit any of them from whoever
# runs the lab, or "pebble-random" would not be random and PEBBLE_VA_ALWAYS_VALID would make every test
# pass without a real DNS check; they are removed with ``env -u`` and only the wanted ones are set.
PEBBLE_ENV_VARS = (
    "PEBBLE_VA_NOSLEEP", "PEBBLE_VA_SLEEPTIME", "PEBBLE_VA_ALWAYS_VALID", "PEBBLE_WFE_NONCEREJECT",
    "PEBBLE_AUTHZREUSE", "PEBBLE_WFE_ORDERS_PER_PAGE", "PEBBLE_ALTERNATE_ROOTS", "PEBBLE_CHAIN_LENGTH",
)

# acme-and-dns.md §5.1: profiles {name: {description, validityPeriod}} (>= 2.7.0); 2.4 ignores the key (§5.4).
PROFILES = {"default": 7776000, "shortlived": 518400}

# acme-and-dns.md §5.1: Pebble >= 2.10 refuses requests without a User-Agent header.
USER_AGENT = "byoc-lab/1 (pebble readiness probe)"


def pebble_210() -> Path:
    """The extracted sid Pebble 2.10 binary (scripts/bootstrap.sh puts it under .build/pebble-2.10*)."""
    found = sorted(BUILD.glob("pebble-2.10*/usr/bin/pebble"))
    if not found:
        raise LabError(f"Pebble 2.10 is not extracted under {BUILD}/pebble-2.10*; run `make setup`")
    return found[-1]


def _version_210(binary: Path) -> str:
    # `pebble -version` prints "dev" for the Debian build, so the version comes from the package directory name
    # (.build/pebble-2.10.0+ds1-2/usr/bin/pebble -> 2.10.0).
    return binary.parents[2].name.split("-", 1)[1].split("+", 1)[0]


def _version_24() -> str:
    # acme-and-dns.md §5.4: 2.4.0 has no -version flag; ask dpkg which package version is installed.
    try:
        out = subprocess.run(["dpkg-query", "-W", "-f", "${Version}", "pebble"], capture_output=True, text=True,
                             check=True, timeout=30).stdout
    except (OSError, subprocess.SubprocessError):
        return "2.4.0"
    return out.split("+", 1)[0] or "2.4.0"


def https_get(url: str, ca_file: Path, timeout: float = 5.0) -> tuple[int, bytes]:
    """GET over HTTPS trusting only the lab CA, with a User-Agent (Pebble 2.10 needs one); 404 is returned,
    not raised."""
    req = urllib.request.Request(url, headers={"User-Agent": USER_AGENT})
    try:
        with urllib.request.urlopen(req, context=ssl.create_default_context(cafile=str(ca_file)), timeout=timeout) as resp:
            return resp.status, resp.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


def served_certificate_sha256(port: int) -> str:
    """SHA-256 of the DER certificate served on 127.0.0.1:port (no verification: only to tell who answers)."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    with socket.create_connection((LOOPBACK, port), timeout=2) as sock:
        with ctx.wrap_socket(sock, server_hostname="localhost") as tls:
            der = tls.getpeercert(binary_form=True)
    return hashes_sha256(der)


def hashes_sha256(data: bytes) -> str:
    digest = hashes.Hash(hashes.SHA256())
    digest.update(data)
    return digest.finalize().hex()


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


class Pebble:
    """One Pebble instance. ``flavour`` is "2.10" or "2.4"; ``fast`` sets FAST_ENV; ``eab`` requires EAB."""

    requires = ("bind",)

    def __init__(self, name: str, flavour: str = "2.10", fast: bool = True, eab: bool = False):
        self.name = name
        self.flavour = flavour
        self.fast = fast
        self.eab = eab

    def _binary(self) -> tuple[Path, str]:
        if self.flavour == "2.4":
            if not PEBBLE_24.exists():
                raise LabError(f"{self.name}: {PEBBLE_24} is missing; install Debian's pebble package (`make setup`)")
            return PEBBLE_24, _version_24()
        binary = pebble_210()
        return binary, _version_210(binary)

    def start(self, lab) -> dict:
        bind = lab.components.get("bind")
        if not bind or "primary" not in bind:
            raise LabError(f"{self.name}: the bind part is not running (lab.components['bind']['primary'] missing)")
        server = bind.get("validation_server") or bind["primary"]
        dns = f"{server['host']}:{server['port']}"
        binary, version = self._binary()
        work = lab.workdir(self.name)
        cert_file, key_file = lab.ca.issue(self.name, ["localhost", LOOPBACK])
        port, mport = free_port(), free_port()

        # acme-and-dns.md §5.1: the `pebble` config object. httpPort/tlsPort are the ports the VA *connects to*
        # for http-01/tls-alpn-01 (the lab only uses dns-01); they get free ports so that a stray validation
        # can never reach some other service on a well-known port. No OCSP responder.
        conf: dict = {
            "listenAddress": f"{LOOPBACK}:{port}",
            "managementListenAddress": f"{LOOPBACK}:{mport}",
            "certificate": str(cert_file),
            "privateKey": str(key_file),
            "httpPort": free_port(),
            "tlsPort": free_port(),
            "ocspResponderURL": "",
            "externalAccountBindingRequired": self.eab,
        }
        eab = None
        if self.eab:
            # acme-and-dns.md §5.1: externalAccountMACKeys {kid: base64url key}; HS256/384/512 required since
            # 2.5.2. A fresh kid and 256-bit key per start; they are secrets of the lab, kept in lab.json (0600).
            eab = {"kid": f"kid-{secrets.token_hex(4)}", "hmac_key": _b64url(secrets.token_bytes(32)), "alg": "HS256"}
            conf["externalAccountMACKeys"] = {eab["kid"]: eab["hmac_key"]}
        if self.flavour != "2.4":
            # acme-and-dns.md §5.1: profiles >= 2.7.0 (validityPeriod in seconds).
            conf["profiles"] = {
                "default": {"description": "90 days", "validityPeriod": PROFILES["default"]},
                "shortlived": {"description": "6 days", "validityPeriod": PROFILES["shortlived"]},
            }
        config_file = work / "pebble-config.json"
        config_file.write_text(json.dumps({"pebble": conf}, indent=2))
        os.chmod(config_file, 0o600)

        # -strict: Pebble's switch for "upcoming API breaking changes" (acme-and-dns.md §5.1; §7.8 recommends it).
        # It only makes Pebble refuse more (e.g. ACME v1 leftovers such as a "resource" field in a JWS body),
        # never accept more, so a client that passes against it also passes against a lenient server. It is on
        # for every flavour; the flag exists on 2.4 and 2.10 (checked with `pebble -h`).
        # -dnsserver: the VA resolver (exists on 2.4 too, checked with `pebble -h`); 2.10 asks over TCP only
        # (§5.1), which BIND also serves.
        argv = ["/usr/bin/env"]
        for var in sorted(set(PEBBLE_ENV_VARS) | {k for k in os.environ if k.startswith("PEBBLE_")}):
            argv += ["-u", var]
        argv += [f"{k}={v}" for k, v in sorted((FAST_ENV if self.fast else {}).items())]
        argv += [str(binary), "-config", str(config_file), "-dnsserver", dns, "-strict"]
        proc = lab.spawn(self.name, argv, cwd=work)

        directory_url = f"https://{LOOPBACK}:{port}/dir"
        management_url = f"https://{LOOPBACK}:{mport}"
        ours = hashes_sha256(x509.load_pem_x509_certificate(cert_file.read_bytes()).public_bytes(
            serialization.Encoding.DER))

        def ready() -> bool:
            # acme-and-dns.md §7.5: on a shared host another Pebble may already hold a port and a client would
            # silently talk to it. lab.wait_ready fails on "address already in use" in our log; in addition both
            # listeners must serve *our* certificate before the part counts as ready.
            if served_certificate_sha256(port) != ours or served_certificate_sha256(mport) != ours:
                return False
            if https_get(directory_url, lab.ca.cert_file)[0] != 200:
                return False
            return https_get(f"{management_url}/roots/0", lab.ca.cert_file)[0] == 200

        # 2.10 generates its RSA root and intermediate keys at start; on a busy 2-core host that takes a while.
        lab.wait_ready(self.name, proc, ready, timeout=60)

        directory = json.loads(https_get(directory_url, lab.ca.cert_file)[1])
        roots, intermediates = self._fetch_chain_files(lab, management_url, work)
        advertised = (directory.get("meta") or {}).get("profiles") or {}
        profiles = {name: secs for name, secs in PROFILES.items() if name in advertised}
        ari = "renewalInfo" in directory
        what = "fast" if self.fast else "Pebble's random sleeps/authz reuse/badNonce"
        summary = (f"Pebble {version} ({what}{', EAB required' if self.eab else ''}) {directory_url}, "
                   f"management {management_url}, DNS-01 via {dns}")
        return {
            "summary": summary,
            "version": version,
            "binary": str(binary),
            "directory": directory_url,
            "management": management_url,
            "ca_file": str(lab.ca.cert_file),
            "roots": [str(p) for p in roots],
            "intermediates": [str(p) for p in intermediates],
            "ari": ari,
            "profiles": profiles,
            "eab": eab,
            "fast": self.fast,
            "strict": True,
            "dns_server": dns,
            "config": str(config_file),
        }

    def _fetch_chain_files(self, lab, management_url: str, work: Path) -> tuple[list[Path], list[Path]]:
        """acme-and-dns.md §5.1: GET /roots/<n> and /intermediates/<n> (n = 0.. until 404); the issuance roots
        are regenerated on every start, so they are fetched now and written next to the config."""
        out: dict[str, list[Path]] = {"roots": [], "intermediates": []}
        for kind in out:
            for n in range(16):
                status, body = https_get(f"{management_url}/{kind}/{n}", lab.ca.cert_file)
                if status == 404:
                    break
                if status != 200 or b"-----BEGIN CERTIFICATE-----" not in body:
                    raise LabError(f"{self.name}: GET {management_url}/{kind}/{n} answered {status}, not a PEM")
                path = work / f"{kind[:-1] if kind == 'roots' else 'intermediate'}{n}.pem"
                path.write_bytes(body)
                out[kind].append(path)
        if not out["roots"]:
            raise LabError(f"{self.name}: the management API at {management_url} returned no root certificate")
        return out["roots"], out["intermediates"]


def components() -> list:
    return [
        Pebble("pebble", "2.10", fast=True),
        Pebble("pebble-random", "2.10", fast=False),
        Pebble("pebble-2.4", "2.4", fast=True),
        Pebble("pebble-eab", "2.10", fast=True, eab=True),
    ]
