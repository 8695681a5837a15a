# Copyright (c) 2026, byoc.certificates contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

# Note that this module util is **PRIVATE** to the collection. It can have breaking changes at any time.

"""The store document and the encryption of private keys at rest.

Document (one per group)::

    format, group, revision, updated
    current / previous: {certificate, chain, fullchain, privatekey (encrypted PEM), fingerprint,
                         key_fingerprint, key_type, names, not_before, not_after, stored, order_uri}
    accounts: {<ACME directory URL>: {key (encrypted PEM), uri, created}}
    ari: {cert_id, window_start, window_end, explanation_url, retry_after, checked}
    backoff: {failures, last_failure, next_attempt, retry_after, rate_limited, last_error}
    last_order_url

Private keys (certificate and ACME account keys) are kept as PKCS#8 PEM encrypted with the store passphrase
(``BestAvailableEncryption``: the strongest scheme the installed ``cryptography`` offers). The same encrypted
PEM can be handed to community.crypto (``privatekey_passphrase``/``account_key_passphrase``) or to openssl,
so a key is never written to disk in clear, not even in a temporary directory.
"""

from __future__ import annotations

import datetime
import hashlib
import typing as t

from ansible_collections.byoc.certificates.plugins.module_utils import _gate, _pem
from ansible_collections.byoc.certificates.plugins.module_utils._errors import InputError
from ansible_collections.byoc.certificates.plugins.module_utils._store.base import FORMAT, check_group

try:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
except ImportError:  # pragma: no cover - _pem.require_cryptography() reports it
    pass

ENV_PASSPHRASE = "BYOC_STORE_PASSPHRASE"
MIN_PASSPHRASE = 12

# Options shared by certificate_store and certificate_store_info (documented in doc_fragments/_store.py).
S3_OPTIONS: dict[str, t.Any] = {
    "bucket": {"type": "str", "required": True},
    "prefix": {"type": "str", "default": ""},
    "endpoint_url": {"type": "str"},
    "region": {"type": "str"},
    "access_key": {"type": "str", "no_log": True},
    "secret_key": {"type": "str", "no_log": True},
    "session_token": {"type": "str", "no_log": True},
    "validate_certs": {"type": "bool", "default": True},
    "ca_path": {"type": "path"},
}


def store_argspec() -> dict[str, t.Any]:
    from ansible.module_utils.basic import env_fallback

    s3 = {k: dict(v) for k, v in S3_OPTIONS.items()}
    s3["access_key"]["fallback"] = (env_fallback, ["AWS_ACCESS_KEY_ID"])
    s3["secret_key"]["fallback"] = (env_fallback, ["AWS_SECRET_ACCESS_KEY"])
    s3["session_token"]["fallback"] = (env_fallback, ["AWS_SESSION_TOKEN"])
    s3["region"]["fallback"] = (env_fallback, ["AWS_REGION", "AWS_DEFAULT_REGION"])
    s3["endpoint_url"]["fallback"] = (env_fallback, ["BYOC_STORE_S3_ENDPOINT_URL"])
    return {
        "backend": {"type": "str", "default": "filesystem", "choices": ["filesystem", "s3"]},
        "path": {"type": "path", "fallback": (env_fallback, ["BYOC_STORE_PATH"])},
        "s3": {"type": "dict", "options": s3},
        "group": {"type": "str", "required": True},
        "passphrase": {"type": "str", "no_log": True, "fallback": (env_fallback, [ENV_PASSPHRASE])},
    }


def open_store(params: dict[str, t.Any]):
    check_group(params.get("group"))
    if params["backend"] == "s3":
        from ansible_collections.byoc.certificates.plugins.module_utils._store.s3 import S3Store

        if not params.get("s3"):
            raise InputError("s3", "backend=s3 needs the s3 options (at least s3.bucket)")
        return S3Store(params["s3"])
    from ansible_collections.byoc.certificates.plugins.module_utils._store.filesystem import FilesystemStore

    if not params.get("path"):
        raise InputError("path", "backend=filesystem needs path (a directory on the controller), or the"
                                 " BYOC_STORE_PATH environment variable")
    return FilesystemStore(params["path"])


def require_passphrase(passphrase: t.Any, why: str, field: str = "passphrase") -> str:
    if not passphrase:
        raise InputError(field, f"a store passphrase is required {why}; set it from vault or an AWX"
                                f" credential (environment variable {ENV_PASSPHRASE})")
    if len(str(passphrase)) < MIN_PASSPHRASE:
        raise InputError(field, f"the store passphrase must have at least {MIN_PASSPHRASE} characters")
    return str(passphrase)


def utc_iso(dt: datetime.datetime | None = None) -> str:
    dt = dt or datetime.datetime.now(datetime.timezone.utc)
    return dt.astimezone(datetime.timezone.utc).isoformat(timespec="seconds").replace("+00:00", "Z")


def empty_document(group: str) -> dict:
    return {
        "format": FORMAT, "group": group, "revision": 0, "updated": None,
        "current": None, "previous": None, "accounts": {}, "ari": None, "backoff": None, "last_order_url": None,
    }


def key_type(key) -> str:
    if isinstance(key, rsa.RSAPrivateKey):
        return f"rsa-{key.key_size}"
    if isinstance(key, ec.EllipticCurvePrivateKey):
        return f"ecdsa-{key.curve.name}"
    if isinstance(key, ed25519.Ed25519PrivateKey):
        return "ed25519"
    return type(key).__name__


def public_key_fingerprint(obj) -> str:
    return hashlib.sha256(_pem.public_key_der(obj)).hexdigest()


def load_key(pem: str, field: str, passphrases: list[str | None], *, certificate=None,
             certificate_field: str = "certificate"):
    """Load a PEM key through the shared gate, trying no passphrase and then each given one in turn; with
    ``certificate``, the gate also refuses a key that does not match it. InputError names the field, never the key."""
    _pem.require_cryptography()
    last: InputError | None = None
    for candidate in [None] + [p for p in passphrases if p]:
        try:
            _gate.private_key(pem, field, candidate)
        except InputError as exc:
            last = exc
            continue
        return _gate.private_key(pem, field, candidate, certificate=certificate, certificate_field=certificate_field)
    raise last or InputError(field, "no private key")


def encrypt_key(key, passphrase: str) -> str:
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.BestAvailableEncryption(passphrase.encode("utf-8"))).decode("ascii")


def decrypt_stored_key(enc_pem: str, passphrase: str, where: str):
    try:
        return _pem.load_private_key(enc_pem, where, passphrase)
    except InputError:
        raise InputError("passphrase", f"the store passphrase does not decrypt {where}; use the passphrase the"
                                       " group was stored with") from None


def encrypted_items(doc: dict | None) -> list[tuple[str, tuple, str]]:
    """Every encrypted key in a document: (description, path in the document, encrypted PEM)."""
    doc = doc or {}
    items = []
    for slot in ("current", "previous"):
        if (doc.get(slot) or {}).get("privatekey"):
            items.append((f"the {slot} private key", (slot, "privatekey"), doc[slot]["privatekey"]))
    for directory, acct in sorted((doc.get("accounts") or {}).items()):
        if (acct or {}).get("key"):
            items.append((f"the ACME account key for {directory}", ("accounts", directory, "key"), acct["key"]))
    return items


def _opens(pem: str, passphrase: str) -> bool:
    try:
        serialization.load_pem_private_key(pem.encode("ascii"), passphrase.encode("utf-8"))
        return True
    except (ValueError, TypeError):
        return False


def check_passphrase(doc: dict | None, group: str, where: str, passphrase: str | None,
                     new_passphrase: str | None = None) -> tuple[str | None, bool]:
    """Which passphrase encrypts keys written now, and whether the document's keys must be re-encrypted.

    issue 10: a write whose passphrase does not open the existing document is refused (mixing passphrases in
    one document loses the rollback key). With ``new_passphrase`` every key (current, previous, accounts) is
    re-encrypted together; a document already under ``new_passphrase`` needs nothing (the change is idempotent).
    Returns (effective passphrase, rekey)."""
    _pem.require_cryptography()
    items = encrypted_items(doc)
    if new_passphrase is not None:
        new_passphrase = require_passphrase(new_passphrase, "as the new passphrase", field="new_passphrase")
        passphrase = require_passphrase(passphrase, "to change it (the passphrase the group is stored with now)")
        if new_passphrase == passphrase:
            raise InputError("new_passphrase", "is the same as passphrase; give the new passphrase here and the"
                                               " current one in passphrase")
        if not items:
            return new_passphrase, False
        if all(_opens(pem, passphrase) for _d, _p, pem in items):
            return new_passphrase, True
        if all(_opens(pem, new_passphrase) for _d, _p, pem in items):
            return new_passphrase, False  # already changed by an earlier run
        raise InputError("passphrase", f"neither passphrase nor new_passphrase opens every key of group {group} in"
                                       f" {where} ({_which(items, passphrase)}); nothing was written")
    if passphrase is None or not items:
        return passphrase, False
    if not all(_opens(pem, passphrase) for _d, _p, pem in items):
        raise InputError("passphrase", f"does not open the existing document of group {group} in {where}"
                                       f" ({_which(items, passphrase)}). Nothing was written: one document must not"
                                       " mix passphrases, or its rollback key is lost. Use the passphrase the group"
                                       " is stored with; to change it, give that one in passphrase and the new one in"
                                       " new_passphrase, which re-encrypts every key of the group together.")
    return passphrase, False


def _which(items: list, passphrase: str) -> str:
    bad = [d for d, _p, pem in items if not _opens(pem, passphrase)]
    return f"it does not decrypt {', '.join(bad)}" if len(bad) < len(items) else "it decrypts none of its keys"


def reencrypt(doc: dict, old: str, new: str) -> int:
    """Re-encrypt every key of ``doc`` (in place) from ``old`` to ``new``. Returns how many keys."""
    items = encrypted_items(doc)
    for _desc, path, pem in items:
        key = serialization.load_pem_private_key(pem.encode("ascii"), old.encode("utf-8"))
        target = doc
        for part in path[:-1]:
            target = target[part]
        target[path[-1]] = encrypt_key(key, new)
    return len(items)


def build_material(*, certificate: str, chain: str | None, fullchain: str | None, key_pem: str,
                   key_passphrases: list[str | None], passphrase: str, order_uri: str | None = None,
                   key_field: str = "privatekey_content") -> tuple[dict, t.Any]:
    """Validate a certificate, its chain and key (all before anything is written) and return the stored form.

    Every option goes through the shared gate, so the store refuses what every module refuses, in the same words:
    key material in a certificate option (never echoed), garbage, a CA where the leaf belongs, a second leaf, a
    leaf in the chain, and a key that does not open or does not match. A store keeps what was issued, so the
    validity dates are not judged here (the gate's ``check_dates=False``); the deploy modules refuse an expired leaf
    or CA themselves."""
    _gate.server_certificate(certificate, "certificate", check_dates=False)
    if chain and chain.strip():
        _gate.ca_certificates(chain, "chain", check_dates=False)
    if fullchain:
        _gate.server_certificate(fullchain, "fullchain", check_dates=False)
    cert = _pem.load_certificate(certificate, "certificate")
    chain_certs = _pem.load_certificates(chain, "chain", allow_empty=True) if chain else []
    full = _pem.load_certificates(fullchain, "fullchain") if fullchain else [cert] + chain_certs
    if _pem.fingerprint(full[0]) != _pem.fingerprint(cert):
        raise InputError("fullchain", "the first certificate of fullchain is not the certificate")
    if not chain_certs:
        chain_certs = full[1:]
    key = load_key(key_pem, key_field, key_passphrases, certificate=cert)
    material = {
        "certificate": _pem.to_pem(cert),
        "chain": "".join(_pem.to_pem(c) for c in chain_certs),
        "fullchain": "".join(_pem.to_pem(c) for c in [cert] + chain_certs),
        "privatekey": encrypt_key(key, passphrase),
        "fingerprint": _pem.fingerprint(cert),
        "key_fingerprint": public_key_fingerprint(key),
        "key_type": key_type(key),
        "names": sorted(n.split(":", 1)[1] if n.startswith("DNS:") else n for n in _pem.subject_alt_names(cert)),
        "not_before": utc_iso(cert.not_valid_before_utc),
        "not_after": utc_iso(cert.not_valid_after_utc),
        "serial": format(cert.serial_number, "x"),
        "issuer": cert.issuer.rfc4514_string(),
        "stored": utc_iso(),
        "order_uri": order_uri,
        "root": None,
        "root_fingerprint": None,
    }
    return material, key


def check_root(root_pem: str, material: dict) -> tuple[str, str, list[str]]:
    """The root CA that anchors ``material``'s chain, checked through the shared gate: one CA certificate,
    self-signed, and the chain from the leaf must lead to it. Returns (PEM, fingerprint, warnings)."""
    roots, warnings = _gate.ca_certificates(root_pem, "root", allow_expired=True)
    if len(roots) != 1:
        raise InputError("root", f"give exactly one root CA certificate, got {len(roots)}")
    root = roots[0]
    if root.issuer != root.subject:
        raise InputError("root", f"{_gate.describe(root)} is not self-signed, so it is not a root; give the root"
                                 " CA certificate at the top of the chain")
    leaf = _pem.load_certificate(material["certificate"], "certificate")
    intermediates = [c for c in _pem.load_certificates(material["chain"], "chain", allow_empty=True)
                     if _pem.fingerprint(c) != _pem.fingerprint(root)] if material.get("chain") else []
    _gate.chain(leaf, intermediates, [root], "root", require_anchor=True)
    return _pem.to_pem(root), _pem.fingerprint(root), warnings


def make_current(doc: dict, material: dict) -> bool:
    """``material`` becomes the group's current certificate: the old current becomes previous (what a rollback goes
    back to) and the backoff ends. False (and nothing changed) when it already is the current one. The one rule for
    every writer of new material (certificate_store, fleet_issue), so both engines leave the same document."""
    cur = doc.get("current")
    if cur and cur.get("fingerprint") == material["fingerprint"]:
        return False
    doc["previous"] = cur
    doc["current"] = material
    doc["backoff"] = None
    return True


def summarize(material: dict | None, *, include_pem: bool = True) -> dict | None:
    """The public part of a stored material (never the key)."""
    if not material:
        return None
    keys = ["fingerprint", "key_fingerprint", "key_type", "names", "not_before", "not_after", "serial", "issuer",
            "stored", "order_uri", "root_fingerprint"]
    if include_pem:
        keys += ["certificate", "chain", "fullchain", "root"]
    out = {k: material.get(k) for k in keys}
    out["has_privatekey"] = bool(material.get("privatekey"))
    return out
