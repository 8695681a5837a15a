# Copyright (c) 2026, byoc.certificates contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

# Note that this module util is **PRIVATE** to the collection. It can have breaking changes at any time.

"""The Edge trust store (certificate authorities) as plain data, and the plan to reach a desired state.

No network and no SDK here: the module reads the CA list as wire JSON, this file decides, the module writes.
Entries are identified by the SHA-256 fingerprints of the certificates in their PEM, never by PEM text or name.
"""

from __future__ import annotations

import datetime
import hashlib
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


def entry_certificates(pem: str | None) -> list[dict]:
    """Subject, issuer, expiry and fingerprint of every certificate in an entry's PEM, parsed here (the same RFC 4514
    strings as ``tls_endpoint_info`` gives for a leaf's issuer, so a report can walk a leaf's chain by name)."""
    try:
        certs = _pem.load_certificates(pem or "", "certificate")
    except InputError:
        return []
    return [{"fingerprint": _pem.fingerprint(c), "subject": c.subject.rfc4514_string(),
             "issuer": c.issuer.rfc4514_string(), "not_after": c.not_valid_after_utc.isoformat()} for c in certs]


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
        "certificates": entry_certificates(ca.get("certificate")),
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


# -- what byoc.certificates added, and pruning it (issue 11 §5) -------------------------------------------------------
# The ledger: one store document per org connection (api_url + OAuth client; an OAuth client belongs to exactly one
# org), under the reserved group name ``genesys-trust-<16 hex>``, key ``genesys_trust``::
#
#     {"org": <api_url>, "authorities": {<fingerprint>: {"id", "name", "subject", "not_after", "added", "groups",
#                                                        "superseded": <first run that found it not needed> | null}}}
#
# Only CAs this collection created are recorded, so only they can ever be pruned: a CA the org had already (added by
# hand, or by another tool) is never recorded and never removed.
LEDGER_KEY = "genesys_trust"
DEFAULT_GRACE_DAYS = 30


def ledger_group(api_url: str, client_id: str) -> str:
    """The store group name of an org's ledger (the client id is hashed, never written)."""
    digest = hashlib.sha256(f"{api_url.rstrip('/')}\n{client_id}".encode("utf-8")).hexdigest()[:16]
    return f"genesys-trust-{digest}"


def _iso(dt: datetime.datetime) -> str:
    return dt.astimezone(datetime.timezone.utc).isoformat(timespec="seconds").replace("+00:00", "Z")


def _parse(text: t.Any) -> datetime.datetime | None:
    try:
        return datetime.datetime.fromisoformat(str(text).replace("Z", "+00:00"))
    except (TypeError, ValueError):
        return None


def record_added(ledger: dict, actions: list[dict], group: str | list[str], now: datetime.datetime) -> bool:
    """Record in ``ledger`` (in place) the CAs that ``actions`` created for ``group`` (one group, or every group that
    shares this chain); a CA recorded before that a group needs again gets the group added and is no longer
    superseded. A CA that existed without a record (added by someone else) stays unrecorded. Returns whether the
    ledger changed."""
    wanted = sorted({group} if isinstance(group, str) else set(group))
    entries = ledger.setdefault("authorities", {})
    changed = False
    for act in actions:
        fp = act.get("fingerprint")
        if not fp:
            continue
        if act["action"] == "create":
            if not act.get("id"):
                continue  # not created (a failed request): nothing to record
            entries[fp] = {"id": act.get("id"), "name": act.get("name"), "subject": act.get("subject"),
                           "not_after": act.get("not_after"), "added": _iso(now), "groups": wanted,
                           "superseded": None}
            changed = True
        elif fp in entries:
            e = entries[fp]
            if not set(wanted) <= set(e.get("groups", [])):
                e["groups"] = sorted(set(e.get("groups", [])) | set(wanted))
                changed = True
            if e.get("superseded"):
                e["superseded"] = None
                changed = True
    return changed


def prune_due(ledger: dict, keep: set[str], groups: list[str], now: datetime.datetime, grace_days: int) -> bool:
    """Whether any recorded CA could be deleted now (from the store alone): one no listed group needs, recorded only
    for listed groups, superseded at least ``grace_days`` ago (or now, with a grace of 0). When none is, the org need
    not be read at all, so a converged run pays no Genesys request for the prune step (issue 11: at most 3 per org)."""
    known = set(groups)
    for fp, rec in (ledger.get("authorities") or {}).items():
        if fp in keep or set(rec.get("groups", [])) - known:
            continue
        since = _parse(rec.get("superseded")) or now
        if now >= since + datetime.timedelta(days=grace_days):
            return True
    return False


def plan_prune(existing: list[dict] | None, ledger: dict, keep: set[str], groups: list[str], now: datetime.datetime,
               grace_days: int) -> tuple[list[dict], list[dict]]:
    """Which REMOTE CAs to delete now (pure). Returns (delete actions, a verdict per recorded CA).

    A CA is deleted only if all of these hold:
    - byoc.certificates created it (it is in the ledger); a CA the org had already is never touched;
    - it is still REMOTE in the org (never the MANAGED CA), and its entry holds nothing but recorded, unneeded CAs;
    - no group needs it: it is in no chain of a group's current or previous material (``keep``, which is what a
      rollback goes back to);
    - every group that ever recorded it is among ``groups`` (a group this run does not know of may still need it);
    - it has been superseded (found not needed) for at least ``grace_days``, counted from the first run that found it
      so, not from when it was added.

    ``ledger`` is updated in place: ``superseded`` is set the first time a CA is found not needed, cleared when it is
    needed again, and entries whose CA is gone from the org are dropped. ``existing`` None means the org was not read
    (``prune_due`` said nothing can go): each recorded CA is taken as its own REMOTE entry, and nothing is deleted.
    """
    entries = ledger.setdefault("authorities", {})
    if existing is None:
        existing = [{"id": rec.get("id"), "name": rec.get("name"), "type": "REMOTE", "services": [],
                     "fingerprint": fp, "fingerprints": [fp]} for fp, rec in entries.items()]
        assumed = True
    else:
        assumed = False
    by_fp = {fp: e for e in existing for fp in e["fingerprints"]}
    known = set(groups)
    verdicts: list[dict] = []
    deletes: dict[str, dict] = {}
    for fp in sorted(entries):
        rec = entries[fp]
        holder = by_fp.get(fp)
        base = {"fingerprint": fp, "name": rec.get("name"), "subject": rec.get("subject"), "groups": rec.get("groups", [])}
        if holder is None:
            verdicts.append({**base, "verdict": "gone", "why": "no longer in the org (removed by someone else)"})
            del entries[fp]
            continue
        base["id"] = holder["id"]
        if holder["type"] != "REMOTE":
            verdicts.append({**base, "verdict": "kept", "why": f"the entry is {holder['type']}, not REMOTE"})
            continue
        if fp in keep:
            rec["superseded"] = None
            verdicts.append({**base, "verdict": "in use", "why": "in the chain of a group's current or previous"
                                                                 " certificate"})
            continue
        if not rec.get("superseded"):
            rec["superseded"] = _iso(now)
        unknown = sorted(set(rec.get("groups", [])) - known)
        if unknown:
            verdicts.append({**base, "verdict": "kept", "why": f"added for group(s) {', '.join(unknown)}, which this run"
                                                               " does not list or which have no certificate in the"
                                                               " store; they may still need it"})
            continue
        others = [f for f in holder["fingerprints"] if f != fp and (f in keep or f not in entries)]
        if others:
            verdicts.append({**base, "verdict": "kept", "why": "its entry also holds certificates that are needed or"
                                                               " were not added by byoc.certificates"})
            continue
        since = _parse(rec["superseded"]) or now
        due = since + datetime.timedelta(days=grace_days)
        if now < due:
            verdicts.append({**base, "verdict": "waiting", "superseded": rec["superseded"], "prune_after": _iso(due),
                             "why": f"superseded since {rec['superseded']}; the grace period of {grace_days} days"
                                    f" ends {_iso(due)}"})
            continue
        if assumed:  # pragma: no cover - prune_due() said no CA is due, so the org was not read
            verdicts.append({**base, "verdict": "waiting", "superseded": rec["superseded"], "prune_after": _iso(due),
                             "why": "due, but the org was not read in this run"})
            continue
        verdicts.append({**base, "verdict": "pruned", "superseded": rec["superseded"],
                         "why": f"superseded since {rec['superseded']}, more than {grace_days} days"})
        deletes[holder["id"]] = {"action": "delete", "id": holder["id"], "name": holder["name"],
                                 "services": holder["services"], "fingerprint": holder["fingerprint"],
                                 "fingerprints": holder["fingerprints"]}
    return list(deletes.values()), verdicts


def forget(ledger: dict, actions: list[dict]) -> None:
    """Drop the deleted CAs from the ledger (after the deletes succeeded)."""
    entries = ledger.setdefault("authorities", {})
    for act in actions:
        for fp in act.get("fingerprints") or [act.get("fingerprint")]:
            entries.pop(fp, None)
