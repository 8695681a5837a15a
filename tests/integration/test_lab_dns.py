"""The lab's DNS parts are real and behave as lab.json promises: BIND (TSIG-updatable primary, lagging
secondary, CNAME delegation), PowerDNS (API and RFC 2136) and moto (Route 53).

Every check reads the result back independently of the write: a DNS query (dnspython or ``dig``), a zone
transfer, or the API's own listing.
"""

from __future__ import annotations

import base64
import json
import secrets
import shutil
import subprocess
import urllib.error
import urllib.request

import dns.name
import dns.query
import dns.rcode
import dns.zone
import pytest
from byoclab import dnstools

NOERROR, NOTAUTH, REFUSED = dns.rcode.NOERROR, dns.rcode.NOTAUTH, dns.rcode.REFUSED


@pytest.fixture(scope="module")
def bind(lab):
    return lab.part("bind")


@pytest.fixture(scope="module")
def pdns(lab):
    return lab.part("powerdns")


@pytest.fixture(scope="module")
def r53(lab):
    return lab.part("moto")


def token() -> str:
    return secrets.token_urlsafe(16)


def dig_txt(host: str, port: int, name: str) -> list[str]:
    """TXT values as the ``dig`` command line tool sees them (over TCP), a client independent of dnspython."""
    dig = shutil.which("dig")
    assert dig, "dig (Debian bind9-dnsutils) is needed for this test"
    out = subprocess.run([dig, "+short", "+tcp", "-p", str(port), f"@{host}", name, "TXT"],
                         capture_output=True, text=True, timeout=15, check=True).stdout
    return [line.strip().strip('"') for line in out.splitlines() if line.strip()]


def update(server: dict, tsig: dict, zone: str, name: str, value: str, *, secret: str | None = None,
           key_name: str | None = None, action: str = "add") -> dnstools.UpdateResult:
    return dnstools.tsig_update(server["host"], server["port"], zone, name, value,
                                key_name=key_name or tsig["name"], secret=secret or tsig["secret"],
                                algorithm=tsig["algorithm"], action=action)


# --------------------------------------------------------------------------------------------- BIND primary
def test_bind_tsig_update_is_served_by_primary(bind):
    prim, zone = bind["primary"], bind["zones"]["direct"]
    name, value = f"_acme-challenge.sbc1.{zone}", token()
    before = dnstools.soa_serial(prim["host"], prim["port"], zone)

    result = update(prim, bind["tsig"], zone, name, value)

    assert (result.rcode_text, result.reply_verified) == ("NOERROR", True)
    assert value in dnstools.query_txt(prim["host"], prim["port"], name, tcp=True)
    assert value in dnstools.query_txt(prim["host"], prim["port"], name, tcp=False)
    assert value in dig_txt(prim["host"], prim["port"], name)
    assert dnstools.soa_serial(prim["host"], prim["port"], zone) != before

    # Removing one value leaves the record set without it (what cleanup relies on).
    assert update(prim, bind["tsig"], zone, name, value, action="delete").rcode == NOERROR
    assert value not in dig_txt(prim["host"], prim["port"], name)


def test_bind_key_file_works_with_nsupdate(bind):
    prim, zone = bind["primary"], bind["zones"]["direct"]
    name, value = f"_acme-challenge.sbc2.{zone}", token()
    script = (f"server {prim['host']} {prim['port']}\nzone {zone}\n"
              f'update add {name}. 60 IN TXT "{value}"\nsend\n')
    proc = subprocess.run(["nsupdate", "-v", "-k", bind["tsig"]["file"]], input=script, capture_output=True,
                          text=True, timeout=15, check=False)
    assert proc.returncode == 0, proc.stderr
    assert dig_txt(prim["host"], prim["port"], name) == [value]


def test_bind_rejects_wrong_secret_unknown_key_and_unsigned_updates(bind):
    prim, zone = bind["primary"], bind["zones"]["direct"]
    name = f"_acme-challenge.sbc3.{zone}"
    wrong_secret = base64.b64encode(secrets.token_bytes(32)).decode()
    values = [token(), token(), token()]

    bad_sig = update(prim, bind["tsig"], zone, name, values[0], secret=wrong_secret)
    bad_key = update(prim, bind["tsig"], zone, name, values[1], key_name="wrong-key")
    unsigned = dns.query.tcp(_unsigned_update(zone, name, values[2]), prim["host"], port=prim["port"], timeout=5)

    # RFC 8945: a bad MAC is NOTAUTH with TSIG error BADSIG, an unknown key NOTAUTH with BADKEY (unsigned
    # replies, so they do not verify); an unsigned update is refused by the update-policy.
    assert (bad_sig.rcode_text, bad_sig.tsig_error_text, bad_sig.reply_verified) == ("NOTAUTH", "BADSIG", False)
    assert (bad_key.rcode_text, bad_key.tsig_error_text, bad_key.reply_verified) == ("NOTAUTH", "BADKEY", False)
    assert dns.rcode.to_text(unsigned.rcode()) == "REFUSED"
    served = dnstools.query_txt(prim["host"], prim["port"], name)
    assert not set(values) & set(served)


def _unsigned_update(zone: str, name: str, value: str):
    import dns.update

    upd = dns.update.UpdateMessage(zone)
    upd.add(dns.name.from_text(name), 60, "TXT", f'"{value}"')
    return upd


# ------------------------------------------------------------------------------------------- BIND secondary
def test_secondary_lags_until_notified(bind):
    prim, sec, zone = bind["primary"], bind["secondary"], bind["zones"]["direct"]
    name, value = f"_acme-challenge.lag.{zone}", token()
    sec_before = dnstools.soa_serial(sec["host"], sec["port"], zone)

    assert update(prim, bind["tsig"], zone, name, value).rcode == NOERROR
    prim_after = dnstools.soa_serial(prim["host"], prim["port"], zone)

    # The primary never notifies and the SOA refresh is an hour: the secondary still has the old zone.
    assert value in dnstools.query_txt(prim["host"], prim["port"], name)
    assert dnstools.soa_serial(sec["host"], sec["port"], zone) == sec_before != prim_after
    assert value not in dnstools.query_txt(sec["host"], sec["port"], name)

    assert dnstools.notify(sec["host"], sec["port"], zone) == NOERROR
    assert dnstools.wait_serial(sec["host"], sec["port"], zone, prim_after, timeout=15) == prim_after
    assert value in dnstools.query_txt(sec["host"], sec["port"], name)
    assert value in dig_txt(sec["host"], sec["port"], name)


def test_both_nameservers_of_example_test_are_published(bind):
    prim, zone = bind["primary"], bind["zones"]["direct"]
    ns = dnstools.query_rrset(prim["host"], prim["port"], zone, "NS")
    assert sorted(ns) == sorted(f"{n}." for n in bind["nameservers"][zone])
    for host in bind["nameservers"][zone] + [f"sbc{i}.{zone}" for i in (1, 2, 3)]:
        assert dnstools.query_rrset(prim["host"], prim["port"], host, "A") == ["127.0.0.1"]


# ------------------------------------------------------------------------------------- CNAME delegation
def test_corp_cname_points_into_delegated_challenge_zone(bind):
    prim = bind["primary"]
    corp, challenge = bind["zones"]["delegating"], bind["zones"]["challenge"]
    for sbc in ("sbc1", "sbc2"):
        assert dnstools.query_rrset(prim["host"], prim["port"], f"_acme-challenge.{sbc}.{corp}", "CNAME") == [
            f"{sbc}.{challenge}."]

    # The parent zone really delegates (read from a zone transfer, not from the child's own NS set).
    parent = dns.zone.from_xfr(dns.query.xfr(prim["host"], corp, port=prim["port"], timeout=5, relativize=False),
                               relativize=False)
    delegation = parent.get_rdataset(challenge + ".", "NS")
    glue = parent.get_rdataset(f"ns1.{corp}.", "A")
    assert [r.to_text() for r in delegation] == [f"ns1.{corp}."]
    assert [r.to_text() for r in glue] == ["127.0.0.1"]


def test_corp_zone_refuses_updates_but_challenge_zone_accepts(bind):
    prim, tsig = bind["primary"], bind["tsig"]
    corp, challenge = bind["zones"]["delegating"], bind["zones"]["challenge"]
    value = token()

    refused = update(prim, tsig, corp, f"_acme-challenge.sbc1.{corp}", value)
    # The key is valid (reply signed), the zone simply does not allow updates.
    assert (refused.rcode_text, refused.reply_verified) == ("REFUSED", True)
    assert dnstools.query_rrset(prim["host"], prim["port"], f"_acme-challenge.sbc1.{corp}", "CNAME") == [
        f"sbc1.{challenge}."]

    accepted = update(prim, tsig, challenge, f"sbc1.{challenge}", value)
    assert accepted.rcode == NOERROR
    assert value in dig_txt(prim["host"], prim["port"], f"sbc1.{challenge}")


# ------------------------------------------------------------------------------------------------- PowerDNS
def _pdns_api(pdns: dict, method: str, path: str, body: object | None = None, key: str | None = None):
    api = pdns["api"]
    req = urllib.request.Request(f"{api['url']}/servers/{api['server_id']}{path}", method=method,
                                 data=json.dumps(body).encode() if body is not None else None,
                                 headers={"X-API-Key": key or api["api_key"], "Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=10) as resp:
            raw = resp.read()
            return resp.status, json.loads(raw) if raw else None
    except urllib.error.HTTPError as exc:
        return exc.code, None


def test_powerdns_api_record_is_served_over_dns(pdns):
    zone, srv = pdns["zone"], pdns["dns"]
    name, value = f"_acme-challenge.sbc1.{zone}", token()

    status = _pdns_api(pdns, "PATCH", f"/zones/{zone}.", {"rrsets": [{
        "name": f"{name}.", "type": "TXT", "ttl": 60, "changetype": "REPLACE",
        "records": [{"content": f'"{value}"', "disabled": False}]}]})[0]

    assert status == 204
    assert dig_txt(srv["host"], srv["port"], name) == [value]
    assert dnstools.query_txt(srv["host"], srv["port"], name, tcp=False) == [value]
    assert dnstools.query_rrset(srv["host"], srv["port"], f"sbc1.{zone}", "A") == ["127.0.0.1"]
    assert dnstools.query_rrset(srv["host"], srv["port"], zone, "NS") == [f"ns1.{zone}."]
    assert _pdns_api(pdns, "GET", f"/zones/{zone}.", key="not-the-key")[0] == 401


def test_powerdns_rfc2136_with_tsig(pdns):
    zone, srv, tsig = pdns["zone"], pdns["dns"], pdns["tsig"]
    name, value, rejected = f"_acme-challenge.rfc2136.{zone}", token(), token()

    ok = update(srv, tsig, zone, name, value)
    bad = update(srv, tsig, zone, name, rejected, secret=base64.b64encode(secrets.token_bytes(32)).decode())

    assert (ok.rcode_text, ok.reply_verified) == ("NOERROR", True)
    # Observed with PowerDNS 4.7.3: a bad MAC is answered REFUSED with no TSIG error in the reply (unlike BIND's
    # NOTAUTH/BADSIG); the server logs "Signature with TSIG key 'acme-key' failed to validate".
    assert (bad.rcode_text, bad.tsig_error_text, bad.reply_verified) == ("REFUSED", None, False)
    assert dig_txt(srv["host"], srv["port"], name) == [value]
    status, body = _pdns_api(pdns, "GET", f"/zones/{zone}.")
    assert status == 200
    api_txt = [r["content"] for rr in body["rrsets"] if rr["name"] == f"{name}." and rr["type"] == "TXT"
               for r in rr["records"]]
    assert api_txt == [f'"{value}"']


# ----------------------------------------------------------------------------------------------------- moto
def test_moto_route53_zone_and_txt_upsert(r53):
    import boto3

    client = boto3.client("route53", endpoint_url=r53["endpoint_url"], region_name=r53["region"],
                          aws_access_key_id=r53["access_key"], aws_secret_access_key=r53["secret_key"])
    zones = client.list_hosted_zones_by_name(DNSName=r53["zone"])["HostedZones"]
    assert [(z["Name"], z["Id"].rsplit("/", 1)[-1]) for z in zones if z["Name"] == r53["zone"] + "."] == [
        (r53["zone"] + ".", r53["hosted_zone_id"])]

    name, value = f"_acme-challenge.sbc1.{r53['zone']}.", token()
    change = client.change_resource_record_sets(HostedZoneId=r53["hosted_zone_id"], ChangeBatch={"Changes": [{
        "Action": "UPSERT", "ResourceRecordSet": {"Name": name, "Type": "TXT", "TTL": 60,
                                                  "ResourceRecords": [{"Value": f'"{value}"'}]}}]})
    assert change["ChangeInfo"]["Status"] in ("PENDING", "INSYNC")

    listed = client.list_resource_record_sets(HostedZoneId=r53["hosted_zone_id"])["ResourceRecordSets"]
    txt = [r["Value"] for rr in listed if rr["Name"] == name and rr["Type"] == "TXT" for r in rr["ResourceRecords"]]
    assert txt == [f'"{value}"']
