"""The fault matrix (issue 13 §3; docs/faults.md): one test per row, every row asserts the same invariant.

One private lab for the file (bind, pebble, genesys, audiocodes, ribbon_core, ribbon_edge). The fleet of
inventory.example/lab (four groups: the AudioCodes HA pair and standalone unit, the Ribbon SBC Core pair, the Ribbon
SBC Edge) is rotated once, so every trunk is connected on Pebble's chain and the store holds every group. Then each
row:

1. injects its fault (an emulator's TEST-ONLY ``/_control`` API, a test-side ACME or DNS fault server from
   faultlib, a kill by PID, a full file system), in the one group the fault concerns (``--limit``), forced to
   rotate where the fault needs a rotation;
2. runs ``rotate.yml`` at ``-vvv`` and checks what the run did about it (docstring: the fault; where it strikes;
   what the run does; the end state);
3. calls ``faultlib.invariant``: every endpoint serves a valid certificate that chains to a CA the org trusts
   (independent SIP-TLS client, CAs read from the org's API), no HA pair split (every member read back), no key lost
   (every store key opens and matches), the failure named (group, device, step), no secret printed, and a re-run
   converges (a second run fails nothing; a third changes nothing when the second changed something).
"""

from __future__ import annotations

import errno
import json
import os
import shutil
import subprocess
import tempfile
import threading
from pathlib import Path

import pytest

from byoc_harness import REPO, ansible_env  # noqa: E402  (on sys.path via conftest)
from byoclab.components import select  # noqa: E402
from byoclab.core import Lab  # noqa: E402
from faultlib import (GROUP, AcmeFaultProxy, FakeDns, MatrixFleet, invariant, kill_run, watch)  # noqa: E402

PARTS = ["bind", "pebble", "genesys", "audiocodes", "ribbon_core", "ribbon_edge"]
V = "-vvv"  # every faulted run: no secret may show even at -vvv


@pytest.fixture(scope="module")
def fleet():
    directory = Path(tempfile.mkdtemp(prefix="byoc-matrix-"))
    lab = Lab(directory / "lab")
    try:
        lab.up(select(PARTS))
        f = MatrixFleet(lab, directory)
        env = ansible_env({"BYOC_LAB_JSON": str(lab.json_file), "ANSIBLE_STDOUT_CALLBACK": "default"})
        proc = subprocess.run([str(Path(f.command()[0])), "-i", str(REPO / "inventory.example" / "lab"),
                               str(REPO / "playbooks" / "demo_lab.yml")], capture_output=True, text=True, env=env,
                              timeout=300, cwd=REPO, check=False)
        assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr
        first = f.run()  # the fleet on Pebble's chain, every trunk connected: the state each row starts from
        assert first.returncode == 0, first.stdout[-6000:] + first.stderr[-2000:]
        yield f
    finally:
        lab.down()
        shutil.rmtree(directory, ignore_errors=True)


@pytest.fixture
def f(fleet, request):
    fleet.outputs = []
    yield fleet
    fleet.genesys("DELETE", "faults")
    keep = os.environ.get("BYOC_MATRIX_LOGS")  # a directory: every run's output of each row, to read a failure
    if keep:
        Path(keep).mkdir(parents=True, exist_ok=True)
        (Path(keep) / f"{request.node.name}.log").write_text("\n\n=== next run ===\n\n".join(fleet.outputs))


def force(group: str, *args: str, extra: dict | None = None, fleet: MatrixFleet, store: Path | None = None,
          clear: bool = True):
    if clear:
        fleet.clear_backoff(group, store)  # an earlier row's failure must not keep this row from its step
    return fleet.run("--limit", group, V, *args, extra={"byoc_force": True, **(extra or {})}, store=store)


def failed_names(group: str, host: str, step: str) -> list[str]:
    return [group, rf"\b{host}\b", step]


# ---- ACME ------------------------------------------------------------------------------------------------------
def test_acme_server_down(f):
    """Fault: the ACME server answers 503 + Retry-After to every request (down for maintenance).
    Strikes: issue, the leader's first ACME request (the plan's ARI request fails too: a warning).
    The run: community.crypto retries (Retry-After honoured, bounded), the group records the failure (backoff) and
    the run fails naming it; nothing is written to the device.
    End state: the unit serves its previous certificate; the store unchanged apart from the backoff."""
    host, group = "mediant_sa", GROUP["mediant_sa"]
    proxy = AcmeFaultProxy(f.lab, "down", retry_after=1)
    writes = len(f.device_writes(host))
    try:
        proc = force(group, extra={"byoc_acme": proxy.acme()}, fleet=f)
    finally:
        proxy.close()
    assert proc.returncode != 0 and proxy.hits, proc.stdout[-4000:]
    assert len(f.device_writes(host)) == writes  # the device untouched
    invariant(f, proc, limit=group, names=failed_names(group, host, r"issuing failed at '[^']+'"))


def test_acme_rate_limited_with_retry_after(f):
    """Fault: two newOrder requests answered 429 ``rateLimited`` with ``Retry-After: 2``.
    Strikes: issue, creating the order.
    The run: waits as Retry-After says and orders again (community.crypto), then issues and deploys.
    End state: the unit serves the new certificate; one order placed after two refusals."""
    host, group = "mediant_sa", GROUP["mediant_sa"]
    proxy = AcmeFaultProxy(f.lab, "ratelimited", count=2, retry_after=2)
    before = f.probe(host)["peer_sha256"]
    try:
        proc = force(group, extra={"byoc_acme": proxy.acme()}, fleet=f)
    finally:
        proxy.close()
    assert [h[2] for h in proxy.hits] == [429, 429], proxy.hits
    assert proc.returncode == 0, proc.stdout[-6000:]
    assert f.probe(host)["peer_sha256"] != before
    invariant(f, proc, limit=group, names=[])


def test_acme_bad_nonce_again_and_again(f):
    """Fault: every ACME POST answered 400 ``badNonce`` (with a fresh nonce each time).
    Strikes: issue, the account request (the first POST).
    The run: retries a bounded number of times (community.crypto: 5), then the group fails by name with its backoff.
    End state: the unit serves its previous certificate; nothing written to the device."""
    host, group = "mediant_sa", GROUP["mediant_sa"]
    proxy = AcmeFaultProxy(f.lab, "badnonce")
    writes = len(f.device_writes(host))
    try:
        proc = force(group, extra={"byoc_acme": proxy.acme()}, fleet=f)
    finally:
        proxy.close()
    assert proc.returncode != 0 and len(proxy.hits) > 1, (proxy.hits, proc.stdout[-4000:])
    assert len(f.device_writes(host)) == writes
    invariant(f, proc, limit=group, names=failed_names(group, host, r"issuing failed at '[^']+'"))


def test_acme_order_becomes_invalid(f):
    """Fault: the challenge TXT record disappears before the CA looks, so Pebble's DNS-01 validation fails and the
    authorization and the order become invalid.
    Strikes: issue, validation (after the TXT records were published and seen).
    The run: the validation fails, the records are removed, the failure is recorded (backoff) and named.
    End state: the unit serves its previous certificate; nothing written to the device."""
    host, group = "mediant_sa", GROUP["mediant_sa"]
    proxy = AcmeFaultProxy(f.lab, "invalid")
    writes = len(f.device_writes(host))
    try:
        proc = force(group, extra={"byoc_acme": proxy.acme()}, fleet=f)
    finally:
        proxy.close()
    assert proc.returncode != 0 and proxy.hits, (proxy.hits, proc.stdout[-4000:])
    assert len(f.device_writes(host)) == writes
    invariant(f, proc, limit=group, names=failed_names(group, host, r"issuing failed at '[^']+'") + [r"(?i)invalid"])


# ---- DNS -------------------------------------------------------------------------------------------------------
def test_dns_refused(f):
    """Fault: the DNS server that takes the TSIG updates answers REFUSED.
    Strikes: issue, publishing the TXT record (after the order was created).
    The run: the update fails with REFUSED, the group's failure is recorded and named.
    End state: the unit serves its previous certificate; nothing written to the device."""
    host, group = "mediant_sa", GROUP["mediant_sa"]
    refused = FakeDns("refused")
    dns_opts = {**_dns(f), "options": {**_dns(f)["options"], "server": "127.0.0.1", "port": refused.port}}
    writes = len(f.device_writes(host))
    try:
        proc = force(group, extra={"byoc_dns": dns_opts}, fleet=f)
    finally:
        refused.close()
    assert proc.returncode != 0 and refused.queries, proc.stdout[-4000:]
    assert len(f.device_writes(host)) == writes
    invariant(f, proc, limit=group, names=failed_names(group, host, r"REFUSED"))


def test_dns_secondary_never_catches_up(f):
    """Fault: one of the zone's authoritative servers is a secondary that never catches up (it serves the zone as
    it was before the TXT record was added).
    Strikes: issue, waiting for every authoritative server to serve the TXT record.
    The run: waits up to the DNS wait timeout (15 s here), never asks the CA to validate, removes the record and
    fails the group by name (backoff).
    End state: the unit serves its previous certificate; nothing written to the device."""
    host, group = "mediant_sa", GROUP["mediant_sa"]
    b = f.c["bind"]
    stale = FakeDns("stale", primary=b["primary"], zone=b["zones"]["lab"])
    dns_opts = {**_dns(f), "nameservers": [f"{b['primary']['host']}:{b['primary']['port']}", f"127.0.0.1:{stale.port}"]}
    writes = len(f.device_writes(host))
    try:
        proc = force(group, extra={"byoc_dns": dns_opts, "certificate_issue_dns_wait_timeout": 15}, fleet=f)
    finally:
        stale.close()
    assert proc.returncode != 0 and stale.queries, proc.stdout[-4000:]
    assert len(f.device_writes(host)) == writes
    invariant(f, proc, limit=group, names=failed_names(group, host, r"issuing failed at '[^']+'") + [r"Timed out \(wait_timeout 15s"])


def _dns(f: MatrixFleet) -> dict:
    b = f.c["bind"]
    return {"provider": "rfc2136", "zone": b["zones"]["lab"],
            "nameservers": [f"{b['primary']['host']}:{b['primary']['port']}"],
            "options": {"server": b["primary"]["host"], "port": b["primary"]["port"], "key_name": b["tsig"]["name"],
                        "key_secret": b["tsig"]["secret"], "key_algorithm": b["tsig"]["algorithm"]}}


# ---- SBCs ------------------------------------------------------------------------------------------------------
def _ac(f: MatrixFleet, host: str, path: str, body: dict):
    from faultlib import AC_DEVICE, call  # noqa: PLC0415
    dev = f.c["audiocodes"]["devices"][AC_DEVICE[host]]
    return call(f"{dev['control_url']}/{path}", dev["ca_file"], method="POST", body=body)


def test_sbc_answers_5xx_between_two_writes(f):
    """Fault: the AudioCodes HA pair answers 500 to the trusted-roots write, after the key and certificate of the
    staged context were written.
    Strikes: deploy, between two writes of the staged install.
    The run: the install fails, the serving context is untouched (staged), the group is rolled back and verified,
    the run fails naming group, device and step.
    End state: both units serve the previous certificate."""
    host, group = "mediant_ha", GROUP["mediant_ha"]
    _ac(f, host, "faults", {"method": "PUT", "path": r"/api/v1/files/tls/\d+/trustedRoot(/incremental)?",
                            "status": 500, "count": 1, "description": "Internal error (injected by the fault matrix)"})
    proc = force(group, fleet=f)
    assert proc.returncode != 0, proc.stdout[-4000:]
    invariant(f, proc, limit=group, names=failed_names(group, host, r"check 'deploy' failed"))


def test_ha_pair_in_sync_forever(f):
    """Fault: the AudioCodes HA pair answers every write 409 (redundant board synchronising), for ever.
    Strikes: deploy, the first write.
    The run: the module retries the 409 a bounded number of times, the install fails, the group is rolled back
    (nothing served changed) and the run fails naming group, device and the synchronisation.
    End state: both units serve the previous certificate."""
    host, group = "mediant_ha", GROUP["mediant_ha"]
    _ac(f, host, "ha", {"syncing": True})
    try:
        # the inventory's bound on the 409 retries (byoc_audiocodes_sync_retries/_delay), kept short here: with the
        # module's default (10 retries, doubling from 5 s) each write waits minutes, and the rollback as long again
        proc = force(group, fleet=f, extra={"byoc_audiocodes_sync_retries": 2, "byoc_audiocodes_sync_delay": 1})
    finally:
        _ac(f, host, "ha", {"syncing": False})
    assert proc.returncode != 0, proc.stdout[-4000:]
    invariant(f, proc, limit=group, names=failed_names(group, host, r"(?i)synchroni[sz]"))


def test_standby_unreachable_for_sftp(f):
    """Fault: the Ribbon SBC Core's standby node refuses SFTP (unreachable).
    Strikes: deploy, copying the PKCS#12 to every node (before any PKI object or profile change).
    The run: the install fails naming the node, removes what it copied, the group is rolled back and verified.
    End state: both nodes hold and serve the previous certificate."""
    host, group = "sbc_core", GROUP["sbc_core"]
    from faultlib import call  # noqa: PLC0415
    core = f.c["ribbon_core"]
    standby = next(n for n in call(f"{core['control_url']}/state", f.ca_file)["nodes"] if n["role"] == "standby")
    call(f"{core['control_url']}/sftp", f.ca_file, method="POST", body={"node": standby["name"], "down": True})
    try:
        proc = force(group, fleet=f)
    finally:
        call(f"{core['control_url']}/sftp", f.ca_file, method="POST", body={"node": standby["name"], "down": False})
    assert proc.returncode != 0, proc.stdout[-4000:]
    invariant(f, proc, limit=group, names=failed_names(group, host, rf"node {standby['name']}"))


def test_switchover_in_the_middle_of_a_rotation(f):
    """Fault: the AudioCodes HA pair switches over (the redundant becomes active) right after the first write of
    the staged install.
    Strikes: deploy, between the staged writes.
    The run: goes on against the new active (OAMP floats), which holds what was replicated; verification reads both
    units back; if a step fails, the group is rolled back and named.
    End state: both units agree on one certificate that chains to a CA the org trusts."""
    host, group = "mediant_ha", GROUP["mediant_ha"]
    start = len(f.device_log(host))
    fired = threading.Event()
    t = watch(lambda: any(m == "PUT" and "/files/tls/" in p for m, p in f.device_log(host)[start:]),
              lambda: (_ac(f, host, "switchover", {}), fired.set()))
    try:
        proc = force(group, fleet=f)
    finally:
        t.stop.set()
    assert fired.is_set(), "the switchover never struck"
    invariant(f, proc, limit=group, names=failed_names(group, host, r"check '[a-z-]+' failed"))


def test_mutual_auth_sbc_without_the_managed_ca(f):
    """Fault: a mutual-TLS AudioCodes pair gets a staged context without the org's MANAGED CA (trusted roots managed
    exactly, the MANAGED CA left out).
    Strikes: verify, after the re-bind (the Edges are refused).
    The run: the check 'managed-ca' fails, the group goes back to the context that served before, is verified again,
    the store follows the rollback, the run fails naming group, device and check.
    End state: both units serve the previous certificate and accept the Edges."""
    host, group = "mediant_ha", GROUP["mediant_ha"]
    proc = force(group, extra={"byoc_install_managed_ca": False, "byoc_audiocodes_trusted_roots_mode": "exact"},
                 fleet=f)
    assert proc.returncode != 0, proc.stdout[-4000:]
    assert "is served again and verified" in proc.stdout
    invariant(f, proc, limit=group, names=failed_names(group, host, r"check 'managed-ca' failed"))
    assert all(f.trunks_up(host))


def test_edge_holds_an_old_tls_session(f):
    """Fault: the Genesys Edges keep their SIP-TLS sessions to the Ribbon SBC Core across the certificate change
    (sbc-apis.md B6: existing sessions keep the old certificate), so trunk health still reflects the old one.
    Strikes: verify.
    The run: proves the new certificate with a fresh handshake by name against the org's CAs (never trunk health
    alone), and waits for trunk health observed after the batch started.
    End state: the pair serves the new certificate; old sessions ran on the old one until they ended."""
    host, group = "sbc_core", GROUP["sbc_core"]
    before = f.probe(host)["peer_sha256"]
    proxy = f"{f.sip[host]['name']}:{f.sip[host]['port']}"
    kept = [s for s in f.genesys()["edge_sessions"] if s["proxy"] == proxy and s["open"]]
    assert kept and all(s["peer_sha256"] == before for s in kept), kept
    proc = force(group, fleet=f)
    assert proc.returncode == 0, proc.stdout[-6000:]
    seen = invariant(f, proc, limit=group, names=[])
    assert seen["served"][host] != before


# ---- Genesys ---------------------------------------------------------------------------------------------------
def test_genesys_401_in_the_middle_of_a_run(f):
    """Fault: every Genesys token expires after the run's third API request (401 credentials.expired).
    Strikes: trust (the REMOTE CA write) or verify, whichever request comes next.
    The run: mints a new token and goes on (or fails the step by name).
    End state: the unit serves the new certificate (or the old one after a rollback), trusted by the org."""
    host, group = "sbc_edge", GROUP["sbc_edge"]
    minted = f.genesys()["tokens_minted"]
    f.genesys("POST", "faults", {"expire_tokens": {"after_requests": 3}})
    proc = force(group, fleet=f)
    state = f.genesys()
    assert "expire_tokens" not in state["faults"], state["faults"]  # the fault struck
    assert state["tokens_minted"] > minted
    invariant(f, proc, limit=group, names=failed_names(group, host, r"(?i)genesys|trunk|trust"))


def test_genesys_429_storm(f):
    """Fault: the next 8 Genesys API requests are answered 429 with Retry-After: 1.
    Strikes: the run's first Genesys request, the read of the org's trust store (inventory check play).
    The run: honours Retry-After and asks again (the Genesys client: up to 10 retries of a 429, as the SDK does,
    genesys-cloud-api.md §5.3), so the storm costs about 8 s; then it renews, trusts, deploys and verifies.
    End state: the unit serves a new certificate that the org trusts; the whole storm was answered."""
    host, group = "sbc_edge", GROUP["sbc_edge"]
    before = f.probe(host)["peer_sha256"]
    f.genesys("POST", "faults", {"rate_limit": {"count": 8, "retry_after": 1}})
    proc = force(group, fleet=f)
    left = f.genesys()["faults"]["rate_limit"]["count"]
    f.genesys("DELETE", "faults")  # (nothing left when the row passes; else it would strike the invariant's reads)
    assert left == 0, left  # all 8 answers struck the run
    assert proc.returncode == 0, proc.stdout[-6000:]
    seen = invariant(f, proc, limit=group, names=[])
    assert seen["served"][host] != before


def test_genesys_5xx(f):
    """Fault: the next 3 Genesys API requests are answered 503 service.unavailable.
    Strikes: the first trust read.
    The run: retries (bounded) or fails before any device is touched, naming the step.
    End state: the unit serves a certificate the org trusts."""
    host, group = "sbc_edge", GROUP["sbc_edge"]
    f.genesys("POST", "faults", {"errors": {"count": 3, "status": 503}})
    proc = force(group, fleet=f)
    assert f.genesys()["faults"]["errors"]["count"] < 3  # the fault struck
    invariant(f, proc, limit=group, names=failed_names(group, host, r"(?i)503|unavailable"))


def test_trunk_goes_down_after_deployment(f):
    """Fault: both Genesys Edges go OFFLINE as soon as the AudioCodes unit re-binds to the new certificate, so its
    trunks go down (at the Edges' next health round).
    Strikes: verify.
    The run: the Edges that served the unit's trunks before the change are read again after it (edge health) and
    are OFFLINE: the check 'edge-health' fails by name (the trunk wait may pass first on an observation made after
    the batch started but before the Edges went down; if it sees them down, check 'trunk' is named too). The group
    is rolled back, the store follows the rollback, the run fails naming group, device and check.
    End state: the unit serves its previous certificate; the Edges back ONLINE, a re-run changes nothing."""
    host, group = "mediant_sa", GROUP["mediant_sa"]
    edges = [e["id"] for e in f.genesys()["edges"]]
    start = len(f.device_log(host))
    before = f.probe(host)["peer_sha256"]

    def offline():
        for e in edges:
            f.genesys("POST", f"edges/{e}", {"onlineStatus": "OFFLINE"})
    t = watch(lambda: ("PUT", "/api/v1/files/ini/incremental") in f.device_log(host)[start:], offline)
    try:
        proc = force(group, fleet=f)
    finally:
        t.stop.set()
        for e in edges:
            f.genesys("POST", f"edges/{e}", {"onlineStatus": "ONLINE"})
    assert proc.returncode != 0, proc.stdout[-4000:]
    assert f"the previous certificate {before} is served again and verified" in proc.stdout, proc.stdout[-4000:]
    seen = invariant(f, proc, limit=group, names=failed_names(group, host, r"check 'edge-health' failed: Edge [^;]+ "
                                                                           r"turned unhealthy after the change: "
                                                                           r"onlineStatus is OFFLINE"))
    assert seen["served"][host] == before


# ---- the controller and the store ------------------------------------------------------------------------------
def test_controller_killed_in_the_middle_of_a_run(f):
    """Fault: the controller (ansible-playbook, its workers and their module processes) is killed with SIGKILL, each
    by its PID, as soon as the first staged write reaches the AudioCodes HA pair (faultlib.kill_run: the workers run
    in sessions of their own, so killing ansible-playbook's process group alone left the module writing).
    Strikes: deploy, after the new certificate was issued and stored.
    The run: nothing (it is dead); the re-run plans from what the devices serve and the store holds, deploys the
    stored certificate (no new order) and verifies.
    End state: both units serve the group's stored certificate."""
    host, group = "mediant_ha", GROUP["mediant_ha"]
    start = len(f.device_log(host))
    run = f.start("--limit", group, V, extra={"byoc_force": True})
    t = watch(lambda: any(m == "PUT" and "/files/tls/" in p for m, p in f.device_log(host)[start:]),
              lambda: kill_run(run), interval=0.05)
    proc = f.finish(run)
    t.stop.set()
    assert proc.returncode == -9, proc.stdout[-4000:]  # killed, not finished
    seen = invariant(f, proc, limit=group, names=[])
    assert seen["served_after"][host] == seen["store"][group]["current"]


def _fill(path: Path) -> int:
    """Write ``path`` until the file system has no byte left (unbuffered, so nothing is left to flush when the file is
    closed: a buffered file raised ENOSPC again on close, in the test itself). Returns the bytes written."""
    written = 0
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        for chunk in (1 << 16, 4096, 1):
            block = b"\0" * chunk
            try:
                while True:
                    n = os.write(fd, block)
                    written += n
                    if n < chunk:
                        break
            except OSError as exc:
                if exc.errno != errno.ENOSPC:
                    raise
    finally:
        os.close(fd)
    return written


def test_store_on_a_full_disk(f):
    """Fault: the store's file system is full (a tmpfs sized from the store, the store copied in, then the rest
    filled by a file; needs root to mount it).
    Strikes: issue, the first store write of the group (its lease or the order URL), before any device is touched.
    The run: the store write fails (no space), the group fails by name; no half-written document (atomic writes).
    End state: the unit serves its previous certificate; every key of the store still opens; once space is freed
    a re-run changes nothing."""
    host, group = "mediant_sa", GROUP["mediant_sa"]
    full = f.dir / "full-store"
    full.mkdir(exist_ok=True)
    # tmpfs charges whole pages per file: room for the store as it is, plus 64 pages for the copy and the backoff
    # reset (both happen before the file system is filled)
    pages = sum(-(-p.stat().st_size // 4096) for p in f.store.rglob("*") if p.is_file()) + 64
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={pages * 4}k", "tmpfs", str(full)],
                             capture_output=True, check=False).returncode == 0
    if not mounted:
        pytest.skip("a small tmpfs for the store needs root (mount); not available here")
    filler = full / "filler"
    try:
        shutil.copytree(f.store, full, dirs_exist_ok=True)
        f.clear_backoff(group, full)
        assert _fill(filler) > 0
        assert shutil.disk_usage(full).free < 4096  # not a page left for any new store document
        writes = len(f.device_writes(host))
        proc = force(group, fleet=f, store=full, clear=False)
        assert proc.returncode != 0, proc.stdout[-4000:]
        assert len(f.device_writes(host)) == writes
        invariant(f, proc, limit=group, names=failed_names(group, host, r"(?i)no space|space left|ENOSPC|Errno 28"),
                  store=full, before_rerun=filler.unlink)
        shutil.copytree(full, f.store, dirs_exist_ok=True)
    finally:
        subprocess.run(["umount", str(full)], check=False)


# ---- leases: two runs of one group at once ---------------------------------------------------------------------
LEASES = (REPO / "plugins" / "module_utils" / "_store" / "lease.py")
LEASES_ON_MAIN = subprocess.run(["git", "ls-files", "--error-unmatch", str(LEASES)], cwd=REPO, capture_output=True,
                                check=False).returncode == 0
no_leases = pytest.mark.skipif(not LEASES_ON_MAIN, reason="store leases (plugins/module_utils/_store/lease.py, "
                               "issue 12) are not on main yet: the rows wait for them")


@no_leases
def test_two_runs_of_the_same_group_at_once(f):
    """Fault: two runs rotate the same group at the same moment (forced).
    Strikes: issue, the group's lease.
    The run: one holds the lease and renews; the other waits or stops naming the lease, never orders or deploys.
    End state: the unit serves one certificate, the store's current."""
    host, group = "mediant_sa", GROUP["mediant_sa"]
    f.clear_backoff(group)  # the full-disk row before this one leaves the group backing off (by design)
    a = f.start("--limit", group, V, extra={"byoc_force": True}, tag="a")
    b = f.start("--limit", group, V, extra={"byoc_force": True}, tag="b")
    pa, pb = f.finish(a), f.finish(b)
    assert 0 in (pa.returncode, pb.returncode), (pa.stdout[-3000:], pb.stdout[-3000:])
    other = pb if pa.returncode == 0 else pa
    seen = invariant(f, other, limit=group, names=failed_names(group, host, r"(?i)lease|lock|another run"))
    assert seen["served"][host] == seen["store"][group]["current"]


@no_leases
def test_a_slice_killed_while_it_holds_the_lease(f):
    """Fault: a run is killed (SIGKILL by PID) while it holds the group's lease, inside its ACME order: the ACME
    fault proxy holds the run's newOrder request unanswered, and the kill comes once the group's lease in the store
    is seen held by a run that started after this row began (never after a sleep).
    Strikes: issue.
    The run: dead; the re-run (not due: the store's current certificate is still the one served) converges. The dead
    lease keeps other orders for the group out until its TTL ends.
    End state: the unit serves the store's current certificate."""
    host, group = "mediant_sa", GROUP["mediant_sa"]
    lock = f.store / group / "lock.json"
    before = lock.read_text() if lock.exists() else ""
    f.clear_backoff(group)
    proxy = AcmeFaultProxy(f.lab, "hold")

    def holds() -> bool:  # the group's lease (<group>/lock.json, plugins/module_utils/_store/lease.py), taken anew
        text = lock.read_text()
        lease = json.loads(text)
        return text != before and not lease.get("released") and proxy.held.is_set()
    run = f.start("--limit", group, V, extra={"byoc_force": True, "byoc_acme": proxy.acme()})
    killed = threading.Event()
    t = watch(holds, lambda: (kill_run(run), killed.set()), interval=0.1)
    try:
        proc = f.finish(run)
    finally:
        t.stop.set()
        proxy.close()
    assert killed.is_set() and proc.returncode == -9, proc.stdout[-4000:]  # killed while it held the lease
    assert not json.loads(lock.read_text()).get("released")  # the dead run's lease stays
    seen = invariant(f, proc, limit=group, names=[])
    assert seen["served_after"][host] == seen["store"][group]["current"]
