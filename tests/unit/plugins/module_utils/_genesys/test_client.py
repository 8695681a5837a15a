# Copyright (c) 2026, byoc.certificates contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""The hardened Genesys client: host resolution, the token cache, the transport's 429/5xx policy, one re-auth on
401, and 409 re-read-and-retry. The SDK is real; the network is a scripted fake urllib3 pool."""

from __future__ import annotations

import json
import os
import stat
from urllib.parse import urlsplit

import pytest

from ansible_collections.byoc.certificates.plugins.module_utils._errors import (
    ApiError,
    AuthenticationFailure,
    ByocError,
    InputError,
)
from ansible_collections.byoc.certificates.plugins.module_utils._genesys import client as C

CAS = "/api/v2/telephony/providers/edges/certificateauthorities"


# -- host resolution --------------------------------------------------------------------------------------------
@pytest.mark.parametrize("region,url", [
    ("eu_west_1", "https://api.mypurecloud.ie"), ("eu-west-1", "https://api.mypurecloud.ie"),
    ("mypurecloud.com.au", "https://api.mypurecloud.com.au"), ("US_EAST_1", "https://api.mypurecloud.com"),
])
def test_region(region, url):
    assert C.resolve_api_url(region, None) == url


def test_api_url_wins_and_is_checked():
    assert C.resolve_api_url("eu_west_1", "https://127.0.0.1:8443/") == "https://127.0.0.1:8443"
    for bad in ("ftp://x", "https://api.mypurecloud.ie/api/v2", "nonsense"):
        with pytest.raises(InputError) as err:
            C.resolve_api_url(None, bad)
        assert err.value.field == "api_url"
    with pytest.raises(InputError) as err:
        C.resolve_api_url("mars_north_1", None)
    assert err.value.field == "region"
    with pytest.raises(InputError, match="GENESYS_CLOUD_REGION"):
        C.resolve_api_url(None, None)


def test_login_url_like_the_sdk():
    assert C.login_url("https://api.mypurecloud.ie") == "https://login.mypurecloud.ie"
    assert C.login_url("https://127.0.0.1:9") == "https://127.0.0.1:9"


# -- token cache ------------------------------------------------------------------------------------------------
def test_token_cache_private_keyed_and_bound_to_the_secret(tmp_path):
    d = str(tmp_path / "cache")
    cache = C.TokenCache(d, "cid", "https://login.x", "s3cret")
    with cache.locked():
        assert cache.load() is None
        cache.store("tok", 3600)
    assert cache.load() == "tok"
    assert stat.S_IMODE(os.stat(cache.path).st_mode) == 0o600
    assert stat.S_IMODE(os.stat(d).st_mode) == 0o700
    assert "s3cret" not in open(cache.path, encoding="utf-8").read()
    assert C.TokenCache(d, "cid", "https://login.x", "other").load() is None  # wrong secret: no reuse
    assert C.TokenCache(d, "cid", "https://login.y", "s3cret").load() is None  # other host: other file
    assert C.TokenCache(d, "cid2", "https://login.x", "s3cret").path != cache.path
    cache.discard("not-this-one")
    assert cache.load() == "tok"
    cache.discard("tok")
    assert cache.load() is None


def test_token_cache_ignores_nearly_expired(tmp_path):
    cache = C.TokenCache(str(tmp_path), "cid", "L", "s")
    cache.store("tok", C.TOKEN_MARGIN - 1)
    assert cache.load() is None


# -- transport and client, with a fake urllib3 pool ------------------------------------------------------------
class Raw:
    def __init__(self, status, body=None, headers=None):
        self.status = status
        self.reason = "R"
        self.data = (json.dumps(body) if body is not None else "").encode()
        self.headers = headers or {}


class FakePool:
    """Answers /oauth/token with a new token each time, and API calls from a script of Raw replies."""

    def __init__(self, script):
        self.script = list(script)
        self.seen = []
        self.urls = []
        self.minted = 0

    def request(self, method, url, body=None, headers=None, redirect=False):
        path = urlsplit(url).path
        self.urls.append(url)
        self.seen.append((method, path, (headers or {}).get("Authorization")))
        if path == "/oauth/token":
            self.minted += 1
            return Raw(200, {"access_token": f"tok{self.minted}", "token_type": "bearer", "expires_in": 3600})
        return self.script.pop(0)


LISTING = {"entities": [{"id": "m", "name": "Managed", "type": "MANAGED", "services": ["SIP"], "version": 1}],
           "pageSize": 25, "pageNumber": 1, "total": 1, "pageCount": 1}


def make(tmp_path, script, secret="secret", **kw):
    sleeps = []
    cli = C.GenesysClient("https://127.0.0.1:1", "cid", secret, token_cache_dir=str(tmp_path / "tok"),
                          sleep=sleeps.append, **kw)
    cli._pool = FakePool(script)
    return cli, sleeps


def test_sdk_is_isolated_from_the_home_config(tmp_path, monkeypatch):
    home = tmp_path / "home"
    (home / ".genesyscloudpython").mkdir(parents=True)
    (home / ".genesyscloudpython" / "config").write_text("[general]\nhost = https://evil.example\n")
    monkeypatch.setenv("HOME", str(home))
    sdk = C.load_sdk()["sdk"]
    assert os.environ["HOME"] == str(home)
    assert sdk.Configuration().live_reload_config is False
    cli, sleeps = make(tmp_path, [Raw(200, LISTING)])
    cli.call("TelephonyProvidersEdgeApi", "get_telephony_providers_edges_certificateauthorities")
    assert {urlsplit(u).netloc for u in cli._pool.urls} == {"127.0.0.1:1"}  # login and API: never evil.example
    assert cli._api_client.host == "https://127.0.0.1:1"


def test_429_is_waited_within_the_cap(tmp_path):
    cli, sleeps = make(tmp_path, [Raw(429, {"message": "slow down"}, {"Retry-After": "2"}),
                                  Raw(429, {}, {"inin-ratelimit-reset": "1"}), Raw(200, LISTING)], max_retry_after=5)
    listing = cli.call("TelephonyProvidersEdgeApi", "get_telephony_providers_edges_certificateauthorities")
    assert listing.entities[0].type == "MANAGED"
    assert sleeps == [2.0, 1.0] and cli.rate_limit_waits == [2.0, 1.0]
    assert cli.requests == 4  # token + 3


def test_429_beyond_the_cap_fails_at_once(tmp_path):
    cli, sleeps = make(tmp_path, [Raw(429, {"message": "slow"}, {"Retry-After": "120"})], max_retry_after=60)
    with pytest.raises(ApiError, match="asks to wait 120s, more than max_retry_after=60s"):
        cli.call("TelephonyProvidersEdgeApi", "get_telephony_providers_edges_certificateauthorities")
    assert sleeps == []


def test_endless_429_fails_after_the_attempts(tmp_path):
    cli, sleeps = make(tmp_path, [Raw(429, {}, {"Retry-After": "1"})] * 10, max_attempts=3)
    with pytest.raises(ApiError, match="kept answering HTTP 429"):
        cli.call("TelephonyProvidersEdgeApi", "get_telephony_providers_edges_certificateauthorities")
    assert sleeps == [1.0, 1.0]


def test_5xx_retried_for_get_not_for_post(tmp_path):
    cli, sleeps = make(tmp_path, [Raw(503, {}), Raw(502, {}), Raw(200, LISTING)])
    cli.call("TelephonyProvidersEdgeApi", "get_telephony_providers_edges_certificateauthorities")
    assert sleeps == [1, 2]
    cli, sleeps = make(tmp_path, [Raw(503, {"message": "down", "code": "service.unavailable"})])
    sdk = C.load_sdk()["sdk"]
    body = sdk.DomainCertificateAuthority()
    body.name, body.type, body.services, body.certificate = "n", "REMOTE", ["SIP"], "pem"
    with pytest.raises(ApiError, match="HTTP 503 service.unavailable on POST"):
        cli.call("TelephonyProvidersEdgeApi", "post_telephony_providers_edges_certificateauthorities", body)
    assert sleeps == []


def test_one_reauth_on_401_and_the_cache_is_shared(tmp_path):
    cli, sleeps = make(tmp_path, [Raw(401, {"code": "credentials.expired"}), Raw(200, LISTING)])
    cli.call("TelephonyProvidersEdgeApi", "get_telephony_providers_edges_certificateauthorities")
    assert cli.tokens_minted == 2
    api_auth = [a for m, p, a in cli._pool.seen if p != "/oauth/token"]
    assert api_auth == ["Bearer tok1", "Bearer tok2"]
    # A second client (next task) reuses the cached token: no minting.
    cli2, sleeps2 = make(tmp_path, [Raw(200, LISTING)])
    cli2.call("TelephonyProvidersEdgeApi", "get_telephony_providers_edges_certificateauthorities")
    assert cli2.tokens_minted == 0 and cli2._pool.seen[0][2] == "Bearer tok2"


def test_second_401_fails_clearly(tmp_path):
    refused = Raw(401, {"code": "bad.credentials", "message": "Invalid login credentials."},
                  {"ININ-Correlation-Id": "c-1"})
    cli, sleeps = make(tmp_path, [Raw(401, {"code": "bad.credentials"}), refused])
    with pytest.raises(AuthenticationFailure, match="correlation id c-1"):
        cli.call("TelephonyProvidersEdgeApi", "get_telephony_providers_edges_certificateauthorities")


def test_wrong_secret_names_the_options_not_the_secret(tmp_path):
    cli, sleeps = make(tmp_path, [], secret="Zq7-wrong-value")

    def refuse(method, url, body=None, headers=None, redirect=False):
        return Raw(401, {"error": "invalid_client", "description": "authentication failed"})

    cli._pool.request = refuse
    with pytest.raises(AuthenticationFailure) as err:
        cli.connect()
    assert "client_secret" in err.value.msg and "invalid_client" in err.value.msg
    assert "Zq7-wrong-value" not in err.value.msg


def test_409_is_reread_and_retried(tmp_path):
    cli, sleeps = make(tmp_path, [])
    calls = []

    def read():
        calls.append("read")
        return len(calls)

    def write(current):
        if current == 1:
            raise C.VersionConflict("conflict")
        return "ok"

    assert cli.update_with_retry(read, write) == "ok" and calls == ["read", "read"]

    def always(current):
        raise C.VersionConflict("conflict")

    with pytest.raises(ApiError, match="kept changing"):
        cli.update_with_retry(read, always, attempts=2)


def test_error_fields():
    assert C.error_fields('{"message":"m","code":"c","contextId":"x","details":[{"fieldName":"f"}]}') == {
        "message": "m", "code": "c", "contextId": "x", "fields": ["f"]}
    assert C.error_fields('{"error":"invalid_client","description":"d"}') == {"code": "invalid_client",
                                                                              "message": "d"}
    assert C.error_fields("") == {}
    assert C.error_fields("<html>") == {"message": "an answer that is not JSON (6 bytes)"}


def test_long_retry_after_within_the_cap_uses_the_injected_sleep(tmp_path):
    cli, sleeps = make(tmp_path, [Raw(429, {}, {"Retry-After": "30"}), Raw(200, LISTING)], max_retry_after=60)
    cli.call("TelephonyProvidersEdgeApi", "get_telephony_providers_edges_certificateauthorities")
    assert sleeps == [30.0]


def test_lazy_sdk_resolves_what_the_modules_use():
    sdk = C.load_sdk()["sdk"]
    assert sdk.Configuration() is sdk.configuration  # the SDK's singleton (a function named _singleton)
    for name in ("ApiClient", "TelephonyProvidersEdgeApi", "UtilitiesApi",
                 "DomainCertificateAuthority", "CertificateAuthorityEntityListing", "TrunkEntityListing",
                 "TrunkBaseEntityListing", "ErrorBody"):
        assert getattr(sdk, name).__name__ == name
    model = sdk.ApiClient(host="https://x")._ApiClient__deserialize(
        {"entities": [{"id": "t", "trunkType": "EXTERNAL", "connectedStatus": {"connected": True},
                       "optionsStatus": [{"proxyAddress": "a:1", "optionState": False,
                                          "errorInfo": {"text": "tls", "details": {"hostname": "a"}}}]}],
         "pageCount": 1}, "TrunkEntityListing")
    trunk = model.entities[0]
    assert trunk.trunk_type == "EXTERNAL" and trunk.connected_status.connected is True
    assert trunk.options_status[0].error_info.details.hostname == "a"
    assert sdk.configuration.live_reload_config is False


def test_sdk_falls_back_to_the_normal_import(tmp_path):
    import subprocess
    import sys

    code = (
        "from ansible_collections.byoc.certificates.plugins.module_utils._genesys import client as C\n"
        "def broken():\n    raise ImportError('layout changed')\n"
        "C._lazy_package = broken\n"
        "sdk = C.load_sdk()['sdk']\n"
        "assert sdk.ApiClient and sdk.TelephonyProvidersEdgeApi and sdk.configuration.live_reload_config is False\n"
        "print('ok', len([m for m in __import__('sys').modules if m.startswith('PureCloudPlatformClientV2.models.')]))\n")
    env = {**os.environ, "HOME": str(tmp_path), "PYTHONPATH": os.pathsep.join(p for p in sys.path if p)}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, check=False)
    assert out.returncode == 0, out.stderr
    assert out.stdout.startswith("ok") and int(out.stdout.split()[1]) > 1000  # the eager import loaded every model


# -- issue 10: no request header or body in any error text; ca_path and credentials checked first --------------
SECRET = "Zq8-very-secret-Value"
BASIC = __import__("base64").b64encode(f"cid:{SECRET}".encode()).decode()


class EchoPool(FakePool):
    """A server (or a proxy in front of it) that echoes the request's Authorization header in its error answers."""

    def __init__(self, script, token_status=200, token_body=None):
        super().__init__(script)
        self.token_status = token_status
        self.token_body = token_body

    def request(self, method, url, body=None, headers=None, redirect=False):
        auth = (headers or {}).get("Authorization", "")
        if urlsplit(url).path == "/oauth/token" and self.token_status != 200:
            self.seen.append((method, "/oauth/token", auth))
            raw = Raw(self.token_status)
            raw.data = (self.token_body or "").replace("{auth}", auth).encode()
            return raw
        if urlsplit(url).path == "/oauth/token" and self.token_body is not None:
            raw = Raw(200)
            raw.data = self.token_body.encode()
            return raw
        reply = super().request(method, url, body, headers, redirect)
        if isinstance(reply.data, bytes):
            reply.data = reply.data.replace(b"{auth}", auth.encode())
        return reply


def _echo_client(tmp_path, script, **kw):
    cli = C.GenesysClient("https://127.0.0.1:1", "cid", SECRET, token_cache_dir=str(tmp_path / "tok"),
                          sleep=lambda s: None)
    cli._pool = EchoPool(script, **kw)
    return cli


def _all_text(exc) -> str:
    return exc.msg + json.dumps(exc.details, default=str)


@pytest.mark.parametrize("reply", [
    Raw(400, {"message": "Malformed header Authorization: {auth}", "code": "bad.request"}),
    Raw(400, {"message": "Malformed header Authorization: {auth}", "code": "bad.request", "contextId": "{auth}"}),
    Raw(429, {"message": "slow down, {auth}"}, {"Retry-After": "999"}),
])
def test_api_errors_never_carry_the_authorization_header(tmp_path, reply):
    cli = _echo_client(tmp_path, [reply])
    with pytest.raises(ByocError) as err:
        cli.call("TelephonyProvidersEdgeApi", "get_telephony_providers_edges_certificateauthorities")
    text = _all_text(err.value)
    assert "tok1" not in text and "Bearer ********" in text, text


def test_a_non_json_error_page_is_not_quoted(tmp_path):
    page = Raw(502)
    page.data = b"<html><pre>GET /api/v2 HTTP/1.1\r\nAuthorization: {auth}\r\nUser-Agent: x</pre></html>"
    cli = _echo_client(tmp_path, [page] * 4)
    with pytest.raises(ByocError) as err:
        cli.call("TelephonyProvidersEdgeApi", "get_telephony_providers_edges_certificateauthorities")
    text = _all_text(err.value)
    assert "tok1" not in text and "User-Agent" not in text and "not JSON" in text, text


def test_login_errors_never_carry_the_basic_credential_or_the_secret(tmp_path):
    body = json.dumps({"error": "invalid_client", "description": f"bad client {{auth}} with secret {SECRET}"})
    cli = _echo_client(tmp_path, [], token_status=401, token_body=body)
    with pytest.raises(AuthenticationFailure) as err:
        cli.connect()
    text = _all_text(err.value)
    assert BASIC not in text and SECRET not in text and "Basic ********" in text, text


@pytest.mark.parametrize("answer", ["<html>login page</html>", "{}", "[]"])
def test_a_token_answer_without_a_token_is_a_clear_error(tmp_path, answer):
    cli = _echo_client(tmp_path, [], token_body=answer)
    with pytest.raises(ApiError, match="without a readable access_token") as err:
        cli.connect()
    assert "login page" not in err.value.msg


def test_scrub_patterns():
    assert C.scrub("Authorization: Bearer abc.def-123", ()) == "Authorization: Bearer ********"
    assert C.scrub("authorization=basic%20Y2lkOnNlY3JldA==", ()) == "authorization=basic ********"
    assert C.scrub(f"x {SECRET} y", [SECRET, None, ""]) == "x ******** y"


@pytest.mark.parametrize("setup,words", [
    (lambda d: str(d / "missing.pem"), "does not exist"),
    (str, "is a directory"),
    (lambda d: (d / "junk.pem").write_text("not a certificate") and str(d / "junk.pem"), "no usable PEM CA"),
])
def test_ca_path_problems_are_input_errors(tmp_path, setup, words):
    path = setup(tmp_path)
    with pytest.raises(InputError, match=words) as err:
        C.ca_context(path)
    assert err.value.field == "ca_path"


@pytest.mark.parametrize("cid,secret,field", [
    ("cid", "s\u00e9cret-value", "client_secret"),
    ("cid", "secret-value\x00", "client_secret"),
    ("c:id", "secret-value", "client_id"),
    ("cid\n", "secret-value", "client_id"),
])
def test_credentials_that_cannot_be_sent_are_refused_without_echo(cid, secret, field):
    with pytest.raises(InputError) as err:
        C.check_credentials(cid, secret)
    assert err.value.field == field and secret not in err.value.msg
