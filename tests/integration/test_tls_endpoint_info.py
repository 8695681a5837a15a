"""tls_endpoint_info against the lab's SBC emulators' SIP-TLS ports, by their names in the lab zone, resolved at the
lab's BIND primary (issue 11 §3).

A private lab (bind, audiocodes, ribbon_core, ribbon_edge), because one test turns mutual authentication on at the
Ribbon Edge, which the other test files expect off. What the module claims is checked independently: the
fingerprints the lab recorded when it seeded the devices (lab.json ``initial``), the listeners' own handshake and
refusal counters (the test-only ``/_control`` APIs), and the lab CA that signed the served certificates.

Lab facts used (see the lab parts' docstrings): Ribbon Edge serves a lab-CA certificate for sbc-edge.lab.test,
mutual authentication off; Ribbon Core serves a lab-CA certificate for sbc-core.lab.test with authClient true and
no CA to verify clients against (every client is refused); the standalone Mediant serves its factory self-signed
certificate ACL_<serial> (SAN localhost, 127.0.0.1), not the lab zone name.
"""

from __future__ import annotations

import datetime
import hashlib
import json
import shutil
import ssl
import socket
import subprocess
import sys
import tempfile
import threading
import urllib.parse
import urllib.request
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from ansible_collections.byoc.certificates.plugins.module_utils import _gate
from ansible_collections.byoc.certificates.plugins.module_utils._errors import InputError
from byoc_harness import REPO, ansible_env  # noqa: E402  (on sys.path via conftest)
from byoclab.components import select  # noqa: E402
from byoclab.core import Lab  # noqa: E402

PARTS = ["bind", "audiocodes", "ribbon_core", "ribbon_edge"]


def https(url: str, ca_file: str, *, body=None, headers=None, method=None):
    data = json.dumps(body).encode() if isinstance(body, dict) else body
    req = urllib.request.Request(url, data=data, method=method or ("POST" if data is not None else "GET"),
                                 headers={"Content-Type": "application/json", **(headers or {})})
    with urllib.request.urlopen(req, context=ssl.create_default_context(cafile=ca_file), timeout=30) as resp:
        return json.loads(resp.read() or b"null")


class Fleet:
    def __init__(self, lab: Lab):
        c = lab.components
        self.lab = lab
        self.ca_file = str(lab.ca.cert_file)
        self.lab_ca = Path(self.ca_file).read_text()
        self.dns = f"{c['bind']['primary']['host']}:{c['bind']['primary']['port']}"
        self.edge, self.core = c["ribbon_edge"], c["ribbon_core"]
        self.sa = c["audiocodes"]["devices"]["mediant-sa"]
        self.ha = c["audiocodes"]["devices"]["mediant-ha"]
        self.sa_ca = Path(self.sa["ca_file"]).read_text()  # the Mediant's self-signed factory certificate

    # the listeners' own counters (test-only control APIs)
    def sip(self, which: str) -> dict:
        if which == "edge":
            return https(f"{self.edge['control_url']}/state", self.ca_file)["sip"]
        if which == "core":
            return https(f"{self.core['control_url']}/state", self.ca_file)["sip"]
        dev = self.sa if which == "sa" else self.ha
        return https(f"{dev['control_url']}/sip", dev["ca_file"])

    def client_pair(self, cn: str, eku) -> tuple[str, str]:
        """A client certificate signed by the lab CA (which the Ribbon Edge holds in CA slot 2)."""
        key = ec.generate_private_key(ec.SECP256R1())
        now = datetime.datetime.now(datetime.timezone.utc)
        cert = (x509.CertificateBuilder()
                .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)]))
                .issuer_name(self.lab.ca.cert.subject).public_key(key.public_key())
                .serial_number(x509.random_serial_number())
                .not_valid_before(now - datetime.timedelta(minutes=5)).not_valid_after(now + datetime.timedelta(days=1))
                .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
                .add_extension(x509.ExtendedKeyUsage(eku), critical=False)
                .sign(self.lab.ca.key, hashes.SHA256()))
        return (cert.public_bytes(serialization.Encoding.PEM).decode(),
                key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                  serialization.NoEncryption()).decode())

    def edge_mutual_auth(self, on: bool) -> None:
        """TLS profile 1 MutualAuth through the Ribbon Edge's REST API, as an operator would (login, CSRF token)."""
        e = self.edge
        opener = urllib.request.build_opener(urllib.request.HTTPSHandler(
            context=ssl.create_default_context(cafile=e["ca_file"])))
        login = urllib.parse.urlencode({"Username": e["credentials"]["username"],
                                        "Password": e["credentials"]["password"]}).encode()
        with opener.open(urllib.request.Request(f"{e['api_url']}/rest/login", data=login), timeout=10) as resp:
            cookies = [c.split(";", 1)[0] for c in resp.headers.get_all("Set-Cookie")]
        jar = dict(c.split("=", 1) for c in cookies)
        req = urllib.request.Request(f"{e['api_url']}/rest/tlsprofile/1", data=f"MutualAuth={int(on)}".encode(),
                                     headers={"Cookie": "; ".join(cookies), "X-CSRF-Token": jar["csrfp_token"],
                                              "Content-Type": "application/x-www-form-urlencoded"})
        with opener.open(req, timeout=10) as resp:
            assert "<http_code>200</http_code>" in resp.read().decode()
        assert https(f"{e['control_url']}/state", self.ca_file)["tls_profiles"]["1"]["MutualAuth"] == str(int(on))


@pytest.fixture(scope="module")
def fleet():
    directory = Path(tempfile.mkdtemp(prefix="byoc-lab-probe-"))
    lab = Lab(directory)
    try:
        lab.up(select(PARTS))
        yield Fleet(lab)
    finally:
        lab.down()
        shutil.rmtree(directory, ignore_errors=True)


def by_label(result: dict) -> dict:
    return {e["label"]: e for e in result["endpoints"]}


def test_names_chains_and_fingerprints(fleet, run_module):
    edge, core, sa = fleet.edge["sip_tls"], fleet.core["sip_tls"], fleet.sa["sip_tls"]
    before = {w: fleet.sip(w) for w in ("edge", "core", "sa")}
    res = run_module("tls_endpoint_info", {
        "endpoints": [
            {"name": edge["name"], "port": edge["port"], "expected_fingerprint": fleet.edge["initial"]["fingerprint"],
             "label": "edge"},
            {"name": edge["name"], "port": edge["port"], "expected_fingerprint": "00" * 32, "label": "edge-stale"},
            {"name": sa["name"], "port": sa["port"], "label": "mediant-sa"},
            {"name": core["name"], "port": core["port"], "label": "core"},
            {"name": "nowhere.lab.test", "port": edge["port"], "label": "nowhere"},
        ],
        # the lab CA and the Mediant's self-signed certificate: every chain here is trusted, so names decide
        "ca_certificates": fleet.lab_ca + fleet.sa_ca,
        "nameservers": [fleet.dns],
    })
    assert not res.get("failed"), res
    got = by_label(res)
    assert res["all_ok"] is False and sorted(res["failed_endpoints"]) == ["core", "edge-stale", "mediant-sa", "nowhere"]

    e = got["edge"]
    assert e["ok"] and e["stage"] == "done" and e["error"] is None and e["address"] == "127.0.0.1"
    assert e["fingerprint"] == fleet.edge["initial"]["fingerprint"]  # what the lab seeded, independently recorded
    assert e["name_matches"] and e["chain_verified"] and e["matches_expected"] is True
    assert f"DNS:{edge['name']}" in e["subject_alt_names"] and e["extended_key_usage"] == ["serverAuth"]

    s = got["edge-stale"]
    assert not s["ok"] and s["stage"] == "fingerprint" and s["matches_expected"] is False
    assert s["chain_verified"] and s["name_matches"] and "not the expected" in s["error"]

    m = got["mediant-sa"]  # the factory certificate is trusted here but is not for the lab-zone name
    assert not m["ok"] and m["stage"] == "name" and m["chain_verified"] is True and m["name_matches"] is False
    assert m["subject"].startswith("CN=ACL_") and sa["name"] in m["error"] and "subjectAltName" in m["error"]

    c = got["core"]  # authClient true and no CA for clients: a client without a certificate is refused
    assert not c["ok"] and c["client_certificate_accepted"] is False and "requires a client certificate" in c["error"]

    n = got["nowhere"]
    assert n["stage"] == "resolve" and n["address"] is None and "NXDOMAIN" in n["error"] and fleet.dns in n["error"]

    after = {w: fleet.sip(w) for w in ("edge", "core", "sa")}
    # one fresh handshake per endpoint: two to the Edge, one to the Mediant, one refused client at the Core
    assert after["edge"]["handshakes"] - before["edge"]["handshakes"] == 2
    assert after["sa"]["handshakes"] - before["sa"]["handshakes"] == 1
    assert after["core"]["clients_refused"] - before["core"]["clients_refused"] == 1
    assert after["core"]["handshakes"] == before["core"]["handshakes"]


def test_chain_untrusted_still_says_what_is_served(fleet, run_module):
    sa = fleet.sa["sip_tls"]
    res = run_module("tls_endpoint_info", {
        "endpoints": [{"name": "127.0.0.1", "port": sa["port"], "label": "sa-by-address"}],
        "ca_certificates": fleet.lab_ca,  # not the Mediant's own certificate
    })
    m = by_label(res)["sa-by-address"]
    assert not m["ok"] and m["stage"] == "verify" and m["chain_verified"] is False
    assert "does not verify against ca_certificates" in m["error"] and "REMOTE" in m["error"]
    served = x509.load_pem_x509_certificate(fleet.sa_ca.encode())  # the factory certificate, read from the lab
    assert m["fingerprint"] == hashlib.sha256(served.public_bytes(serialization.Encoding.DER)).hexdigest()
    assert m["name_matches"] is True  # 127.0.0.1 is an IP entry of that certificate


def test_mutual_auth_client_certificate(fleet, run_module):
    edge = fleet.edge["sip_tls"]
    good_cert, good_key = fleet.client_pair("probe client", [ExtendedKeyUsageOID.CLIENT_AUTH])
    fleet.edge_mutual_auth(True)
    try:
        before = fleet.sip("edge")
        common = {"ca_certificates": fleet.lab_ca, "nameservers": [fleet.dns]}
        ep = [{"name": edge["name"], "port": edge["port"], "label": "edge"}]
        without = run_module("tls_endpoint_info", {"endpoints": ep, **common})
        with_cert = run_module("tls_endpoint_info", {"endpoints": ep, "client_certificate": good_cert,
                                                     "client_private_key": good_key, **common})
        after = fleet.sip("edge")
    finally:
        fleet.edge_mutual_auth(False)
    w = by_label(without)["edge"]
    assert not w["ok"] and w["client_certificate_accepted"] is False and "requires a client certificate" in w["error"]
    ok = by_label(with_cert)["edge"]
    assert ok["ok"] and ok["client_certificate_accepted"] is True, ok
    assert after["clients_refused"] - before["clients_refused"] == 1
    assert after["handshakes"] - before["handshakes"] == 1
    assert good_key.splitlines()[1] not in with_cert["_stdout"]


def test_forty_eight_endpoints_in_one_call(fleet, run_module):
    edge, sa = fleet.edge["sip_tls"], fleet.sa["sip_tls"]
    endpoints = []
    for i in range(24):
        endpoints.append({"name": edge["name"], "port": edge["port"], "label": f"edge-{i}",
                          "expected_fingerprint": fleet.edge["initial"]["fingerprint"]})
        endpoints.append({"name": "localhost", "host": "127.0.0.1", "port": sa["port"], "label": f"sa-{i}"})
    before = {w: fleet.sip(w) for w in ("edge", "sa")}
    res = run_module("tls_endpoint_info", {"endpoints": endpoints, "ca_certificates": fleet.lab_ca + fleet.sa_ca,
                                           "nameservers": [fleet.dns], "concurrency": 16})
    after = {w: fleet.sip(w) for w in ("edge", "sa")}
    assert res["all_ok"] is True and res["failed_endpoints"] == [] and res["probed"] == 48, res.get("failed_endpoints")
    assert [e["label"] for e in res["endpoints"]] == [e["label"] for e in endpoints]  # order kept
    assert after["edge"]["handshakes"] - before["edge"]["handshakes"] == 24
    assert after["sa"]["handshakes"] - before["sa"]["handshakes"] == 24


def test_mediant_ha_refuses_any_client_without_trusted_roots(fleet, run_module):
    """mediant-ha: TLSMutualAuthentication on, context 0 holds no trusted roots, so even a client certificate is
    refused; the probe says the peer did not accept it."""
    ha = fleet.ha["sip_tls"]
    cert, key = fleet.client_pair("probe client", [ExtendedKeyUsageOID.CLIENT_AUTH])
    before = fleet.sip("ha")
    res = run_module("tls_endpoint_info", {
        "endpoints": [{"name": "localhost", "host": "127.0.0.1", "port": ha["port"], "label": "ha"}],
        "ca_certificates": Path(fleet.ha["ca_file"]).read_text(), "client_certificate": cert, "client_private_key": key})
    r = by_label(res)["ha"]
    assert not r["ok"] and r["client_certificate_accepted"] is False and "did not accept our client" in r["error"]
    assert fleet.sip("ha")["clients_refused"] - before["clients_refused"] == 1


def test_bad_input_fails_before_any_connection_and_never_prints_the_key(fleet, run_module):
    edge = fleet.edge["sip_tls"]
    cert, _key = fleet.client_pair("probe client", [ExtendedKeyUsageOID.CLIENT_AUTH])
    _other_cert, other_key = fleet.client_pair("other", [ExtendedKeyUsageOID.CLIENT_AUTH])
    before = fleet.sip("edge")
    res = run_module("tls_endpoint_info", {
        "endpoints": [{"name": edge["name"], "port": edge["port"]}], "ca_certificates": fleet.lab_ca,
        "client_certificate": cert, "client_private_key": other_key}, verbosity=3)
    assert res.get("failed") and res.get("field") == "client_private_key" and "does not match" in res["msg"]
    body = [line for line in other_key.splitlines() if "-----" not in line]
    assert not any(line in res["_stdout"] for line in body)
    assert fleet.sip("edge")["handshakes"] == before["handshakes"]


def test_the_module_works_when_the_action_is_bypassed(fleet, tmp_path):
    """The module file run directly (as if the action plugin were not used): the same result."""
    edge = fleet.edge["sip_tls"]
    args = tmp_path / "args.json"
    args.write_text(json.dumps({"ANSIBLE_MODULE_ARGS": {
        "endpoints": [{"name": edge["name"], "port": edge["port"], "label": "edge",
                       "expected_fingerprint": fleet.edge["initial"]["fingerprint"]}],
        "ca_certificates": fleet.lab_ca, "nameservers": [fleet.dns]}}))
    env = ansible_env({"PYTHONPATH": str(REPO / ".build" / "dev")})
    proc = subprocess.run([sys.executable, "-m", "ansible_collections.byoc.certificates.plugins.modules.tls_endpoint_info",
                           str(args)], capture_output=True, text=True, env=env, timeout=120, check=False)
    out = json.loads(proc.stdout)
    assert out["all_ok"] is True and out["endpoints"][0]["fingerprint"] == fleet.edge["initial"]["fingerprint"], out


# -- bad certificate material (the bad-input matrix of issue 10, for this module): the gate's own words, the field,
# no handshake at the device, no traceback ---------------------------------------------------------------------------
def _gate_words(call) -> str:
    try:
        call()
    except InputError as exc:
        return exc.msg.split(": ", 1)[1]
    raise AssertionError("the gate accepted it")


def _bad_rows(fleet):
    client, client_key = fleet.client_pair("probe client", [ExtendedKeyUsageOID.CLIENT_AUTH])
    _other, other_key = fleet.client_pair("other", [ExtendedKeyUsageOID.CLIENT_AUTH])
    leaf_pem = (fleet.lab.dir / "ca" / "ribbon-edge-sip.pem").read_text()  # the Edge's seeded leaf (lab.ca.issue)
    return [
        ("key-in-ca-field", {"ca_certificates": fleet.lab_ca + client_key}, "ca_certificates",
         lambda: _gate.ca_certificates(fleet.lab_ca + client_key, "ca_certificates")),
        ("leaf-in-trust-field", {"ca_certificates": fleet.lab_ca + leaf_pem}, "ca_certificates",
         lambda: _gate.ca_certificates(fleet.lab_ca + leaf_pem, "ca_certificates")),
        ("garbage-ca", {"ca_certificates": "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n"},
         "ca_certificates",
         lambda: _gate.ca_certificates("-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n",
                                       "ca_certificates")),
        ("ca-as-client-certificate", {"client_certificate": fleet.lab_ca, "client_private_key": client_key},
         "client_certificate", lambda: _gate.server_certificate(fleet.lab_ca, "client_certificate")),
        ("key-in-client-certificate", {"client_certificate": client_key, "client_private_key": client_key},
         "client_certificate", lambda: _gate.server_certificate(client_key, "client_certificate")),
        ("key-does-not-match", {"client_certificate": client, "client_private_key": other_key}, "client_private_key",
         lambda: _gate.private_key(other_key, "client_private_key",
                                   certificate=x509.load_pem_x509_certificate(client.encode()),
                                   certificate_field="client_certificate")),
    ]


def test_bad_certificate_material_is_refused_by_the_gate_before_any_handshake(fleet, run_module):
    edge = fleet.edge["sip_tls"]
    for row_id, overrides, field, gate_call in _bad_rows(fleet):
        before = fleet.sip("edge")
        args = {"endpoints": [{"name": edge["name"], "port": edge["port"]}], "ca_certificates": fleet.lab_ca,
                "nameservers": [fleet.dns], **overrides}
        res = run_module("tls_endpoint_info", args)
        assert res.get("failed") and res.get("field") == field, (row_id, res.get("msg"))
        assert _gate_words(gate_call) in res["msg"], (row_id, res["msg"])
        assert "Traceback" not in res["_stdout"], row_id
        after = fleet.sip("edge")
        assert (after["handshakes"], after["clients_refused"]) == (before["handshakes"], before["clients_refused"]), row_id


# -- a TLS 1.2-only server, started here (many SBCs speak TLS 1.2): a refusal of the client certificate comes inside
# the handshake, after the server's certificate; the probe still reports that certificate, with one connection ------
class Tls12Server:
    """Counts connections; requires a client certificate from ``client_ca`` when given."""

    def __init__(self, fleet, client_ca: str | None):
        tmp = Path(tempfile.mkdtemp(prefix="byoc-tls12-", dir=fleet.lab.dir))
        cert_file, key_file = fleet.lab.ca.issue(f"tls12-{tmp.name}", ["localhost"])
        self.der = x509.load_pem_x509_certificate(Path(cert_file).read_bytes()).public_bytes(serialization.Encoding.DER)
        self.ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self.ctx.maximum_version = ssl.TLSVersion.TLSv1_2
        self.ctx.load_cert_chain(cert_file, key_file)
        if client_ca is not None:
            self.ctx.verify_mode = ssl.CERT_REQUIRED
            self.ctx.load_verify_locations(cadata=client_ca)
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.connections = 0
        threading.Thread(target=self._loop, daemon=True).start()

    def _loop(self):
        while True:
            try:
                conn, _peer = self.sock.accept()
            except OSError:
                return
            self.connections += 1
            try:
                with self.ctx.wrap_socket(conn, server_side=True) as tls:
                    tls.recv(1)
            except (OSError, ssl.SSLError):
                conn.close()

    def stop(self):
        self.sock.close()


@pytest.mark.parametrize("trusted", [True, False], ids=["refused-client", "untrusted-chain"])
def test_tls12_failure_still_reports_the_served_leaf_with_one_connection(fleet, run_module, trusted):
    server = Tls12Server(fleet, client_ca=fleet.lab_ca if trusted else None)
    try:
        res = run_module("tls_endpoint_info", {
            "endpoints": [{"name": "localhost", "host": "127.0.0.1", "port": server.port, "label": "tls12"}],
            "ca_certificates": fleet.lab_ca if trusted else fleet.sa_ca})
        connections = server.connections
    finally:
        server.stop()
    r = by_label(res)["tls12"]
    assert not r["ok"] and r["fingerprint"] == hashlib.sha256(server.der).hexdigest(), r
    assert r["name_matches"] is True and connections == 1
    if trusted:
        assert r["chain_verified"] is True and r["client_certificate_accepted"] is False
        assert "requires a client certificate" in r["error"]
    else:
        assert r["chain_verified"] is False and r["stage"] == "verify"
