# Copyright (c) 2026, byoc.certificates contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

# Note that this module util is **PRIVATE** to the collection. It can have breaking changes at any time.

"""The renewal decision and the failure backoff, as pure functions (no I/O, ``now`` always passed in).

Facts (shared/reference/acme-and-dns.md):

- §0 items 1, 2 and §4.2: ARI (RFC 9773) is the primary trigger; the backstop is a fraction of the lifetime
  (renew at 1/3 remaining, 1/2 for certificates shorter than 10 days); never assume 90 days.
- §1.5: community.crypto picks a *random* time inside the ARI window on every run. Here the point inside the
  window is derived from a hash of the group name instead, so that it is stable between runs and still spreads
  a fleet across the window (the brief asks for a deterministic per-group stagger).
- §4.2: back off 1 min, 10 min, 100 min, then once a day, per certificate; every rate-limit error carries a
  ``Retry-After`` and the text "retry after <UTC time>", which must be honoured (§1.5: community.crypto only
  sleeps up to 60 s, so the wait has to be persisted by us).
"""

from __future__ import annotations

import datetime
import email.utils
import hashlib
import re
import typing as t

from ansible_collections.byoc.certificates.plugins.module_utils._errors import InputError

UTC = datetime.timezone.utc

# acme-and-dns.md §4.2 (integration guide): 1 min, 10 min, 100 min, then daily.
DEFAULT_BACKOFF_SCHEDULE = (60, 600, 6000, 86400)
DEFAULT_RENEW_FRACTION = 1.0 / 3.0
DEFAULT_SHORT_LIVED_FRACTION = 0.5
DEFAULT_SHORT_LIVED_DAYS = 10.0
DEFAULT_STAGGER_FRACTION = 0.1

# acme-and-dns.md §4.2: rate-limit problems; the error text carries "retry after <UTC time>".
RATE_LIMITED = "urn:ietf:params:acme:error:rateLimited"
_RETRY_AFTER_TEXT = re.compile(r"retry after (\d{4}-\d{2}-\d{2}[ T]\d{2}:\d{2}:\d{2}(?:\.\d+)?\s*(?:UTC|Z|[+-]\d{2}:?\d{2})?)",
                               re.I)
_RETRY_AFTER_HEADER = re.compile(r"retry-after['\"]?\s*[:=]\s*['\"]?([^'\",}\n]+)", re.I)


def utcnow() -> datetime.datetime:
    return datetime.datetime.now(UTC)


def parse_time(value: t.Any, field: str = "time") -> datetime.datetime | None:
    """ISO 8601 (with or without zone, ``Z`` allowed), epoch seconds, or a datetime; naive means UTC.
    Anything else (garbage, a list, an epoch out of range) raises ValueError naming ``field``."""
    if value is None or value == "":
        return None
    bad = ValueError(f"{field}: {str(value)[:80]!r} is not an ISO 8601 time (for example 2026-11-25T19:00:00Z)")
    if isinstance(value, datetime.datetime):
        dt = value
    elif isinstance(value, bool) or not isinstance(value, (str, int, float)):
        raise bad
    else:
        text = str(value).strip()
        try:
            if re.fullmatch(r"\d+(\.\d+)?", text):
                return datetime.datetime.fromtimestamp(float(text), UTC)
            text = re.sub(r"\s*UTC$", "+00:00", text)
            if text.endswith("Z") or text.endswith("z"):
                text = text[:-1] + "+00:00"
            dt = datetime.datetime.fromisoformat(text)
        except (ValueError, OverflowError, OSError):  # OverflowError/OSError: an epoch beyond year 9999
            raise bad from None
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=UTC)
    return dt.astimezone(UTC)


def time_option(value: t.Any, field: str) -> datetime.datetime | None:
    """parse_time for a module option: InputError naming the field instead of ValueError."""
    try:
        return parse_time(value, field)
    except ValueError as exc:
        raise InputError(field, str(exc).split(": ", 1)[-1]) from None


def iso(dt: datetime.datetime | None) -> str | None:
    return None if dt is None else dt.astimezone(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def stagger_unit(group: str) -> float:
    """A number in [0, 1) that depends only on the group name (SHA-256, first 8 bytes)."""
    digest = hashlib.sha256(("byoc.certificates/stagger/" + group).encode("utf-8")).digest()
    return int.from_bytes(digest[:8], "big") / float(1 << 64)


def backstop_fraction(lifetime: datetime.timedelta, renew_fraction: float, short_lived_fraction: float,
                      short_lived_days: float) -> float:
    """acme-and-dns.md §4.2: 1/3 of the lifetime remaining, 1/2 for certificates shorter than 10 days."""
    if lifetime < datetime.timedelta(days=short_lived_days):
        return short_lived_fraction
    return renew_fraction


def lifetime_renew_at(not_before: datetime.datetime, not_after: datetime.datetime, group: str, *,
                      renew_fraction: float = DEFAULT_RENEW_FRACTION,
                      short_lived_fraction: float = DEFAULT_SHORT_LIVED_FRACTION,
                      short_lived_days: float = DEFAULT_SHORT_LIVED_DAYS,
                      stagger_fraction: float = DEFAULT_STAGGER_FRACTION) -> tuple[datetime.datetime, float, float]:
    """When the lifetime backstop says "renew": ``not_after - fraction*lifetime``, moved *earlier* by the group's
    stagger (``stagger_unit * stagger_fraction * lifetime``). Earlier only, so the stagger never eats into the
    safety margin. Returns (renew_at, fraction used, stagger offset in seconds)."""
    lifetime = not_after - not_before
    fraction = backstop_fraction(lifetime, renew_fraction, short_lived_fraction, short_lived_days)
    offset = stagger_unit(group) * stagger_fraction * lifetime.total_seconds()
    renew_at = not_after - lifetime * fraction - datetime.timedelta(seconds=offset)
    return max(renew_at, not_before), fraction, offset


def ari_renew_at(window_start: datetime.datetime, window_end: datetime.datetime, group: str) -> datetime.datetime:
    """A stable point inside the ARI suggested window, chosen by the group's stagger (§1.5; RFC 9773 §4.2 asks
    for a point in the window; we make it per-group instead of per-run)."""
    if window_end <= window_start:
        return window_start
    return window_start + (window_end - window_start) * stagger_unit(group)


def backoff_delay(failures: int, schedule: t.Sequence[int] = DEFAULT_BACKOFF_SCHEDULE) -> int:
    """Seconds to wait after the ``failures``-th consecutive failure (1-based); the last step repeats."""
    if failures < 1:
        return 0
    if not schedule:
        schedule = DEFAULT_BACKOFF_SCHEDULE
    return int(schedule[min(failures, len(schedule)) - 1])


def parse_retry_after(value: t.Any, now: datetime.datetime) -> datetime.datetime | None:
    """A Retry-After as seconds, an HTTP date or an ISO time -> absolute UTC time; None if unusable."""
    if value is None or value == "":
        return None
    text = str(value).strip()
    if re.fullmatch(r"\d+(\.\d+)?", text):
        return now + datetime.timedelta(seconds=float(text))
    try:
        dt = email.utils.parsedate_to_datetime(text)
        if dt is not None:
            return (dt if dt.tzinfo else dt.replace(tzinfo=UTC)).astimezone(UTC)
    except (TypeError, ValueError, IndexError):
        pass
    try:
        return parse_time(text)
    except ValueError:
        return None


def retry_after_from_error(text: str, now: datetime.datetime) -> datetime.datetime | None:
    """acme-and-dns.md §4.2: rate-limit errors say "retry after <UTC time>"; a Retry-After header may also be
    quoted in a failed result's text. Returns the later of what is found, or None."""
    if not text:
        return None
    found: list[datetime.datetime] = []
    for match in _RETRY_AFTER_TEXT.finditer(text):
        dt = parse_retry_after(match.group(1).strip(), now)
        if dt:
            found.append(dt)
    for match in _RETRY_AFTER_HEADER.finditer(text):
        dt = parse_retry_after(match.group(1).strip(), now)
        if dt:
            found.append(dt)
    return max(found) if found else None


def record_failure(previous: dict | None, now: datetime.datetime, message: str, *,
                   retry_after: t.Any = None, schedule: t.Sequence[int] = DEFAULT_BACKOFF_SCHEDULE) -> dict:
    """The backoff state after one more failure. The next attempt is the later of the schedule's step and any
    Retry-After (given explicitly, or found in the error text)."""
    failures = int((previous or {}).get("failures") or 0) + 1
    next_attempt = now + datetime.timedelta(seconds=backoff_delay(failures, schedule))
    explicit = parse_retry_after(retry_after, now)
    from_text = retry_after_from_error(message or "", now)
    honoured = max([d for d in (explicit, from_text) if d is not None], default=None)
    if honoured and honoured > next_attempt:
        next_attempt = honoured
    return {
        "failures": failures,
        "last_failure": iso(now),
        "next_attempt": iso(next_attempt),
        "retry_after": iso(honoured),
        "rate_limited": RATE_LIMITED in (message or "") or "rateLimited" in (message or ""),
        "last_error": (message or "")[:2000],
    }


def in_backoff(backoff: dict | None, now: datetime.datetime) -> tuple[bool, datetime.datetime | None]:
    if not backoff or not backoff.get("next_attempt"):
        return False, None
    nxt = parse_time(backoff["next_attempt"], "backoff.next_attempt")
    return (nxt is not None and now < nxt), nxt


def normalize_names(names: t.Iterable[str]) -> list[str]:
    return sorted({str(n).strip().lower().rstrip(".") for n in names if str(n).strip()})


def decide(*, group: str, names: list[str], now: datetime.datetime, current: dict | None,
           force: bool = False, backoff: dict | None = None, ignore_backoff: bool = False,
           ari: dict | None = None, use_ari: bool = True, key_type: str | None = None,
           renew_fraction: float = DEFAULT_RENEW_FRACTION,
           short_lived_fraction: float = DEFAULT_SHORT_LIVED_FRACTION,
           short_lived_days: float = DEFAULT_SHORT_LIVED_DAYS,
           stagger_fraction: float = DEFAULT_STAGGER_FRACTION) -> dict:
    """The whole decision for one group. ``current`` holds ``not_before``, ``not_after`` (datetimes), ``names``,
    ``key_matches`` (bool or None) and optionally ``key_type``; None when the store has no material.
    ``ari`` holds ``window_start``/``window_end`` (datetimes), ``cert_id`` and ``explanation_url``."""
    reasons: list[str] = []
    result: dict[str, t.Any] = {
        "group": group, "renew": False, "skip": False, "reasons": reasons, "renew_at": None,
        "trigger": None, "replaces_cert_id": None, "stagger_offset_seconds": None, "renew_fraction": None,
        "lifetime_seconds": None, "remaining_fraction": None, "next_attempt": None,
    }
    wanted = normalize_names(names)

    if current is None:
        reasons.append("no certificate in the store (first issuance)")
    else:
        have = normalize_names(current.get("names") or [])
        if have != wanted:
            added = sorted(set(wanted) - set(have))
            removed = sorted(set(have) - set(wanted))
            reasons.append(f"names changed (added: {', '.join(added) or '-'}; removed: {', '.join(removed) or '-'})")
        if current.get("key_matches") is False:
            reasons.append("the stored private key does not match the stored certificate")
        if current.get("key_missing"):
            reasons.append("the stored material has no private key")
        if key_type and current.get("key_type") and current["key_type"] != key_type:
            reasons.append(f"key type changed ({current['key_type']} -> {key_type})")
        nb, na = current["not_before"], current["not_after"]
        lifetime = na - nb
        result["lifetime_seconds"] = int(lifetime.total_seconds())
        if lifetime.total_seconds() > 0:
            result["remaining_fraction"] = round(max(0.0, (na - now).total_seconds()) / lifetime.total_seconds(), 6)
        if now >= na:
            reasons.append(f"the certificate expired at {iso(na)}")
        window = ari if (use_ari and ari and ari.get("window_start") and ari.get("window_end")) else None
        if window:
            renew_at = ari_renew_at(window["window_start"], window["window_end"], group)
            result.update(trigger="ari", renew_at=iso(renew_at), replaces_cert_id=window.get("cert_id"))
            if now >= renew_at:
                reasons.append(f"ARI: the suggested window {iso(window['window_start'])} .. "
                               f"{iso(window['window_end'])} has reached this group's point {iso(renew_at)}")
        else:
            renew_at, fraction, offset = lifetime_renew_at(
                nb, na, group, renew_fraction=renew_fraction, short_lived_fraction=short_lived_fraction,
                short_lived_days=short_lived_days, stagger_fraction=stagger_fraction)
            result.update(trigger="lifetime", renew_at=iso(renew_at), renew_fraction=fraction,
                          stagger_offset_seconds=int(offset))
            if now >= renew_at:
                reasons.append(f"lifetime: less than {fraction:.3g} of the lifetime is left (plus this group's "
                               f"stagger of {int(offset)} s); renewal point {iso(renew_at)}")
        if ari and ari.get("cert_id") and not result["replaces_cert_id"] and use_ari:
            result["replaces_cert_id"] = ari["cert_id"]
    if force:
        reasons.append("renewal forced")

    if reasons:
        waiting, nxt = in_backoff(backoff, now)
        if waiting and not ignore_backoff:
            result.update(skip=True, next_attempt=iso(nxt))
            result["msg"] = (f"Group {group}: renewal is due ({'; '.join(reasons)}) but the group is in its failure "
                             f"backoff after {backoff.get('failures')} failure(s) until {iso(nxt)}; the ACME server is "
                             f"not contacted. Last error: {str(backoff.get('last_error') or '')[:300]}")
            return result
        result["renew"] = True
        result["msg"] = f"Group {group}: renew ({'; '.join(reasons)})"
    else:
        result["msg"] = f"Group {group}: no renewal needed; next renewal point {result['renew_at']}"
    return result
