"""A forced failure at every deploy step of every vendor (issue 11, Acceptance: "No HA pair is ever left serving two
different certificates. A test forces a failure at each deploy step to prove it").

One private lab for the file (bind, pebble, pebble-eab, genesys, audiocodes, ribbon_core, ribbon_edge). The fleet of
inventory.example/lab is rotated once per group (at the group's first row), so its trunks are connected on Pebble's
chain. Then each row:

1. injects one fault through the emulator's TEST-ONLY ``/_control`` API, so that exactly one deploy step fails:
   - AudioCodes (the HA pair, staged): private key, certificate, trusted roots, re-bind, save;
   - Ribbon SBC Core (the HA pair): the PKCS#12 to node a, to node b (SFTP read-only), the PKI object, the TLS
     profile re-point;
   - Ribbon SBC Edge: the CA import, the server certificate import;
2. runs ``rotate.yml --limit <group> -e byoc_force=true`` and expects it to fail naming the group, the device and
   the step;
3. reads every member back (both AudioCodes units' running configuration, both Core nodes' files opened as
   PKCS#12, the Edge's slot 1): the members agree, and the endpoint still serves the certificate it served before,
   which an independent SIP-TLS client (resolving the trunk name through the lab DNS, trusting exactly the REMOTE
   CAs read from the org's API, presenting an Edge certificate) accepts;
4. runs ``rotate.yml --limit <group>`` again without the fault: the rollback was recorded in the store (current =
   what the members serve again; the failure counts for the group's backoff), so the run succeeds and changes
   nothing, the members still agree, the client accepts the endpoint and the group's trunks are connected.

The Edge rows take their certificates from a second ACME CA (``pebble-eab``), so that the CA import step has a CA to
import (on a converged unit Pebble's chain is already there).
"""

from __future__ import annotations

import base64
import json
import re
import shutil
import ssl
import subprocess
import sys
import tempfile
import urllib.parse
import urllib.request
from pathlib import Path

import dns.message
import dns.query
import dns.rdatatype
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.serialization import pkcs12

from byoc_harness import REPO, ModuleRunner, ansible_env  # noqa: E402  (on sys.path via conftest)
from byoclab.components import select  # noqa: E402
from byoclab.core import Lab  # noqa: E402
from emulators.common.siptls import sip_options_probe  # noqa: E402

PARTS = ["bind", "pebble", "pebble-eab", "genesys", "audiocodes", "ribbon_core", "ribbon_edge"]
INVENTORY = REPO / "inventory.example" / "lab"
PASSPHRASE = "deploy-faults-passphrase-1"  # the store's, and (lab inventory) the Ribbon Core PKCS#12 passphrase
GROUP = {"mediant_ha": "grp_mediant_ha", "sbc_core": "grp_sbc_core", "sbc_edge": "grp_sbc_edge"}


def call(url: str, ca_file: str, *, method: str = "GET", body=None, headers: dict | None = None, form=None):
    data, hdrs = None, dict(headers or {})
    if body is not None:
        data, hdrs["Content-Type"] = json.dumps(body).encode(), "application/json"
    elif form is not None:
        data, hdrs["Content-Type"] = urllib.parse.urlencode(form).encode(), "application/x-www-form-urlencoded"
    req = urllib.request.Request(url, data=data, method=method, headers=hdrs)
    with urllib.request.urlopen(req, context=ssl.create_default_context(cafile=ca_file), timeout=90) as resp:
        text = resp.read()
        return json.loads(text) if text else None


def sha256(cert: x509.Certificate) -> str:
    return cert.fingerprint(hashes.SHA256()).hex()


class Fleet:
    def __init__(self, lab: Lab, directory: Path):
        self.lab, self.dir, self.c = lab, directory, lab.components
        self.ca_file = str(lab.ca.cert_file)
        self.store = directory / "store"
        self.rotated: set = set()
        self.report_dir = directory / "report"
        ac = self.c["audiocodes"]["devices"]["mediant-ha"]
        self.sip = {"mediant_ha": ac["sip_tls"], "sbc_core": self.c["ribbon_core"]["sip_tls"],
                    "sbc_edge": self.c["ribbon_edge"]["sip_tls"]}
        edge = self.c["genesys"]["edges"][0]
        self.edge_cert = Path(edge["client_cert_file"]).read_text()
        self.edge_key = Path(edge["client_key_file"]).read_text()

    def playbook(self, *args: str, extra: dict | None = None) -> subprocess.CompletedProcess:
        cmd = [str(Path(sys.executable).parent / "ansible-playbook"), "-i", str(INVENTORY),
               str(REPO / "playbooks" / "rotate.yml"), *args,
               "-e", json.dumps({"byoc_store": {"backend": "filesystem", "path": str(self.store)},
                                 "byoc_verify_trunk_timeout": 20, **(extra or {})})]
        env = ansible_env({"BYOC_LAB_JSON": str(self.lab.json_file), "BYOC_STORE_PASSPHRASE": PASSPHRASE,
                           "BYOC_REPORT_DIR": str(self.report_dir), "ANSIBLE_STDOUT_CALLBACK": "default"})
        return subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=2400, cwd=REPO, check=False)

    def clear_backoff(self, group: str) -> None:
        """An earlier row's failure put the group in its failure backoff (recorded with the rollback); an operator who
        fixed the cause clears it with certificate_store, so the next forced run orders again."""
        args = {"backend": "filesystem", "path": str(self.store), "group": group, "passphrase": PASSPHRASE,
                "clear_backoff": True}
        res = ModuleRunner()("certificate_store", args)
        assert not res.get("failed"), res

    def eab_acme(self) -> dict:
        """The byoc_acme of the second ACME CA (pebble-eab: its own roots, external account binding)."""
        p = self.c["pebble-eab"]
        return {"directory": p["directory"], "ca_file": p["ca_file"], "root_url": f"{p['management']}/roots/0",
                "contact": ["mailto:pki@example.test"], "profile": "default", "eab": p["eab"]}

    # ---- independent observers ------------------------------------------------------------------------------
    def org_remote_pem(self) -> str:
        """The REMOTE CAs of the org, read from its API (what the Edges trust), never from a local file."""
        g = self.c["genesys"]
        basic = base64.b64encode(f"{g['client_id']}:{g['client_secret']}".encode()).decode()
        token = call(f"{g['api_url']}/oauth/token", self.ca_file, method="POST",
                     form={"grant_type": "client_credentials"}, headers={"Authorization": f"Basic {basic}"})
        listing = call(f"{g['api_url']}/api/v2/telephony/providers/edges/certificateauthorities", self.ca_file,
                       headers={"Authorization": f"Bearer {token['access_token']}"})
        return "\n".join(ca["certificate"] for ca in listing["entities"] if ca["type"] == "REMOTE")

    def resolve(self, name: str) -> str:
        b = self.c["bind"]["primary"]
        resp = dns.query.tcp(dns.message.make_query(name, dns.rdatatype.A), b["host"], port=b["port"], timeout=5)
        return [r.to_text() for rr in resp.answer if rr.rdtype == dns.rdatatype.A for r in rr][0]

    def probe(self, host: str) -> dict:
        """A fresh SIP-TLS handshake by the trunk name, trusting exactly the org's REMOTE CAs, as an Edge."""
        s = self.sip[host]
        return sip_options_probe(self.resolve(s["name"]), s["port"], cadata=self.org_remote_pem(),
                                 server_name=s["name"], client_chain_pem=self.edge_cert, client_key_pem=self.edge_key)

    def members(self, host: str) -> dict:
        """What each member of the host holds for its SIP-TLS endpoint, read from each member."""
        if host == "mediant_ha":
            dev = self.c["audiocodes"]["devices"]["mediant-ha"]
            state = call(f"{dev['control_url']}/state", dev["ca_file"])
            out = {}
            for unit in state["units"]:
                run = unit["running"]
                bound = run["sip_interfaces"]["0"]["tls_context"] or "default"
                ctx = next(c for c in run["contexts"].values() if c["name"] == bound)
                out[f"unit {unit['id']}"] = ctx["certificate_sha256"] if ctx["key_valid"] else f"no key ({bound})"
            return out
        if host == "sbc_core":
            core = self.c["ribbon_core"]
            state = call(f"{core['control_url']}/state", self.ca_file)
            name = state["profiles"][state["sip_profile"]]["serverCertName"]
            file_name = state["certificates"][name]["fileName"]
            out = {}
            for node in core["nodes"]:
                path = Path(node["root"]) / file_name
                out[f"node {node['name']}"] = self._p12(path)
            return out
        edge = self.c["ribbon_edge"]
        state = call(f"{edge['control_url']}/state", self.ca_file)
        return {"unit": state["certificates"]["1"]["fingerprint"]}

    def _p12(self, path: Path) -> str:
        if not path.is_file():
            return "missing"
        for pw in (PASSPHRASE, self.c["ribbon_core"]["initial"]["passphrase"]):
            try:
                _key, cert, _extra = pkcs12.load_key_and_certificates(path.read_bytes(), pw.encode())
            except ValueError:
                continue
            return sha256(cert)
        return "unreadable"

    def trunks_up(self, host: str) -> list:
        g = self.c["genesys"]
        call(f"{g['control_url']}/edge-sessions/drop", self.ca_file, method="POST", body={})
        state = call(f"{g['control_url']}/health/wait", self.ca_file, method="POST", body={"rounds": 2, "timeout": 60})
        return [t["connected"] for t in state["trunks"] if t["name"] == f"BYOC {host}"]

    def report_fingerprint(self, group: str) -> str | None:
        """The fingerprint report.json gives for the group's member (what the run read back from the device)."""
        report = json.loads((self.report_dir / "report.json").read_text())
        g = next(x for x in report["groups"] if x["group"] == group)
        return next((m.get("fingerprint") for m in g["members"]), None)


@pytest.fixture(scope="module")
def fleet():
    directory = Path(tempfile.mkdtemp(prefix="byoc-faults-"))
    lab = Lab(directory / "lab")
    try:
        lab.up(select(PARTS))
        f = Fleet(lab, directory)
        env = ansible_env({"BYOC_LAB_JSON": str(lab.json_file), "ANSIBLE_STDOUT_CALLBACK": "default"})
        proc = subprocess.run([str(Path(sys.executable).parent / "ansible-playbook"), "-i", str(INVENTORY),
                               str(REPO / "playbooks" / "demo_lab.yml")], capture_output=True, text=True, env=env,
                              timeout=300, cwd=REPO, check=False)
        assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr
        yield f
    finally:
        lab.down()
        shutil.rmtree(directory, ignore_errors=True)


# ---- the faults ------------------------------------------------------------------------------------------------
def ac_fault(method: str, path: str):
    def inject(f: Fleet) -> None:
        dev = f.c["audiocodes"]["devices"]["mediant-ha"]
        call(f"{dev['control_url']}/faults", dev["ca_file"], method="POST",
             body={"method": method, "path": path, "status": 400, "count": 1,
                   "description": "Operation failed (injected by test_rotate_deploy_faults)"})
    return inject


def ac_consumed(f: Fleet) -> bool:
    dev = f.c["audiocodes"]["devices"]["mediant-ha"]
    return not call(f"{dev['control_url']}/state", dev["ca_file"])["faults"]


def core_sftp(node: str, readonly: bool):
    def inject(f: Fleet) -> None:
        call(f"{f.c['ribbon_core']['control_url']}/sftp", f.ca_file, method="POST",
             body={"node": node, "readonly": readonly})
    return inject


def core_fault(method: str, path: str):
    def inject(f: Fleet) -> None:
        call(f"{f.c['ribbon_core']['control_url']}/fault", f.ca_file, method="POST",
             body={"method": method, "path": path, "status": 400, "times": 1,
                   "message": "injected by test_rotate_deploy_faults"})
    return inject


def edge_fault(path: str):
    def inject(f: Fleet) -> None:
        call(f"{f.c['ribbon_edge']['control_url']}/fault", f.ca_file, method="POST",
             body={"method": "POST", "path": path, "code": 15010, "times": 1, "params": "injected"})
    return inject


def edge_consumed(f: Fleet) -> bool:
    return not call(f"{f.c['ribbon_edge']['control_url']}/state", f.ca_file)["faults"]


def nothing(f: Fleet) -> None:
    return None


# (id, host, inject, clear, the step as the failure names it, extra vars, was the fault reached)
ROWS = [
    ("audiocodes-key", "mediant_ha", ac_fault("PUT", r"/api/v1/files/tls/\d+/privateKey"), nothing,
     r"upload private key to context \d", {}, ac_consumed),
    ("audiocodes-certificate", "mediant_ha", ac_fault("PUT", r"/api/v1/files/tls/\d+/certificate"), nothing,
     r"upload certificate \w+ to context \d", {}, ac_consumed),
    ("audiocodes-trusted-roots", "mediant_ha", ac_fault("PUT", r"/api/v1/files/tls/\d+/trustedRoot(/incremental)?"),
     nothing, r"trusted roots of context \d", {}, ac_consumed),
    ("audiocodes-rebind", "mediant_ha", ac_fault("PUT", r"/api/v1/files/ini/incremental"), nothing,
     r"bind SIP Interface 'SIPInterface_0' to TLS context", {}, ac_consumed),
    ("audiocodes-save", "mediant_ha", ac_fault("POST", r"/api/v1/actions/saveConfiguration"), nothing,
     r"save the configuration", {}, ac_consumed),
    ("core-file-node-a", "sbc_core", core_sftp("a", True), core_sftp("a", False), r"node a", {}, None),
    ("core-file-node-b", "sbc_core", core_sftp("b", True), core_sftp("b", False), r"node b", {}, None),
    ("core-pki-object", "sbc_core", core_fault("PUT", r"pki/certificate/byoc-\d{8}-"), nothing,
     r"pki/certificate/byoc-\d{8}-", {}, None),
    ("core-profile-repoint", "sbc_core", core_fault("PATCH", r"tlsProfile"), nothing, r"tlsProfile", {}, None),
    ("edge-ca-import", "sbc_edge", edge_fault(r"/rest/certificate/([2-9]|[1-9][0-9]+)$"), nothing,
     r"rest/certificate/([2-9]|[1-9][0-9]+)", {"eab": True}, edge_consumed),
    ("edge-server-import", "sbc_edge", edge_fault(r"/rest/certificate/1$"), nothing, r"rest/certificate/1\b",
     {"eab": True}, edge_consumed),
]


def agree(members: dict) -> bool:
    return len(set(members.values())) == 1 and not set(members.values()) & {"missing", "unreadable"}


@pytest.mark.parametrize("row", ROWS, ids=[r[0] for r in ROWS])
def test_a_failed_deploy_step_leaves_no_split_pair_and_a_rerun_converges(fleet, row):
    _name, host, inject, clear, step, opts, consumed = row
    group = GROUP[host]
    extra = {"byoc_acme": fleet.eab_acme()} if opts.get("eab") else {}
    if group not in fleet.rotated:
        # the group's first row: the group on Pebble's chain, its trunks connected (the state each row starts from)
        first = fleet.playbook("--limit", group)
        assert first.returncode == 0, first.stdout[-6000:] + first.stderr[-2000:]
        fleet.rotated.add(group)
    before = fleet.probe(host)
    assert before["ok"], before
    assert agree(fleet.members(host)), fleet.members(host)

    fleet.clear_backoff(group)
    inject(fleet)
    try:
        proc = fleet.playbook("--limit", group, extra={"byoc_force": True, **extra})
    finally:
        clear(fleet)
    out = proc.stdout + proc.stderr
    assert proc.returncode != 0, out[-5000:]
    if consumed is not None:
        assert consumed(fleet), "the fault was never reached: the step did not run\n" + out[-6000:]
    # the run names the group, the device, the failed deploy check and the step
    assert f"Certificate group {group}, device {host}" in out, out[-5000:]
    assert "check 'deploy' failed" in out, out[-5000:]
    failure = out[out.index(f"Certificate group {group}, device {host}"):]
    assert re.search(step, failure), (step, failure[:3000])

    # every member agrees, on the certificate served before, which chains to a CA the org trusts
    members = fleet.members(host)
    assert agree(members), members
    after = fleet.probe(host)
    assert after["ok"], after
    assert after["peer_sha256"] == before["peer_sha256"], (before, after)
    assert set(members.values()) == {before["peer_sha256"]}, (members, before)

    # a re-run without the fault converges: the rollback was recorded in the store (current = what the members serve
    # again, the failure counted for the backoff), so the run succeeds, changes nothing and the pair stays whole
    rerun = fleet.playbook("--limit", group, extra=extra)
    assert rerun.returncode == 0, (rerun.stdout + rerun.stderr)[-6000:]
    assert re.search(rf"^{host}\s+: ok=\d+\s+changed=0\s+unreachable=0\s+failed=0", rerun.stdout, re.M), rerun.stdout[-3000:]
    members = fleet.members(host)
    assert agree(members), members
    now = fleet.probe(host)
    assert now["ok"], now
    assert set(members.values()) == {now["peer_sha256"]} == {before["peer_sha256"]}, (members, now, before)
    assert fleet.report_fingerprint(group) == now["peer_sha256"]  # the report agrees with the wire
    trunks = fleet.trunks_up(host)
    assert len(trunks) == 2 and all(trunks), trunks
