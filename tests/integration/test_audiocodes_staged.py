"""audiocodes_tls_context mode=staged against the lab's Mediant emulators: installs that never drop a handshake,
rollback as a re-bind, and TLS mutual authentication (issue 9 sections 2 and 4).

Observed independently of the module: real TLS handshakes (+ SIP OPTIONS) to the device's SIP-TLS port, made by a
probe thread every 100 ms while the module runs (the outage measurement of issue 9 section 4), and the emulator's
state read back through its test-only /_control API.
"""

from __future__ import annotations

import datetime
import hashlib
import json
import ssl
import sys
import threading
import time
import urllib.request
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "lab"))
from emulators.common.siptls import sip_options_probe  # noqa: E402

SBC_NAME = "sbc1.byoc-lab.test"
PROBE_PERIOD = 0.1  # issue 9 section 4: "handshakes attempted every 100 ms"


def _cert(cn, key, issuer=None, issuer_key=None, ca=False, sans=None, days=30, age_minutes=5):
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])
    now = datetime.datetime.now(datetime.timezone.utc)
    builder = (x509.CertificateBuilder().subject_name(name).issuer_name(issuer.subject if issuer else name)
               .public_key(key.public_key()).serial_number(x509.random_serial_number())
               .not_valid_before(now - datetime.timedelta(minutes=age_minutes))
               .not_valid_after(now + datetime.timedelta(days=days))
               .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True))
    if sans:
        builder = builder.add_extension(x509.SubjectAlternativeName([x509.DNSName(s) for s in sans]), critical=False)
    return builder.sign(issuer_key or key, hashes.SHA256())


def _pem(cert) -> str:
    return cert.public_bytes(serialization.Encoding.PEM).decode()


def _key_pem(key) -> str:
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption()).decode()


def _fp(cert) -> str:
    return hashlib.sha256(cert.public_bytes(serialization.Encoding.DER)).hexdigest()


class Pki:
    def __init__(self):
        self.root_key = ec.generate_private_key(ec.SECP256R1())
        self.root = _cert("BYOC Test Root", self.root_key, ca=True, age_minutes=60)
        self.inter_key = ec.generate_private_key(ec.SECP256R1())
        self.inter = _cert("BYOC Test Intermediate", self.inter_key, self.root, self.root_key, ca=True, age_minutes=60)
        # leaf1 is older than leaf2 (notBefore): a rollback goes back to the older certificate.
        self.key1 = ec.generate_private_key(ec.SECP256R1())
        self.leaf1 = _cert(SBC_NAME, self.key1, self.inter, self.inter_key, sans=[SBC_NAME], age_minutes=30)
        self.key2 = ec.generate_private_key(ec.SECP256R1())
        self.leaf2 = _cert(SBC_NAME, self.key2, self.inter, self.inter_key, sans=[SBC_NAME], age_minutes=10)
        self.genesys_key = ec.generate_private_key(ec.SECP256R1())
        self.genesys_ca = _cert("Genesys Cloud Managed CA (test)", self.genesys_key, ca=True, age_minutes=60)
        self.edge_key = ec.generate_private_key(ec.SECP256R1())
        self.edge = _cert("edge-1.genesys.test", self.edge_key, self.genesys_ca, self.genesys_key)
        rogue_key = ec.generate_private_key(ec.SECP256R1())
        rogue_ca = _cert("Some Other CA", rogue_key, ca=True)
        self.rogue_key = ec.generate_private_key(ec.SECP256R1())
        self.rogue = _cert("edge-1.genesys.test", self.rogue_key, rogue_ca, rogue_key)


@pytest.fixture(scope="module")
def pki():
    return Pki()


@pytest.fixture(scope="module")
def devices(lab):
    return lab.part("audiocodes")["devices"]


def control(dev: dict, path: str, body: dict | None = None, method: str | None = None):
    ctx = ssl.create_default_context(cafile=dev["ca_file"])
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(f"{dev['control_url']}/{path}", data=data, method=method or ("POST" if data else "GET"),
                                 headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, context=ctx, timeout=10) as resp:
        return json.loads(resp.read() or b"null")


def running(dev, unit=0) -> dict:
    return control(dev, "state")["units"][unit]["running"]


def writes(dev) -> list[dict]:
    return [r for r in control(dev, "requests") if r["path"].startswith("/api/") and r["method"] in ("PUT", "POST")]


@pytest.fixture(autouse=True)
def factory_reset(devices):
    for dev in devices.values():
        control(dev, "factory-reset", {})
        control(dev, "requests", method="DELETE")
    yield


def probe(dev, pki, client: str | None = "edge") -> dict:
    extra = {}
    if client == "edge":
        extra = {"client_chain_pem": _pem(pki.edge), "client_key_pem": _key_pem(pki.edge_key)}
    elif client == "rogue":
        extra = {"client_chain_pem": _pem(pki.rogue), "client_key_pem": _key_pem(pki.rogue_key)}
    return sip_options_probe(dev["sip_tls"]["host"], dev["sip_tls"]["port"], cadata=_pem(pki.root),
                             server_name=SBC_NAME, timeout=3, **extra)


class ProbeLoop:
    """A new TLS handshake + SIP OPTIONS every 100 ms, in a thread, until stopped; every attempt is recorded."""

    def __init__(self, dev, pki):
        self.dev, self.pki = dev, pki
        self.results: list[dict] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self):
        while not self._stop.is_set():
            started = time.monotonic()
            self.results.append(probe(self.dev, self.pki))
            self._stop.wait(max(0.0, PROBE_PERIOD - (time.monotonic() - started)))

    def __enter__(self):
        self._thread.start()
        return self

    def until(self, fingerprint: str, count: int = 3, limit: float = 30.0) -> None:
        """Keep probing until ``count`` consecutive probes saw ``fingerprint`` (bounded, never a timing check)."""
        deadline = time.monotonic() + limit
        while time.monotonic() < deadline:
            tail = self.results[-count:]
            if len(tail) == count and all(r["peer_sha256"] == fingerprint for r in tail):
                return
            time.sleep(PROBE_PERIOD)

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join(10)

    @property
    def failures(self) -> list[dict]:
        return [r for r in self.results if not r["ok"]]


def conn(dev: dict, **extra) -> dict:
    args = {"api_url": dev["api_url"], "username": dev["username"], "password": dev["password"],
            "ca_path": dev["ca_file"]}
    args.update(extra)
    return args


def staged_args(dev, pki, leaf="1", **extra) -> dict:
    cert, key = (pki.leaf1, pki.key1) if leaf == "1" else (pki.leaf2, pki.key2)
    args = conn(dev, staging_contexts=[1, 2], context_name="BYOC", private_key=_key_pem(key), certificate=_pem(cert),
                chain=_pem(pki.inter), trusted_roots=[_pem(pki.genesys_ca)], sip_interfaces=["SIPInterface_0"],
                proxy_sets=["ProxySet_0"], sync_delay=0.2)
    args.update(extra)
    return args


# -- issue 9 section 4: the outage, measured -------------------------------------------------------------------
def test_staged_install_under_409s_and_a_500_drops_no_handshake(devices, pki, run_module):
    dev = devices["mediant-ha"]   # HA pair with mutual authentication: the probe presents the Edge's certificate
    first = run_module("audiocodes_tls_context", staged_args(dev, pki, require_ha=True))
    assert first["changed"] and first["context"] == {"index": 1, "name": "BYOC-A", "created": True}, first
    assert probe(dev, pki)["peer_sha256"] == _fp(pki.leaf1)
    control(dev, "requests", method="DELETE")

    with ProbeLoop(dev, pki) as loop:
        control(dev, "ha", {"sync_writes": 2})  # the HA pair synchronises: the next two writes get 409
        control(dev, "faults", {"method": "PUT", "path": "/api/v1/files/tls/2/certificate", "status": 500,
                                "description": "Internal error (lab)"})
        failed = run_module("audiocodes_tls_context", staged_args(dev, pki, leaf="2"))
        assert failed.get("failed") and "Traceback" not in failed["_stdout"], failed
        assert "HTTP 500" in failed["msg"] and "Nothing that serves traffic was changed" in failed["msg"]
        assert "1 'BYOC-A'" in failed["msg"] and "2 'BYOC-B'" in failed["msg"], failed["msg"]
        assert failed["completed_steps"] == ["created TLS context 2 'BYOC-B'", "uploaded the private key to context 2"]
        # the failed step is named, in the message and as a result key (for the pipeline's report)
        assert failed["failed_step"] == f"upload certificate {_fp(pki.leaf2)} to context 2", failed
        assert failed["msg"].startswith(f"Step '{failed['failed_step']}' failed: "), failed["msg"]
        assert len(failed["sync_retries"]) == 2
        assert failed["previous"] is None   # only BYOC-A holds usable material
        half = running(dev)
        assert half["sip_interfaces"]["0"]["tls_context"] == "BYOC-A"
        assert half["contexts"]["1"]["certificate_sha256"] == _fp(pki.leaf1) and half["contexts"]["1"]["key_valid"]
        assert not half["contexts"]["2"]["key_valid"]      # the half-staged context serves nothing

        control(dev, "ha", {"sync_writes": 2})
        control(dev, "faults", {"method": "PUT", "path": "/api/v1/files/ini/incremental", "status": 409,
                                "description": "Device is currently performing HA synchronization", "count": 1})
        done = run_module("audiocodes_tls_context", staged_args(dev, pki, leaf="2", require_ha=True))
        assert done["changed"] and not done.get("failed"), done
        assert done["context"]["index"] == 2 and len(done["sync_retries"]) == 3
        assert done["previous"]["index"] == 1
        assert done["previous"]["certificate"]["fingerprint_sha256"] == _fp(pki.leaf1)
        loop.until(_fp(pki.leaf2))

    seen = [r["peer_sha256"] for r in loop.results]
    print(f"staged install under 2+2 409s, a 409 on the bind and a 500: {len(loop.results)} handshakes,"
          f" {len(loop.failures)} failed")
    assert loop.failures == [], loop.failures[:3]       # zero failed handshakes
    assert _fp(pki.leaf1) in seen and seen[-1] == _fp(pki.leaf2)  # the loop spanned the switch
    sip = control(dev, "sip")
    assert sip["clients_refused"] == 0
    # The context that served before was never written to.
    assert not [w for w in writes(dev) if w["path"].startswith("/api/v1/files/tls/1/")], writes(dev)
    st = control(dev, "state")
    for unit in st["units"]:                              # replicated to the redundant unit
        assert unit["running"]["sip_interfaces"]["0"]["tls_context"] == "BYOC-B"
        assert unit["running"]["proxy_sets"]["0"]["tls_context"] == "BYOC-B"
        assert unit["running"]["contexts"]["2"]["certificate_sha256"] == _fp(pki.leaf2)
        assert unit["running"]["contexts"]["1"]["certificate_sha256"] == _fp(pki.leaf1)   # kept for rollback
    assert not st["save_needed"]
    again = run_module("audiocodes_tls_context", staged_args(dev, pki, leaf="2"))
    assert not again["changed"] and again["previous"]["index"] == 1, again


def test_staged_never_writes_the_serving_context(devices, pki, run_module):
    dev = devices["mediant-sa"]
    assert run_module("audiocodes_tls_context", staged_args(dev, pki))["changed"]
    control(dev, "requests", method="DELETE")
    result = run_module("audiocodes_tls_context", staged_args(dev, pki, leaf="2"))
    assert result["changed"], result
    paths = [w["path"] for w in writes(dev)]
    assert not [p for p in paths if p.startswith("/api/v1/files/tls/1/")], paths
    # create B, key, certificate, roots into B; ONE bind write for SIP Interface and Proxy Set; save
    assert paths == ["/api/v1/files/ini/incremental", "/api/v1/files/tls/2/privateKey",
                     "/api/v1/files/tls/2/certificate", "/api/v1/files/tls/2/trustedRoot",
                     "/api/v1/files/ini/incremental", "/api/v1/actions/saveConfiguration"], paths
    assert probe(dev, pki, client=None)["peer_sha256"] == _fp(pki.leaf2)


def test_in_place_install_shows_the_outage_the_probe_can_see(devices, pki, run_module):
    dev = devices["mediant-ha"]
    in_place = dict(staged_args(dev, pki), mode="in_place", context_index=1, sync_delay=0.5)
    del in_place["staging_contexts"]
    assert run_module("audiocodes_tls_context", in_place)["changed"]
    assert probe(dev, pki)["peer_sha256"] == _fp(pki.leaf1)

    with ProbeLoop(dev, pki) as loop:
        # Two 409s on the certificate write, after the key went in (the field observation of issue 9 section 4).
        control(dev, "faults", {"method": "PUT", "path": "/api/v1/files/tls/1/certificate", "status": 409,
                                "description": "Device is currently performing HA synchronization", "count": 2})
        rotated = run_module("audiocodes_tls_context", dict(in_place, certificate=_pem(pki.leaf2),
                                                            private_key=_key_pem(pki.key2)))
        assert rotated["changed"] and len(rotated["sync_retries"]) == 2, rotated
        assert any("serves no TLS" in w for w in rotated.get("warnings", [])), rotated
        loop.until(_fp(pki.leaf2))

    print(f"in-place install with two 409s on the certificate write: {len(loop.results)} handshakes,"
          f" {len(loop.failures)} failed")
    assert loop.failures, "the probe saw no outage during an in-place install"
    assert all(r["stage"] in ("connect", "tls") for r in loop.failures), loop.failures[:3]
    assert loop.results[-1]["peer_sha256"] == _fp(pki.leaf2)


# -- rollback is a re-bind, idempotent --------------------------------------------------------------------------
def test_rollback_rebinds_the_previous_context_and_is_idempotent(devices, pki, run_module):
    dev = devices["mediant-ha"]
    assert run_module("audiocodes_tls_context", staged_args(dev, pki))["changed"]
    assert run_module("audiocodes_tls_context", staged_args(dev, pki, leaf="2"))["changed"]
    assert probe(dev, pki)["peer_sha256"] == _fp(pki.leaf2)

    rollback = conn(dev, state="rollback", staging_contexts=[1, 2], context_name="BYOC",
                    sip_interfaces=["SIPInterface_0"], proxy_sets=["ProxySet_0"])
    checked = run_module("audiocodes_tls_context", rollback, check=True, diff=True)
    assert checked["changed"] and checked["context"]["index"] == 1
    assert checked["diff"]["after"]["sip_interfaces"]["SIPInterface_0"] == "BYOC-A"
    control(dev, "requests", method="DELETE")
    back = run_module("audiocodes_tls_context", rollback)
    assert back["changed"] and back["mode"] == "rollback" and back["context"]["index"] == 1, back
    assert [w["path"] for w in writes(dev)] == ["/api/v1/files/ini/incremental", "/api/v1/actions/saveConfiguration"]
    assert probe(dev, pki)["peer_sha256"] == _fp(pki.leaf1)
    assert running(dev)["contexts"]["2"]["certificate_sha256"] == _fp(pki.leaf2)   # forward material kept
    again = run_module("audiocodes_tls_context", rollback)
    assert not again["changed"], again
    assert probe(dev, pki)["peer_sha256"] == _fp(pki.leaf1)


def test_context_0_is_never_staged_into_and_in_place_needs_the_flag(devices, pki, run_module):
    dev = devices["mediant-sa"]
    result = run_module("audiocodes_tls_context", staged_args(dev, pki, staging_contexts=[0, 1]))
    assert result.get("failed") and result["field"] == "staging_contexts" and "management" in result["msg"]
    args = dict(staged_args(dev, pki), mode="in_place", context_index=0, context_name=None)
    del args["staging_contexts"]
    refused = run_module("audiocodes_tls_context", args)
    assert refused.get("failed") and refused["field"] == "context_index" and "allow_management_context" in refused["msg"]
    assert writes(dev) == [] and [r for r in control(dev, "requests") if r["path"].startswith("/api/")] == []
    # Check mode: a real write would also change the certificate this REST API presents (sbc-apis.md A4).
    allowed = run_module("audiocodes_tls_context", dict(args, allow_management_context=True), check=True)
    assert allowed["changed"] and "upload private key to context 0" in allowed["actions"], allowed
    assert any("management certificate changes" in w for w in allowed.get("warnings", [])), allowed
    assert writes(dev) == []


# -- issue 9 section 2: mutual authentication against the roots installed now ---------------------------------
def test_mutual_authentication_verifies_the_edge_against_the_roots_installed_now(devices, pki, run_module):
    dev = devices["mediant-ha"]
    assert dev["mutual_auth"] and not devices["mediant-sa"]["mutual_auth"]
    assert dev["sip_tls"]["name"].startswith("mediant-ha.")
    # The MANAGED CA left out of the trusted roots: the Edge's certificate is refused.
    without = run_module("audiocodes_tls_context", staged_args(dev, pki, trusted_roots=[]))
    assert without["changed"], without
    refused = probe(dev, pki)
    assert not refused["ok"] and refused["stage"] in ("tls", "sip"), refused
    assert control(dev, "sip")["clients_refused"] >= 1

    # The MANAGED CA added (staged: a new context with the same leaf and more roots, then a re-bind).
    fixed = run_module("audiocodes_tls_context", staged_args(dev, pki))
    assert fixed["changed"] and fixed["context"]["index"] == 2, fixed
    ok = probe(dev, pki)
    assert ok["ok"] and ok["peer_sha256"] == _fp(pki.leaf1), ok
    assert not probe(dev, pki, client=None)["ok"]      # no client certificate: refused
    assert not probe(dev, pki, client="rogue")["ok"]   # a certificate from another CA: refused

    # As installed at that moment: the store replaced without the MANAGED CA -> refused at once.
    exact = conn(dev, mode="in_place", context_index=2, trusted_roots=[_pem(pki.inter)], trusted_roots_mode="exact")
    assert run_module("audiocodes_tls_context", exact)["changed"]
    assert not probe(dev, pki)["ok"]

    # Configured through the device's API (incremental INI, sbc-apis.md A4 column TLSMutualAuthentication).
    import base64
    import urllib.error

    def put_ini(text):
        boundary = "b0undary"
        body = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"m.ini\"\r\n"
                f"Content-Type: application/octet-stream\r\n\r\n{text}\r\n--{boundary}--\r\n").encode()
        token = base64.b64encode(f"{dev['username']}:{dev['password']}".encode()).decode()
        req = urllib.request.Request(f"{dev['api_url']}/files/ini/incremental", data=body, method="PUT",
                                     headers={"Authorization": f"Basic {token}",
                                              "Content-Type": f"multipart/form-data; boundary={boundary}"})
        try:
            with urllib.request.urlopen(req, context=ssl.create_default_context(cafile=dev["ca_file"]),
                                        timeout=10) as resp:
                return resp.status
        except urllib.error.HTTPError as exc:
            return exc.code

    ini = "[ SIPInterface ]\r\nFORMAT Index = TLSMutualAuthentication;\r\nSIPInterface 0 = {};\r\n[ \\SIPInterface ]\r\n"
    assert put_ini(ini.format(2)) == 400                 # values other than 0/1: refused (stricter choice)
    assert put_ini(ini.format(0)) == 200
    assert probe(dev, pki, client=None)["ok"]            # off: no client certificate needed
    info = run_module("audiocodes_tls_context_info", conn(dev))
    assert info["sip_interfaces"][0]["mutual_authentication"] == 0
    assert put_ini(ini.format(1)) == 200
    assert not probe(dev, pki, client=None)["ok"]


def test_a_rebind_ends_established_sessions(devices, pki, run_module):
    """sbc-apis.md A4: "If the TLS Context used for an existing TLS connection is changed ..., the device ends the
    connection". A kept-alive Edge session is closed by the re-bind and must handshake again: it then sees the new
    certificate (the lab is not more optimistic than reality, and not less)."""
    from emulators.common.siptls import SipTlsSession

    dev = devices["mediant-sa"]
    assert run_module("audiocodes_tls_context", staged_args(dev, pki))["changed"]
    session = SipTlsSession(dev["sip_tls"]["host"], dev["sip_tls"]["port"], server_name=SBC_NAME,
                            cadata=_pem(pki.root), timeout=3)
    try:
        assert session.options()["peer_sha256"] == _fp(pki.leaf1)
        assert session.options()["reused"]
        dropped = control(dev, "sip")["sessions_dropped"]
        assert run_module("audiocodes_tls_context", staged_args(dev, pki, leaf="2"))["changed"]
        assert control(dev, "sip")["sessions_dropped"] > dropped
        after = session.options()
        assert after["ok"] and not after["reused"] and after["peer_sha256"] == _fp(pki.leaf2), after
    finally:
        session.close()
