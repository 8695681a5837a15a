# Copyright (c) 2026, byoc.certificates contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

import base64
import email.utils
import hashlib
import hmac
import json

import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature

from ansible_collections.byoc.certificates.plugins.module_utils._acme import jws
from ansible_collections.byoc.certificates.plugins.module_utils._acme.client import AcmeClient, AcmeProblem
from ansible_collections.byoc.certificates.plugins.module_utils._errors import ApiError, InputError

# RFC 7638 §3.1: the example RSA key and its thumbprint
RFC7638_N = ("0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_BJECPebWKRXjBZCiFV4n3oknjhMst"
             "n64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_FDW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajr"
             "n1n91CbOpbISD08qNLyrdkt-bFTWhAI4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw")
RFC7638_THUMBPRINT = "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs"


def dec(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def pem_of(key, passphrase: bytes | None = None) -> bytes:
    enc = serialization.BestAvailableEncryption(passphrase) if passphrase else serialization.NoEncryption()
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, enc)


def test_thumbprint_matches_rfc7638_example():
    jwk = {"kty": "RSA", "n": RFC7638_N, "e": "AQAB", "alg": "RS256", "kid": "2011-04-29"}
    assert jws.thumbprint(jwk) == RFC7638_THUMBPRINT


def test_ec_jwk_coordinates_are_fixed_length_and_thumbprint_uses_required_members():
    key = jws.load_account_key(pem_of(ec.generate_private_key(ec.SECP384R1())))
    assert key.alg == "ES384" and key.jwk["crv"] == "P-384" and list(key.jwk) == ["crv", "kty", "x", "y"]
    assert len(dec(key.jwk["x"])) == 48 and len(dec(key.jwk["y"])) == 48
    canonical = '{"crv":"P-384","kty":"EC","x":"%s","y":"%s"}' % (key.jwk["x"], key.jwk["y"])
    assert jws.thumbprint(dict(key.jwk, extra="ignored")) == jws.b64url(hashlib.sha256(canonical.encode()).digest())


@pytest.mark.parametrize("curve,alg,size,hash_", [(ec.SECP256R1(), "ES256", 32, hashes.SHA256()),
                                                  (ec.SECP384R1(), "ES384", 48, hashes.SHA384())])
def test_jws_with_jwk_for_new_account_verifies(curve, alg, size, hash_):
    priv = ec.generate_private_key(curve)
    key = jws.load_account_key(pem_of(priv))
    msg = jws.sign_jws(key, {"termsOfServiceAgreed": True}, "https://ca/new-acct", "nonce-1")
    assert set(msg) == {"protected", "payload", "signature"}
    prot = json.loads(dec(msg["protected"]))
    assert prot == {"alg": alg, "url": "https://ca/new-acct", "nonce": "nonce-1", "jwk": key.jwk}
    assert json.loads(dec(msg["payload"])) == {"termsOfServiceAgreed": True}
    sig = dec(msg["signature"])
    assert len(sig) == 2 * size
    der = encode_dss_signature(int.from_bytes(sig[:size], "big"), int.from_bytes(sig[size:], "big"))
    priv.public_key().verify(der, f"{msg['protected']}.{msg['payload']}".encode(), ec.ECDSA(hash_))


def test_jws_with_kid_and_post_as_get_rs256():
    priv = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    key = jws.load_account_key(pem_of(priv).decode())
    msg = jws.sign_jws(key, None, "https://ca/order/1", "n2", kid="https://ca/acct/7")
    prot = json.loads(dec(msg["protected"]))
    assert prot == {"alg": "RS256", "url": "https://ca/order/1", "nonce": "n2", "kid": "https://ca/acct/7"}
    assert msg["payload"] == ""  # RFC 8555 §6.3: POST-as-GET has an empty payload
    priv.public_key().verify(dec(msg["signature"]), f"{msg['protected']}.".encode(), padding.PKCS1v15(), hashes.SHA256())
    assert jws.load_account_key(pem_of(priv)).jwk == {"e": "AQAB", "kty": "RSA", "n": key.jwk["n"]}


@pytest.mark.parametrize("alg,digest", [("HS256", hashlib.sha256), ("HS384", hashlib.sha384), ("HS512", hashlib.sha512)])
def test_eab_mac_over_the_account_jwk(alg, digest):
    key = jws.load_account_key(pem_of(ec.generate_private_key(ec.SECP256R1())))
    raw = bytes(range(32))
    eab = {"kid": "kid-1", "hmac_key": jws.b64url(raw), "alg": alg}
    msg = jws.eab_jws(key.jwk, eab, "https://ca/new-acct")
    assert json.loads(dec(msg["protected"])) == {"alg": alg, "kid": "kid-1", "url": "https://ca/new-acct"}
    assert json.loads(dec(msg["payload"])) == key.jwk
    expected = hmac.new(raw, f"{msg['protected']}.{msg['payload']}".encode(), digest).digest()
    assert dec(msg["signature"]) == expected


@pytest.mark.parametrize("bad,field", [({"kid": "k", "hmac_key": "not base64 !! secret-value"}, "eab.hmac_key"),
                                       ({"kid": "k", "hmac_key": 12345678}, "eab.hmac_key"),
                                       ({"kid": "", "hmac_key": "c2VjcmV0LXZhbHVl"}, "eab.kid"),
                                       ({"kid": "k", "hmac_key": "c2VjcmV0LXZhbHVl", "alg": "HS1"}, "eab.alg"),
                                       ("secret-value", "eab")])
def test_eab_errors_name_the_field_and_never_the_key(bad, field):
    with pytest.raises(InputError) as err:
        jws.check_eab(bad)
    assert err.value.field == field
    for secret in ("secret-value", "c2VjcmV0LXZhbHVl", "12345678"):
        assert secret not in str(err.value) and secret not in repr(err.value.details)


def test_key_authorization_and_dns01_digest():
    token = "evaGxfADs6pSRb2LAv9IZf17Dt3juxGJ-PCt92wr-oA"
    assert jws.key_authorization(token, RFC7638_THUMBPRINT) == f"{token}.{RFC7638_THUMBPRINT}"
    digest = hashlib.sha256(f"{token}.{RFC7638_THUMBPRINT}".encode()).digest()
    value = jws.dns01_value(token, RFC7638_THUMBPRINT)
    assert value == base64.urlsafe_b64encode(digest).decode().rstrip("=") and len(value) == 43 and "=" not in value


def test_problem_parsing():
    doc = {"type": "urn:ietf:params:acme:error:rejectedIdentifier", "detail": "no", "status": 400,
           "subproblems": [{"type": "urn:ietf:params:acme:error:rejectedIdentifier", "detail": "bad name",
                            "identifier": {"type": "dns", "value": "x.example"}}, "garbage"]}
    p = jws.parse_problem(json.dumps(doc).encode(), "application/problem+json")
    assert p["kind"] == "rejectedIdentifier" and p["detail"] == "no" and p["status"] == 400
    assert p["subproblems"] == [doc["subproblems"][0]]
    assert jws.parse_problem(b'{"type": "about:blank", "detail": "x"}', "application/problem+json")["kind"] == "blank"
    assert jws.parse_problem(b"<html>502</html>", "text/html") is None
    assert jws.parse_problem(b"", None) is None
    assert jws.parse_problem(b'["x"]', "application/json") is None


def test_acme_problem_is_one_sentence_with_where_what_and_todo():
    exc = AcmeProblem("newOrder", "https://user:pw@ca.example/new-order", kind="rateLimited", status=429,
                      detail="too many orders", retry_after=3600.0, ptype="urn:ietf:params:acme:error:rateLimited")
    text = str(exc)
    assert isinstance(exc, ApiError)
    assert "user:pw" not in text and exc.url == "https://ca.example/new-order"
    assert text.startswith("ACME newOrder failed at https://ca.example/new-order - answered 429")
    assert "too many orders" in text and "3600 s" in text and "What to do:" in text
    assert exc.details["kind"] == "rateLimited" and exc.details["retry_after"] == 3600.0
    assert AcmeProblem("x", "https://ca/", kind="alreadyReplaced").kind == "alreadyReplaced"


def test_retry_after_parsing():
    assert jws.parse_retry_after("120") == 120.0
    assert jws.parse_retry_after(" 0 ") == 0.0
    now = 1_800_000_000.0
    assert jws.parse_retry_after(email.utils.formatdate(now + 90, usegmt=True), now=now) == pytest.approx(90, abs=1)
    assert jws.parse_retry_after(email.utils.formatdate(now - 90, usegmt=True), now=now) == 0.0
    for garbage in (None, "", "soon", "-5", "1.5e3"):
        assert jws.parse_retry_after(garbage) is None


def test_account_key_errors_never_show_key_or_passphrase():
    priv = ec.generate_private_key(ec.SECP256R1())
    enc = pem_of(priv, b"right-passphrase")
    with pytest.raises(InputError) as err:
        jws.load_account_key(enc, "wrong-passphrase")
    assert "wrong-passphrase" not in str(err.value) and "PRIVATE KEY" not in str(err.value)
    with pytest.raises(InputError) as err:
        jws.load_account_key(enc)
    assert err.value.field == "passphrase"
    with pytest.raises(InputError) as err:
        jws.load_account_key(enc, 1234567)  # a type error: the value is not shown
    assert err.value.field == "passphrase" and "1234567" not in str(err.value)
    assert jws.load_account_key(enc, "right-passphrase").alg == "ES256"
    plain = pem_of(priv)
    with pytest.raises(InputError) as err:
        jws.load_account_key(plain[:-40] + b"\n")
    assert plain.decode().splitlines()[1] not in str(err.value)
    with pytest.raises(InputError) as err:
        jws.load_account_key(pem_of(ed25519.Ed25519PrivateKey.generate()))
    assert "Ed25519" in str(err.value)
    with pytest.raises(InputError):
        jws.load_account_key(pem_of(ec.generate_private_key(ec.SECP256K1())))
    with pytest.raises(InputError):
        AcmeClient("ftp://ca/dir", plain)
    key = jws.load_account_key(plain)
    assert "PRIVATE" not in repr(key) and repr(key) == "<AccountKey ES256>"
