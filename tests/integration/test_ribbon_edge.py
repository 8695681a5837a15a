"""Ribbon SBC Edge: ribbon_certificate / ribbon_certificate_info against the lab's SBC Edge emulator.

Observed independently of the module: real TLS handshakes to the SIP-TLS port, the emulator's certificate slots,
import history, logins and on-box key via /_control, and (device key custody) a real ACME order at the lab's Pebble
with DNS-01 answered through TSIG updates to the lab's BIND.
"""

from __future__ import annotations

import datetime
import hashlib
import json
import secrets
import ssl
import urllib.parse
import urllib.request
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from emulators.common.siptls import sip_options_probe


# ------------------------------------------------------------------------------------------------ helpers
def make_ca(cn: str, issuer=None):
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])
    now = datetime.datetime.now(datetime.timezone.utc)
    signer_cert, signer_key = issuer if issuer else (None, key)
    cert = (x509.CertificateBuilder().subject_name(name)
            .issuer_name(signer_cert.subject if signer_cert else name).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=30))
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(signer_key, hashes.SHA256()))
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


def control(part: dict, path: str, body: dict | None = None):
    ctx = ssl.create_default_context(cafile=part["ca_file"])
    req = urllib.request.Request(f"{part['control_url']}/{path}", method="POST" if body is not None else "GET",
                                 data=json.dumps(body).encode() if body is not None else None,
                                 headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, context=ctx, timeout=10) as resp:
        return json.loads(resp.read())


def served(part: dict, cadata: str, server_name: str | None = None) -> dict:
    s = part["sip_tls"]
    return sip_options_probe(s["host"], s["port"], cadata=cadata, server_name=server_name or s["server_name"])


def args_for(part: dict, **extra) -> dict:
    args = {"platform": "edge", "api_url": part["api_url"], "ca_path": part["ca_file"],
            "username": part["credentials"]["username"], "password": part["credentials"]["password"]}
    args.update(extra)
    return args


def raw_import(part: dict, cid: int, pem_text: str) -> str:
    """What a naive client does: log in and import directly, without the module (to show what the device says)."""
    ctx = ssl.create_default_context(cafile=part["ca_file"])
    opener = urllib.request.build_opener(urllib.request.HTTPSHandler(context=ctx))
    body = urllib.parse.urlencode({"Username": part["credentials"]["username"],
                                   "Password": part["credentials"]["password"]}).encode()
    with opener.open(urllib.request.Request(f"{part['api_url']}/rest/login", data=body), timeout=10) as resp:
        cookies = [c.split(";", 1)[0] for c in resp.headers.get_all("Set-Cookie")]
    jar = dict(c.split("=", 1) for c in cookies)
    body = urllib.parse.urlencode({"CertFileOperation": "1", "CertFileContent": pem_text,
                                   "CertFileName": "x.pem"}).encode()
    req = urllib.request.Request(f"{part['api_url']}/rest/certificate/{cid}?action=import", data=body,
                                 headers={"Cookie": "; ".join(cookies), "X-CSRF-Token": jar["csrfp_token"]})
    with opener.open(req, timeout=10) as resp:
        assert resp.status == 200
        return resp.read().decode()


@pytest.fixture(scope="module")
def edge(lab):
    return lab.part("ribbon_edge")


@pytest.fixture(scope="module")
def lab_ca(lab) -> str:
    return Path(lab.ca_file).read_text()


# ------------------------------------------------------------------------------------------------ tests
def test_external_key_ca_first_check_mode_idempotence(edge, lab_ca, run_module):
    root = make_ca("Edge test root")
    inter = make_ca("Edge test intermediate", issuer=root)
    cert, key = issue(inter, [edge["sip_tls"]["server_name"]])
    args = args_for(edge, certificate=pem(cert) + pem(inter[0]), private_key=key_pem(key),
                    ca_certificates=[pem(root[0])])
    assert served(edge, lab_ca)["peer_sha256"] == edge["initial"]["fingerprint"]

    res = run_module("ribbon_certificate", args, check=True, diff=True)
    assert res["changed"] is True, res
    st = control(edge, "state")
    assert st["certificates"]["1"]["fingerprint"] == edge["initial"]["fingerprint"]
    assert sha(root[0]) not in [c["fingerprint"] for c in st["certificates"].values()]
    n_imports = len(st["imports"])

    res = run_module("ribbon_certificate", args, diff=True)
    assert res["changed"] is True and not res.get("failed"), res
    assert "PRIVATE KEY" not in res["_stdout"]
    st = control(edge, "state")
    imports = st["imports"][n_imports:]
    # the CAs (root, then intermediate) went in before the server certificate, each accepted
    assert [i["code"] for i in imports] == [None, None, None], imports
    assert imports[-1]["id"] == 1 and all(i["id"] >= 2 for i in imports[:-1])
    slots = {c["fingerprint"]: i for i, c in st["certificates"].items()}
    assert sha(root[0]) in slots and sha(inter[0]) in slots and slots[sha(cert)] == "1"
    # the listener serves the new chain, verifying only against the new root
    now = served(edge, pem(root[0]))
    assert now["ok"], now
    assert now["peer_sha256"] == sha(cert)

    again = run_module("ribbon_certificate", args)
    assert again["changed"] is False, again
    assert len(control(edge, "state")["imports"]) == n_imports + 3


def test_wrong_order_is_prevented_not_discovered(edge, run_module):
    other_root = make_ca("Edge unknown root")
    cert, key = issue(other_root, [edge["sip_tls"]["server_name"]])
    st0 = control(edge, "state")
    res = run_module("ribbon_certificate", args_for(edge, certificate=pem(cert), private_key=key_pem(key)))
    assert res.get("failed") is True, res
    assert res["msg"].startswith("ca_certificates:") and "15020" in res["msg"], res["msg"]
    st = control(edge, "state")
    assert st["imports"] == st0["imports"]  # no import was even attempted
    assert st["certificates"]["1"] == st0["certificates"]["1"]
    # what the device would have said to a client that just tried: HTTP 200 with the error inside
    body = raw_import(edge, 1, pem(cert))
    assert "<http_code>500</http_code>" in body and 'code="15020"' in body
    assert control(edge, "state")["certificates"]["1"] == st0["certificates"]["1"]


def test_session_expiry_is_handled_by_logging_in_again(edge, run_module):
    root = make_ca("Edge session root")
    cert, key = issue(root, [edge["sip_tls"]["server_name"]], days=21)
    st0 = control(edge, "state")
    control(edge, "expire", {"after_requests": 2})  # the session dies (idle timeout) after two calls
    res = run_module("ribbon_certificate", args_for(edge, certificate=pem(cert), private_key=key_pem(key),
                                                    ca_certificates=[pem(root[0])]))
    assert res["changed"] is True and not res.get("failed"), res
    st = control(edge, "state")
    assert st["logins"] == st0["logins"] + 2, (st0["logins"], st["logins"])
    assert st["certificates"]["1"]["fingerprint"] == sha(cert)
    assert served(edge, pem(root[0]))["peer_sha256"] == sha(cert)


def test_error_inside_http_200_is_surfaced(edge, run_module):
    root = make_ca("Edge fault root")
    cert, key = issue(root, [edge["sip_tls"]["server_name"]], days=22)
    before = control(edge, "state")["certificates"]["1"]
    control(edge, "fault", {"path": r"^/rest/certificate/1$", "method": "POST", "code": 15017,
                            "params": "duplicate serial"})
    res = run_module("ribbon_certificate", args_for(edge, certificate=pem(cert), private_key=key_pem(key),
                                                    ca_certificates=[pem(root[0])]))
    assert res.get("failed") is True, res
    assert "HTTP 200" in res["msg"] and "15017" in res["msg"] and "/rest/certificate/1" in res["msg"], res["msg"]
    assert "Traceback" not in res["_stdout"]
    assert control(edge, "state")["certificates"]["1"] == before


def test_wrong_password_is_an_authentication_error(edge, run_module):
    res = run_module("ribbon_certificate_info", args_for(edge, password="wrong"))
    assert res.get("failed") is True and "refused the login" in res["msg"] and "HTTP 200" in res["msg"], res


def test_info_lists_slots_and_server(edge, run_module):
    info = run_module("ribbon_certificate_info", args_for(edge))
    assert info.get("failed") is not True, info
    st = control(edge, "state")
    assert info["bound"]["id"] == 1 and info["bound"]["fingerprint"] == st["certificates"]["1"]["fingerprint"]
    assert {str(c["id"]) for c in info["certificates"]} == set(st["certificates"])
    assert info["ha"]["pair"] is False


@pytest.mark.parametrize("change, field", [
    ({"certificate": "garbage"}, "certificate"),
    ({"private_key": None}, "private_key"),
    ({"ca_certificates": ["not pem"]}, "ca_certificates[0]"),
    ({"state": "rollback"}, "state"),
    ({"state": "csr", "key_custody": "device", "private_key": None}, "csr"),
    ({"state": "csr", "key_custody": "external"}, "state"),
])
def test_bad_input_is_refused_before_the_device(edge, run_module, change, field):
    root = make_ca("Edge bad input root")
    cert, key = issue(root, [edge["sip_tls"]["server_name"]])
    args = args_for(edge, certificate=pem(cert), private_key=key_pem(key))
    args.update(change)
    args = {k: v for k, v in args.items() if v is not None}
    before = len(control(edge, "requests"))
    res = run_module("ribbon_certificate", args)
    assert res.get("failed") is True, res
    assert res["msg"].startswith(f"{field}:"), res["msg"]
    assert "Traceback" not in res["_stdout"]
    assert [r for r in control(edge, "requests")[before:] if not r[1].startswith("/_control/")] == []


# ------------------------------------------------------------------------------------------------ device custody
def _acme_issue_for_csr(lab, csr_pem: str, name: str) -> tuple[str, list[str]]:
    """Order ``name`` at the lab's Pebble with the device's CSR, DNS-01 via TSIG updates to the lab's BIND."""
    import dns.message
    import dns.query
    import dns.rcode
    import dns.rdatatype
    import dns.tsig
    import dns.tsigkeyring
    import dns.update
    import josepy as jose
    from acme import challenges, client, messages

    pebble, bind = lab.part("pebble"), lab.part("bind")
    ring = dns.tsigkeyring.from_text({bind["tsig"]["name"]: bind["tsig"]["secret"]})
    host, port, zone = bind["primary"]["host"], int(bind["primary"]["port"]), bind["zones"]["direct"]

    def txt_update(fqdn: str, value: str, add: bool) -> None:
        msg = dns.update.UpdateMessage(zone, keyring=ring, keyname=bind["tsig"]["name"],
                                       keyalgorithm=dns.tsig.HMAC_SHA256)
        if add:
            msg.add(fqdn + ".", 60, "TXT", f'"{value}"')
        else:
            msg.delete(fqdn + ".", "TXT", f'"{value}"')
        assert dns.query.tcp(msg, host, port=port, timeout=5).rcode() == dns.rcode.NOERROR

    def txt(fqdn: str) -> list[str]:
        resp = dns.query.tcp(dns.message.make_query(fqdn, dns.rdatatype.TXT), host, port=port, timeout=5)
        return [b"".join(r.strings).decode() for rr in resp.answer if rr.rdtype == dns.rdatatype.TXT for r in rr]

    account = jose.JWKEC(key=ec.generate_private_key(ec.SECP256R1()))
    net = client.ClientNetwork(account, alg=jose.ES256, user_agent="byoc-ribbon-tests/1",
                               verify_ssl=pebble["ca_file"])
    acme = client.ClientV2(client.ClientV2.get_directory(pebble["directory"], net), net)
    acme.new_account(messages.NewRegistration.from_data(email="ops@example.test", terms_of_service_agreed=True))
    order = acme.new_order(csr_pem.encode())
    written = []
    try:
        for authz in order.authorizations:
            chall = next(c for c in authz.body.challenges if isinstance(c.chall, challenges.DNS01))
            record = chall.chall.validation_domain_name(authz.body.identifier.value)
            value = chall.chall.validation(account)
            txt_update(record, value, True)
            written.append((record, value))
            assert value in txt(record)  # really served before Pebble looks
            acme.answer_challenge(chall, chall.chall.response(account))
        final = acme.poll_and_finalize(order, datetime.datetime.now() + datetime.timedelta(seconds=120))
    finally:
        for record, value in written:
            txt_update(record, value, False)
    return final.fullchain_pem, pebble["roots"]


def test_device_key_custody_end_to_end_with_acme(lab, edge, run_module):
    try:
        lab.part("pebble")
        lab.part("bind")
    except Exception as exc:  # noqa: BLE001 - the ACME parts belong to other lab parts
        pytest.skip(f"lab parts pebble/bind not available: {exc}")
    name = f"edge-{secrets.token_hex(3)}.{lab.part('bind')['zones']['direct']}"
    st0 = control(edge, "state")

    # step 1: the SBC generates the key pair and the CSR; only the CSR comes back
    res = run_module("ribbon_certificate", args_for(edge, state="csr", key_custody="device",
                                                    csr={"common_name": name, "subject_alt_names": [name]}))
    assert res["changed"] is True and "BEGIN CERTIFICATE REQUEST" in res["csr"], res
    assert "PRIVATE KEY" not in res["_stdout"]
    csr = x509.load_pem_x509_csr(res["csr"].encode())
    st = control(edge, "state")
    pending = hashlib.sha256(csr.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)).hexdigest()
    assert st["pending_key_sha256"] == pending and st["csr_count"] == st0["csr_count"] + 1

    # ACME (Pebble, DNS-01 via BIND) signs the device's CSR
    fullchain, roots = _acme_issue_for_csr(lab, res["csr"], name)
    chain = x509.load_pem_x509_certificates(fullchain.encode())
    root_pem = "".join(Path(p).read_text() for p in roots)

    # step 2: import the signed certificate; the root goes in first, the intermediate travels with the leaf
    args = args_for(edge, key_custody="device", certificate=fullchain, ca_certificates=[Path(roots[0]).read_text()])
    res = run_module("ribbon_certificate", args)
    assert res["changed"] is True and not res.get("failed"), res
    st = control(edge, "state")
    assert st["certificates"]["1"]["fingerprint"] == sha(chain[0])
    # the key in use is the one generated on the box for the CSR: it never left the emulator
    assert st["server_key_sha256"] == pending and st["pending_key_sha256"] is None
    probe = served(edge, root_pem, server_name=name)
    assert probe["ok"], probe
    assert probe["peer_sha256"] == sha(chain[0])

    again = run_module("ribbon_certificate", args)
    assert again["changed"] is False, again


# ------------------------------------------------------------------------------------------------ issue 9 section 5, issue 10
def test_previous_is_returned_on_a_run_that_changes_nothing(edge, run_module):
    """Before the fix a run that changed nothing returned previous: null, so a caller lost the rollback target."""
    root = make_ca(f"Edge previous root {secrets.token_hex(3)}")
    cert, key = issue(root, [edge["sip_tls"]["server_name"]], days=30)
    args = args_for(edge, certificate=pem(cert), private_key=key_pem(key), ca_certificates=[pem(root[0])])
    was = control(edge, "state")["certificates"]["1"]["fingerprint"]
    first = run_module("ribbon_certificate", args)
    assert first["changed"] is True and first["previous"] == was, first
    st = control(edge, "state")
    assert st["certificates"]["1"]["fingerprint"] == sha(cert)
    assert was in st["certificates"]["1"]["name"] and len(st["certificates"]["1"]["name"]) <= 80  # C3: max 80
    again = run_module("ribbon_certificate", args)
    assert again["changed"] is False and again["previous"] == was, again
    check = run_module("ribbon_certificate", args, check=True)
    assert check["changed"] is False and check["previous"] == was, check
    assert served(edge, pem(root[0]))["peer_sha256"] == sha(cert)


@pytest.mark.parametrize("custody", ["external", "device"])
def test_an_expired_leaf_is_refused_before_the_device(edge, run_module, custody):
    """Before the fix SBC Edge imported an expired leaf into slot 1 (AudioCodes refused the same input)."""
    root = make_ca(f"Edge expired-leaf root {secrets.token_hex(3)}")
    key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.datetime.now(datetime.timezone.utc)
    old = (x509.CertificateBuilder()
           .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, edge["sip_tls"]["server_name"])]))
           .issuer_name(root[0].subject).public_key(key.public_key()).serial_number(x509.random_serial_number())
           .not_valid_before(now - datetime.timedelta(days=30)).not_valid_after(now - datetime.timedelta(days=1))
           .sign(root[1], hashes.SHA256()))
    args = args_for(edge, certificate=pem(old), key_custody=custody, ca_certificates=[pem(root[0])])
    if custody == "external":
        args["private_key"] = key_pem(key)
    st0 = control(edge, "state")
    before = len(control(edge, "requests"))
    res = run_module("ribbon_certificate", args)
    assert res.get("failed") is True and res["msg"].startswith("certificate:") and "expired" in res["msg"], res
    assert "Traceback" not in res["_stdout"]
    assert [r for r in control(edge, "requests")[before:] if not r[1].startswith("/_control/")] == []
    assert control(edge, "state")["certificates"] == st0["certificates"]


def test_an_expired_ca_needs_allow_expired_ca(edge, run_module):
    live = make_ca(f"Edge live root {secrets.token_hex(3)}")
    rkey = ec.generate_private_key(ec.SECP256R1())
    now = datetime.datetime.now(datetime.timezone.utc)
    rname = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, f"Edge expired root {secrets.token_hex(3)}")])
    old_root = (x509.CertificateBuilder().subject_name(rname).issuer_name(rname).public_key(rkey.public_key())
                .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(days=30))
                .not_valid_after(now - datetime.timedelta(days=1))
                .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
                .sign(rkey, hashes.SHA256()))
    cert, key = issue(live, [edge["sip_tls"]["server_name"]], days=31)
    args = args_for(edge, certificate=pem(cert), private_key=key_pem(key),
                    ca_certificates=[pem(live[0]), pem(old_root)])
    st0 = control(edge, "state")
    res = run_module("ribbon_certificate", args)
    assert res.get("failed") is True and res["msg"].startswith("ca_certificates[1]:"), res
    assert control(edge, "state")["certificates"] == st0["certificates"]
    res = run_module("ribbon_certificate", dict(args, allow_expired_ca=True))
    assert res["changed"] is True and not res.get("failed"), res
    assert any("ca_certificates[1]" in w for w in res.get("warnings", [])), res
    assert sha(old_root) in [c["fingerprint"] for c in control(edge, "state")["certificates"].values()]


def test_a_failed_server_import_removes_the_ca_slots_this_run_filled(edge, run_module):
    """Before the fix the CA certificates imported first stayed in their slots when slot 1's import failed."""
    root = make_ca(f"Edge half-written root {secrets.token_hex(3)}")
    inter = make_ca(f"Edge half-written intermediate {secrets.token_hex(3)}", issuer=root)
    cert, key = issue(inter, [edge["sip_tls"]["server_name"]], days=32)
    st0 = control(edge, "state")
    control(edge, "fault", {"path": r"^/rest/certificate/1$", "method": "POST", "code": 15017,
                            "params": "duplicate serial"})
    res = run_module("ribbon_certificate", args_for(edge, certificate=pem(cert) + pem(inter[0]),
                                                    private_key=key_pem(key), ca_certificates=[pem(root[0])]))
    assert res.get("failed") is True and "15017" in res["msg"], res
    assert "removed again" in res["msg"] and len(res["cleaned_up"]) == 2 and res["left_behind"] == [], res
    st = control(edge, "state")
    assert st["certificates"] == st0["certificates"]  # both CA slots emptied again, slot 1 untouched
    new_imports = st["imports"][len(st0["imports"]):]  # the two CA imports succeeded before slot 1 was refused
    assert len(new_imports) == 2 and all(i["id"] >= 2 and i["code"] is None for i in new_imports), new_imports
