"""The fleet_report role, run by ansible-playbook: the console table, report.json, the Prometheus textfile and the
heartbeat (issue 11 §5).

The heartbeat server is a tiny HTTP server started here on a free loopback port and stopped after each test; it
counts the pings by path. The files are read back and parsed (the .prom with a strict line grammar).
"""

from __future__ import annotations

import http.server
import json
import re
import socket
import threading
import uuid

import pytest

from byoc_harness import run_playbook  # noqa: E402  (on sys.path via conftest)

SAMPLE_RE = re.compile(r'^[a-zA-Z_:][a-zA-Z0-9_:]*(\{[a-zA-Z_][a-zA-Z0-9_]*="(?:[^"\\\n]|\\[\\"n])*"'
                       r'(,[a-zA-Z_][a-zA-Z0-9_]*="(?:[^"\\\n]|\\[\\"n])*")*\})? [-+]?\d+(\.\d+)?([eE][-+]?\d+)?$')
COMMENT_RE = re.compile(r"^# (HELP [a-zA-Z_:][a-zA-Z0-9_:]* .+|TYPE [a-zA-Z_:][a-zA-Z0-9_:]* gauge)$")


class Heartbeat:
    """Counts requests by path; answers 200 (or ``status``)."""

    def __init__(self, status: int = 200):
        self.hits: list[tuple[str, str, bytes]] = []
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def _answer(self):
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                outer.hits.append((self.command, self.path, body))
                self.send_response(status)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"OK")

            do_GET = do_POST = do_HEAD = _answer

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def stop(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def heartbeat():
    hb = Heartbeat()
    yield hb
    hb.stop()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def playbook(tmp_path):
    path = tmp_path / "report.yml"
    path.write_text("""
- hosts: localhost
  gather_facts: false
  roles:
    - role: byoc.certificates.fleet_report
""")
    return path


GROUPS = [
    {"group": "ac-ha", "status": "renewed", "reason": "31% of the lifetime left",
     "old_not_after": "2026-12-01T00:00:00Z", "new_not_after": "2027-02-28T00:00:00Z",
     "next_renewal": "2027-01-30T01:30:00Z",
     "members": [{"host": "mediant-ha", "endpoint": "mediant-ha.lab.test:5061", "fingerprint": "ab" * 32,
                  "not_after": "2027-02-28T00:00:00Z", "client_auth_required": True,
                  "extended_key_usage": ["serverAuth"]}],
     "trunks": [{"name": "AC HA", "connected": True, "observed_at": "2026-11-30T05:00:00Z"}],
     "maintenance_windows": [{"timezone": "Europe/Berlin", "days": ["sat"], "start": "01:00", "end": "05:00"}]},
    {"group": "core", "status": "unchanged", "reason": "",
     "old_not_after": "2027-03-01T00:00:00Z", "next_renewal": "2027-02-01T00:00:00Z",
     "members": [{"host": "ribbon-core", "endpoint": "sbc-core.lab.test:5061", "fingerprint": "cd" * 32,
                  "not_after": "2027-03-01T00:00:00Z"}],
     "trunks": [{"name": "Core", "connected": True, "observed_at": "2026-11-30T05:00:00Z"},
                {"name": "Core 2", "connected": True, "observed_at": "2026-11-30T05:00:00Z"}]},
]


def run(tmp_path, groups, *, url=None, failed=None, check=False):
    extra = {"fleet_report_groups": groups, "fleet_report_dir": str(tmp_path / "out"), "fleet_report_run_id": "t-1",
             "fleet_report_heartbeat_url": url or ""}
    if failed is not None:
        extra["fleet_report_failed"] = failed
    return run_playbook(playbook(tmp_path), extra_vars=extra, check=check, env={"BYOC_HEARTBEAT_URL": ""})


def test_success_table_files_and_one_success_ping(tmp_path, heartbeat):
    key = uuid.uuid4().hex
    proc = run(tmp_path, GROUPS, url=f"http://127.0.0.1:{heartbeat.port}/ping/{key}")
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out
    # the table on the console
    assert re.search(r"ac-ha\s+renewed\s+2026-12-01 -> 2027-02-28\s+1\s+1/1 up\s+31% of the lifetime left", out)
    assert re.search(r"core\s+unchanged\s+2027-03-01 \(kept\)\s+1\s+2/2 up", out)
    assert "OK: 2 groups (1 unchanged, 1 renewed), run t-1" in out
    # findings: clientAuth EKU and no window (2027-01-30 is a Saturday, but 02:30 in Berlin is inside 01:00-05:00)
    assert "mediant-ha: the leaf has no TLS clientAuth" in out
    assert "outside every maintenance window" not in out
    # the heartbeat: exactly one success ping, the secret path never printed
    assert [(m, p) for m, p, _b in heartbeat.hits] == [("POST", f"/ping/{key}")]
    assert heartbeat.hits[0][2].startswith(b"OK: 2 groups")
    assert key not in out
    # report.json
    doc = json.loads((tmp_path / "out" / "report.json").read_text())
    assert doc["failed"] is False and doc["run_id"] == "t-1" and doc["summary"]["groups"] == 2
    assert [g["group"] for g in doc["groups"]] == ["ac-ha", "core"]
    assert doc["groups"][0]["findings"] and doc["groups"][1]["findings"] == []
    assert doc["groups"][1]["trunks_connected"] == 2
    # the textfile: every line valid, one expiry series per endpoint, group status one-hot
    prom = (tmp_path / "out" / "byoc_certificates.prom").read_text()
    for line in prom.splitlines():
        assert SAMPLE_RE.match(line) or COMMENT_RE.match(line), line
    assert prom.count("byoc_certificates_endpoint_expiry_timestamp_seconds{") == 2
    assert 'byoc_certificates_group_status{group="ac-ha",status="renewed"} 1' in prom
    assert 'byoc_certificates_group_status{group="core",status="unchanged"} 1' in prom
    assert "byoc_certificates_last_run_success 1" in prom
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["byoc_certificates.prom", "report.json"]


def test_failure_pings_fail_and_keeps_last_success(tmp_path, heartbeat):
    url = f"http://127.0.0.1:{heartbeat.port}/ping/{uuid.uuid4().hex}"
    assert run(tmp_path, GROUPS, url=url).returncode == 0
    first = (tmp_path / "out" / "byoc_certificates.prom").read_text()
    last_ok = re.search(r'last_success_timestamp_seconds\{group="core",host="ribbon-core",[^}]*\} (\d+)', first).group(1)
    rolled = [dict(GROUPS[1], status="rolled_back", reason="chain untrusted at sbc-core.lab.test:5061")]
    proc = run(tmp_path, rolled, url=url)
    assert proc.returncode == 0, proc.stdout  # the report reports; the pipeline decides to fail the play
    assert "FAILED: 1 groups (1 rolled_back)" in proc.stdout
    assert [p for _m, p, _b in heartbeat.hits] == [url.split(":" + str(heartbeat.port))[1],
                                                   url.split(":" + str(heartbeat.port))[1] + "/fail"]
    second = (tmp_path / "out" / "byoc_certificates.prom").read_text()
    assert re.search(r'last_success_timestamp_seconds\{group="core",host="ribbon-core",[^}]*\} (\d+)',
                     second).group(1) == last_ok
    assert "byoc_certificates_last_run_success 0" in second
    assert json.loads((tmp_path / "out" / "report.json").read_text())["failed"] is True


def test_explicit_failed_run_pings_fail(tmp_path, heartbeat):
    proc = run(tmp_path, GROUPS, url=f"http://127.0.0.1:{heartbeat.port}/hc", failed=True)
    assert proc.returncode == 0, proc.stdout
    assert [p for _m, p, _b in heartbeat.hits] == ["/hc/fail"]


def test_unreachable_heartbeat_is_a_warning(tmp_path):
    port = free_port()  # nothing listens there
    proc = run(tmp_path, GROUPS, url=f"http://127.0.0.1:{port}/ping/secret-{uuid.uuid4().hex}")
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out
    assert "[WARNING]" in out and "heartbeat ping to http://127.0.0.1:" in out and "secret-" not in out
    assert (tmp_path / "out" / "report.json").exists()


def test_check_mode_writes_nothing_and_pings_nothing(tmp_path, heartbeat):
    proc = run(tmp_path, GROUPS, url=f"http://127.0.0.1:{heartbeat.port}/ping/x", check=True)
    assert proc.returncode == 0, proc.stdout
    assert "OK: 2 groups" in proc.stdout and "Would write" in proc.stdout
    assert not (tmp_path / "out").exists() and heartbeat.hits == []


def test_bad_group_fails_naming_the_field(tmp_path):
    proc = run(tmp_path, [dict(GROUPS[0], status="done")])
    assert proc.returncode != 0
    assert "groups[0].status" in proc.stdout and not (tmp_path / "out").exists()


# -- playbooks/report.yml on the lab fleet: reads and prints only --------------------------------------------------
# the rotation's private lab (the fleet fixture) and its observers
# (test_rotate's GROUPS are group names: imported under another name, so this module's GROUPS stay report items)
from test_rotate import GROUPS as LAB_GROUPS, Fleet, fleet, get  # noqa: E402,F401  pylint: disable=unused-import


def prom_values(text: str, name: str) -> list[str]:
    return sorted(line for line in text.splitlines() if line.startswith(name))


def test_report_playbook_reads_only_and_keeps_the_rotation_success_times(fleet: Fleet):
    proc = fleet.playbook("rotate.yml")
    assert proc.returncode == 0, proc.stdout[-6000:] + proc.stderr[-2000:]
    # rotate.yml's trust step recorded, per org, the REMOTE CAs it created (what its prune step may remove later)
    ledgers = list(fleet.store.glob("genesys-trust-*/state.json"))
    assert len(ledgers) == 1, ledgers
    recorded = json.loads(ledgers[0].read_text())["genesys_trust"]["authorities"]
    state = get(f"{fleet.c['genesys']['control_url']}/state", fleet.ca_file)
    org = {fp for c in state["certificate_authorities"] if c["type"] == "REMOTE" for fp in c["fingerprints"]}
    assert recorded and set(recorded) <= org, (recorded, org)
    assert {g for r in recorded.values() for g in r["groups"]} == set(LAB_GROUPS)
    prom_file = fleet.report_dir / "byoc_certificates.prom"
    after_rotation = prom_file.read_text()
    digest = fleet.store_digest()
    devices = {h: len(v) for h, v in fleet.device_requests().items()}
    genesys = len(fleet.genesys_requests())

    proc = fleet.playbook("report.yml")
    assert proc.returncode == 0, proc.stdout[-6000:] + proc.stderr[-2000:]
    assert "byoc.certificates fleet report" in proc.stdout
    # read only: no write to any device, to the org or to the store
    for host, log in fleet.device_requests().items():
        assert not [r for r in log[devices[host]:] if r["method"] not in ("GET", "HEAD")
                    and not r["path"].endswith(("/login", "/logout"))], host
    assert not [r for r in fleet.genesys_requests()[genesys:] if r["method"] != "GET" and r["path"] != "/oauth/token"]
    assert fleet.store_digest() == digest
    report = fleet.report()
    assert sorted(g["group"] for g in report["groups"]) == sorted(LAB_GROUPS)
    assert all(g["status"] == "unchanged" for g in report["groups"]), report
    # the textfile: the same expiries, and the rotation's success times kept (a report run is not a rotation)
    after_report = prom_file.read_text()
    for name in ("byoc_certificates_endpoint_last_success_timestamp_seconds",
                 "byoc_certificates_last_run_timestamp_seconds", "byoc_certificates_last_run_success",
                 "byoc_certificates_endpoint_expiry_timestamp_seconds"):
        assert prom_values(after_report, name) == prom_values(after_rotation, name), name
        assert prom_values(after_report, name), name
