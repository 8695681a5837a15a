# Copyright (c) 2026, byoc.certificates contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""The trust-store plan (fingerprints, chains, MANAGED protection) and trunk health/selection, as pure logic."""

from __future__ import annotations

import datetime

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from ansible_collections.byoc.certificates.plugins.module_utils._errors import InputError, NotFound
from ansible_collections.byoc.certificates.plugins.module_utils._genesys import trunks as T
from ansible_collections.byoc.certificates.plugins.module_utils._genesys import trust


def _cert(cn, issuer=None, ca=True):
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])
    signer_name, signer_key = (issuer[0].subject, issuer[1]) if issuer else (name, key)
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(signer_name).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now)
            .not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
            .sign(signer_key, hashes.SHA256()))
    return cert, key


def pem(cert):
    return cert.public_bytes(serialization.Encoding.PEM).decode()


def fp(cert):
    return cert.fingerprint(hashes.SHA256()).hex()


ROOT = _cert("Root CA")
ISSUING = _cert("Issuing CA", ROOT)
LEAF = _cert("sbc.example.com", ISSUING, ca=False)
MANAGED = _cert("Managed CA")


def entry(cert_or_certs, type_="REMOTE", services=("SIP",), id_="x", name="n"):
    certs = cert_or_certs if isinstance(cert_or_certs, list) else [cert_or_certs]
    return trust.summarize({"id": id_, "name": name, "type": type_, "services": list(services), "version": 1,
                            "certificate": "".join(pem(c) for c in certs)})


def test_chain_becomes_one_entry_per_ca_deduplicated():
    got = trust.desired_authorities(pem(ISSUING[0]) + pem(ROOT[0]) + pem(ROOT[0]), "certificate", "SBC", ["SIP"])
    assert [d["fingerprint"] for d in got] == [fp(ISSUING[0]), fp(ROOT[0])]
    assert [d["name"] for d in got] == ["SBC - Issuing CA", "SBC - Root CA"]
    single = trust.desired_authorities(pem(ROOT[0]), "certificate", None, ["SIP"])
    assert single[0]["name"] == "Root CA" and single[0]["services"] == ["SIP"]


@pytest.mark.parametrize("text", ["", "garbage", "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----"])
def test_bad_pem_names_the_field(text):
    with pytest.raises(InputError) as err:
        trust.desired_authorities(text, "certificate", None, ["SIP"])
    assert err.value.field == "certificate"


def test_leaf_is_refused():
    with pytest.raises(InputError, match="is a leaf"):
        trust.desired_authorities(pem(LEAF[0]), "certificate", None, ["SIP"])


def test_plan_present_create_update_none_and_managed():
    existing = [entry(MANAGED[0], "MANAGED", id_="m"), entry(ROOT[0], services=["SIP"], id_="r", name="Root CA")]
    desired = trust.desired_authorities(pem(ISSUING[0]) + pem(ROOT[0]) + pem(MANAGED[0]), "c", None, ["SIP"])
    acts = {a["fingerprint"]: a for a in trust.plan_present(existing, desired, name_given=False)}
    assert acts[fp(ISSUING[0])]["action"] == "create"
    assert acts[fp(ROOT[0])]["action"] == "none"
    assert acts[fp(MANAGED[0])]["action"] == "none" and "MANAGED" in acts[fp(MANAGED[0])]["note"]
    # services differ (as a set) -> update in place; a name only counts when given.
    desired = trust.desired_authorities(pem(ROOT[0]), "c", None, ["SIP", "TLS"])
    assert trust.plan_present(existing, desired, False)[0]["action"] == "update"
    desired = trust.desired_authorities(pem(ROOT[0]), "c", "Other", ["SIP"])
    assert trust.plan_present(existing, desired, True)[0]["action"] == "update"
    desired = trust.desired_authorities(pem(ROOT[0]), "c", None, ["SIP"])
    assert trust.plan_present(existing, desired, False)[0]["action"] == "none"


def test_plan_absent_only_remote_and_never_managed():
    existing = [entry(MANAGED[0], "MANAGED", id_="m"), entry(ROOT[0], id_="r"), entry(ISSUING[0], id_="i")]
    acts = trust.plan_absent(existing, [fp(ROOT[0])], "fingerprints")
    assert [(a["action"], a["id"]) for a in acts] == [("delete", "r")]
    with pytest.raises(InputError, match="MANAGED") as err:
        trust.plan_absent(existing, [fp(ROOT[0]), fp(MANAGED[0])], "fingerprints")
    assert err.value.field == "fingerprints"
    assert trust.plan_absent(existing, [fp(LEAF[0])], "f") == []


def test_plan_absent_refuses_half_of_a_chain_entry():
    existing = [entry([ISSUING[0], ROOT[0]], id_="chain")]
    with pytest.raises(InputError, match="also contains"):
        trust.plan_absent(existing, [fp(ROOT[0])], "certificate")
    assert len(trust.plan_absent(existing, [fp(ROOT[0]), fp(ISSUING[0])], "certificate")) == 1


def test_diff_and_apply_to():
    existing = [entry(MANAGED[0], "MANAGED", id_="m")]
    desired = trust.desired_authorities(pem(ROOT[0]), "c", None, ["SIP"])
    after = trust.apply_to(existing, trust.plan_present(existing, desired, False))
    view = trust.diff_view(after)["remote_certificate_authorities"]
    assert list(view) == [fp(ROOT[0])] and view[fp(ROOT[0])] == {"name": "Root CA", "services": ["SIP"]}
    assert trust.diff_view(existing) == {"remote_certificate_authorities": {}}


def test_fingerprint_normalisation():
    colon = ":".join(fp(ROOT[0])[i:i + 2] for i in range(0, 64, 2)).upper()
    assert trust.normalize_fingerprint(colon, "f") == fp(ROOT[0])
    with pytest.raises(InputError, match="SHA-256"):
        trust.normalize_fingerprint("abc", "fingerprints")


# -- trunks ---------------------------------------------------------------------------------------------------
def trunk(id_, name, base_id, connected=True, options=None, edge="Edge 1", in_service=True):
    return {"id": id_, "name": name, "edge": {"id": "e", "name": edge}, "trunkBase": {"id": base_id, "name": name},
            "connectedStatus": {"connected": connected}, "inService": in_service, "enabled": True,
            "optionsEnabledStatus": "ENABLED", "optionsStatus": options or []}


def base(id_, proxies):
    return {"id": id_, "properties": {T.PROXY_LIST: {"value": {"instance": proxies}}}}


def test_address_matching():
    assert T.address_matches("sbc1.example.com", "SBC1.example.com:5061")
    assert T.address_matches("sbc1.example.com:5061", "sbc1.example.com:5061")
    assert not T.address_matches("sbc1.example.com:5062", "sbc1.example.com:5061")
    assert T.address_matches("sbc1.example.com:5061", "sbc1.example.com")
    assert not T.address_matches("sbc2.example.com", "sbc1.example.com:5061")


def test_health_reports_why_a_trunk_is_down():
    bad = {"proxyAddress": "10.0.0.1:5061", "optionState": False,
           "errorInfo": {"text": "TLS certificate verification failed", "code": "x"}}
    state = T.health(trunk("t", "A", "b", connected=False, options=[bad]))
    assert state["up"] is False and state["reasons"] == ["10.0.0.1:5061: TLS certificate verification failed"]
    assert T.health(trunk("t", "A", "b"))["up"] is True
    assert "not in service" in T.health(trunk("t", "A", "b", in_service=False))["reasons"][0]
    assert T.health(trunk("t", "A", "b", connected=False))["reasons"] == ["not connected (no error reported yet)"]


def test_select_by_id_name_address_and_unmatched():
    trunks = [trunk("1", "Site A", "ba"), trunk("2", "Site A", "ba", edge="Edge 2"), trunk("3", "Site B", "bb")]
    bases = {"ba": base("ba", ["sbc-a.example.com:5061"]), "bb": base("bb", ["sbc-b.example.com"])}
    assert [t["id"] for t in T.select(trunks, bases, ["3"], [], [])] == ["3"]
    assert [t["id"] for t in T.select(trunks, bases, [], ["site a"], [])] == ["1", "2"]
    assert [t["id"] for t in T.select(trunks, bases, [], [], ["sbc-b.example.com:5061"])] == ["3"]
    assert len(T.select(trunks, bases, [], [], [])) == 3
    with pytest.raises(NotFound) as err:
        T.select(trunks, bases, ["9"], [], ["nowhere"])
    assert err.value.details["unmatched"] == ["trunk_ids: 9", "sbc_addresses: nowhere"]


def test_progress_line():
    states = [T.health(trunk("1", "A", "b")), T.health(trunk("2", "B", "b", connected=False))]
    assert T.progress_line(3, 12.2, states) == "poll 3 at 12s: 1/2 trunks up; down: B on Edge 1"


# -- the shared gate (issue 10) ---------------------------------------------------------------------------------
def _dated(cn, days_from, days_to, ca=True):
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now + datetime.timedelta(days=days_from))
            .not_valid_after(now + datetime.timedelta(days=days_to))
            .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
            .sign(key, hashes.SHA256()))
    return cert, key


EXPIRED = _dated("Old CA", -30, -1)
FUTURE = _dated("Future CA", 2, 30)


def key_pem(key):
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption()).decode()


@pytest.mark.parametrize("ca", [EXPIRED, FUTURE], ids=["expired", "not-yet-valid"])
def test_out_of_date_ca_refused_unless_allowed_then_warned(ca):
    with pytest.raises(InputError, match="allow_expired_ca=true") as err:
        trust.desired_authorities(pem(ROOT[0]) + pem(ca[0]), "certificate", None, ["SIP"])
    assert err.value.field == "certificate" and "certificate 2 of 2" in err.value.msg
    warnings: list[str] = []
    got = trust.desired_authorities(pem(ROOT[0]) + pem(ca[0]), "certificate", None, ["SIP"], allow_expired=True,
                                    warnings=warnings)
    assert [d["fingerprint"] for d in got] == [fp(ROOT[0]), fp(ca[0])]
    assert len(warnings) == 1 and warnings[0].startswith("certificate: certificate 2 of 2") and ca[0].subject.rfc4514_string() in warnings[0]


def test_key_material_in_the_certificate_is_refused_and_never_echoed():
    text = pem(ROOT[0]) + key_pem(ROOT[1])
    body = key_pem(ROOT[1]).splitlines()[1]
    with pytest.raises(InputError, match="private key material") as err:
        trust.desired_authorities(text, "certificate", None, ["SIP"])
    assert err.value.field == "certificate" and body not in err.value.msg and "PRIVATE KEY" not in str(err.value)


@pytest.mark.parametrize("text", [pem(ROOT[0]) + pem(LEAF[0]), pem(LEAF[0]) + pem(ROOT[0])])
def test_a_leaf_anywhere_in_the_chain_is_refused(text):
    with pytest.raises(InputError, match="is a leaf") as err:
        trust.desired_authorities(text, "certificate", None, ["SIP"])
    assert err.value.field == "certificate"
