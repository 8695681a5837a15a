"""Job slicing without surprises (issue 12 item 5): playbooks/rotate.yml as 3 concurrent ansible-runner slices.

AWX slicing runs one job as N independent ``ansible-playbook`` processes at the same time; slice k gets the hosts
k, k+N, k+2N ... of the inventory (in inventory order) and sees only those hosts, so ``run_once`` runs once per
slice and the members of one certificate group can be in different slices. Each slice here is an ansible-runner
private data directory laid out as AWX lays it out (inventory/ with the slice's hosts only, env/envvars with the
job's JOB_ID, env/extravars, project/, artifacts/), all against ONE lab org and ONE store.

The fleet is a variant of inventory.example/lab in which the two AudioCodes devices are the members of one
certificate group ``grp_mediant`` (one certificate for both names), so that group is split: mediant_ha is in slice
1 and mediant_sa in slice 2. Every slice needs the same issuing CA in the org (all groups come from the lab's
Pebble), so all three change the org's trust at the same time.

Observed independently of the playbook's claims: Pebble's log (ACME orders), the Genesys emulator's state (REMOTE CA
entries), TLS handshakes by name against every member, the store's documents and lease objects on disk, and the
report files.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

from byoc_harness import REPO, ansible_env  # noqa: E402  (on sys.path via conftest)
from byoclab.components import select  # noqa: E402
from byoclab.core import Lab  # noqa: E402
from test_rotate import PARTS, Fleet, get  # noqa: E402  (the lab fleet's independent observers)

SLICES = 3
HOSTS = ["mediant_ha", "mediant_sa", "sbc_core", "sbc_edge"]  # inventory order
GROUP_OF = {"mediant_ha": "grp_mediant", "mediant_sa": "grp_mediant", "sbc_core": "grp_sbc_core",
            "sbc_edge": "grp_sbc_edge"}
GROUPS = sorted(set(GROUP_OF.values()))
PASSPHRASE = "slicing-test-passphrase-1"
# the AWX project: the collection's playbooks (BYOC_TEST_PLAYBOOKS: another copy, to try a change out)
PLAYBOOKS = Path(os.environ.get("BYOC_TEST_PLAYBOOKS") or REPO / "playbooks")


def slice_hosts(k: int, n: int = SLICES) -> list[str]:
    """AWX: slice k (1-based) of n gets every n-th host of the inventory, starting with the k-th."""
    return HOSTS[k - 1::n]


class SlicedFleet(Fleet):
    def __init__(self, lab: Lab, directory: Path):
        super().__init__(lab, directory)
        self.inventory = self._variant_inventory()
        self.runs = 0

    # -- the inventory: the lab inventory's hosts, with the two AudioCodes devices in one certificate group ---------
    def _variant_inventory(self) -> dict:
        env = ansible_env(self.env)
        proc = subprocess.run([str(Path(sys.executable).parent / "ansible-inventory"), "-i",
                               str(REPO / "inventory.example" / "lab"), "--list"], capture_output=True, text=True,
                              env=env, cwd=REPO, timeout=120, check=True)
        hostvars = json.loads(proc.stdout)["_meta"]["hostvars"]
        names = [hostvars[h]["byoc_sip_tls"]["name"] for h in ("mediant_ha", "mediant_sa")]
        for h in ("mediant_ha", "mediant_sa"):
            hostvars[h]["byoc_certificate_group"] = "grp_mediant"
            hostvars[h]["byoc_certificate_names"] = names
        return {h: hostvars[h] for h in HOSTS}

    def inventory_of(self, hosts: list[str]) -> dict:
        """A static inventory with only ``hosts`` (what AWX hands a slice), in inventory order."""
        children: dict = {}
        for h in hosts:
            children.setdefault(GROUP_OF[h], {"hosts": {}})["hosts"][h] = self.inventory[h]
        return {"all": {"children": {"byoc_sbc": {"children": children}}}}

    # -- one AWX job = one ansible-runner private data directory ---------------------------------------------------
    def private_data_dir(self, name: str, hosts: list[str], job_id: int, extra: dict) -> Path:
        d = self.dir / "runner" / f"{name}-{self.runs}"
        self.runs += 1
        (d / "inventory").mkdir(parents=True)
        (d / "env").mkdir()
        os.symlink(PLAYBOOKS, d / "project")
        (d / "inventory" / "hosts.json").write_text(json.dumps(self.inventory_of(hosts)))
        env = {k: v for k, v in ansible_env(self.env).items() if k.startswith(("ANSIBLE_", "BYOC_"))}
        env.update(JOB_ID=str(job_id), PATH=f"{Path(sys.executable).parent}:{os.environ.get('PATH', '')}")
        env.pop("ANSIBLE_STDOUT_CALLBACK", None)  # ansible-runner brings its own (the job events)
        (d / "env" / "envvars").write_text(json.dumps(env))
        extravars = {"byoc_store": {"backend": "filesystem", "path": str(self.store)}, "awx_job_id": job_id,
                     "tower_job_id": job_id, **extra}
        (d / "env" / "extravars").write_text(json.dumps(extravars))
        return d

    def start(self, playbook: str, d: Path) -> subprocess.Popen:
        cmd = [str(Path(sys.executable).parent / "ansible-runner"), "run", str(d), "-p", playbook, "--ident", "job"]
        # own session: the slice and everything it starts form one process group, stopped by its PID
        env = ansible_env({})
        env.pop("ANSIBLE_STDOUT_CALLBACK", None)
        return subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, cwd=d,
                                start_new_session=True, env=env)

    @staticmethod
    def finish(proc: subprocess.Popen, timeout: float = 3600) -> dict:
        try:
            out = proc.communicate(timeout=timeout)[0]
        except subprocess.TimeoutExpired:
            kill_slice(proc)
            out = proc.communicate()[0]
        return {"rc": proc.returncode, "stdout": out or ""}

    def slices(self, extra: dict, first_job: int) -> list[dict]:
        runs = []
        for k in range(1, SLICES + 1):
            d = self.private_data_dir(f"slice{k}", slice_hosts(k), first_job + k,
                                      {"byoc_report_slice": str(k), **extra})
            runs.append({"k": k, "dir": d, "proc": self.start("rotate.yml", d)})
        for r in runs:
            r.update(self.finish(r["proc"]))
        return runs

    # -- observers ---------------------------------------------------------------------------------------------------
    def org_remote_cas(self) -> list[dict]:
        state = get(f"{self.c['genesys']['control_url']}/state", self.ca_file)
        return [ca for ca in state["certificate_authorities"] if ca["type"] == "REMOTE"]

    def store_doc(self, group: str) -> dict:
        return json.loads((self.store / group / "state.json").read_text())

    def ledgers(self) -> list[dict]:
        return [json.loads(p.read_text()) for p in self.store.glob("genesys-trust-*/state.json")]

    def live_leases(self) -> list[tuple[str, dict]]:
        out = []
        for p in self.store.glob("*/lock.json"):
            lock = json.loads(p.read_text() or "{}")
            if lock.get("owner"):
                out.append((p.parent.name, lock))
        return out

    def slice_report(self, k: int) -> dict:
        return json.loads((self.report_dir / "slices" / str(k) / "report.json").read_text())


def process_tree(root: int) -> list[int]:
    """``root`` and every process below it (from /proc: ansible-runner starts ansible-playbook under a pty in a
    session of its own, so the runner's process group alone does not hold the playbook)."""
    parents: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        parents.setdefault(int(fields[1]), []).append(int(stat.parent.name))
    out, todo = [], [root]
    while todo:
        pid = todo.pop()
        out.append(pid)
        todo += parents.get(pid, [])
    return out


def kill_slice(proc: subprocess.Popen) -> None:
    """SIGKILL a slice by its PID: every process group of its process tree (runner, ansible-playbook, workers)."""
    groups = set()
    for pid in process_tree(proc.pid):
        try:
            groups.add(os.getpgid(pid))
        except ProcessLookupError:
            pass
    for group in groups:
        try:
            os.killpg(group, signal.SIGKILL)
        except ProcessLookupError:
            pass


def events(d: Path) -> list[dict]:
    """The job's events (the artifacts AWX keeps)."""
    return [json.loads(p.read_text()) for p in sorted((d / "artifacts" / "job" / "job_events").glob("*.json"))]


def leases_taken(d: Path, group: str) -> list[dict]:
    """The results of the job's certificate_store_lease tasks that took ``group``'s lease."""
    out = []
    for e in events(d):
        data = e.get("event_data") or {}
        res = data.get("res") or {}
        if (e.get("event") == "runner_on_ok" and str(data.get("task_action", "")).endswith("certificate_store_lease")
                and res.get("group") == group and res.get("state") == "acquired"):
            out.append(res)
    return out


@pytest.fixture(scope="module")
def fleet():
    directory = Path(tempfile.mkdtemp(prefix="byoc-slicing-"))
    lab = Lab(directory / "lab")
    try:
        lab.up(select(PARTS))
        f = SlicedFleet(lab, directory)
        f.env["BYOC_STORE_PASSPHRASE"] = PASSPHRASE
        proc = f.playbook("demo_lab.yml")
        assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr
        yield f
    finally:
        lab.down()
        shutil.rmtree(directory, ignore_errors=True)


def assert_converged(fleet: SlicedFleet) -> dict:
    """Every member serves its group's stored certificate (no HA pair split), read by name through the lab DNS and
    trusting only the ACME root; no REMOTE CA twice in the org; no lease left held. Returns host -> fingerprint."""
    root = fleet.acme_root()
    served = {}
    for host in HOSTS:
        seen = fleet.probe(host, root)
        assert seen["ok"], (host, seen)
        served[host] = seen["peer_sha256"]
        assert served[host] == fleet.store_doc(GROUP_OF[host])["current"]["fingerprint"], host
    assert served["mediant_ha"] == served["mediant_sa"]  # the split group's members serve ONE certificate
    fps = [fp for ca in fleet.org_remote_cas() for fp in ca["fingerprints"]]
    assert len(fps) == len(set(fps)), fleet.org_remote_cas()  # exactly one REMOTE entry per CA
    assert fleet.live_leases() == []  # every lease given back (group leases and the org's)
    return served


def test_three_concurrent_slices_issue_each_group_once(fleet):
    assert slice_hosts(1) == ["mediant_ha", "sbc_edge"] and slice_hosts(2) == ["mediant_sa"]  # grp_mediant split
    orders = fleet.orders()
    runs = fleet.slices({}, first_job=900)
    for r in runs:
        assert r["rc"] == 0, (r["k"], r["stdout"][-6000:])
        assert (r["dir"] / "artifacts" / "job" / "rc").read_text().strip() == "0"

    # one ACME order per certificate group, not one per slice (grp_mediant has a leader in slices 1 and 2)
    assert fleet.orders() - orders == len(GROUPS)
    served = assert_converged(fleet)
    # the org: every CA of the groups' chains exactly once, and the record of what was created lost no write
    # (three slices wrote it; each group that needs a CA is listed on it)
    remote = {fp for ca in fleet.org_remote_cas() for fp in ca["fingerprints"]}
    (ledger,) = fleet.ledgers()
    created = ledger["genesys_trust"]["authorities"]
    assert created and set(created) <= remote
    assert sorted({g for e in created.values() for g in e["groups"]}) == GROUPS, created

    # each slice's report is complete for its hosts (and only them); report.yml afterwards shows the whole fleet
    for r in runs:
        report = fleet.slice_report(r["k"])
        members = {m["host"]: m for g in report["groups"] for m in g["members"]}
        assert sorted(members) == sorted(slice_hosts(r["k"])), (r["k"], report)
        assert all(g["status"] == "renewed" for g in report["groups"]), (r["k"], report)
        assert all(members[h]["fingerprint"] == served[h] for h in members), (r["k"], report)
    d = fleet.private_data_dir("report", HOSTS, 999, {})
    rep = fleet.finish(fleet.start("report.yml", d))
    assert rep["rc"] == 0, rep["stdout"][-4000:]
    report = fleet.report()
    members = {m["host"]: m for g in report["groups"] for m in g["members"]}
    assert sorted(g["group"] for g in report["groups"]) == GROUPS
    assert sorted(members) == HOSTS and all(members[h]["fingerprint"] == served[h] for h in HOSTS), report


def test_a_slice_killed_holding_a_group_lease_blocks_only_until_the_ttl(fleet):
    """Slice 1 (canary mediant_ha, the leader of grp_mediant) is SIGKILLed, by its process group, as soon as it holds
    grp_mediant's lease. A forced re-run of all three slices takes that lease over only once it has expired (the
    leases taken, read from the job events, begin at or after its expiry) and converges: one order per group, one
    certificate per group, no duplicate CA, no lease left.

    The TTL covers the longest step between two renewals of the lease under this machine's load (a shorter one
    lets another slice take a live order's lease over: that slice fails its store writes, and the group is ordered
    twice)."""
    ttl = 150
    lock = fleet.store / "grp_mediant" / "lock.json"
    # The role engine: its lease steps are tasks, so the job events say who took the lease and whom it waited for
    # (fleet_issue takes the leases inside one no_log call; the fault matrix's row 20 kills a batch-engine run while
    # it holds the lease).
    role = {"byoc_issue_engine": "role"}
    d = fleet.private_data_dir("killed", slice_hosts(1), 801, {"byoc_force": True, "byoc_lease_ttl": ttl, **role})
    proc = fleet.start("rotate.yml", d)
    deadline = time.monotonic() + 1800
    dead = {}
    while time.monotonic() < deadline and proc.poll() is None:
        try:
            dead = json.loads(lock.read_text())
        except (FileNotFoundError, ValueError):
            dead = {}
        if dead.get("owner"):
            break
        time.sleep(0.05)
    # the holder of job 801: "801@<controller>:<pid>" (fleet_issue) or "certificate_issue-801-..." (the role engine)
    assert str(dead.get("owner", "")).startswith(("801@", "certificate_issue-801-")), dead
    tree = process_tree(proc.pid)
    assert any("ansible-playbook" in Path(f"/proc/{p}/cmdline").read_text() for p in tree if Path(f"/proc/{p}").exists())
    kill_slice(proc)  # by the slice's PID: its whole process tree, ansible-playbook and its workers included
    proc.communicate()

    def alive() -> list[int]:
        found = []
        for p in tree:
            try:
                if "ansible" in Path(f"/proc/{p}/cmdline").read_text():
                    found.append(p)
            except OSError:
                pass
        return found
    # a SIGKILLed worker that is not our child is reaped by init a moment later: give it a few seconds to be gone
    for _attempt in range(100):
        if not alive():
            break
        time.sleep(0.1)
    assert not alive()
    assert json.loads(lock.read_text())["owner"] == dead["owner"]  # the dead slice still holds it

    orders = fleet.orders()
    runs = fleet.slices({"byoc_force": True, "byoc_lease_ttl": ttl, **role}, first_job=810)
    for r in runs:
        assert r["rc"] == 0, (r["k"], r["stdout"][-6000:])
    taken = [res for r in runs for res in leases_taken(r["dir"], "grp_mediant")]
    assert taken, "no slice took grp_mediant's lease"
    # nobody took the dead slice's lease before it expired; whoever came early waited, naming the dead holder
    assert min(res["lease"]["acquired"] for res in taken) >= dead["expires"], (dead, taken)
    early = [res for res in taken if any(w["holder"] == dead["owner"] for w in res["waited_for"])]
    for res in early:
        assert any(dead["owner"] in line and dead["expires"] in line for line in res["progress"]), res
    assert fleet.orders() - orders == len(GROUPS)  # one new order per group after the kill
    assert_converged(fleet)
