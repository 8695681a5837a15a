# Copyright (c) 2026, byoc.certificates contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""The TLS context logic: input validation (the one gate) before any request, the pure plans (in place, staged,
rollback), check mode, diff, idempotence, and what a failure half way says."""

from __future__ import annotations

import pytest

from ansible_collections.byoc.certificates.plugins.module_utils._audiocodes import tls_context as tc
from ansible_collections.byoc.certificates.plugins.module_utils._audiocodes.client import AudioCodesClient
from ansible_collections.byoc.certificates.plugins.module_utils._errors import ApiError, InputError, NotFound
from ansible_collections.byoc.certificates.tests.unit.plugins.module_utils._audiocodes.fakes import (
    FakeHttp,
    FakeMediant,
    FakeModule,
    Pki,
    key_pem,
    pem,
)


@pytest.fixture(scope="module")
def pki():
    return Pki()


@pytest.fixture
def dev(monkeypatch):
    device = FakeMediant()

    def factory(params, **kw):
        kw["sleep"] = lambda s: None
        return AudioCodesClient(params, http=FakeHttp(device), **kw)

    monkeypatch.setattr(tc, "AudioCodesClient", factory)
    return device


def params(pki, **over):
    p = {"api_url": "https://sbc.test/api/v1", "username": "Admin", "password": "pw", "validate_certs": True,
         "ca_path": None, "timeout": 30, "context_index": 1, "context_name": "BYOC",
         "private_key": key_pem(pki.key), "private_key_passphrase": None,
         "certificate": pem(pki.leaf), "chain": pem(pki.inter), "trusted_roots": [pem(pki.root)],
         "trusted_roots_mode": "present", "sip_interfaces": ["SIPInterface_0"], "proxy_sets": [], "save": True,
         "require_ha": False, "sync_retries": 3, "sync_delay": 0.0, "state": "present", "mode": None,
         "staging_contexts": None, "allow_management_context": False, "rollback_to": None, "allow_expired_ca": False}
    p.update(over)
    return p


def staged(pki, **over):
    p = params(pki, context_index=None, staging_contexts=[1, 2], proxy_sets=["ProxySet_0"])
    p.update(over)
    return p


# -- validation: nothing is sent -------------------------------------------------------------------------------
@pytest.mark.parametrize("over,field", [
    ({"context_index": 100}, "context_index"),
    ({"context_index": -1}, "context_index"),
    ({"certificate": "garbage"}, "certificate"),
    ({"private_key": "garbage"}, "private_key"),
    ({"chain": "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----"}, "chain"),
    ({"trusted_roots": ["x"]}, "trusted_roots[0]"),
    ({"context_name": 'bad"name'}, "context_name"),
    ({"context_name": "Zertifikat-Größe"}, "context_name"),          # non-ASCII (issue 10 section 5)
    ({"context_name": "x" * 32}, "context_name"),
    ({"sip_interfaces": ["a\nb"]}, "sip_interfaces"),
    ({"sip_interfaces": ["Schnittstelle-ä"]}, "sip_interfaces"),
    ({"sync_delay": -1}, "sync_delay"),
    ({"password": None}, "password"),
    ({"context_index": 0}, "context_index"),                         # management context needs the flag
    ({"context_index": None}, "context_index"),
    ({"rollback_to": 2}, "rollback_to"),
    ({"state": "rollback", "mode": "in_place"}, "state"),              # rollback needs the pair
    ({"state": "rollback", "context_index": None}, "staging_contexts"),
])
def test_bad_input_names_the_field_and_sends_nothing(pki, dev, over, field):
    with pytest.raises(InputError) as err:
        tc.ensure(FakeModule(params(pki, **over)))
    assert err.value.field == field
    assert dev.seen == []


# The one gate (issue 10): the classes of bad certificate material, refused before any request.
@pytest.mark.parametrize("label,over,field,needle", [
    ("second leaf", lambda k: {"certificate": pem(k.leaf) + pem(k.leaf2)}, "certificate", "second leaf"),
    ("CA as certificate", lambda k: {"certificate": pem(k.inter)}, "certificate", "CA certificate"),
    ("expired leaf", lambda k: {"certificate": pem(k.expired)}, "certificate", "expired"),
    ("leaf in chain", lambda k: {"chain": pem(k.leaf2)}, "chain", "leaf"),
    ("leaf in trusted_roots", lambda k: {"trusted_roots": [pem(k.leaf2)]}, "trusted_roots[0]", "leaf"),
    ("key in certificate", lambda k: {"certificate": pem(k.leaf) + key_pem(k.key)}, "certificate", "private key"),
    ("key in trusted_roots", lambda k: {"trusted_roots": [key_pem(k.key)]}, "trusted_roots[0]", "private key"),
    ("expired CA", lambda k: {"trusted_roots": [pem(k.expired_root)]}, "trusted_roots[0]", "allow_expired_ca"),
    ("unrelated intermediate", lambda k: {"chain": pem(k.inter) + pem(k.other_ca)}, "chain", "not part of the chain"),
    ("key mismatch", lambda k: {"private_key": key_pem(k.other_key)}, "private_key", "does not match"),
])
@pytest.mark.parametrize("mode", ["in_place", "staged"])
def test_the_gate_refuses_bad_material_before_any_request(pki, dev, label, over, field, needle, mode):
    p = params(pki, **over(pki)) if mode == "in_place" else staged(pki, **over(pki))
    with pytest.raises(InputError) as err:
        tc.ensure(FakeModule(p))
    assert err.value.field == field, err.value.msg
    assert needle in err.value.msg
    assert "PRIVATE KEY" not in err.value.msg and "BEGIN" not in err.value.msg
    assert dev.seen == []


def test_expired_ca_allowed_with_a_warning(pki, dev):
    m = FakeModule(params(pki, trusted_roots=[pem(pki.expired_root)], allow_expired_ca=True), check_mode=True)
    tc.ensure(m)
    assert any("Old Root" in w and "allow_expired_ca" in w for w in m.warnings)


def test_chain_goes_to_trusted_roots(pki):
    w = tc.wanted_from_params(params(pki, certificate=pem(pki.leaf) + pem(pki.inter), chain=None, trusted_roots=[]))
    assert w.leaf.subject == pki.leaf.subject
    assert [c.subject for c in w.trusted] == [pki.inter.subject]
    assert w.warnings == []


def test_missing_issuer_warns(pki):
    w = tc.wanted_from_params(params(pki, chain=None, trusted_roots=[]))
    assert any("issuer" in x for x in w.warnings)


def test_context_0_needs_the_flag_and_warns_that_management_changes(pki, dev):
    m = FakeModule(params(pki, context_index=0, context_name=None, allow_management_context=True), check_mode=True)
    result = tc.ensure(m)
    assert "upload private key to context 0" in result["actions"]
    assert any("management" in w for w in m.warnings)
    with pytest.raises(InputError) as err:
        tc.wanted_from_params(staged(pki, staging_contexts=[0, 1]))
    assert err.value.field == "staging_contexts" and "management" in err.value.msg


# -- in place: plan, check mode, apply, idempotence -------------------------------------------------------------
def test_check_mode_plans_but_writes_nothing(pki, dev):
    m = FakeModule(params(pki), check_mode=True, diff=True)
    result = tc.ensure(m)
    assert result["changed"] and result["context"]["created"] and result["mode"] == "in_place"
    assert result["actions"][0] == "create TLS context 1 'BYOC'"
    assert result["actions"][-1].startswith("save the configuration")
    assert dev.writes() == []
    assert "1" not in result["diff"]["before"]["contexts"]
    assert result["diff"]["after"]["contexts"]["1"]["private_key_valid"] is True


def test_apply_then_idempotent(pki, dev):
    first = tc.ensure(FakeModule(params(pki), diff=True))
    assert first["changed"] and first["saved"] and first["private_key_valid"]
    order = [p for _m, p in dev.writes()]
    assert order == ["files/ini/incremental", "files/tls/1/privateKey", "files/tls/1/certificate",
                     "files/tls/1/trustedRoot/incremental", "files/tls/1/trustedRoot/incremental",
                     "files/ini/incremental", "actions/saveConfiguration"]
    assert dev.sip[0][1] == "BYOC" and not dev.dirty
    text = repr(first)
    assert "PRIVATE KEY" not in text

    n = len(dev.writes())
    second = tc.ensure(FakeModule(params(pki), diff=True))
    assert not second["changed"] and second["actions"] == []
    assert second["diff"]["before"] == second["diff"]["after"]
    assert len(dev.writes()) == n


def test_in_place_into_a_serving_context_warns(pki, dev):
    tc.ensure(FakeModule(params(pki)))
    m = FakeModule(params(pki, private_key=key_pem(pki.key2), certificate=pem(pki.leaf2)), check_mode=True)
    tc.ensure(m)
    assert any("serves no TLS" in w and "mode=staged" in w for w in m.warnings)


def test_unsaved_changes_are_saved_even_when_material_matches(pki, dev):
    tc.ensure(FakeModule(params(pki)))
    dev.dirty = True
    result = tc.ensure(FakeModule(params(pki)))
    assert result["actions"] == ["save the configuration (saveConfiguration)"]
    assert tc.ensure(FakeModule(params(pki, save=False)))["changed"] is False


def test_invalid_key_on_device_means_reupload(pki, dev):
    tc.ensure(FakeModule(params(pki)))
    dev.contexts[1]["key"] = key_pem(pki.other_key)  # half-done rotation: key changed, certificate not
    result = tc.ensure(FakeModule(params(pki)))
    assert "upload private key to context 1" in result["actions"]
    assert FakeMediant._valid(dev.contexts[1])


def test_failure_midway_lists_what_was_applied(pki, dev):
    dev.script = [("files/tls/1/certificate", 500, {"description": "boom"})]
    with pytest.raises(ApiError) as err:
        tc.ensure(FakeModule(params(pki)))
    assert "HTTP 500" in err.value.msg and "boom" in err.value.msg
    assert err.value.details["completed_steps"] == ["created TLS context 1 'BYOC'",
                                                    "uploaded the private key to context 1"]
    assert "re-run" in err.value.msg
    assert ("POST", "actions/saveConfiguration") not in dev.seen


def test_verification_catches_a_device_that_did_not_take_the_key(pki, dev):
    dev.script = [("files/tls/1/privateKey", 200, {"description": "ok but ignored"})]
    with pytest.raises(ApiError) as err:
        tc.ensure(FakeModule(params(pki)))
    assert "privateKey.valid False" in err.value.msg
    assert ("POST", "actions/saveConfiguration") not in dev.seen
    assert ("PUT", "files/ini/incremental") in dev.seen and dev.sip[0][1] == ""  # not bound to a broken context


def test_require_ha_gate(pki, dev):
    dev.ha = "Not Operational"
    with pytest.raises(ApiError) as err:
        tc.ensure(FakeModule(params(pki, require_ha=True)))
    assert "require_ha" in err.value.msg
    assert dev.writes() == []


def test_context_identity_checks(pki, dev):
    with pytest.raises(NotFound):
        tc.ensure(FakeModule(params(pki, context_name=None)))
    tc.ensure(FakeModule(params(pki)))
    with pytest.raises(InputError) as err:
        tc.ensure(FakeModule(params(pki, context_name="Other")))
    assert err.value.field == "context_name"
    with pytest.raises(InputError) as err:
        tc.ensure(FakeModule(params(pki, context_index=2, context_name="BYOC")))
    assert "already the name of TLS context 1" in err.value.msg
    with pytest.raises(NotFound) as err:
        tc.ensure(FakeModule(params(pki, sip_interfaces=["Nope"])))
    assert "SIPInterface_0" in err.value.msg


def test_exact_mode_replaces_store(pki, dev):
    tc.ensure(FakeModule(params(pki)))
    result = tc.ensure(FakeModule(params(pki, chain=None, trusted_roots=[pem(pki.root)], trusted_roots_mode="exact")))
    assert any(a.startswith("replace trusted roots") for a in result["actions"])
    assert ("PUT", "files/tls/1/trustedRoot") in dev.seen
    assert [r["subject"] for r in result["trusted_roots"]] == ["CN=Root"]


# -- staged: never writes to a serving context; one bind write; rollback is a re-bind --------------------------
def test_staged_first_run_then_rotation_then_rollback(pki, dev):
    first = tc.ensure(FakeModule(staged(pki)))
    assert first["mode"] == "staged" and first["context"] == {"index": 1, "name": "BYOC-A", "created": True}
    assert dev.sip[0][1] == "BYOC-A" and dev.proxies[0][1] == "BYOC-A"
    assert [p for _m, p in dev.writes()].count("files/ini/incremental") == 2  # create + ONE bind write
    assert first["previous"] is None                                      # nothing to go back to yet
    assert tc.ensure(FakeModule(staged(pki)))["changed"] is False        # idempotent

    dev.seen.clear()
    second = tc.ensure(FakeModule(staged(pki, private_key=key_pem(pki.key2), certificate=pem(pki.leaf2))))
    assert second["context"]["index"] == 2 and dev.sip[0][1] == "BYOC-B" and dev.proxies[0][1] == "BYOC-B"
    assert not any("files/tls/1/" in p for _m, p in dev.writes())        # the serving context was never written
    binds = [p for _m, p in dev.writes() if p == "files/ini/incremental"]
    assert len(binds) == 2                                                 # create context 2 + one bind
    assert second["previous"]["index"] == 1 and second["serving_before"][0]["index"] == 1
    assert second["previous"]["certificate"]["fingerprint_sha256"] == tc._pem.fingerprint(pki.leaf)
    # the staged context got the serving context's roots plus the wanted ones (present mode)
    assert {r["subject"] for r in second["trusted_roots"]} == {"CN=Intermediate", "CN=Root"}
    again = tc.ensure(FakeModule(staged(pki, private_key=key_pem(pki.key2), certificate=pem(pki.leaf2))))
    assert not again["changed"] and again["previous"]["index"] == 1      # returned on a no-change run too

    rb = staged(pki, state="rollback", certificate=None, private_key=None)
    dev.seen.clear()
    back = tc.ensure(FakeModule(rb))
    assert back["changed"] and back["context"]["index"] == 1 and dev.sip[0][1] == "BYOC-A"
    assert [p for _m, p in dev.writes()] == ["files/ini/incremental", "actions/saveConfiguration"]
    assert tc.ensure(FakeModule(rb))["changed"] is False                 # rollback is idempotent

    # The pipeline runs again with the new material: it re-binds to the context that holds it, uploads nothing.
    dev.seen.clear()
    fwd = tc.ensure(FakeModule(staged(pki, private_key=key_pem(pki.key2), certificate=pem(pki.leaf2))))
    assert fwd["context"]["index"] == 2 and not any("files/tls" in p for _m, p in dev.writes())


def test_staged_failure_leaves_the_serving_context_and_says_where(pki, dev):
    tc.ensure(FakeModule(staged(pki)))
    dev.script = [("files/tls/2/certificate", 500, {"description": "boom"})]
    new = staged(pki, private_key=key_pem(pki.key2), certificate=pem(pki.leaf2))
    with pytest.raises(ApiError) as err:
        tc.ensure(FakeModule(new))
    msg = err.value.msg
    assert "Nothing that serves traffic was changed" in msg and "1 'BYOC-A'" in msg and "2 'BYOC-B'" in msg
    assert err.value.details["previous"] is None or err.value.details["previous"]["index"] == 1
    assert dev.sip[0][1] == "BYOC-A" and FakeMediant._valid(dev.contexts[1])
    result = tc.ensure(FakeModule(new))                                   # a re-run finishes
    assert result["changed"] and dev.sip[0][1] == "BYOC-B"


def test_staged_refuses_when_both_contexts_serve(pki, dev):
    tc.ensure(FakeModule(staged(pki)))
    tc.ensure(FakeModule(staged(pki, private_key=key_pem(pki.key2), certificate=pem(pki.leaf2))))
    dev.proxies[0][1] = "BYOC-A"  # SIP Interface on B, Proxy Set on A
    n = len(dev.writes())
    with pytest.raises(InputError) as err:
        tc.ensure(FakeModule(staged(pki, private_key=key_pem(pki.key3), certificate=pem(pki.leaf3))))
    assert err.value.field == "staging_contexts" and "both TLS contexts of the pair serve traffic" in err.value.msg
    assert len(dev.writes()) == n


def test_staged_refuses_a_foreign_context_in_the_pair(pki, dev):
    dev.contexts[2] = {"name": "Teams", "cert": "", "key": "", "roots": []}
    with pytest.raises(InputError) as err:
        tc.ensure(FakeModule(staged(pki)))
    assert err.value.field == "staging_contexts" and "'Teams'" in err.value.msg
    assert dev.writes() == []


def test_staged_ha_must_stay_in_sync(pki, dev):
    original = dev.answer

    def flip(method, url, data, headers):
        if method == "PUT" and url.endswith("files/tls/1/certificate"):
            dev.ha = "Not Operational"  # the redundant unit went away while staging
        return original(method, url, data, headers)

    dev.answer = flip
    with pytest.raises(ApiError) as err:
        tc.ensure(FakeModule(staged(pki)))
    assert "nothing was re-bound" in err.value.msg and dev.sip[0][1] == ""


# -- the pure plan, as a fleet planner would use it ------------------------------------------------------------
def _ctx(index, name, leaf=None, roots=()):
    return tc.Ctx(index=index, name=name, cert=leaf, key_valid=leaf is not None, key_size=256 if leaf else 0,
                  roots=list(roots))


def test_plan_staged_is_pure_and_picks_the_free_context(pki):
    w = tc.wanted_from_params(staged(pki))
    s = tc.DeviceState(status={"highAvailability": "Operational", "saveNeeded": "false"},
                       names={0: "default", 1: "BYOC-A", 2: "BYOC-B"},
                       sip={"SIPInterface_0": {"index": 0, "tls_context": "BYOC-B", "mutual_auth": 1}},
                       proxies={"ProxySet_0": {"index": 0, "tls_context": "BYOC-B"}},
                       contexts={1: _ctx(1, "BYOC-A"), 2: _ctx(2, "BYOC-B", pki.leaf2, [pki.inter])})
    plan = tc.plan_staged(w, s)
    assert plan.target == 1 and plan.serving_before == [2]
    assert [st.kind for st in plan.steps] == ["key", "cert", "roots", "verify", "ha", "bind", "save"]
    bind = next(st for st in plan.steps if st.kind == "bind")
    assert bind.data == {"SIPInterface": ("TLSContext", {0: "BYOC-A"}), "ProxySet": ("TLSContextName", {0: "BYOC-A"})}
    assert plan.previous is None or plan.previous == 2
    assert s.contexts[1].cert is None  # the plan did not touch the state it was given


def test_plan_rollback_uses_the_older_certificate(pki):
    w = tc.wanted_from_params(staged(pki, state="rollback"))
    s = tc.DeviceState(status={}, names={0: "default", 1: "BYOC-A", 2: "BYOC-B"},
                       sip={"SIPInterface_0": {"index": 0, "tls_context": "BYOC-B"}},
                       proxies={"ProxySet_0": {"index": 0, "tls_context": "BYOC-B"}},
                       contexts={1: _ctx(1, "BYOC-A", pki.leaf), 2: _ctx(2, "BYOC-B", pki.leaf2)})
    plan = tc.plan_rollback(w, s)
    assert plan.target == 1 and [st.kind for st in plan.steps] == ["bind", "save"]
    s.sip["SIPInterface_0"]["tls_context"] = s.proxies["ProxySet_0"]["tls_context"] = "BYOC-A"
    assert tc.plan_rollback(w, s).steps == []


def test_info(pki, dev):
    tc.ensure(FakeModule(params(pki)))
    out = tc.info(FakeModule({**params(pki), "context_index": None}))
    assert [c["index"] for c in out["contexts"]] == [0, 1]
    ctx = out["contexts"][1]
    assert ctx["certificate"]["subject"] == "CN=sbc.test"
    assert ctx["private_key"]["valid"] is True
    assert {r["subject"] for r in ctx["trusted_roots"]} == {"CN=Intermediate", "CN=Root"}
    assert ctx["sip_interfaces"] == ["SIPInterface_0"]
    assert out["sip_interfaces"] == [{"name": "SIPInterface_0", "tls_context": "BYOC", "mutual_authentication": None}]
    assert out["status"]["ha_operational"] and out["status"]["save_needed"] is False
    assert dev.writes()[-1] == ("POST", "actions/saveConfiguration")  # info added no writes


# -- a re-run after a run that was killed half way through a staged install (fault matrix row 17) ---------------
def test_rerun_after_a_kill_rebinds_the_context_that_already_holds_the_material(pki):
    """The killed run wrote the group's key, certificate and roots into the free context of the pair but never
    re-bound: the SIP Interface still serves the other context. The re-run writes no material and re-binds."""
    w = tc.wanted_from_params(staged(pki))
    roots = [pki.inter, pki.root]
    s = tc.DeviceState(status={"highAvailability": "Operational", "saveNeeded": "true"},
                       names={0: "default", 1: "BYOC-A", 2: "BYOC-B"},
                       sip={"SIPInterface_0": {"index": 0, "tls_context": "BYOC-B", "mutual_auth": 0}},
                       proxies={"ProxySet_0": {"index": 0, "tls_context": "BYOC-B"}},
                       contexts={1: _ctx(1, "BYOC-A", pki.leaf, roots), 2: _ctx(2, "BYOC-B", pki.leaf2, roots)})
    plan = tc.plan_staged(w, s)
    assert plan.target == 1 and [st.kind for st in plan.steps] == ["bind", "save"]
    bind = next(st for st in plan.steps if st.kind == "bind")
    assert bind.data == {"SIPInterface": ("TLSContext", {0: "BYOC-A"}), "ProxySet": ("TLSContextName", {0: "BYOC-A"})}


def test_rerun_after_a_kill_between_key_and_certificate_writes_the_context_again(pki):
    """Killed after the key write: the free context holds the new key with the old certificate (privateKey.valid
    false, sbc-apis.md A2). It is not usable, so the re-run writes it again, verifies, then re-binds."""
    w = tc.wanted_from_params(staged(pki))
    half = tc.Ctx(index=1, name="BYOC-A", cert=pki.leaf2, key_valid=False, key_size=256, roots=[pki.inter])
    s = tc.DeviceState(status={"highAvailability": "Operational", "saveNeeded": "true"},
                       names={0: "default", 1: "BYOC-A", 2: "BYOC-B"},
                       sip={"SIPInterface_0": {"index": 0, "tls_context": "BYOC-B", "mutual_auth": 0}},
                       proxies={"ProxySet_0": {"index": 0, "tls_context": "BYOC-B"}},
                       contexts={1: half, 2: _ctx(2, "BYOC-B", pki.leaf2, [pki.inter])})
    plan = tc.plan_staged(w, s)
    assert plan.target == 1
    assert [st.kind for st in plan.steps] == ["key", "cert", "roots", "verify", "ha", "bind", "save"]
