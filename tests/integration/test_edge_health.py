"""Health-aware rotation (issue 15): genesys_edge_info against the Genesys emulator's Edges, and rotate.yml's
Edge checks (skip before, roll back after, defer on traffic) on inventory.example/lab.

The lab (bind, pebble, genesys, audiocodes, ribbon_core, ribbon_edge) is private to this file: the tests take Edges
offline and change every device's certificate. Edge faults are set with the emulator's TEST-ONLY control API
(``POST /_control/edges/<id>``, docs/genesys.md) and reset after each test. Everything is observed independently of
the module's or the playbook's own claims: the emulator's request log (how many Edge listings a run made), its
computed trunk health (an unhealthy Edge's trunks really go down), the devices' request logs (untouched after a skip
or a deferral) and a SIP-TLS client that resolves the trunk name through the lab DNS (the certificate served after a
rollback).
"""

from __future__ import annotations

import json
import re
import shutil
import ssl
import subprocess
import sys
import tempfile
import urllib.error
import urllib.request
from pathlib import Path

import dns.message
import dns.query
import dns.rdatatype
import pytest

from byoc_harness import REPO, ansible_env  # noqa: E402  (on sys.path via conftest)
from byoclab.components import select  # noqa: E402
from byoclab.core import Lab  # noqa: E402
from emulators.common.siptls import sip_options_probe  # noqa: E402

PARTS = ["bind", "pebble", "genesys", "audiocodes", "ribbon_core", "ribbon_edge"]
INVENTORY = REPO / "inventory.example" / "lab"
EDGES_PATH = "/api/v2/telephony/providers/edges"


def http(url: str, ca_file: str, method: str = "GET", body: dict | None = None, raw: bool = False):
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(url, data=data, method=method, headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, context=ssl.create_default_context(cafile=ca_file), timeout=90) as resp:
        text = resp.read()
        return text if raw else json.loads(text or b"null")


class EdgeLab:
    def __init__(self, lab: Lab, directory: Path):
        self.lab, self.dir = lab, directory
        self.c = lab.components
        self.g = self.c["genesys"]
        self.ca_file = str(lab.ca.cert_file)
        self.store = directory / "store"
        self.report_dir = directory / "report"
        self.token_dir = directory / "tokens"
        ac = self.c["audiocodes"]["devices"]
        self.sip = {"mediant_ha": ac["mediant-ha"]["sip_tls"], "mediant_sa": ac["mediant-sa"]["sip_tls"],
                    "sbc_core": self.c["ribbon_core"]["sip_tls"], "sbc_edge": self.c["ribbon_edge"]["sip_tls"]}
        edge = self.g["edges"][0]
        self.edge_cert = Path(edge["client_cert_file"]).read_text()
        self.edge_key = Path(edge["client_key_file"]).read_text()

    # -- the emulator's TEST-ONLY control API -------------------------------------------------------------------
    def ctl(self, path: str, body: dict | None = None, method: str | None = None):
        return http(f"{self.g['control_url']}{path}", self.ca_file, method or ("POST" if body is not None else "GET"),
                    body)

    def set_edge(self, index: int, **fields) -> dict:
        return self.ctl(f"/edges/{self.g['edges'][index]['id']}", fields)

    def heal_edges(self) -> None:
        for i in range(len(self.g["edges"])):
            self.set_edge(i, onlineStatus="ONLINE", statusCode="ACTIVE", state="active", conversationCount=0,
                          pending=[])

    def edges(self) -> dict:
        return {e["name"]: e for e in self.ctl("/edges")["edges"]}

    def requests(self) -> list:
        return self.ctl("/requests")["requests"]

    def edge_listings(self, since: int) -> int:
        return sum(1 for r in self.requests()[since:] if r["method"] == "GET" and r["path"] == EDGES_PATH)

    def trunks_after_rounds(self, rounds: int = 2) -> list:
        self.ctl("/edge-sessions/drop", {})
        return self.ctl("/health/wait", {"rounds": rounds, "timeout": 60})["trunks"]

    def connection(self, **extra) -> dict:
        return {"api_url": self.g["api_url"], "client_id": self.g["client_id"], "client_secret": self.g["client_secret"],
                "ca_path": self.ca_file, "token_cache_dir": str(self.token_dir), **extra}

    # -- the pipeline and the independent observers ---------------------------------------------------------------
    def playbook(self, name: str, *args: str, extra: dict | None = None) -> subprocess.CompletedProcess:
        cmd = [str(Path(sys.executable).parent / "ansible-playbook"), "-i", str(INVENTORY),
               str(REPO / "playbooks" / name), *args,
               "-e", json.dumps({"byoc_store": {"backend": "filesystem", "path": str(self.store)}})]
        if extra:
            cmd += ["-e", json.dumps(extra)]
        env = ansible_env({"BYOC_LAB_JSON": str(self.lab.json_file), "BYOC_STORE_PASSPHRASE": "edge-test-passphrase-1",
                           "BYOC_REPORT_DIR": str(self.report_dir)})
        env["ANSIBLE_STDOUT_CALLBACK"] = "default"
        return subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=900, cwd=REPO, check=False)

    def acme_root(self) -> str:
        return http(f"{self.c['pebble']['management']}/roots/0", self.ca_file, raw=True).decode()

    def resolve(self, name: str) -> str:
        b = self.c["bind"]["primary"]
        resp = dns.query.tcp(dns.message.make_query(name, dns.rdatatype.A), b["host"], port=b["port"], timeout=5)
        return [r.to_text() for rr in resp.answer if rr.rdtype == dns.rdatatype.A for r in rr][0]

    def probe(self, host: str, trust: str) -> dict:
        s = self.sip[host]
        return sip_options_probe(self.resolve(s["name"]), s["port"], cadata=trust, server_name=s["name"],
                                 client_chain_pem=self.edge_cert, client_key_pem=self.edge_key)

    def device_writes(self) -> dict:
        """Host -> number of write requests its device has seen so far (login/logout aside)."""
        ac = self.c["audiocodes"]["devices"]
        logs = {h: http(f"{ac[d]['control_url']}/requests", ac[d]["ca_file"])
                for h, d in (("mediant_ha", "mediant-ha"), ("mediant_sa", "mediant-sa"))}
        logs["sbc_core"] = [{"method": m, "path": p} for m, p, *_r in
                            http(f"{self.c['ribbon_core']['control_url']}/requests", self.ca_file)]
        logs["sbc_edge"] = [{"method": m, "path": p} for m, p, *_r in
                            http(f"{self.c['ribbon_edge']['control_url']}/requests", self.ca_file)]
        return {h: sum(1 for r in log if r["method"] not in ("GET", "HEAD")
                       and not r["path"].endswith(("/login", "/logout"))) for h, log in logs.items()}

    def report(self) -> dict:
        return json.loads((self.report_dir / "report.json").read_text())

    def orders(self) -> int:
        """New-order requests Pebble has seen (its own log)."""
        return len(re.findall(r"Added order ", (self.lab.dir / "logs" / "pebble.log").read_text()))


@pytest.fixture(scope="module")
def edge_lab():
    directory = Path(tempfile.mkdtemp(prefix="byoc-edge-"))
    lab = Lab(directory / "lab")
    try:
        lab.up(select(PARTS))
        el = EdgeLab(lab, directory)
        proc = el.playbook("demo_lab.yml")  # one trunk per SBC, by name, on both Edges
        assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr
        yield el
    finally:
        lab.down()
        shutil.rmtree(directory, ignore_errors=True)


@pytest.fixture()
def healthy(edge_lab):
    edge_lab.heal_edges()
    yield edge_lab
    edge_lab.heal_edges()


def responder(el: EdgeLab, index: int) -> str:
    return el.g["responders"][index]["address"]


# -- genesys_edge_info --------------------------------------------------------------------------------------------

def test_offline_edge_is_reported_per_selector_with_one_listing_and_its_trunks_really_go_down(healthy, run_module):
    """Lab SBC 1's trunk is on Edge 1 only, Lab SBC 3's on both Edges. Edge 2 goes OFFLINE: SBC 1 is ready, SBC 3
    unhealthy naming Edge 2. One call = one trunk base listing, one trunk listing, one Edge listing."""
    el = healthy
    el.set_edge(1, onlineStatus="OFFLINE")
    before = len(el.requests())
    res = run_module("genesys_edge_info", el.connection(sbc_addresses=[responder(el, 0), responder(el, 2)]))
    assert not res.get("failed"), res
    verdict = {s["selector"]: s for s in res["selected"]}
    assert verdict[responder(el, 0)]["status"] == "ready", verdict
    assert verdict[responder(el, 0)]["edges"] == ["Lab Edge 1"]
    sick = verdict[responder(el, 2)]
    assert sick["status"] == "unhealthy" and sorted(sick["edges"]) == ["Lab Edge 1", "Lab Edge 2"], sick
    assert "Lab Edge 2" in sick["reason"] and "onlineStatus is OFFLINE" in sick["reason"], sick
    assert res["healthy"] is False and [u["name"] for u in res["unhealthy"]] == ["Lab Edge 2"]
    assert res["deferred"] is False and res["polls"] == 1

    new = [r for r in el.requests()[before:] if r["path"].startswith("/api/")]
    expected = [EDGES_PATH, f"{EDGES_PATH}/trunks", f"{EDGES_PATH}/trunkbasesettings"]
    assert sorted(r["path"] for r in new) == sorted(expected), new
    # independently: the OFFLINE Edge probes nothing, so its trunks are down, while Edge 1's stay as they were
    edge2 = el.g["edges"][1]["id"]
    trunks = el.trunks_after_rounds()
    assert [t for t in trunks if t["edge_id"] == edge2] and not any(t["connected"] for t in trunks if t["edge_id"] == edge2)
    assert not [s for s in el.ctl("/state")["edge_sessions"] if s["edge_id"] == edge2]


def test_non_active_status_code_is_unhealthy_and_its_trunks_are_out_of_service(healthy, run_module):
    el = healthy
    el.set_edge(0, statusCode="INACTIVE")
    trunk = next(t for t in el.g["trunks"] if t["edge_id"] == el.g["edges"][0]["id"])
    res = run_module("genesys_edge_info", el.connection(trunk_ids=[trunk["id"]]))
    assert not res.get("failed"), res
    assert res["selected"][0]["status"] == "unhealthy"
    assert "statusCode is INACTIVE, not ACTIVE" in res["selected"][0]["reason"]
    # the trunk API says so too (§2.6 enabled = the Edge is in service)
    status = http(f"{el.g['control_url']}/state", el.ca_file)
    assert status["edges"][0]["down"].startswith("the Edge is out of service")
    seen = run_module("genesys_trunk_info", el.connection(trunk_ids=[trunk["id"]]))
    assert seen["trunks"][0]["enabled"] is False and not seen["trunks"][0]["up"], seen


def test_wait_polls_until_the_count_is_at_or_below_the_threshold_with_progress(healthy, run_module):
    """Edge 1 shows 30, then 12, then 3 conversations (one value per API read): with at most 5, the wait polls three
    times and ends ready. Later polls list only the Edges (no trunk or trunk base listing again)."""
    el = healthy
    el.set_edge(0, conversationSchedule=[30, 12, 3])
    before = len(el.requests())
    res = run_module("genesys_edge_info", el.connection(sbc_addresses=[responder(el, 0)], max_conversations=5,
                                                        wait=True, timeout=120, poll_interval=0.5))
    assert not res.get("failed"), res
    assert res["selected"][0]["status"] == "ready" and res["deferred"] is False, res
    assert res["polls"] == 3 and res["edges"][0]["seen_counts"] == [30, 12, 3], res
    assert "genesys_edge_info: waiting up to 120s for 1 busy Edge(s) (Lab Edge 1) to carry at most 5" in res["_stdout"]
    assert "busy: Lab Edge 1 (30 > 5)" in res["_stdout"]
    new = [r["path"] for r in el.requests()[before:] if r["path"].startswith("/api/")]
    assert new.count(EDGES_PATH) == 3 and new.count(f"{EDGES_PATH}/trunks") == 1, new
    assert el.edges()["Lab Edge 1"]["reads"] >= 3


def test_a_busy_edge_is_deferred_after_the_limit_not_failed(healthy, run_module):
    el = healthy
    el.set_edge(0, conversationCount=40)
    before = len(el.requests())
    res = run_module("genesys_edge_info", el.connection(sbc_addresses=[responder(el, 0), responder(el, 2)],
                                                        max_conversations=5, wait=True, timeout=6, poll_interval=1))
    assert not res.get("failed"), res
    assert res["deferred"] is True and res["waiting_on"] == ["Lab Edge 1"], res
    for sel in res["selected"]:
        assert sel["status"] == "busy", sel
        assert "Lab Edge 1 carries 40 conversations, more than 5" in sel["reason"] and "waited" in sel["reason"], sel
    assert el.edge_listings(before) == res["polls"] >= 1, res  # one Edge listing per poll, counted by the emulator
    assert el.edges()["Lab Edge 1"]["conversationCount"] == 40


def test_unmatched_selector_fails_or_is_returned(healthy, run_module):
    el = healthy
    res = run_module("genesys_edge_info", el.connection(sbc_addresses=["nowhere.lab.test:5061"]))
    assert res.get("failed") and "sbc_addresses: nowhere.lab.test:5061" in res["msg"], res
    res = run_module("genesys_edge_info", el.connection(sbc_addresses=["nowhere.lab.test:5061", responder(el, 0)],
                                                        on_unmatched="return"), check=True)
    assert not res.get("failed") and res["unmatched"] == ["sbc_addresses: nowhere.lab.test:5061"], res
    assert [s["status"] for s in res["selected"]] == ["ready"]


def test_bad_input_is_refused_before_any_request(healthy, run_module):
    el = healthy
    before = len(el.requests())
    res = run_module("genesys_edge_info", el.connection(max_conversations=-1))
    assert res.get("failed") and res["msg"].startswith("max_conversations"), res
    assert len(el.requests()) == before


# -- rotate.yml: the three paths ----------------------------------------------------------------------------------
GROUP, HOST = "grp_mediant_sa", "mediant_sa"


def group_report(el: EdgeLab) -> dict:
    return next(g for g in el.report()["groups"] if g["group"] == GROUP)


@pytest.fixture(scope="module")
def rotated(edge_lab):
    """A first rotation of the group with healthy Edges: the baseline (an ACME certificate the org trusts, trunks
    connected). It also fixes the cost: one Edge listing before the batch rotates and one after, no more."""
    edge_lab.heal_edges()
    before, orders = len(edge_lab.requests()), edge_lab.orders()
    proc = edge_lab.playbook("rotate.yml", "--limit", GROUP)
    assert proc.returncode == 0, proc.stdout[-6000:] + proc.stderr[-2000:]
    assert group_report(edge_lab)["status"] == "renewed", group_report(edge_lab)
    assert edge_lab.edge_listings(before) == 2, edge_lab.requests()[before:]
    assert edge_lab.orders() == orders + 1  # the Pebble log sees the group's order (so a skip's 0 means something)
    seen = edge_lab.probe(HOST, edge_lab.acme_root())
    assert seen["ok"], seen
    return seen["peer_sha256"]


def test_unhealthy_edge_before_the_change_skips_the_group_and_leaves_the_device_untouched(rotated, healthy):
    el = healthy
    el.set_edge(1, onlineStatus="OFFLINE")  # the group's trunk is on both Edges
    orders = el.orders()
    writes = el.device_writes()
    before = len(el.requests())
    proc = el.playbook("rotate.yml", "--limit", GROUP, extra={"byoc_force": True})
    assert proc.returncode == 0, proc.stdout[-6000:] + proc.stderr[-2000:]
    group = group_report(el)
    assert group["status"] == "skipped", group
    assert "Lab Edge 2" in group["reason"] and "onlineStatus is OFFLINE" in group["reason"], group
    assert el.orders() == orders  # no ACME order for a group held back before the change
    assert el.device_writes() == writes  # untouched, read back from the device's own request log
    assert el.probe(HOST, el.acme_root())["peer_sha256"] == rotated
    assert el.edge_listings(before) == 1  # the check before; no check after, nothing changed


def test_busy_edges_defer_the_group_after_the_wait_and_leave_the_device_untouched(rotated, healthy):
    el = healthy
    el.set_edge(0, conversationCount=40)
    orders = el.orders()
    writes = el.device_writes()
    before = len(el.requests())
    proc = el.playbook("rotate.yml", "--limit", GROUP,
                       extra={"byoc_force": True, "byoc_edge_max_conversations": 5, "byoc_edge_wait_timeout": 3,
                              "byoc_edge_poll_interval": 1})
    assert proc.returncode == 0, proc.stdout[-6000:] + proc.stderr[-2000:]
    group = group_report(el)
    assert group["status"] == "deferred", group
    assert "Lab Edge 1 carries 40 conversations, more than 5" in group["reason"] and "waited" in group["reason"], group
    assert el.orders() == orders  # no ACME order for a group held back before the change
    assert el.device_writes() == writes
    assert el.probe(HOST, el.acme_root())["peer_sha256"] == rotated
    api = [r["path"] for r in el.requests()[before:] if r["path"].startswith("/api/")]
    # one trunk base and one trunk listing for the batch, then one Edge listing per poll (at least one)
    assert api.count(f"{EDGES_PATH}/trunkbasesettings") == 1 and api.count(f"{EDGES_PATH}/trunks") == 1, api
    assert api.count(EDGES_PATH) >= 1


def test_busy_edges_that_calm_down_within_the_wait_rotate(rotated, healthy):
    el = healthy
    el.set_edge(0, conversationSchedule=[40, 2])  # busy at the first poll, quiet at the second
    proc = el.playbook("rotate.yml", "--limit", GROUP,
                       extra={"byoc_force": True, "byoc_edge_max_conversations": 5, "byoc_edge_wait_timeout": 120,
                              "byoc_edge_poll_interval": 1})
    assert proc.returncode == 0, proc.stdout[-6000:] + proc.stderr[-2000:]
    assert "genesys_edge_info: waiting up to 120s for 1 busy Edge(s) (Lab Edge 1)" in proc.stdout
    assert group_report(el)["status"] == "renewed", group_report(el)
    assert el.probe(HOST, el.acme_root())["peer_sha256"] != rotated  # a new certificate is served


def test_edge_that_turns_unhealthy_after_the_change_rolls_the_group_back(rotated, healthy):
    """Edge 1 is healthy for the check before, turns INACTIVE right after it (so during the change) and recovers
    once the check after has seen it. The group is rolled back: the certificate served before is served again
    (independent SIP-TLS client, by name) and the trunks reconnect once the Edge has recovered."""
    el = healthy
    old = el.probe(HOST, el.acme_root())
    assert old["ok"], old
    el.set_edge(0, pending=[{"after_reads": 1, "set": {"statusCode": "INACTIVE"}},
                            {"after_reads": 2, "set": {"statusCode": "ACTIVE"}}])
    before = len(el.requests())
    proc = el.playbook("rotate.yml", "--limit", GROUP, extra={"byoc_force": True, "byoc_verify_trunk_timeout": 10})
    out = proc.stdout + proc.stderr
    assert proc.returncode != 0, out[-4000:]
    assert f"Certificate group {GROUP}, device {HOST}" in out and "check 'edge-health' failed" in out, out[-4000:]
    assert "Lab Edge 1" in out and "statusCode is INACTIVE" in out, out[-4000:]
    assert el.edge_listings(before) == 2  # one before, one after the change
    seen = el.probe(HOST, el.acme_root())
    assert seen["ok"] and seen["peer_sha256"] == old["peer_sha256"], seen
    assert el.edges()["Lab Edge 1"]["statusCode"] == "ACTIVE"
    mine = [t for t in el.trunks_after_rounds() if t["name"] == f"BYOC {HOST}"]
    assert len(mine) == 2 and all(t["connected"] for t in mine), mine
    assert group_report(el)["status"] == "rolled_back", group_report(el)
