# Copyright (c) 2026, byoc.certificates contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

# Note that this module util is **PRIVATE** to the collection. It can have breaking changes at any time.

"""The one gate for certificate material that reaches a device or an API.

Every module that takes certificates or keys checks them here, before any request, so that the same bad input gets
the same refusal (the same field, the same reason, the same words) from every module. Each PEM block of an option is
classified as a leaf certificate, a CA certificate, private key material or garbage, and then checked for the role
that the option gives it:

- a leaf where a leaf belongs: exactly one, valid now, not a CA;
- CA certificates where CAs belong (intermediates, trusted roots): no leaf, no key, not expired unless allowed;
- no private key material in a certificate option, ever; and it is never echoed;
- a chain that leads from the leaf, certificate by certificate, to the anchors that were given;
- a private key that opens with the passphrase given (or needs none) and matches the leaf.

Messages name the option and the certificate (position, subject, dates) and never contain PEM or key text.
"""

from __future__ import annotations

import dataclasses
import datetime
import re
import typing as t

from ansible_collections.byoc.certificates.plugins.module_utils import _pem
from ansible_collections.byoc.certificates.plugins.module_utils._errors import InputError

try:
    from cryptography import x509
    from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
    from cryptography.hazmat.primitives import serialization
except ImportError:  # pragma: no cover - _pem.require_cryptography() reports it
    pass

LEAF = "leaf"
CA = "ca"
KEY = "key"
GARBAGE = "garbage"

_BLOCK_RE = re.compile(r"-----BEGIN ([A-Z0-9 ]{1,64})-----(.*?)-----END \1-----", re.S)
# Any trace of private key material, even a block cut short or with mismatched END lines.
_KEY_TRACE_RE = re.compile(r"PRIVATE KEY-----|BEGIN [A-Z0-9 ]*PRIVATE KEY|ssh-(?:rsa|ed25519) AAAA|PuTTY-User-Key-File")


@dataclasses.dataclass
class Block:
    """One PEM block of an option: ``kind`` is leaf, ca, key or garbage; ``cert`` is set for leaf and ca."""

    kind: str
    index: int
    total: int
    cert: t.Any = None
    label: str = ""
    problem: str = ""
    subject: str = ""


@dataclasses.dataclass
class Material:
    """What ``server_material`` checked: no PEM text, only parsed objects, plus the warnings to show the user."""

    leaf: t.Any
    key: t.Any = None
    intermediates: list = dataclasses.field(default_factory=list)
    anchors: list = dataclasses.field(default_factory=list)
    trusted_roots: list = dataclasses.field(default_factory=list)
    warnings: list = dataclasses.field(default_factory=list)

    @property
    def chain(self) -> list:
        """Leaf first, then the intermediates in issuing order (no self-signed root)."""
        return [self.leaf] + list(self.intermediates)


def _now(now: datetime.datetime | None) -> datetime.datetime:
    if now is None:
        return datetime.datetime.now(datetime.timezone.utc)
    if now.tzinfo is None:
        return now.replace(tzinfo=datetime.timezone.utc)
    return now


def _is_ca(cert) -> bool:
    """A CA certificate: basicConstraints CA=true, or (an old v1 root) no basicConstraints and self-issued."""
    try:
        return bool(cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca)
    except x509.ExtensionNotFound:
        return cert.issuer == cert.subject and cert.version == x509.Version.v1


def describe(cert) -> str:
    """'CN=example.test, valid 2026-01-01 to 2026-04-01' — how messages name a certificate."""
    try:
        subject = cert.subject.rfc4514_string() or "(empty subject)"
    except ValueError:
        subject = "(unreadable subject)"
    return (f"{subject}, valid {cert.not_valid_before_utc.date().isoformat()} to "
            f"{cert.not_valid_after_utc.date().isoformat()}")


def _position(block: Block) -> str:
    return f"certificate {block.index} of {block.total}" if block.total > 1 else "the certificate"


def classify(pem: t.Any, field: str) -> list[Block]:
    """Every PEM block of ``pem`` in order, classified. Raises InputError only for what is not PEM at all."""
    _pem.require_cryptography()
    if not isinstance(pem, str):
        raise InputError(field, f"expected PEM text, got {type(pem).__name__}")
    matches = list(_BLOCK_RE.finditer(pem))
    blocks: list[Block] = []
    total = len(matches)
    for i, m in enumerate(matches, 1):
        label = m.group(1)
        if "PRIVATE KEY" in label:
            blocks.append(Block(KEY, i, total, label=label))
            continue
        if label not in ("CERTIFICATE", "X509 CERTIFICATE", "TRUSTED CERTIFICATE"):
            blocks.append(Block(GARBAGE, i, total, label=label, problem=f"a '{label}' block is not a certificate"))
            continue
        try:
            cert = x509.load_pem_x509_certificate(
                f"-----BEGIN CERTIFICATE-----{m.group(2)}-----END CERTIFICATE-----".encode("ascii"))
            subject = cert.subject.rfc4514_string()  # parsed now: a broken name is garbage, not a later traceback
        except (ValueError, UnicodeEncodeError) as exc:
            reason = str(exc).split("\n", 1)[0][:160]
            blocks.append(Block(GARBAGE, i, total, label=label, problem=f"is not a valid X.509 certificate ({reason})"))
            continue
        blocks.append(Block(CA if _is_ca(cert) else LEAF, i, total, cert=cert, label=label, subject=subject))
    return blocks


def _refuse_key_material(pem: str, field: str, blocks: list[Block]) -> None:
    if any(b.kind == KEY for b in blocks) or _KEY_TRACE_RE.search(pem):
        raise InputError(field, "contains private key material, which never belongs in a certificate option; it was not"
                                " used and is not shown. Put the key in the private key option (and rotate it if it was"
                                " exposed)")


def _certificates(pem: t.Any, field: str, *, allow_empty: bool = False) -> list[Block]:
    blocks = classify(pem, field)
    _refuse_key_material(pem, field, blocks)
    for b in blocks:
        if b.kind == GARBAGE:
            raise InputError(field, f"{_position(b)} {b.problem}")
    if not blocks:
        if allow_empty and not pem.strip():
            return []
        raise InputError(field, "no PEM certificate found (expected one or more '-----BEGIN CERTIFICATE-----' blocks)")
    return blocks


def _validity_problem(cert, now: datetime.datetime) -> str | None:
    if cert.not_valid_after_utc < now:
        return f"expired on {cert.not_valid_after_utc.isoformat()}"
    if cert.not_valid_before_utc > now:
        return f"is not valid before {cert.not_valid_before_utc.isoformat()}"
    return None


def _check_ca_blocks(blocks: list[Block], field: str, *, allow_expired: bool, now: datetime.datetime,
                     what: str, check_dates: bool = True) -> tuple[list, list[str]]:
    certs, warnings = [], []
    for b in blocks:
        if b.kind == LEAF:
            raise InputError(field, f"{_position(b)} ({describe(b.cert)}) is a leaf (end-entity) certificate, but {what}"
                                    " must be CA certificates: a leaf here would become a trust anchor")
        problem = _validity_problem(b.cert, now) if check_dates else None
        if problem:
            if not allow_expired:
                raise InputError(field, f"{_position(b)} ({describe(b.cert)}) is a CA certificate that {problem}."
                                        " Remove it, or set allow_expired_ca=true to install it anyway")
            warnings.append(f"{field}: {_position(b)} ({describe(b.cert)}) is a CA certificate that {problem};"
                            " installed because allow_expired_ca=true")
        certs.append(b.cert)
    return certs, warnings


def server_certificate(pem: t.Any, field: str, *, now: datetime.datetime | None = None,
                       allow_expired_ca: bool = False, check_dates: bool = True) -> tuple[t.Any, list]:
    """The leaf of a certificate option (which may carry intermediates after it) and those extra CA certificates.

    ``check_dates=False`` judges what the material is (leaf first, CAs after, no second leaf) but not whether it is
    valid today: for a store, which keeps what was issued, expired or not."""
    leaf, extra, _warnings = _server_certificate(pem, field, now=now, allow_expired_ca=allow_expired_ca,
                                                 check_dates=check_dates)
    return leaf, extra


def _server_certificate(pem: t.Any, field: str, *, now: datetime.datetime | None,
                        allow_expired_ca: bool, check_dates: bool = True) -> tuple[t.Any, list, list[str]]:
    now = _now(now)
    blocks = _certificates(pem, field)
    first = blocks[0]
    if first.kind == CA:
        raise InputError(field, f"{_position(first)} ({describe(first.cert)}) is a CA certificate, but a server (leaf)"
                                " certificate belongs here. Give the certificate issued for the device's names first,"
                                " and CA certificates in the chain option")
    problem = _validity_problem(first.cert, now) if check_dates else None
    if problem:
        raise InputError(field, f"{_position(first)} ({describe(first.cert)}) {problem}; a device serving it would"
                                " drop every TLS connection. Issue a new certificate")
    for b in blocks[1:]:
        if b.kind == LEAF:
            raise InputError(field, f"{_position(b)} ({describe(b.cert)}) is a second leaf (end-entity) certificate;"
                                    " only one leaf belongs here, followed by its CA certificates")
    extra, warnings = _check_ca_blocks(blocks[1:], field, allow_expired=allow_expired_ca, now=now,
                                       what="the certificates after the leaf", check_dates=check_dates)
    return first.cert, extra, warnings


def ca_certificates(pem: t.Any, field: str, *, allow_expired: bool = False, allow_empty: bool = False,
                    now: datetime.datetime | None = None, check_dates: bool = True) -> tuple[list, list[str]]:
    """CA certificates of a trust option. Returns (certificates, warnings for expired CAs allowed by the user).
    ``check_dates=False``: see ``server_certificate``."""
    if pem is None and allow_empty:
        return [], []
    blocks = _certificates(pem, field, allow_empty=allow_empty)
    return _check_ca_blocks(blocks, field, allow_expired=allow_expired, now=_now(now),
                            what=f"the certificates in {field}", check_dates=check_dates)


def _issued_by(cert, issuer) -> bool:
    if cert.issuer != issuer.subject:
        return False
    try:
        cert.verify_directly_issued_by(issuer)
        return True
    except (ValueError, TypeError, InvalidSignature, UnsupportedAlgorithm):
        return False


def chain(leaf, intermediates: list, anchors: list | None, field: str, *, require_anchor: bool = False) -> list:
    """Order leaf -> intermediates and prove every link. Returns the ordered chain (leaf first, anchors excluded).

    Refuses an intermediate that is not on the path from the leaf, and, when ``anchors`` are given and
    ``require_anchor``, a path that does not end at one of them.
    """
    pool = list(intermediates)
    anchors = list(anchors or [])
    ordered = [leaf]
    current = leaf
    reached_anchor = False
    while True:
        nxt = next((c for c in pool if c not in ordered and _issued_by(current, c)), None)
        if nxt is None:
            reached_anchor = any(_issued_by(current, a) for a in anchors) or (
                current is not leaf and current.issuer == current.subject and _issued_by(current, current))
            break
        ordered.append(nxt)
        if nxt.issuer == nxt.subject:
            reached_anchor = _issued_by(nxt, nxt)
            break
        current = nxt
    unused = [c for c in pool if c not in ordered]
    if unused:
        raise InputError(field, f"the CA certificate {describe(unused[0])} is not part of the chain from the leaf"
                                f" ({describe(leaf)}): it issued neither the leaf nor another certificate of the chain."
                                " Remove it, or give the certificates that connect it")
    if require_anchor and anchors and not reached_anchor:
        names = "; ".join(a.subject.rfc4514_string() for a in anchors[:3])
        raise InputError(field, f"the chain from the leaf ({describe(leaf)}) does not lead to any of the trust anchors"
                                f" given ({names}); its last certificate was issued by"
                                f" {ordered[-1].issuer.rfc4514_string()}")
    # A self-signed root at the end is an anchor, not an intermediate.
    if len(ordered) > 1 and ordered[-1].issuer == ordered[-1].subject:
        ordered = ordered[:-1]
    return ordered


_ENCRYPTED_RE = re.compile(r"-----BEGIN ENCRYPTED PRIVATE KEY-----|Proc-Type: 4,ENCRYPTED")


def private_key(pem: t.Any, field: str, passphrase: str | None = None, *, certificate=None,
                certificate_field: str | None = None):
    """Load a private key; say precisely why it cannot be used, never echoing it."""
    _pem.require_cryptography()
    if not isinstance(pem, str):
        raise InputError(field, f"expected a PEM private key, got {type(pem).__name__}")
    keys = [m for m in _BLOCK_RE.finditer(pem) if "PRIVATE KEY" in m.group(1)]
    if not keys:
        raise InputError(field, "no PEM private key found (expected one '-----BEGIN ... PRIVATE KEY-----' block)")
    if len(keys) > 1:
        raise InputError(field, f"holds {len(keys)} private keys; give exactly one")
    block = keys[0].group(0)
    if keys[0].group(1) == "OPENSSH PRIVATE KEY":
        raise InputError(field, "is an OpenSSH private key; give a PKCS#8 or traditional PEM key"
                                " ('-----BEGIN PRIVATE KEY-----')")
    encrypted = bool(_ENCRYPTED_RE.search(block))
    if encrypted and not passphrase:
        raise InputError(field, "the private key is encrypted and no passphrase was given; set the passphrase option")
    if passphrase and not encrypted:
        raise InputError(field, "a passphrase was given but the private key is not encrypted; remove the passphrase"
                                " option (or give the encrypted key)")
    try:
        key = serialization.load_pem_private_key(block.encode("ascii"),
                                                 passphrase.encode("utf-8") if passphrase else None)
    except (ValueError, TypeError, UnicodeEncodeError, UnsupportedAlgorithm):
        if encrypted:
            raise InputError(field, "the passphrase does not open the private key (wrong passphrase)") from None
        raise InputError(field, "the private key could not be read (corrupt PEM or unsupported key type);"
                                " the key is not shown") from None
    if certificate is not None and not _pem.key_matches_certificate(key, certificate):
        raise InputError(field, f"the private key does not match the certificate in {certificate_field or 'certificate'}"
                                f" ({describe(certificate)}): its public key differs. Give the key the certificate"
                                " was issued for")
    return key


def _dedupe(certs: list) -> list:
    seen, out = set(), []
    for c in certs:
        fp = _pem.fingerprint(c)
        if fp not in seen:
            seen.add(fp)
            out.append(c)
    return out


def server_material(*, certificate: t.Any, certificate_field: str = "certificate", private_key: t.Any = None,
                    private_key_field: str = "private_key", passphrase: str | None = None, chain: t.Any = None,
                    chain_field: str = "chain", trusted_roots: t.Any = None, trusted_roots_field: str = "trusted_roots",
                    allow_expired_ca: bool = False, require_anchor: bool = False,
                    now: datetime.datetime | None = None) -> Material:
    """Check everything a server certificate install needs, in one call, before any request.

    ``certificate`` (leaf, optionally followed by intermediates), ``chain`` (intermediates, optionally the root) and
    ``trusted_roots`` (CAs the device must trust, for example to verify clients) are checked for their roles; the
    leaf's path through the intermediates is proved, and must reach an anchor (a self-signed root in ``chain`` or a
    certificate of ``trusted_roots``) when ``require_anchor``. The key must open and match the leaf.
    """
    # Local names shadow the module-level functions on purpose (keyword names are the public contract).
    leaf, extra, warnings = _server_certificate(certificate, certificate_field, now=now,
                                                allow_expired_ca=allow_expired_ca)
    chain_certs: list = []
    if chain is not None and (not isinstance(chain, str) or chain.strip()):
        chain_certs, w = ca_certificates(chain, chain_field, allow_expired=allow_expired_ca, now=now)
        warnings += w
    roots: list = []
    if trusted_roots is not None and (not isinstance(trusted_roots, str) or trusted_roots.strip()):
        roots, w = ca_certificates(trusted_roots, trusted_roots_field, allow_expired=allow_expired_ca, now=now)
        warnings += w
    pool = _dedupe(extra + chain_certs)
    self_signed = [c for c in pool if c.issuer == c.subject]
    ordered = globals()["chain"](leaf, pool, self_signed + roots, chain_field if chain_certs else certificate_field,
                                 require_anchor=require_anchor)
    key = None
    if private_key is not None:
        key = globals()["private_key"](private_key, private_key_field, passphrase, certificate=leaf,
                                       certificate_field=certificate_field)
    return Material(leaf=leaf, key=key, intermediates=ordered[1:], anchors=_dedupe(self_signed),
                    trusted_roots=roots, warnings=warnings)
