"""Benchmark of the genesys_* modules against the lab's Genesys Cloud emulator.

    HOME=.build/home .venv/bin/python tests/bench/genesys_bench.py [--out DIR] [--repeat N]

Records (JSON and markdown in --out, default .build/bench/):

1. API requests needed to check the health of 50 trunks: per poll (target: at most 2), counted by the emulator.
2. OAuth tokens minted by one playbook run (3 hosts x 3 tasks, forks 3, empty token cache): target 1.
3. Wall time of one module invocation (``ansible -m genesys_edge_certificate_info``), SDK import included, next to
   a bare ``import PureCloudPlatformClientV2`` and an ``ansible -m ping`` for comparison (median of --repeat).

It starts its own lab (part ``genesys``) in a temporary directory and stops it, by PID, at the end.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "tests" / "lab"))
sys.path.insert(0, str(REPO / "tests" / "integration"))

from byoclab.components import select  # noqa: E402
from byoclab.core import Lab  # noqa: E402
from conftest import ModuleRunner, ansible_env  # noqa: E402
from test_genesys_modules import CERT_RE, Genesys  # noqa: E402

TRUNKS = 50


def wall(cmd: list[str], env: dict) -> tuple[float, float]:
    """(wall seconds, CPU seconds of the command and its children): the CPU figure is less sensitive to a busy
    machine than the wall time."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=REPO, check=False)
    elapsed = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if proc.returncode != 0:
        raise SystemExit(f"{cmd[:4]} failed:\n{proc.stdout[-2000:]}\n{proc.stderr[-2000:]}")
    return elapsed, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", default=str(REPO / ".build" / "bench"))
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    out_dir = Path(args.out)
    out_dir.mkdir(parents=True, exist_ok=True)

    with tempfile.TemporaryDirectory(prefix="genesys-bench-") as tmp:
        tmp_path = Path(tmp)
        home = tmp_path / "home"
        home.mkdir()
        lab = Lab(tmp_path / "lab")
        try:
            lab.up(select(["genesys"]))
            desc = lab.components["genesys"]
            g = Genesys(desc, str(lab.ca.cert_file), str(tmp_path / "tokens"))
            env_extra = {"HOME": str(home)}
            run = ModuleRunner()
            results: dict = {"machine": {"python": platform.python_version(), "cpus": os.cpu_count(),
                                         "load_average_at_start": os.getloadavg()}}

            # -- 50 trunks: the 4 seeded ones plus 46 trunk bases on Edge 1, spread over the responders.
            addresses = [r["address"] for r in desc["responders"]]
            edge1 = desc["edges"][0]["id"]
            for i in range(TRUNKS - len(desc["trunks"])):
                g.control("POST", "/trunks", {"name": f"Bench SBC {i:02d}", "proxies": [addresses[i % len(addresses)]],
                                              "edges": [edge1]})
            assert len(g.state()["trunks"]) == TRUNKS
            selector = {"sbc_addresses": addresses}

            # Down (nothing trusted): wait until the timeout, polling; requests per poll from the emulator's log.
            g.wait_round()
            g.control("POST", "/requests/reset")
            res = run("genesys_trunk_info", g.args(**selector, wait=True, poll_interval=0.5, timeout=3),
                      env=env_extra)
            assert res.get("failed") and len(res["down"]) == TRUNKS, res.get("msg")
            log = g.requests()
            polls = len(res["progress"])
            trunk_reqs = [r for r in log if r["path"].endswith("/trunks")]
            base_reqs = [r for r in log if r["path"].endswith("/trunkbasesettings")]
            token_reqs = [r for r in log if r["path"] == "/oauth/token"]
            results["health_of_50_trunks_waiting"] = {
                "trunks": TRUNKS, "polls": polls, "requests_total": len(log),
                "requests_per_poll": len(trunk_reqs) / polls, "one_time_requests": len(base_reqs) + len(token_reqs),
                "target_per_poll": 2,
            }

            # Up: trust the chain, one call.
            for pem in CERT_RE.findall(g.pem("chain_pem_file")):
                g.add_remote(pem, "bench")
            g.wait_round()
            g.control("POST", "/requests/reset")
            res = run("genesys_trunk_info", g.args(**selector, wait=True, poll_interval=0.5, timeout=30),
                      env=env_extra)
            assert res["all_up"] and res["total"] == TRUNKS, res
            log = g.requests()
            results["health_of_50_trunks_all_up"] = {
                "trunks": TRUNKS, "polls": res["polls"], "requests_total": len(log),
                "requests": [f"{r['method']} {r['path']}" for r in log],
            }

            # -- tokens per playbook run: 3 hosts x 3 tasks, forks 3, an empty token cache.
            cache = tmp_path / "playbook-tokens"
            playbook = tmp_path / "pb.yml"
            conn = g.args(token_cache_dir=str(cache))
            playbook.write_text(json.dumps([{
                "hosts": "all", "gather_facts": False, "connection": "local",
                # Per module rather than group/byoc.certificates.genesys, so that it works before meta/runtime.yml
                # lists the action group.
                "module_defaults": {f"byoc.certificates.{m}": conn for m in (
                    "genesys_edge_certificate_info", "genesys_edge_certificate", "genesys_trunk_info")},
                "tasks": [
                    {"name": "trust store", "byoc.certificates.genesys_edge_certificate_info": {}},
                    {"name": "CA present", "byoc.certificates.genesys_edge_certificate": {
                        "certificate": g.pem("chain_pem_file")}},
                    {"name": "trunks", "byoc.certificates.genesys_trunk_info": {"sbc_addresses": addresses}},
                ]}]))
            before = g.state()["tokens_minted"]
            env = ansible_env({**env_extra, "ANSIBLE_STDOUT_CALLBACK": "default"})
            started = time.perf_counter()
            proc = subprocess.run([str(Path(sys.executable).parent / "ansible-playbook"), "-i", "h1,h2,h3", "-f", "3",
                                   str(playbook)], capture_output=True, text=True, env=env, cwd=REPO, check=False)
            elapsed = time.perf_counter() - started
            if proc.returncode != 0:
                raise SystemExit(f"playbook failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-2000:]}")
            recap = re.findall(r"^(h\d)\s+:\s+ok=(\d+)", proc.stdout, re.M)
            results["tokens_per_playbook_run"] = {
                "hosts": 3, "tasks_per_host": 3, "forks": 3, "module_invocations": 9,
                "tokens_minted": g.state()["tokens_minted"] - before, "target": 1,
                "ok_per_host": dict(recap), "wall_seconds": round(elapsed, 2),
            }

            # -- wall time of one module invocation, SDK import included.
            env = ansible_env(env_extra)
            py = str(Path(sys.executable))
            ansible = str(Path(sys.executable).parent / "ansible")
            module_cmd = [ansible, "localhost", "-i", "localhost,", "-c", "local", "-m",
                          "byoc.certificates.genesys_edge_certificate_info", "-a", json.dumps(g.args())]
            ping_cmd = [ansible, "localhost", "-i", "localhost,", "-c", "local", "-m", "ansible.builtin.ping"]
            import_cmd = [py, "-c", "import PureCloudPlatformClientV2"]
            samples: dict[str, list] = {k: [] for k in ("module", "ping", "sdk_import")}
            for _round in range(args.repeat):
                samples["module"].append(wall(module_cmd, env))
                samples["ping"].append(wall(ping_cmd, env))
                samples["sdk_import"].append(wall(import_cmd, {**env, "HOME": str(home)}))
            results["one_invocation_seconds"] = {
                k: {"median": round(statistics.median(w for w, c in v), 2),
                    "cpu_median": round(statistics.median(c for w, c in v), 2),
                    "samples_wall": [round(w, 2) for w, c in v], "samples_cpu": [round(c, 2) for w, c in v]}
                for k, v in samples.items()}
            results["machine"]["load_average_at_end"] = os.getloadavg()
        finally:
            lab.down()

    (out_dir / "genesys.json").write_text(json.dumps(results, indent=2))
    h = results["health_of_50_trunks_waiting"]
    t = results["tokens_per_playbook_run"]
    w = results["one_invocation_seconds"]
    md = "\n".join([
        "# genesys_* benchmark", "",
        f"Python {results['machine']['python']}, {results['machine']['cpus']} CPUs, load average at start"
        f" {results['machine']['load_average_at_start'][0]:.2f}.", "",
        "| measure | result | target |", "|---|---|---|",
        f"| API requests per poll, 50 trunks | {h['requests_per_poll']:g} ({h['polls']} polls, "
        f"{h['one_time_requests']} one-time) | <= 2 |",
        f"| API requests, one check of 50 trunks that are up | {results['health_of_50_trunks_all_up']['requests_total']}"
        " | - |",
        f"| tokens minted per playbook run (3 hosts x 3 tasks) | {t['tokens_minted']} | 1 |",
        f"| one module invocation, SDK import included: wall (CPU) | {w['module']['median']} s"
        f" ({w['module']['cpu_median']} s) | - |",
        f"| `ansible -m ping`: wall (CPU) | {w['ping']['median']} s ({w['ping']['cpu_median']} s) | - |",
        f"| bare `import PureCloudPlatformClientV2`: wall (CPU) | {w['sdk_import']['median']} s"
        f" ({w['sdk_import']['cpu_median']} s) | - |",
        f"| whole playbook (3 hosts x 3 tasks, forks 3), wall | {t['wall_seconds']} s | - |", ""])
    (out_dir / "genesys.md").write_text(md)
    print(md)
    print(f"written: {out_dir / 'genesys.json'} and {out_dir / 'genesys.md'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
