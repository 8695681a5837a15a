# Copyright (c) 2026, byoc.certificates contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

# Note that this module util is **PRIVATE** to the collection. It can have breaking changes at any time.

"""The pure parts of the ACME client: account keys, JWK and its thumbprint (RFC 7638), flattened JWS (RFC 7515 /
RFC 8555 §6.2), external account binding (RFC 8555 §7.3.4), DNS-01 key authorizations (RFC 8555 §8.1, §8.4),
problem documents (RFC 7807 / RFC 8555 §6.7) and Retry-After (RFC 9110 §10.2.3).

No function here puts a key, passphrase or HMAC key into an exception: failures name the field and the kind of
problem only.
"""

from __future__ import annotations

import base64
import binascii
import email.utils
import hashlib
import hmac
import json
import time
import typing as t

from ansible_collections.byoc.certificates.plugins.module_utils._errors import InputError, MissingDependency

try:
    from cryptography.exceptions import UnsupportedAlgorithm
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
    from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature
    HAS_CRYPTOGRAPHY = True
except ImportError:  # pragma: no cover - reported by load_account_key
    HAS_CRYPTOGRAPHY = False

# curve name -> (JWS alg, JWK crv, coordinate/signature half length in bytes, hash) - RFC 7518 §3.4, §6.2.1.1
_EC = {
    "secp256r1": ("ES256", "P-256", 32, "SHA256"),
    "secp384r1": ("ES384", "P-384", 48, "SHA384"),
    "secp521r1": ("ES512", "P-521", 66, "SHA512"),
}
EAB_ALGORITHMS = {"HS256": hashlib.sha256, "HS384": hashlib.sha384, "HS512": hashlib.sha512}
PROBLEM_PREFIX = "urn:ietf:params:acme:error:"


def b64url(data: bytes) -> str:
    """base64url without padding (RFC 7515 §2)."""
    return base64.urlsafe_b64encode(data).decode("ascii").rstrip("=")


def b64url_decode(text: str) -> bytes:
    """Inverse of ``b64url``; accepts missing padding. ValueError on anything else (the text is not quoted)."""
    if not isinstance(text, str):
        raise ValueError("not a string")
    clean = text.strip()
    if not clean or any(c not in "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_=" for c in clean):
        raise ValueError("not base64url")
    try:
        return base64.urlsafe_b64decode(clean.rstrip("=") + "=" * (-len(clean.rstrip("=")) % 4))
    except (binascii.Error, ValueError):
        raise ValueError("not base64url") from None


def _int_bytes(value: int, length: int | None = None) -> bytes:
    if length is None:
        length = max(1, (value.bit_length() + 7) // 8)
    return value.to_bytes(length, "big")


class AccountKey:
    """An ACME account key: its JWS ``alg``, public ``jwk`` and ``sign(data) -> bytes``. Never printable."""

    def __init__(self, key: t.Any) -> None:
        self._key = key
        if isinstance(key, ec.EllipticCurvePrivateKey):
            if key.curve.name not in _EC:
                raise InputError("account_key", f"uses the elliptic curve {key.curve.name}; ACME account keys must be"
                                 " P-256, P-384 or P-521 (or RSA)")
            self.alg, crv, self._size, hname = _EC[key.curve.name]
            self._hash = getattr(hashes, hname)()
            nums = key.public_key().public_numbers()
            self.jwk = {"crv": crv, "kty": "EC", "x": b64url(_int_bytes(nums.x, self._size)),
                        "y": b64url(_int_bytes(nums.y, self._size))}
        elif isinstance(key, rsa.RSAPrivateKey):
            if key.key_size < 2048:
                raise InputError("account_key", f"is a {key.key_size}-bit RSA key; ACME servers want at least 2048 bits")
            self.alg = "RS256"
            nums = key.public_key().public_numbers()
            self.jwk = {"e": b64url(_int_bytes(nums.e)), "kty": "RSA", "n": b64url(_int_bytes(nums.n))}
        else:
            raise InputError("account_key", f"is a {type(key).__name__.lstrip('_')}; ACME account keys must be EC"
                             " (P-256, P-384) or RSA")

    def sign(self, data: bytes) -> bytes:
        if self.alg == "RS256":
            return self._key.sign(data, padding.PKCS1v15(), hashes.SHA256())
        # RFC 7518 §3.4: ECDSA signatures are R || S, each as a fixed-length big-endian integer
        r, s = decode_dss_signature(self._key.sign(data, ec.ECDSA(self._hash)))
        return _int_bytes(r, self._size) + _int_bytes(s, self._size)

    def __repr__(self) -> str:
        return f"<AccountKey {self.alg}>"


def load_account_key(pem: bytes | str, passphrase: str | None = None) -> AccountKey:
    """Parse a PEM private key (optionally encrypted). InputError naming ``account_key`` / ``passphrase``; the
    messages never contain the key, the passphrase or a library's text about them."""
    if not HAS_CRYPTOGRAPHY:
        raise MissingDependency("cryptography", "for ACME account keys")
    if isinstance(pem, str):
        pem = pem.encode("utf-8", "replace")
    if not isinstance(pem, bytes):
        raise InputError("account_key", f"must be a PEM private key as text, not a {type(pem).__name__}")
    if passphrase is not None and not isinstance(passphrase, (str, bytes)):
        raise InputError("passphrase", f"must be a string, not a {type(passphrase).__name__} (the value is not shown)")
    secret = passphrase.encode("utf-8") if isinstance(passphrase, str) else passphrase
    try:
        key = serialization.load_pem_private_key(pem, password=secret or None)
    except TypeError:
        # cryptography: a password for an unencrypted key, or none for an encrypted one
        if secret:
            raise InputError("passphrase", "was given but the account key is not encrypted; remove it") from None
        raise InputError("passphrase", "is required: the account key is encrypted") from None
    except (ValueError, UnsupportedAlgorithm):
        if secret:
            raise InputError("account_key", "could not be read: not a PEM private key, or the passphrase is wrong"
                             " (neither is shown)") from None
        raise InputError("account_key", "is not a PEM private key (or is encrypted and needs a passphrase);"
                         " the content is not shown") from None
    return AccountKey(key)


def thumbprint(jwk: dict) -> str:
    """RFC 7638 §3: SHA-256 over the required members in lexicographic order, no whitespace; base64url."""
    required = ("crv", "kty", "x", "y") if jwk.get("kty") == "EC" else ("e", "kty", "n")
    canonical = json.dumps({k: jwk[k] for k in required}, sort_keys=True, separators=(",", ":"))
    return b64url(hashlib.sha256(canonical.encode("utf-8")).digest())


def _encode_payload(payload: t.Any) -> str:
    # RFC 8555 §6.3: POST-as-GET has an empty payload (not "{}"), marked here by None
    if payload is None:
        return ""
    return b64url(json.dumps(payload, separators=(",", ":")).encode("utf-8"))


def sign_jws(key: AccountKey, payload: t.Any, url: str, nonce: str | None, kid: str | None = None) -> dict:
    """A flattened JWS (RFC 8555 §6.2): ``jwk`` when ``kid`` is None (newAccount), else ``kid``; ``url`` and
    ``nonce`` in the protected header."""
    protected: dict[str, t.Any] = {"alg": key.alg, "url": url}
    if nonce is not None:
        protected["nonce"] = nonce
    if kid:
        protected["kid"] = kid
    else:
        protected["jwk"] = key.jwk
    prot = b64url(json.dumps(protected, separators=(",", ":")).encode("utf-8"))
    body = _encode_payload(payload)
    return {"protected": prot, "payload": body, "signature": b64url(key.sign(f"{prot}.{body}".encode("ascii")))}


def check_eab(eab: t.Any) -> tuple[str, bytes, str]:
    """Validate ``eab`` = {'kid', 'hmac_key' (base64url), 'alg'}; return (kid, key bytes, alg)."""
    if not isinstance(eab, dict):
        raise InputError("eab", f"must be a dict with kid, hmac_key and alg, not a {type(eab).__name__}")
    kid, key, alg = eab.get("kid"), eab.get("hmac_key"), eab.get("alg") or "HS256"
    if not isinstance(kid, str) or not kid.strip():
        raise InputError("eab.kid", "is required: the key identifier the CA gave with the HMAC key")
    if alg not in EAB_ALGORITHMS:
        shown = alg if isinstance(alg, str) and len(alg) < 20 else type(alg).__name__
        raise InputError("eab.alg", f"{shown!r} is not one of {', '.join(EAB_ALGORITHMS)}")
    try:
        raw = b64url_decode(key)
    except ValueError:
        raise InputError("eab.hmac_key", "is not a base64url string (copy it as the CA gave it; the value is not"
                         " shown)") from None
    return kid.strip(), raw, alg


def eab_jws(jwk: dict, eab: dict, url: str) -> dict:
    """RFC 8555 §7.3.4: a JWS over the account's JWK, MACed with the CA's key; protected = {alg, kid, url}."""
    kid, key, alg = check_eab(eab)
    prot = b64url(json.dumps({"alg": alg, "kid": kid, "url": url}, separators=(",", ":")).encode("utf-8"))
    body = b64url(json.dumps(jwk, separators=(",", ":")).encode("utf-8"))
    mac = hmac.new(key, f"{prot}.{body}".encode("ascii"), EAB_ALGORITHMS[alg]).digest()
    return {"protected": prot, "payload": body, "signature": b64url(mac)}


def key_authorization(token: str, account_thumbprint: str) -> str:
    """RFC 8555 §8.1: token "." base64url(JWK thumbprint)."""
    return f"{token}.{account_thumbprint}"


def dns01_value(token: str, account_thumbprint: str) -> str:
    """RFC 8555 §8.4: the TXT value is base64url(SHA-256(key authorization))."""
    return b64url(hashlib.sha256(key_authorization(token, account_thumbprint).encode("ascii")).digest())


def parse_retry_after(value: t.Any, now: float | None = None) -> float | None:
    """RFC 9110 §10.2.3: delay-seconds or an HTTP-date. Seconds from now (0 for a date in the past); None when
    absent or unparsable."""
    if value is None:
        return None
    text = str(value).strip()
    if not text:
        return None
    if text.isdigit():
        return float(int(text))
    try:
        when = email.utils.parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError):
        return None
    if when is None or when.tzinfo is None:
        return None
    return max(0.0, when.timestamp() - (time.time() if now is None else now))


def parse_problem(body: bytes | str | None, content_type: str | None = None) -> dict | None:
    """A problem document (RFC 7807, RFC 8555 §6.7) as {'type', 'kind', 'detail', 'subproblems'}, or None when
    the body is not one. ``kind`` is the last part of an ACME error type ('badNonce'), or the type itself."""
    if isinstance(body, bytes):
        body = body.decode("utf-8", "replace")
    if not body:
        return None
    try:
        doc = json.loads(body)
    except ValueError:
        return None
    if not isinstance(doc, dict) or not isinstance(doc.get("type"), str):
        return None
    if content_type and "json" not in content_type.lower():
        return None
    ptype = doc["type"]
    kind = ptype[len(PROBLEM_PREFIX):] if ptype.startswith(PROBLEM_PREFIX) else ptype.rsplit(":", 1)[-1].rsplit("/", 1)[-1]
    subs = doc.get("subproblems") if isinstance(doc.get("subproblems"), list) else []
    return {"type": ptype, "kind": kind or "http", "detail": str(doc.get("detail") or ""),
            "status": doc.get("status") if isinstance(doc.get("status"), int) else None,
            "subproblems": [s for s in subs if isinstance(s, dict)]}
