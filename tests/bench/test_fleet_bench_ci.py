"""The CI-sized fleet benchmark (the `bench` layer of scripts/run-tests.sh, part of `make test`).

N = 10 groups from expired certificates, our pipeline, plus lego on two groups when it is installed. Counts only,
never timings (tests/bench/fleet_bench.py measures; docs/performance.md reports):

- the full rotation makes one ACME order per group and none per member, every device then serves a certificate for
  its name that chains to Pebble's root (a TLS handshake by name, presenting an Edge certificate), every trunk of
  the org is connected, the org was never throttled (429), and every group is reported renewed;
- the converged run makes no ACME order and writes to no device;
- lego issued and deployed its two certificates through the same deploy hook (each device then serves lego's leaf).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

import fleet_bench  # noqa: E402

N = 10


@pytest.fixture(scope="module")
def bench():
    out = Path(tempfile.mkdtemp(prefix="byoc-bench-ci-"))
    tools = ["lego"] if shutil.which("lego") else []
    args = argparse.Namespace(compare=[N] if tools else [], tools=tools, certbot_default_sample=0, keep=False,
                              lego_hosts=2)
    try:
        source = Path(os.environ.get("BYOC_BENCH_SOURCE") or fleet_bench.REPO / ".build" / "dev")
        result = fleet_bench.bench_size(N, args, out, source)
        keep = fleet_bench.REPO / ".build" / "bench"
        keep.mkdir(parents=True, exist_ok=True)
        (keep / "ci-result.json").write_text(json.dumps(result, indent=2))  # the figures, for reading, not asserting
        yield result
    finally:
        shutil.rmtree(out, ignore_errors=True)


def test_every_device_starts_expired(bench):
    assert bench["expired_at_start"] == N


def test_full_rotation_counts(bench):
    r = bench["rotate"]
    assert r["rc"] == 0, r["failed_tasks"]
    assert r["acme"]["orders"] == N  # one order per certificate group
    assert r["served_valid"] == N  # by name, trusting Pebble's root only
    assert r["trunks_connected"] == 2 * N  # every trunk of the org, on both Edges
    assert r["statuses"] == {"renewed": N}
    assert r["genesys"]["throttled"] == 0
    assert r["dns_wait"]["count"] >= N  # a propagation wait was measured for every certificate
    assert r["device_requests"]["writes"] > 0


def test_converged_run_orders_nothing_and_writes_nothing(bench):
    c = bench["converged"]
    assert c["rc"] == 0, c["failed_tasks"]
    assert c["acme"]["orders"] == 0
    assert c["device_requests"]["writes"] == 0
    assert c["statuses"] == {"unchanged": N}
    assert c["genesys"]["throttled"] == 0


def test_lego_issued_and_deployed_through_the_same_hook(bench):
    if not shutil.which("lego"):
        pytest.skip("lego (Debian package) is not installed; make setup installs it as root")
    lego = bench["tools"]["lego"]
    assert lego["failed"] == 0
    assert lego["acme"]["orders"] == lego["certificates"] == 2
    assert lego["served_by_tool"] == 2  # the devices serve lego's leaves, read back by a TLS handshake
