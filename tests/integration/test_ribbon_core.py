"""Ribbon SBC Core: ribbon_certificate / ribbon_certificate_info against the lab's HA pair emulator.

Observed independently of the module: the PKCS#12 files on each node's SFTP root (opened here with cryptography),
real TLS handshakes to the SIP-TLS port (sip_options_probe), and the emulator's state via /_control.
"""

from __future__ import annotations

import datetime
import hashlib
import json
import ssl
import urllib.request
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import pkcs12
from cryptography.x509.oid import NameOID

from emulators.common.siptls import sip_options_probe

PASS = "p12-secret-passphrase"


# ------------------------------------------------------------------------------------------------ helpers
def make_ca(cn: str):
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=30))
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(key, hashes.SHA256()))
    return cert, key


def issue(ca, names: list[str], days: int = 20):
    ca_cert, ca_key = ca
    key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, names[0])]))
            .issuer_name(ca_cert.subject).public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5)).not_valid_after(now + datetime.timedelta(days=days))
            .add_extension(x509.SubjectAlternativeName([x509.DNSName(n) for n in names]), critical=False)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .sign(ca_key, hashes.SHA256()))
    return cert, key


def pem(cert) -> str:
    return cert.public_bytes(serialization.Encoding.PEM).decode()


def key_pem(key) -> str:
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption()).decode()


def sha(cert) -> str:
    return hashlib.sha256(cert.public_bytes(serialization.Encoding.DER)).hexdigest()


def control(part: dict, path: str, body: dict | None = None) -> dict:
    ctx = ssl.create_default_context(cafile=part["ca_file"])
    req = urllib.request.Request(f"{part['control_url']}/{path}", method="POST" if body is not None else "GET",
                                 data=json.dumps(body).encode() if body is not None else None,
                                 headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, context=ctx, timeout=10) as resp:
        return json.loads(resp.read())


def served(part: dict, cadata: str) -> dict:
    s = part["sip_tls"]
    return sip_options_probe(s["host"], s["port"], cadata=cadata, server_name=s["server_name"])


def node_fingerprint(part: dict, node: str, file_name: str, passphrase: str = PASS) -> str | None:
    """Open the PKCS#12 on the node's disk (its /opt/sonus/external) ourselves."""
    root = Path(next(n["root"] for n in part["nodes"] if n["name"] == node))
    path = root / file_name
    if not path.exists():
        return None
    _key, cert, _extra = pkcs12.load_key_and_certificates(path.read_bytes(), passphrase.encode())
    return sha(cert)


def base_args(part: dict, **extra) -> dict:
    args = {
        "platform": "core", "api_url": part["api_url"], "ca_path": part["ca_file"],
        "username": part["credentials"]["username"], "password": part["credentials"]["password"],
        "nodes": [{"name": n["name"], "host": n["host"], "port": n["port"], "host_key": n["host_key"]}
                  for n in part["nodes"]],
        "sftp_username": part["sftp"]["username"], "sftp_password": part["sftp"]["password"],
        "pkcs12_passphrase": PASS, "name_prefix": "sip",
    }
    args.update(extra)
    return args


def info_args(part: dict) -> dict:
    args = base_args(part)
    del args["name_prefix"]
    return args


@pytest.fixture(scope="module")
def core(lab):
    return lab.part("ribbon_core")


def set_auth_client(part: dict, on: bool) -> None:
    """PATCH the SIP port's tlsProfile authClient through the REST API (sbc-apis.md B3), as an operator would."""
    import base64

    body = (f"<tlsProfile><name>{part['tls_profile']}</name><authClient>{'true' if on else 'false'}</authClient>"
            "</tlsProfile>").encode()
    cred = base64.b64encode(f"{part['credentials']['username']}:{part['credentials']['password']}".encode()).decode()
    req = urllib.request.Request(f"{part['api_url']}/api/config/profiles/security/tlsProfile/{part['tls_profile']}",
                                 data=body, method="PATCH",
                                 headers={"Authorization": f"Basic {cred}", "Content-Type": "application/vnd.yang.data+xml"})
    with urllib.request.urlopen(req, context=ssl.create_default_context(cafile=part["ca_file"]), timeout=10) as resp:
        assert resp.status in (200, 204)


@pytest.fixture(scope="module", autouse=True)
def without_mutual_auth(core):
    """The lab's pair starts with mutual authentication on (authClient true; tested in test_lab_truth.py). These
    tests look at the served certificate with a client that has no certificate, so they turn it off for this file
    and restore it afterwards."""
    set_auth_client(core, False)
    yield
    set_auth_client(core, core.get("mutual_auth", False))


@pytest.fixture(scope="module")
def lab_ca(lab) -> str:
    return Path(lab.ca_file).read_text()


@pytest.fixture(scope="module")
def ca():
    return make_ca("Ribbon Core test issuing CA")


def ensure_healthy(core):
    control(core, "sync", {"status": "syncCompleted"})
    for n in ("a", "b"):
        control(core, "sftp", {"node": n, "down": False, "readonly": False})
    st = control(core, "state")
    if next(n for n in st["nodes"] if n["name"] == "a")["role"] != "active":
        control(core, "switchover", {})


# ------------------------------------------------------------------------------------------------ tests
def test_rotate_check_mode_idempotence_switchover_and_rollback(core, ca, lab_ca, run_module):
    ensure_healthy(core)
    ca_pem = pem(ca[0])
    cert, key = issue(ca, [core["sip_tls"]["server_name"]])
    args = base_args(core, certificate=pem(cert), private_key=key_pem(key), ca_certificates=[ca_pem])
    before = served(core, lab_ca)
    assert before["ok"] and before["peer_sha256"] == core["initial"]["fingerprint"]

    # check mode: predicts a change, touches nothing
    res = run_module("ribbon_certificate", args, check=True, diff=True)
    assert res["changed"] is True, res
    assert res["diff"]["before"]["server_cert_name"] == "lab-initial"
    st = control(core, "state")
    assert st["profiles"]["defaultTlsProfile"]["serverCertName"] == "lab-initial"
    assert all(res["file_name"] not in n["files"] for n in st["nodes"])

    # apply
    res = run_module("ribbon_certificate", args, diff=True)
    assert res["changed"] is True and not res.get("failed"), res
    name, file_name = res["certificate_name"], res["file_name"]
    assert res["previous"] == "lab-initial"
    assert sorted(res["uploaded_to"]) == ["a", "b"]
    assert "PRIVATE KEY" not in res["_stdout"] and PASS not in res["_stdout"]
    # both nodes hold the file (read from each node's disk, opened with the passphrase)
    assert node_fingerprint(core, "a", file_name) == sha(cert)
    assert node_fingerprint(core, "b", file_name) == sha(cert)
    st = control(core, "state")
    assert st["profiles"]["defaultTlsProfile"]["serverCertName"] == name
    assert st["certificates"][name]["type"] == "local"
    assert any(c["type"] == "remote" for c in st["certificates"].values())
    # the SIP-TLS listener serves the new certificate, and it verifies against the issuing CA
    now = served(core, ca_pem)
    assert now["ok"], now
    assert now["peer_sha256"] == sha(cert)

    # idempotent
    again = run_module("ribbon_certificate", args)
    assert again["changed"] is False, again

    # switchover: the new active serves it too (config replicated, file present on b)
    control(core, "switchover", {})
    st = control(core, "state")
    assert next(n for n in st["nodes"] if n["name"] == "b")["role"] == "active"
    after_sw = served(core, ca_pem)
    assert after_sw["ok"] and after_sw["peer_sha256"] == sha(cert), after_sw

    # forced rollback: re-point to the previous object; the previous certificate is served at once
    rb = run_module("ribbon_certificate", base_args(core, state="rollback", rollback_to=res["previous"]), diff=True)
    assert rb["changed"] is True and rb["certificate_name"] == "lab-initial", rb
    assert control(core, "state")["profiles"]["defaultTlsProfile"]["serverCertName"] == "lab-initial"
    old = served(core, lab_ca)
    assert old["ok"] and old["peer_sha256"] == core["initial"]["fingerprint"], old
    rb2 = run_module("ribbon_certificate", base_args(core, state="rollback", rollback_to="lab-initial"))
    assert rb2["changed"] is False

    # and forward again: the object still exists, so only the profile moves
    fwd = run_module("ribbon_certificate", args)
    assert fwd["changed"] is True and fwd["uploaded_to"] == [], fwd
    assert served(core, ca_pem)["peer_sha256"] == sha(cert)
    control(core, "switchover", {})


def test_sftp_failure_on_standby_repoints_nothing(core, ca, lab_ca, run_module):
    ensure_healthy(core)
    st0 = control(core, "state")
    bound0 = st0["profiles"]["defaultTlsProfile"]["serverCertName"]
    fp0 = st0["loaded"][bound0]["fingerprint"]
    cert, key = issue(ca, [core["sip_tls"]["server_name"]], days=21)
    args = base_args(core, certificate=pem(cert), private_key=key_pem(key), ca_certificates=[pem(ca[0])])
    try:
        control(core, "sftp", {"node": "b", "down": True})
        res = run_module("ribbon_certificate", args)
        assert res.get("failed") is True, res
        assert "node b" in res["msg"] and "Traceback" not in res["_stdout"], res["msg"]
        st = control(core, "state")
        assert st["profiles"]["defaultTlsProfile"]["serverCertName"] == bound0
        assert all(not f.endswith(".p12") or f != res.get("file_name") for n in st["nodes"] for f in n["files"])
        assert served(core, pem(ca[0]) + lab_ca)["peer_sha256"] == fp0

        # a standby that refuses writes (disk full, permissions): also nothing re-pointed
        control(core, "sftp", {"node": "b", "down": False, "readonly": True})
        res = run_module("ribbon_certificate", args)
        assert res.get("failed") is True and "node b" in res["msg"], res
        assert control(core, "state")["profiles"]["defaultTlsProfile"]["serverCertName"] == bound0
        assert served(core, pem(ca[0]) + lab_ca)["peer_sha256"] == fp0
    finally:
        control(core, "sftp", {"node": "b", "down": False, "readonly": False})
    res = run_module("ribbon_certificate", args)
    assert res["changed"] is True and not res.get("failed"), res
    assert served(core, pem(ca[0]))["peer_sha256"] == sha(cert)


def test_missing_file_on_standby_is_seen_and_repaired(core, ca, run_module):
    """The emulator's HA model: config replicates, files do not. A node without the file fails after a
    switchover; the module compares per node and re-uploads."""
    ensure_healthy(core)
    cert, key = issue(ca, [core["sip_tls"]["server_name"]], days=22)
    args = base_args(core, certificate=pem(cert), private_key=key_pem(key), ca_certificates=[pem(ca[0])])
    res = run_module("ribbon_certificate", args)
    assert res["changed"] is True, res
    root_b = Path(next(n["root"] for n in core["nodes"] if n["name"] == "b"))
    (root_b / res["file_name"]).unlink()

    info = run_module("ribbon_certificate_info", info_args(core))
    assert info["bound"]["name"] == res["certificate_name"]
    assert info["bound"]["nodes"]["a"]["fingerprint"] == sha(cert)
    assert info["bound"]["nodes"]["b"]["present"] is False

    control(core, "switchover", {})  # b becomes active without the file: the object fails, no TLS served
    broken = served(core, pem(ca[0]))
    assert not broken["ok"] and broken["stage"] == "tls", broken
    assert "error" in control(core, "state")["loaded"][res["certificate_name"]]
    control(core, "switchover", {})

    fix = run_module("ribbon_certificate", args)
    assert fix["changed"] is True and fix["uploaded_to"] == ["b"], fix
    assert node_fingerprint(core, "b", res["file_name"]) == sha(cert)
    control(core, "switchover", {})
    assert served(core, pem(ca[0]))["peer_sha256"] == sha(cert)
    control(core, "switchover", {})


def test_ha_gate_refuses_while_syncing(core, ca, run_module):
    ensure_healthy(core)
    cert, key = issue(ca, [core["sip_tls"]["server_name"]], days=23)
    args = base_args(core, certificate=pem(cert), private_key=key_pem(key))
    bound0 = control(core, "state")["profiles"]["defaultTlsProfile"]["serverCertName"]
    try:
        control(core, "sync", {"status": "syncInProgress"})
        res = run_module("ribbon_certificate", args)
        assert res.get("failed") is True and "syncInProgress" in res["msg"], res
        st = control(core, "state")
        assert st["profiles"]["defaultTlsProfile"]["serverCertName"] == bound0
        assert all(not any(sha(cert)[:8] in f for f in n["files"]) for n in st["nodes"])
    finally:
        control(core, "sync", {"status": "syncCompleted"})


def test_pruning_keeps_previous_and_retain(core, ca, run_module):
    ensure_healthy(core)
    names = []
    for days in (24, 25, 26):
        cert, key = issue(ca, [core["sip_tls"]["server_name"]], days=days)
        res = run_module("ribbon_certificate", base_args(
            core, certificate=pem(cert), private_key=key_pem(key), name_prefix="prune", retain=1))
        assert res["changed"] is True, res
        names.append((res["certificate_name"], res["file_name"]))
    st = control(core, "state")
    assert names[2][0] in st["certificates"] and names[1][0] in st["certificates"]
    assert names[0][0] not in st["certificates"]  # beyond retain=1
    for n in st["nodes"]:
        assert names[0][1] not in n["files"] and names[1][1] in n["files"]
    rb = run_module("ribbon_certificate", base_args(core, state="rollback", name_prefix="prune"))
    assert rb["changed"] is True and rb["certificate_name"] == names[1][0], rb


def test_info_reports_objects_binding_and_ha(core, run_module):
    ensure_healthy(core)
    info = run_module("ribbon_certificate_info", info_args(core))
    assert info.get("failed") is not True, info
    assert info["ha"]["pair"] is True and info["ha"]["in_sync"] is True and info["ha"]["active"] == "a"
    bound = control(core, "state")["profiles"]["defaultTlsProfile"]["serverCertName"]
    assert info["bound"]["name"] == bound
    assert any(c["name"] == bound and "defaultTlsProfile.serverCertName" in c["bound_by"] for c in info["certificates"])
    control(core, "sync", {"status": "syncInProgress"})
    try:
        info = run_module("ribbon_certificate_info", info_args(core))
        assert info["ha"]["in_sync"] is False and info["ha"]["problems"]
    finally:
        control(core, "sync", {"status": "syncCompleted"})


@pytest.mark.parametrize("change, field", [
    ({"certificate": "not a pem"}, "certificate"),
    ({"private_key": "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n"}, "private_key"),
    ({"nodes": []}, "nodes"),
    ({"pkcs12_passphrase": ""}, "pkcs12_passphrase"),
    ({"api_url": "sbc.example.com"}, "api_url"),
    ({"tls_profile": "x" * 30}, "tls_profile"),
    ({"key_custody": "device"}, "key_custody"),
])
def test_bad_input_is_refused_before_the_device(core, ca, run_module, change, field):
    cert, key = issue(ca, [core["sip_tls"]["server_name"]])
    other_cert, other_key = issue(ca, ["other.example.test"])
    args = base_args(core, certificate=pem(cert), private_key=key_pem(key))
    args.update(change)
    before = len(control(core, "requests"))
    res = run_module("ribbon_certificate", args)
    assert res.get("failed") is True, res
    assert res["msg"].startswith(f"{field}:"), res["msg"]
    assert "Traceback" not in res["_stdout"]
    # nothing reached the device (only our own /_control/requests calls are in the log)
    log = control(core, "requests")
    assert [r for r in log[before:] if not r[1].startswith("/_control/")] == []


def test_key_mismatch_is_refused(core, ca, run_module):
    cert, _key = issue(ca, [core["sip_tls"]["server_name"]])
    _other, other_key = issue(ca, ["other.example.test"])
    res = run_module("ribbon_certificate", base_args(core, certificate=pem(cert), private_key=key_pem(other_key)))
    assert res.get("failed") is True and res["msg"].startswith("private_key:"), res


# ------------------------------------------------------------------------------------------------ issue 9 section 5, issue 10
def node_files(core) -> dict:
    """File name -> sha256 per node, read from each node's SFTP root by the emulator (its /_control/state)."""
    return {n["name"]: dict(n["files"]) for n in control(core, "state")["nodes"]}


def device_requests_since(core, before: int) -> list:
    return [r for r in control(core, "requests")[before:] if not r[1].startswith("/_control/")]


def test_rollback_is_idempotent_and_previous_is_returned_on_every_run(core, ca, run_module):
    """Before the fix: a second rollback flipped back to the newest object (changed=True every run), and a run
    that changed nothing returned previous: null."""
    ensure_healthy(core)
    ca_pem = pem(ca[0])
    older, older_key = issue(ca, [core["sip_tls"]["server_name"]], days=40)
    newer, newer_key = issue(ca, [core["sip_tls"]["server_name"]], days=41)
    first = run_module("ribbon_certificate", base_args(core, certificate=pem(older), private_key=key_pem(older_key),
                                                       ca_certificates=[ca_pem], name_prefix="idem"))
    assert first["changed"] is True and not first.get("failed"), first
    args = base_args(core, certificate=pem(newer), private_key=key_pem(newer_key), ca_certificates=[ca_pem],
                     name_prefix="idem")
    second = run_module("ribbon_certificate", args)
    assert second["changed"] is True and second["previous"] == first["certificate_name"], second
    noop = run_module("ribbon_certificate", args)
    assert noop["changed"] is False and noop["previous"] == first["certificate_name"], noop
    check = run_module("ribbon_certificate", args, check=True)
    assert check["changed"] is False and check["previous"] == first["certificate_name"], check

    rb_args = base_args(core, state="rollback", name_prefix="idem")
    rb = run_module("ribbon_certificate", rb_args)
    assert rb["changed"] is True and rb["certificate_name"] == first["certificate_name"], rb
    assert control(core, "state")["profiles"]["defaultTlsProfile"]["serverCertName"] == first["certificate_name"]
    assert served(core, ca_pem)["peer_sha256"] == sha(older)
    for _attempt in range(2):  # and again: nothing changes, the same certificate is served
        again = run_module("ribbon_certificate", rb_args)
        assert again["changed"] is False and again["certificate_name"] == first["certificate_name"], again
        assert control(core, "state")["profiles"]["defaultTlsProfile"]["serverCertName"] == first["certificate_name"]
        assert served(core, ca_pem)["peer_sha256"] == sha(older)
    # forward again with state=present: only the profile moves
    fwd = run_module("ribbon_certificate", args)
    assert fwd["changed"] is True and fwd["uploaded_to"] == [] and fwd["previous"] == first["certificate_name"], fwd
    assert served(core, ca_pem)["peer_sha256"] == sha(newer)


@pytest.mark.parametrize("prefix", ["..", "bÿoc", "a..b"])
def test_a_name_the_device_refuses_is_refused_before_any_upload(core, ca, run_module, prefix):
    """Before the fix: '..' and non-ASCII letters passed the local check, the PKCS#12 (with the key) and the CA file
    went to both nodes, and only then did the REST API refuse the object name."""
    ensure_healthy(core)
    cert, key = issue(ca, [core["sip_tls"]["server_name"]], days=42)
    files0 = node_files(core)
    before = len(control(core, "requests"))
    res = run_module("ribbon_certificate", base_args(core, certificate=pem(cert), private_key=key_pem(key),
                                                     ca_certificates=[pem(ca[0])], name_prefix=prefix))
    assert res.get("failed") is True and res["msg"].startswith("name_prefix:"), res
    assert "Traceback" not in res["_stdout"]
    assert node_files(core) == files0  # nothing landed on either node
    assert device_requests_since(core, before) == []


def test_failed_upload_to_node_b_leaves_nothing_on_node_a(core, ca, run_module):
    """Before the fix: node a kept the PKCS#12 (with the key) and the CA file, and the message did not say so."""
    ensure_healthy(core)
    new_ca = make_ca("Ribbon Core half-written CA")
    cert, key = issue(new_ca, [core["sip_tls"]["server_name"]], days=43)
    files0 = node_files(core)
    bound0 = control(core, "state")["profiles"]["defaultTlsProfile"]["serverCertName"]
    try:
        control(core, "sftp", {"node": "b", "down": False, "readonly": True})
        res = run_module("ribbon_certificate", base_args(core, certificate=pem(cert), private_key=key_pem(key),
                                                         ca_certificates=[pem(new_ca[0])], name_prefix="half"))
    finally:
        control(core, "sftp", {"node": "b", "down": False, "readonly": False})
    assert res.get("failed") is True and "node b" in res["msg"], res
    assert "removed again" in res["msg"] and "on node a" in res["msg"], res["msg"]
    assert res["left_behind"] == [] and len(res["cleaned_up"]) == 2, res
    assert node_files(core) == files0
    st = control(core, "state")
    assert st["profiles"]["defaultTlsProfile"]["serverCertName"] == bound0
    assert not any(n.startswith("half-") for n in st["certificates"])


@pytest.mark.parametrize("fault", [
    {"method": "PUT", "path": r"/certificate/half-ca-", "message": "remote certificate refused"},
    {"method": "PUT", "path": r"/certificate/half-\d{8}-", "message": "local certificate refused"},
    {"method": "PATCH", "path": r"/tlsProfile/", "message": "profile refused"},
])
def test_rest_failure_after_upload_removes_files_and_objects(core, run_module, fault):
    ensure_healthy(core)
    new_ca = make_ca("Ribbon Core REST fault CA")
    cert, key = issue(new_ca, [core["sip_tls"]["server_name"]], days=44)
    files0 = node_files(core)
    st0 = control(core, "state")
    control(core, "fault", fault)
    res = run_module("ribbon_certificate", base_args(core, certificate=pem(cert), private_key=key_pem(key),
                                                     ca_certificates=[pem(new_ca[0])], name_prefix="half"))
    assert res.get("failed") is True and fault["message"] in res["msg"], res
    assert "removed again" in res["msg"] and res["left_behind"] == [], res
    assert node_files(core) == files0  # the PKCS#12 and the CA file are gone from both nodes
    st = control(core, "state")
    assert st["certificates"] == st0["certificates"] and st["profiles"] == st0["profiles"]


@pytest.mark.parametrize("case", ["expired_leaf", "ca_as_leaf", "leaf_in_ca_certificates", "expired_ca"])
def test_the_gate_refuses_what_the_device_should_never_get(core, ca, run_module, case):
    """Before the fix SBC Core bound an expired leaf and a CA given as the server certificate, and installed a leaf
    from ca_certificates as a remote CA object. Now: refused naming the field, no request reaches the device."""
    ensure_healthy(core)
    name = core["sip_tls"]["server_name"]
    cert, key = issue(ca, [name], days=45)
    args = base_args(core, certificate=pem(cert), private_key=key_pem(key), ca_certificates=[pem(ca[0])])
    now = datetime.datetime.now(datetime.timezone.utc)
    if case == "expired_leaf":
        ekey = ec.generate_private_key(ec.SECP256R1())
        old = (x509.CertificateBuilder().subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)]))
               .issuer_name(ca[0].subject).public_key(ekey.public_key()).serial_number(x509.random_serial_number())
               .not_valid_before(now - datetime.timedelta(days=20)).not_valid_after(now - datetime.timedelta(days=1))
               .sign(ca[1], hashes.SHA256()))
        args.update(certificate=pem(old), private_key=key_pem(ekey))
        field = "certificate"
    elif case == "ca_as_leaf":
        args.update(certificate=pem(ca[0]), private_key=key_pem(ca[1]))
        field = "certificate"
    elif case == "leaf_in_ca_certificates":
        other, _k = issue(ca, ["other.example.test"])
        args.update(ca_certificates=[pem(other)])
        field = "ca_certificates[0]"
    else:
        rkey = ec.generate_private_key(ec.SECP256R1())
        rname = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Expired root")])
        old_root = (x509.CertificateBuilder().subject_name(rname).issuer_name(rname).public_key(rkey.public_key())
                    .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(days=20))
                    .not_valid_after(now - datetime.timedelta(days=1))
                    .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
                    .sign(rkey, hashes.SHA256()))
        args.update(ca_certificates=[pem(ca[0]), pem(old_root)])
        field = "ca_certificates[1]"
    files0 = node_files(core)
    before = len(control(core, "requests"))
    res = run_module("ribbon_certificate", args)
    assert res.get("failed") is True and res["msg"].startswith(f"{field}:"), res
    assert "Traceback" not in res["_stdout"]
    assert device_requests_since(core, before) == [] and node_files(core) == files0
    if case == "expired_ca":  # allowed explicitly: installed, with a warning naming it
        res = run_module("ribbon_certificate", dict(args, allow_expired_ca=True))
        assert res["changed"] is True and not res.get("failed"), res
        assert any("ca_certificates[1]" in w for w in res.get("warnings", [])), res
        assert "Expired root" in res["_stdout"]


def test_401_names_user_name_and_password_and_the_url(core, run_module):
    res = run_module("ribbon_certificate_info", dict(info_args(core), password="wrong-password-x"))
    assert res.get("failed") is True, res
    assert "user name and password" in res["msg"] and core["api_url"] in res["msg"], res["msg"]
    assert "API key" not in res["msg"] and "wrong-password-x" not in res["_stdout"]


def test_no_secret_in_any_output_of_the_failure_paths(core, ca, run_module):
    """Every secret option set to a marker; each failure path run at -vvv; the marker appears nowhere."""
    mark = "MARKER-ribbon-" + hashlib.sha256(str(datetime.datetime.now()).encode()).hexdigest()[:10]
    ensure_healthy(core)
    cert, key = issue(ca, [core["sip_tls"]["server_name"]], days=46)
    enc_key = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                serialization.BestAvailableEncryption(f"{mark}-key".encode())).decode()
    good = base_args(core, certificate=pem(cert), private_key=enc_key, private_key_passphrase=f"{mark}-key",
                     pkcs12_passphrase=f"{mark}-p12", ca_certificates=[pem(ca[0])], name_prefix="mark")
    cases = {
        "nodes as a string": dict(good, nodes="a,b"),
        "REST 401": dict(good, password=f"{mark}-rest"),
        "SFTP login refused": dict(good, sftp_password=f"{mark}-sftp"),
        "key given as the certificate": dict(good, ca_certificates=[key_pem(key)]),
        "REST failure after upload": good,
    }
    files0 = node_files(core)
    for what, args in cases.items():
        if what == "REST failure after upload":
            control(core, "fault", {"method": "PUT", "path": r"/certificate/mark-\d{8}-", "message": "refused"})
        res = run_module("ribbon_certificate", args, verbosity=3)
        assert res.get("failed") is True, (what, res)
        assert mark not in res["_stdout"], what
        assert "PRIVATE KEY-----\nMI" not in res["_stdout"] and key_pem(key).splitlines()[1] not in res["_stdout"], what
    assert node_files(core) == files0


# ------------------------------------------------------------------------------------------------ state=pruned
def issue_since(ca, names: list[str], days: int, issued_days_ago: int):
    """A leaf issued ``issued_days_ago`` days ago (its notBefore), valid for ``days`` more days from now."""
    ca_cert, ca_key = ca
    key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, names[0])]))
            .issuer_name(ca_cert.subject).public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(days=issued_days_ago))
            .not_valid_after(now + datetime.timedelta(days=days))
            .add_extension(x509.SubjectAlternativeName([x509.DNSName(n) for n in names]), critical=False)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .sign(ca_key, hashes.SHA256()))
    return cert, key


def test_present_no_longer_prunes_and_pruned_waits_for_the_grace_period(core, ca, run_module):
    """Four rotations under one prefix: state=present removes nothing by default; state=pruned removes the objects
    older than current and previous (with their files on both nodes) once their replacement is grace_period old."""
    ensure_healthy(core)
    name = core["sip_tls"]["server_name"]
    foreign = set(control(core, "state")["certificates"])  # the lab's own objects and other tests': never ours
    installed = []
    # v2 was issued 40 days ago, so v1 (which v2 replaced) is past a 30-day grace; v3 was issued now, so v2 is not.
    for days, ago in ((21, 45), (22, 40), (23, 0), (24, 0)):
        cert, key = issue_since(ca, [name], days, ago)
        res = run_module("ribbon_certificate", base_args(core, certificate=pem(cert), private_key=key_pem(key),
                                                         name_prefix="grace"))
        assert res["changed"] is True and res["pruned"] == [], res
        installed.append((res["certificate_name"], res["file_name"]))
    v1, v2, v3, v4 = installed
    st = control(core, "state")
    assert all(n in st["certificates"] for n, _f in installed), "state=present must not prune without retain"

    # check mode, grace 0: v1 and v2 would go; v4 (bound) and v3 (previous) stay; nothing is touched
    res = run_module("ribbon_certificate", base_args(core, state="pruned", name_prefix="grace", grace_period=0),
                     check=True, diff=True)
    assert res["changed"] is True and sorted(res["pruned"]) == sorted([v1[0], v2[0]]), res
    assert {v["name"]: v["verdict"] for v in res["prune"]} == {v4[0]: "in use", v3[0]: "in use", v2[0]: "pruned",
                                                               v1[0]: "pruned"}
    assert res["previous"] == v3[0] and res["diff"]["after"]["versioned_objects"] == [v4[0], v3[0]]
    assert control(core, "state") == st

    # default grace (30 days): only v1, whose replacement (v2) was issued 40 days ago
    res = run_module("ribbon_certificate", base_args(core, state="pruned", name_prefix="grace"))
    assert res["changed"] is True and res["pruned"] == [v1[0]], res
    waiting = [v for v in res["prune"] if v["verdict"] == "waiting"]
    assert [v["name"] for v in waiting] == [v2[0]] and waiting[0]["prune_after"]
    st = control(core, "state")
    assert v1[0] not in st["certificates"] and all(n in st["certificates"] for n, _f in installed[1:])
    for node in st["nodes"]:
        assert v1[1] not in node["files"] and all(f in node["files"] for _n, f in installed[1:])
        for n in ("a", "b"):
            if node["name"] == n:
                assert node_fingerprint(core, n, v1[1]) is None
    assert foreign <= set(st["certificates"]), "objects that are not ours are never pruned"
    assert st["profiles"]["defaultTlsProfile"]["serverCertName"] == v4[0]

    # idempotent with the same grace
    again = run_module("ribbon_certificate", base_args(core, state="pruned", name_prefix="grace"))
    assert again["changed"] is False and again["pruned"] == [], again

    # grace 0: v2 goes too; current and previous stay, and a rollback still goes to previous
    res = run_module("ribbon_certificate", base_args(core, state="pruned", name_prefix="grace", grace_period=0))
    assert res["pruned"] == [v2[0]], res
    rb = run_module("ribbon_certificate", base_args(core, state="rollback", name_prefix="grace"))
    assert rb["changed"] is True and rb["certificate_name"] == v3[0], rb
    # after the rollback, v4 is newer than the bound object (a roll-forward target): kept
    res = run_module("ribbon_certificate", base_args(core, state="pruned", name_prefix="grace", grace_period=0))
    assert res["changed"] is False, res
    assert {v["name"]: v["verdict"] for v in res["prune"]}[v4[0]] == "kept"


def test_pruned_is_refused_for_edge_and_without_nodes(core, run_module):
    res = run_module("ribbon_certificate", base_args(core, platform="edge", state="pruned"))
    assert res.get("failed") is True and res["msg"].startswith("state:") and "one server certificate" in res["msg"]
    res = run_module("ribbon_certificate", base_args(core, state="pruned", nodes=[]))
    assert res.get("failed") is True and res["msg"].startswith("nodes:"), res
    res = run_module("ribbon_certificate", base_args(core, state="pruned", grace_period=-1))
    assert res.get("failed") is True and res["msg"].startswith("grace_period:"), res
