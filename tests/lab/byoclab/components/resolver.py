"""Lab parts that let the ACME servers see every DNS provider's zones, as on the Internet:

=================  ==============================================================================================
part               what it is
=================  ==============================================================================================
``dnsbridge``      a small authoritative DNS server for ``r53.test`` (records read from moto's Route 53 API),
                   ``cf.test`` (records read from the Cloudflare emulator's API) and ``az.test`` (the Azure DNS
                   emulator's record sets). It stands in for the providers' own public nameservers, which serve
                   whatever the API holds.
``resolver``       a recursive BIND 9 that forwards each lab zone to the server authoritative for it: the ``bind``
                   primary (example.test, corp.test, acme-dns.corp.test), PowerDNS (pdns.test) and the bridge
                   (r53.test, cf.test). It caches nothing, so a new challenge value is seen at once.
``pebble-dns``     Pebble 2.10 (fast, like ``pebble``) whose VA resolves through ``resolver``, so DNS-01 can be
                   validated in any provider's zone.
=================  ==============================================================================================

Facts: acme-and-dns.md §7.2/§7.8 (BIND on loopback, named -g, forwarders with a port), §7.6 (PowerDNS serves its
zone on its own port), §7.7 (moto: Route 53 API only, no DNS service; the TXT values come back as quoted
strings), §5.1 (Pebble ``-dnsserver``; 2.10 asks over TCP only, so both the resolver and the bridge serve TCP).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import socketserver
import subprocess
import sys
import threading
import urllib.parse
import urllib.request
from pathlib import Path

from ..core import LOOPBACK, REPO, LabError, free_port, tail
from .pebble import Pebble

BRIDGE_NS_TTL = 60


# -- the bridge server (runs as its own process: python -m byoclab.components.resolver --serve CONFIG) -----------
class _Backends:
    def __init__(self, config: dict) -> None:
        self.config = config

    def zone_of(self, name: str) -> str | None:
        for zone in sorted(self.config["zones"], key=len, reverse=True):
            if name == zone or name.endswith("." + zone):
                return zone
        return None

    def txt(self, zone: str, name: str) -> list[str]:
        """TXT rdata texts (quoted) for ``name`` as the provider's API holds them now."""
        spec = self.config["zones"][zone]
        if spec["kind"] == "route53":
            import boto3

            client = boto3.client("route53", endpoint_url=spec["endpoint_url"], region_name=spec["region"],
                                  aws_access_key_id=spec["access_key"], aws_secret_access_key=spec["secret_key"])
            resp = client.list_resource_record_sets(HostedZoneId=spec["hosted_zone_id"], StartRecordName=name + ".",
                                                    StartRecordType="TXT", MaxItems="1")
            out: list[str] = []
            for rrset in resp.get("ResourceRecordSets", []):
                if rrset["Name"].rstrip(".").lower() == name and rrset["Type"] == "TXT":
                    # acme-and-dns.md §7.7: Route 53 keeps TXT values as quoted character strings.
                    out += [r["Value"] for r in rrset.get("ResourceRecords", [])]
            return out
        if spec["kind"] == "azure":
            # The Azure emulator's record sets, read through its control API (TEST-ONLY; not the ARM API, so that the
            # bridge's reads neither need a token nor show in the ARM request log that tests count). Azure DNS
            # serves each TXT record's strings as separate character strings.
            import ssl

            ctx = ssl.create_default_context(cafile=spec["ca_file"])
            with urllib.request.urlopen(f"{spec['control_url']}/state", context=ctx, timeout=5) as resp:
                state = json.loads(resp.read())
            rs = state["zones"].get(zone, {}).get("records", {}).get(name)
            return [" ".join(_quoted(part) for part in strings) for strings in (rs or {}).get("strings", [])]
        # Cloudflare API v4: GET /zones/{id}/dns_records?type=TXT&name=<name> with the bearer token.
        query = urllib.parse.urlencode({"type": "TXT", "name": name, "per_page": 100})
        req = urllib.request.Request(f"{spec['api_url']}/zones/{spec['zone_id']}/dns_records?{query}",
                                     headers={"Authorization": f"Bearer {spec['api_token']}"})
        with urllib.request.urlopen(req, timeout=5) as resp:  # plain http on loopback (lab emulator)
            body = json.loads(resp.read())
        texts = []
        for rec in body.get("result") or []:
            if rec.get("type") == "TXT" and rec.get("name", "").rstrip(".").lower() == name:
                content = rec.get("content", "")
                texts.append(content if content.startswith('"') else json.dumps(content))
        return texts


def _quoted(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _answer(backends: _Backends, wire: bytes) -> bytes:
    import dns.flags
    import dns.message
    import dns.rcode
    import dns.rdataclass
    import dns.rdatatype
    import dns.rrset

    query = dns.message.from_wire(wire)
    resp = dns.message.make_response(query)
    resp.flags |= dns.flags.AA
    q = query.question[0]
    name = q.name.to_text().rstrip(".").lower()
    zone = backends.zone_of(name)
    if zone is None:
        resp.set_rcode(dns.rcode.REFUSED)
        return resp.to_wire()
    soa = dns.rrset.from_text(zone + ".", BRIDGE_NS_TTL, "IN", "SOA",
                              f"ns.{zone}. hostmaster.{zone}. 1 3600 600 86400 0")
    try:
        if q.rdtype == dns.rdatatype.SOA and name == zone:
            resp.answer.append(soa)
        elif q.rdtype == dns.rdatatype.NS and name == zone:
            resp.answer.append(dns.rrset.from_text(zone + ".", BRIDGE_NS_TTL, "IN", "NS", f"ns.{zone}."))
        elif q.rdtype == dns.rdatatype.A and name == f"ns.{zone}":
            resp.answer.append(dns.rrset.from_text(name + ".", BRIDGE_NS_TTL, "IN", "A", LOOPBACK))
        elif q.rdtype == dns.rdatatype.TXT:
            texts = backends.txt(zone, name)
            if texts:
                resp.answer.append(dns.rrset.from_text_list(name + ".", 0, "IN", "TXT", texts))
            else:
                resp.authority.append(soa)
        else:
            resp.authority.append(soa)
    except Exception as exc:  # noqa: BLE001 - a backend failure is a SERVFAIL, and logged
        print(f"dnsbridge: {name} {dns.rdatatype.to_text(q.rdtype)}: {exc}", flush=True)
        resp.set_rcode(dns.rcode.SERVFAIL)
    print(f"dnsbridge: {name} {dns.rdatatype.to_text(q.rdtype)} -> {len(resp.answer)} answer(s)", flush=True)
    return resp.to_wire()


def serve(config_file: str) -> None:
    config = json.loads(Path(config_file).read_text())
    backends = _Backends(config)

    class UDP(socketserver.BaseRequestHandler):
        def handle(self):
            data, sock = self.request
            sock.sendto(_answer(backends, data), self.client_address)

    class TCP(socketserver.StreamRequestHandler):
        def handle(self):
            while True:
                head = self.rfile.read(2)
                if len(head) < 2:
                    return
                data = self.rfile.read(int.from_bytes(head, "big"))
                out = _answer(backends, data)
                self.wfile.write(len(out).to_bytes(2, "big") + out)

    class ThreadedUDP(socketserver.ThreadingMixIn, socketserver.UDPServer):
        daemon_threads = True

    class ThreadedTCP(socketserver.ThreadingMixIn, socketserver.TCPServer):
        daemon_threads = True
        allow_reuse_address = True

    port = int(config["port"])
    udp, tcp = ThreadedUDP((LOOPBACK, port), UDP), ThreadedTCP((LOOPBACK, port), TCP)
    threading.Thread(target=udp.serve_forever, daemon=True).start()
    print(f"dnsbridge: serving {', '.join(config['zones'])} on {LOOPBACK}:{port}", flush=True)
    tcp.serve_forever()


# -- lab parts ---------------------------------------------------------------------------------------------------
def _soa_ok(port: int, zone: str) -> bool:
    import dns.message
    import dns.query
    import dns.rcode
    import dns.rdatatype

    resp = dns.query.tcp(dns.message.make_query(zone, dns.rdatatype.SOA), LOOPBACK, port=port, timeout=1.0)
    return resp.rcode() == dns.rcode.NOERROR and any(r.rdtype == dns.rdatatype.SOA for r in resp.answer)


class DnsBridge:
    name = "dnsbridge"
    requires = ("moto", "cloudflare", "azure")

    def start(self, lab) -> dict:
        moto, cf, az = lab.components["moto"], lab.components["cloudflare"], lab.components["azure"]
        work = lab.workdir(self.name)
        port = free_port(udp_too=True)
        config = {"port": port, "zones": {
            moto["zone"]: {"kind": "route53", "endpoint_url": moto["endpoint_url"], "region": moto["region"],
                           "access_key": moto["access_key"], "secret_key": moto["secret_key"],
                           "hosted_zone_id": moto["hosted_zone_id"]},
            cf["zone"]: {"kind": "cloudflare", "api_url": cf["api_url"], "api_token": cf["api_token"],
                         "zone_id": cf["zone_id"]},
            az["zone"]: {"kind": "azure", "control_url": az["control_url"], "ca_file": az["ca_file"]},
        }}
        config_file = work / "dnsbridge.json"
        fd = os.open(config_file, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as fh:
            json.dump(config, fh)
        proc = lab.spawn(self.name, [sys.executable, "-m", "byoclab.components.resolver", "--serve", str(config_file)],
                         cwd=REPO / "tests" / "lab")
        lab.wait_ready(self.name, proc, lambda: all(_soa_ok(port, z) for z in config["zones"]), timeout=30)
        return {
            "summary": f"DNS bridge 127.0.0.1:{port} serving {moto['zone']} (moto Route 53), {cf['zone']} (Cloudflare"
                       f" emulator) and {az['zone']} (Azure DNS emulator)",
            "dns": {"host": LOOPBACK, "port": port},
            "zones": sorted(config["zones"]),
        }


class Resolver:
    name = "resolver"
    requires = ("bind", "powerdns", "dnsbridge")

    def start(self, lab) -> dict:
        bind, pdns, bridge = lab.components["bind"], lab.components["powerdns"], lab.components["dnsbridge"]
        work = lab.workdir(self.name)
        if (work / "named.conf").exists():
            shutil.rmtree(work)
            work.mkdir()
        port = free_port(udp_too=True)
        forwards = {z: bind["primary"] for z in bind["zones"].values()}
        forwards[pdns["zone"]] = pdns["dns"]
        for z in bridge["zones"]:
            forwards[z] = bridge["dns"]
        zones = "".join(
            f'zone "{z}" {{ type forward; forward only; forwarders {{ {a["host"]} port {a["port"]}; }}; }};\n'
            for z, a in sorted(forwards.items()))
        # Recursion for loopback only; no DNSSEC validation (lab zones are unsigned); nothing cached
        # (max-cache-ttl/max-ncache-ttl 0) so that a TXT record is seen as soon as the authoritative server has it.
        (work / "named.conf").write_text(f"""options {{
  directory "{work}";
  pid-file "{work}/named.pid";
  session-keyfile "{work}/session.key";
  managed-keys-directory "{work}";
  listen-on port {port} {{ 127.0.0.1; }};
  listen-on-v6 {{ none; }};
  recursion yes;
  allow-recursion {{ 127.0.0.1; }};
  allow-query {{ 127.0.0.1; }};
  dnssec-validation no;
  max-cache-ttl 0;
  max-ncache-ttl 0;
  querylog yes;
}};
controls {{ }};
{zones}""")
        check = subprocess.run(["named-checkconf", str(work / "named.conf")], capture_output=True, text=True,
                               check=False)
        if check.returncode != 0:
            raise LabError(f"resolver: named-checkconf rejected the configuration:\n{check.stdout}{check.stderr}")
        named = shutil.which("named") or "/usr/sbin/named"
        proc = lab.spawn(self.name, [named, "-g", "-4", "-n", "1", "-c", str(work / "named.conf")])
        lab.wait_ready(self.name, proc, lambda: all(_soa_ok(port, z) for z in forwards), timeout=30)
        if "address in use" in lab.log_file(self.name).read_text(errors="replace").lower():
            raise LabError(f"resolver could not bind its port:\n{tail(lab.log_file(self.name))}")
        return {
            "summary": f"recursive BIND 127.0.0.1:{port} forwarding {', '.join(sorted(forwards))}",
            "dns": {"host": LOOPBACK, "port": port},
            "forwards": {z: f"{a['host']}:{a['port']}" for z, a in sorted(forwards.items())},
        }


class _ResolverView:
    """The lab as Pebble.start sees it, with the resolver in the place of the bind primary (Pebble takes its
    ``-dnsserver`` from ``components['bind']['primary']``)."""

    def __init__(self, lab) -> None:
        self._lab = lab

    def __getattr__(self, name):
        return getattr(self._lab, name)

    @property
    def components(self) -> dict:
        comps = dict(self._lab.components)
        comps["bind"] = {"primary": self._lab.components["resolver"]["dns"]}
        return comps


class PebbleViaResolver(Pebble):
    requires = ("resolver",)

    def start(self, lab) -> dict:
        desc = super().start(_ResolverView(lab))
        desc["summary"] += " (through the resolver: every provider's zones)"
        return desc


def components() -> list:
    return [DnsBridge(), Resolver(), PebbleViaResolver("pebble-dns", "2.10", fast=True)]


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description="the lab's DNS bridge for Route 53 (moto) and Cloudflare zones")
    parser.add_argument("--serve", required=True, help="bridge configuration (JSON)")
    serve(parser.parse_args().serve)
