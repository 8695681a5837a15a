"""Benchmark of tls_endpoint_info: N SIP-TLS endpoints probed in one task.

    HOME=.build/home .venv/bin/python tests/bench/tls_probe_bench.py [--sizes 50,200] [--concurrency 16] [--repeat 3]

Starts N SIP-TLS listeners of the lab (``emulators/common/siptls.py``, one per port, each serving a certificate for
``localhost`` from a throw-away CA) in this process, then runs ``ansible localhost -m byoc.certificates.tls_endpoint_info``
with all N endpoints (the action plugin, in-process on the controller) and records the wall time and the CPU time
of the ``ansible`` process tree, next to ``ansible -m ping`` for Ansible's own floor. Each run is checked: all
endpoints ok, and every listener counted exactly one new handshake. Writes JSON and markdown to --out
(default .build/bench/). The listeners run in this process and share the machine's cores with the probe, so the
figures are an upper bound.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "tests" / "lab"))
sys.path.insert(0, str(REPO / "tests" / "integration"))

from byoc_harness import ansible_env  # noqa: E402
from byoclab.core import free_port  # noqa: E402
from emulators.common.siptls import SipTlsListener  # noqa: E402


def material() -> tuple[str, str, str]:
    now = datetime.datetime.now(datetime.timezone.utc)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "bench CA")])
    ca = (x509.CertificateBuilder().subject_name(ca_name).issuer_name(ca_name).public_key(ca_key.public_key())
          .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(minutes=5))
          .not_valid_after(now + datetime.timedelta(days=1))
          .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True).sign(ca_key, hashes.SHA256()))
    key = ec.generate_private_key(ec.SECP256R1())
    leaf = (x509.CertificateBuilder().subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")]))
            .issuer_name(ca_name).public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5)).not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName([x509.DNSName("localhost")]), critical=False)
            .sign(ca_key, hashes.SHA256()))
    pem = serialization.Encoding.PEM
    return (ca.public_bytes(pem).decode(), leaf.public_bytes(pem).decode(),
            key.private_bytes(pem, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()).decode())


def timed(cmd: list[str], env: dict) -> tuple[float, float, str]:
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=REPO, check=False)
    elapsed = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if proc.returncode != 0:
        raise SystemExit(f"{cmd[:4]} failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-2000:]}")
    return elapsed, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime), proc.stdout


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="50,200")
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--out", default=str(REPO / ".build" / "bench"))
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    out_dir = Path(args.out)
    out_dir.mkdir(parents=True, exist_ok=True)
    ca_pem, leaf_pem, key_pem = material()
    listeners = []
    for _i in range(max(sizes)):
        lst = SipTlsListener("127.0.0.1", free_port(), lambda: (leaf_pem, key_pem), name="bench")
        lst.start()
        listeners.append(lst)
    env = ansible_env({"ANSIBLE_STDOUT_CALLBACK": "ansible.posix.json"})
    ansible = str(Path(sys.executable).parent / "ansible")
    base = [ansible, "localhost", "-i", "localhost,", "-c", "local"]
    results: dict = {"machine": {"cpus": os.cpu_count(), "python": platform.python_version(),
                                 "load_avg": os.getloadavg()},
                     "concurrency": args.concurrency, "runs": {}}
    try:
        pings = [timed(base + ["-m", "ping"], env)[:2] for _n in range(args.repeat)]
        results["ansible_ping"] = {"wall_median": statistics.median(w for w, _c in pings),
                                   "cpu_median": statistics.median(c for _w, c in pings)}
        for n in sizes:
            endpoints = [{"name": "localhost", "host": "127.0.0.1", "port": lst.port, "label": f"e{i}"}
                         for i, lst in enumerate(listeners[:n])]
            module_args = json.dumps({"endpoints": endpoints, "ca_certificates": ca_pem,
                                      "concurrency": args.concurrency})
            walls, cpus = [], []
            for _n in range(args.repeat):
                before = [lst.stats()["handshakes"] for lst in listeners[:n]]
                w, c, out = timed(base + ["-m", "byoc.certificates.tls_endpoint_info", "-a", module_args], env)
                res = json.loads(out[out.find("{"):])["plays"][0]["tasks"][0]["hosts"]["localhost"]
                after = [lst.stats()["handshakes"] for lst in listeners[:n]]
                assert res["all_ok"] and res["probed"] == n, res.get("failed_endpoints")
                assert [a - b for a, b in zip(after, before)] == [1] * n, "one new handshake per endpoint"
                walls.append(w)
                cpus.append(c)
            results["runs"][str(n)] = {"wall_median": statistics.median(walls), "wall_all": walls,
                                       "cpu_median": statistics.median(cpus)}
            print(f"{n} endpoints: wall {statistics.median(walls):.2f}s (runs {', '.join(f'{x:.2f}' for x in walls)}),"
                  f" CPU {statistics.median(cpus):.2f}s", flush=True)
    finally:
        for lst in listeners:
            lst.stop()
    print(f"ansible -m ping: wall {results['ansible_ping']['wall_median']:.2f}s,"
          f" CPU {results['ansible_ping']['cpu_median']:.2f}s")
    (out_dir / "tls_probe.json").write_text(json.dumps(results, indent=2))
    lines = ["# tls_endpoint_info benchmark", "",
             f"{results['machine']['cpus']} CPUs, Python {results['machine']['python']}, concurrency {args.concurrency},"
             f" median of {args.repeat}", "", "| endpoints | wall (s) | CPU (s) |", "|---|---|---|",
             f"| ansible -m ping | {results['ansible_ping']['wall_median']:.2f} | {results['ansible_ping']['cpu_median']:.2f} |"]
    lines += [f"| {n} | {r['wall_median']:.2f} | {r['cpu_median']:.2f} |" for n, r in results["runs"].items()]
    (out_dir / "tls_probe.md").write_text("\n".join(lines) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
