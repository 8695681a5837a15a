# Copyright (c) 2026, byoc.certificates contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Request shapes and input checks of each provider adapter, without network."""

from __future__ import annotations

import json

import pytest

from ansible_collections.byoc.certificates.plugins.module_utils._errors import ApiError, InputError, MissingDependency
from ansible_collections.byoc.certificates.plugins.module_utils._http import Response
from ansible_collections.byoc.certificates.plugins.module_utils._dns.cloudflare import (
    CloudflareProvider,
    cloudflare_error,
    record_body,
)
from ansible_collections.byoc.certificates.plugins.module_utils._dns.powerdns import (
    PowerDNSProvider,
    pdns_error,
    rrset_patch,
)
from ansible_collections.byoc.certificates.plugins.module_utils._dns.rfc2136 import RFC2136Provider, decode_secret
from ansible_collections.byoc.certificates.plugins.module_utils._dns.route53 import Route53Provider, change_batch, from_r53_name

SECRET = "rn3M5VtGstDztNMpPnQfMtbkgcNfWQ0yB5NJCP5N8W4="


class FakeClient:
    """Stands in for HttpClient: answers scripted per (method, path prefix), records every request."""

    def __init__(self, answers):
        self.answers = answers
        self.sent = []

    def request(self, method, path, *, json=None, **kw):
        self.sent.append((method, path, json))
        for (m, prefix), body in self.answers.items():
            if m == method and path.startswith(prefix):
                return Response(200, {}, (body(path) if callable(body) else _dump(body)).encode())
        return Response(204, {}, b"")


def _dump(obj):
    return json.dumps(obj)


# -- rfc2136 -----------------------------------------------------------------------------------------------

def test_rfc2136_update_adds_and_deletes_single_rdatas():
    p = RFC2136Provider({"server": "127.0.0.1", "port": 5353, "key_name": "acme-key", "key_secret": SECRET})
    p.validate()
    upd = p.build_update("example.test", "_acme-challenge.sbc1.example.test", ["new"], ["old"], 60)
    text = upd.to_text()
    assert '_acme-challenge.sbc1.example.test. 60 IN TXT "new"' in text
    assert '_acme-challenge.sbc1.example.test. 0 NONE TXT "old"' in text  # RFC 2136 2.5.4: delete one RR
    assert upd.keyname.to_text() == "acme-key."


def test_rfc2136_long_value_is_split_into_strings():
    p = RFC2136Provider({"server": "127.0.0.1"})
    p.validate()
    upd = p.build_update("example.test", "n.example.test", ["z" * 300], [], 60)
    assert '"' + "z" * 255 + '" "' + "z" * 45 + '"' in upd.to_text()


@pytest.mark.parametrize("opts,field", [
    ({"server": ""}, "rfc2136.server"),
    ({"server": "h", "port": 0}, "rfc2136.port"),
    ({"server": "h", "key_name": "k"}, "rfc2136.key_secret"),
    ({"server": "h", "key_secret": SECRET}, "rfc2136.key_name"),
    ({"server": "h", "key_algorithm": "rot13"}, "rfc2136.key_algorithm"),
    ({"server": "h", "key_name": "k", "key_secret": "not base64!!"}, "rfc2136.key_secret"),
])
def test_rfc2136_input_errors(opts, field):
    with pytest.raises(InputError) as err:
        RFC2136Provider(opts).validate()
    assert err.value.field == field


def test_bad_secret_is_not_echoed():
    with pytest.raises(InputError) as err:
        decode_secret("sekrit-value-$$$")
    assert "sekrit" not in err.value.msg


# -- route53 -------------------------------------------------------------------------------------------------

def test_route53_upsert_quotes_values():
    batch = change_batch("_acme-challenge.a.r53.test", [], None, ["v1", "v2"], 60)
    change = batch["Changes"][0]
    assert change["Action"] == "UPSERT"
    assert change["ResourceRecordSet"] == {"Name": "_acme-challenge.a.r53.test.", "Type": "TXT", "TTL": 60,
                                           "ResourceRecords": [{"Value": '"v1"'}, {"Value": '"v2"'}]}


def test_route53_delete_uses_current_values_and_ttl():
    change = change_batch("n.r53.test", ["v1"], 300, [], 60)["Changes"][0]
    assert change["Action"] == "DELETE"
    assert change["ResourceRecordSet"]["TTL"] == 300
    assert change["ResourceRecordSet"]["ResourceRecords"] == [{"Value": '"v1"'}]


def test_route53_names():
    assert from_r53_name("\\052.Example.test.") == "*.example.test"
    assert from_r53_name("_acme-challenge.r53.test.") == "_acme-challenge.r53.test"


# -- powerdns ----------------------------------------------------------------------------------------------

def test_powerdns_patch_shapes():
    assert rrset_patch("n.pdns.test", ["a"], 60) == {"rrsets": [{
        "name": "n.pdns.test.", "type": "TXT", "ttl": 60, "changetype": "REPLACE",
        "records": [{"content": '"a"', "disabled": False}]}]}
    assert rrset_patch("n.pdns.test", [], 60) == {"rrsets": [{"name": "n.pdns.test.", "type": "TXT",
                                                              "changetype": "DELETE"}]}


def test_powerdns_reads_and_writes_through_the_zone_id():
    client = FakeClient({
        ("GET", "servers/localhost/zones/"): {"rrsets": [
            {"name": "n.pdns.test.", "type": "TXT", "records": [{"content": '"a" "b"', "disabled": False},
                                                                {"content": '"off"', "disabled": True}]},
            {"name": "other.pdns.test.", "type": "TXT", "records": [{"content": '"x"'}]}]},
        ("GET", "servers/localhost/zones"): [{"name": "pdns.test.", "id": "pdns.test."},
                                             {"name": "sub.pdns.test.", "id": "sub.pdns.test."}],
    })
    p = PowerDNSProvider({"url": "http://x/api/v1", "api_key": "k", "server_id": "localhost"}, client=client)
    p.validate()
    zone = p.find_zone("n.pdns.test", None)
    assert zone == "pdns.test"
    assert p.get_txt(zone, "n.pdns.test") == ["ab"]
    p.change(zone, "n.pdns.test", before=["ab"], after=["ab", "c"], added=["c"], removed=[], ttl=60)
    method, path, body = client.sent[-1]
    assert (method, path) == ("PATCH", "servers/localhost/zones/pdns.test.")
    assert body["rrsets"][0]["records"][1]["content"] == '"c"'


def test_powerdns_error_text():
    assert pdns_error(Response(422, {}, b'{"error": "RRset n. IN TXT: bad"}')) == "RRset n. IN TXT: bad"
    with pytest.raises(InputError) as err:
        PowerDNSProvider({"url": "pdns:8081", "api_key": "k"}).validate()
    assert err.value.field == "powerdns.url"
    with pytest.raises(InputError) as err:
        PowerDNSProvider({"url": "http://pdns:8081/api/v1", "api_key": None}).validate()
    assert err.value.field == "powerdns.api_key"


# -- cloudflare ---------------------------------------------------------------------------------------------

def test_cloudflare_pages_and_applies_per_record():
    def records(path):
        page = int(path.split("page=")[1].split("&")[0])
        recs = {1: [{"id": "r1", "name": "n.cf.test", "type": "TXT", "content": '"old"'},
                    {"id": "r2", "name": "n.cf.test", "type": "TXT", "content": "keep"}],
                2: [{"id": "r3", "name": "n.cf.test", "type": "TXT", "content": '"old"'}]}[page]
        return _dump({"success": True, "errors": [], "messages": [], "result": recs,
                      "result_info": {"page": page, "per_page": 2, "count": len(recs), "total_count": 3,
                                      "total_pages": 2}})

    client = FakeClient({
        ("GET", "zones/Z1/dns_records"): records,
        ("GET", "zones?"): {"success": True, "errors": [], "messages": [], "result": [
            {"id": "Z1", "name": "cf.test"}, {"id": "Z2", "name": "deep.cf.test"}],
            "result_info": {"page": 1, "total_pages": 1}},
    })
    p = CloudflareProvider({"api_token": "t"}, client=client)
    p.validate()
    assert p.find_zone("n.cf.test", None) == "cf.test"
    before = p.get_txt("cf.test", "n.cf.test")
    assert before == ["old", "keep", "old"]
    p.change("cf.test", "n.cf.test", before=before, after=["keep", "new"], added=["new"], removed=["old"], ttl=60)
    writes = [(m, path, body) for m, path, body in client.sent if m != "GET"]
    assert writes == [("DELETE", "zones/Z1/dns_records/r1", None), ("DELETE", "zones/Z1/dns_records/r3", None),
                      ("POST", "zones/Z1/dns_records", {"type": "TXT", "name": "n.cf.test", "content": '"new"',
                                                        "ttl": 60})]


def test_cloudflare_error_text_and_inputs():
    body = b'{"success": false, "errors": [{"code": 10000, "message": "Authentication error"}]}'
    assert cloudflare_error(Response(403, {}, body)) == "10000: Authentication error"
    assert record_body("n.cf.test", 'a"b', 1)["content"] == '"a\\"b"'
    with pytest.raises(InputError) as err:
        CloudflareProvider({"api_token": None}).validate()
    assert err.value.field == "cloudflare.api_token"


# -- issue 10: secrets with surrounding whitespace, and garbage server names ------------------------------------

TOKEN = "SEKRIT-tok-0123456789abcdef"


@pytest.mark.parametrize("cls,opts,key,header", [
    (CloudflareProvider, {"api_url": "http://127.0.0.1:9/client/v4"}, "api_token", "Authorization"),
    (PowerDNSProvider, {"url": "http://127.0.0.1:9/api/v1"}, "api_key", "X-API-Key"),
])
def test_trailing_newline_in_a_credential_is_stripped(cls, opts, key, header):
    p = cls(dict(opts, **{key: TOKEN + "\n"}))
    p.validate()
    assert p.client.headers[header].endswith(TOKEN)
    assert "\n" not in p.client.headers[header]


@pytest.mark.parametrize("cls,opts,key,field", [
    (CloudflareProvider, {}, "api_token", "cloudflare.api_token"),
    (PowerDNSProvider, {"url": "http://127.0.0.1:9/api/v1"}, "api_key", "powerdns.api_key"),
])
@pytest.mark.parametrize("bad", [TOKEN[:8] + "\n" + TOKEN[8:], TOKEN + " x", TOKEN + "\u00e9"])
def test_credential_a_header_cannot_carry_is_refused_unseen(cls, opts, key, field, bad):
    with pytest.raises(InputError) as err:
        cls(dict(opts, **{key: bad})).validate()
    assert err.value.field == field
    assert TOKEN[:8] not in str(err.value) and TOKEN[8:] not in str(err.value)


def test_header_building_errors_never_carry_the_header():
    """The safety net below the adapters' own checks: http.client's ValueError holds the header in repr form, and
    the shared HttpClient (which every DNS adapter uses) reports such errors by type only."""
    from ansible_collections.byoc.certificates.plugins.module_utils._http import HttpClient

    client = HttpClient("http://127.0.0.1:9", service="Cloudflare API", retries=0,
                        headers={"Authorization": f"Bearer {TOKEN}\n"})
    with pytest.raises(ApiError) as err:
        client.request("GET", "zones")
    assert TOKEN not in err.value.msg and "ValueError" in err.value.msg


def test_route53_credentials_are_stripped():
    p = Route53Provider({"access_key": " AKIAEXAMPLE\n", "secret_key": TOKEN + "\n", "session_token": None})
    try:
        p.validate()
    except MissingDependency:  # boto3 absent: the options were still cleaned first
        pass
    assert p.options["access_key"] == "AKIAEXAMPLE" and p.options["secret_key"] == TOKEN


@pytest.mark.parametrize("server", ["a" * 64 + ".example.test", "foo..bar", "bad name!", "ns1.example.test:53",
                                    "x\x00y", "-lead.example.test"])
def test_rfc2136_garbage_server_name_is_an_input_error(server):
    with pytest.raises(InputError) as err:
        RFC2136Provider({"server": server}).validate()
    assert err.value.field == "rfc2136.server"


def test_rfc2136_name_that_does_not_resolve_is_an_input_error(monkeypatch):
    import socket

    def nope(*a, **kw):
        raise socket.gaierror(-2, "Name or service not known")

    monkeypatch.setattr(socket, "getaddrinfo", nope)
    p = RFC2136Provider({"server": "primary.nowhere.test"})
    p.validate()
    with pytest.raises(InputError) as err:
        p.find_zone("_acme-challenge.a.example.test", None)
    assert err.value.field == "rfc2136.server" and "primary.nowhere.test" in err.value.msg
    assert "Name or service not known" in err.value.msg
