"""`make bench`: playbooks/rotate.yml at fleet size against certbot and lego (issue 13 item 2).

    .venv/bin/python tests/bench/fleet_bench.py [--sizes 10,50,200] [--compare 10] [--budget 840] [--tools lego,certbot]
                                                [--certbot-default-sample 1] [--lag-secondary 5] [--out .build/bench]
                                                [--source DIR]

For each N it starts a fleet lab of N certificate groups whose devices serve EXPIRED certificates
(tests/lab/byoclab/components/fleet.py), then measures, on that lab:

1. ``rotate``: a full rotation of every group by playbooks/rotate.yml (issue, trust, deploy, verify, report);
2. ``converged``: a second run, which must change nothing;
3. for N in --compare: lego (Debian's package) and certbot 5.x + certbot-dns-rfc2136 (.build/bench-venv,
   requirements/bench.lock), one certificate after another, each with tests/bench/deploy_hook.py as deploy hook
   (issue + deploy, like for like; neither tool touches Genesys or verifies trunks). certbot runs with the lowest
   propagation wait that passes in this lab; its default wait (60 s) is measured on --certbot-default-sample
   certificates and extrapolated linearly (the runs are strictly sequential), and reported as such.

Every lab has a lagging DNS secondary (``--lag-secondary SECONDS``, default 5; 0 turns it off): BIND's secondary
serves lab.test SECONDS after the primary, Pebble validates DNS-01 there, and the inventory lists both servers
(components/bind.py). So certbot's "lowest passing wait" is the lowest wait that passes against the lagging
secondary, and our pipeline and lego run on the same lab.

Figures per run: wall, controller CPU seconds (user+system of the whole process tree, from wait4) and peak memory
(the largest summed RSS of the tree, sampled every 0.2 s); ACME orders and ARI requests (Pebble's log); requests per
device (each emulator's /_control/requests) and per org (the Genesys emulator's log, tokens minted, 429 answers,
the highest request count in any 60 s window); DNS-01 propagation wait per certificate (the batch engine's
dns_wait_seconds per group, or wait_seconds of every dns01_record result with byoc_issue_engine role;
tests/bench/callback_plugins/bench_profile.py); wall per task. End state, observed
independently: a TLS handshake by name to every device (trust = Pebble's root only, presenting an Edge's client
certificate), and the org's trunks connected.

Writes ``<out>/fleet-bench.json`` and ``<out>/fleet-bench.md`` and prints the table. Labs are started in temporary
directories and stopped by PID. ``--source`` runs the pipeline from another checkout (e.g. a ``git archive`` of
HEAD) instead of this working tree.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import re
import shutil
import signal
import ssl
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "tests" / "lab"))

from byoclab.components.fleet import fleet_parts  # noqa: E402
from byoclab.core import Lab  # noqa: E402
from emulators.common.siptls import sip_options_probe  # noqa: E402

BENCH_VENV = REPO / ".build" / "bench-venv"
PASSPHRASE = "bench-store-passphrase-1"


# ---------------------------------------------------------------------------------------------- measuring
def _tree(root: int) -> list[int]:
    children: dict[int, list[int]] = {}
    for d in os.listdir("/proc"):
        if d.isdigit():
            try:
                with open(f"/proc/{d}/stat", encoding="ascii") as fh:
                    ppid = int(fh.read().rsplit(")", 1)[1].split()[1])
            except (OSError, ValueError, IndexError):
                continue
            children.setdefault(ppid, []).append(int(d))
    out, todo = [], [root]
    while todo:
        pid = todo.pop()
        out.append(pid)
        todo.extend(children.get(pid, []))
    return out


def _rss_kb(pids: list[int]) -> int:
    total = 0
    for pid in pids:
        try:
            with open(f"/proc/{pid}/status", encoding="ascii") as fh:
                for line in fh:
                    if line.startswith("VmRSS:"):
                        total += int(line.split()[1])
                        break
        except OSError:
            continue
    return total


DEADLINE = [float("inf")]  # monotonic time by which every measured command must have ended (--budget)
PLAYBOOK_EXTRA: list[str] = []  # extra ansible-playbook arguments for every rotate.yml run (--serial)


def measured(argv: list[str], env: dict, log: Path, cwd: Path = REPO) -> dict:
    """Run a command; wall, CPU of the whole tree (wait4 rusage), peak summed RSS of the tree, exit status. A
    command still running at the bench's deadline is stopped (its own process group, SIGTERM then SIGKILL) and
    reported with ``timed_out``."""
    started = time.monotonic()
    timed_out = [False]
    with open(log, "ab") as fh:
        proc = subprocess.Popen(argv, env=env, cwd=cwd, stdout=fh, stderr=subprocess.STDOUT, start_new_session=True)
        peak = [0]
        done = threading.Event()

        def sample():
            while not done.wait(0.2):
                peak[0] = max(peak[0], _rss_kb(_tree(proc.pid)))
                if time.monotonic() > DEADLINE[0] and not timed_out[0]:
                    timed_out[0] = True
                    os.killpg(proc.pid, signal.SIGTERM)
                    threading.Timer(10.0, lambda: proc.poll() is None and os.killpg(proc.pid, signal.SIGKILL)).start()

        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        _pid, status, usage = os.wait4(proc.pid, 0)
        proc.returncode = os.waitstatus_to_exitcode(status)
        done.set()
        sampler.join()
    return {"wall": round(time.monotonic() - started, 2), "cpu": round(usage.ru_utime + usage.ru_stime, 2),
            "peak_rss_mb": round(max(peak[0], usage.ru_maxrss) / 1024, 1), "rc": proc.returncode,
            "timed_out": timed_out[0]}


def _sum(runs: list[dict]) -> dict:
    return {"wall": round(sum(r["wall"] for r in runs), 2), "cpu": round(sum(r["cpu"] for r in runs), 2),
            "peak_rss_mb": max((r["peak_rss_mb"] for r in runs), default=0.0),
            "failed": sum(1 for r in runs if r["rc"] != 0), "timed_out": any(r.get("timed_out") for r in runs)}


# ---------------------------------------------------------------------------------------------- the lab's view
class Observer:
    def __init__(self, lab: Lab):
        self.lab = lab
        c = lab.components
        self.c = c
        self.ca_file = str(lab.ca.cert_file)
        self.ctx = ssl.create_default_context(cafile=self.ca_file)
        self.devices = json.loads(Path(c["fleet"]["devices_file"]).read_text())
        edge = c["genesys"]["edges"][0]
        self.edge_cert = Path(edge["client_cert_file"]).read_text()
        self.edge_key = Path(edge["client_key_file"]).read_text()
        self.sampler = None

    def get(self, url: str, ca_file: str | None = None, method: str = "GET", body: dict | None = None):
        ctx = self.ctx
        if ca_file and ca_file != self.ca_file:
            ctx = ssl.create_default_context(cafile=ca_file)
            ctx.check_hostname = False  # the AudioCodes factory certificate names ACL_<serial> (sbc-apis.md A4)
        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request(url, data=data, method=method, headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(req, context=ctx, timeout=120) as resp:
            return json.loads(resp.read() or b"null")

    def pebble(self) -> dict:
        text = (self.lab.dir / "logs" / "pebble.log").read_text(errors="replace")
        return {"orders": len(re.findall(r"Added order ", text)),
                "ari": len(re.findall(r"GET /[^ ]*(?:renewal-?info|acme-ari)", text, re.I)),
                "requests": len(re.findall(r"\] ?(?:GET|POST|HEAD) /|\d (?:GET|POST|HEAD) /", text))}

    def device_requests(self) -> dict:
        def one(item):
            host, d = item
            log = self.get(f"{d['control_url']}/requests", d["ca_file"])
            rows = [(r["method"], r["path"]) if isinstance(r, dict) else (r[0], r[1]) for r in log]
            writes = sum(1 for m, p in rows if m not in ("GET", "HEAD") and not p.endswith(("/login", "/logout")))
            return host, {"requests": len(rows), "writes": writes}
        with ThreadPoolExecutor(max_workers=8) as pool:
            return dict(pool.map(one, self.devices.items()))

    def genesys(self) -> dict:
        g = self.c["genesys"]
        log = self.get(f"{g['control_url']}/requests")["requests"]
        state = self.get(f"{g['control_url']}/state")
        return {"requests": len(log), "api": sum(1 for r in log if r["path"].startswith("/api/")),
                "tokens": state.get("tokens_minted", 0), "throttled": sum(1 for r in log if r["status"] == 429)}

    def start_rate_sampler(self):
        """Genesys request count every 2 s, for the highest count in any 60 s window (the org's rate limit is per
        minute per token, genesys-cloud-api.md)."""
        samples: list[tuple[float, int]] = []
        stop = threading.Event()
        url = f"{self.c['genesys']['control_url']}/requests"

        def run():
            while not stop.is_set():
                try:
                    samples.append((time.monotonic(), self.get(url)["count"]))
                except Exception:  # noqa: BLE001 - a missed sample only makes the window coarser
                    pass
                stop.wait(2.0)

        t = threading.Thread(target=run, daemon=True)
        t.start()
        self.sampler = (stop, t, samples)

    def stop_rate_sampler(self) -> int:
        stop, t, samples = self.sampler
        stop.set()
        t.join()
        best = 0
        for i, (t0, c0) in enumerate(samples):
            for t1, c1 in samples[i:]:
                if t1 - t0 <= 60.0:
                    best = max(best, c1 - c0)
        return best

    def served(self) -> dict:
        """A TLS handshake by name (resolved through the lab DNS) to every device, trusting Pebble's root only and
        presenting an Edge certificate: how many serve a valid certificate for their name, and the fingerprints."""
        import dns.message
        import dns.query
        import dns.rdatatype

        root = urllib.request.urlopen(f"{self.c['pebble']['management']}/roots/0", context=self.ctx).read().decode()
        b = self.c["bind"]["primary"]

        def one(item):
            host, d = item
            s = d["sip_tls"]
            resp = dns.query.tcp(dns.message.make_query(s["name"], dns.rdatatype.A), b["host"], port=b["port"], timeout=5)
            addr = [r.to_text() for rr in resp.answer for r in rr][0]
            got = sip_options_probe(addr, s["port"], cadata=root, server_name=s["name"],
                                    client_chain_pem=self.edge_cert, client_key_pem=self.edge_key)
            return host, {"ok": bool(got.get("ok")), "sha256": got.get("peer_sha256")}
        with ThreadPoolExecutor(max_workers=8) as pool:
            res = dict(pool.map(one, self.devices.items()))
        return {"valid": sum(1 for v in res.values() if v["ok"]), "hosts": res}

    def trunks_connected(self, rounds: int = 2) -> int:
        g = self.c["genesys"]
        self.get(f"{g['control_url']}/edge-sessions/drop", method="POST", body={})
        state = self.get(f"{g['control_url']}/health/wait", method="POST", body={"rounds": rounds, "timeout": 300})
        return sum(1 for t in state["trunks"] if t["name"].startswith("BYOC ") and t["connected"])


def _delta(before: dict, after: dict) -> dict:
    return {k: after[k] - before[k] for k in before if isinstance(before[k], int)}


# ---------------------------------------------------------------------------------------------- our pipeline
def ansible_env(source: Path, extra: dict) -> dict:
    env = dict(os.environ)
    build = REPO / ".build"
    env.update({
        "PATH": f"{REPO / '.venv' / 'bin'}:{env.get('PATH', '')}",
        "ANSIBLE_COLLECTIONS_PATH": f"{source}:{build / 'collections'}",
        "ANSIBLE_COLLECTIONS_SCAN_SYS_PATH": "false",
        "ANSIBLE_LOCAL_TEMP": str(build / "ansible-tmp"),
        "ANSIBLE_CALLBACK_PLUGINS": str(REPO / "tests" / "bench" / "callback_plugins"),
        "ANSIBLE_CALLBACKS_ENABLED": "bench_profile",
        "ANSIBLE_NOCOLOR": "1", "ANSIBLE_RETRY_FILES_ENABLED": "false",
        "BYOC_STORE_PASSPHRASE": PASSPHRASE,
        "HOME": str(build / "home"),
    })
    env.update(extra)
    return env


def run_pipeline(obs: Observer, source: Path, label: str, out: Path) -> dict:
    lab = obs.lab
    inv = lab.components["fleet_inventory"]["inventory"]
    profile = out / f"{label}-profile.json"
    env = ansible_env(source, {"BYOC_BENCH_PROFILE": str(profile), "BYOC_REPORT_DIR": str(lab.dir / "report")})
    playbook = source / "ansible_collections" / "byoc" / "certificates" / "playbooks" / "rotate.yml"
    before = {"pebble": obs.pebble(), "devices": obs.device_requests(), "genesys": obs.genesys()}
    obs.start_rate_sampler()
    run = measured([str(REPO / ".venv" / "bin" / "ansible-playbook"), "-i", inv, str(playbook), *PLAYBOOK_EXTRA], env,
                   out / f"{label}.log")
    peak_minute = obs.stop_rate_sampler()
    after = {"pebble": obs.pebble(), "devices": obs.device_requests(), "genesys": obs.genesys()}
    prof = json.loads(profile.read_text()) if profile.exists() else {"tasks": {}, "dns_waits": [], "failed": []}
    per_device = {h: _delta(before["devices"][h], after["devices"][h]) for h in after["devices"]}
    report = {}
    try:
        report = json.loads((lab.dir / "report" / "report.json").read_text())
    except (OSError, ValueError):
        pass
    statuses: dict[str, int] = {}
    for g in report.get("groups", []):
        statuses[g.get("status", "?")] = statuses.get(g.get("status", "?"), 0) + 1
    waits = [w["wait_seconds"] for w in prof["dns_waits"] if isinstance(w.get("wait_seconds"), (int, float))]
    tasks = sorted(prof["tasks"].items(), key=lambda kv: -kv[1]["wall"])
    gen = _delta(before["genesys"], after["genesys"])
    return {
        **run,
        "acme": _delta(before["pebble"], after["pebble"]),
        "device_requests": {"total": sum(d["requests"] for d in per_device.values()),
                            "writes": sum(d["writes"] for d in per_device.values()),
                            "max_per_device": max((d["requests"] for d in per_device.values()), default=0),
                            "per_device_mean": round(sum(d["requests"] for d in per_device.values())
                                                     / max(len(per_device), 1), 1)},
        "genesys": {**gen, "peak_requests_per_minute": peak_minute,
                    "peak_per_minute_per_token": round(peak_minute / max(gen["tokens"], 1), 1)},
        "dns_wait": {"count": len(waits), "max": max(waits, default=None),
                     "mean": round(sum(waits) / len(waits), 3) if waits else None},
        "statuses": statuses,
        "failed_tasks": prof["failed"][:10],
        "top_tasks": [{"task": k, "wall": round(v["wall"], 2), "results": v["results"]} for k, v in tasks[:12]],
    }


# ---------------------------------------------------------------------------------------------- certbot and lego
def _tool_env(obs: Observer) -> dict:
    env = dict(os.environ)
    env.update({"REQUESTS_CA_BUNDLE": obs.c["pebble"]["ca_file"], "LEGO_CA_CERTIFICATES": obs.c["pebble"]["ca_file"],
                "BYOC_BENCH_ACME_ROOT": obs.c["pebble"]["roots"][0]})
    return env


def _hook(obs: Observer, host: str) -> str:
    return f"{REPO / '.venv' / 'bin' / 'python'} {REPO / 'tests' / 'bench' / 'deploy_hook.py'} " \
           f"{obs.c['fleet']['devices_file']} {host}"


def certbot_one(obs: Observer, work: Path, host: str, wait: int, log: Path) -> dict:
    b = obs.c["bind"]
    creds = work / "rfc2136.ini"
    if not creds.exists():
        fd = os.open(creds, os.O_WRONLY | os.O_CREAT, 0o600)
        with os.fdopen(fd, "w") as fh:
            fh.write(f"dns_rfc2136_server = {b['primary']['host']}\ndns_rfc2136_port = {b['primary']['port']}\n"
                     f"dns_rfc2136_name = {b['tsig']['name']}\ndns_rfc2136_secret = {b['tsig']['secret']}\n"
                     f"dns_rfc2136_algorithm = {b['tsig']['algorithm'].upper()}\n")
    argv = [str(BENCH_VENV / "bin" / "certbot"), "certonly", "-n", "--agree-tos", "-m", "pki@example.test",
            "--server", obs.c["pebble"]["directory"], "--config-dir", str(work / "config"),
            "--work-dir", str(work / "work"), "--logs-dir", str(work / "logs"),
            "--authenticator", "dns-rfc2136", "--dns-rfc2136-credentials", str(creds),
            "-d", obs.devices[host]["sip_tls"]["name"], "--force-renewal", "--deploy-hook", _hook(obs, host)]
    if wait is not None:
        argv += ["--dns-rfc2136-propagation-seconds", str(wait)]
    return measured(argv, _tool_env(obs), log)


def lego_one(obs: Observer, work: Path, host: str, log: Path) -> dict:
    b = obs.c["bind"]
    ns = f"{b['primary']['host']}:{b['primary']['port']}"
    env = _tool_env(obs)
    env.update({"RFC2136_NAMESERVER": ns, "RFC2136_TSIG_KEY": b["tsig"]["name"],
                "RFC2136_TSIG_SECRET": b["tsig"]["secret"], "RFC2136_TSIG_ALGORITHM": b["tsig"]["algorithm"] + "."})
    # lego checks propagation at the zone's authoritative servers on port 53 (their NS names resolved by the
    # system); the lab's servers listen on free ports, so that check cannot run here: --dns.disable-cp leaves lego
    # its check through --dns.resolvers (the lab primary), which is where Pebble validates.
    argv = ["lego", "--server", obs.c["pebble"]["directory"], "--email", "pki@example.test", "--accept-tos",
            "--path", str(work), "--dns", "rfc2136", "--dns.resolvers", ns, "--dns.disable-cp",
            "--domains", obs.devices[host]["sip_tls"]["name"], "run", "--run-hook", _hook(obs, host)]
    return measured(argv, env, log)


def _tool_leaf_sha(path: Path) -> str | None:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization

    if not path.exists():
        return None
    cert = x509.load_pem_x509_certificate(path.read_bytes())
    digest = hashes.Hash(hashes.SHA256())
    digest.update(cert.public_bytes(serialization.Encoding.DER))
    return digest.finalize().hex()


def run_tool(obs: Observer, tool: str, out: Path, hosts: list[str], wait: int | None = None) -> dict:
    work = Path(tempfile.mkdtemp(prefix=f"byoc-bench-{tool}-"))
    log = out / f"{tool}-{len(obs.devices)}-{wait}.log"
    before = {"pebble": obs.pebble(), "devices": obs.device_requests()}
    runs = []
    try:
        for host in hosts:
            if time.monotonic() > DEADLINE[0]:
                break  # out of --budget: the figures cover the certificates done
            if tool == "lego":
                runs.append(lego_one(obs, work, host, log))
            else:
                runs.append(certbot_one(obs, work, host, wait, log))
        served = obs.served()["hosts"]
        mine = 0
        for host in hosts[:len(runs)]:
            name = obs.devices[host]["sip_tls"]["name"]
            leaf = (work / "certificates" / f"{name}.crt") if tool == "lego" else \
                (work / "config" / "live" / name / "cert.pem")
            if served[host]["sha256"] and served[host]["sha256"] == _tool_leaf_sha(leaf):
                mine += 1
    finally:
        shutil.rmtree(work, ignore_errors=True)
    after = {"pebble": obs.pebble(), "devices": obs.device_requests()}
    per_device = [_delta(before["devices"][h], after["devices"][h]) for h in hosts[:len(runs)]]
    return {**_sum(runs), "certificates": len(runs), "wait": wait, "served_by_tool": mine,
            "per_certificate_wall": round(sum(r["wall"] for r in runs) / max(len(runs), 1), 2),
            "acme": _delta(before["pebble"], after["pebble"]),
            "device_requests": {"total": sum(d["requests"] for d in per_device),
                                "writes": sum(d["writes"] for d in per_device)}}


CERTBOT_WAITS = (0, 1, 2, 3, 4, 5, 6, 7, 8, 10, 12, 15, 20, 30)


def lowest_certbot_wait(obs: Observer, out: Path, host: str) -> tuple[int, list[dict]]:
    """The smallest --dns-rfc2136-propagation-seconds of CERTBOT_WAITS that issues a certificate here (with a
    lagging secondary: against it), and every attempt (wait, passed, wall)."""
    attempts = []
    for wait in CERTBOT_WAITS:
        if time.monotonic() > DEADLINE[0]:
            break
        r = run_tool(obs, "certbot", out, [host], wait)
        attempts.append({"wait": wait, "passed": r["failed"] == 0 and r["certificates"] == 1, "wall": r["wall"]})
        if attempts[-1]["passed"]:
            return wait, attempts
    return 60, attempts


# ---------------------------------------------------------------------------------------------- one size
def bench_size(n: int, args, out: Path, source: Path) -> dict:
    directory = Path(tempfile.mkdtemp(prefix=f"byoc-bench-{n}-"))
    lab = Lab(directory / "lab")
    lag = getattr(args, "lag_secondary", None) or None  # 0 or absent (the CI run): the default lab, no lag
    result: dict = {"n": n, "lag_secondary": lag}
    try:
        started = time.monotonic()
        lab.up(fleet_parts(n, expired=True, lag=lag))
        result["lab_start_seconds"] = round(time.monotonic() - started, 1)
        obs = Observer(lab)
        result["expired_at_start"] = n - obs.served()["valid"]
        print(f"bench: N={n}: lab up in {result['lab_start_seconds']}s", flush=True)
        if getattr(args, "tools_only", False):
            result.update(compare(obs, n, args, out))
            return result
        result["rotate"] = run_pipeline(obs, source, f"rotate-{n}", out)
        after = obs.served()
        result["rotate"]["served_valid"] = after["valid"]
        result["rotate"]["trunks_connected"] = obs.trunks_connected()
        result["trunks"] = 2 * n
        print(f"bench: N={n}: rotation {result['rotate']['wall']}s rc={result['rotate']['rc']}", flush=True)
        if result["rotate"]["timed_out"]:
            return result  # out of --budget: no converged run on a half-rotated fleet
        result["converged"] = run_pipeline(obs, source, f"converged-{n}", out)
        print(f"bench: N={n}: converged run {result['converged']['wall']}s rc={result['converged']['rc']}", flush=True)
        if n in args.compare:
            result.update(compare(obs, n, args, out))
    finally:
        lab.down()
        if not args.keep:
            shutil.rmtree(directory, ignore_errors=True)
    return result


def compare(obs: Observer, n: int, args, out: Path) -> dict:
    """certbot and lego over the same groups, one certificate after another."""
    hosts = list(obs.devices)
    tools = {}
    if "lego" in args.tools:
        tools["lego"] = run_tool(obs, "lego", out, hosts[:getattr(args, "lego_hosts", None) or n])
        print(f"bench: N={n}: lego {tools['lego']['wall']}s", flush=True)
    if "certbot" in args.tools:
        wait, attempts = lowest_certbot_wait(obs, out, hosts[0])
        tools["certbot_lowest"] = run_tool(obs, "certbot", out, hosts, wait)
        tools["certbot_lowest"]["search"] = attempts
        print(f"bench: N={n}: certbot wait search {attempts}", flush=True)
        print(f"bench: N={n}: certbot (wait {wait}s) {tools['certbot_lowest']['wall']}s", flush=True)
        if args.certbot_default_sample:
            sample = run_tool(obs, "certbot", out, hosts[:args.certbot_default_sample], None)
            sample["extrapolated_wall"] = round(sample["per_certificate_wall"] * n, 1)
            sample["measured_on"] = args.certbot_default_sample
            tools["certbot_default"] = sample
            print(f"bench: N={n}: certbot (default wait) {sample['per_certificate_wall']}s per certificate",
                  flush=True)
    elif "certbot-default" in args.tools and args.certbot_default_sample:
        # only certbot's default wait, on a sample (the ratio target is against this one; minutes per certificate)
        sample = run_tool(obs, "certbot", out, hosts[:args.certbot_default_sample], None)
        sample["extrapolated_wall"] = round(sample["per_certificate_wall"] * n, 1)
        sample["measured_on"] = args.certbot_default_sample
        tools["certbot_default"] = sample
        print(f"bench: N={n}: certbot (default wait) {sample['per_certificate_wall']}s per certificate", flush=True)
    return {"tools": tools}


# ---------------------------------------------------------------------------------------------- report
def predict(results: list[dict], n: int) -> float | None:
    """Seconds a size would take (lab start, rotation, converged run), linear in N: through the last two measured
    sizes when there are two (a rotation has a fixed cost per batch and a cost per group, so the line through two
    sizes predicts a larger one better), else proportional to the last measured size."""
    measured = [r for r in results if r.get("rotate")]
    if not measured:
        return None

    def wall(r: dict) -> float:
        return r.get("lab_start_seconds", 0) + sum(r[k]["wall"] for k in ("rotate", "converged") if r.get(k))

    last = measured[-1]
    if len(measured) >= 2 and measured[-2]["n"] < last["n"]:
        first = measured[-2]
        slope = (wall(last) - wall(first)) / (last["n"] - first["n"])
        if slope > 0:
            return wall(last) + slope * (n - last["n"])
    return wall(last) / last["n"] * n


def predicted_how(results: list[dict]) -> str:
    measured = [r["n"] for r in results if r.get("rotate")]
    return (f"linear in N through N={measured[-2]} and N={measured[-1]}" if len(measured) >= 2
            else f"linear in N from N={measured[-1]}")


def ratio(a, b):
    return round(a / b, 1) if a and b else None


def table(results: list[dict]) -> str:
    lines = ["| N | run | wall s | per group s | CPU s | peak MB | orders | ARI | dev req (writes) | Genesys API req "
             "(tokens, peak/min/token, 429) | DNS wait max s | end state |", "|" + "---|" * 12]
    for r in results:
        n = r["n"]
        if r.get("skipped"):
            lines.append(f"| {n} | skipped | {r['skipped']} |" + " |" * 9)
            continue
        for key in ("rotate", "converged"):
            x = r.get(key)
            if not x:
                continue
            end = ""
            if key == "rotate":
                end = f"{x.get('served_valid')}/{n} valid by name, {x.get('trunks_connected')}/{2 * n} trunks"
                end += ", TIMED OUT (--budget)" if x.get("timed_out") else (f", rc {x['rc']}" if x["rc"] else "")
            else:
                end = ", ".join(f"{v} {k}" for k, v in x["statuses"].items())
            g = x["genesys"]
            lines.append(
                f"| {n} | ours {key} | {x['wall']} | {round(x['wall'] / n, 2)} | {x['cpu']} | {x['peak_rss_mb']} | "
                f"{x['acme'].get('orders')} | {x['acme'].get('ari')} | {x['device_requests']['total']} "
                f"({x['device_requests']['writes']}) | {g['api']} ({g['tokens']}, {g['peak_per_minute_per_token']}, "
                f"{g['throttled']}) | {x['dns_wait']['max']} | {end} |")
        for name, t in (r.get("tools") or {}).items():
            wall = t.get("extrapolated_wall", t["wall"])
            note = f" (extrapolated from {t['measured_on']})" if "extrapolated_wall" in t else ""
            lines.append(
                f"| {n} | {name}{' wait ' + str(t['wait']) + 's' if t['wait'] is not None else ''} | {wall}{note} | "
                f"{t['per_certificate_wall']} | {t['cpu']} | {t['peak_rss_mb']} | {t['acme'].get('orders')} | "
                f"{t['acme'].get('ari')} | {t['device_requests']['total']} ({t['device_requests']['writes']}) | - | - | "
                f"{t['served_by_tool']}/{t['certificates']} served, {t['failed']} failed |")
    lines.append("")
    for r in results:
        if r.get("lag_secondary"):
            lines.append(f"- N={r['n']}: DNS secondary lagging {r['lag_secondary']:g}s, ACME validation there")
        search = ((r.get("tools") or {}).get("certbot_lowest") or {}).get("search")
        if search:
            lines.append(f"- N={r['n']}: certbot wait search: " + ", ".join(
                f"{a['wait']}s {'passed' if a['passed'] else 'failed'}" for a in search))
        ours = (r.get("rotate") or {}).get("wall")
        for name, t in (r.get("tools") or {}).items() if ours else ():
            wall = t.get("extrapolated_wall", t["wall"])
            lines.append(f"- N={r['n']}: {name} / ours (full rotation incl. Genesys trust and verification) = "
                         f"{ratio(wall, ours)}x")
    measured_sizes = [r for r in results if not r.get("skipped")]
    if len(measured_sizes) > 1:
        a, b = measured_sizes[0], measured_sizes[-1]
        for key in ("rotate", "converged"):
            if a.get(key) and b.get(key):
                lines.append(f"- growth N={a['n']} -> N={b['n']} ({key}): wall x{ratio(b[key]['wall'], a[key]['wall'])}, "
                             f"per group {round(a[key]['wall'] / a['n'], 2)}s -> {round(b[key]['wall'] / b['n'], 2)}s, "
                             f"CPU x{ratio(b[key]['cpu'], a[key]['cpu'])}")
    return "\n".join(lines)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", default="10,50,200")
    ap.add_argument("--compare", default="10", help="sizes at which certbot and lego run (sequential, slow)")
    ap.add_argument("--budget", type=float, default=840.0,
                    help="seconds for the whole bench (default 14 min): a size predicted not to fit is skipped with "
                         "the prediction, and a run still going at the end is stopped and reported as timed out")
    ap.add_argument("--tools", default="lego,certbot",
                    help="lego, certbot (lowest passing wait, then the default wait on a sample), or certbot-default"
                         " (only the default wait on a sample)")
    ap.add_argument("--certbot-default-sample", type=int, default=1,
                    help="certificates measured with certbot's default propagation wait (then extrapolated)")
    ap.add_argument("--lag-secondary", type=float, default=5.0, metavar="SECONDS",
                    help="BIND's secondary serves lab.test SECONDS late and Pebble validates there (default 5; 0: off)")
    ap.add_argument("--out", default=str(REPO / ".build" / "bench"))
    ap.add_argument("--source", default="", help="a directory holding ansible_collections/byoc/certificates")
    ap.add_argument("--keep", action="store_true", help="keep the labs' directories")
    ap.add_argument("--tools-only", action="store_true", help="only certbot and lego (on a fresh fleet lab)")
    ap.add_argument("--serial", default="", metavar="N,M,...",
                    help="byoc_rollout_serial for every rotate.yml run (default: the fleet inventory's, 1,10,25%%)")
    args = ap.parse_args(argv)
    if args.serial:
        serial = [int(x) if x.isdigit() else x for x in args.serial.split(",")]
        PLAYBOOK_EXTRA[:] = ["-e", json.dumps({"byoc_rollout_serial": serial})]
    args.compare = [int(x) for x in args.compare.split(",") if x]
    args.tools = [x for x in args.tools.split(",") if x]
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    source = Path(args.source) if args.source else REPO / ".build" / "dev"
    if args.compare and "certbot" in args.tools and not (BENCH_VENV / "bin" / "certbot").exists():
        print(f"bench: certbot is not installed in {BENCH_VENV}; run `make setup` (scripts/bootstrap.sh)", file=sys.stderr)
        return 2
    if args.compare and "lego" in args.tools and not shutil.which("lego"):
        print("bench: lego is not installed (Debian package lego); run `make setup` as root", file=sys.stderr)
        return 2
    started = time.monotonic()
    DEADLINE[0] = started + args.budget
    results = []
    for n in [int(x) for x in args.sizes.split(",") if x]:
        predicted = predict(results, n)
        if predicted and time.monotonic() + predicted > DEADLINE[0]:
            results.append({"n": n, "skipped": f"predicted {predicted:.0f}s ({predicted_how(results)}),"
                                               f" more than the {DEADLINE[0] - time.monotonic():.0f}s left of --budget",
                            "predicted_wall": round(predicted)})
            print(f"bench: N={n}: skipped, {results[-1]['skipped']}", flush=True)
            continue
        results.append(bench_size(n, args, out, source))
        (out / "fleet-bench.json").write_text(json.dumps(
            {"date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
             "cpus": os.cpu_count(), "load_avg_at_end": os.getloadavg(), "results": results}, indent=2))
    text = table(results)
    (out / "fleet-bench.md").write_text(text + "\n")
    print(text)
    print(f"bench: total {time.monotonic() - started:.0f}s; {out / 'fleet-bench.json'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
