"""Lab part ``bind``: two BIND 9 servers on loopback, a TSIG-updatable primary and a lagging secondary.

Facts: toolchain.md §2.1 and acme-and-dns.md §7.2 (named -g as root, a writable directory for the journal,
``controls { };`` so no rndc channel, BIND listens on 127.0.0.1 only, ``kill PID`` stops it in under 1 s).

Zones on the primary:

- ``example.test`` (updatable by ``acme-key``, transferred to the secondary, which is never notified by the
  primary, so it serves the old data until a test sends it a DNS NOTIFY with ``byoclab.dnstools.notify``);
- ``corp.test`` (NOT updatable): ``_acme-challenge.sbcN.corp.test`` are CNAMEs into the delegated zone;
- ``acme-dns.corp.test`` (updatable by ``acme-key``): the delegated challenge zone;
- ``lab.test`` (updatable by ``acme-key``, so certificates for its names can be issued over DNS-01): the SIP-TLS
  names of the SBC emulators (``SIP_NAMES``; A records to 127.0.0.1, the port is in each part's lab.json
  ``sip_tls``). The emulated Genesys Edges resolve trunk proxy names through this server, never /etc/hosts.

There is no key other than ``acme-key`` on either server (a test signing with ``wrong-key`` gets BADKEY).

Lagging mode (opt-in: ``Bind(lag=SECONDS)``, ``lab.py up --lag-secondary SECONDS``, also with ``--fleet N``): the
secondary also carries ``lab.test``, ``corp.test`` and ``acme-dns.corp.test``, and serves each of them exactly as the
primary served it ``lag`` seconds earlier. The primary NOTIFYs ``byoclab.delayed_primary`` (a process of this part)
after each change; that process snapshots the zone at once (AXFR) and hands the snapshot to the secondary ``lag``
seconds later (its NOTIFY, then the secondary's own SOA query and AXFR). The Pebble parts then validate DNS-01 at the
SECONDARY (``validation_server`` in lab.json), as a CA may ask any authoritative server, so a client that answers the
challenge before the record reached every server fails as it would in reality. ``lab_zone_nameservers`` lists
both servers (host:port) so a client that waits for every authoritative server (dns01_record ``nameservers``)
waits for the lagging one. ``example.test`` keeps its NOTIFY-only secondary. Without ``lag`` nothing of this
exists and ``lab_zone_nameservers`` lists the primary only.
"""

from __future__ import annotations

import base64
import json
import secrets
import shutil
import subprocess
import sys
from pathlib import Path

from ..core import LOOPBACK, REPO, LabError, free_port, tail

TSIG_NAME = "acme-key"
TSIG_ALGORITHM = "hmac-sha256"
DIRECT_ZONE = "example.test"
DELEGATING_ZONE = "corp.test"
CHALLENGE_ZONE = "acme-dns.corp.test"
LAB_ZONE = "lab.test"
# The SIP-TLS names of the SBC emulators (issue 9 §1). The SBC parts import their name from here.
SIP_NAMES = {
    "mediant-ha": "mediant-ha.lab.test",   # AudioCodes HA pair
    "mediant-sa": "mediant-sa.lab.test",   # AudioCodes standalone unit
    "ribbon_core": "sbc-core.lab.test",    # Ribbon SBC Core HA pair (one signalling address)
    "ribbon_edge": "sbc-edge.lab.test",    # Ribbon SBC Edge unit
}
# Long refresh/retry: the secondary only catches up when it receives a NOTIFY (brief: "the secondary must LAG").
REFRESH = 3600
RETRY = 3600
EXPIRE = 1209600
MINIMUM = 60


def _named() -> str:
    path = shutil.which("named") or "/usr/sbin/named"
    if not Path(path).exists():
        raise LabError("bind: /usr/sbin/named not found; install the Debian package bind9 (make setup does)")
    return path


def _soa(zone: str, serial: int) -> str:
    return (f"$TTL 60\n"
            f"@ IN SOA ns1.{zone}. hostmaster.{zone}. {serial} {REFRESH} {RETRY} {EXPIRE} {MINIMUM}\n")


def _example_zone(serial: int) -> str:
    return _soa(DIRECT_ZONE, serial) + (
        "@    IN NS ns1.example.test.\n"
        "@    IN NS ns2.example.test.\n"
        "ns1  IN A  127.0.0.1\n"
        "ns2  IN A  127.0.0.1\n"
        "sbc1 IN A  127.0.0.1\n"
        "sbc2 IN A  127.0.0.1\n"
        "sbc3 IN A  127.0.0.1\n"
    )


def _corp_zone(serial: int) -> str:
    return (
        "$TTL 60\n"
        f"@ IN SOA ns1.corp.test. hostmaster.corp.test. {serial} {REFRESH} {RETRY} {EXPIRE} {MINIMUM}\n"
        "@    IN NS ns1.corp.test.\n"
        "ns1  IN A  127.0.0.1\n"
        "sbc1 IN A  127.0.0.1\n"
        "sbc2 IN A  127.0.0.1\n"
        # CNAME delegation of the ACME challenge into the updatable zone (acme-and-dns.md §7.8 item 2).
        "_acme-challenge.sbc1 IN CNAME sbc1.acme-dns.corp.test.\n"
        "_acme-challenge.sbc2 IN CNAME sbc2.acme-dns.corp.test.\n"
        # Delegation of the challenge zone; ns1.corp.test's address above is its glue.
        "acme-dns IN NS ns1.corp.test.\n"
    )


def _lab_zone(serial: int) -> str:
    return _soa(LAB_ZONE, serial) + "@ IN NS ns1.lab.test.\nns1 IN A 127.0.0.1\n" + "".join(
        f"{name.removesuffix('.' + LAB_ZONE)} IN A 127.0.0.1\n" for name in SIP_NAMES.values())


def _challenge_zone(serial: int) -> str:
    return (
        "$TTL 60\n"
        f"@ IN SOA ns1.corp.test. hostmaster.corp.test. {serial} {REFRESH} {RETRY} {EXPIRE} {MINIMUM}\n"
        "@ IN NS ns1.corp.test.\n"
    )


def _options(workdir: Path, port: int) -> str:
    return f"""options {{
  directory "{workdir}";
  pid-file "{workdir}/named.pid";
  session-keyfile "{workdir}/session.key";
  managed-keys-directory "{workdir}";
  listen-on port {port} {{ 127.0.0.1; }};
  listen-on-v6 {{ none; }};
  recursion no;
  dnssec-validation no;
  notify no;
  querylog yes;
}};
controls {{ }};
"""


# Zones the lagging secondary carries (lagging mode only): every zone a DNS-01 challenge of the lab is written to.
LAGGED_ZONES = (LAB_ZONE, DELEGATING_ZONE, CHALLENGE_ZONE)


def _lagged_primary_zone(zone: str, relay_port: int) -> str:
    # notify explicit: only the delayed primary is told (never the NS names on port 53); notify-delay 0: at once.
    return (f"  notify explicit;\n  also-notify {{ 127.0.0.1 port {relay_port}; }};\n  notify-delay 0;\n"
            if zone in LAGGED_ZONES else "  notify no;\n")


class Bind:
    name = "bind"
    requires: tuple = ()

    def __init__(self, lag: float | None = None):
        # Seconds by which the secondary lags for LAGGED_ZONES (None: the default lab, no lag mode).
        self.lag = lag

    def start(self, lab) -> dict:
        root = lab.workdir("bind")
        prim_dir, sec_dir = root / "primary", root / "secondary"
        for d in (prim_dir, sec_dir):
            if d.exists():
                shutil.rmtree(d)
            d.mkdir(parents=True)
        prim_port, sec_port = free_port(udp_too=True), free_port(udp_too=True)
        while sec_port == prim_port:
            sec_port = free_port(udp_too=True)
        relay_port = None
        if self.lag is not None:
            relay_port = free_port(udp_too=True)
            while relay_port in (prim_port, sec_port):
                relay_port = free_port(udp_too=True)

        def _pz(zone: str) -> str:
            return "  notify no;\n" if relay_port is None else _lagged_primary_zone(zone, relay_port)

        secret = base64.b64encode(secrets.token_bytes(32)).decode()
        key_text = f'key "{TSIG_NAME}" {{\n\talgorithm {TSIG_ALGORITHM};\n\tsecret "{secret}";\n}};\n'
        key_file = root / "tsig.key"  # toolchain.md §2.1: the tsig-keygen format, read by nsupdate -k and named
        key_file.write_text(key_text)
        key_file.chmod(0o600)

        # A random start serial doubles as this lab's fingerprint: the readiness probe only accepts the serial it
        # wrote, so a foreign server on a recycled port is never mistaken for ours.
        serial = 1000 + secrets.randbelow(1_000_000_000)
        (prim_dir / "example.test.db").write_text(_example_zone(serial))
        (prim_dir / "corp.test.db").write_text(_corp_zone(serial))
        (prim_dir / "acme-dns.corp.test.db").write_text(_challenge_zone(serial))
        (prim_dir / "lab.test.db").write_text(_lab_zone(serial))

        # Primary: never notifies (options notify no), allows transfers from loopback (the secondary and tests). In
        # lagging mode it NOTIFYs the delayed primary for LAGGED_ZONES.
        (prim_dir / "named.conf").write_text(_options(prim_dir, prim_port) + f"""include "{key_file}";
zone "{DIRECT_ZONE}" {{
  type primary;
  file "{prim_dir}/example.test.db";
  notify no;
  allow-transfer {{ 127.0.0.1; }};
  update-policy {{ grant {TSIG_NAME} zonesub ANY; }};
}};
zone "{DELEGATING_ZONE}" {{
  type primary;
  file "{prim_dir}/corp.test.db";
{_pz(DELEGATING_ZONE)}  allow-transfer {{ 127.0.0.1; }};
}};
zone "{CHALLENGE_ZONE}" {{
  type primary;
  file "{prim_dir}/acme-dns.corp.test.db";
{_pz(CHALLENGE_ZONE)}  allow-transfer {{ 127.0.0.1; }};
  update-policy {{ grant {TSIG_NAME} zonesub ANY; }};
}};
zone "{LAB_ZONE}" {{
  type primary;
  file "{prim_dir}/lab.test.db";
{_pz(LAB_ZONE)}  allow-transfer {{ 127.0.0.1; }};
  update-policy {{ grant {TSIG_NAME} zonesub ANY; }};
}};
""")
        # Secondary: transfers example.test from the primary's port, accepts NOTIFY from loopback only.
        (sec_dir / "named.conf").write_text(_options(sec_dir, sec_port) + f"""zone "{DIRECT_ZONE}" {{
  type secondary;
  file "{sec_dir}/example.test.db";
  primaries {{ 127.0.0.1 port {prim_port}; }};
  allow-notify {{ 127.0.0.1; }};
  notify no;
}};
""" + "".join(f"""zone "{zone}" {{
  type secondary;
  file "{sec_dir}/{zone}.db";
  primaries {{ 127.0.0.1 port {relay_port}; }};
  allow-notify {{ 127.0.0.1; }};
  request-ixfr no;
  notify no;
}};
""" for zone in (LAGGED_ZONES if relay_port is not None else ())))
        # -z also loads the primary's zone files; the secondary has none until its first transfer.
        for conf, flags in ((prim_dir / "named.conf", ["-z"]), (sec_dir / "named.conf", [])):
            check = subprocess.run(["named-checkconf", *flags, str(conf)], capture_output=True, text=True,
                                   check=False)
            if check.returncode != 0:
                raise LabError(f"bind: named-checkconf rejected {conf}:\n{check.stdout}{check.stderr}")

        named = _named()
        # -g: foreground, log to stderr, so killing the PID stops it; -4: IPv4 only; -n 1: one worker (2 cores).
        # Running as root without -u (toolchain.md §2.1: "Run as root with -g").
        marks = {n: _log_size(lab, n) for n in ("bind-primary", "bind-secondary")}
        prim = lab.spawn("bind-primary", [named, "-g", "-4", "-n", "1", "-c", str(prim_dir / "named.conf")])
        lab.wait_ready("bind-primary", prim, lambda: _bind_error(lab, "bind-primary", marks["bind-primary"]) or all(
            _serial(prim_port, z) == serial for z in (DIRECT_ZONE, DELEGATING_ZONE, CHALLENGE_ZONE, LAB_ZONE)), timeout=20)
        _check_bind_errors(lab, "bind-primary", marks["bind-primary"])
        lag_desc = None
        if relay_port is not None:
            lag_desc = self._start_relay(lab, root, prim_port, sec_port, relay_port, serial)
        sec = lab.spawn("bind-secondary", [named, "-g", "-4", "-n", "1", "-c", str(sec_dir / "named.conf")])
        # Ready once the initial transfer is done: the secondary answers the SOA with the primary's serial.
        lab.wait_ready("bind-secondary", sec, lambda: _bind_error(lab, "bind-secondary", marks["bind-secondary"])
                       or all(_serial(sec_port, z) == serial
                              for z in (DIRECT_ZONE, *(LAGGED_ZONES if lag_desc else ()))), timeout=20)
        _check_bind_errors(lab, "bind-secondary", marks["bind-secondary"])

        desc = {
            "summary": (f"BIND 9 primary 127.0.0.1:{prim_port} (example.test, corp.test, acme-dns.corp.test, lab.test; "
                        f"TSIG {TSIG_NAME}), lagging secondary 127.0.0.1:{sec_port} (example.test, NOTIFY only)"),
            "primary": {"host": LOOPBACK, "port": prim_port},
            "secondary": {"host": LOOPBACK, "port": sec_port},
            "tsig": {"name": TSIG_NAME, "algorithm": TSIG_ALGORITHM, "secret": secret, "file": str(key_file)},
            "zones": {"direct": DIRECT_ZONE, "delegating": DELEGATING_ZONE, "challenge": CHALLENGE_ZONE,
                      "lab": LAB_ZONE},
            "sip_names": dict(SIP_NAMES),
            "nameservers": {DIRECT_ZONE: [f"ns1.{DIRECT_ZONE}", f"ns2.{DIRECT_ZONE}"]},
            # Every authoritative server of lab.test as host:port, for clients that wait for all of them.
            "lab_zone_nameservers": [f"{LOOPBACK}:{prim_port}"] + ([f"{LOOPBACK}:{sec_port}"] if lag_desc else []),
            "initial_serial": serial,
        }
        if lag_desc:
            desc["lag"] = lag_desc
            # Where the ACME servers of this lab validate DNS-01 (the pebble parts read it): the lagging secondary.
            desc["validation_server"] = {"host": LOOPBACK, "port": sec_port}
            desc["summary"] = (f"BIND 9 primary 127.0.0.1:{prim_port} (example.test, corp.test, acme-dns.corp.test, "
                               f"lab.test; TSIG {TSIG_NAME}), secondary 127.0.0.1:{sec_port} lagging {self.lag:g}s for "
                               f"{', '.join(LAGGED_ZONES)} (delayed primary 127.0.0.1:{relay_port}; example.test "
                               f"NOTIFY only); ACME validation at the secondary")
        return desc

    def _start_relay(self, lab, root: Path, prim_port: int, sec_port: int, relay_port: int, serial: int) -> dict:
        """The delayed primary (byoclab/delayed_primary.py) between the primary and the secondary."""
        conf = root / "delayed-primary.json"
        conf.write_text(json.dumps({"port": relay_port, "primary": [LOOPBACK, prim_port],
                                    "secondary": [LOOPBACK, sec_port], "delay": self.lag, "zones": list(LAGGED_ZONES)}))
        log = lab.log_file("bind-delayed-primary")
        if log.exists():
            log.unlink()  # lab.wait_ready reads the whole log: an earlier start's bind error must not count
        proc = lab.spawn("bind-delayed-primary", [sys.executable, "-m", "byoclab.delayed_primary", str(conf)],
                         cwd=REPO / "tests" / "lab")
        lab.wait_ready("bind-delayed-primary", proc, lambda: all(_serial(relay_port, z) == serial for z in LAGGED_ZONES),
                       timeout=20)
        return {"seconds": self.lag, "zones": list(LAGGED_ZONES), "delayed_primary": {"host": LOOPBACK, "port": relay_port}}


def _serial(port: int, zone: str) -> int | None:
    import dns.message
    import dns.query
    import dns.rcode
    import dns.rdatatype

    query = dns.message.make_query(zone, dns.rdatatype.SOA)
    resp = dns.query.tcp(query, LOOPBACK, port=port, timeout=1.0)
    if resp.rcode() != dns.rcode.NOERROR:
        return None
    for rrset in resp.answer:
        if rrset.rdtype == dns.rdatatype.SOA:
            return rrset[0].serial
    return None


def _log_size(lab, name: str) -> int:
    log = lab.log_file(name)
    return log.stat().st_size if log.exists() else 0


def _bind_error(lab, name: str, offset: int) -> bool:
    """Whether this start (the log from ``offset`` on; logs are appended across runs) failed to bind a port.
    named reports that as "address in use" and keeps running, so the readiness probe stops waiting on it."""
    log = lab.log_file(name)
    if not log.exists():
        return False
    with open(log, "rb") as fh:
        fh.seek(offset)
        return "address in use" in fh.read().decode(errors="replace").lower()


def _check_bind_errors(lab, name: str, offset: int) -> None:
    if _bind_error(lab, name, offset):
        raise LabError(f"{name} could not bind its port:\n{tail(lab.log_file(name))}")


def components() -> list:
    return [Bind()]
