"""The rotation pipeline (issue 11): playbooks/rotate.yml on inventory.example/lab against a private lab.

The lab (bind, pebble, genesys, audiocodes, ribbon_core, ribbon_edge) is private to this file, because the pipeline
changes every device's certificate and trust. The Genesys org gets one trunk per SBC pointing at the SBC's SIP-TLS
NAME (playbooks/demo_lab.yml). Everything is observed independently of the playbook's own claims:

- a SIP-TLS client that resolves the trunk name through the lab's DNS, trusts only the ACME root fetched from
  Pebble's management port, checks the name and presents an Edge certificate (signed by the org's MANAGED CA);
- the Genesys emulator's computed trunk health (its Edges really handshake with the SBCs);
- the emulators' request logs (writes to devices, Genesys requests) and Pebble's log (new orders);
- the store directory's bytes (check mode).
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import re
import shutil
import ssl
import subprocess
import sys
import tempfile
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
HOSTS = ["mediant_ha", "mediant_sa", "sbc_core", "sbc_edge"]
GROUPS = ["grp_mediant_ha", "grp_mediant_sa", "grp_sbc_core", "grp_sbc_edge"]


def get(url: str, ca_file: str, *, method: str = "GET", body: dict | None = None, raw: bool = False):
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(url, data=data, method=method, headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, context=ssl.create_default_context(cafile=ca_file), timeout=90) as resp:
        text = resp.read()
        return text if raw else json.loads(text or b"null")


class Fleet:
    def __init__(self, lab: Lab, directory: Path):
        self.lab, self.dir = lab, directory
        c = lab.components
        self.ca_file = str(lab.ca.cert_file)
        self.c = c
        self.store = directory / "store"
        self.report_dir = directory / "report"
        self.env = {"BYOC_LAB_JSON": str(lab.json_file), "BYOC_STORE_PASSPHRASE": "rotate-test-passphrase-1",
                    "BYOC_REPORT_DIR": str(self.report_dir), "ANSIBLE_STDOUT_CALLBACK": "default"}
        ac = c["audiocodes"]["devices"]
        self.sip = {"mediant_ha": ac["mediant-ha"]["sip_tls"], "mediant_sa": ac["mediant-sa"]["sip_tls"],
                    "sbc_core": c["ribbon_core"]["sip_tls"], "sbc_edge": c["ribbon_edge"]["sip_tls"]}
        edge = c["genesys"]["edges"][0]
        self.edge_cert = Path(edge["client_cert_file"]).read_text()
        self.edge_key = Path(edge["client_key_file"]).read_text()

    def playbook(self, name: str, *args: str, extra: dict | None = None,
                 host_vars: dict | None = None) -> subprocess.CompletedProcess:
        cmd = [str(Path(sys.executable).parent / "ansible-playbook"), "-i", str(INVENTORY)]
        if host_vars:  # a second inventory source that sets host variables over the lab inventory's group_vars
            overlay = self.dir / "overlay.json"
            overlay.write_text(json.dumps({"byoc_sbc": {"hosts": host_vars}}))
            cmd += ["-i", str(overlay)]
        cmd += [str(REPO / "playbooks" / name), *args]
        if extra:
            cmd += ["-e", json.dumps(extra)]
        env = ansible_env(self.env)
        env["ANSIBLE_STDOUT_CALLBACK"] = "default"
        # the store lives in this test's directory, not the lab's
        cmd += ["-e", json.dumps({"byoc_store": {"backend": "filesystem", "path": str(self.store)}})]
        # generous: a safety net, not a timed assertion (the machine is shared; a first run took 8 minutes at load 20)
        return subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=1800, cwd=REPO, check=False)

    # independent observers
    def acme_root(self) -> str:
        return get(f"{self.c['pebble']['management']}/roots/0", self.ca_file, raw=True).decode()

    def resolve(self, name: str) -> str:
        b = self.c["bind"]["primary"]
        resp = dns.query.tcp(dns.message.make_query(name, dns.rdatatype.A), b["host"], port=b["port"], timeout=5)
        return [r.to_text() for rr in resp.answer if rr.rdtype == dns.rdatatype.A for r in rr][0]

    def probe(self, host: str, trust: str) -> dict:
        s = self.sip[host]
        return sip_options_probe(self.resolve(s["name"]), s["port"], cadata=trust, server_name=s["name"],
                                 client_chain_pem=self.edge_cert, client_key_pem=self.edge_key)

    def trunks(self, rounds: int = 2) -> dict:
        """Trunk name -> [connected per Edge], after `rounds` fresh health rounds."""
        g = self.c["genesys"]
        get(f"{g['control_url']}/edge-sessions/drop", self.ca_file, method="POST", body={})
        state = get(f"{g['control_url']}/health/wait", self.ca_file, method="POST", body={"rounds": rounds, "timeout": 60})
        out: dict = {}
        for t in state["trunks"]:
            if t["name"].startswith("BYOC "):
                out.setdefault(t["name"][5:], []).append(t["connected"])
        return out

    def orders(self) -> int:
        return len(re.findall(r"Added order ", (self.lab.dir / "logs" / "pebble.log").read_text()))

    def ari_requests(self) -> int:
        return len(re.findall(r"GET /[^ ]*renewalInfo/", (self.lab.dir / "logs" / "pebble.log").read_text()))

    def stored_fingerprint(self, group: str) -> str:
        return json.loads((self.store / group / "state.json").read_text())["current"]["fingerprint"]

    def device_requests(self) -> dict:
        ac = self.c["audiocodes"]["devices"]
        logs = {h: get(f"{ac[d]['control_url']}/requests", ac[d]["ca_file"])
                for h, d in (("mediant_ha", "mediant-ha"), ("mediant_sa", "mediant-sa"))}
        logs["sbc_core"] = [{"method": m, "path": p} for m, p, *_rest in
                            get(f"{self.c['ribbon_core']['control_url']}/requests", self.ca_file)]
        logs["sbc_edge"] = [{"method": m, "path": p} for m, p, *_rest in
                            get(f"{self.c['ribbon_edge']['control_url']}/requests", self.ca_file)]
        return logs

    def genesys_requests(self) -> list:
        return get(f"{self.c['genesys']['control_url']}/requests", self.ca_file)["requests"]

    def store_digest(self) -> str:
        h = hashlib.sha256()
        for p in sorted(self.store.rglob("*")):
            if p.is_file():
                h.update(str(p.relative_to(self.store)).encode() + b"\0" + p.read_bytes())
        return h.hexdigest()

    def report(self) -> dict:
        return json.loads((self.report_dir / "report.json").read_text())


@pytest.fixture(scope="module")
def fleet():
    directory = Path(tempfile.mkdtemp(prefix="byoc-rotate-"))
    lab = Lab(directory / "lab")
    try:
        lab.up(select(PARTS))
        f = Fleet(lab, directory)
        proc = f.playbook("demo_lab.yml")
        assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr
        yield f
    finally:
        lab.down()
        shutil.rmtree(directory, ignore_errors=True)


@pytest.fixture(scope="module")
def first_run(fleet):
    before = {h: fleet.probe(h, fleet.acme_root())["peer_sha256"] for h in HOSTS}
    orders = fleet.orders()
    proc = fleet.playbook("rotate.yml")
    return {"proc": proc, "before": before, "orders": fleet.orders() - orders}


def recap(proc: subprocess.CompletedProcess) -> dict:
    out = {}
    for m in re.finditer(r"^(\S+)\s+: ok=(\d+)\s+changed=(\d+)\s+unreachable=(\d+)\s+failed=(\d+)", proc.stdout, re.M):
        out[m.group(1)] = {"changed": int(m.group(3)), "failed": int(m.group(5))}
    return out


def test_first_run_rotates_every_group_and_every_trunk_by_name_connects(fleet, first_run):
    proc = first_run["proc"]
    assert proc.returncode == 0, proc.stdout[-6000:] + proc.stderr[-2000:]
    assert first_run["orders"] == len(GROUPS)  # one ACME order per certificate group, none per member
    report = fleet.report()
    assert sorted(g["group"] for g in report["groups"]) == sorted(GROUPS)
    assert all(g["status"] == "renewed" for g in report["groups"]), report

    root = fleet.acme_root()
    for host in HOSTS:
        seen = fleet.probe(host, root)  # by name, through the lab DNS, trusting only the ACME root
        assert seen["ok"], (host, seen)
        assert seen["peer_sha256"] != first_run["before"][host], host  # a new certificate, not the lab's initial one
        member = next(m for g in report["groups"] for m in g["members"] if m["host"] == host)
        assert member["fingerprint"] == seen["peer_sha256"], (host, member, seen)
    trunks = fleet.trunks()
    assert sorted(trunks) == sorted(HOSTS), trunks
    assert all(len(v) == 2 and all(v) for v in trunks.values()), trunks  # both Edges, connected


# The request that lists what a device serves: present exactly once in a converged run's requests to that device.
LISTING = {"mediant_ha": "/api/v1/files/ini", "mediant_sa": "/api/v1/files/ini",
           "sbc_core": "/api/config/profiles/security/tlsProfile", "sbc_edge": "/rest/certificate"}


def test_second_run_changes_nothing_orders_nothing_and_reads_each_device_once(fleet, first_run):
    """Issue 11 targets for a converged run, counted from the emulators' and Pebble's logs: each device read exactly
    once (its listing once, no request repeated, nothing written), 0 ACME orders, at most one ARI request per
    certificate, at most 3 Genesys requests for the org."""
    assert first_run["proc"].returncode == 0
    orders, ari = fleet.orders(), fleet.ari_requests()
    writes_before = {h: len(v) for h, v in fleet.device_requests().items()}
    genesys_before = len(fleet.genesys_requests())
    proc = fleet.playbook("rotate.yml")
    assert proc.returncode == 0, proc.stdout[-6000:] + proc.stderr[-2000:]
    assert fleet.orders() == orders  # Pebble saw no new order
    assert fleet.ari_requests() - ari <= len(GROUPS)  # at most one ARI request per certificate
    assert all(r["changed"] == 0 and r["failed"] == 0 for r in recap(proc).values()), recap(proc)
    for host, log in fleet.device_requests().items():
        new = [(r["method"], r["path"]) for r in log[writes_before[host]:]
               if not r["path"].endswith(("/login", "/logout")) and not r["path"].startswith("/_control/")]
        writes = [r for r in new if r[0] not in ("GET", "HEAD")]
        assert new and not writes, (host, writes)  # each device read, nothing written
        assert new.count(("GET", LISTING[host])) == 1, (host, new)  # read exactly once ...
        assert len(new) == len(set(new)), (host, new)  # ... and nothing of it read twice
    genesys = fleet.genesys_requests()[genesys_before:]
    api = [r for r in genesys if r["path"].startswith("/api/")]
    assert len(api) <= 3, genesys  # at most 3 Genesys API requests for the org (plus at most one token)
    assert all(g["status"] == "unchanged" for g in fleet.report()["groups"])


def test_check_mode_prints_the_plan_and_writes_nothing(fleet, first_run):
    assert first_run["proc"].returncode == 0
    orders, digest = fleet.orders(), fleet.store_digest()
    before = {h: len(v) for h, v in fleet.device_requests().items()}
    genesys_before = len(fleet.genesys_requests())
    proc = fleet.playbook("rotate.yml", "--check", "--diff", extra={"byoc_force": True})
    assert proc.returncode == 0, proc.stdout[-6000:] + proc.stderr[-2000:]
    for group in GROUPS:
        assert re.search(rf"{group}/\S+ \(.*\): deploy: the group would renew \(.*forced", proc.stdout), group
    assert fleet.orders() == orders and fleet.store_digest() == digest
    for host, log in fleet.device_requests().items():
        assert not [r for r in log[before[host]:] if r["method"] not in ("GET", "HEAD")
                    and not r["path"].endswith(("/login", "/logout"))], host
    assert all(r["method"] == "GET" or r["path"] == "/oauth/token" for r in fleet.genesys_requests()[genesys_before:])


def test_mutual_auth_sbc_without_the_managed_ca_is_rolled_back_and_the_run_fails_naming_it(fleet, first_run):
    """An inventory that manages the AudioCodes trusted roots exactly and leaves the MANAGED CA out: the staged
    context lacks it, the HA pair (mutual TLS on) refuses the Edges, verification fails, the group goes back to the
    context that served before (one re-bind), the old certificate is served again and the trunks reconnect."""
    assert first_run["proc"].returncode == 0
    root = fleet.acme_root()
    old = fleet.probe("mediant_ha", root)["peer_sha256"]
    proc = fleet.playbook("rotate.yml", "--limit", "grp_mediant_ha",
                          extra={"byoc_force": True, "byoc_install_managed_ca": False,
                                 "byoc_audiocodes_trusted_roots_mode": "exact", "byoc_verify_trunk_timeout": 20})
    out = proc.stdout + proc.stderr
    assert proc.returncode != 0, out[-4000:]
    assert "Certificate group grp_mediant_ha, device mediant_ha" in out, out[-4000:]
    assert "check 'managed-ca' failed" in out and "MANAGED CA" in out, out[-4000:]
    assert "is served again and verified" in out, out[-4000:]
    seen = fleet.probe("mediant_ha", root)
    assert seen["ok"] and seen["peer_sha256"] == old, seen  # the old certificate, and the Edge is accepted again
    assert all(fleet.trunks()["mediant_ha"])
    group = next(g for g in fleet.report()["groups"] if g["group"] == "grp_mediant_ha")
    assert group["status"] == "rolled_back", group
    # the store follows the rollback: its current certificate is the one the pair serves again
    assert fleet.stored_fingerprint("grp_mediant_ha") == old


def test_after_a_rollback_the_next_run_plans_from_what_the_devices_serve(fleet, first_run):
    """The run after the rollback above (normal settings, not forced) neither deploys the failed certificate again
    nor orders: the store's current material is what the devices serve, and the failure is recorded (backoff)."""
    assert first_run["proc"].returncode == 0
    root = fleet.acme_root()
    served = fleet.probe("mediant_ha", root)["peer_sha256"]
    state = json.loads((fleet.store / "grp_mediant_ha" / "state.json").read_text())
    assert state["current"]["fingerprint"] == served and state["previous"]["fingerprint"] != served, state["current"]
    assert (state.get("backoff") or {}).get("failures", 0) >= 1 and "rolled back" in state["backoff"]["last_error"]
    orders = fleet.orders()
    before = {h: len(v) for h, v in fleet.device_requests().items()}
    proc = fleet.playbook("rotate.yml", "--limit", "grp_mediant_ha")
    assert proc.returncode == 0, proc.stdout[-4000:]
    assert recap(proc)["mediant_ha"]["changed"] == 0, proc.stdout[-4000:]
    assert fleet.orders() == orders
    log = fleet.device_requests()["mediant_ha"][before["mediant_ha"]:]
    assert not [r for r in log if r["method"] not in ("GET", "HEAD")], log
    assert fleet.probe("mediant_ha", root)["peer_sha256"] == served


def test_a_run_over_two_genesys_orgs_is_refused_before_anything_is_contacted(fleet, first_run):
    """The inventory may hold several orgs; one run rotates the SBCs of one (its trust store, REMOTE CAs, trunks).
    Hosts of two orgs in one run are refused in the inventory check, naming each org's hosts; nothing is contacted."""
    assert first_run["proc"].returncode == 0
    other = {"api_url": "https://api.other-org.example.test", "client_id": "other-client",
             "client_secret": "other-secret-not-printed"}
    before = {h: len(v) for h, v in fleet.device_requests().items()}
    genesys_before = len(fleet.genesys_requests())
    proc = fleet.playbook("rotate.yml", "--check", host_vars={"sbc_edge": {"byoc_genesys": other}})
    out = proc.stdout + proc.stderr
    assert proc.returncode != 0, out[-3000:]
    assert "This run's hosts belong to 2 Genesys Cloud orgs" in out, out[-3000:]
    assert "https://api.other-org.example.test (client_id other-client): sbc_edge" in out, out[-3000:]
    assert "other-secret-not-printed" not in out
    assert len(fleet.genesys_requests()) == genesys_before
    for host, log in fleet.device_requests().items():  # the emulators also log the test's own /_control reads
        assert not [r for r in log[before[host]:] if not r["path"].startswith("/_control/")], host
    single = fleet.playbook("rotate.yml", "--check", "--limit", "sbc_core,mediant_sa",
                            host_vars={"sbc_edge": {"byoc_genesys": other}})
    assert single.returncode == 0, single.stdout[-3000:]  # one org within the limit: planned as usual


def test_a_device_that_cannot_be_read_fails_its_host_and_the_others_are_still_planned(fleet, first_run):
    assert first_run["proc"].returncode == 0
    import socket

    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        dead = f"https://127.0.0.1:{s.getsockname()[1]}"
    proc = fleet.playbook("rotate.yml", "--check", host_vars={"sbc_edge": {"byoc_api_url": dead}},
                          extra={"byoc_rollout_serial": [4]})
    out = proc.stdout + proc.stderr
    assert proc.returncode != 0
    assert f"could not read ribbon_edge device sbc_edge at {dead}" in out and "run again" in out, out[-3000:]
    assert re.search(r"grp_sbc_core/sbc_core \(.*\): nothing to do", out), out[-3000:]
    # a converged host runs no task of its own (planned once for the whole run): it is absent from the recap or ok
    assert recap(proc)["sbc_edge"]["failed"] == 1 and recap(proc).get("sbc_core", {}).get("failed", 0) == 0, recap(proc)
    assert fleet.c["ribbon_edge"]["credentials"]["password"] not in out


def test_a_due_group_outside_its_maintenance_window_is_skipped_with_the_reason(fleet, first_run):
    """Maintenance windows in the site's local time (IANA zone): a group that is due (decided as if it were 200
    days later) is skipped while its window is closed, and planned for renewal while it is open."""
    assert first_run["proc"].returncode == 0
    zone = "Pacific/Kiritimati"  # UTC+14: a local time far from the controller's
    local_hour = int(subprocess.run(["date", "+%H"], env={**os.environ, "TZ": zone}, capture_output=True, text=True,
                                    check=True).stdout)
    closed = {"timezone": zone, "start": f"{(local_hour + 2) % 24:02d}:00", "end": f"{(local_hour + 3) % 24:02d}:00"}
    always = {"timezone": zone, "days": ["mon", "tue", "wed", "thu", "fri", "sat", "sun"], "start": "00:00", "end": "24:00"}
    later = "2027-06-18T00:00:00Z"
    orders = fleet.orders()
    shut = fleet.playbook("rotate.yml", "--check", "--limit", "grp_mediant_sa",
                          extra={"byoc_maintenance_window": closed, "byoc_now": later})
    assert shut.returncode == 0, shut.stdout[-4000:]
    assert re.search(rf"grp_mediant_sa/mediant_sa \(.*\): skipped: outside its maintenance window \(.*{zone}; it is ",
                     shut.stdout), shut.stdout[-4000:]
    opened = fleet.playbook("rotate.yml", "--check", "--limit", "grp_mediant_sa",
                            extra={"byoc_maintenance_window": always, "byoc_now": later})
    assert opened.returncode == 0, opened.stdout[-4000:]
    assert re.search(r"grp_mediant_sa/mediant_sa \(.*\): deploy: the group would renew", opened.stdout), \
        opened.stdout[-4000:]
    assert fleet.orders() == orders

    bad = fleet.playbook("rotate.yml", "--check", "--limit", "grp_mediant_sa",
                         extra={"byoc_maintenance_window": {"timezone": "Mars/Olympus_Mons"}})
    assert bad.returncode != 0
    assert "Inventory host mediant_sa: byoc_maintenance_window: needs timezone, an IANA zone name" in bad.stdout


def test_a_failed_deploy_step_leaves_the_core_pair_on_its_old_certificate_and_fails_naming_it(fleet, first_run):
    """A deploy step that fails (the Ribbon SBC Core answers 500 to re-pointing the TLS profile, a test-only fault):
    the vendor module removes what it created, the group is rolled back and re-verified, both nodes still serve the
    old certificate (never two), the trunks stay connected, and the run fails naming the group, device and check."""
    assert first_run["proc"].returncode == 0
    root = fleet.acme_root()
    old = fleet.probe("sbc_core", root)
    assert old["ok"], old
    core = fleet.c["ribbon_core"]
    before = get(f"{core['control_url']}/state", fleet.ca_file)
    get(f"{core['control_url']}/fault", fleet.ca_file, method="POST",
        body={"method": "PATCH", "path": "tlsProfile", "status": 500, "message": "injected by test_rotate", "times": 1})
    proc = fleet.playbook("rotate.yml", "--limit", "grp_sbc_core",
                          extra={"byoc_force": True, "byoc_verify_trunk_timeout": 20})
    out = proc.stdout + proc.stderr
    assert proc.returncode != 0, out[-4000:]
    assert "Certificate group grp_sbc_core, device sbc_core" in out and "check 'deploy' failed" in out, out[-4000:]
    assert "is served again and verified" in out, out[-4000:]
    seen = fleet.probe("sbc_core", root)
    assert seen["ok"] and seen["peer_sha256"] == old["peer_sha256"], seen
    after = get(f"{core['control_url']}/state", fleet.ca_file)
    assert after["profiles"] == before["profiles"], (before["profiles"], after["profiles"])  # still the old object
    assert all(fleet.trunks()["sbc_core"])
    assert fleet.stored_fingerprint("grp_sbc_core") == old["peer_sha256"]  # the store follows the rollback


VERIFY_PLAY = """
- name: Verify two hosts as the rollout does, one with a management password the device refuses
  hosts: mediant_sa,sbc_edge
  connection: local
  gather_facts: false
  tasks:
    - name: Verify
      ansible.builtin.include_role:
        name: byoc.certificates.rotation_verify
      vars:
        rotation_verify_hosts: [mediant_sa, sbc_edge]
        rotation_verify_endpoint: "{{ {'name': byoc_sip_tls.name, 'port': byoc_sip_tls.port | int,
                                       'label': inventory_hostname, 'expected_fingerprint': expected[inventory_hostname],
                                       'address_text': byoc_sip_tls.name ~ ':' ~ byoc_sip_tls.port} }}"
        rotation_verify_ca_certificates: "{{ acme_root }}"
        rotation_verify_nameservers: "{{ byoc_verify_nameservers }}"
        rotation_verify_org: "{{ byoc_genesys }}"
        rotation_verify_observed_after: "2000-01-01T00:00:00Z"
        rotation_verify_trunk_timeout: 5
        fleet_plan_vendor: "{{ byoc_vendor }}"
        fleet_plan_connection:
          api_url: "{{ byoc_api_url }}"
          username: "{{ byoc_username }}"
          password: "{{ wrong_password if inventory_hostname == 'sbc_edge' else byoc_password }}"
          ca_path: "{{ byoc_ca_path | default('') }}"
          sip_interfaces: "{{ byoc_audiocodes_sip_interfaces | default(['SIPInterface_0']) }}"
          sync_retries: 1   # what rotate.yml passes too: not a read option, left out of the read-back

    - name: Show the verdicts
      ansible.builtin.debug:
        msg: "VERDICTS {{ {'checks': {'mediant_sa': hostvars['mediant_sa'].rotation_verify_host.failures
                                                     | map(attribute='check') | list,
                                       'sbc_edge': hostvars['sbc_edge'].rotation_verify_host.failures
                                                   | map(attribute='check') | list},
                             'detail': hostvars['sbc_edge'].rotation_verify_host.failures
                                       | selectattr('check', 'equalto', 'device-readback') | map(attribute='detail') | list,
                             'installed': {'mediant_sa': hostvars['mediant_sa'].fleet_plan_installed.fingerprint,
                                           'sbc_edge': hostvars['sbc_edge'].fleet_plan_installed.fingerprint}}
                             | to_json | b64encode }} END"
      run_once: true
"""


def test_verify_reads_every_changed_device_back_in_one_call_and_an_unreadable_one_fails_its_check(fleet, first_run):
    """The verification's read-back (one fleet_plan devices_only call for the batch): a device that reads back is
    judged on what it serves (and fleet_plan_installed is what the report shows); a device whose management API
    refuses the read fails the check 'device-readback' by name, the other host is not affected, and the password
    (the wrong one nor the right one) is never printed, not at -vvv."""
    assert first_run["proc"].returncode == 0
    expected = {"mediant_sa": fleet.stored_fingerprint("grp_mediant_sa"),
                "sbc_edge": fleet.stored_fingerprint("grp_sbc_edge")}
    play = fleet.dir / "verify-readback.yml"
    play.write_text(VERIFY_PLAY)
    wrong = "readback-wrong-pw-73"
    before = len([r for r in fleet.device_requests()["mediant_sa"] if not r["path"].startswith("/_control/")])
    proc = fleet.playbook(str(play), "-vvv",
                          extra={"wrong_password": wrong, "expected": expected, "acme_root": fleet.acme_root()})
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out[-3000:]
    verdicts = json.loads(base64.b64decode(re.search(r"VERDICTS ([A-Za-z0-9+/=]+) END", out).group(1)))
    assert "device-readback" in verdicts["checks"]["sbc_edge"], verdicts
    assert "device-readback" not in verdicts["checks"]["mediant_sa"], verdicts
    assert "could not read ribbon_edge device sbc_edge at" in verdicts["detail"][0], verdicts
    assert verdicts["installed"] == {"mediant_sa": expected["mediant_sa"], "sbc_edge": None}, verdicts
    after = [r for r in fleet.device_requests()["mediant_sa"] if not r["path"].startswith("/_control/")][before:]
    assert after and not [r for r in after if r["method"] != "GET"], after  # read only, nothing written
    assert wrong not in out
    assert fleet.c["audiocodes"]["devices"]["mediant-sa"]["password"] not in out
