"""dns01_record against the lab: BIND (RFC 2136 + lagging secondary + CNAME delegation), PowerDNS (RFC 2136 and
its API), moto (Route 53) and the Cloudflare emulator.

Every effect is observed independently of the module: a real DNS query at the server (byoclab.dnstools), the
Route 53 API through boto3, or the Cloudflare emulator's state through its control API."""

from __future__ import annotations

import json
import threading
import time
import urllib.request
import uuid
from dataclasses import dataclass
from typing import Callable

import pytest

from byoclab import dnstools  # conftest puts tests/lab on sys.path
from byoclab.core import free_port

MODULE = "dns01_record"


def unique_name(zone: str) -> str:
    return f"_acme-challenge.t{uuid.uuid4().hex[:10]}.{zone}"


def assert_clean_failure(res: dict, *needles: str) -> None:
    assert res.get("failed") is True, res
    assert "Traceback" not in res["_stdout"], res["_stdout"]
    for needle in needles:
        assert needle in res["msg"], (needle, res["msg"])


# -- per-provider set-up: module args and an independent observer -------------------------------------------

@dataclass
class Setup:
    args: dict
    zone: str
    observe: Callable[[str], list]
    secret: str


def bind_setup(lab):
    bind = lab.part("bind")
    prim = bind["primary"]
    args = {"provider": "rfc2136", "rfc2136": {"server": prim["host"], "port": prim["port"],
                                               "key_name": bind["tsig"]["name"], "key_secret": bind["tsig"]["secret"],
                                               "key_algorithm": bind["tsig"]["algorithm"]}}
    return Setup(args, bind["zones"]["direct"], lambda name: dnstools.query_txt(prim["host"], prim["port"], name),
                 bind["tsig"]["secret"])


def pdns_rfc2136_setup(lab):
    pdns = lab.part("powerdns")
    dns_ = pdns["dns"]
    args = {"provider": "rfc2136", "rfc2136": {"server": dns_["host"], "port": dns_["port"],
                                               "key_name": pdns["tsig"]["name"], "key_secret": pdns["tsig"]["secret"],
                                               "key_algorithm": pdns["tsig"]["algorithm"]}}
    return Setup(args, pdns["zone"], lambda name: dnstools.query_txt(dns_["host"], dns_["port"], name),
                 pdns["tsig"]["secret"])


def pdns_api_setup(lab):
    pdns = lab.part("powerdns")
    dns_ = pdns["dns"]
    args = {"provider": "powerdns", "powerdns": {"url": pdns["api"]["url"], "api_key": pdns["api"]["api_key"],
                                                 "server_id": pdns["api"]["server_id"]}}
    return Setup(args, pdns["zone"], lambda name: dnstools.query_txt(dns_["host"], dns_["port"], name),
                 pdns["api"]["api_key"])


def route53_setup(lab):
    import boto3

    moto = lab.part("moto")
    secret = f"r53-secret-{uuid.uuid4().hex}"  # moto does not check credentials; a unique one to look for
    client = boto3.client("route53", endpoint_url=moto["endpoint_url"], region_name=moto["region"],
                          aws_access_key_id=moto["access_key"], aws_secret_access_key=moto["secret_key"])

    def observe(name):
        resp = client.list_resource_record_sets(HostedZoneId=moto["hosted_zone_id"], StartRecordName=name + ".",
                                                StartRecordType="TXT", MaxItems="1")
        for rrset in resp["ResourceRecordSets"]:
            if rrset["Name"].rstrip(".") == name and rrset["Type"] == "TXT":
                return [rr["Value"].strip('"') for rr in rrset["ResourceRecords"]]
        return []

    args = {"provider": "route53", "route53": {"endpoint_url": moto["endpoint_url"], "access_key": moto["access_key"],
                                               "secret_key": secret, "region": moto["region"]}}
    return Setup(args, moto["zone"], observe, secret)


def cf_state(cf) -> dict:
    with urllib.request.urlopen(cf["control_url"] + "/state", timeout=5) as resp:
        return json.load(resp)


def cf_control(cf, path, body) -> None:
    req = urllib.request.Request(cf["control_url"] + path, data=json.dumps(body).encode(), method="POST",
                                 headers={"Content-Type": "application/json"})
    urllib.request.urlopen(req, timeout=5).close()


def cloudflare_setup(lab):
    cf = lab.part("cloudflare")

    def observe(name):
        return [r["content"].strip('"') for r in cf_state(cf)["records"] if r["name"] == name and r["type"] == "TXT"]

    args = {"provider": "cloudflare", "cloudflare": {"api_url": cf["api_url"], "api_token": cf["api_token"]}}
    return Setup(args, cf["zone"], observe, cf["api_token"])


SETUPS = {"rfc2136-bind": bind_setup, "rfc2136-powerdns": pdns_rfc2136_setup, "powerdns-api": pdns_api_setup,
          "route53-moto": route53_setup, "cloudflare": cloudflare_setup}


@pytest.mark.parametrize("which", list(SETUPS))
def test_lifecycle(lab, run_module, which):
    setup = SETUPS[which](lab)
    base, zone, observe, secret = setup.args, setup.zone, setup.observe, setup.secret
    name = unique_name(zone)

    def call(values, state="present", **kw):
        return run_module(MODULE, dict(base, record=name, value=values, state=state), **kw)

    # check mode changes nothing, but predicts the change
    res = call(["v1"], check=True, diff=True)
    assert res["changed"] is True and res["added"] == ["v1"] and res["txt_after"] == ["v1"]
    assert observe(name) == []

    # add a value (at -vvv: the secret must not show); the diff shows it; the server serves it
    res = call(["v1"], diff=True, verbosity=3)
    assert res["changed"] is True and res["zone"] == zone and res["record"] == name
    assert secret not in res["_stdout"]
    assert 'TXT "v1"' in res["diff"]["after"] and res["diff"]["before"] == ""
    assert observe(name) == ["v1"]

    # idempotent
    res = call(["v1"])
    assert res["changed"] is False and res["txt_before"] == ["v1"]

    # a second value is added next to the first
    res = call(["v2"])
    assert res["changed"] is True and res["added"] == ["v2"]
    assert sorted(observe(name)) == ["v1", "v2"]

    # removing the first keeps the second
    res = call(["v1"], state="absent", diff=True)
    assert res["changed"] is True and res["removed"] == ["v1"]
    assert 'TXT "v1"' in res["diff"]["before"] and 'TXT "v1"' not in res["diff"]["after"]
    assert observe(name) == ["v2"]

    # removing the last one deletes the record set; then absent is idempotent
    res = call(["v2"], state="absent")
    assert res["changed"] is True and res["txt_after"] == []
    assert observe(name) == []
    assert call(["v2"], state="absent")["changed"] is False


def test_follow_cname_manages_the_delegated_target(lab, run_module):
    base = bind_setup(lab).args
    bind = lab.part("bind")
    prim = bind["primary"]
    resolver = f"{prim['host']}:{prim['port']}"
    record = f"_acme-challenge.sbc1.{bind['zones']['delegating']}"
    target = f"sbc1.{bind['zones']['challenge']}"
    args = dict(base, record=record, value=["delegated-token"], follow_cname=True, resolver=[resolver])
    try:
        res = run_module(MODULE, args)
        assert res["changed"] is True, res
        assert res["record"] == target and res["zone"] == bind["zones"]["challenge"]
        assert res["cname_chain"] == [record, target]
        # the TXT lives at the target, and a validator that follows the CNAME (as an ACME server's resolver does)
        # finds it; the delegating name itself still holds only the CNAME
        cname = dnstools.query_rrset(prim["host"], prim["port"], record, "CNAME")
        assert cname == [target + "."]
        assert dnstools.query_txt(prim["host"], prim["port"], cname[0].rstrip(".")) == ["delegated-token"]
        assert dnstools.query_txt(prim["host"], prim["port"], record) == []
        assert run_module(MODULE, args)["changed"] is False
    finally:
        res = run_module(MODULE, dict(args, state="absent"))
    assert res["changed"] is True
    assert dnstools.query_txt(prim["host"], prim["port"], target) == []


def _wait_args(lab, name, **kw):
    base = bind_setup(lab).args
    bind = lab.part("bind")
    servers = [f"{bind['primary']['host']}:{bind['primary']['port']}",
               f"{bind['secondary']['host']}:{bind['secondary']['port']}"]
    return dict(base, record=name, value=["wait-token"], wait=True, nameservers=servers, wait_interval=0.5, **kw), \
        servers


def test_wait_keeps_waiting_until_the_lagging_secondary_is_notified(lab, run_module):
    bind = lab.part("bind")
    prim, sec, zone = bind["primary"], bind["secondary"], bind["zones"]["direct"]
    name = unique_name(zone)
    args, servers = _wait_args(lab, name, wait_timeout=120)
    stop = threading.Event()

    def notify_later():
        # Wait until the primary has the value (observed), then let the module go through more than one round
        # (rounds are 10 s) before the secondary is told to catch up.
        while not stop.is_set() and "wait-token" not in dnstools.query_txt(prim["host"], prim["port"], name):
            time.sleep(0.2)
        if not stop.wait(12):
            dnstools.notify(sec["host"], sec["port"], zone)

    helper = threading.Thread(target=notify_later, daemon=True)
    helper.start()
    try:
        res = run_module(MODULE, args)
    finally:
        stop.set()
        helper.join()
    assert res.get("failed") is not True, res
    assert res["changed"] is True and res["propagated"] is True
    out = res["_stdout"]
    assert f"dns01_record: waiting for TXT {name} on 2 nameservers" in out
    assert f"still behind: {servers[1]} (serves nothing)" in out
    assert all(s["ok"] for s in res["nameserver_status"])
    assert dnstools.query_txt(sec["host"], sec["port"], name) == ["wait-token"]
    res = run_module(MODULE, dict(args, state="absent", wait=False))
    assert res["changed"] is True
    dnstools.notify(sec["host"], sec["port"], zone)


def test_wait_times_out_with_a_clear_message(lab, run_module):
    bind = lab.part("bind")
    sec, zone = bind["secondary"], bind["zones"]["direct"]
    name = unique_name(zone)
    args, servers = _wait_args(lab, name, wait_timeout=3)
    res = run_module(MODULE, args)
    assert_clean_failure(res, "Timed out", f"still behind: {servers[1]} (serves nothing)", name)
    assert f"{servers[0]} serves it" in res["msg"]
    assert dnstools.query_txt(sec["host"], sec["port"], name) == []
    # on_wait_timeout: return gives the same picture without failing
    res = run_module(MODULE, dict(args, on_wait_timeout="return"))
    assert res.get("failed") is not True and res["propagated"] is False and res["changed"] is False
    run_module(MODULE, dict(args, state="absent", wait=False))
    dnstools.notify(sec["host"], sec["port"], zone)


def test_wait_discovers_the_nameservers_through_the_resolver(lab, run_module):
    """No nameservers given: the zone's NS names and their addresses come from the resolver (the primary here,
    with nameserver_port pointing at it), for present and for absent."""
    setup = bind_setup(lab)
    prim = lab.part("bind")["primary"]
    name = unique_name(setup.zone)
    args = dict(setup.args, record=name, value=["found-ns"], wait=True, wait_timeout=30, wait_interval=0.5,
                resolver=[f"{prim['host']}:{prim['port']}"], nameserver_port=prim["port"])
    res = run_module(MODULE, args)
    assert res.get("failed") is not True, res
    assert res["propagated"] is True
    # ns1 and ns2.example.test both resolve to 127.0.0.1: one server to poll
    assert [s["server"] for s in res["nameserver_status"]] == [f"127.0.0.1:{prim['port']}"]
    assert res["nameserver_status"][0]["serving"] == ["found-ns"]
    res = run_module(MODULE, dict(args, state="absent"))
    assert res["propagated"] is True and res["nameserver_status"][0]["serving"] == []
    assert setup.observe(name) == []


# -- bad input and server errors: clean failures that name the field or the server ----------------------------

def test_unknown_provider(run_module):
    res = run_module(MODULE, {"provider": "bind9", "record": "_acme-challenge.x.example.test", "value": ["v"]})
    assert_clean_failure(res, "provider", "rfc2136")


@pytest.mark.parametrize("value,needle", [([], "value:"), ([""], "value:"), (["ok", ""], "value:")])
def test_empty_value(lab, run_module, value, needle):
    setup = bind_setup(lab)
    res = run_module(MODULE, dict(setup.args, record=unique_name(setup.zone), value=value))
    assert_clean_failure(res, needle)


def test_wrong_tsig_key_reports_the_server_rcode(lab, run_module):
    setup = bind_setup(lab)
    base, zone, observe, secret = setup.args, setup.zone, setup.observe, setup.secret
    bind = lab.part("bind")
    where = f"{bind['primary']['host']}:{bind['primary']['port']}"
    name = unique_name(zone)
    wrong = dict(base["rfc2136"], key_secret="AAAA" + secret)
    res = run_module(MODULE, dict(base, record=name, value=["v"], rfc2136=wrong), verbosity=3)
    assert_clean_failure(res, where, "BADSIG", bind["tsig"]["name"])
    assert wrong["key_secret"] not in res["_stdout"]
    unknown = dict(base["rfc2136"], key_name="no-such-key")
    res = run_module(MODULE, dict(base, record=name, value=["v"], rfc2136=unknown))
    assert_clean_failure(res, where, "BADKEY", "no-such-key")
    assert observe(name) == []


def test_zone_not_found(lab, run_module):
    base = bind_setup(lab).args
    res = run_module(MODULE, dict(base, record="_acme-challenge.sbc1.nowhere.invalid", value=["v"]))
    assert_clean_failure(res, "No zone for _acme-challenge.sbc1.nowhere.invalid")
    cf_base = cloudflare_setup(lab).args
    res = run_module(MODULE, dict(cf_base, record="_acme-challenge.sbc1.example.org", value=["v"]))
    assert_clean_failure(res, "No zone for _acme-challenge.sbc1.example.org", "cf.test")


def test_unreachable_server(lab, run_module):
    setup = bind_setup(lab)
    base, zone = setup.args, setup.zone
    port = free_port()  # nothing listens there
    rfc = dict(base["rfc2136"], port=port, timeout=2)
    res = run_module(MODULE, dict(base, record=unique_name(zone), value=["v"], rfc2136=rfc))
    assert_clean_failure(res, f"127.0.0.1:{port}", "timeout 2s")


def test_cloudflare_bad_token_and_paging(lab, run_module):
    setup = cloudflare_setup(lab)
    base, zone, observe = setup.args, setup.zone, setup.observe
    cf = lab.part("cloudflare")
    name = unique_name(zone)
    res = run_module(MODULE, dict(base, record=name, value=["v"], cloudflare=dict(base["cloudflare"], api_token="x")))
    assert_clean_failure(res, "HTTP 403", "10000")
    cf_control(cf, "/config", {"max_per_page": 1})
    try:
        res = run_module(MODULE, dict(base, record=name, value=["p1", "p2", "p3"]))
        assert res["changed"] is True
        res = run_module(MODULE, dict(base, record=name, value=["p1", "p2", "p3"]))
        assert res["changed"] is False and sorted(res["txt_before"]) == ["p1", "p2", "p3"]
        run_module(MODULE, dict(base, record=name, value=["p1", "p2", "p3"], state="absent"))
        assert observe(name) == []
    finally:
        cf_control(cf, "/config", {"max_per_page": 100})


def test_longest_suffix_zone_on_cloudflare(lab, run_module):
    setup = cloudflare_setup(lab)
    base, observe = setup.args, setup.observe
    name = unique_name("deep.cf.test")
    res = run_module(MODULE, dict(base, record=name, value=["deep"]))
    assert res["zone"] == "deep.cf.test"
    cf = lab.part("cloudflare")
    recs = [r for r in cf_state(cf)["records"] if r["name"] == name]
    assert [r["zone_id"] for r in recs] == [cf["zones"]["deep.cf.test"]]
    run_module(MODULE, dict(base, record=name, value=["deep"], state="absent"))
    assert observe(name) == []


# -- issue 10: validate first, write second; no secret in any output ---------------------------------------------

def test_unresolvable_nameservers_fail_before_the_write(lab, run_module):
    setup = bind_setup(lab)
    prim = lab.part("bind")["primary"]
    name = unique_name(setup.zone)
    res = run_module(MODULE, dict(setup.args, record=name, value=["never-written"], wait=True, wait_timeout=5,
                                  nameservers=["ns9.nowhere.example.test"],
                                  resolver=[f"{prim['host']}:{prim['port']}"]))
    assert_clean_failure(res, "ns9.nowhere.example.test")
    assert setup.observe(name) == []  # nothing was left in the zone (it used to be)


def test_garbage_rfc2136_server_name_is_a_clear_input_error(lab, run_module):
    setup = bind_setup(lab)
    for server in ("a" * 64 + ".example.test", "foo..bar.example.test"):
        res = run_module(MODULE, dict(setup.args, record=unique_name(setup.zone), value=["v"],
                                      rfc2136=dict(setup.args["rfc2136"], server=server)))
        assert_clean_failure(res, "rfc2136.server:")
        assert "Unexpected" not in res["msg"] and "UnicodeError" not in res["_stdout"]


@pytest.mark.parametrize("which,group,key", [("cloudflare", "cloudflare", "api_token"),
                                             ("powerdns-api", "powerdns", "api_key")])
def test_credential_with_a_trailing_newline_works_and_never_shows(lab, run_module, which, group, key):
    setup = SETUPS[which](lab)
    name = unique_name(setup.zone)
    args = dict(setup.args, record=name, value=["nl"])
    args[group] = dict(args[group], **{key: setup.secret + "\n"})
    res = run_module(MODULE, args, verbosity=3)
    assert res.get("failed") is not True, res.get("msg")
    assert setup.observe(name) == ["nl"]
    assert setup.secret not in res["_stdout"]
    # a line break inside the credential is refused, naming the field, without echoing any part of it
    half = len(setup.secret) // 2
    args[group] = dict(args[group], **{key: setup.secret[:half] + "\n" + setup.secret[half:]})
    res = run_module(MODULE, dict(args, state="absent"), verbosity=3)
    assert_clean_failure(res, f"{group}.{key}:")
    assert setup.secret[:half] not in res["_stdout"] and setup.secret[half:] not in res["_stdout"]
    args[group] = dict(args[group], **{key: setup.secret})
    assert run_module(MODULE, dict(args, state="absent"))["changed"] is True
    assert setup.observe(name) == []
