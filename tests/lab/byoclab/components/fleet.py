"""Lab part ``fleet``: N certificate groups served by a few emulator processes (issue 13 item 1).

``python tests/lab/lab.py up --fleet N`` starts ``bind``, ``pebble``, ``genesys`` and this part. The groups are spread
round-robin over the three kinds of device of the lab (one device per group):

=========  =================================================================================================
kind       device
=========  =================================================================================================
``ac``     an AudioCodes Mediant HA pair (``emulators.audiocodes``; one management address, mutual TLS on, as
           ``mediant-ha`` in the default lab)
``core``   a Ribbon SBC Core HA pair (``emulators.ribbon_core``; two SFTP nodes, ``authClient true``)
``edge``   a Ribbon SBC Edge unit (``emulators.ribbon_edge``)
=========  =================================================================================================

One emulator process hosts up to ``PER_PROCESS`` devices (``--fleet devices.json``); each device keeps its own ports
(management API, SIP-TLS listener, and for a Core pair one SFTP port per node), its own state, lock and request log,
so a device of the fleet answers exactly as the device of the single-device lab. Every device's SIP-TLS listener has
its own name ``<host>.lab.test`` (A 127.0.0.1, added to the ``bind`` primary with one TSIG-signed update). The
Genesys org gets one trunk base per device, assigned to both Edges, whose proxy is that name and port (the
emulator's test-only ``POST /_control/trunks``, the same call ``playbooks/demo_lab.yml`` makes).

``expired=True`` (the default, ``--fleet-valid`` turns it off): every device starts serving an EXPIRED certificate
for its name (issued by the lab CA, ended a day ago), so a first rotation renews every group.

lab.json ``components.fleet`` stays small (the inventory files and devices.json hold the rest)::

    {"summary", "size", "expired", "inventory" (directory), "devices_file", "processes": {name: [hosts]},
     "kinds": {"ac": n, "core": n, "edge": n}}

``devices.json``: ``{host: {"kind", "group", "api_url", "control_url", "ca_file", "sip_tls": {"host", "port",
"name"}, "process", ...credentials}}``. The generated inventory (``<lab>/fleet/inventory``) has the shape of
``inventory.example/lab`` (hosts.yml with one child group of ``byoc_sbc`` per certificate group, group_vars/all.yml,
group_vars/<group>.yml) with the values written out, so Ansible never re-reads lab.json while templating.
"""

from __future__ import annotations

import datetime
import json
import os
import secrets
import shutil
import sys
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from ..core import LOOPBACK, REPO, LabError, tcp_open
from ..core import free_port as _kernel_port
from .bind import LAB_ZONE

PER_PROCESS = 40
KINDS = ("ac", "core", "edge")
EMULATOR = {"ac": "emulators.audiocodes", "core": "emulators.ribbon_core", "edge": "emulators.ribbon_edge"}


def host_name(kind: str, index: int) -> str:
    return f"{kind}{index:03d}"


def _private(path: Path, data: bytes) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(data)


_TAKEN: set[int] = set()


def free_port() -> int:
    """A free loopback port not handed out before in this start: the kernel may give a closed port again, and
    several hundred are chosen before any emulator binds them."""
    for _attempt in range(100):
        port = _kernel_port()
        if port not in _TAKEN:
            _TAKEN.add(port)
            return port
    raise LabError("fleet: could not find a free loopback port")


def _expired_leaf(lab, stem: str, name: str, expired: bool) -> tuple[Path, Path]:
    """A SIP-TLS certificate for ``name`` signed by the lab CA; with ``expired`` it ended a day ago."""
    key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.datetime.now(datetime.timezone.utc)
    start, end = (now - datetime.timedelta(days=91), now - datetime.timedelta(days=1)) if expired else \
        (now - datetime.timedelta(minutes=5), now + datetime.timedelta(days=7))
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)]))
        .issuer_name(lab.ca.cert.subject).public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(start).not_valid_after(end)
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(name)]), critical=False)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .sign(lab.ca.key, hashes.SHA256())
    )
    cert_file, key_file = lab.ca.dir / f"{stem}.pem", lab.ca.dir / f"{stem}.key"
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    _private(key_file, key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                         serialization.NoEncryption()))
    return cert_file, key_file


def _factory_self_signed(serial: str) -> tuple[bytes, bytes]:
    """The AudioCodes factory management certificate (sbc-apis.md A4: self-signed ``CN=ACL_<serial>`` in context 0),
    as components/audiocodes.py makes it but with a P-256 key: the reference does not give the factory key type, and
    67 RSA key generations would take most of the fleet's start-up budget on two shared cores."""
    import ipaddress

    key = ec.generate_private_key(ec.SECP256R1())
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


def _add_names(bind: dict, names: list[str]) -> None:
    """A 127.0.0.1 for every name, in one TSIG-signed RFC 2136 update of the lab zone at the primary."""
    import dns.query
    import dns.rcode
    import dns.tsigkeyring
    import dns.update

    ring = dns.tsigkeyring.from_text({bind["tsig"]["name"]: bind["tsig"]["secret"]})
    upd = dns.update.UpdateMessage(LAB_ZONE, keyring=ring, keyname=bind["tsig"]["name"],
                                   keyalgorithm=bind["tsig"]["algorithm"])
    for name in names:
        upd.replace(name + ".", 60, "A", LOOPBACK)
    resp = dns.query.tcp(upd, bind["primary"]["host"], port=int(bind["primary"]["port"]), timeout=30)
    if resp.rcode() != dns.rcode.NOERROR:
        raise LabError(f"fleet: the DNS update of {LAB_ZONE} was refused: {dns.rcode.to_text(resp.rcode())}")


class Fleet:
    name = "fleet"
    requires = ["bind"]  # the genesys part starts after it (lab.py --fleet) and seeds the trunks it describes

    def __init__(self, size: int, expired: bool = True) -> None:
        if size < 1:
            raise LabError("fleet: the size must be at least 1")
        self.size = size
        self.expired = expired

    def start(self, lab) -> dict:
        work = lab.workdir("fleet")
        marks = [("begin", time.monotonic())]
        for old in ("devices", "inventory"):
            if (work / old).exists():
                shutil.rmtree(work / old)  # every start begins clean (DEVELOPING.md lab rules)
        ddir = work / "devices"
        ddir.mkdir()
        hosts = [(host_name(KINDS[i % 3], i + 1), KINDS[i % 3], f"grp_{i + 1:03d}") for i in range(self.size)]
        names = {h: f"{h}.{LAB_ZONE}" for h, _k, _g in hosts}
        _add_names(lab.components["bind"], list(names.values()))

        # Management certificates: the Ribbon ones from the lab CA (one per kind, SAN 127.0.0.1: every device listens
        # on loopback); AudioCodes ones self-signed per device, as a factory device (sbc-apis.md A4).
        mgmt = {k: lab.ca.issue(f"fleet-{k}-mgmt", [LOOPBACK, "localhost"]) for k in ("core", "edge")}

        def device(entry):
            host, kind, group = entry
            sip_cert, sip_key = _expired_leaf(lab, f"fleet-{host}-sip", names[host], self.expired)
            sip_port = free_port()
            if kind == "ac":
                serial = str(secrets.randbelow(90000000) + 10000000)
                cert_pem, key_pem = _factory_self_signed(serial)
                cert_file, key_file = ddir / f"{host}-mgmt.pem", ddir / f"{host}-mgmt.key"
                cert_file.write_bytes(cert_pem)
                _private(key_file, key_pem)
                port = free_port()
                users = {"Admin": {"password": secrets.token_urlsafe(12), "level": "admin"},
                         "Monitor": {"password": secrets.token_urlsafe(12), "level": "monitor"}}
                cfg = {"name": host, "ha": True, "port": port, "sip_port": sip_port, "serial": serial,
                       "mutual_auth": True, "users": users, "default_cert_file": str(cert_file),
                       "default_key_file": str(key_file),
                       "sip_seed": {"cert_file": str(sip_cert), "key_file": str(sip_key)}}
                desc = {"api_url": f"https://{LOOPBACK}:{port}/api/v1", "control_url": f"https://{LOOPBACK}:{port}/_control",
                        "ca_file": str(cert_file), "username": "Admin", "password": users["Admin"]["password"],
                        "ports": [port, sip_port]}
            elif kind == "core":
                import paramiko

                api_port = free_port()
                nodes = []
                for node in ("a", "b"):
                    root = ddir / host / f"node-{node}" / "external"
                    root.mkdir(parents=True)
                    key_file = ddir / host / f"node-{node}" / "hostkey"
                    hk = paramiko.ECDSAKey.generate()
                    hk.write_private_key_file(str(key_file))
                    nodes.append({"name": node, "root": str(root), "sftp_port": free_port(),
                                  "host_key_file": str(key_file), "host_key": f"{hk.get_name()} {hk.get_base64()}"})
                cfg = {"host": LOOPBACK, "api_port": api_port, "sip_port": sip_port,
                       "tls_cert": str(mgmt["core"][0]), "tls_key": str(mgmt["core"][1]),
                       "username": "admin", "password": secrets.token_urlsafe(12),
                       "sftp_username": "admin", "sftp_password": secrets.token_urlsafe(12),
                       "nodes": [{k: n[k] for k in ("name", "root", "sftp_port", "host_key_file")} for n in nodes],
                       "sip_profile": "defaultTlsProfile", "auth_client": True,
                       "seed": {"name": "lab-initial", "cert_file": str(sip_cert), "key_file": str(sip_key),
                                "passphrase": secrets.token_urlsafe(12)}}
                base = f"https://{LOOPBACK}:{api_port}"
                desc = {"api_url": base, "control_url": f"{base}/_control", "ca_file": str(lab.ca.cert_file),
                        "username": cfg["username"], "password": cfg["password"],
                        "sftp_username": cfg["sftp_username"], "sftp_password": cfg["sftp_password"],
                        "tls_profile": cfg["sip_profile"],
                        "nodes": [{"name": n["name"], "host": LOOPBACK, "port": n["sftp_port"], "root": n["root"],
                                   "host_key": n["host_key"]} for n in nodes],
                        "ports": [api_port, sip_port] + [n["sftp_port"] for n in nodes]}
            else:
                api_port = free_port()
                cfg = {"host": LOOPBACK, "api_port": api_port, "sip_port": sip_port,
                       "tls_cert": str(mgmt["edge"][0]), "tls_key": str(mgmt["edge"][1]),
                       "username": "restuser", "password": secrets.token_urlsafe(12),
                       "idle_seconds": 600, "require_csrf": True, "model": "SWe Lite", "mutual_auth": False,
                       "seed": {"cert_file": str(sip_cert), "key_file": str(sip_key),
                                "ca_file": str(lab.ca.cert_file)}}
                base = f"https://{LOOPBACK}:{api_port}"
                desc = {"api_url": base, "control_url": f"{base}/_control", "ca_file": str(lab.ca.cert_file),
                        "username": cfg["username"], "password": cfg["password"], "ports": [api_port, sip_port]}
            desc.update({"kind": kind, "group": group,
                         "sip_tls": {"host": LOOPBACK, "port": sip_port, "name": names[host]}})
            return host, kind, cfg, desc

        # Key generation is CPU work in C (the GIL is released), so two threads use both cores.
        with ThreadPoolExecutor(max_workers=2) as pool:
            built = list(pool.map(device, hosts))
        marks.append(("material", time.monotonic()))

        devices: dict[str, dict] = {}
        procs, processes = [], {}
        for kind in KINDS:
            mine = [b for b in built if b[1] == kind]
            for chunk in range(0, len(mine), PER_PROCESS):
                part = mine[chunk:chunk + PER_PROCESS]
                pname = f"fleet-{kind}-{chunk // PER_PROCESS + 1}"
                cfg_file = ddir / f"{pname}.json"
                _private(cfg_file, json.dumps([b[2] for b in part]).encode())
                log = lab.log_file(pname)
                if log.exists():
                    log.unlink()  # lab.wait_ready reads the whole log: an earlier start's bind error must not count
                proc = lab.spawn(pname, [sys.executable, "-m", EMULATOR[kind], "--fleet", str(cfg_file)],
                                 cwd=REPO / "tests" / "lab")
                ports = [p for b in part for p in b[3]["ports"]]
                procs.append((pname, proc, ports))
                processes[pname] = [b[0] for b in part]
                for host, _kind, _cfg, desc in part:
                    devices[host] = {**desc, "process": pname}
        for pname, proc, ports in procs:
            lab.wait_ready(pname, proc, lambda ports=ports: all(tcp_open(p) for p in ports), timeout=60)
        marks.append(("processes", time.monotonic()))

        # The org's trunks: one trunk base per device, on both Edges, proxy = the device's SIP-TLS name and port. The
        # genesys part (started after this one) seeds them from this file, in the emulator's config format.
        bases = []
        for host, desc in devices.items():
            desc["trunk_base_id"] = str(uuid.uuid4())
            bases.append({"id": desc["trunk_base_id"], "name": f"BYOC {host}",
                          "proxies": [f"{names[host]}:{desc['sip_tls']['port']}"]})
        trunk_bases_file = work / "trunk-bases.json"
        trunk_bases_file.write_text(json.dumps(bases))
        marks.append(("trunks", time.monotonic()))
        for desc in devices.values():
            desc.pop("ports", None)
        devices_file = work / "devices.json"
        _private(devices_file, json.dumps(devices, indent=1).encode())
        kinds = {k: sum(1 for d in devices.values() if d["kind"] == k) for k in KINDS}
        return {
            "summary": (f"{self.size} certificate groups: {kinds['ac']} AudioCodes HA pairs, {kinds['core']} Ribbon "
                        f"Core pairs, {kinds['edge']} Ribbon Edge units in {len(processes)} processes; "
                        f"{'expired' if self.expired else 'valid'} certificates at start"),
            "size": self.size, "expired": self.expired, "inventory": str(work / "inventory"),
            "devices_file": str(devices_file), "processes": processes, "kinds": kinds,
            "trunk_bases_file": str(trunk_bases_file),
            "phase_seconds": {name: round(t - marks[i][1], 2) for i, (name, t) in enumerate(marks[1:])},
        }


class FleetInventory:
    """Lab part ``fleet_inventory``: writes the fleet's inventory once the org exists (its client and URL)."""

    name = "fleet_inventory"
    requires = ["fleet", "pebble", "genesys"]

    def start(self, lab) -> dict:
        fleet = lab.components["fleet"]
        with open(fleet["devices_file"], encoding="utf-8") as fh:
            devices = json.load(fh)
        inventory = write_inventory(lab, Path(fleet["inventory"]), devices)
        return {"summary": f"inventory of {len(devices)} certificate groups in {inventory}", "inventory": str(inventory)}


def fleet_parts(size: int, expired: bool = True, extra: list | None = None, lag: float | None = None) -> list:
    """The parts of the fleet lab, in start order: bind, pebble, the fleet, genesys (seeded with the fleet's
    trunks), the inventory; ``extra``: more part names (e.g. for the comparison tools nothing else is needed);
    ``lag``: seconds by which BIND's secondary lags for lab.test, where Pebble then validates (components/bind.py)."""
    from . import select

    base = select(["bind", "pebble"] + list(extra or []))
    for part in base:
        if part.name == "bind":
            part.lag = lag
    genesys = [c for c in select(["genesys"]) if c.name == "genesys"]
    return base + [Fleet(size, expired)] + genesys + [FleetInventory()]


def _yaml(value) -> str:
    return json.dumps(value)  # JSON is YAML: quoting is always right


def write_inventory(lab, directory: Path, devices: dict) -> Path:
    """The inventory of the fleet, shaped like inventory.example/lab, with the values written out."""
    c = lab.components
    gv = directory / "group_vars"
    gv.mkdir(parents=True)
    lines = ["---", "# Generated by tests/lab/byoclab/components/fleet.py for the lab in " + str(lab.dir),
             "all:", "  children:", "    byoc_sbc:", "      children:"]
    for host, d in devices.items():
        lines += [f"        {d['group']}:", "          hosts:", f"            {host}:"]
    (directory / "hosts.yml").write_text("\n".join(lines) + "\n")
    bind, pebble, gen = c["bind"], c["pebble"], c["genesys"]
    ns = f"{bind['primary']['host']}:{bind['primary']['port']}"
    all_vars = {
        "byoc_lab_json": str(lab.json_file),
        "ansible_connection": "local",
        "ansible_python_interpreter": "{{ ansible_playbook_python }}",
        "byoc_genesys": {"api_url": gen["api_url"], "client_id": gen["client_id"], "client_secret": gen["client_secret"],
                         "ca_path": str(lab.ca.cert_file), "token_cache_dir": str(lab.dir / "genesys-tokens")},
        "byoc_acme": {"directory": pebble["directory"], "ca_file": pebble["ca_file"],
                      "root_url": pebble["management"] + "/roots/0", "contact": ["mailto:pki@example.test"],
                      "profile": "default"},
        "byoc_dns": {"provider": "rfc2136",
                     "options": {"server": bind["primary"]["host"], "port": bind["primary"]["port"],
                                 "key_name": bind["tsig"]["name"], "key_secret": bind["tsig"]["secret"],
                                 "key_algorithm": bind["tsig"]["algorithm"]},
                     # both authoritative servers when the secondary lags (--lag-secondary), so dns01_record waits
                     # for the one the ACME server asks
                     "nameservers": bind.get("lab_zone_nameservers") or [ns], "zone": LAB_ZONE},
        "byoc_store": {"backend": "filesystem", "path": str(lab.dir / "store")},
        "byoc_store_passphrase": "{{ lookup('ansible.builtin.env', 'BYOC_STORE_PASSPHRASE') }}",
        "byoc_verify_nameservers": [ns],
        "byoc_verify_trunk_timeout": 90,
        "byoc_rollout_serial": [1, 10, "25%"],
        "byoc_report_dir": "{{ lookup('ansible.builtin.env', 'BYOC_REPORT_DIR') or '" + str(lab.dir / "report") + "' }}",
    }
    _write_vars(gv / "all.yml", all_vars)
    for host, d in devices.items():
        v = {"byoc_certificate_group": d["group"], "byoc_certificate_names": [d["sip_tls"]["name"]],
             "byoc_vendor": {"ac": "audiocodes", "core": "ribbon_core", "edge": "ribbon_edge"}[d["kind"]],
             "byoc_sip_tls": {"name": d["sip_tls"]["name"], "port": d["sip_tls"]["port"]},
             "byoc_api_url": d["api_url"], "byoc_username": d["username"], "byoc_password": d["password"],
             "byoc_ca_path": d["ca_file"]}
        if d["kind"] == "ac":
            v["byoc_audiocodes_sip_interfaces"] = ["SIPInterface_0"]
        if d["kind"] == "core":
            v.update({"byoc_ribbon_nodes": [{k: n[k] for k in ("name", "host", "port", "host_key")} for n in d["nodes"]],
                      "byoc_ribbon_sftp_username": d["sftp_username"], "byoc_ribbon_sftp_password": d["sftp_password"],
                      "byoc_ribbon_pkcs12_passphrase": "{{ byoc_store_passphrase }}",
                      "byoc_ribbon_tls_profile": d["tls_profile"]})
        _write_vars(gv / f"{d['group']}.yml", v)
    return directory


def _write_vars(path: Path, data: dict) -> None:
    text = "---\n" + "".join(f"{k}: {_yaml(v)}\n" for k, v in data.items())
    _private(path, text.encode())
