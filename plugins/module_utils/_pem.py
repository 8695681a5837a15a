# Copyright (c) 2026, byoc.certificates contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

# Note that this module util is **PRIVATE** to the collection. It can have breaking changes at any time.

"""PEM parsing and certificate identity, shared by every module.

Certificates are compared by the SHA-256 fingerprint of their DER encoding, never by PEM text (which differs in
whitespace, line length and chain order). Every parse error becomes an ``InputError`` naming the option.
"""

from __future__ import annotations

import hashlib
import re
import typing as t

from ansible_collections.byoc.certificates.plugins.module_utils._errors import InputError, MissingDependency

try:
    from cryptography import x509
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec, rsa

    HAS_CRYPTOGRAPHY = True
    CRYPTOGRAPHY_IMPORT_ERROR = None
except ImportError as _exc:  # pragma: no cover - exercised by the sanity import test
    HAS_CRYPTOGRAPHY = False
    CRYPTOGRAPHY_IMPORT_ERROR = str(_exc)

_CERT_RE = re.compile(r"-----BEGIN CERTIFICATE-----[A-Za-z0-9+/=\s]+?-----END CERTIFICATE-----")
_KEY_RE = re.compile(r"-----BEGIN (?:[A-Z]+ )?PRIVATE KEY-----.+?-----END (?:[A-Z]+ )?PRIVATE KEY-----", re.S)


def require_cryptography() -> None:
    if not HAS_CRYPTOGRAPHY:
        raise MissingDependency("cryptography", "to parse certificates and keys", CRYPTOGRAPHY_IMPORT_ERROR)


def load_certificates(pem: str, field: str, *, allow_empty: bool = False) -> list:
    """All certificates in a PEM bundle, in order. Raises InputError(field) for no or unparsable blocks."""
    require_cryptography()
    if not isinstance(pem, str):
        raise InputError(field, "expected PEM text")
    blocks = _CERT_RE.findall(pem)
    if not blocks:
        if allow_empty and not pem.strip():
            return []
        raise InputError(field, "no PEM certificate found (expected one or more '-----BEGIN CERTIFICATE-----' blocks)")
    certs = []
    for i, block in enumerate(blocks, 1):
        try:
            certs.append(x509.load_pem_x509_certificate(block.encode("ascii")))
        except ValueError as exc:
            raise InputError(field, f"certificate {i} of {len(blocks)} is not a valid X.509 certificate: {exc}") from None
    return certs


def load_certificate(pem: str, field: str):
    """Exactly the first certificate of ``pem`` (the leaf, by convention)."""
    return load_certificates(pem, field)[0]


def load_private_key(pem: str, field: str, passphrase: str | None = None):
    require_cryptography()
    if not isinstance(pem, str) or not _KEY_RE.search(pem):
        raise InputError(field, "no PEM private key found (expected a '-----BEGIN ... PRIVATE KEY-----' block)")
    try:
        return serialization.load_pem_private_key(
            _KEY_RE.search(pem).group(0).encode("ascii"), passphrase.encode() if passphrase else None)
    except TypeError as exc:
        raise InputError(field, f"the private key is encrypted and no (or a wrong) passphrase was given: {exc}") from None
    except ValueError as exc:
        raise InputError(field, f"the private key could not be read (wrong passphrase or corrupt PEM): {exc}") from None


def fingerprint(cert) -> str:
    """SHA-256 of the DER encoding, lowercase hex without separators."""
    return hashlib.sha256(cert.public_bytes(serialization.Encoding.DER)).hexdigest()


def fingerprint_colons(cert) -> str:
    """The same fingerprint as upper-case hex pairs joined by colons (how appliances and openssl show it)."""
    fp = fingerprint(cert).upper()
    return ":".join(fp[i:i + 2] for i in range(0, len(fp), 2))


def public_key_der(obj) -> bytes:
    pub = obj.public_key()
    return pub.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)


def key_matches_certificate(key, cert) -> bool:
    return public_key_der(key) == public_key_der(cert)


def to_pem(cert) -> str:
    return cert.public_bytes(serialization.Encoding.PEM).decode("ascii")


def key_to_pem(key) -> str:
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption()).decode("ascii")


def is_self_signed(cert) -> bool:
    return cert.issuer == cert.subject


def is_ca(cert) -> bool:
    try:
        return bool(cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca)
    except x509.ExtensionNotFound:
        return False


def subject_alt_names(cert) -> list[str]:
    try:
        ext = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return []
    names = [f"DNS:{n}" for n in ext.get_values_for_type(x509.DNSName)]
    names += [f"IP:{n}" for n in ext.get_values_for_type(x509.IPAddress)]
    return names


def key_description(obj) -> str:
    """'RSA 2048', 'EC secp256r1', ... for a certificate or a private key."""
    pub = obj.public_key() if hasattr(obj, "public_key") else obj
    if isinstance(pub, rsa.RSAPublicKey):
        return f"RSA {pub.key_size}"
    if isinstance(pub, ec.EllipticCurvePublicKey):
        return f"EC {pub.curve.name}"
    return type(pub).__name__


def details(cert) -> dict[str, t.Any]:
    """What a user wants to see about a certificate: no key material."""
    return {
        "subject": cert.subject.rfc4514_string(),
        "issuer": cert.issuer.rfc4514_string(),
        "subject_alt_names": subject_alt_names(cert),
        "serial_number": format(cert.serial_number, "x"),
        "not_before": cert.not_valid_before_utc.isoformat(),
        "not_after": cert.not_valid_after_utc.isoformat(),
        "fingerprint_sha256": fingerprint(cert),
        "public_key": key_description(cert),
        "is_ca": is_ca(cert),
    }


def order_chain(certs: list) -> list:
    """Order certificates leaf first, each followed by its issuer when present; unrelated ones keep their order."""
    if len(certs) < 2:
        return list(certs)
    issuers = {c.issuer for c in certs}
    leaves = [c for c in certs if c.subject not in issuers or (is_self_signed(c) and len(certs) == 1)]
    start = leaves[0] if leaves else certs[0]
    ordered = [start]
    by_subject = {c.subject: c for c in certs}
    while not is_self_signed(ordered[-1]) and ordered[-1].issuer in by_subject:
        nxt = by_subject[ordered[-1].issuer]
        if nxt in ordered:
            break
        ordered.append(nxt)
    ordered += [c for c in certs if c not in ordered]
    return ordered
