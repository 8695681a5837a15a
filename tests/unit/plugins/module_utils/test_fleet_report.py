"""fleet_report (module_utils/_fleet_report.py): the files' content, the findings, the heartbeat's target and the
atomic write. The .prom text is parsed with a strict line grammar of the text exposition format 0.0.4."""

from __future__ import annotations

import datetime
import json
import os
import re

import pytest

from ansible_collections.byoc.certificates.plugins.module_utils import _fleet_report as R
from ansible_collections.byoc.certificates.plugins.module_utils._errors import InputError

NOW = datetime.datetime(2026, 11, 30, 5, 0, 0, tzinfo=datetime.timezone.utc)

# One line of the text format: a comment (HELP/TYPE), or a sample name{labels} value (no timestamp here).
HELP_RE = re.compile(r"^# HELP (?P<name>[a-zA-Z_:][a-zA-Z0-9_:]*) [^\n]+$")
TYPE_RE = re.compile(r"^# TYPE (?P<name>[a-zA-Z_:][a-zA-Z0-9_:]*) (counter|gauge|histogram|summary|untyped)$")
SAMPLE_RE = re.compile(r'^(?P<name>[a-zA-Z_:][a-zA-Z0-9_:]*)'
                       r'(?:\{(?P<labels>[a-zA-Z_][a-zA-Z0-9_]*="(?:[^"\\\n]|\\[\\"n])*"'
                       r'(?:,[a-zA-Z_][a-zA-Z0-9_]*="(?:[^"\\\n]|\\[\\"n])*")*)\})?'
                       r' (?P<value>[-+]?(?:\d+(?:\.\d+)?(?:[eE][-+]?\d+)?|NaN|[-+]?Inf))$')
LABEL_RE = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\\n]|\\[\\"n])*)"')


def parse_prom(text: str) -> dict:
    """Strict: every line matches; HELP then TYPE once per metric, before its samples, and each metric's samples
    are contiguous. Returns {name: [(labels dict, value float)]}."""
    assert text.endswith("\n")
    metrics: dict[str, list] = {}
    typed: set[str] = set()
    current = None
    lines = text[:-1].split("\n")
    for i, line in enumerate(lines):
        if m := HELP_RE.match(line):
            assert m["name"] not in metrics, f"line {i + 1}: second HELP for {m['name']}"
            assert TYPE_RE.match(lines[i + 1]) and TYPE_RE.match(lines[i + 1])["name"] == m["name"]
            current = m["name"]
            metrics[current] = []
        elif m := TYPE_RE.match(line):
            assert m["name"] == current and m["name"] not in typed
            typed.add(m["name"])
        else:
            m = SAMPLE_RE.match(line)
            assert m, f"line {i + 1} is not valid exposition format: {line!r}"
            assert m["name"] == current, f"line {i + 1}: sample of {m['name']} outside its block"
            labels = dict(LABEL_RE.findall(m["labels"] or ""))
            metrics[current].append((labels, float(m["value"])))
    return metrics


def group(**over):
    g = {
        "group": "sbc-emea", "status": "renewed", "reason": "31% of the lifetime left",
        "old_not_after": "2026-12-20T10:00:00Z", "new_not_after": "2027-02-02T10:00:00Z",
        "next_renewal": "2027-01-12T02:00:00+01:00",
        "members": [{"host": "sbc1", "endpoint": "sbc1.example.com:5061", "fingerprint": "ab" * 32,
                     "not_after": "2027-02-02T10:00:00Z"},
                    {"host": "sbc2", "endpoint": "sbc2.example.com:5061", "fingerprint": "ab" * 32,
                     "not_after": "2027-02-02T10:00:00Z"}],
        "trunks": [{"name": "T1", "connected": True, "observed_at": "2026-11-30T04:59:00Z"},
                   {"name": "T2", "connected": False, "observed_at": None}],
        "warnings": [],
    }
    g.update(over)
    return g


def test_table_columns_and_summary():
    other = group(group="sbc-us", status="unchanged", reason="", members=[], trunks=[], new_not_after=None,
                  old_not_after="2027-03-01T00:00:00Z")
    built = R.build({"groups": [group(), other]}, NOW)
    lines = built["table"]
    assert lines[0].split() == ["GROUP", "STATUS", "EXPIRY", "OLD", "->", "NEW", "MEMBERS", "TRUNKS", "REASON"]
    row = lines[2]
    for cell in ("sbc-emea", "renewed", "2026-12-20 -> 2027-02-02", "2 ", "1/2 up", "31% of the lifetime left"):
        assert cell in row
    assert "2027-03-01 (kept)" in lines[3] and "sbc-us" in lines[3]
    assert "OK: 2 groups (1 unchanged, 1 renewed)" in lines


def test_prometheus_is_valid_and_has_per_endpoint_series():
    built = R.build({"groups": [group(group='we"ird\\name\nx')]}, NOW)
    text = R.prometheus(built["groups"], built["flags"], now=NOW, failed=False)
    m = parse_prom(text)
    expiry = m["byoc_certificates_endpoint_expiry_timestamp_seconds"]
    assert len(expiry) == 2
    assert expiry[0][0] == {"group": 'we\\"ird\\\\name\\nx', "host": "sbc1", "endpoint": "sbc1.example.com:5061"}
    assert expiry[0][1] == datetime.datetime(2027, 2, 2, 10, tzinfo=datetime.timezone.utc).timestamp()
    nxt = m["byoc_certificates_endpoint_next_renewal_timestamp_seconds"]
    assert [v for _l, v in nxt] == [datetime.datetime(2027, 1, 12, 1, tzinfo=datetime.timezone.utc).timestamp()] * 2
    assert [v for _l, v in m["byoc_certificates_endpoint_last_success_timestamp_seconds"]] == [NOW.timestamp()] * 2
    status = {lab["status"]: v for lab, v in m["byoc_certificates_group_status"]}
    assert status == {"unchanged": 0, "renewed": 1, "rolled_back": 0, "failed": 0, "skipped": 0, "deferred": 0}
    assert m["byoc_certificates_group_trunks_connected"][0][1] == 1 and m["byoc_certificates_group_trunks"][0][1] == 2
    assert m["byoc_certificates_last_run_success"] == [({}, 1.0)]


def test_a_failed_run_keeps_the_previous_last_success():
    earlier = NOW - datetime.timedelta(days=1)
    ok = R.build({"groups": [group()]}, earlier)
    first = R.prometheus(ok["groups"], ok["flags"], now=earlier, failed=False)
    bad = R.build({"groups": [group(status="rolled_back", reason="chain untrusted")]}, NOW)
    assert bad["failed"] is True
    second = R.prometheus(bad["groups"], bad["flags"], now=NOW, failed=True, previous=R.previous_last_success(first))
    m = parse_prom(second)
    assert [v for _l, v in m["byoc_certificates_endpoint_last_success_timestamp_seconds"]] == [
        int(earlier.timestamp())] * 2
    assert m["byoc_certificates_last_run_success"] == [({}, 0.0)]
    # without an earlier file there is no last success to report for a failed group
    m2 = parse_prom(R.prometheus(bad["groups"], bad["flags"], now=NOW, failed=True))
    assert "byoc_certificates_endpoint_last_success_timestamp_seconds" not in m2


def test_report_json_schema():
    built = R.build({"groups": [group()], "run_id": "job-42"}, NOW)
    doc = json.loads(json.dumps(built["json"]))
    assert doc["schema_version"] == 1 and doc["run_id"] == "job-42" and doc["failed"] is False
    assert doc["generated_at"] == "2026-11-30T05:00:00Z"
    assert doc["summary"] == {"groups": 1, "unchanged": 0, "renewed": 1, "rolled_back": 0, "failed": 0, "skipped": 0,
                              "deferred": 0, "findings": 0}
    g = doc["groups"][0]
    assert set(g) >= {"group", "status", "reason", "old_not_after", "new_not_after", "next_renewal", "members",
                      "trunks", "trunks_connected", "findings"}
    assert g["next_renewal"] == "2027-01-12T01:00:00Z" and g["trunks_connected"] == 1
    assert g["members"][0] == {"host": "sbc1", "endpoint": "sbc1.example.com:5061", "fingerprint": "ab" * 32,
                               "not_after": "2027-02-02T10:00:00Z", "client_auth_required": False,
                               "extended_key_usage": None}


# -- findings (issue 11 §5) -------------------------------------------------------------------------------------------
def findings(**over):
    return R.flags_for(R.check_groups([group(**over)])[0])


def test_client_auth_eku_finding_is_data_driven():
    members = [{"host": "core", "endpoint": "core:5061", "client_auth_required": True,
                "extended_key_usage": ["serverAuth"]},
               {"host": "edge", "endpoint": "edge:5061", "client_auth_required": True,
                "extended_key_usage": ["serverAuth", "clientAuth"]},
               {"host": "ac", "endpoint": "ac:5061", "client_auth_required": False, "extended_key_usage": ["serverAuth"]},
               {"host": "unknown", "endpoint": "u:5061", "client_auth_required": True}]
    out = findings(members=members)
    assert len(out) == 1 and out[0].startswith("core: the leaf has no TLS clientAuth")


def test_genesys_ca_expiring_before_the_leaf_and_warnings_pass_through():
    out = findings(genesys_cas=[{"name": "CN=Old", "not_after": "2027-01-01T00:00:00Z"},
                                {"subject": "CN=New", "not_after": "2030-01-01T00:00:00Z"}],
                   warnings=["REMOTE CA list could not be read"])
    assert len(out) == 2 and "CN=Old expires 2027-01-01T00:00:00Z, before the leaf" in out[0]
    assert out[1] == "REMOTE CA list could not be read"


@pytest.mark.parametrize("next_renewal,windows,flagged", [
    # 2027-01-12 is a Tuesday. 02:00 UTC = 03:00 in Berlin.
    ("2027-01-12T02:00:00Z", [{"timezone": "Europe/Berlin", "days": ["tue"], "start": "01:00", "end": "05:00"}], False),
    ("2027-01-12T02:00:00Z", [{"timezone": "Europe/Berlin", "days": ["sat", "sun"], "start": "01:00", "end": "05:00"}],
     True),
    ("2027-01-12T02:00:00Z", [{"timezone": "America/New_York", "start": "01:00", "end": "05:00"}], True),  # 21:00
    # crossing midnight: Monday 22:00 - 04:00 contains Tuesday 03:00 local
    ("2027-01-12T02:00:00Z", [{"timezone": "Europe/Berlin", "days": ["mon"], "start": "22:00", "end": "04:00"}], False),
    ("2027-01-12T02:00:00Z", [{"timezone": "Europe/Berlin", "days": ["tue"], "start": "22:00", "end": "04:00"}], True),
    ("2027-01-12T02:00:00Z", [], False),  # no windows: nothing to fall outside of
    (None, [{"timezone": "UTC", "start": "01:00", "end": "02:00"}], False),
])
def test_next_renewal_outside_every_window(next_renewal, windows, flagged):
    out = findings(next_renewal=next_renewal, maintenance_windows=windows)
    assert any("outside every maintenance window" in f for f in out) is flagged


@pytest.mark.parametrize("over,field", [
    ({"status": "done"}, "groups[0].status"),
    ({"group": ""}, "groups[0].group"),
    ({"new_not_after": "2027-02-02T10:00:00"}, "groups[0].new_not_after"),
    ({"next_renewal": "tomorrow"}, "groups[0].next_renewal"),
    ({"members": [{"endpoint": "x:5061"}]}, "groups[0].members[0].host"),
    ({"maintenance_windows": [{"timezone": "Mars/Olympus", "start": "01:00", "end": "02:00"}]},
     "groups[0].maintenance_windows[0].timezone"),
    ({"maintenance_windows": [{"timezone": "UTC", "start": "25:00", "end": "02:00"}]},
     "groups[0].maintenance_windows[0].start"),
    ({"maintenance_windows": [{"timezone": "UTC", "start": "01:00", "end": "02:00", "days": ["funday"]}]},
     "groups[0].maintenance_windows[0].days"),
])
def test_bad_groups_name_the_field(over, field):
    with pytest.raises(InputError) as err:
        R.check_groups([group(**over)])
    assert err.value.field == field


def test_duplicate_group_refused():
    with pytest.raises(InputError) as err:
        R.check_groups([group(), group()])
    assert err.value.field == "groups[1].group"


def test_run_failed_default_and_override():
    groups = R.check_groups([group(status="skipped")])
    assert R.run_failed(groups, None) is False and R.run_failed(groups, True) is True
    assert R.run_failed(R.check_groups([group(status="failed")]), None) is True
    assert R.run_failed(R.check_groups([group(status="failed")]), False) is False


# -- heartbeat ----------------------------------------------------------------------------------------------------------
class _Resp:
    def __init__(self, status):
        self.status = status

    def read(self):
        return b"OK"


def test_heartbeat_targets_and_secret_path_never_shown():
    calls = []

    def opener(url, **kw):
        calls.append((url, kw["method"], kw["data"]))
        return _Resp(200)

    url = "https://hc.example.com/ping/0b3a6d1c-secret-uuid/"
    ok = R.ping(url, False, "OK: 1 groups\n", 5, opener)
    bad = R.ping(url, True, "FAILED\n", 5, opener)
    assert [c[0] for c in calls] == ["https://hc.example.com/ping/0b3a6d1c-secret-uuid",
                                     "https://hc.example.com/ping/0b3a6d1c-secret-uuid/fail"]
    assert ok == {"sent": True, "kind": "success", "target": "https://hc.example.com/...", "status": 200}
    assert bad["kind"] == "fail" and bad["sent"] is True
    assert "secret" not in json.dumps([ok, bad])


def test_heartbeat_failure_is_a_warning():
    def opener(url, **kw):
        raise ConnectionRefusedError("secret-uuid in text")

    out = R.ping("https://user:pw@hc.example.com/secret-uuid", False, "x", 5, opener)
    assert out["sent"] is False and "warning" in out
    assert "secret" not in json.dumps(out) and "pw" not in out["target"]


# -- files ----------------------------------------------------------------------------------------------------------
def test_run_writes_both_files_atomically_and_check_mode_writes_nothing(tmp_path):
    target = tmp_path / "rep"
    out = R.run({"groups": [group()], "dir": str(target)}, check_mode=True, opener=None, now=NOW)
    assert not target.exists() and out["written"] is False and out["changed"] is False
    out = R.run({"groups": [group()], "dir": str(target)}, check_mode=False, opener=None, now=NOW)
    assert out["written"] is True and out["changed"] is False
    assert sorted(os.listdir(target)) == ["byoc_certificates.prom", "report.json"]  # no temporary file left
    parse_prom((target / "byoc_certificates.prom").read_text())
    assert json.loads((target / "report.json").read_text())["groups"][0]["group"] == "sbc-emea"
    assert out["heartbeat"] == {"sent": False, "kind": None, "target": None, "status": None}


def test_write_atomic_replaces_by_rename(tmp_path):
    path = tmp_path / "byoc_certificates.prom"
    path.write_text("old\n")
    inode = path.stat().st_ino
    assert R.write_atomic(str(path), "new\n") is True
    assert path.read_text() == "new\n" and path.stat().st_ino != inode  # a new file renamed over the old one
    assert R.write_atomic(str(path), "new\n") is False
    assert os.listdir(tmp_path) == ["byoc_certificates.prom"]


# -- the inventory's window format (roles/fleet_plan/tasks/window.yml) -------------------------------------------------
@pytest.mark.parametrize("window,flagged", [
    # 2027-01-12T02:00Z is Tuesday 03:00 in Berlin. window.yml: start defaults to 00:00, end to 24:00, days to all.
    ({"timezone": "Europe/Berlin"}, False),
    ({"timezone": "Europe/Berlin", "days": ["tuesday"]}, False),  # only the first three letters count
    ({"timezone": "Europe/Berlin", "days": ["Monday"], "start": "20:00", "end": "24:00"}, True),
    ({"timezone": "Europe/Berlin", "days": ["tue"], "start": "02:00"}, False),  # open until 24:00
    ({"timezone": "Europe/Berlin", "days": ["tue"], "end": "03:00"}, True),  # 03:00 is the end, not inside
])
def test_windows_in_the_inventory_format(window, flagged):
    out = findings(next_renewal="2027-01-12T02:00:00Z", maintenance_windows=[window])
    assert any("outside every maintenance window" in f for f in out) is flagged


def test_window_defaults_show_in_the_report():
    built = R.build({"groups": [group(maintenance_windows=[{"timezone": "UTC", "days": ["sat"]}])]}, NOW)
    assert built["json"]["groups"][0]["maintenance_windows"] == [
        {"timezone": "UTC", "days": ["sat"], "start": "00:00", "end": "24:00"}]


# -- the Genesys CAs the leaf chains to ---------------------------------------------------------------------------------
ORG_CAS = [
    {"name": "E1 (ours)", "subject": "CN=E1,O=LE", "issuer": "CN=Root X2,O=LE", "not_after": "2027-01-01T00:00:00Z"},
    {"name": "Root X2", "subject": "CN=Root X2,O=LE", "issuer": "CN=Root X2,O=LE", "not_after": "2040-01-01T00:00:00Z"},
    {"name": "Old CA (another group's)", "subject": "CN=Other", "issuer": "CN=Other",
     "not_after": "2026-12-31T00:00:00Z"},
]


def test_genesys_ca_finding_follows_the_leaf_chain_only():
    """Only the CAs the leaf chains to (issuer -> subject, upwards) are held against the leaf's expiry."""
    members = [{"host": "sbc1", "endpoint": "sbc1:5061", "not_after": "2027-02-02T10:00:00Z", "issuer": "CN=E1,O=LE"}]
    out = findings(members=members, genesys_cas=ORG_CAS)
    assert len(out) == 1 and "E1 (ours) expires 2027-01-01T00:00:00Z, before the leaf" in out[0]
    # the same CAs, chain walked to the root: an intermediate valid long enough is no finding
    cas = [dict(ORG_CAS[0], not_after="2031-01-01T00:00:00Z"), ORG_CAS[1], ORG_CAS[2]]
    assert findings(members=members, genesys_cas=cas) == []
    # and the root is part of the chain: a root that expires first is named
    cas = [cas[0], dict(ORG_CAS[1], not_after="2027-01-15T00:00:00Z"), ORG_CAS[2]]
    out = findings(members=members, genesys_cas=cas)
    assert len(out) == 1 and "Root X2 expires 2027-01-15" in out[0]
    built = R.build({"groups": [group(members=members, genesys_cas=cas)]}, NOW)
    assert [c["name"] for c in built["json"]["groups"][0]["genesys_cas"]] == ["E1 (ours)", "Root X2"]


def test_a_leaf_no_org_ca_issued_is_named():
    out = findings(issuer="CN=Unknown Issuing CA", genesys_cas=ORG_CAS)
    assert len(out) == 1 and "no certificate authority the Genesys org trusts issued the leaf" in out[0]
    assert "CN=Unknown Issuing CA" in out[0]


# -- which devices present their server certificate as a client (field-2026.md, sbc-apis.md A, B3) ---------------------
@pytest.mark.parametrize("member,flagged", [
    ({"vendor": "audiocodes"}, True),  # the TLS context serves outgoing TLS too (sbc-apis.md A)
    ({"vendor": "ribbon_core", "client_certificate_configured": True}, True),  # tlsProfile clientCertName
    ({"vendor": "ribbon_core", "client_certificate_configured": False}, False),
    ({"vendor": "ribbon_core"}, True),  # not known: the stricter reading
    ({"vendor": "ribbon_edge"}, True),  # reference silent (UNCONFIRMED): the stricter reading
    ({"vendor": "audiocodes", "client_auth_required": False}, False),  # the inventory says otherwise: it wins
    ({}, False),  # no vendor, nothing said: never guessed
    ({"vendor": "audiocodes", "extended_key_usage": ["serverAuth", "clientAuth"]}, False),
    ({"vendor": "audiocodes", "extended_key_usage": None}, False),  # EKU unknown: nothing to say
])
def test_client_auth_finding_from_the_vendor(member, flagged):
    m = {"host": "sbc1", "endpoint": "sbc1:5061", "extended_key_usage": ["serverAuth"], **member}
    if m["extended_key_usage"] is None:
        del m["extended_key_usage"]
    out = findings(members=[m])
    assert any("no TLS clientAuth extended key usage" in f for f in out) is flagged


def test_unknown_vendor_is_refused():
    with pytest.raises(InputError) as err:
        R.check_groups([group(members=[{"host": "x", "vendor": "cisco"}])])
    assert err.value.field == "groups[0].members[0].vendor"


def test_a_read_only_report_keeps_last_success_and_last_run(tmp_path):
    """playbooks/report.yml rotates nothing: its 'unchanged' must not become a new last success, and the last run's
    time and outcome stay the last rotation's (else a report after a failed rotation would hide the failure)."""
    earlier = NOW - datetime.timedelta(days=2)
    R.run({"groups": [group(status="rolled_back")], "dir": str(tmp_path)}, check_mode=False, opener=None, now=earlier)
    first = parse_prom((tmp_path / R.PROM_FILE).read_text())
    assert "byoc_certificates_endpoint_last_success_timestamp_seconds" not in first
    R.run({"groups": [group(status="unchanged")], "dir": str(tmp_path), "read_only": True}, check_mode=False,
          opener=None, now=NOW)
    m = parse_prom((tmp_path / R.PROM_FILE).read_text())
    assert "byoc_certificates_endpoint_last_success_timestamp_seconds" not in m
    assert m["byoc_certificates_last_run_success"] == [({}, 0.0)]
    assert m["byoc_certificates_last_run_timestamp_seconds"] == [({}, float(int(earlier.timestamp())))]
    # a rotation run that succeeds sets them; a read-only report afterwards keeps them
    R.run({"groups": [group(status="unchanged")], "dir": str(tmp_path)}, check_mode=False, opener=None, now=NOW)
    later = NOW + datetime.timedelta(hours=5)
    R.run({"groups": [group(status="unchanged")], "dir": str(tmp_path), "read_only": True}, check_mode=False,
          opener=None, now=later)
    m = parse_prom((tmp_path / R.PROM_FILE).read_text())
    assert [v for _l, v in m["byoc_certificates_endpoint_last_success_timestamp_seconds"]] == [NOW.timestamp()] * 2
    assert m["byoc_certificates_last_run_success"] == [({}, 1.0)]
    assert m["byoc_certificates_last_run_timestamp_seconds"] == [({}, NOW.timestamp())]


def test_the_org_list_without_the_leaf_issuer_decides_nothing():
    """The pipeline passes the org's whole REMOTE list; without the leaf's issuer it cannot tell the group's chain,
    so a superseded CA of another group is not held against this leaf."""
    assert findings(genesys_cas=ORG_CAS) == []
