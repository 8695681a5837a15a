"""Prune decisions (issue 11 §5, design brief step 8), pure: the Genesys record of created CAs
(``_genesys/trust.py``) and the Ribbon SBC Core versioned objects (``_ribbon/core.py``)."""

from __future__ import annotations

import datetime

from ansible_collections.byoc.certificates.plugins.module_utils._genesys import trust
from ansible_collections.byoc.certificates.plugins.module_utils._ribbon import core

NOW = datetime.datetime(2026, 11, 30, 8, 0, tzinfo=datetime.timezone.utc)
DAY = datetime.timedelta(days=1)


def iso(dt):
    return dt.strftime("%Y-%m-%dT%H:%M:%SZ")


def entry(fp, id_, type_="REMOTE", fps=None):
    return {"id": id_, "name": f"ca {fp}", "type": type_, "services": ["SIP"], "fingerprint": fp,
            "fingerprints": fps or [fp]}


def ledger(**recs):
    return {"authorities": {fp: {"id": f"id-{fp}", "name": f"ca {fp}", "groups": g, "superseded": s}
                            for fp, (g, s) in recs.items()}}


# -- Genesys ----------------------------------------------------------------------------------------------------------
def test_record_added_records_only_what_was_created():
    led = {}
    actions = [{"action": "create", "fingerprint": "a", "id": "1", "name": "A"},
               {"action": "none", "fingerprint": "b", "id": "2"},  # the org had it already: never ours
               {"action": "create", "fingerprint": "c", "id": None}]  # the request failed: nothing to record
    assert trust.record_added(led, actions, "g1", NOW) is True
    assert set(led["authorities"]) == {"a"} and led["authorities"]["a"]["groups"] == ["g1"]
    # a second group that needs the same CA is added; a superseded mark is cleared
    led["authorities"]["a"]["superseded"] = iso(NOW)
    assert trust.record_added(led, [{"action": "none", "fingerprint": "a"}], "g2", NOW) is True
    assert led["authorities"]["a"]["groups"] == ["g1", "g2"] and led["authorities"]["a"]["superseded"] is None
    assert trust.record_added(led, [{"action": "none", "fingerprint": "a"}], "g2", NOW) is False


def test_record_added_for_every_group_that_shares_the_chain():
    """ensure.yml makes one call per distinct chain: a CA created for it is recorded for every group that shares it,
    and a CA recorded before gains the groups it lacks (prune keeps a CA while any of them needs it)."""
    led = {}
    assert trust.record_added(led, [{"action": "create", "fingerprint": "a", "id": "1"}], ["g2", "g1", "g2"], NOW)
    assert led["authorities"]["a"]["groups"] == ["g1", "g2"]
    assert trust.record_added(led, [{"action": "none", "fingerprint": "a"}], ["g1", "g3"], NOW) is True
    assert led["authorities"]["a"]["groups"] == ["g1", "g2", "g3"]
    assert trust.record_added(led, [{"action": "none", "fingerprint": "a"}], ["g3", "g1"], NOW) is False


def test_plan_prune_verdicts():
    old = iso(NOW - 40 * DAY)
    led = ledger(a=(["g1"], old), b=(["g1"], None), c=(["g1"], old), d=(["gx"], old), e=(["g1"], old),
                 f=(["g1"], old), m=(["g1"], old))
    existing = [entry("a", "1"), entry("b", "2"), entry("c", "3"), entry("d", "4"), entry("e", "5", fps=["e", "u"]),
                entry("m", "7", type_="MANAGED"), entry("u2", "8")]
    actions, verdicts = trust.plan_prune(existing, led, keep={"c"}, groups=["g1"], now=NOW, grace_days=30)
    v = {x["fingerprint"]: x["verdict"] for x in verdicts}
    assert v == {"a": "pruned", "b": "waiting", "c": "in use", "d": "kept", "e": "kept", "f": "gone", "m": "kept"}
    assert [a["id"] for a in actions] == ["1"]
    assert "f" not in led["authorities"]  # gone from the org: forgotten
    assert led["authorities"]["b"]["superseded"] == iso(NOW)  # first found not needed now
    assert led["authorities"]["c"]["superseded"] is None  # needed again: no longer superseded


def test_prune_due_needs_no_org_read_when_nothing_can_go():
    led = ledger(a=(["g1"], iso(NOW - 10 * DAY)), b=(["gx"], iso(NOW - 90 * DAY)), c=(["g1"], None))
    assert trust.prune_due(led, keep={"c"}, groups=["g1"], now=NOW, grace_days=30) is False
    assert trust.prune_due(led, keep={"c"}, groups=["g1"], now=NOW + 25 * DAY, grace_days=30) is True
    assert trust.prune_due(ledger(c=(["g1"], None)), keep=set(), groups=["g1"], now=NOW, grace_days=0) is True
    # without the org, nothing is deleted
    actions, verdicts = trust.plan_prune(None, led, keep={"c"}, groups=["g1"], now=NOW, grace_days=30)
    assert actions == [] and {x["verdict"] for x in verdicts} <= {"waiting", "kept", "in use"}


def test_ledger_group_is_a_store_group_and_hides_the_client_id():
    name = trust.ledger_group("https://api.mypurecloud.de", "0a1b2c-client")
    assert name.startswith("genesys-trust-") and "client" not in name and len(name) == len("genesys-trust-") + 16


# -- Ribbon SBC Core --------------------------------------------------------------------------------------------------
def objs(*names):
    return {n: {"name": n, "type": "local", "state": "enabled", "fileName": f"{n}.p12"} for n in names}


def test_ribbon_plan_prune_keeps_current_previous_and_waits():
    names = ["b-20270401-aaaaaaaa", "b-20270301-bbbbbbbb", "b-20270201-cccccccc", "b-20270101-dddddddd"]
    objects = {**objs(*names), "lab-cert": {"name": "lab-cert", "type": "local"},
               "b-ca-0123456789ab": {"name": "b-ca-0123456789ab", "type": "remote"}}
    profiles = [{"name": "p", "serverCertName": names[0]}]
    issued = {names[1]: NOW - 5 * DAY, names[2]: NOW - 40 * DAY}  # when each object's certificate was issued
    verdicts, where = core.plan_prune(objects, profiles, "p", "b", 0, 30, NOW, lambda o: issued.get(o["name"]))
    assert where == {"current": names[0], "previous": names[1]}
    assert [(x["name"], x["verdict"]) for x in verdicts] == [
        (names[0], "in use"), (names[1], "in use"), (names[2], "waiting"), (names[3], "pruned")]
    # retain keeps one more; an undatable replacement keeps the object
    verdicts, _where = core.plan_prune(objects, profiles, "p", "b", 1, 30, NOW, lambda o: issued.get(o["name"]))
    assert [x["verdict"] for x in verdicts] == ["in use", "in use", "kept", "pruned"]
    verdicts, _where = core.plan_prune(objects, profiles, "p", "b", 0, 0, NOW, lambda o: None)
    assert [x["verdict"] for x in verdicts][2:] == ["kept", "kept"]


def test_ribbon_plan_prune_after_a_rollback_and_with_a_client_certificate():
    names = ["b-20270401-aaaaaaaa", "b-20270301-bbbbbbbb", "b-20270201-cccccccc"]
    # rolled back: the profile serves the older object; the newer one is a roll-forward target
    profiles = [{"name": "p", "serverCertName": names[1]}]
    verdicts, _where = core.plan_prune(objs(*names), profiles, "p", "b", 0, 0, NOW, lambda o: NOW - 90 * DAY)
    # ... and the object older than the bound one is what a further rollback goes back to
    assert [x["verdict"] for x in verdicts] == ["kept", "in use", "in use"]
    # an object another profile presents as its client certificate is in use
    profiles = [{"name": "p", "serverCertName": names[0]}, {"name": "q", "clientCertName": names[2]}]
    verdicts, _where = core.plan_prune(objs(*names), profiles, "p", "b", 0, 0, NOW, lambda o: NOW - 90 * DAY)
    assert [x["verdict"] for x in verdicts] == ["in use", "in use", "in use"]
