"""audiocodes_tls_context and audiocodes_tls_context_info against the lab's Mediant emulators.

What a user relies on is observed independently of the module's own result: a real TLS handshake (plus SIP
OPTIONS) to the device's SIP-TLS port, verified against the test root only (so it succeeds only when the device
sends the intermediate), and the emulator's state read back through its test-only /_control API.
"""

from __future__ import annotations

import datetime
import hashlib
import json
import ssl
import sys
import urllib.request
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import NameOID

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "lab"))
from emulators.common.siptls import sip_options_probe  # noqa: E402

SBC_NAME = "sbc1.byoc-lab.test"


# -- test PKI: root -> intermediate -> leaves; a separate "Genesys MANAGED CA" ------------------------------------
def _cert(cn, key, issuer=None, issuer_key=None, ca=False, sans=None, days=30):
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])
    now = datetime.datetime.now(datetime.timezone.utc)
    start = now - (datetime.timedelta(minutes=5) if days > 0 else datetime.timedelta(days=2))
    builder = (x509.CertificateBuilder().subject_name(name).issuer_name(issuer.subject if issuer else name)
               .public_key(key.public_key()).serial_number(x509.random_serial_number())
               .not_valid_before(start).not_valid_after(now + datetime.timedelta(days=days))
               .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True))
    if sans:
        builder = builder.add_extension(x509.SubjectAlternativeName([x509.DNSName(s) for s in sans]), critical=False)
    return builder.sign(issuer_key or key, hashes.SHA256())


def _pem(cert) -> str:
    return cert.public_bytes(serialization.Encoding.PEM).decode()


def _key_pem(key) -> str:
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.TraditionalOpenSSL,
                             serialization.NoEncryption()).decode()


def _fp(cert) -> str:
    return hashlib.sha256(cert.public_bytes(serialization.Encoding.DER)).hexdigest()


class Pki:
    def __init__(self):
        self.root_key = ec.generate_private_key(ec.SECP256R1())
        self.root = _cert("BYOC Test Root", self.root_key, ca=True)
        self.inter_key = ec.generate_private_key(ec.SECP256R1())
        self.inter = _cert("BYOC Test Intermediate", self.inter_key, self.root, self.root_key, ca=True)
        self.key1 = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self.leaf1 = _cert(SBC_NAME, self.key1, self.inter, self.inter_key, sans=[SBC_NAME])
        self.key2 = ec.generate_private_key(ec.SECP384R1())
        self.leaf2 = _cert(SBC_NAME, self.key2, self.inter, self.inter_key, sans=[SBC_NAME, "sbc-b.byoc-lab.test"])
        self.genesys_key = ec.generate_private_key(ec.SECP256R1())
        self.genesys_ca = _cert("Genesys Cloud Managed CA (test)", self.genesys_key, ca=True)
        # What an Edge presents to an SBC with mutual authentication: a client certificate from the MANAGED CA.
        self.edge_key = ec.generate_private_key(ec.SECP256R1())
        self.edge = _cert("edge-1.genesys.test", self.edge_key, self.genesys_ca, self.genesys_key)
        self.key3 = ec.generate_private_key(ec.SECP256R1())
        self.leaf3 = _cert(SBC_NAME, self.key3, self.inter, self.inter_key, sans=[SBC_NAME])
        old_key = ec.generate_private_key(ec.SECP256R1())
        self.expired_ca = _cert("Expired CA", old_key, ca=True, days=-1)
        self.expired_leaf = _cert(SBC_NAME, self.key1, self.inter, self.inter_key, sans=[SBC_NAME], days=-1)


@pytest.fixture(scope="module")
def pki():
    return Pki()


# -- lab access ---------------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def devices(lab):
    return lab.part("audiocodes")["devices"]


def control(dev: dict, path: str, body: dict | None = None, method: str | None = None) -> dict | list:
    ctx = ssl.create_default_context(cafile=dev["ca_file"])
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(f"{dev['control_url']}/{path}", data=data, method=method or ("POST" if data else "GET"),
                                 headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, context=ctx, timeout=10) as resp:
        return json.loads(resp.read() or b"null")


def state(dev):
    return control(dev, "state")


def api_requests(dev) -> list[dict]:
    """Requests the device's REST API received (the /_control ones left out)."""
    return [r for r in control(dev, "requests") if r["path"].startswith("/api/")]


def writes(dev) -> list[dict]:
    return [r for r in api_requests(dev) if r["method"] in ("PUT", "POST")]


def probe(dev, pki, client=True):
    """Real TLS handshake + SIP OPTIONS, trusting only the test root: succeeds only if the device sends the
    intermediate and the leaf chains to the root for SBC_NAME. A device with mutual authentication on
    (``mediant-ha``) gets the Edge's client certificate from the test MANAGED CA, as a Genesys Edge presents."""
    extra = {}
    if client and dev.get("mutual_auth"):
        extra = {"client_chain_pem": _pem(pki.edge),
                 "client_key_pem": pki.edge_key.private_bytes(serialization.Encoding.PEM,
                                                              serialization.PrivateFormat.PKCS8,
                                                              serialization.NoEncryption()).decode()}
    return sip_options_probe(dev["sip_tls"]["host"], dev["sip_tls"]["port"], cadata=_pem(pki.root),
                             server_name=SBC_NAME, **extra)


@pytest.fixture(autouse=True)
def factory_reset(devices):
    for dev in devices.values():
        control(dev, "factory-reset", {})
        control(dev, "alarms", method="DELETE")
        control(dev, "requests", method="DELETE")
    yield


def conn(dev: dict, **extra) -> dict:
    args = {"api_url": dev["api_url"], "username": dev["username"], "password": dev["password"],
            "ca_path": dev["ca_file"]}
    args.update(extra)
    return args


def install_args(dev, pki, leaf="1", **extra) -> dict:
    leaf_cert, key = (pki.leaf1, pki.key1) if leaf == "1" else (pki.leaf2, pki.key2)
    args = conn(dev, context_index=1, context_name="BYOC", private_key=_key_pem(key), certificate=_pem(leaf_cert),
                chain=_pem(pki.inter), trusted_roots=[_pem(pki.genesys_ca)], sip_interfaces=["SIPInterface_0"],
                sync_delay=0.05)
    args.update(extra)
    return args


def assert_clean_failure(result, *needles):
    assert result.get("failed"), result
    assert "Traceback" not in result["_stdout"]
    assert "Unexpected" not in result["msg"], result["msg"]
    for n in needles:
        assert n in result["msg"], result["msg"]


# -- acceptance: new leaf + chain served; HA replication and switchover ------------------------------------------
def test_ha_pair_serves_new_leaf_and_chain_and_survives_switchover(devices, pki, run_module):
    dev = devices["mediant-ha"]
    before = probe(dev, pki)
    assert not before["ok"] and before["stage"] == "tls"  # factory self-signed cert does not chain to our root

    result = run_module("audiocodes_tls_context", install_args(dev, pki, require_ha=True))
    assert result["changed"] and not result.get("failed"), result
    assert result["high_availability"] == "Operational"

    seen = probe(dev, pki)
    assert seen["ok"], seen
    assert seen["peer_sha256"] == _fp(pki.leaf1)

    st = state(dev)
    assert st["active_unit"] == "A" and not st["save_needed"]
    for unit in st["units"]:  # replicated to the redundant unit too
        ctx = unit["running"]["contexts"]["1"]
        assert ctx["certificate_sha256"] == _fp(pki.leaf1) and ctx["key_valid"]
        assert set(ctx["trusted_roots_sha256"]) == {_fp(pki.inter), _fp(pki.genesys_ca)}
        assert unit["running"]["sip_interfaces"]["0"]["tls_context"] == "BYOC"
    assert st["units"][0]["saved"]["contexts"]["1"]["certificate_sha256"] == _fp(pki.leaf1)

    control(dev, "switchover", {})
    st = state(dev)
    assert st["active_unit"] == "B"
    after = probe(dev, pki)
    assert after["ok"], after
    assert after["peer_sha256"] == _fp(pki.leaf1)

    # The new active holds the replicated configuration but (emulator's stricter choice) not yet in its flash:
    # the module notices saveNeeded and saves, without re-uploading anything.
    assert st["save_needed"]
    again = run_module("audiocodes_tls_context", install_args(dev, pki, require_ha=True))
    assert again["changed"] and again["actions"] == ["save the configuration (saveConfiguration)"], again
    assert not state(dev)["save_needed"]
    third = run_module("audiocodes_tls_context", install_args(dev, pki, require_ha=True))
    assert not third["changed"], third


# -- check mode, diff, idempotence ---------------------------------------------------------------------------------
def test_check_mode_then_apply_then_idempotent_with_diff(devices, pki, run_module):
    dev = devices["mediant-sa"]
    args = install_args(dev, pki)

    checked = run_module("audiocodes_tls_context", args, check=True, diff=True)
    assert checked["changed"] and not checked.get("failed"), checked
    assert checked["context"]["created"]
    assert "1" not in checked["diff"]["before"]["contexts"]
    assert checked["diff"]["after"]["contexts"]["1"]["certificate"]["fingerprint_sha256"] == _fp(pki.leaf1)
    assert checked["diff"]["after"]["sip_interfaces"]["SIPInterface_0"] == "BYOC"
    assert writes(dev) == []                       # nothing written in check mode
    assert "1" not in state(dev)["units"][0]["running"]["contexts"]

    applied = run_module("audiocodes_tls_context", args, diff=True)
    assert applied["changed"] and applied["private_key_valid"] and applied["saved"], applied
    assert applied["diff"]["after"] == checked["diff"]["after"]   # check mode predicted the real outcome
    assert probe(dev, pki)["peer_sha256"] == _fp(pki.leaf1)
    n_writes = len(writes(dev))

    again = run_module("audiocodes_tls_context", args, diff=True)
    assert not again["changed"] and again["actions"] == [], again
    assert again["diff"]["before"] == again["diff"]["after"]
    assert len(writes(dev)) == n_writes            # the second run wrote nothing

    checked_again = run_module("audiocodes_tls_context", args, check=True)
    assert not checked_again["changed"]

    for r in (checked, applied, again):            # no key material anywhere in what the user sees
        assert "PRIVATE KEY" not in r["_stdout"]
        assert dev["password"] not in r["_stdout"]


def test_rotation_to_a_new_key_and_certificate(devices, pki, run_module):
    dev = devices["mediant-sa"]
    assert run_module("audiocodes_tls_context", install_args(dev, pki))["changed"]
    assert probe(dev, pki)["peer_sha256"] == _fp(pki.leaf1)

    rotated = run_module("audiocodes_tls_context", install_args(dev, pki, leaf="2"), diff=True)
    assert rotated["changed"], rotated
    assert rotated["diff"]["before"]["contexts"]["1"]["certificate"]["fingerprint_sha256"] == _fp(pki.leaf1)
    assert rotated["diff"]["after"]["contexts"]["1"]["certificate"]["fingerprint_sha256"] == _fp(pki.leaf2)
    assert any("serves no TLS" in w and "mode=staged" in w for w in rotated.get("warnings", [])), rotated
    seen = probe(dev, pki)
    assert seen["ok"] and seen["peer_sha256"] == _fp(pki.leaf2), seen
    ctx = state(dev)["units"][0]["saved"]["contexts"]["1"]
    assert ctx["certificate_sha256"] == _fp(pki.leaf2) and ctx["key_valid"]


def test_trusted_roots_exact_replaces_the_store(devices, pki, run_module):
    dev = devices["mediant-sa"]
    assert run_module("audiocodes_tls_context", install_args(dev, pki))["changed"]
    only_genesys = conn(dev, context_index=1, trusted_roots=[_pem(pki.genesys_ca)], trusted_roots_mode="exact")
    result = run_module("audiocodes_tls_context", only_genesys)
    assert result["changed"], result
    assert state(dev)["units"][0]["running"]["contexts"]["1"]["trusted_roots_sha256"] == [_fp(pki.genesys_ca)]
    assert not run_module("audiocodes_tls_context", only_genesys)["changed"]


# -- HA synchronisation: 409 retried with backoff, progress reported ----------------------------------------------
def test_409_during_sync_is_retried_and_reported(devices, pki, run_module):
    dev = devices["mediant-ha"]
    control(dev, "ha", {"sync_writes": 3})  # the next three writes are refused with 409
    result = run_module("audiocodes_tls_context", install_args(dev, pki))
    assert result["changed"] and not result.get("failed"), result
    assert len(result["sync_retries"]) == 3
    assert [w["attempt"] for w in result["sync_retries"]] == [1, 2, 3]
    assert all("synchroniz" in w["device_said"] for w in result["sync_retries"])
    assert [w["waited_seconds"] for w in result["sync_retries"]] == [0.05, 0.1, 0.2]  # doubling backoff
    assert sum("409" in w for w in result.get("warnings", [])) == 3
    st = state(dev)
    assert st["sync_refusals"] == 3
    assert st["units"][1]["running"]["contexts"]["1"]["certificate_sha256"] == _fp(pki.leaf1)
    assert probe(dev, pki)["peer_sha256"] == _fp(pki.leaf1)


def test_409_that_never_ends_fails_clearly_and_changes_nothing(devices, pki, run_module):
    dev = devices["mediant-ha"]
    control(dev, "ha", {"syncing": True})
    try:
        result = run_module("audiocodes_tls_context", install_args(dev, pki, sync_retries=2))
    finally:
        control(dev, "ha", {"syncing": False})
    assert_clean_failure(result, "409", "synchronis", "sync_retries")
    assert len(result["sync_retries"]) == 2
    assert "1" not in state(dev)["units"][0]["running"]["contexts"]


def test_require_ha_refuses_a_degraded_pair_and_a_standalone_unit(devices, pki, run_module):
    dev = devices["mediant-ha"]
    control(dev, "ha", {"redundant": "down"})
    result = run_module("audiocodes_tls_context", install_args(dev, pki, require_ha=True))
    assert_clean_failure(result, "Not Operational", "require_ha")
    assert writes(dev) == []
    control(dev, "ha", {"redundant": "up"})

    sa = devices["mediant-sa"]
    result = run_module("audiocodes_tls_context", install_args(sa, pki, require_ha=True))
    assert_clean_failure(result, "require_ha")
    assert writes(sa) == []


# -- safety: mismatched key, interrupted upload --------------------------------------------------------------------
def test_key_that_does_not_match_is_refused_before_any_request(devices, pki, run_module):
    dev = devices["mediant-sa"]
    args = install_args(dev, pki)
    args["private_key"] = _key_pem(pki.key2)  # key of leaf2, certificate leaf1
    result = run_module("audiocodes_tls_context", args)
    assert_clean_failure(result, "private_key", "does not match the certificate")
    assert result["field"] == "private_key"
    assert api_requests(dev) == []  # not even a GET: refused before the device was touched


def test_interrupted_rotation_is_recovered_by_rerunning(devices, pki, run_module):
    dev = devices["mediant-sa"]
    assert run_module("audiocodes_tls_context", install_args(dev, pki))["changed"]
    # The certificate upload fails with a 5xx after the new key went in.
    control(dev, "faults", {"method": "PUT", "path": "/api/v1/files/tls/1/certificate", "status": 500,
                            "description": "Internal error (lab)"})
    failed = run_module("audiocodes_tls_context", install_args(dev, pki, leaf="2"))
    assert_clean_failure(failed, "HTTP 500", "uploaded the private key", "re-run")
    assert failed["completed_steps"] == ["uploaded the private key to context 1"]
    ctx = state(dev)["units"][0]["running"]["contexts"]["1"]
    assert ctx["certificate_sha256"] == _fp(pki.leaf1) and not ctx["key_valid"]  # half-rotated: broken
    assert not probe(dev, pki)["ok"]   # and the SIP-TLS port indeed cannot complete a handshake

    recovered = run_module("audiocodes_tls_context", install_args(dev, pki, leaf="2"))
    assert recovered["changed"] and not recovered.get("failed"), recovered
    seen = probe(dev, pki)
    assert seen["ok"] and seen["peer_sha256"] == _fp(pki.leaf2), seen
    st = state(dev)
    assert st["units"][0]["saved"]["contexts"]["1"]["key_valid"] and not st["save_needed"]


# -- bad input: clear errors, never a traceback ---------------------------------------------------------------------
BAD_INPUT = [
    ("bad certificate PEM", {"certificate": "-----BEGIN CERTIFICATE-----\nnot base64 !!\n-----END CERTIFICATE-----"},
     ["certificate"]),
    ("bad key PEM", {"private_key": "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----"}, ["private_key"]),
    ("bad trusted root", {"trusted_roots": ["hello"]}, ["trusted_roots[0]"]),
    ("non-ASCII context name", {"context_name": "BYÖC"}, ["context_name", "non-ASCII"]),
    ("context 0 without the flag", {"context_index": 0, "context_name": None},
     ["context_index", "management", "allow_management_context"]),
    ("index too high", {"context_index": 100}, ["context_index", "0 to 99"]),
    ("index negative", {"context_index": -1}, ["context_index", "out of range"]),
    ("bad context name", {"context_name": 'a"b'}, ["context_name"]),
    ("bad api_url", {"api_url": "https://127.0.0.1:1/rest"}, ["api_url", "/api/v1"]),
]


@pytest.mark.parametrize("label,override,needles", BAD_INPUT, ids=[b[0] for b in BAD_INPUT])
def test_bad_input_is_refused_before_the_device_is_touched(devices, pki, run_module, label, override, needles):
    dev = devices["mediant-sa"]
    result = run_module("audiocodes_tls_context", install_args(dev, pki, **override))
    assert_clean_failure(result, *needles)
    assert api_requests(dev) == []


# Issue 10, the one gate: the classes of bad material, each refused naming the field, before any request (the
# emulator's request log proves it), without a traceback and without echoing key material.
def _gate_rows(pki):
    key = _key_pem(pki.key1)
    return [
        ("second leaf in certificate", {"certificate": _pem(pki.leaf1) + _pem(pki.leaf2)}, "certificate",
         "second leaf"),
        ("CA as the certificate", {"certificate": _pem(pki.inter)}, "certificate", "CA certificate"),
        ("expired leaf", {"certificate": _pem(pki.expired_leaf)}, "certificate", "expired"),
        ("leaf in chain", {"chain": _pem(pki.leaf2)}, "chain", "leaf"),
        ("leaf in trusted_roots", {"trusted_roots": [_pem(pki.leaf2)]}, "trusted_roots[0]", "leaf"),
        ("key in certificate", {"certificate": _pem(pki.leaf1) + key}, "certificate", "private key material"),
        ("key in chain", {"chain": key}, "chain", "private key material"),
        ("expired CA", {"trusted_roots": [_pem(pki.expired_ca)]}, "trusted_roots[0]", "allow_expired_ca"),
    ]


@pytest.mark.parametrize("row", range(8))
@pytest.mark.parametrize("mode", ["in_place", "staged"])
def test_the_gate_refuses_bad_material_before_any_request(devices, pki, run_module, row, mode):
    dev = devices["mediant-sa"]
    label, override, field, needle = _gate_rows(pki)[row]
    args = install_args(dev, pki, **override)
    if mode == "staged":
        del args["context_index"]
        args["staging_contexts"] = [1, 2]
    result = run_module("audiocodes_tls_context", args)
    assert_clean_failure(result, needle)
    assert result["field"] == field, (label, result["msg"])
    assert api_requests(dev) == [], label
    assert "PRIVATE KEY-----" not in result["_stdout"].replace("VALUE_SPECIFIED_IN_NO_LOG_PARAMETER", "")


def test_expired_ca_is_installed_only_when_allowed_and_then_warned(devices, pki, run_module):
    dev = devices["mediant-sa"]
    result = run_module("audiocodes_tls_context", install_args(dev, pki, trusted_roots=[_pem(pki.expired_ca)],
                                                               allow_expired_ca=True))
    assert result["changed"] and not result.get("failed"), result
    assert any("Expired CA" in w and "allow_expired_ca" in w for w in result.get("warnings", [])), result
    assert _fp(pki.expired_ca) in state(dev)["units"][0]["running"]["contexts"]["1"]["trusted_roots_sha256"]


def test_wrong_credentials(devices, pki, run_module):
    dev = devices["mediant-sa"]
    result = run_module("audiocodes_tls_context", install_args(dev, pki, password="wrong-password"))
    assert_clean_failure(result, "HTTP 401", "username and password")
    assert "wrong-password" not in result["_stdout"]
    assert writes(dev) == []


def test_insufficient_privilege_level(devices, pki, run_module):
    dev = devices["mediant-sa"]
    args = install_args(dev, pki, username=dev["readonly_username"], password=dev["readonly_password"])
    result = run_module("audiocodes_tls_context", args)
    assert_clean_failure(result, "HTTP 403", "privilege level", "Administrator")
    assert writes(dev) == []
    info = run_module("audiocodes_tls_context_info", conn(dev, username=dev["readonly_username"],
                                                          password=dev["readonly_password"]))
    assert_clean_failure(info, "HTTP 403", "Administrator")


def test_missing_context_without_name_and_name_mismatch(devices, pki, run_module):
    dev = devices["mediant-sa"]
    args = install_args(dev, pki)
    del args["context_name"]
    result = run_module("audiocodes_tls_context", args)
    assert_clean_failure(result, "TLS context 1 does not exist", "context_name")
    assert writes(dev) == []

    assert run_module("audiocodes_tls_context", install_args(dev, pki))["changed"]
    n = len(writes(dev))
    result = run_module("audiocodes_tls_context", install_args(dev, pki, context_name="Other"))
    assert_clean_failure(result, "context_name", "'BYOC'")
    result = run_module("audiocodes_tls_context", install_args(dev, pki, sip_interfaces=["NoSuchInterface"]))
    assert_clean_failure(result, "sip_interfaces", "NoSuchInterface", "SIPInterface_0")
    assert len(writes(dev)) == n


# -- connection: TLS verified by default; credentials from the environment ---------------------------------------
def test_management_tls_is_verified_by_default(devices, pki, run_module):
    dev = devices["mediant-sa"]
    args = install_args(dev, pki)
    del args["ca_path"]
    result = run_module("audiocodes_tls_context", args)
    assert_clean_failure(result, "ca_path")
    assert "CERTIFICATE_VERIFY_FAILED" in result["msg"] or "certificate verify failed" in result["msg"]
    assert api_requests(dev) == []  # the handshake failed, so no request reached the API


def test_credentials_from_environment(devices, pki, run_module):
    dev = devices["mediant-sa"]
    args = install_args(dev, pki)
    del args["username"], args["password"]
    result = run_module("audiocodes_tls_context", args,
                        env={"AUDIOCODES_USERNAME": dev["username"], "AUDIOCODES_PASSWORD": dev["password"]})
    assert result["changed"] and not result.get("failed"), result
    assert dev["password"] not in result["_stdout"]


# -- info module -----------------------------------------------------------------------------------------------------
def test_info_reports_certificate_key_roots_ha_and_save_state(devices, pki, run_module):
    dev = devices["mediant-ha"]
    assert run_module("audiocodes_tls_context", install_args(dev, pki, save=False))["changed"]
    control(dev, "alarms", {"description": "lab alarm"})

    info = run_module("audiocodes_tls_context_info", conn(dev, context_index=1))
    assert not info["changed"] and not info.get("failed"), info
    [ctx] = info["contexts"]
    cert = ctx["certificate"]
    assert ctx["index"] == 1 and ctx["name"] == "BYOC"
    assert cert["fingerprint_sha256"] == _fp(pki.leaf1)
    assert cert["subject"] == f"CN={SBC_NAME}" and cert["issuer"] == "CN=BYOC Test Intermediate"
    assert cert["subject_alt_names"] == [f"DNS:{SBC_NAME}"]
    assert cert["not_after"] == pki.leaf1.not_valid_after_utc.isoformat()
    assert ctx["private_key"] == {"size": 2048, "valid": True}
    assert {r["fingerprint_sha256"] for r in ctx["trusted_roots"]} == {_fp(pki.inter), _fp(pki.genesys_ca)}
    assert ctx["sip_interfaces"] == ["SIPInterface_0"]
    # mediant-ha has mutual authentication on its SIP Interface (the lab's choice, issue 9 section 2)
    assert info["sip_interfaces"] == [{"name": "SIPInterface_0", "tls_context": "BYOC", "mutual_authentication": 1}]
    assert info["status"]["high_availability"] == "Operational" and info["status"]["ha_operational"]
    assert info["status"]["save_needed"] is True   # save=false left the change unsaved
    assert state(dev)["save_needed"] is True
    assert info["alarms"] == [{"id": "1", "description": "lab alarm"}]

    everything = run_module("audiocodes_tls_context_info", conn(dev), check=True)
    assert [c["index"] for c in everything["contexts"]] == [0, 1]
    assert everything["contexts"][0]["certificate"]["subject"].startswith("CN=ACL_")

    bad = run_module("audiocodes_tls_context_info", conn(dev, context_index=250))
    assert_clean_failure(bad, "context_index")


# -- the emulator's own contract (sbc-apis.md A1-A6), checked over the wire without the module ----------------------
def rest(dev: dict, method: str, path: str, *, body: bytes | None = None, ctype: str | None = None,
         user: str | None = None, password: str | None = None) -> tuple[int, dict, bytes]:
    import base64
    import urllib.error

    ctx = ssl.create_default_context(cafile=dev["ca_file"])
    token = base64.b64encode(f"{user or dev['username']}:{password or dev['password']}".encode()).decode()
    headers = {"Authorization": f"Basic {token}"}
    if ctype:
        headers["Content-Type"] = ctype
    req = urllib.request.Request(f"{dev['api_url']}/{path}", data=body, method=method, headers=headers)
    try:
        with urllib.request.urlopen(req, context=ctx, timeout=10) as resp:
            return resp.status, dict(resp.headers), resp.read()
    except urllib.error.HTTPError as exc:
        return exc.code, dict(exc.headers), exc.read()


def upload(dev, path, content: str, name: str = "file"):
    boundary = "labboundary"
    body = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"{name}\"; filename=\"x.pem\"\r\n"
            f"Content-Type: application/octet-stream\r\n\r\n{content}\r\n--{boundary}--\r\n").encode()
    return rest(dev, "PUT", path, body=body, ctype=f"multipart/form-data; boundary={boundary}")


def test_emulator_contract(devices, pki):
    dev = devices["mediant-sa"]
    status, headers, body = rest(dev, "GET", "status", password="nope")
    assert status == 401 and "Basic" in headers.get("WWW-Authenticate", "")
    assert rest(dev, "GET", "files/ini", user=dev["readonly_username"], password=dev["readonly_password"])[0] == 403
    assert rest(dev, "GET", "status", user=dev["readonly_username"], password=dev["readonly_password"])[0] == 200
    assert rest(dev, "GET", "alarms/active")[0] == 204

    # private key: JSON {size, valid}, never the key
    status, headers, body = rest(dev, "GET", "files/tls/0/privateKey")
    assert status == 200 and set(json.loads(body)) == {"size", "valid"} and b"PRIVATE" not in body
    # uploads: multipart field "file" only; bad PEM -> 400 with a description
    assert upload(dev, "files/tls/0/certificate", _pem(pki.leaf1), name="other")[0] == 400
    assert rest(dev, "PUT", "files/tls/0/certificate", body=_pem(pki.leaf1).encode(), ctype="text/plain")[0] == 400
    status, _h, body = upload(dev, "files/tls/0/certificate", "not a pem")
    assert status == 400 and json.loads(body)["description"]
    assert upload(dev, "files/tls/0/trustedRoot/incremental", _pem(pki.root) + _pem(pki.inter))[0] == 400
    # certificate GET is PEM as octet-stream
    status, headers, body = rest(dev, "GET", "files/tls/0/certificate")
    assert status == 200 and headers["Content-Type"] == "application/octet-stream"
    assert body.startswith(b"-----BEGIN CERTIFICATE-----")

    # save needs an empty body; a reset without saving loses unsaved changes
    assert rest(dev, "POST", "actions/saveConfiguration", body=b"x", ctype="text/plain")[0] == 400
    ini_text = "[ TLSContexts ]\r\nFORMAT Index = Name;\r\nTLSContexts 7 = \"Scratch\";\r\n[ \\TLSContexts ]\r\n"
    assert upload(dev, "files/ini/incremental", ini_text)[0] == 200
    assert 'TLSContexts 7 = "Scratch"' in rest(dev, "GET", "files/ini")[2].decode()
    assert json.loads(rest(dev, "GET", "status")[2])["saveNeeded"] == "true"
    status, _h, body = rest(dev, "POST", "actions/reset", body=b'{"saveConfiguration": false}',
                            ctype="application/json")
    assert status == 200 and json.loads(body)["description"] == "Device will reset now"
    assert "Scratch" not in rest(dev, "GET", "files/ini")[2].decode()
    assert json.loads(rest(dev, "GET", "status")[2])["saveNeeded"] == "false"


def test_emulator_ha_sync_409_and_unsaved_state_after_switchover(devices, pki):
    dev = devices["mediant-ha"]
    control(dev, "ha", {"syncing": True})
    status, _h, body = upload(dev, "files/tls/0/trustedRoot/incremental", _pem(pki.root))
    assert status == 409 and "synchroniz" in json.loads(body)["description"]
    assert rest(dev, "POST", "actions/saveConfiguration", body=b"", ctype="text/plain")[0] == 409
    assert rest(dev, "GET", "status")[0] == 200  # reads still work
    control(dev, "ha", {"syncing": False})

    assert upload(dev, "files/tls/0/trustedRoot/incremental", _pem(pki.root))[0] == 200
    st = state(dev)
    assert st["units"][1]["running"]["contexts"]["0"]["trusted_roots_sha256"] == [_fp(pki.root)]  # replicated
    control(dev, "switchover", {})
    st = state(dev)
    assert st["active_unit"] == "B" and st["switchovers"] == 1
    assert st["units"][1]["running"]["contexts"]["0"]["trusted_roots_sha256"] == [_fp(pki.root)]
    assert st["units"][1]["saved"]["contexts"]["0"]["trusted_roots_sha256"] == []  # never saved
    assert st["save_needed"]
