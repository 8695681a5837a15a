# Copyright (c) 2026, byoc.certificates contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""The TLS context logic: input validation before any request, the plan, check mode, diff, idempotence."""

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
         "require_ha": False, "sync_retries": 3, "sync_delay": 0.0}
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
    ({"sip_interfaces": ["a\nb"]}, "sip_interfaces"),
    ({"sync_delay": -1}, "sync_delay"),
    ({"password": None}, "password"),
])
def test_bad_input_names_the_field_and_sends_nothing(pki, dev, over, field):
    with pytest.raises(InputError) as err:
        tc.ensure(FakeModule(params(pki, **over)))
    assert err.value.field == field
    assert dev.seen == []


def test_mismatched_key_is_refused_before_any_request(pki, dev):
    with pytest.raises(InputError) as err:
        tc.ensure(FakeModule(params(pki, private_key=key_pem(pki.other_key))))
    assert err.value.field == "private_key"
    assert "does not match the certificate" in err.value.msg and "Nothing was uploaded" in err.value.msg
    assert dev.seen == []


def test_expired_certificate_is_refused(pki, dev):
    with pytest.raises(InputError) as err:
        tc.ensure(FakeModule(params(pki, certificate=pem(pki.expired))))
    assert err.value.field == "certificate" and "expired" in err.value.msg


def test_leaf_found_anywhere_in_the_bundle_and_chain_goes_to_trusted_roots(pki):
    d = tc.desired_from_params(params(pki, certificate=pem(pki.inter) + pem(pki.leaf), chain=None, trusted_roots=[]))
    assert d.leaf.subject == pki.leaf.subject
    assert [c.subject for c in d.trusted] == [pki.inter.subject]
    assert d.warnings == []


def test_missing_issuer_and_context_0_warn(pki):
    d = tc.desired_from_params(params(pki, chain=None, trusted_roots=[], context_index=0))
    assert any("context 0" in w or "'default'" in w for w in d.warnings)
    assert any("issuer" in w for w in d.warnings)


# -- plan, check mode, apply, idempotence ----------------------------------------------------------------------
def test_check_mode_plans_but_writes_nothing(pki, dev):
    m = FakeModule(params(pki), check_mode=True, diff=True)
    result = tc.ensure(m)
    assert result["changed"] and result["context"]["created"]
    assert result["actions"][0] == "create TLS context 1 'BYOC'"
    assert result["actions"][-1].startswith("save the configuration")
    assert dev.writes() == []
    assert result["diff"]["before"]["certificate"] is None
    assert result["diff"]["after"]["private_key_valid"] is True


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
    assert err.value.details["completed_steps"] == ["created TLS context 1 'BYOC'", "uploaded the private key"]
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


def test_info(pki, dev):
    tc.ensure(FakeModule(params(pki)))
    out = tc.info(FakeModule({**params(pki), "context_index": None}))
    assert [c["index"] for c in out["contexts"]] == [0, 1]
    ctx = out["contexts"][1]
    assert ctx["certificate"]["subject"] == "CN=sbc.test"
    assert ctx["private_key"]["valid"] is True
    assert {r["subject"] for r in ctx["trusted_roots"]} == {"CN=Intermediate", "CN=Root"}
    assert ctx["sip_interfaces"] == ["SIPInterface_0"]
    assert out["status"]["ha_operational"] and out["status"]["save_needed"] is False
    assert dev.writes()[-1] == ("POST", "actions/saveConfiguration")  # info added no writes
