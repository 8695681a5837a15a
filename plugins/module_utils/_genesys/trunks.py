# Copyright (c) 2026, byoc.certificates contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

# Note that this module util is **PRIVATE** to the collection. It can have breaking changes at any time.

"""Trunk health as plain data: which trunks a task means, and whether each is up and, if not, why.

Input is wire JSON (camelCase) of Trunk, TrunkMetrics and TrunkBase (genesys-cloud-api.md §2.6, §2.7, §2.8); no
network here.

Freshness. A trunk's state can be older than a change: an org may still report "connected" from before an SBC got
its new certificate. ``optionsStatus[].optionStateTime`` and ``connectedStatus.connectedStateTime`` are the times of
the last *change* of a state (SDK model docs), not of the last observation. The documented observation time is
``TrunkMetrics.eventTime`` (§2.7), read in batches with ``GET /trunks/metrics?trunkIds=...`` (§1.4). A trunk counts as
observed after a point in time T when its eventTime is later than T, or when a state change was recorded after T
(the connected state, or the option state of every proxy).
"""

from __future__ import annotations

import datetime
import re
import typing as t

from ansible_collections.byoc.certificates.plugins.module_utils._errors import InputError, NotFound
from ansible_collections.byoc.certificates.plugins.module_utils._genesys import polling

PROXY_LIST = "trunk_transport_serverProxyList"  # §3: "SIP Servers or Proxies" of a trunk base
# §1.3 documents at most 100 ids for the Edge twin of GET /trunks/metrics; §1.4 gives no maximum for trunkIds, so the
# stricter 100 is used. 100 trunk ids (UUIDs) keep the URL under 4 kB.
METRICS_CHUNK = 100
# A point in time more than this far in the future is taken for a mistake (a local time marked as UTC, say).
FUTURE_SLACK = 300
UTC = datetime.timezone.utc


def proxies_of(base: dict) -> list[str]:
    prop = (base.get("properties") or {}).get(PROXY_LIST) or {}
    value = prop.get("value") or {}
    found = value.get("instance", value.get("default")) or []
    return [str(p) for p in found] if isinstance(found, list) else []


def _split(address: str) -> tuple[str, str | None]:
    address = address.strip().lower()
    if address.startswith("["):  # [v6]:port
        host, rest = address[1:].split("]", 1) if "]" in address else (address[1:], "")
        return host, rest[1:] if rest.startswith(":") else None
    if address.count(":") == 1:
        host, port = address.split(":")
        return host, port
    return address, None


def address_matches(selector: str, proxy: str) -> bool:
    """``host`` matches any port of that host; ``host:port`` must match both (a proxy without a port matches
    on its host)."""
    s_host, s_port = _split(selector)
    p_host, p_port = _split(proxy)
    if s_host != p_host:
        return False
    return s_port is None or p_port is None or s_port == p_port


def _error_text(info: t.Any) -> str | None:
    if not isinstance(info, dict):
        return None
    details = info.get("details") or {}
    text = info.get("text") or details.get("message") or info.get("code")
    return str(text) if text else None


def parse_wire_time(value: t.Any) -> datetime.datetime | None:
    """A datetime of the wire JSON (ISO 8601, ``Z`` or an offset) as an aware UTC datetime; None when absent or
    unreadable (an unreadable time proves no observation)."""
    if isinstance(value, datetime.datetime):
        parsed = value
    elif isinstance(value, str) and value.strip():
        try:
            parsed = datetime.datetime.fromisoformat(value.strip().replace("z", "Z"))
        except ValueError:
            return None
    else:
        return None
    if parsed.tzinfo is None:
        return None
    try:
        return parsed.astimezone(UTC)
    except (OverflowError, ValueError):  # e.g. 0001-01-01T00:00:00+05:00 is before the first representable instant
        return None


def iso(value: datetime.datetime | None) -> str | None:
    return value.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z") if value else None


_EPOCH_RE = re.compile(r"^\d{9,11}(\.\d+)?$")


def parse_observed_after(value: t.Any, now: datetime.datetime, field: str = "observed_after") -> datetime.datetime:
    """The point in time of ``observed_after``: the word ``now``, an ISO 8601 timestamp with a time zone
    (``2026-11-30T04:40:33Z``, ``...+01:00``) or seconds since the epoch (``ansible_date_time.epoch``)."""
    text = str(value).strip() if value is not None else ""
    if not text:
        raise InputError(field, "is empty; give a timestamp such as 2026-11-30T04:40:33Z, seconds since the epoch,"
                         " or now")
    if text.lower() == "now":
        return now.astimezone(UTC)
    if _EPOCH_RE.match(text):
        point = datetime.datetime.fromtimestamp(float(text), UTC)
    else:
        try:
            point = datetime.datetime.fromisoformat(text.replace("z", "Z"))
        except ValueError:
            raise InputError(field, f"{text[:64]!r} is not a timestamp; give ISO 8601 with a time zone such as"
                             " 2026-11-30T04:40:33Z, seconds since the epoch, or now") from None
        if point.tzinfo is None:
            raise InputError(field, f"{text[:64]!r} has no time zone, so it is ambiguous; add Z for UTC or an offset"
                             " such as +01:00 (ansible_date_time.iso8601 has one)")
        try:
            point = point.astimezone(UTC)
        except (OverflowError, ValueError):
            raise InputError(field, f"{text[:64]!r} is out of the range of dates that can be compared") from None
    if (point - now).total_seconds() > FUTURE_SLACK:
        raise InputError(field, f"{iso(point)} is more than {FUTURE_SLACK}s in the future (now is {iso(now)}), so no"
                         " observation could ever follow it; check the time zone of the timestamp")
    return point


def observed_at(trunk: dict, event_time: t.Any = None) -> datetime.datetime | None:
    """The latest time at which the whole trunk is known to have been observed: its TrunkMetrics ``eventTime``
    (§2.7), or a recorded change of its connected state, or the oldest option-state change when every proxy has
    one (a change of one proxy says nothing about the others)."""
    times = [parse_wire_time(event_time), parse_wire_time((trunk.get("connectedStatus") or {}).get("connectedStateTime"))]
    options = trunk.get("optionsStatus") or []
    option_times = [parse_wire_time(o.get("optionStateTime")) for o in options]
    if options and all(option_times):
        times.append(min(option_times))  # type: ignore[type-var]
    known = [x for x in times if x is not None]
    return max(known) if known else None


def chunks(ids: list[str], size: int = METRICS_CHUNK) -> list[list[str]]:
    """``ids`` in batches for ``GET /trunks/metrics?trunkIds=``: ceil(n / size) requests, never one per trunk."""
    return [ids[i:i + size] for i in range(0, len(ids), size)] if ids else []


def health(trunk: dict, event_time: t.Any = None, observed_after: datetime.datetime | None = None) -> dict:
    """One trunk's state and, when it is down, every reason the API gives (§2.6 "Trunk down" signal).

    With ``observed_after``, the trunk is only up when it was observed after that point (see the file's docstring);
    ``event_time`` is its TrunkMetrics ``eventTime``."""
    connected = bool((trunk.get("connectedStatus") or {}).get("connected"))
    options_enabled = trunk.get("optionsEnabledStatus") in (None, "ENABLED")
    proxies, reasons = [], []
    if trunk.get("inService") is False:
        reasons.append("the trunk is not in service (trunk_enabled is false on its trunk base)")
    if trunk.get("enabled") is False:
        reasons.append("its Edge is out of service")
    for opt in trunk.get("optionsStatus") or []:
        error = _error_text(opt.get("errorInfo"))
        proxies.append({"address": opt.get("proxyAddress"), "options_ok": opt.get("optionState"),
                        "since": opt.get("optionStateTime"), "error": error})
        if options_enabled and opt.get("optionState") is False:
            reasons.append(f"{opt.get('proxyAddress')}: {error or 'SIP OPTIONS not answered'}")
    ip_error = _error_text((trunk.get("ipStatus") or {}).get("errorInfo"))
    if ip_error:
        reasons.append(f"network: {ip_error}")
    if not connected and not reasons:
        reasons.append("not connected (no error reported yet)")
    seen = observed_at(trunk, event_time) if observed_after is not None else None
    fresh = observed_after is None or (seen is not None and seen > observed_after)
    if not fresh:
        reasons.append(f"not observed after {iso(observed_after)} yet (last observation"
                       f" {iso(seen) if seen else 'unknown'}); its state may predate the change")
    up = connected and not reasons
    edge = trunk.get("edge") or {}
    base = trunk.get("trunkBase") or {}
    return {
        "id": trunk.get("id"), "name": trunk.get("name"),
        "edge": {"id": edge.get("id"), "name": edge.get("name")},
        "trunk_base": {"id": base.get("id"), "name": base.get("name")},
        "connected": connected, "up": up,
        "connected_since": (trunk.get("connectedStatus") or {}).get("connectedStateTime"),
        "in_service": trunk.get("inService"), "enabled": trunk.get("enabled"),
        "proxies": proxies, "reasons": reasons,
        "observed_at": iso(seen), "fresh": fresh,
    }


def select(trunks: list[dict], bases: dict[str, dict], ids: list[str], names: list[str],
           addresses: list[str]) -> list[dict]:
    """The trunks named by id, by name (trunk or trunk base name, case-insensitive) or by an SBC address in
    their trunk base's server list; all of ``trunks`` when no selector is given. Raises NotFound for a selector
    that matches nothing."""
    if not (ids or names or addresses):
        return list(trunks)
    chosen: dict[str, dict] = {}
    missing: list[str] = []
    for tid in ids:
        hits = [tr for tr in trunks if tr.get("id") == tid]
        missing += [f"trunk_ids: {tid}"] if not hits else []
        chosen.update({tr["id"]: tr for tr in hits})
    for name in names:
        key = name.strip().lower()
        hits = [tr for tr in trunks
                if key in (str(tr.get("name", "")).lower(), str((tr.get("trunkBase") or {}).get("name", "")).lower())]
        missing += [f"trunk_names: {name}"] if not hits else []
        chosen.update({tr["id"]: tr for tr in hits})
    for addr in addresses:
        hits = [tr for tr in trunks
                if any(address_matches(addr, p) for p in proxies_of(bases.get((tr.get("trunkBase") or {}).get("id"), {})))]
        missing += [f"sbc_addresses: {addr}"] if not hits else []
        chosen.update({tr["id"]: tr for tr in hits})
    if missing:
        raise NotFound("No Genesys Cloud trunk matches " + "; ".join(missing) + ". Check the ids, the trunk (base)"
                       " names and the trunk bases' 'SIP Servers or Proxies' lists.", unmatched=missing)
    return [tr for tr in trunks if tr["id"] in chosen]


PROGRESS_RE = polling.PROGRESS_RE


def progress_line(poll: int, elapsed: float, states: list[dict]) -> str:
    """``poll N at Ss: U/T trunks up; down: ...`` (the format ``PROGRESS_RE`` reads back)."""
    down = [s for s in states if not s["up"]]
    line = f"poll {poll} at {elapsed:.0f}s: {len(states) - len(down)}/{len(states)} trunks up"
    if down:
        shown = ", ".join(f"{s['name']} on {s['edge']['name']}" for s in down[:5])
        line += f"; down: {shown}" + (f" and {len(down) - 5} more" if len(down) > 5 else "")
    stale = sum(1 for s in states if s.get("fresh") is False)
    if stale:
        line += f"; {stale} not observed since the change yet"
    return line


continue_progress = polling.continue_progress  # shared with genesys_edge_info (module_utils/_genesys/polling.py)


def down_summary(states: list[dict]) -> list[dict]:
    return [{"id": s["id"], "name": s["name"], "edge": s["edge"]["name"], "reasons": s["reasons"]}
            for s in states if not s["up"]]
