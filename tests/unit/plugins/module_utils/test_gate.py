# Copyright (c) 2026, byoc.certificates contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""The one gate: every class of bad certificate material is refused, naming the field, never echoing a key."""

from __future__ import annotations

import datetime

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from ansible_collections.byoc.certificates.plugins.module_utils import _gate, _pem
from ansible_collections.byoc.certificates.plugins.module_utils._errors import InputError

NOW = datetime.datetime.now(datetime.timezone.utc)
DAY = datetime.timedelta(days=1)


def make(cn, issuer=None, *, ca=False, start=None, end=None, basic_constraints=True):
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])
    builder = (x509.CertificateBuilder().subject_name(name)
               .issuer_name(issuer[0].subject if issuer else name)
               .public_key(key.public_key()).serial_number(x509.random_serial_number())
               .not_valid_before(start or NOW - DAY).not_valid_after(end or NOW + 30 * DAY))
    if basic_constraints:
        builder = builder.add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
    return builder.sign(issuer[1] if issuer else key, hashes.SHA256()), key


def pem(*certs):
    return "".join(_pem.to_pem(c) for c in certs)


def key_pem(key, passphrase=None):
    enc = serialization.BestAvailableEncryption(passphrase.encode()) if passphrase else serialization.NoEncryption()
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, enc).decode()


@pytest.fixture(scope="module")
def pki():
    root = make("Root", ca=True)
    inter = make("Intermediate", root, ca=True)
    leaf = make("sbc1.example.test", inter)
    other_leaf = make("other.example.test", inter)
    expired_leaf = make("old.example.test", inter, start=NOW - 90 * DAY, end=NOW - DAY)
    future_leaf = make("future.example.test", inter, start=NOW + DAY, end=NOW + 90 * DAY)
    expired_root = make("Old Root", ca=True, start=NOW - 900 * DAY, end=NOW - DAY)
    unrelated_ca = make("Unrelated CA", ca=True)
    return dict(root=root, inter=inter, leaf=leaf, other_leaf=other_leaf, expired_leaf=expired_leaf,
                future_leaf=future_leaf, expired_root=expired_root, unrelated_ca=unrelated_ca)


def refusal(fn, *args, **kwargs) -> InputError:
    with pytest.raises(InputError) as info:
        fn(*args, **kwargs)
    return info.value


def test_good_material_passes_and_orders_the_chain(pki):
    m = _gate.server_material(certificate=pem(pki["leaf"][0]), chain=pem(pki["root"][0], pki["inter"][0]),
                              private_key=key_pem(pki["leaf"][1]), require_anchor=True)
    assert m.leaf == pki["leaf"][0]
    assert m.intermediates == [pki["inter"][0]]
    assert m.anchors == [pki["root"][0]]
    assert m.warnings == []


@pytest.mark.parametrize("which, words", [("expired_leaf", "expired on"), ("future_leaf", "is not valid before")])
def test_leaf_outside_its_validity_is_refused(pki, which, words):
    err = refusal(_gate.server_certificate, pem(pki[which][0]), "certificate")
    assert err.field == "certificate" and words in err.msg


def test_check_dates_false_judges_the_kind_but_not_the_dates(pki):
    """What a store does: it keeps expired material, but never a CA as the leaf or a leaf as a CA."""
    leaf, extra = _gate.server_certificate(pem(pki["expired_leaf"][0], pki["expired_root"][0]), "certificate",
                                           check_dates=False)
    assert leaf == pki["expired_leaf"][0] and extra == [pki["expired_root"][0]]
    certs, warnings = _gate.ca_certificates(pem(pki["expired_root"][0]), "chain", check_dates=False)
    assert certs == [pki["expired_root"][0]] and warnings == []
    err = refusal(_gate.server_certificate, pem(pki["inter"][0]), "certificate", check_dates=False)
    assert "is a CA certificate, but a server (leaf) certificate belongs here" in err.msg
    err = refusal(_gate.ca_certificates, pem(pki["root"][0], pki["expired_leaf"][0]), "chain", check_dates=False)
    assert "would become a trust anchor" in err.msg


def test_ca_where_a_leaf_belongs(pki):
    err = refusal(_gate.server_certificate, pem(pki["inter"][0]), "certificate")
    assert "is a CA certificate, but a server (leaf) certificate belongs here" in err.msg


def test_second_leaf_in_certificate(pki):
    err = refusal(_gate.server_certificate, pem(pki["leaf"][0], pki["other_leaf"][0]), "certificate")
    assert "second leaf" in err.msg and "certificate 2 of 2" in err.msg


@pytest.mark.parametrize("field", ["chain", "trusted_roots", "ca_certificates"])
def test_leaf_where_a_ca_belongs(pki, field):
    err = refusal(_gate.ca_certificates, pem(pki["root"][0], pki["leaf"][0]), field)
    assert err.field == field and "would become a trust anchor" in err.msg


def test_expired_ca_refused_unless_allowed_then_warned(pki):
    err = refusal(_gate.ca_certificates, pem(pki["expired_root"][0]), "trusted_roots")
    assert "allow_expired_ca=true" in err.msg
    certs, warnings = _gate.ca_certificates(pem(pki["expired_root"][0]), "trusted_roots", allow_expired=True)
    assert certs == [pki["expired_root"][0]] and "expired on" in warnings[0]


@pytest.mark.parametrize("fn", [lambda p: _gate.server_certificate(p, "certificate"),
                                lambda p: _gate.ca_certificates(p, "certificate")])
def test_key_material_in_a_certificate_field_is_refused_and_never_echoed(pki, fn):
    key_text = key_pem(pki["leaf"][1])
    body = key_text.splitlines()[1]
    for text in (pem(pki["leaf"][0]) + key_text, key_text, key_text.replace("-----END PRIVATE KEY-----", "")):
        with pytest.raises(InputError) as info:
            fn(text)
        assert "private key material" in info.value.msg
        assert body not in str(info.value) and body not in repr(info.value.details)


@pytest.mark.parametrize("text, words", [
    ("", "no PEM certificate found"),
    ("hello", "no PEM certificate found"),
    ("-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n", "is not a valid X.509 certificate"),
    ("-----BEGIN CERTIFICATE REQUEST-----\nAAAA\n-----END CERTIFICATE REQUEST-----\n", "is not a certificate"),
])
def test_garbage(text, words):
    err = refusal(_gate.server_certificate, text, "certificate")
    assert words in err.msg


def test_non_string_input():
    err = refusal(_gate.ca_certificates, 42, "trusted_roots")
    assert err.field == "trusted_roots" and "expected PEM text, got int" in err.msg


def test_chain_with_an_unrelated_ca_is_refused(pki):
    err = refusal(_gate.server_material, certificate=pem(pki["leaf"][0]),
                  chain=pem(pki["inter"][0], pki["unrelated_ca"][0]))
    assert err.field == "chain" and "is not part of the chain" in err.msg


def test_chain_that_does_not_reach_the_anchors(pki):
    err = refusal(_gate.server_material, certificate=pem(pki["leaf"][0]), chain=pem(pki["inter"][0]),
                  trusted_roots=pem(pki["unrelated_ca"][0]), require_anchor=True)
    assert "does not lead to any of the trust anchors" in err.msg
    # Without require_anchor, trusted roots are client roots (e.g. the Genesys MANAGED CA) and may be unrelated.
    m = _gate.server_material(certificate=pem(pki["leaf"][0]), chain=pem(pki["inter"][0]),
                              trusted_roots=pem(pki["unrelated_ca"][0]))
    assert m.trusted_roots == [pki["unrelated_ca"][0]]


def test_intermediate_given_after_the_leaf_counts_as_chain(pki):
    m = _gate.server_material(certificate=pem(pki["leaf"][0], pki["inter"][0]), chain=pem(pki["root"][0]),
                              require_anchor=True)
    assert m.intermediates == [pki["inter"][0]]


def test_private_key_problems_are_told_apart(pki):
    leaf, leaf_key = pki["leaf"]
    assert "no passphrase was given" in refusal(_gate.private_key, key_pem(leaf_key, "s3cret"), "private_key").msg
    assert "wrong passphrase" in refusal(_gate.private_key, key_pem(leaf_key, "s3cret"), "private_key", "nope").msg
    assert "not encrypted" in refusal(_gate.private_key, key_pem(leaf_key), "private_key", "s3cret").msg
    err = refusal(_gate.private_key, key_pem(pki["other_leaf"][1]), "private_key", certificate=leaf,
                  certificate_field="certificate")
    assert "does not match the certificate in certificate" in err.msg
    assert _gate.private_key(key_pem(leaf_key, "s3cret"), "private_key", "s3cret", certificate=leaf) is not None


def test_same_input_same_words_whatever_the_field(pki):
    """Modules differ only in the field name: the reason after 'field: ' is identical."""
    a = refusal(_gate.server_certificate, pem(pki["expired_leaf"][0]), "certificate")
    b = refusal(_gate.server_certificate, pem(pki["expired_leaf"][0]), "server_certificate")
    assert a.msg.split(": ", 1)[1] == b.msg.split(": ", 1)[1]


def test_v1_root_without_basic_constraints_is_a_ca():
    root = make("V1 Root", basic_constraints=False)
    # cryptography always writes v3; a self-issued cert without basicConstraints is still a leaf then.
    blocks = _gate.classify(pem(root[0]), "x")
    assert blocks[0].kind == _gate.LEAF
