# Copyright (c) 2026, byoc.certificates contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

# Note that this module util is **PRIVATE** to the collection. It can have breaking changes at any time.

"""The Edge trust store (certificate authorities) as plain data, and the plan to reach a desired state.

No network and no SDK here: the module reads the CA list as wire JSON, this file decides, the module writes.
Entries are identified by the SHA-256 fingerprints of the certificates in their PEM, never by PEM text or name.
"""

from __future__ import annotations

import re
import typing as t

from ansible_collections.byoc.certificates.plugins.module_utils import _gate, _pem
from ansible_collections.byoc.certificates.plugins.module_utils._errors import InputError

# genesys-cloud-api.md §2.2: the services values are UNCONFIRMED; SIP is the likely one (the UI's
# "Select Service for Use"), and it is what an Edge needs to trust an SBC on a TLS trunk.
DEFAULT_SERVICES = ["SIP"]
_FP_RE = re.compile(r"^[0-9a-f]{64}$")


def normalize_fingerprint(value: str, field: str) -> str:
    fp = re.sub(r"[\s:]", "", str(value)).lower()
    if not _FP_RE.match(fp):
        raise InputError(field, f"{value!r} is not a SHA-256 fingerprint (64 hex digits, colons allowed)")
    return fp


def _cn(cert) -> str:
    try:
        from cryptography.x509.oid import NameOID  # pylint: disable=import-outside-toplevel

        attrs = cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
        if attrs:
            return str(attrs[0].value)
    except Exception:  # pylint: disable=broad-exception-caught
        pass
    return cert.subject.rfc4514_string() or _pem.fingerprint(cert)[:16]


def desired_authorities(pem: str, field: str, name: str | None, services: list[str], *,
                        allow_expired: bool = False, warnings: list[str] | None = None) -> list[dict]:
    """One entry per CA certificate of ``pem`` (a chain becomes several entries), de-duplicated by fingerprint.

    Checked by the shared gate (issue 10, ``_gate.ca_certificates``), so the same bad input gets the same refusal as
    from every other module: InputError naming ``field`` for no PEM, garbage, private key material (never echoed), a
    leaf where a CA belongs, or an expired or not yet valid CA unless ``allow_expired``; the warnings for an allowed
    expired CA are appended to ``warnings``."""
    certs, notes = _gate.ca_certificates(pem, field, allow_expired=allow_expired)
    if warnings is not None:
        warnings.extend(notes)
    out: list[dict] = []
    seen: set[str] = set()
    for cert in certs:
        fp = _pem.fingerprint(cert)
        if fp in seen:
            continue
        seen.add(fp)
        out.append({
            "fingerprint": fp,
            "certificate": _pem.to_pem(cert),
            "name": name if name and len(certs) == 1 else (f"{name} - {_cn(cert)}" if name else _cn(cert)),
            "subject": cert.subject.rfc4514_string(),
            "not_after": cert.not_valid_after_utc.isoformat(),
            "services": list(services),
        })
    return out


def entry_fingerprints(pem: str | None) -> list[str]:
    """Fingerprints of every certificate in an existing entry's PEM (an entry may hold a chain, §2.2)."""
    try:
        return [_pem.fingerprint(c) for c in _pem.load_certificates(pem or "", "certificate")]
    except InputError:
        return []


def summarize(ca: dict) -> dict:
    """A wire DomainCertificateAuthority as the modules return it (public data only)."""
    fps = entry_fingerprints(ca.get("certificate"))
    details = ca.get("certificateDetails") or []
    return {
        "id": ca.get("id"),
        "name": ca.get("name"),
        "type": ca.get("type"),
        "services": list(ca.get("services") or []),
        "version": ca.get("version"),
        "state": ca.get("state"),
        "fingerprints": fps,
        "fingerprint": fps[0] if fps else None,
        "subjects": [d.get("subject") for d in details],
        "expiration_dates": [d.get("expirationDate") for d in details],
        "certificate": ca.get("certificate"),
    }


def diff_view(entries: list[dict]) -> dict:
    """Before/after view of the REMOTE entries for --diff: keyed by fingerprint, no PEM."""
    return {"remote_certificate_authorities": {
        ",".join(e["fingerprints"]) or str(e["id"]): {"name": e["name"], "services": sorted(e["services"])}
        for e in entries if e["type"] == "REMOTE"}}


def plan_present(existing: list[dict], desired: list[dict], name_given: bool) -> list[dict]:
    """Actions to make every desired CA a REMOTE entry with exactly the desired services.

    ``existing`` are ``summarize()``d entries. An entry covers a fingerprint when that certificate is in its PEM.
    """
    actions = []
    for want in desired:
        holder = next((e for e in existing if want["fingerprint"] in e["fingerprints"]), None)
        if holder is None:
            keys = ("fingerprint", "name", "services", "subject", "not_after", "certificate")
            actions.append({"action": "create", **{k: want[k] for k in keys}})
            continue
        base = {"id": holder["id"], "fingerprint": want["fingerprint"], "subject": want["subject"],
                "not_after": want["not_after"]}
        if holder["type"] == "MANAGED":
            actions.append({"action": "none", "name": holder["name"], "services": holder["services"],
                            "note": "this certificate is the org's MANAGED CA, which is trusted already", **base})
            continue
        new_services = sorted(set(want["services"])) != sorted(set(holder["services"]))
        new_name = name_given and want["name"] != holder["name"]
        if new_services or new_name:
            actions.append({"action": "update", "name": want["name"] if name_given else holder["name"],
                            "services": list(want["services"]), "old_name": holder["name"],
                            "old_services": holder["services"], **base})
        else:
            actions.append({"action": "none", "name": holder["name"], "services": holder["services"], **base})
    return actions


def plan_absent(existing: list[dict], fingerprints: list[str], field: str) -> list[dict]:
    """Delete actions for the REMOTE entries holding any of ``fingerprints``. Aiming at the MANAGED CA, or at an
    entry that also holds certificates not asked for, is an InputError (nothing has been changed yet)."""
    wanted = set(fingerprints)
    actions = []
    for entry in existing:
        hit = wanted.intersection(entry["fingerprints"])
        if not hit:
            continue
        if entry["type"] == "MANAGED":
            raise InputError(field, f"{sorted(hit)[0]} is the org's MANAGED certificate authority ({entry['name']}),"
                             " which Genesys Cloud maintains and which cannot be removed; only REMOTE certificate"
                             " authorities can. Nothing was changed.")
        extra = set(entry["fingerprints"]) - wanted
        if extra:
            raise InputError(field, f"the REMOTE entry {entry['name']!r} ({entry['id']}) holds a chain that also"
                             f" contains {', '.join(sorted(extra))}; list those too to remove the whole entry."
                             " Nothing was changed.")
        actions.append({"action": "delete", "id": entry["id"], "name": entry["name"], "services": entry["services"],
                        "fingerprint": entry["fingerprint"], "fingerprints": entry["fingerprints"]})
    return actions


def apply_to(existing: list[dict], actions: list[dict]) -> list[dict]:
    """The entries as they will be after ``actions`` (for check mode and diff)."""
    after = [dict(e) for e in existing]
    for act in actions:
        if act["action"] == "create":
            after.append({"id": act.get("id", "(new)"), "name": act["name"], "type": "REMOTE",
                          "services": act["services"], "fingerprints": [act["fingerprint"]],
                          "fingerprint": act["fingerprint"]})
        elif act["action"] == "update":
            for e in after:
                if e["id"] == act["id"]:
                    e.update(name=act["name"], services=act["services"])
        elif act["action"] == "delete":
            after = [e for e in after if e["id"] != act["id"]]
    return after


def public(action: dict) -> dict:
    """An action as returned to the user (no PEM)."""
    return {k: v for k, v in action.items() if k != "certificate"}


def check_services(services: t.Any) -> list[str]:
    if not services:
        raise InputError("services", "must list at least one service, for example SIP")
    out = []
    for s in services:
        if not isinstance(s, str) or not s.strip():
            raise InputError("services", f"{s!r} is not a service name")
        out.append(s.strip())
    return out
