"""The lab at fleet size (issue 13 item 1): `tests/lab/lab.py up --fleet N`.

A small fleet (6 groups: two of each kind) is started through the CLI, as a user would, in a private directory, and
observed from outside: processes recorded in lab.json, names in the lab DNS, an expired certificate served by name on
every SIP-TLS port, every device's management API answering with its own state and its own request log, the org's
trunks pointing at the names, and the generated inventory (parsed by ansible-inventory). Stopped by PID at the end.
"""

from __future__ import annotations

import datetime
import json
import os
import shutil
import socket
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
from cryptography import x509

from byoc_harness import REPO, ansible_env  # noqa: E402  (on sys.path via conftest)

LAB_PY = REPO / "tests" / "lab" / "lab.py"
SIZE = 6


def lab_cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(LAB_PY), *args], capture_output=True, text=True, timeout=300,
                          cwd=REPO, check=False)


@pytest.fixture(scope="module")
def fleet():
    directory = Path(tempfile.mkdtemp(prefix="byoc-fleet-"))
    try:
        up = lab_cli("up", "--fleet", str(SIZE), "--dir", str(directory))
        assert up.returncode == 0, up.stdout + up.stderr
        desc = json.loads((directory / "lab.json").read_text())
        yield directory, desc, json.loads(Path(desc["components"]["fleet"]["devices_file"]).read_text())
    finally:
        down = lab_cli("down", "--dir", str(directory))
        print(down.stdout)
        shutil.rmtree(directory, ignore_errors=True)


def get(url: str, ca_file: str):
    ctx = ssl.create_default_context(cafile=ca_file)
    ctx.check_hostname = False  # AudioCodes: the factory certificate names ACL_<serial> (sbc-apis.md A4)
    with urllib.request.urlopen(url, context=ctx, timeout=30) as resp:
        return json.loads(resp.read())


def served_certificate(port: int, name: str) -> x509.Certificate:
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        with ctx.wrap_socket(sock, server_hostname=name) as tls:
            return x509.load_der_x509_certificate(tls.getpeercert(binary_form=True))


def test_fleet_devices_are_spread_over_the_kinds_and_share_a_few_processes(fleet):
    _directory, desc, devices = fleet
    comp = desc["components"]["fleet"]
    assert len(devices) == SIZE and comp["size"] == SIZE
    assert comp["kinds"] == {"ac": 2, "core": 2, "edge": 2}
    assert sorted({d["group"] for d in devices.values()}) == [f"grp_{i:03d}" for i in range(1, SIZE + 1)]
    fleet_procs = [p for p in desc["processes"] if p["name"].startswith("fleet-")]
    assert len(fleet_procs) == 3  # one process per kind hosts both devices of that kind
    for p in fleet_procs:
        assert Path(f"/proc/{p['pid']}").exists(), p
    ports = [d["sip_tls"]["port"] for d in devices.values()]
    ports += [int(d["api_url"].split(":")[2].split("/")[0]) for d in devices.values()]
    assert len(set(ports)) == len(ports)  # every device on its own ports


def test_every_name_resolves_and_serves_an_expired_certificate_for_that_name(fleet):
    _directory, desc, devices = fleet
    b = desc["components"]["bind"]["primary"]
    now = datetime.datetime.now(datetime.timezone.utc)
    for host, d in devices.items():
        name = d["sip_tls"]["name"]
        assert name == f"{host}.lab.test"
        resp = dns.query.tcp(dns.message.make_query(name, dns.rdatatype.A), b["host"], port=b["port"], timeout=5)
        assert [r.to_text() for rr in resp.answer for r in rr] == ["127.0.0.1"], host
        cert = served_certificate(d["sip_tls"]["port"], name)
        sans = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value.get_values_for_type(x509.DNSName)
        assert sans == [name], host
        assert cert.not_valid_after_utc < now, host  # the fleet starts with expired certificates


def test_each_device_answers_with_its_own_state_and_request_log(fleet):
    _directory, _desc, devices = fleet
    for host, d in devices.items():
        state = get(f"{d['control_url']}/state", d["ca_file"])
        if d["kind"] == "ac":
            assert state["ha"] is True or state.get("units"), state  # an HA pair
        log = get(f"{d['control_url']}/requests", d["ca_file"])
        assert isinstance(log, list)
    # a request to one device shows in its log and in no other device's log
    one, other = [h for h, d in devices.items() if d["kind"] == "ac"]

    def api_requests(h):  # the device's own log, without the test-only /_control calls
        return [r for r in get(f"{devices[h]['control_url']}/requests", devices[h]["ca_file"])
                if not r["path"].startswith("/_control/")]

    before = {h: len(api_requests(h)) for h in (one, other)}
    ctx = ssl.create_default_context(cafile=devices[one]["ca_file"])
    ctx.check_hostname = False
    req = urllib.request.Request(devices[one]["api_url"] + "/status")
    req.add_header("Authorization", "Basic " + __import__("base64").b64encode(
        f"{devices[one]['username']}:{devices[one]['password']}".encode()).decode())
    with urllib.request.urlopen(req, context=ctx, timeout=30) as resp:
        assert json.loads(resp.read())["highAvailability"] == "Operational"
    after = {h: len(api_requests(h)) for h in (one, other)}
    assert after[one] == before[one] + 1 and after[other] == before[other]
    assert api_requests(one)[-1] == {"method": "GET", "path": "/api/v1/status", "status": 200}


def test_the_org_has_a_trunk_per_device_and_edge_pointing_at_its_name(fleet):
    _directory, desc, devices = fleet
    g = desc["components"]["genesys"]
    state = get(f"{g['control_url']}/state", desc["tls"]["ca_file"])
    ours = [t for t in state["trunks"] if t["name"].startswith("BYOC ")]
    assert len(ours) == 2 * SIZE  # one trunk base per device, on both Edges
    for t in ours:
        d = devices[t["name"][5:]]
        assert t["proxies"] == [f"{d['sip_tls']['name']}:{d['sip_tls']['port']}"]
        assert t["trunk_base_id"] == d["trunk_base_id"]
        assert t["connected"] is False  # expired, untrusted: down until a rotation


def test_the_generated_inventory_has_one_certificate_group_per_device(fleet):
    directory, desc, devices = fleet
    inv = desc["components"]["fleet_inventory"]["inventory"]
    env = ansible_env({"BYOC_STORE_PASSPHRASE": "x", "HOME": str(REPO / ".build" / "home")})
    out = subprocess.run([str(Path(sys.executable).parent / "ansible-inventory"), "-i", inv, "--list"],
                         capture_output=True, text=True, env=env, timeout=120, check=True).stdout
    data = json.loads(out)
    assert sorted(data["byoc_sbc"]["children"]) == sorted({d["group"] for d in devices.values()})
    for host, d in devices.items():
        hv = data["_meta"]["hostvars"][host]
        assert data[d["group"]]["hosts"] == [host]
        assert hv["byoc_certificate_group"] == d["group"]
        assert hv["byoc_sip_tls"] == {"name": d["sip_tls"]["name"], "port": d["sip_tls"]["port"]}
        assert hv["byoc_vendor"] == {"ac": "audiocodes", "core": "ribbon_core", "edge": "ribbon_edge"}[d["kind"]]
    assert oct(os.stat(Path(inv) / "group_vars" / "all.yml").st_mode & 0o777) == "0o600"  # it holds secrets
