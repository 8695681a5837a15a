"""Helpers of the fault matrix (tests/integration/test_fault_matrix.py; docs/faults.md).

- ``MatrixFleet``: the lab fleet of inventory.example/lab (the four groups) with independent observers, built on
  ``test_rotate_deploy_faults.Fleet`` (its SIP-TLS probe trusting exactly the org's REMOTE CAs read from the org's
  API, its read-back of every HA member);
- ``invariant``: the ONE check every row makes (docs/faults.md, "The invariant");
- test-side fault servers that stand in front of (or beside) a lab part, for faults the parts have no knob for:
  ``AcmeFaultProxy`` (an HTTPS proxy in front of Pebble) and ``FakeDns`` (a DNS server that answers REFUSED, or
  one that serves a frozen copy of the zone, as a secondary that never catches up).

Test-only code: the product never calls any of it.
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import re
import signal
import socket
import socketserver
import ssl
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import dns.flags
import dns.message
import dns.query
import dns.rcode
import dns.rdatatype
import dns.tsigkeyring
import dns.update
from cryptography.hazmat.primitives import serialization
from cryptography import x509

from byoc_harness import REPO, ModuleRunner, ansible_env  # noqa: E402  (on sys.path via conftest)
from test_rotate import recap  # noqa: E402
from test_rotate_deploy_faults import PASSPHRASE, Fleet, agree, call  # noqa: E402

INVENTORY = REPO / "inventory.example" / "lab"
HOSTS = ["mediant_ha", "mediant_sa", "sbc_core", "sbc_edge"]
GROUP = {"mediant_ha": "grp_mediant_ha", "mediant_sa": "grp_mediant_sa", "sbc_core": "grp_sbc_core",
         "sbc_edge": "grp_sbc_edge"}
AC_DEVICE = {"mediant_ha": "mediant-ha", "mediant_sa": "mediant-sa"}
HA_PAIRS = ["mediant_ha", "sbc_core"]
# Keys of lab.json whose values are secrets (every credential of every part)
SECRET_KEY = re.compile(r"(password|secret|passphrase|hmac_key|token)$", re.I)
PRIVATE_PEM = re.compile(r"-----BEGIN [A-Z ]*PRIVATE KEY-----")


class MatrixFleet(Fleet):
    """The lab fleet of the four groups, as test_rotate_deploy_faults.Fleet sees it, plus mediant_sa, -vvv runs,
    a run in the background (for a fault that strikes while the run is under way) and every secret of the lab."""

    def __init__(self, lab, directory: Path):
        super().__init__(lab, directory)
        self.sip["mediant_sa"] = self.c["audiocodes"]["devices"]["mediant-sa"]["sip_tls"]
        self.outputs: list[str] = []  # everything every run printed (for the no-secret check of the row)

    # ---- runs ---------------------------------------------------------------------------------------------------
    def command(self, *args: str, extra: dict | None = None, store: Path | None = None) -> list[str]:
        vars_ = {"byoc_store": {"backend": "filesystem", "path": str(store or self.store)},
                 "byoc_verify_trunk_timeout": 20, **(extra or {})}
        return [str(Path(sys.executable).parent / "ansible-playbook"), "-i", str(INVENTORY),
                str(REPO / "playbooks" / "rotate.yml"), *args, "-e", json.dumps(vars_)]

    def env(self) -> dict:
        extra = {}
        if os.environ.get("BYOC_MATRIX_LOGS"):  # reading a row's logs: where its time went, task by task
            extra["ANSIBLE_CALLBACKS_ENABLED"] = "ansible.posix.profile_tasks"
        return ansible_env({"BYOC_LAB_JSON": str(self.lab.json_file), "BYOC_STORE_PASSPHRASE": PASSPHRASE,
                            "BYOC_REPORT_DIR": str(self.report_dir), "ANSIBLE_STDOUT_CALLBACK": "default", **extra})

    def run(self, *args: str, extra: dict | None = None, store: Path | None = None) -> subprocess.CompletedProcess:
        proc = subprocess.run(self.command(*args, extra=extra, store=store), capture_output=True, text=True,
                              env=self.env(), timeout=1800, cwd=REPO, check=False)
        self.outputs.append(proc.stdout + proc.stderr)
        return proc

    def start(self, *args: str, extra: dict | None = None, store: Path | None = None, tag: str = "bg"):
        """A run in the background, in its own session (so it can be killed by its PID with its children)."""
        out = open(self.dir / f"{tag}-{time.monotonic_ns()}.log", "w+", encoding="utf-8")  # noqa: SIM115
        proc = subprocess.Popen(self.command(*args, extra=extra, store=store), stdout=out, stderr=subprocess.STDOUT,
                                text=True, env=self.env(), cwd=REPO, start_new_session=True)
        proc.log = out  # type: ignore[attr-defined]
        return proc

    def finish(self, proc, timeout: float = 900) -> subprocess.CompletedProcess:
        proc.wait(timeout=timeout)
        proc.log.seek(0)
        text = proc.log.read()
        proc.log.close()
        self.outputs.append(text)
        return subprocess.CompletedProcess(proc.args, proc.returncode, text, "")

    def clear_backoff(self, group: str, store: Path | None = None) -> None:
        """Forget the group's failure backoff, as an operator does after fixing a cause (certificate_store
        clear_backoff): a forced run is still subject to the backoff an earlier row's failure left (by design), and
        each row must reach the step it injects its fault into."""
        res = ModuleRunner()("certificate_store", {"backend": "filesystem", "path": str(store or self.store),
                                                   "group": group, "passphrase": PASSPHRASE,
                                                   "clear_backoff": True})
        assert not res.get("failed"), res

    # ---- observers ----------------------------------------------------------------------------------------------
    def members(self, host: str) -> dict:
        if host in AC_DEVICE:
            dev = self.c["audiocodes"]["devices"][AC_DEVICE[host]]
            state = call(f"{dev['control_url']}/state", dev["ca_file"])
            out = {}
            for unit in state["units"]:
                run = unit["running"]
                bound = run["sip_interfaces"]["0"]["tls_context"] or "default"
                ctx = next(c for c in run["contexts"].values() if c["name"] == bound)
                out[f"unit {unit['id']}"] = ctx["certificate_sha256"] if ctx["key_valid"] else f"no key ({bound})"
            return out
        return super().members(host)

    def device_log(self, host: str) -> list[tuple[str, str]]:
        if host in AC_DEVICE:
            dev = self.c["audiocodes"]["devices"][AC_DEVICE[host]]
            return [(r["method"], r["path"]) for r in call(f"{dev['control_url']}/requests", dev["ca_file"])]
        part = "ribbon_core" if host == "sbc_core" else "ribbon_edge"
        return [(r[0], r[1]) for r in call(f"{self.c[part]['control_url']}/requests", self.ca_file)]

    def device_writes(self, host: str) -> list[tuple[str, str]]:
        return [r for r in self.device_log(host) if r[0] not in ("GET", "HEAD") and not r[1].endswith(("/login", "/logout"))]

    def genesys(self, method: str = "GET", path: str = "state", body=None):
        return call(f"{self.c['genesys']['control_url']}/{path}", self.ca_file, method=method, body=body)

    def secrets(self) -> list[str]:
        """Every secret of the run's environment: each credential in lab.json (devices, SFTP, Genesys, TSIG, EAB)
        and the store passphrase."""
        found: list[str] = [PASSPHRASE]

        def walk(obj) -> None:
            if isinstance(obj, dict):
                for k, v in obj.items():
                    if isinstance(v, str) and SECRET_KEY.search(str(k)) and len(v) >= 6:
                        found.append(v)
                    else:
                        walk(v)
            elif isinstance(obj, list):
                for v in obj:
                    walk(v)
        walk(json.loads(Path(self.lab.json_file).read_text()))
        return sorted(set(found))

    def stored_keys(self, store: Path | None = None) -> dict:
        """group -> {slot: fingerprint}: every current/previous key of the store opened with the passphrase and
        matched to its certificate (an AssertionError names the group and slot that does not open or match)."""
        out: dict = {}
        for state_file in sorted((store or self.store).glob("*/state.json")):
            doc = json.loads(state_file.read_text())
            group = state_file.parent.name
            for slot in ("current", "previous"):
                m = doc.get(slot)
                if not m:
                    continue
                assert m.get("privatekey"), f"{group} {slot}: no private key in the store"
                key = serialization.load_pem_private_key(m["privatekey"].encode(), PASSPHRASE.encode())
                cert = x509.load_pem_x509_certificate(m["certificate"].encode())
                raw = serialization.PublicFormat.SubjectPublicKeyInfo
                assert key.public_key().public_bytes(serialization.Encoding.DER, raw) == \
                    cert.public_key().public_bytes(serialization.Encoding.DER, raw), f"{group} {slot}: key does not match"
                out.setdefault(group, {})[slot] = m["fingerprint"]
                # the key's own text must never be printed
                body = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                         serialization.NoEncryption()).decode().splitlines()[1]
                out.setdefault("_key_lines", []).append(body)
        return out


# ---- the invariant ---------------------------------------------------------------------------------------------
def invariant(fleet: MatrixFleet, proc: subprocess.CompletedProcess, *, limit: str, names: list[str],
              store: Path | None = None, rerun_extra: dict | None = None, before_rerun=None) -> dict:
    """The one check of every row (docs/faults.md, "The invariant"). Returns what it observed.

    1. every endpoint serves a valid certificate that chains to a CA the org trusts: a fresh SIP-TLS handshake by
       the trunk name (lab DNS), trusting exactly the REMOTE CAs read from the org's API, as an Edge;
    2. no HA pair is split: every member of both pairs read back, all on the certificate the endpoint serves;
    3. no key is lost: every current/previous key of the store opens with the passphrase and matches its
       certificate;
    4. the failure is reported by name: a failed run names the group, the device and the step (``names``: regexes);
    5. no secret printed at -vvv: no credential of the lab, no passphrase, no private key text in any output;
    6. a re-run converges: a second run (no fault, no force) fails nothing; if it changed something, a third run
       changes nothing. Points 1-3 hold again after it.
    """
    out = proc.stdout + proc.stderr
    if proc.returncode != 0:
        for pattern in names:
            assert re.search(pattern, out), f"the failure does not name {pattern!r}:\n{out[-6000:]}"
    seen = _served(fleet)
    keys = fleet.stored_keys(store)
    if before_rerun:
        before_rerun()
    second = fleet.run("--limit", limit, extra=rerun_extra, store=store)
    assert second.returncode == 0, (second.stdout + second.stderr)[-6000:]
    r2 = recap(second)
    assert r2 and all(v["failed"] == 0 for v in r2.values()), r2
    runs = 2
    if any(v["changed"] for v in r2.values()):
        third = fleet.run("--limit", limit, extra=rerun_extra, store=store)
        assert third.returncode == 0, (third.stdout + third.stderr)[-6000:]
        r3 = recap(third)
        assert r3 and all(v["changed"] == 0 and v["failed"] == 0 for v in r3.values()), (r3, third.stdout[-4000:])
        runs = 3
    after = _served(fleet)
    keys_after = fleet.stored_keys(store)
    # 5. no secret in anything any run of the row printed (the faulted run ran at -vvv)
    text = "\n".join(fleet.outputs)
    for secret in fleet.secrets():
        assert secret not in text, "a secret of the lab was printed (its value is not repeated here)"
    for line in keys.get("_key_lines", []) + keys_after.get("_key_lines", []):
        assert line not in text, "a private key of the store was printed"
    assert not PRIVATE_PEM.search(text), "a PEM private key block was printed"
    return {"served": seen, "served_after": after, "store": keys, "runs": runs}


def _served(fleet: MatrixFleet) -> dict:
    trusted = fleet.org_remote_pem()
    assert trusted, "the org trusts no REMOTE CA"
    served = {}
    for host in HOSTS:
        s = fleet.sip[host]
        from emulators.common.siptls import sip_options_probe  # noqa: PLC0415  (lab path set by byoc_harness)
        seen = sip_options_probe(fleet.resolve(s["name"]), s["port"], cadata=trusted, server_name=s["name"],
                                 client_chain_pem=fleet.edge_cert, client_key_pem=fleet.edge_key)
        assert seen["ok"], (host, seen)  # valid, by name, chains to a CA the org trusts, the Edge accepted
        served[host] = seen["peer_sha256"]
    for host in HA_PAIRS:
        members = fleet.members(host)
        assert agree(members), (host, members)  # no split pair
        assert set(members.values()) == {served[host]}, (host, members, served[host])
    return served


def watch(predicate, action, *, interval: float = 0.2, stop: threading.Event | None = None) -> threading.Thread:
    """Run ``action()`` once, as soon as ``predicate()`` holds (polled), in a thread; for faults that must strike
    while a run is under way. The thread ends when ``stop`` is set."""
    stop = stop or threading.Event()

    def loop() -> None:
        while not stop.is_set():
            try:
                if predicate():
                    action()
                    return
            except (OSError, urllib.error.URLError, ValueError):
                pass
            stop.wait(interval)
    t = threading.Thread(target=loop, daemon=True)
    t.stop = stop  # type: ignore[attr-defined]
    t.start()
    return t


def _descendants(pid: int) -> list[int]:
    """Every process below ``pid`` (children, their children, ...), from /proc."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", encoding="ascii", errors="replace") as fh:
                ppid = int(fh.read().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue
        children.setdefault(ppid, []).append(int(entry))
    out, todo = [], [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            out.append(child)
            todo.append(child)
    return out


def kill_run(proc) -> None:
    """SIGKILL the background run as a dead controller would be: ansible-playbook (by its PID) and every process
    below it, each by its PID. Not the process group alone: ansible-core's workers call setsid() (their own
    sessions), so a killpg of ansible-playbook's group left the worker and its module process running, and the
    module went on writing to the device while the test looked at it. Each process is stopped first (SIGSTOP),
    until no new one appears, so none can start another between the walk and the kill."""
    stopped: list[int] = []
    while True:
        new = [p for p in [proc.pid, *_descendants(proc.pid)] if p not in stopped]
        if not new:
            break
        for pid in new:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGSTOP)
            stopped.append(pid)
    for pid in stopped:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)


# ---- an ACME server with faults: an HTTPS proxy in front of the lab's Pebble ------------------------------------
class AcmeFaultProxy:
    """HTTPS on 127.0.0.1 (a lab-CA certificate), forwarding every request to Pebble with the proxy's own Host
    header, so that every URL Pebble builds (directory, orders, nonces, JWS ``url`` check) names the proxy.

    ``mode``: ``None`` (pass through), ``"down"`` (503 + Retry-After: 1 to everything, as an ACME server in
    maintenance; acme-and-dns.md: RFC 8555 §6.6 lets a server answer 503 with Retry-After), ``"ratelimited"``
    (``count`` newOrder requests answered 429 ``urn:ietf:params:acme:error:rateLimited`` with ``Retry-After``,
    RFC 8555 §6.6), ``"badnonce"`` (every POST answered 400 ``badNonce`` with a fresh Replay-Nonce, RFC 8555 §6.5),
    ``"invalid"`` (when the client answers the challenge, the TXT record is removed from DNS first, so Pebble's
    validation fails and the order becomes invalid, RFC 8555 §7.1.6), ``"hold"`` (newOrder and finalize requests
    are held, unanswered, until ``release()``: a run that is provably inside its ACME order, for as long as the
    test needs; ``held`` is set while one waits; after ``close()`` a held request is answered 503 and never
    forwarded, so a run killed meanwhile leaves no order behind)."""

    HOLD_PATHS = ("/order-plz", "/finalize-order/")  # Pebble's newOrder and finalize URLs

    def __init__(self, lab, mode: str | None = None, *, count: int = 0, retry_after: int = 1):
        self.pebble = lab.components["pebble"]
        self.bind = lab.components["bind"]
        self.ca_file = str(lab.ca.cert_file)
        self.mode, self.count, self.retry_after = mode, count, retry_after
        self.hits: list[tuple[str, str, int]] = []
        self.held = threading.Event()      # "hold": a request is being held now
        self._released = threading.Event()
        self._closing = False
        cert, key = lab.ca.issue("acme-fault-proxy", ["localhost", "127.0.0.1"])
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(str(cert), str(key))
        self.upstream = self.pebble["directory"].rsplit("/", 1)[0]  # https://127.0.0.1:PORT
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *a):  # quiet
                pass

            def do_GET(self):
                proxy.handle(self)

            do_HEAD = do_POST = do_GET

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.server.socket = ctx.wrap_socket(self.server.socket, server_side=True)
        self.port = self.server.server_address[1]
        self.directory = f"https://127.0.0.1:{self.port}/dir"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def acme(self, extra_root: bool = True) -> dict:
        """byoc_acme for the inventory: the proxy's directory, trusting the lab CA, Pebble's root."""
        return {"directory": self.directory, "ca_file": self.ca_file, "root_url": f"{self.pebble['management']}/roots/0",
                "contact": ["mailto:pki@example.test"], "profile": "default"}

    def release(self) -> None:
        """``"hold"``: let the held requests (and every later one) through."""
        self._released.set()

    def close(self) -> None:
        self._closing = True
        self._released.set()
        self.server.shutdown()
        self.server.server_close()

    def _nonce(self) -> str:
        req = urllib.request.Request(f"{self.upstream}/nonce-plz", method="HEAD",
                                     headers={"User-Agent": "byoc-fault-proxy", "Host": f"127.0.0.1:{self.port}"})
        with urllib.request.urlopen(req, context=ssl.create_default_context(cafile=self.ca_file), timeout=10) as r:
            return r.headers.get("Replay-Nonce", "")

    def _problem(self, h, status: int, kind: str, detail: str, headers: dict | None = None) -> None:
        body = json.dumps({"type": f"urn:ietf:params:acme:error:{kind}", "detail": detail, "status": status}).encode()
        h.send_response(status)
        h.send_header("Content-Type", "application/problem+json")
        h.send_header("Content-Length", str(len(body)))
        try:
            h.send_header("Replay-Nonce", self._nonce())
        except OSError:
            pass
        for k, v in (headers or {}).items():
            h.send_header(k, v)
        h.end_headers()
        h.wfile.write(body)

    def handle(self, h) -> None:
        length = int(h.headers.get("Content-Length") or 0)
        data = h.rfile.read(length) if length else None
        path = h.path
        if self.mode == "down":
            self.hits.append((h.command, path, 503))
            self._problem(h, 503, "serverInternal", "the ACME service is down for maintenance (injected)",
                          {"Retry-After": str(self.retry_after)})
            return
        if self.mode == "ratelimited" and h.command == "POST" and path.startswith("/order-plz") and self.count > 0:
            self.count -= 1
            self.hits.append((h.command, path, 429))
            self._problem(h, 429, "rateLimited", "too many new orders recently (injected): retry after "
                          f"{self.retry_after} seconds", {"Retry-After": str(self.retry_after)})
            return
        if self.mode == "badnonce" and h.command == "POST":
            self.hits.append((h.command, path, 400))
            self._problem(h, 400, "badNonce", "JWS has an invalid anti-replay nonce (injected)")
            return
        if self.mode == "hold" and h.command == "POST" and path.startswith(self.HOLD_PATHS) \
                and not self._released.is_set():
            self.hits.append((h.command, path, 0))
            self.held.set()
            self._released.wait(600)
            self.held.clear()
            if self._closing:
                with contextlib.suppress(OSError):  # the client may be dead (killed while it waited)
                    self._problem(h, 503, "serverInternal", "the fault proxy was closed while it held this request")
                h.close_connection = True
                return
        if self.mode == "invalid" and h.command == "POST" and path.startswith("/chalZ/"):
            self.hits.append((h.command, path, 0))
            self._remove_challenge_txt()
        headers = {k: v for k, v in h.headers.items() if k.lower() not in ("host", "content-length", "connection")}
        headers["Host"] = f"127.0.0.1:{self.port}"
        req = urllib.request.Request(self.upstream + path, data=data, method=h.command, headers=headers)
        try:
            resp = urllib.request.urlopen(req, context=ssl.create_default_context(cafile=self.ca_file), timeout=60)
        except urllib.error.HTTPError as exc:
            resp = exc
        with resp:
            body = resp.read()
            h.send_response(resp.status if hasattr(resp, "status") else resp.code)
            for k, v in resp.headers.items():
                if k.lower() not in ("content-length", "transfer-encoding", "connection"):
                    h.send_header(k, v)
            h.send_header("Content-Length", str(len(body)))
            h.end_headers()
            if h.command != "HEAD":
                h.wfile.write(body)

    def _remove_challenge_txt(self) -> None:
        """Delete every _acme-challenge TXT record of the lab zone at the primary (TSIG), as if another process
        had cleaned them up before the CA looked."""
        b = self.bind
        zone = b["zones"]["lab"]
        keyring = dns.tsigkeyring.from_text({b["tsig"]["name"]: b["tsig"]["secret"]})
        axfr = dns.query.xfr(b["primary"]["host"], zone, port=b["primary"]["port"])
        names = set()
        for msg in axfr:
            for rr in msg.answer:
                if rr.rdtype == dns.rdatatype.TXT and rr.name.to_text().startswith("_acme-challenge"):
                    names.add(rr.name.to_text())
        if not names:
            return
        upd = dns.update.UpdateMessage(zone, keyring=keyring, keyalgorithm=b["tsig"]["algorithm"])
        for n in names:
            upd.delete(n, "TXT")
        dns.query.tcp(upd, b["primary"]["host"], port=b["primary"]["port"], timeout=5)


# ---- DNS servers with faults -------------------------------------------------------------------------------------
class FakeDns:
    """A DNS server on 127.0.0.1 (UDP and TCP, one port). ``mode="refused"`` answers REFUSED to everything
    (RFC 1035 §4.1.1 RCODE 5: a server that will not serve the zone or take the update); ``mode="stale"`` is a
    secondary that never catches up: it answers from a copy of the zone taken at start (transferred from the
    primary), so a TXT record added later is never there (RFC 1996: a secondary that gets no NOTIFY and whose
    refresh has not come)."""

    def __init__(self, mode: str, primary: dict | None = None, zone: str | None = None):
        self.mode = mode
        self.queries = 0
        self.records: dict = {}
        self.soa = None
        if mode == "stale":
            for msg in dns.query.xfr(primary["host"], zone, port=primary["port"]):
                for rr in msg.answer:
                    self.records.setdefault((rr.name.to_text(), rr.rdtype), rr)
                    if rr.rdtype == dns.rdatatype.SOA:
                        self.soa = rr
        fake = self

        class Udp(socketserver.BaseRequestHandler):
            def handle(self):
                data, sock = self.request
                sock.sendto(fake.answer(data), self.client_address)

        class Tcp(socketserver.BaseRequestHandler):
            def handle(self):
                head = self.request.recv(2)
                if len(head) < 2:
                    return
                n = int.from_bytes(head, "big")
                data = b""
                while len(data) < n:
                    chunk = self.request.recv(n - len(data))
                    if not chunk:
                        return
                    data += chunk
                wire = fake.answer(data)
                self.request.sendall(len(wire).to_bytes(2, "big") + wire)

        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        socketserver.ThreadingTCPServer.allow_reuse_address = True
        self.tcp = socketserver.ThreadingTCPServer(("127.0.0.1", port), Tcp)
        self.udp = socketserver.ThreadingUDPServer(("127.0.0.1", port), Udp)
        self.port = port
        for srv in (self.tcp, self.udp):
            srv.daemon_threads = True
            threading.Thread(target=srv.serve_forever, daemon=True).start()

    def answer(self, data: bytes) -> bytes:
        self.queries += 1
        try:
            q = dns.message.from_wire(data, ignore_trailing=True, keyring=False)  # TSIG not checked
        except Exception:  # noqa: BLE001  (garbage: answer nothing useful)
            return data[:2] + b"\x81\x01" + b"\x00" * 8
        r = dns.message.make_response(q)
        if self.mode == "refused" or not q.question:
            r.set_rcode(dns.rcode.REFUSED)
            return r.to_wire()
        qn = q.question[0]
        rr = self.records.get((qn.name.to_text(), qn.rdtype))
        r.flags |= dns.flags.AA
        if rr is not None:
            r.answer.append(rr)
        else:
            if not any(k[0] == qn.name.to_text() for k in self.records):
                r.set_rcode(dns.rcode.NXDOMAIN)
            r.authority.append(self.soa)
        return r.to_wire()

    def close(self) -> None:
        for srv in (self.tcp, self.udp):
            srv.shutdown()
            srv.server_close()


def b64(s: str) -> str:
    return base64.b64encode(s.encode()).decode()
