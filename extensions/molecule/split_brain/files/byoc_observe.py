# Copyright (c) 2026, byoc.certificates contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""TEST-ONLY observer for the Molecule scenarios split_brain, rollback and check_mode (never used by the product).

It looks at the lab independently of the playbook's own claims and prints JSON on stdout:

  probe HOST...        a fresh SIP-TLS handshake to each inventory host's endpoint BY NAME (resolved through the lab
                       DNS), trusting exactly the REMOTE CAs read from the org's API, presenting an Edge's client
                       certificate (signed by the org's MANAGED CA); one OPTIONS request
  members HOST         what each HA member holds for the endpoint, read from each member: both AudioCodes units'
                       running configuration, both Ribbon Core nodes' files (opened as PKCS#12), the Edge's slot 1
  trunks               the org's trunks after the Edges dropped their kept sessions and two fresh health rounds
  snapshot             request logs of every device and of the org, Pebble's new-order count, the store's digest
  split-core           TEST-ONLY fault: node b's file of the bound PKI object is replaced by the lab's initial
                       certificate (a node restored from an old backup, or a hand upload to one node); sbc-apis.md B2,
                       B5: files do not replicate between the nodes, so nothing repairs this by itself
  switchover-core      a Ribbon Core switchover (the standby node becomes active and loads from ITS OWN disk, E6)
  roots HOST           the trusted roots of the context that serves the AudioCodes SIP Interface (fingerprints)
  org-trusts PEM...    for each PEM file: is its (first) certificate among the org's REMOTE CAs, read from the API

Environment: BYOC_LAB_JSON (the lab), BYOC_STORE_PASSPHRASE (the PKCS#12 passphrase of the lab inventory),
BYOC_STORE_DIR (the store, for snapshot).
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import re
import ssl
import sys
import urllib.parse
import urllib.request
from pathlib import Path

REPO = Path(__file__).resolve().parents[4]
sys.path.insert(0, str(REPO / "tests" / "lab"))

import dns.message  # noqa: E402  pylint: disable=wrong-import-position
import dns.query  # noqa: E402  pylint: disable=wrong-import-position
import dns.rdatatype  # noqa: E402  pylint: disable=wrong-import-position
from cryptography import x509  # noqa: E402  pylint: disable=wrong-import-position
from cryptography.hazmat.primitives import hashes, serialization  # noqa: E402  pylint: disable=wrong-import-position
from cryptography.hazmat.primitives.serialization import pkcs12  # noqa: E402  pylint: disable=wrong-import-position

from emulators.common.siptls import sip_options_probe  # noqa: E402  pylint: disable=wrong-import-position,import-error

LAB = json.loads(Path(os.environ["BYOC_LAB_JSON"]).read_text(encoding="utf-8"))
C = LAB["components"]
CA_FILE = LAB["tls"]["ca_file"]
AC = {"mediant_ha": "mediant-ha", "mediant_sa": "mediant-sa"}


def call(url: str, *, method: str = "GET", body=None, headers: dict | None = None, form=None, ca_file: str = CA_FILE):
    data, hdrs = None, dict(headers or {})
    if body is not None:
        data, hdrs["Content-Type"] = json.dumps(body).encode(), "application/json"
    elif form is not None:
        data, hdrs["Content-Type"] = urllib.parse.urlencode(form).encode(), "application/x-www-form-urlencoded"
    req = urllib.request.Request(url, data=data, method=method, headers=hdrs)
    with urllib.request.urlopen(req, context=ssl.create_default_context(cafile=ca_file), timeout=120) as resp:
        text = resp.read()
        return json.loads(text) if text else None


def sip_of(host: str) -> dict:
    if host in AC:
        return C["audiocodes"]["devices"][AC[host]]["sip_tls"]
    return C["ribbon_core" if host == "sbc_core" else "ribbon_edge"]["sip_tls"]


def org_remote_pem() -> str:
    g = C["genesys"]
    basic = base64.b64encode(f"{g['client_id']}:{g['client_secret']}".encode()).decode()
    token = call(f"{g['api_url']}/oauth/token", method="POST", form={"grant_type": "client_credentials"},
                 headers={"Authorization": f"Basic {basic}"})
    listing = call(f"{g['api_url']}/api/v2/telephony/providers/edges/certificateauthorities",
                   headers={"Authorization": f"Bearer {token['access_token']}"})
    return "\n".join(ca["certificate"] for ca in listing["entities"] if ca["type"] == "REMOTE")


def resolve(name: str) -> str:
    b = C["bind"]["primary"]
    resp = dns.query.tcp(dns.message.make_query(name, dns.rdatatype.A), b["host"], port=b["port"], timeout=5)
    return [r.to_text() for rr in resp.answer if rr.rdtype == dns.rdatatype.A for r in rr][0]


def probe(hosts: list[str]) -> dict:
    edge = C["genesys"]["edges"][0]
    chain = Path(edge["client_cert_file"]).read_text(encoding="ascii")
    key = Path(edge["client_key_file"]).read_text(encoding="ascii")
    trust = org_remote_pem()
    out = {}
    for host in hosts:
        s = sip_of(host)
        out[host] = sip_options_probe(resolve(s["name"]), s["port"], cadata=trust, server_name=s["name"],
                                      client_chain_pem=chain, client_key_pem=key)
    return out


def core_state() -> dict:
    return call(f"{C['ribbon_core']['control_url']}/state")


def bound_core_file() -> str:
    state = core_state()
    return state["certificates"][state["profiles"][state["sip_profile"]]["serverCertName"]]["fileName"]


def open_p12(data: bytes):
    for pw in (os.environ.get("BYOC_STORE_PASSPHRASE", ""), C["ribbon_core"]["initial"]["passphrase"]):
        try:
            return pkcs12.load_key_and_certificates(data, pw.encode() or None)
        except ValueError:
            continue
    return None


def members(host: str) -> dict:
    if host in AC:
        dev = C["audiocodes"]["devices"][AC[host]]
        state = call(f"{dev['control_url']}/state", ca_file=dev["ca_file"])
        out = {}
        for unit in state["units"]:
            run = unit["running"]
            bound = run["sip_interfaces"]["0"]["tls_context"] or "default"
            ctx = next(c for c in run["contexts"].values() if c["name"] == bound)
            out[f"unit {unit['id']}"] = ctx["certificate_sha256"] if ctx["key_valid"] else f"no usable key in {bound}"
        return out
    if host == "sbc_core":
        file_name = bound_core_file()
        out = {}
        for node in C["ribbon_core"]["nodes"]:
            path = Path(node["root"]) / file_name
            opened = open_p12(path.read_bytes()) if path.is_file() else None
            out[f"node {node['name']}"] = (opened[1].fingerprint(hashes.SHA256()).hex() if opened
                                           else "missing" if not path.is_file() else "unreadable")
        return out
    state = call(f"{C['ribbon_edge']['control_url']}/state")
    return {"unit": state["certificates"]["1"]["fingerprint"]}


def roots(host: str) -> list:
    dev = C["audiocodes"]["devices"][AC[host]]
    state = call(f"{dev['control_url']}/state", ca_file=dev["ca_file"])
    run = state["units"][0]["running"] if state["units"][0]["active"] else state["units"][1]["running"]
    bound = run["sip_interfaces"]["0"]["tls_context"] or "default"
    return next(c for c in run["contexts"].values() if c["name"] == bound)["trusted_roots_sha256"]


def trunks() -> dict:
    g = C["genesys"]
    call(f"{g['control_url']}/edge-sessions/drop", method="POST", body={})
    state = call(f"{g['control_url']}/health/wait", method="POST", body={"rounds": 2, "timeout": 90})
    out: dict = {}
    for t in state["trunks"]:
        if t["name"].startswith("BYOC "):
            out.setdefault(t["name"][5:], []).append(t["connected"])
    return out


def snapshot() -> dict:
    """Everything a run could have written to, as counts and digests."""
    logs: dict = {}
    for host, name in AC.items():
        dev = C["audiocodes"]["devices"][name]
        logs[host] = [[r["method"], r["path"]] for r in call(f"{dev['control_url']}/requests", ca_file=dev["ca_file"])]
    for host, part in (("sbc_core", "ribbon_core"), ("sbc_edge", "ribbon_edge")):
        logs[host] = [[m, p] for m, p, *_rest in call(f"{C[part]['control_url']}/requests")]
    genesys = [[r["method"], r["path"]] for r in call(f"{C['genesys']['control_url']}/requests")["requests"]]
    orders = len(re.findall(r"POST /order-plz", (Path(LAB["dir"]) / "logs" / "pebble.log").read_text(errors="replace")))
    store = Path(os.environ.get("BYOC_STORE_DIR") or Path(LAB["dir"]) / "store")
    digest = hashlib.sha256()
    files = 0
    for p in sorted(store.rglob("*")) if store.is_dir() else []:
        if p.is_file():
            files += 1
            digest.update(str(p.relative_to(store)).encode() + b"\0" + p.read_bytes())
    core_files = {n["name"]: n["files"] for n in core_state()["nodes"]}
    return {"requests": logs, "genesys": genesys, "orders": orders, "store_files": files,
            "store_sha256": digest.hexdigest(), "core_files": core_files}


def split_core() -> dict:
    """Replace node b's copy of the bound object's file with the lab's initial certificate and key, re-wrapped
    with the inventory's PKCS#12 passphrase (so the file opens: a readable, but different, certificate)."""
    core = C["ribbon_core"]
    node_a, node_b = core["nodes"][0], core["nodes"][1]
    initial = Path(node_a["root"]) / f"{core['initial']['name']}.p12"
    key, cert, _extra = pkcs12.load_key_and_certificates(initial.read_bytes(), core["initial"]["passphrase"].encode())
    data = pkcs12.serialize_key_and_certificates(
        b"split", key, cert, None,
        serialization.BestAvailableEncryption(os.environ["BYOC_STORE_PASSPHRASE"].encode()))
    file_name = bound_core_file()
    (Path(node_b["root"]) / file_name).write_bytes(data)
    return {"file": file_name, "node": node_b["name"], "now": members("sbc_core")}


def main(argv: list[str]) -> int:
    cmd, args = argv[0], argv[1:]
    if cmd == "probe":
        out = probe(args)
    elif cmd == "members":
        out = members(args[0])
    elif cmd == "roots":
        out = roots(args[0])
    elif cmd == "org-trusts":
        have = {c.fingerprint(hashes.SHA256()).hex() for c in x509.load_pem_x509_certificates(org_remote_pem().encode())}
        out = {f: x509.load_pem_x509_certificate(Path(f).read_bytes()).fingerprint(hashes.SHA256()).hex() in have
               for f in args}
    elif cmd == "trunks":
        out = trunks()
    elif cmd == "snapshot":
        out = snapshot()
    elif cmd == "split-core":
        out = split_core()
    elif cmd == "switchover-core":
        call(f"{C['ribbon_core']['control_url']}/switchover", method="POST", body={})
        out = {"active": next(n["name"] for n in core_state()["nodes"] if n["role"] == "active")}
    else:
        print(f"unknown command {cmd}", file=sys.stderr)
        return 2
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
