# Copyright (c) 2026, byoc.certificates contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""SBC Edge logic: the <root><status> envelope (errors inside HTTP 200), re-login on expiry, CA ordering."""

from __future__ import annotations

import datetime

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from ansible_collections.byoc.certificates.plugins.module_utils import _pem
from ansible_collections.byoc.certificates.plugins.module_utils._errors import (
    ApiError,
    AuthenticationFailure,
    InputError,
)
from ansible_collections.byoc.certificates.plugins.module_utils._http import Response
from ansible_collections.byoc.certificates.plugins.module_utils._ribbon import common, edge

OK = b'<?xml version="1.0"?><root><status><http_code>200</http_code></status></root>'


def err(code, app=None):
    entry = f'<app_status href="x"><app_status_entry code="{app}" params="p|q"/></app_status>' if app else ""
    return f"<root><status><http_code>{code}</http_code>{entry}</status></root>".encode()


def test_describe_status():
    assert edge.describe_status(common.parse_xml(OK, "w")) is None
    text = edge.describe_status(common.parse_xml(err(500, 15020), "w"))
    assert "http_code 500" in text and "15020" in text and "import the issuing CA first" in text
    assert "no <status>" in edge.describe_status(common.parse_xml(b"<root/>", "w"))


class FakeHttp:
    """Stands in for HttpClient: answers from a script, records requests."""

    def __init__(self, answers):
        self.answers = list(answers)
        self.seen = []

    def url(self, path):
        return f"https://sbc/{path}"

    def request(self, method, path, data=None, headers=None, **_kw):
        self.seen.append((method, path, headers or {}))
        answer = self.answers.pop(0)
        if isinstance(answer, Exception):
            raise answer
        status, body, cookies = answer
        return Response(status, {}, body, cookies)


LOGIN = (200, OK, ["PHPSESSID=abc; Path=/", "csrfp_token=tok; Path=/"])


def client(answers):
    return edge.EdgeClient("https://sbc", "u", "p", http=FakeHttp(answers))


def test_cookie_and_csrf_header_are_sent():
    c = client([LOGIN, (200, OK, [])])
    c.call("GET", "rest/system")
    _m, _p, headers = c.http.seen[1]
    assert headers["Cookie"] == "PHPSESSID=abc; csrfp_token=tok" and headers["X-CSRF-Token"] == "tok"


def test_expired_session_logs_in_again_once():
    c = client([LOGIN, AuthenticationFailure("401"), LOGIN, (200, OK, [])])
    c.call("GET", "rest/certificate")
    assert [s[1] for s in c.http.seen] == ["rest/login", "rest/certificate", "rest/login", "rest/certificate"]
    assert c.logins == 2


def test_401_inside_the_envelope_also_relogs_in():
    c = client([LOGIN, (200, err(401), []), LOGIN, (200, OK, [])])
    c.call("GET", "rest/certificate")
    assert c.logins == 2


def test_application_error_inside_http_200_raises():
    c = client([LOGIN, (200, err(500, 15017), [])])
    with pytest.raises(ApiError) as exc:
        c.call("POST", "rest/certificate/1?action=import", {"CertFileOperation": "1"})
    assert "HTTP 200" in exc.value.msg and "15017" in exc.value.msg and "rest/certificate/1" in exc.value.msg


def test_failed_login_inside_http_200_is_an_authentication_failure():
    c = client([(200, err(401, 10002), [])])
    with pytest.raises(AuthenticationFailure, match="refused the login"):
        c.call("GET", "rest/system")


def test_certificate_ids_from_list():
    body = (b'<root><status><http_code>200</http_code></status><certificate_list>'
            b'<certificate_pk href="https://sbc/rest/certificate/3"/><certificate_pk href="https://sbc/rest/certificate/1"/>'
            b"</certificate_list></root>")
    c = client([LOGIN, (200, body, [])])
    assert c.certificate_ids() == [1, 3]


def make(cn, issuer=None, ca=True):
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])
    now = datetime.datetime.now(datetime.timezone.utc)
    icert, ikey = issuer if issuer else (None, key)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(icert.subject if icert else name)
            .public_key(key.public_key()).serial_number(x509.random_serial_number()).not_valid_before(now)
            .not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
            .sign(ikey, hashes.SHA256()))
    return cert, key


def test_plan_cas_orders_issuer_first_and_skips_installed():
    root = make("root")
    inter = make("inter", root)
    leaf = make("leaf", inter, ca=False)
    assert edge.plan_cas(leaf[0], [inter[0], root[0]], []) == [root[0], inter[0]]
    assert edge.plan_cas(leaf[0], [inter[0], root[0]], [root[0]]) == [inter[0]]
    assert edge.plan_cas(leaf[0], [], [root[0], inter[0]]) == []


def test_plan_cas_refuses_a_leaf_without_its_ca():
    root = make("root")
    leaf = make("leaf", make("other-root"), ca=False)
    with pytest.raises(InputError) as exc:
        edge.plan_cas(leaf[0], [root[0]], [])
    assert exc.value.field == "ca_certificates" and "15020" in exc.value.msg


def test_plan_cas_refuses_an_orphan_intermediate():
    inter = make("inter", make("missing-root"))
    leaf = make("leaf", inter, ca=False)
    with pytest.raises(InputError, match="neither installed"):
        edge.plan_cas(leaf[0], [inter[0]], [])


# ------------------------------------------------------------------------------ issue 10: the one gate
def edge_params(**kw):
    p = {"key_custody": "external", "certificate": None, "private_key": None, "private_key_passphrase": None,
         "ca_certificates": [], "allow_expired_ca": False, "api_url": "https://sbc"}
    p.update(kw)
    return p


def expired_leaf():
    root = make("edge root")
    key = ec.generate_private_key(ec.SECP256R1())
    then = datetime.datetime.now(datetime.timezone.utc) - datetime.timedelta(days=40)
    cert = (x509.CertificateBuilder().subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "old")]))
            .issuer_name(root[0].subject).public_key(key.public_key()).serial_number(5).not_valid_before(then)
            .not_valid_after(then + datetime.timedelta(days=10)).sign(root[1], hashes.SHA256()))
    return cert, key, root


@pytest.mark.parametrize("custody", ["external", "device"])
def test_expired_leaf_is_refused_before_the_device(custody):
    cert, key, root = expired_leaf()
    p = edge_params(key_custody=custody, certificate=_pem.to_pem(cert), ca_certificates=[_pem.to_pem(root[0])],
                    private_key=_pem.key_to_pem(key) if custody == "external" else None)
    with pytest.raises(InputError) as exc:
        edge.desired_material(p)
    assert exc.value.field == "certificate" and "expired" in exc.value.msg


def test_expired_ca_needs_allow_expired_ca_and_warns():
    root_key = ec.generate_private_key(ec.SECP256R1())
    then = datetime.datetime.now(datetime.timezone.utc) - datetime.timedelta(days=40)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "expired root")])
    old_root = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(root_key.public_key())
                .serial_number(9).not_valid_before(then).not_valid_after(then + datetime.timedelta(days=10))
                .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
                .sign(root_key, hashes.SHA256()))
    leaf = make("leaf", make("live root"), ca=False)
    p = edge_params(certificate=_pem.to_pem(leaf[0]), private_key=_pem.key_to_pem(leaf[1]),
                    ca_certificates=[_pem.to_pem(old_root)])
    with pytest.raises(InputError) as exc:
        edge.desired_material(p)
    assert exc.value.field == "ca_certificates[0]"
    want = edge.desired_material(dict(p, allow_expired_ca=True))
    assert want["cas"] == [old_root] and "ca_certificates[0]" in want["warnings"][0]


def test_leaf_in_ca_certificates_is_refused_with_the_gate_words():
    leaf = make("leaf", make("root"), ca=False)
    other = make("other", make("root2"), ca=False)
    p = edge_params(certificate=_pem.to_pem(leaf[0]), private_key=_pem.key_to_pem(leaf[1]),
                    ca_certificates=[_pem.to_pem(other[0])])
    with pytest.raises(InputError) as exc:
        edge.desired_material(p)
    assert exc.value.field == "ca_certificates[0]" and "trust anchor" in exc.value.msg


# ------------------------------------------------------------------------------ previous on every run
def slot(cert, file_name):
    return {"CertFileContent": _pem.to_pem(cert), "CertFileName": file_name, "fingerprint": _pem.fingerprint(cert)}


def test_previous_is_recorded_on_the_device_and_reported_by_a_run_that_changes_nothing():
    """Before the fix a run that changed nothing returned previous: null."""
    root = make("root")
    old = make("old", root, ca=False)
    new = make("new", root, ca=False)
    p = edge_params(certificate=_pem.to_pem(new[0]), private_key=_pem.key_to_pem(new[1]),
                    ca_certificates=[_pem.to_pem(root[0])])
    want = edge.desired_material(p)
    current = {1: slot(old[0], "lab-initial.pem"), 2: slot(root[0], "ca.pem")}
    first = edge.plan_present(want, current, "external")
    assert first["changed"] and first["previous"] == _pem.fingerprint(old[0])
    name = first["server_file_name"]
    assert len(name) <= 80 and name.endswith(".p12")  # sbc-apis.md C3: CertFileName max 80
    # what the device holds after the import, read back by the next run
    after = {1: slot(new[0], name), 2: slot(root[0], "ca.pem")}
    again = edge.plan_present(want, after, "external")
    assert again["changed"] is False and again["previous"] == _pem.fingerprint(old[0])


def test_previous_is_null_when_the_device_has_no_record():
    root = make("root")
    new = make("new", root, ca=False)
    want = edge.desired_material(edge_params(certificate=_pem.to_pem(new[0]), private_key=_pem.key_to_pem(new[1])))
    plan = edge.plan_present(want, {1: slot(new[0], "whatever.pem"), 2: slot(root[0], "ca.pem")}, "external")
    assert plan["changed"] is False and plan["previous"] is None
    assert edge.server_file_name(_pem.fingerprint(new[0]), None, "pem").startswith("byoc-server-")


def test_a_refused_fresh_session_is_not_reported_as_an_api_key_problem():
    refused = AuthenticationFailure("The Ribbon SBC Edge REST API rejected the credentials (HTTP 403). Check the API"
                                    " key or token and its permissions.", status=403, url="https://sbc/rest/system")
    c = client([LOGIN, refused, LOGIN, refused])
    with pytest.raises(AuthenticationFailure) as exc:
        c.call("GET", "rest/system")
    assert "API key" not in exc.value.msg and "fresh login as user 'u'" in exc.value.msg
    assert "https://sbc/rest/system" in exc.value.msg


def test_password_echoed_by_the_device_is_not_printed():
    c = edge.EdgeClient("https://sbc", "u", "echo-me-secret", http=FakeHttp([
        LOGIN, (200, err(500, 15017).replace(b'params="p|q"', b'params="echo-me-secret"'), [])]))
    with pytest.raises(ApiError) as exc:
        c.call("GET", "rest/system")
    assert "echo-me-secret" not in exc.value.msg and "echo-me-secret" not in str(exc.value.details)


class Recorder:
    def __init__(self, fail_server=True, fail_delete=False):
        self.fail_server, self.fail_delete, self.calls = fail_server, fail_delete, []

    def import_pem(self, cid, pem, name):
        self.calls.append(("import", cid))
        if cid == 1 and self.fail_server:
            raise ApiError("The Ribbon SBC Edge rejected POST .../certificate/1: app_status_entry code 15017")

    import_pkcs12 = None

    def delete_certificate(self, cid):
        self.calls.append(("delete", cid))
        if self.fail_delete:
            raise ApiError("delete refused")


def test_failed_server_import_empties_the_ca_slots_it_filled():
    root = make("root")
    inter = make("inter", root)
    leaf = make("leaf", inter, ca=False)
    want = edge.desired_material(edge_params(key_custody="device", certificate=_pem.to_pem(leaf[0]),
                                             ca_certificates=[_pem.to_pem(root[0]), _pem.to_pem(inter[0])]))
    plan = edge.plan_present(want, {}, "device")
    rec = Recorder()
    with pytest.raises(ApiError) as exc:
        edge.apply_present(plan, want, rec, {"key_custody": "device", "api_url": "https://sbc"})
    assert rec.calls == [("import", 2), ("import", 3), ("import", 1), ("delete", 3), ("delete", 2)]
    assert "removed again" in exc.value.msg and exc.value.details["left_behind"] == []
    rec = Recorder(fail_delete=True)
    with pytest.raises(ApiError) as exc:
        edge.apply_present(plan, want, rec, {"key_custody": "device", "api_url": "https://sbc"})
    assert "could NOT all be removed" in exc.value.msg and len(exc.value.details["left_behind"]) == 2
