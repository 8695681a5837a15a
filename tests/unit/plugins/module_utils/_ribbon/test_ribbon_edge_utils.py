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
