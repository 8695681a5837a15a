# Copyright (c) 2026, byoc.certificates contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""HttpClient against a real loopback HTTP server whose answers the test scripts."""

from __future__ import annotations

import json
import socket
import threading
from http.server import BaseHTTPRequestHandler, HTTPServer

import pytest

from ansible_collections.byoc.certificates.plugins.module_utils._errors import (
    ApiError,
    AuthenticationFailure,
    ConnectionFailure,
    NotFound,
)
from ansible_collections.byoc.certificates.plugins.module_utils._http import HttpClient, parse_retry_after


class Scripted:
    def __init__(self, answers):
        self.answers = list(answers)
        self.seen = []

    def serve(self):
        script = self

        class H(BaseHTTPRequestHandler):
            def _any(self):
                length = int(self.headers.get("Content-Length") or 0)
                script.seen.append((self.command, self.path, self.headers, self.rfile.read(length)))
                status, headers, body = script.answers.pop(0)
                self.send_response(status)
                for k, v in headers.items():
                    for one in (v if isinstance(v, list) else [v]):
                        self.send_header(k, one)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            do_GET = do_POST = do_PATCH = do_DELETE = _any

            def log_message(self, *args):
                pass

        server = HTTPServer(("127.0.0.1", 0), H)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        return server


@pytest.fixture
def scripted():
    servers = []

    def make(*answers):
        s = Scripted(answers)
        srv = s.serve()
        servers.append(srv)
        return s, f"http://127.0.0.1:{srv.server_address[1]}/api"

    yield make
    for srv in servers:
        srv.shutdown()
        srv.server_close()


def client(url, sleeps, **kw):
    return HttpClient(url, service="Test API", sleep=sleeps.append, **kw)


def test_json_round_trip_and_headers(scripted):
    s, url = scripted((200, {"Content-Type": "application/json"}, b'{"ok": true}'))
    sleeps = []
    resp = client(url, sleeps, headers={"X-API-Key": "k"}).request("POST", "zones", json={"a": 1})
    assert resp.json() == {"ok": True}
    method, path, headers, body = s.seen[0]
    assert (method, path) == ("POST", "/api/zones")
    assert headers["X-API-Key"] == "k" and json.loads(body) == {"a": 1}
    assert sleeps == []


def test_429_waits_retry_after_capped_then_succeeds(scripted):
    s, url = scripted((429, {"Retry-After": "500"}, b""), (503, {}, b""), (200, {}, b"{}"))
    sleeps = []
    c = client(url, sleeps, max_retry_after=7)
    assert c.request("GET", "x").status == 200
    assert sleeps == [7, 2]  # capped Retry-After, then backoff for the second attempt
    assert c.request_count == 3


def test_429_storm_fails_clearly_after_retries(scripted):
    s, url = scripted(*[(429, {"Retry-After": "1"}, b"slow down")] * 3)
    sleeps = []
    with pytest.raises(ApiError) as exc:
        client(url, sleeps, retries=2).request("GET", "x")
    assert "kept answering HTTP 429" in exc.value.msg and "3 attempts" in exc.value.msg
    assert exc.value.details["status"] == 429


def test_401_is_authentication_failure_with_server_message(scripted):
    s, url = scripted((401, {}, b'{"error": "Unauthorized"}'))
    c = client(url, [], error_message=lambda r: (r.json() or {}).get("error"))
    with pytest.raises(AuthenticationFailure) as exc:
        c.request("GET", "zones")
    assert "Test API rejected the credentials (HTTP 401)" in exc.value.msg
    assert "Unauthorized" in exc.value.msg and "/api/zones" in exc.value.msg


def test_404_missing_ok_and_not_found(scripted):
    s, url = scripted((404, {}, b""), (404, {}, b"no zone"))
    c = client(url, [])
    assert c.request("GET", "a", missing_ok=True) is None
    with pytest.raises(NotFound):
        c.request("GET", "b")


def test_unreachable_server_is_connection_failure():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    sleeps = []
    with pytest.raises(ConnectionFailure) as exc:
        client(f"http://127.0.0.1:{port}", sleeps, retries=1).request("GET", "x")
    assert f"127.0.0.1:{port}" in exc.value.msg and "Cannot reach the Test API" in exc.value.msg
    assert len(sleeps) == 1


@pytest.mark.parametrize("value,expected", [("5", 5.0), ("900", 60.0), ("Wed, 21 Oct 2026 07:28:00 GMT", 3.0),
                                            (None, 3.0), ("-4", 0.0)])
def test_parse_retry_after(value, expected):
    assert parse_retry_after(value, 3.0, 60.0) == expected


def test_untrusted_certificate_fails_at_once_without_retries(tmp_path):
    import datetime
    import ssl

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(1).not_valid_before(now).not_valid_after(now + datetime.timedelta(days=1))
            .sign(key, hashes.SHA256()))
    (tmp_path / "c.pem").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    (tmp_path / "k.pem").write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                                       serialization.NoEncryption()))
    s = Scripted([(200, {}, b"{}")])
    server = s.serve()
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(tmp_path / "c.pem", tmp_path / "k.pem")
    server.socket = ctx.wrap_socket(server.socket, server_side=True)
    try:
        sleeps = []
        with pytest.raises(ConnectionFailure) as exc:
            client(f"https://127.0.0.1:{server.server_address[1]}", sleeps).request("GET", "x")
        assert "certificate" in exc.value.msg.lower()
        assert sleeps == []  # verification failures are not transient: no retry, no waiting
        assert s.seen == []  # and nothing was sent over the untrusted connection
    finally:
        server.shutdown()
        server.server_close()


def test_every_set_cookie_is_kept(scripted):
    s, url = scripted((200, {"Set-Cookie": ["PHPSESSID=abc; Path=/", "csrfp_token=tok; Path=/"]}, b"<ok/>"),
                      (401, {"Set-Cookie": ["a=1", "b=2"]}, b""))
    c = client(url, [])
    assert c.request("POST", "login").set_cookies == ["PHPSESSID=abc; Path=/", "csrfp_token=tok; Path=/"]
    assert c.request("POST", "login", ok=(401,)).set_cookies == ["a=1", "b=2"]


# -- no request header or body in any error (issue 10) ------------------------------------------------------------

@pytest.mark.parametrize("value", ["Bearer MARKER-tok\nsecond-line", "Bearer MARKER-tok\n", "Bearer MARKER-tok\r",
                                   "MARKER-tok\u2019"])
def test_header_value_that_cannot_be_sent_fails_before_sending_without_echo(scripted, value):
    # http.client's own ValueError / UnicodeEncodeError quotes the header; the error raised here does not.
    s, url = scripted((200, {}, b"{}"))
    c = client(url, [], headers={"Authorization": value})
    with pytest.raises(ApiError) as exc:
        c.request("GET", "zones")
    assert "could not be built" in exc.value.msg and "Error" in exc.value.msg
    assert "MARKER" not in exc.value.msg and "MARKER" not in repr(exc.value.details)
    assert exc.value.__cause__ is None and exc.value.__suppress_context__  # no chained text for a traceback
    assert s.seen == []  # nothing reached the server


@pytest.mark.parametrize("error", [ValueError("Invalid header value b'Bearer MARKER-derived'"),
                                   TypeError("can't concat MARKER-body"),
                                   UnicodeEncodeError("latin-1", "MARKER-body \u2019", 12, 13, "Body ('MARKER') bad")])
def test_any_other_failure_to_build_the_request_is_reported_by_type_only(monkeypatch, error):
    from ansible_collections.byoc.certificates.plugins.module_utils import _http

    def boom(*args, **kwargs):
        raise error

    monkeypatch.setattr(_http, "open_url", boom)
    with pytest.raises(ApiError) as exc:
        client("http://127.0.0.1:9/api", []).request("POST", "x", data=b"MARKER-body")
    assert type(error).__name__ in exc.value.msg and "could not be built" in exc.value.msg
    assert "MARKER" not in exc.value.msg
    assert exc.value.__cause__ is None and exc.value.__suppress_context__  # no chained text for a traceback


def test_server_echoing_the_credential_is_scrubbed(scripted):
    s, url = scripted((401, {}, b'{"error": "token MARKER-echoed-token is not valid"}'),
                      (500, {}, b"bad Basic auth for MARKER-pass and key -----BEGIN PRIVATE KEY-----\nAAAA"))
    c = client(url, [], headers={"Authorization": "Bearer MARKER-echoed-token"},
               error_message=lambda r: (r.json() or {}).get("error"))
    with pytest.raises(AuthenticationFailure) as exc:
        c.request("GET", "zones")
    assert "MARKER" not in exc.value.msg and "MARKER" not in repr(exc.value.details)
    assert "is not valid" in exc.value.msg
    c = client(url, [], url_username="admin", url_password="MARKER-pass")
    with pytest.raises(ApiError) as exc:
        c.request("GET", "zones")
    assert "MARKER" not in exc.value.msg and "PRIVATE KEY" not in exc.value.msg


def test_basic_auth_401_speaks_of_username_and_password(scripted):
    s, url = scripted((401, {}, b""), (401, {}, b""))
    with pytest.raises(AuthenticationFailure) as exc:
        client(url, [], url_username="admin", url_password="pw").request("GET", "x")
    assert "username and password" in exc.value.msg and "API key" not in exc.value.msg
    with pytest.raises(AuthenticationFailure) as exc:
        client(url, [], headers={"X-API-Key": "k"}).request("GET", "x")
    assert "API key or token" in exc.value.msg


def test_credentials_in_the_url_are_cut_from_messages():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    with pytest.raises(ConnectionFailure) as exc:
        client(f"http://user:MARKER-url-pw@127.0.0.1:{port}", [], retries=0).request("GET", "x")
    assert "MARKER" not in exc.value.msg and "MARKER" not in exc.value.details["url"]
    assert f"http://127.0.0.1:{port}/x" in exc.value.msg
