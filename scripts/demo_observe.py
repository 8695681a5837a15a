"""make demo: look at every SBC's SIP-TLS endpoint the way a Genesys Edge does, independently of the playbooks.

Resolves each endpoint's name through the lab's DNS, handshakes trusting only the ACME CA's root (fetched from
Pebble's management port) with the Edge's client certificate, checks the name, sends one SIP OPTIONS, and prints
the served certificate's expiry; then prints each trunk's state as the Genesys emulator computes it (real TLS from
its Edges). Test-side only: it reads lab.json and uses the lab's control endpoints, which the product never calls.
"""
from __future__ import annotations

import datetime
import json
import ssl
import sys
import urllib.request
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "tests" / "lab"))

import dns.message  # noqa: E402
import dns.query  # noqa: E402
import dns.rdatatype  # noqa: E402
from cryptography import x509  # noqa: E402

from emulators.common.siptls import sip_options_probe  # noqa: E402


def fetch(url: str, ca_file: str) -> bytes:
    with urllib.request.urlopen(url, context=ssl.create_default_context(cafile=ca_file), timeout=30) as resp:
        return resp.read()


def main(lab_json: str, when: str) -> int:
    lab = json.loads(Path(lab_json).read_text())
    c, ca_file = lab["components"], lab["tls"]["ca_file"]
    root = fetch(f"{c['pebble']['management']}/roots/0", ca_file).decode()
    edge = c["genesys"]["edges"][0]
    client_cert, client_key = Path(edge["client_cert_file"]).read_text(), Path(edge["client_key_file"]).read_text()
    primary = c["bind"]["primary"]
    endpoints = {name: d["sip_tls"] for name, d in c["audiocodes"]["devices"].items()}
    endpoints.update({"ribbon-core": c["ribbon_core"]["sip_tls"], "ribbon-edge": c["ribbon_edge"]["sip_tls"]})
    print(f"    {when}: every SIP-TLS endpoint as an Edge sees it (by name, trusting only the ACME root)")
    bad = 0
    for label, sip in endpoints.items():
        answer = dns.query.tcp(dns.message.make_query(sip["name"], dns.rdatatype.A), primary["host"],
                               port=primary["port"], timeout=5)
        addresses = [r.to_text() for rr in answer.answer if rr.rdtype == dns.rdatatype.A for r in rr]
        served = ssl.get_server_certificate((sip["host"], sip["port"]))
        not_after = x509.load_pem_x509_certificate(served.encode()).not_valid_after_utc
        left = not_after - datetime.datetime.now(datetime.timezone.utc)
        probe = sip_options_probe(addresses[0] if addresses else sip["host"], sip["port"], cadata=root,
                                  server_name=sip["name"], client_chain_pem=client_cert, client_key_pem=client_key)
        verdict = f"OK, SIP {probe['status']}" if probe["ok"] else f"REFUSED at {probe['stage']}: {probe['error']}"
        bad += not probe["ok"]
        state = "EXPIRED" if left.total_seconds() < 0 else f"{left.days} days left"
        print(f"    {label:<12} {sip['name']}:{sip['port']:<6} serves a certificate valid until "
              f"{not_after:%Y-%m-%d %H:%M} UTC ({state}); {verdict}")
    state = json.loads(fetch(f"{c['genesys']['control_url']}/state", ca_file))
    edges = {e.get("id"): e.get("name", e.get("id")) for e in state.get("edges", [])}
    names = {sip["name"] for sip in endpoints.values()}
    for trunk in state.get("trunks", []):
        if not any(p.split(":")[0] in names for p in trunk["proxies"]):
            continue  # the lab's own responders, not the example fleet
        health = "connected" if trunk["connected"] else "DOWN"
        print(f"    trunk {trunk['name']} on {edges.get(trunk['edge_id'], trunk['edge_id'])} -> "
              f"{', '.join(trunk['proxies'])}: {health}")
    return 1 if bad and when == "after" else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1], sys.argv[2]))
