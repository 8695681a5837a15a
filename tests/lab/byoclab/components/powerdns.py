"""Lab part ``powerdns``: PowerDNS Authoritative 4.7 with the sqlite3 backend, its HTTP API, and RFC 2136.

Facts: toolchain.md §2.3 and acme-and-dns.md §7.6 (config keys, API calls and their status codes, the TSIG key
and ``TSIG-ALLOW-DNSUPDATE`` metadata that RFC 2136 needs, SIGTERM stops it in about 3 s).

The zone ``pdns.test`` is created through the API (Native, NS ns1.pdns.test) with A records for ns1 and sbc1,
and the TSIG key ``acme-key`` is allowed to update it.
"""

from __future__ import annotations

import base64
import json
import secrets
import shutil
import sqlite3
import urllib.error
import urllib.request
from pathlib import Path

from ..core import LOOPBACK, LabError, free_port

ZONE = "pdns.test"
SERVER_ID = "localhost"
TSIG_NAME = "acme-key"
TSIG_ALGORITHM = "hmac-sha256"
SCHEMA = Path("/usr/share/pdns-backend-sqlite3/schema/schema.sqlite3.sql")


def _api(base: str, key: str, method: str, path: str, body: object | None = None) -> tuple[int, object]:
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(base + path, data=data, method=method,
                                 headers={"X-API-Key": key, "Content-Type": "application/json",
                                          "Accept": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=5) as resp:
            raw = resp.read()
            return resp.status, json.loads(raw) if raw else None
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode(errors="replace")


class PowerDNS:
    name = "powerdns"
    requires: tuple = ()

    def start(self, lab) -> dict:
        pdns = shutil.which("pdns_server") or "/usr/sbin/pdns_server"
        if not Path(pdns).exists() or not SCHEMA.exists():
            raise LabError("powerdns: pdns_server or the sqlite3 schema is missing; install the Debian packages "
                           "pdns-server and pdns-backend-sqlite3 (make setup does)")
        workdir = lab.workdir("powerdns")
        db = workdir / "pdns.sqlite3"
        if db.exists():
            db.unlink()
        # toolchain.md §2.3: the database is created from the package's schema file.
        with sqlite3.connect(db) as conn:
            conn.executescript(SCHEMA.read_text())
        conn.close()

        dns_port, api_port = free_port(udp_too=True), free_port()
        api_key = secrets.token_urlsafe(24)
        secret = base64.b64encode(secrets.token_bytes(32)).decode()
        conf = workdir / "pdns.conf"
        conf.write_text("\n".join([
            "launch=gsqlite3",
            f"gsqlite3-database={db}",
            f"local-address={LOOPBACK}",
            f"local-port={dns_port}",
            f"socket-dir={workdir}",
            # Foreground, no guardian: killing the recorded PID stops the server (brief; toolchain.md §2.3).
            "daemon=no",
            "guardian=no",
            "disable-syslog=yes",
            "loglevel=4",
            "api=yes",
            f"api-key={api_key}",
            "webserver=yes",
            f"webserver-address={LOOPBACK}",
            f"webserver-port={api_port}",
            "webserver-allow-from=127.0.0.1/32",
            # acme-and-dns.md §7.6: RFC 2136 needs dnsupdate=yes and an allowed source.
            "dnsupdate=yes",
            "allow-dnsupdate-from=127.0.0.0/8",
            # toolchain.md §2.3: an empty suffix skips the security-poll DNS lookup (no internet here).
            "security-poll-suffix=",
            # A real SOA instead of the cosmetic a.misconfigured.dns.server.invalid (acme-and-dns.md §7.6).
            "default-soa-content=ns1.@ hostmaster.@ 0 10800 3600 604800 60",
            "receiver-threads=1",
            "distributor-threads=1",
            "",
        ]))
        conf.chmod(0o600)  # holds the API key

        proc = lab.spawn("powerdns", [pdns, f"--config-dir={workdir}"])
        base = f"http://{LOOPBACK}:{api_port}/api/v1"
        server = f"{base}/servers/{SERVER_ID}"
        lab.wait_ready("powerdns", proc, lambda: _api(server, api_key, "GET", "")[0] == 200, timeout=20)

        # acme-and-dns.md §7.6: POST /zones (Native, nameservers) -> 201.
        status, body = _api(server, api_key, "POST", "/zones", {
            "name": f"{ZONE}.", "kind": "Native", "nameservers": [f"ns1.{ZONE}."],
            "rrsets": [
                {"name": f"ns1.{ZONE}.", "type": "A", "ttl": 60,
                 "records": [{"content": LOOPBACK, "disabled": False}]},
                {"name": f"sbc1.{ZONE}.", "type": "A", "ttl": 60,
                 "records": [{"content": LOOPBACK, "disabled": False}]},
            ]})
        if status != 201:
            raise LabError(f"powerdns: creating zone {ZONE} through {server}/zones returned {status}: {body}")
        # acme-and-dns.md §7.6: POST /tsigkeys -> 201, then PUT .../metadata/TSIG-ALLOW-DNSUPDATE -> 200.
        status, body = _api(server, api_key, "POST", "/tsigkeys",
                            {"name": TSIG_NAME, "algorithm": TSIG_ALGORITHM, "key": secret})
        if status != 201:
            raise LabError(f"powerdns: creating TSIG key {TSIG_NAME} returned {status}: {body}")
        status, body = _api(server, api_key, "PUT", f"/zones/{ZONE}./metadata/TSIG-ALLOW-DNSUPDATE",
                            {"metadata": [TSIG_NAME]})
        if status != 200:
            raise LabError(f"powerdns: allowing {TSIG_NAME} to update {ZONE} returned {status}: {body}")

        lab.wait_ready("powerdns", proc, lambda: _has_soa(dns_port), timeout=10)
        return {
            "summary": (f"PowerDNS 4.7 DNS 127.0.0.1:{dns_port}, API {base} (zone {ZONE}, RFC 2136 with "
                        f"TSIG {TSIG_NAME})"),
            "dns": {"host": LOOPBACK, "port": dns_port},
            "api": {"url": base, "server_id": SERVER_ID, "api_key": api_key},
            "zone": ZONE,
            "tsig": {"name": TSIG_NAME, "algorithm": TSIG_ALGORITHM, "secret": secret},
        }


def _has_soa(port: int) -> bool:
    import dns.message
    import dns.query
    import dns.rdatatype

    resp = dns.query.tcp(dns.message.make_query(ZONE, dns.rdatatype.SOA), LOOPBACK, port=port, timeout=1.0)
    return any(r.rdtype == dns.rdatatype.SOA for r in resp.answer)


def components() -> list:
    return [PowerDNS()]
