# Copyright (c) 2026, byoc.certificates contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

import datetime
import hashlib

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from ansible_collections.byoc.certificates.plugins.module_utils import _pem
from ansible_collections.byoc.certificates.plugins.module_utils._errors import InputError


def make_cert(cn, issuer_cert=None, issuer_key=None, ca=False, sans=()):
    key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.datetime.now(datetime.timezone.utc)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])
    builder = (x509.CertificateBuilder().subject_name(name)
               .issuer_name(issuer_cert.subject if issuer_cert else name)
               .public_key(key.public_key()).serial_number(x509.random_serial_number())
               .not_valid_before(now).not_valid_after(now + datetime.timedelta(days=10))
               .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True))
    if sans:
        builder = builder.add_extension(x509.SubjectAlternativeName([x509.DNSName(s) for s in sans]), critical=False)
    cert = builder.sign(issuer_key or key, hashes.SHA256())
    return cert, key


@pytest.fixture(scope="module")
def chain():
    root, root_key = make_cert("root", ca=True)
    inter, inter_key = make_cert("inter", root, root_key, ca=True)
    leaf, leaf_key = make_cert("sbc1.example.test", inter, inter_key, sans=["sbc1.example.test"])
    return root, inter, leaf, leaf_key


def test_fingerprint_is_sha256_of_der_and_ignores_pem_whitespace(chain):
    leaf = chain[2]
    pem = _pem.to_pem(leaf)
    messy = "\n\n  " + pem.replace("\n", "\r\n") + "\n\n"
    parsed = _pem.load_certificate(messy, "certificate")
    expected = hashlib.sha256(leaf.public_bytes(serialization.Encoding.DER)).hexdigest()
    assert _pem.fingerprint(parsed) == expected
    assert _pem.fingerprint_colons(parsed).replace(":", "").lower() == expected


def test_bundle_order_and_chain_ordering(chain):
    root, inter, leaf = chain[:3]
    bundle = _pem.to_pem(root) + _pem.to_pem(leaf) + _pem.to_pem(inter)
    certs = _pem.load_certificates(bundle, "chain")
    assert [c.subject for c in certs] == [root.subject, leaf.subject, inter.subject]
    ordered = _pem.order_chain(certs)
    assert [c.subject for c in ordered] == [leaf.subject, inter.subject, root.subject]


@pytest.mark.parametrize("text", ["", "not pem", "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----"])
def test_bad_certificate_names_the_field(text):
    with pytest.raises(InputError) as exc:
        _pem.load_certificates(text, "certificate")
    assert exc.value.field == "certificate" and exc.value.msg.startswith("certificate: ")


def test_key_matches_certificate(chain):
    inter, leaf, leaf_key = chain[1:]
    key = _pem.load_private_key(_pem.key_to_pem(leaf_key), "private_key")
    assert _pem.key_matches_certificate(key, leaf)
    assert not _pem.key_matches_certificate(key, inter)


def test_encrypted_key_without_passphrase_is_input_error(chain):
    leaf_key = chain[3]
    enc = leaf_key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                 serialization.BestAvailableEncryption(b"pw")).decode()
    with pytest.raises(InputError) as exc:
        _pem.load_private_key(enc, "private_key")
    assert exc.value.field == "private_key"
    assert _pem.load_private_key(enc, "private_key", passphrase="pw") is not None


def test_details_carry_no_key_material(chain):
    leaf = chain[2]
    d = _pem.details(leaf)
    assert d["subject_alt_names"] == ["DNS:sbc1.example.test"]
    assert d["issuer"] == "CN=inter" and d["is_ca"] is False
    assert d["public_key"] == "EC secp256r1"
    assert "PRIVATE" not in repr(d)
