# Copyright (c) 2026, byoc.certificates contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""The Azure DNS adapter without network: request shapes, etag handling and 412 retries, token errors, inputs."""

from __future__ import annotations

import json
import uuid

import pytest

from ansible_collections.byoc.certificates.plugins.module_utils._errors import (
    ApiError,
    AuthenticationFailure,
    InputError,
)
from ansible_collections.byoc.certificates.plugins.module_utils._http import Response
from ansible_collections.byoc.certificates.plugins.module_utils._dns import azure
from ansible_collections.byoc.certificates.plugins.module_utils._dns import record as core

SUB = str(uuid.uuid4())
SECRET = "azs~SEKRIT-client-secret-0123456789"
OPTS = {"subscription_id": SUB, "tenant_id": str(uuid.uuid4()), "client_id": str(uuid.uuid4()),
        "client_secret": SECRET, "resource_group": "rg-dns"}


class FakeArm:
    """A record-set store that answers like ARM (AZ1-AZ5); ``concurrent`` values are added by 'someone else'
    just before the next writes, which makes the client's etag stale."""

    def __init__(self, values=None, concurrent=None):
        self.etag = "e0" if values else None
        self.values = list(values or [])
        self.concurrent = list(concurrent or [])
        self.sent = []
        self.n = 0

    def _bump(self):
        self.n += 1
        self.etag = f"e{self.n}"

    def request(self, method, path, *, json=None, headers=None, ok=(200, 201, 202, 204), missing_ok=False, **kw):
        self.sent.append((method, path.split("?")[0], dict(headers or {}), json))
        if method == "GET" and path.endswith("dnsZones?api-version=2018-05-01"):
            return _resp(200, {"value": [
                {"name": "az.test", "id": f"/subscriptions/{SUB}/resourceGroups/rg-dns/providers/Microsoft.Network/dnszones/az.test"}]})
        if method == "GET":
            if self.etag is None:
                if missing_ok:
                    return None
                return _resp(404, {"error": {"code": "NotFound", "message": "no"}})
            return _resp(200, {"etag": self.etag, "properties": {"TTL": 60, "TXTRecords": [
                {"value": azure.txt_strings(v)} for v in self.values]}})
        if self.concurrent:
            self.values.append(self.concurrent.pop(0))
            self._bump()
        if headers.get("If-None-Match") == "*" and self.etag is not None:
            return _resp(412, {"error": {"code": "PreconditionFailed", "message": "exists"}})
        if "If-Match" in headers and headers["If-Match"] != self.etag:
            return _resp(412, {"error": {"code": "PreconditionFailed", "message": "stale"}})
        if method == "DELETE":
            self.etag, self.values = None, []
            return _resp(200, None)
        created = self.etag is None
        self.values = ["".join(r["value"]) for r in json["properties"]["TXTRecords"]]
        self._bump()
        return _resp(201 if created else 200, {"etag": self.etag})


def _resp(status, body):
    return Response(status, {}, b"" if body is None else json.dumps(body).encode())


def provider(arm, **opts):
    p = azure.AzureProvider(dict(OPTS, **opts), client=arm)
    p.validate()
    return p


def params(**kw):
    p = {"provider": "azure", "record": "_acme-challenge.sbc1.az.test", "value": ["tok1"], "state": "present",
         "zone": None, "ttl": 60, "follow_cname": False, "resolver": None, "wait": False, "wait_timeout": 300,
         "wait_interval": 2, "nameservers": None, "nameserver_port": 53, "on_wait_timeout": "fail", "azure": OPTS}
    p.update(kw)
    return p


def run(arm, **kw):
    prov = provider(arm)
    return core.run(params(**kw), provider_factory=lambda name, opts: prov), prov


def writes(arm):
    return [(m, h) for m, _p, h, _b in arm.sent if m != "GET"]


def test_registered():
    assert "azure" in core.PROVIDERS
    assert isinstance(core.create_provider("azure", OPTS), azure.AzureProvider)


def test_create_uses_if_none_match_and_the_documented_path():
    arm = FakeArm()
    res = run(arm)[0]
    assert res["changed"] is True and arm.values == ["tok1"]
    method, path, headers, body = [s for s in arm.sent if s[0] == "PUT"][0]
    assert path == (f"subscriptions/{SUB}/resourceGroups/rg-dns/providers/Microsoft.Network/dnsZones/az.test"
                    "/TXT/_acme-challenge.sbc1")
    assert headers == {"If-None-Match": "*"}
    assert body == {"properties": {"TTL": 60, "TXTRecords": [{"value": ["tok1"]}]}}


def test_add_keeps_other_values_under_if_match():
    arm = FakeArm(["other"])
    res = run(arm)[0]
    assert arm.values == ["other", "tok1"] and res["txt_before"] == ["other"]
    assert writes(arm) == [("PUT", {"If-Match": "e0"})]


def test_remove_last_value_deletes_under_if_match_and_keeps_others_otherwise():
    arm = FakeArm(["tok1", "other"])
    run(arm, state="absent")
    assert arm.values == ["other"]
    arm = FakeArm(["tok1"])
    run(arm, state="absent")
    assert arm.etag is None and writes(arm) == [("DELETE", {"If-Match": "e0"})]


def test_concurrent_writer_forces_412_and_both_values_survive():
    arm = FakeArm(["other"], concurrent=["theirs"])
    res, prov = run(arm)
    assert sorted(arm.values) == ["other", "theirs", "tok1"]
    assert prov.conflicts == 1
    assert [w[1] for w in writes(arm)] == [{"If-Match": "e0"}, {"If-Match": "e1"}]
    assert res["changed"] is True


def test_concurrent_writer_during_removal_keeps_their_value():
    arm = FakeArm(["tok1"], concurrent=["theirs"])
    run(arm, state="absent")
    assert arm.values == ["theirs"]  # the DELETE was refused (412); the re-read set without tok1 was PUT


def test_412_is_retried_a_bounded_number_of_times():
    arm = FakeArm(["other"], concurrent=[f"c{i}" for i in range(20)])
    with pytest.raises(ApiError) as err:
        run(arm)
    assert len(writes(arm)) == azure.MAX_CONFLICTS + 1
    assert "kept changing" in err.value.msg and "HTTP 412" in err.value.msg


def test_long_and_multibyte_values_are_split_between_characters():
    assert azure.txt_strings("z" * 300) == ["z" * 255, "z" * 45]
    parts = azure.txt_strings("\u00e9" * 200)  # 2 octets each
    assert [len(p.encode()) for p in parts] == [254, 146]
    rrset = {"properties": {"TXTRecords": [{"value": ["ab", "cd"]}, {"value": ["x"]}]}}
    assert azure.record_values(rrset) == ["abcd", "x"]


def test_apex_is_at():
    arm = FakeArm()
    run(arm, record="az.test")
    assert [s[1] for s in arm.sent if s[0] == "PUT"][0].endswith("/TXT/@")


@pytest.mark.parametrize("override,field", [
    ({"subscription_id": None}, "azure.subscription_id"),
    ({"subscription_id": "my-subscription"}, "azure.subscription_id"),
    ({"resource_group": "rg/../x"}, "azure.resource_group"),
    ({"tenant_id": None}, "azure.tenant_id"),
    ({"tenant_id": "bad tenant"}, "azure.tenant_id"),
    ({"client_id": ""}, "azure.client_id"),
    ({"client_secret": None}, "azure.client_secret"),
    ({"client_secret": SECRET[:10] + "\n" + SECRET[10:]}, "azure.client_secret"),
    ({"resource_manager_url": "management.azure.com"}, "azure.resource_manager_url"),
    ({"authority_url": "ftp://login"}, "azure.authority_url"),
    ({"auth": "password"}, "azure.auth"),
])
def test_input_errors_name_the_field_and_never_the_secret(override, field):
    with pytest.raises(InputError) as err:
        azure.AzureProvider(dict(OPTS, **override)).validate()
    assert err.value.field == field
    assert SECRET[:10] not in str(err.value) and SECRET[10:] not in str(err.value)


def test_client_secret_with_trailing_newline_is_stripped():
    p = azure.AzureProvider(dict(OPTS, client_secret=SECRET + "\n"))
    p.validate()
    assert p.options["client_secret"] == SECRET


def test_managed_identity_needs_no_secret():
    p = azure.AzureProvider({"subscription_id": SUB, "auth": "managed_identity"})
    p.validate()
    assert p.options["managed_identity_url"] == azure.DEFAULT_IMDS


class TokenClient:
    def __init__(self, status, body):
        self.status, self.body, self.sent = status, body, []

    def request(self, method, url, *, data=None, headers=None, **kw):
        self.sent.append((method, url, data, headers))
        return _resp(self.status, self.body)


def test_token_request_shape_and_bad_secret_names_the_field():
    tc = TokenClient(401, {"error": "invalid_client", "error_codes": [7000215],
                           "error_description": "AADSTS7000215: Invalid client secret provided.\r\nTrace ID: x"})
    p = azure.AzureProvider(dict(OPTS), token_client=tc)
    p.validate()
    with pytest.raises(AuthenticationFailure) as err:
        p.find_zone("_acme-challenge.a.az.test", None)
    method, url, data, headers = tc.sent[0]
    assert method == "POST" and url == f"https://login.microsoftonline.com/{OPTS['tenant_id']}/oauth2/v2.0/token"
    form = dict(pair.split("=", 1) for pair in data.decode().split("&"))
    assert form["grant_type"] == "client_credentials"
    assert form["scope"] == "https%3A%2F%2Fmanagement.azure.com%2F.default"
    assert err.value.details["field"] == "azure.client_secret"
    assert "AADSTS7000215" in err.value.msg and "Trace ID" not in err.value.msg
    assert SECRET not in err.value.msg


def test_unknown_tenant_names_tenant_id():
    tc = TokenClient(400, {"error": "invalid_request", "error_codes": [90002],
                           "error_description": "AADSTS90002: Tenant 'x' not found."})
    p = azure.AzureProvider(dict(OPTS), token_client=tc)
    p.validate()
    with pytest.raises(AuthenticationFailure) as err:
        p.find_zone("_acme-challenge.a.az.test", None)
    assert err.value.details["field"] == "azure.tenant_id" and "Check azure.tenant_id" in err.value.msg


def test_managed_identity_request_shape():
    tc = TokenClient(200, {"access_token": "tok", "expires_in": "3599", "token_type": "Bearer"})
    p = azure.AzureProvider({"subscription_id": SUB, "auth": "managed_identity", "client_id": "cid"}, token_client=tc)
    p.validate()
    assert p._token() == "tok"
    method, url, data, headers = tc.sent[0]
    assert method == "GET" and headers == {"Metadata": "true"} and data is None
    assert "api-version=2018-02-01" in url and "resource=https%3A%2F%2Fmanagement.azure.com%2F" in url
    assert "client_id=cid" in url


def test_unreachable_resource_manager_names_the_option():
    from ansible_collections.byoc.certificates.plugins.module_utils._errors import ConnectionFailure

    class Down:
        def request(self, *a, **kw):
            raise ConnectionFailure("Cannot reach the Azure Resource Manager at https://127.0.0.1:9/x: refused.")

    p = provider(Down())
    with pytest.raises(ConnectionFailure) as err:
        p.find_zone("_acme-challenge.a.az.test", None)
    assert "azure.resource_manager_url" in err.value.msg
