"""The lab's engine: free loopback ports, processes started and stopped by PID, a local CA, and lab.json.

A component is a class with a ``name``, the names of the components it ``requires``, and a ``start(lab)`` method
that starts its processes through :meth:`Lab.spawn`, waits until they answer, and returns the JSON-able
description that goes under ``components.<name>`` in lab.json. Nothing here knows about any one component.
"""

from __future__ import annotations

import datetime
import json
import os
import signal
import socket
import subprocess
import time
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

REPO = Path(__file__).resolve().parents[3]
BUILD = REPO / ".build"
LOOPBACK = "127.0.0.1"


class LabError(Exception):
    """A lab part failed to start; the message says which part and shows the end of its log."""


def free_port(udp_too: bool = False) -> int:
    """Return a loopback port that is free for TCP (and for UDP when ``udp_too``), chosen by the kernel."""
    for _attempt in range(50):
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as tcp:
            tcp.bind((LOOPBACK, 0))
            port = tcp.getsockname()[1]
            if not udp_too:
                return port
            try:
                with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
                    udp.bind((LOOPBACK, port))
            except OSError:
                continue
            return port
    raise LabError("could not find a free loopback port")


def tcp_open(port: int, host: str = LOOPBACK) -> bool:
    try:
        with socket.create_connection((host, port), timeout=0.5):
            return True
    except OSError:
        return False


def tail(path: Path, lines: int = 30) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


class LabCA:
    """A throw-away CA that signs the lab's own TLS listeners (Pebble's API, the emulators' management ports)."""

    def __init__(self, directory: Path):
        self.dir = directory
        self.dir.mkdir(parents=True, exist_ok=True)
        self.cert_file = self.dir / "lab-ca.pem"
        key_file = self.dir / "lab-ca.key"
        if self.cert_file.exists() and key_file.exists():
            self.key = serialization.load_pem_private_key(key_file.read_bytes(), None)
            self.cert = x509.load_pem_x509_certificate(self.cert_file.read_bytes())
            return
        self.key = ec.generate_private_key(ec.SECP256R1())
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "byoc lab CA")])
        now = datetime.datetime.now(datetime.timezone.utc)
        self.cert = (
            x509.CertificateBuilder()
            .subject_name(name).issuer_name(name).public_key(self.key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=30))
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .add_extension(x509.KeyUsage(False, False, False, False, False, True, True, False, False), critical=True)
            .sign(self.key, hashes.SHA256())
        )
        _write_private(key_file, self.key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))
        self.cert_file.write_bytes(self.cert.public_bytes(serialization.Encoding.PEM))

    def issue(self, stem: str, names: list[str], *, expired: bool = False) -> tuple[Path, Path]:
        """Issue a server certificate for DNS names and IP addresses; return (cert_file, key_file). With ``expired``
        it ended a day ago (a device that nobody rotated in time)."""
        import ipaddress

        key = ec.generate_private_key(ec.SECP256R1())
        sans: list[x509.GeneralName] = []
        for n in names:
            try:
                sans.append(x509.IPAddress(ipaddress.ip_address(n)))
            except ValueError:
                sans.append(x509.DNSName(n))
        now = datetime.datetime.now(datetime.timezone.utc)
        cert = (
            x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, names[0])]))
            .issuer_name(self.cert.subject).public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(days=91) if expired else now - datetime.timedelta(minutes=5))
            .not_valid_after(now - datetime.timedelta(days=1) if expired else now + datetime.timedelta(days=7))
            .add_extension(x509.SubjectAlternativeName(sans), critical=False)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .sign(self.key, hashes.SHA256())
        )
        cert_file, key_file = self.dir / f"{stem}.pem", self.dir / f"{stem}.key"
        cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        _write_private(key_file, key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))
        return cert_file, key_file


def _write_private(path: Path, data: bytes) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(data)


class Lab:
    """One running lab, described by ``<dir>/lab.json``."""

    def __init__(self, directory: str | os.PathLike, *, expired_sip: bool = False):
        self.dir = Path(directory).resolve()
        # The SBCs' SIP-TLS endpoints start with EXPIRED certificates from the lab CA (make demo: rotate a fleet
        # that nobody rotated in time). Management certificates stay valid.
        self.expired_sip = expired_sip
        self.json_file = self.dir / "lab.json"
        self.processes: list[dict] = []
        self.components: dict[str, dict] = {}
        self._ca: LabCA | None = None
        self._known: list = []

    # -- building blocks for components --------------------------------------------------------------
    @property
    def ca(self) -> LabCA:
        if self._ca is None:
            self._ca = LabCA(self.dir / "ca")
        return self._ca

    def workdir(self, name: str) -> Path:
        path = self.dir / name
        path.mkdir(parents=True, exist_ok=True)
        return path

    def spawn(self, name: str, argv: list[str], *, env: dict | None = None, cwd: Path | None = None) -> subprocess.Popen:
        """Start a process in its own session, logging to ``<dir>/logs/<name>.log``; remember its PID."""
        log = self.workdir("logs") / f"{name}.log"
        full_env = dict(os.environ)
        full_env.update(env or {})
        with open(log, "ab") as fh:
            proc = subprocess.Popen(argv, stdout=fh, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                    cwd=str(cwd) if cwd else None, env=full_env, start_new_session=True)
        self.processes.append({"name": name, "pid": proc.pid, "start_ticks": _start_ticks(proc.pid),
                               "log": str(log), "argv": argv[:1]})
        self._save()
        return proc

    def log_file(self, name: str) -> Path:
        return self.dir / "logs" / f"{name}.log"

    def wait_ready(self, name: str, proc: subprocess.Popen, ready, timeout: float = 30.0) -> None:
        """Poll ``ready()`` until it is true. Fail with the log's tail if the process dies, logs a bind error,
        or does not become ready in time."""
        deadline = time.monotonic() + timeout
        log = self.log_file(name)
        while True:
            if proc.poll() is not None:
                raise LabError(f"{name} exited with status {proc.returncode} while starting:\n{tail(log)}")
            text = log.read_text(errors="replace") if log.exists() else ""
            if "address already in use" in text.lower() or "address in use" in text.lower():
                raise LabError(f"{name} could not bind its port:\n{tail(log)}")
            try:
                if ready():
                    return
            except Exception:  # noqa: BLE001 - any failure of the probe just means "not yet"
                pass
            if time.monotonic() > deadline:
                raise LabError(f"{name} did not become ready within {timeout:.0f}s:\n{tail(log)}")
            time.sleep(0.1)

    # -- whole lab ---------------------------------------------------------------------------------------
    def up(self, components: list, keep_on_failure: bool = False) -> dict:
        """Start the given component instances in dependency order, skipping parts already running.
        On a failure, stop everything this lab started (unless ``keep_on_failure``, used by the test fixture
        that grows one lab part by part)."""
        self.dir.mkdir(parents=True, exist_ok=True)
        by_name = {c.name: c for c in self._known}
        by_name.update({c.name: c for c in components})
        order: list = []

        def visit(comp, seen=()):
            if comp in order:
                return
            if comp.name in seen:
                raise LabError(f"dependency cycle at {comp.name}")
            for dep in comp.requires:
                if dep not in by_name:
                    raise LabError(f"{comp.name} requires {dep}, which is not part of this lab")
                visit(by_name[dep], seen + (comp.name,))
            order.append(comp)

        for comp in components:
            visit(comp)
        self._known = list(by_name.values())
        try:
            for comp in order:
                if comp.name in self.components:
                    continue
                started = time.monotonic()
                self.components[comp.name] = comp.start(self)
                self.components[comp.name].setdefault("startup_seconds", round(time.monotonic() - started, 2))
                self._save()
        except BaseException:
            if not keep_on_failure:
                self.down()
            raise
        self._save()
        return self.describe()

    def describe(self) -> dict:
        return {
            "dir": str(self.dir),
            "started": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
            "tls": {"ca_file": str(self.ca.cert_file)},
            "processes": self.processes,
            "components": self.components,
        }

    def _save(self) -> None:
        self.dir.mkdir(parents=True, exist_ok=True)
        tmp = self.json_file.with_suffix(".tmp")
        tmp.write_text(json.dumps(self.describe(), indent=2, sort_keys=True))
        os.chmod(tmp, 0o600)
        os.replace(tmp, self.json_file)

    def down(self) -> list[str]:
        """Stop every process this lab started, by PID (whole process group), newest first."""
        return stop_processes(self.processes)

    @classmethod
    def load(cls, directory: str | os.PathLike) -> "Lab":
        lab = cls(directory)
        data = json.loads(lab.json_file.read_text())
        lab.processes = data.get("processes", [])
        lab.components = data.get("components", {})
        return lab


def _start_ticks(pid: int) -> int | None:
    """The process's start time (clock ticks since boot, /proc/<pid>/stat field 22): with the PID it identifies a
    process, so a stale lab.json never makes us signal an unrelated process that reused the PID."""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii") as fh:
            return int(fh.read().rsplit(")", 1)[1].split()[19])
    except (OSError, IndexError, ValueError):
        return None


def _alive(pid: int) -> bool:
    # A zombie has exited; it only waits to be reaped (by us, or slowly by PID 1 after the CLI has exited).
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii") as fh:
            if fh.read().rsplit(")", 1)[1].split()[0] == "Z":
                return False
    except (OSError, IndexError):
        pass
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def stop_processes(processes: list[dict], grace: float = 5.0) -> list[str]:
    stopped = []
    for entry in reversed(processes):
        pid = entry["pid"]
        if not _alive(pid):
            continue
        recorded = entry.get("start_ticks")
        if recorded is not None and _start_ticks(pid) != recorded:
            continue  # the PID now belongs to another process: ours is gone
        try:
            os.killpg(pid, signal.SIGTERM)
        except ProcessLookupError:
            continue
        except PermissionError:
            os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + grace
        while _alive(pid) and time.monotonic() < deadline:
            _reap(pid)
            time.sleep(0.05)
        if _alive(pid):
            try:
                os.killpg(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            _reap(pid)
        stopped.append(f"{entry['name']} (pid {pid})")
    return stopped


def _reap(pid: int) -> None:
    try:
        os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        pass
