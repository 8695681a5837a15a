"""dns01_record with provider azure against the lab's Azure DNS emulator (Entra ID tokens, ARM record sets with
etags, 412 and 429), and a certificate issued by Pebble (pebble-dns) with the challenge in the Azure zone.

Every effect is observed independently of the module: the emulator's record sets and request log through its
test-only control API, and real DNS queries to the lab's DNS bridge (which serves the Azure zone) and resolver."""

from __future__ import annotations

import json
import ssl
import urllib.request
import uuid

import dns.message
import dns.query
import dns.rdatatype
import pytest

from byoclab.core import free_port

MODULE = "dns01_record"


def unique_name(zone: str) -> str:
    return f"_acme-challenge.t{uuid.uuid4().hex[:10]}.{zone}"


def assert_clean_failure(res: dict, *needles: str) -> None:
    assert res.get("failed") is True, res
    assert "Traceback" not in res["_stdout"], res["_stdout"][-3000:]
    for needle in needles:
        assert needle in res["msg"], (needle, res["msg"])


class Azure:
    """The lab part, its module arguments, and its control API."""

    def __init__(self, lab):
        self.d = lab.part("azure")
        self.ctx = ssl.create_default_context(cafile=self.d["ca_file"])
        self.zone = self.d["zone"]
        self.secret = self.d["client_secret"]

    def args(self, **azure_overrides) -> dict:
        d = self.d
        az = {"subscription_id": d["subscription_id"], "tenant_id": d["tenant_id"], "client_id": d["client_id"],
              "client_secret": d["client_secret"], "resource_manager_url": d["resource_manager_url"],
              "authority_url": d["authority_url"], "ca_path": d["ca_file"]}
        az.update(azure_overrides)
        return {"provider": "azure", "azure": {k: v for k, v in az.items() if v is not None}}

    def _call(self, path: str, body=None):
        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request(self.d["control_url"] + path, data=data, method="POST" if data else "GET",
                                     headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(req, context=self.ctx, timeout=5) as resp:
            return json.load(resp)

    def values(self, name: str) -> list[str]:
        zone = "deep.az.test" if name.endswith(".deep.az.test") else self.zone
        rs = self._call("/state")["zones"][zone]["records"].get(name)
        return rs["values"] if rs else []

    def write(self, name: str, values: list[str]) -> None:
        self._call("/recordset", {"name": name, "values": values})

    def fault(self, **body) -> None:
        self._call("/fault", body)

    def requests(self) -> list[dict]:
        return self._call("/requests")


@pytest.fixture
def az(lab):
    azure = Azure(lab)
    yield azure
    azure._call("/reset", {})


def test_lifecycle_keeps_other_writers_values(az, run_module):
    name = unique_name(az.zone)
    az.write(name, ["theirs"])  # a value another system owns
    base = dict(az.args(), record=name)

    res = run_module(MODULE, dict(base, value=["mine"]), check=True, diff=True)
    assert res["changed"] is True and res["txt_after"] == ["theirs", "mine"]
    assert az.values(name) == ["theirs"]

    res = run_module(MODULE, dict(base, value=["mine"]), diff=True, verbosity=3)
    assert res["changed"] is True and res["zone"] == az.zone and res["txt_before"] == ["theirs"]
    assert az.secret not in res["_stdout"]
    assert 'TXT "mine"' in res["diff"]["after"]
    assert az.values(name) == ["theirs", "mine"]
    assert run_module(MODULE, dict(base, value=["mine"]))["changed"] is False

    res = run_module(MODULE, dict(base, value=["mine"], state="absent"))
    assert res["changed"] is True and res["removed"] == ["mine"]
    assert az.values(name) == ["theirs"]

    # removing the last value deletes the record set
    res = run_module(MODULE, dict(base, value=["theirs"], state="absent"))
    assert res["changed"] is True and az.values(name) == []
    assert run_module(MODULE, dict(base, value=["theirs"], state="absent"))["changed"] is False


def _writes(az, since: int) -> list[tuple[str, int]]:
    return [(r["method"], r["status"]) for r in az.requests()[since:] if r["method"] in ("PUT", "DELETE")]


@pytest.mark.parametrize("state", ["present", "absent"])
def test_concurrent_writer_between_read_and_write_forces_412_and_nothing_is_lost(az, run_module, state):
    name = unique_name(az.zone)
    az.write(name, ["theirs", "mine"] if state == "absent" else ["theirs"])
    az.fault(kind="concurrent", name=name, value="concurrent", count=1)
    seen = len(az.requests())
    res = run_module(MODULE, dict(az.args(), record=name, value=["mine"], state=state))
    assert res.get("failed") is not True, res.get("msg")
    assert res["changed"] is True
    # the first write was refused (412, stale etag); the second, re-read and re-applied, went through
    writes = _writes(az, seen)
    assert writes[0] == ("PUT", 412) and len(writes) == 2 and writes[1][1] in (200, 201)
    expected = ["theirs", "concurrent", "mine"] if state == "present" else ["theirs", "concurrent"]
    assert sorted(az.values(name)) == sorted(expected)


def test_412_retries_are_bounded_and_the_message_says_what_is_there(az, run_module):
    name = unique_name(az.zone)
    az.write(name, ["theirs"])
    az.fault(kind="concurrent", name=name, value="busy", count=50)
    seen = len(az.requests())
    res = run_module(MODULE, dict(az.args(), record=name, value=["mine"]))
    assert_clean_failure(res, "kept changing", "HTTP 412", name)
    assert [s for _m, s in _writes(az, seen)] == [412] * 6
    assert "mine" not in az.values(name)


def test_429_is_retried_after_retry_after(az, run_module):
    name = unique_name(az.zone)
    az.fault(kind="throttle", count=2, retry_after=1)
    seen = len(az.requests())
    res = run_module(MODULE, dict(az.args(), record=name, value=["throttled"]))
    assert res.get("failed") is not True, res.get("msg")
    assert [r["status"] for r in az.requests()[seen:]].count(429) == 2
    assert az.values(name) == ["throttled"]
    run_module(MODULE, dict(az.args(), record=name, value=["throttled"], state="absent"))


def test_zone_found_across_resource_groups_and_managed_identity(az, run_module):
    name = unique_name("deep.az.test")
    args = dict(az.args(auth="managed_identity", tenant_id=None, client_secret=None, client_id=None,
                        managed_identity_url=az.d["managed_identity_url"]), record=name, value=["mi"])
    res = run_module(MODULE, args)
    assert res.get("failed") is not True, res.get("msg")
    assert res["zone"] == "deep.az.test" and az.values(name) == ["mi"]
    assert run_module(MODULE, dict(args, state="absent"))["changed"] is True
    assert az.values(name) == []


@pytest.mark.parametrize("override,needles", [
    ({"client_secret": "wrong-" + uuid.uuid4().hex}, ["HTTP 401", "AADSTS7000215", "azure.client_secret"]),
    ({"tenant_id": str(uuid.uuid4())}, ["AADSTS90002", "azure.tenant_id"]),
    ({"resource_group": "rg-missing"}, ["ResourceGroupNotFound", "azure.resource_group"]),
])
def test_bad_credentials_and_settings_fail_clearly_without_secrets(az, run_module, override, needles):
    name = unique_name(az.zone)
    res = run_module(MODULE, dict(az.args(**override), record=name, value=["v"]), verbosity=3)
    assert_clean_failure(res, *needles)
    assert az.secret not in res["_stdout"]
    if "client_secret" in override:
        assert override["client_secret"] not in res["_stdout"]
    assert az.values(name) == []


def test_missing_zone_names_the_zone_option(az, run_module):
    res = run_module(MODULE, dict(az.args(), record="_acme-challenge.sbc1.example.org", value=["v"]))
    assert_clean_failure(res, "No zone for _acme-challenge.sbc1.example.org", "az.test")
    res = run_module(MODULE, dict(az.args(resource_group="rg-dns"), record="_acme-challenge.x.deep.az.test",
                                  zone="deep.az.test", value=["v"]))
    assert_clean_failure(res, "no DNS zone deep.az.test", "azure.resource_group")


def test_unreachable_endpoint_names_the_option(az, run_module):
    port = free_port()  # nothing listens there
    res = run_module(MODULE, dict(az.args(authority_url=f"https://127.0.0.1:{port}"), record=unique_name(az.zone),
                                  value=["v"]), verbosity=3)
    assert_clean_failure(res, f"127.0.0.1:{port}", "azure.authority_url")
    assert az.secret not in res["_stdout"]
    url = f"https://127.0.0.1:{port}/metadata/identity/oauth2/token"
    res = run_module(MODULE, dict(az.args(auth="managed_identity", managed_identity_url=url, client_secret=None),
                                  record=unique_name(az.zone), value=["v"]))
    assert_clean_failure(res, f"127.0.0.1:{port}", "azure.managed_identity_url")
    # Entra ID issues tokens only for a known audience: another resource_manager_url is refused by name
    res = run_module(MODULE, dict(az.args(resource_manager_url=f"https://127.0.0.1:{port}"),
                                  record=unique_name(az.zone), value=["v"]), verbosity=3)
    assert_clean_failure(res, "AADSTS70011", "azure.resource_manager_url")
    assert az.secret not in res["_stdout"]


def test_secret_with_trailing_newline_from_the_environment(az, run_module):
    name = unique_name(az.zone)
    args = dict(az.args(client_secret=None, tenant_id=None, client_id=None, subscription_id=None), record=name,
                value=["env"])
    env = {"AZURE_CLIENT_SECRET": az.secret + "\n", "AZURE_TENANT_ID": az.d["tenant_id"],
           "AZURE_CLIENT_ID": az.d["client_id"], "AZURE_SUBSCRIPTION_ID": az.d["subscription_id"]}
    res = run_module(MODULE, args, env=env, verbosity=3)
    assert res.get("failed") is not True, res.get("msg")
    assert az.values(name) == ["env"] and az.secret not in res["_stdout"]
    run_module(MODULE, dict(args, state="absent"), env=env)
    assert az.values(name) == []


def test_wait_polls_the_bridge_that_serves_the_azure_zone(lab, az, run_module):
    """The lab's DNS bridge serves az.test from the emulator, as Azure's own nameservers serve the API's records."""
    bridge = lab.part("dnsbridge")["dns"]
    name = unique_name(az.zone)
    res = run_module(MODULE, dict(az.args(), record=name, value=["served"], wait=True, wait_timeout=30,
                                  wait_interval=0.5, nameservers=[f"{bridge['host']}:{bridge['port']}"]))
    assert res.get("failed") is not True, res.get("msg")
    assert res["propagated"] is True
    answer = dns.query.tcp(dns.message.make_query(name, dns.rdatatype.TXT), bridge["host"], port=bridge["port"],
                           timeout=5)
    assert [b"".join(rd.strings) for rrset in answer.answer for rd in rrset] == [b"served"]
    run_module(MODULE, dict(az.args(), record=name, value=["served"], state="absent"))


def test_certificate_issued_with_the_challenge_in_the_azure_zone(lab, az, run_module, tmp_path):
    from test_certificate_issue import Role, part, verify_chain  # the role harness of the certificate tests

    part(lab, "pebble-dns")
    bridge = part(lab, "dnsbridge")["dns"]
    settings = {"certificate_issue_dns_provider": "azure",
                "certificate_issue_dns_options": az.args()["azure"],
                "certificate_issue_dns_zone": az.zone,
                "certificate_issue_dns_nameservers": [f"{bridge['host']}:{bridge['port']}"]}
    names = [f"sbc-azure.{az.zone}"]
    role = Role(lab, tmp_path, "pebble-dns", "g-dns-azure", names, certificate_issue_acme_profile="default",
                **settings)
    count = role.order_count()
    seen = len(az.requests())
    proc = role.run(verbosity=3)
    assert proc.returncode == 0, proc.stdout[-6000:] + proc.stderr[-2000:]
    assert az.secret not in proc.stdout + proc.stderr
    assert role.order_count() == count + 1
    verify_chain(role.stored(run_module)["current"]["fullchain"], role.roots(), names)
    # the challenge went through Azure (a TXT record set was written and deleted), and is gone, as the ACME
    # server's resolver sees it
    methods = [r["method"] for r in az.requests()[seen:]]
    assert "PUT" in methods and "DELETE" in methods
    res = part(lab, "resolver")["dns"]
    answer = dns.query.tcp(dns.message.make_query(f"_acme-challenge.{names[0]}", dns.rdatatype.TXT), res["host"],
                           port=res["port"], timeout=5)
    assert not [r for r in answer.answer if r.rdtype == dns.rdatatype.TXT], answer
    assert az.values(f"_acme-challenge.{names[0]}") == []
