# Copyright (c) 2026, byoc.certificates contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

# Note that this module util is **PRIVATE** to the collection. It can have breaking changes at any time.

"""The fleet report of a rotation run: a console table, ``report.json``, a Prometheus textfile, a heartbeat ping.

Pure parts (``check_groups``, ``flags_for``, ``table``, ``prometheus``, ``report_json``) take the run's groups and
return text or data; ``write_atomic`` and ``ping`` are the only I/O. Shared by the ``fleet_report`` action plugin
(the normal path, used by the role ``byoc.certificates.fleet_report``) and the module of the same name.

The report also names what a user would otherwise find at 2 AM (issue 11 §5), from the data it is given:

- a leaf without the TLS clientAuth EKU on a device whose configuration presents it as a client
  (``members[].client_auth_required`` with ``members[].extended_key_usage``; Let's Encrypt dropped that EKU from
  its classic profile on 2026-02-11, field-2026.md);
- a Genesys CA that expires before the leaf (``genesys_cas[].not_after`` against the leaf's expiry, for the CAs the
  leaf chains to when the leaf's ``issuer`` and the CAs' ``subject``/``issuer`` are given; the group's ``warnings``
  pass through as well);
- a group whose next renewal falls outside every maintenance window (``maintenance_windows``: local times in the
  site's IANA time zone).
"""

from __future__ import annotations

import datetime
import json
import os
import re
import tempfile
import typing as t

from ansible_collections.byoc.certificates.plugins.module_utils._errors import InputError

try:
    import zoneinfo
except ImportError:  # pragma: no cover - Python < 3.9
    zoneinfo = None  # type: ignore[assignment]

STATUSES = ("unchanged", "renewed", "rolled_back", "failed", "skipped", "deferred")
SUCCESS = ("unchanged", "renewed")  # a group whose run succeeded: its endpoints get a new "last success" time
FAILURE = ("failed", "rolled_back")
PROM_FILE = "byoc_certificates.prom"
JSON_FILE = "report.json"
SCHEMA_VERSION = 1
DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")

ARGUMENT_SPEC: dict[str, t.Any] = {
    "groups": {"type": "list", "elements": "dict", "required": True},
    "dir": {"type": "path", "required": True},
    "heartbeat_url": {"type": "str", "no_log": True},
    "heartbeat_timeout": {"type": "float", "default": 10.0},
    "failed": {"type": "bool"},
    "run_id": {"type": "str"},
    "print_table": {"type": "bool", "default": True},
    "read_only": {"type": "bool", "default": False},
}

# Prometheus text exposition format 0.0.4: metric names, label names, and the escapes of label values.
_METRIC_RE = re.compile(r"^[a-zA-Z_:][a-zA-Z0-9_:]*$")
_LAST_SUCCESS = "byoc_certificates_endpoint_last_success_timestamp_seconds"
_SAMPLE_RE = re.compile(r'^(?P<name>[a-zA-Z_:][a-zA-Z0-9_:]*)\{(?P<labels>(?:[a-zA-Z_][a-zA-Z0-9_]*="(?:[^"\\\n]|\\.)*",?)*)\}'
                        r" (?P<value>\S+)$")
_LABEL_RE = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\\n]|\\.)*)"')


VENDORS = ("audiocodes", "ribbon_core", "ribbon_edge")


def presents_client_certificate(vendor: str | None, configured: t.Any) -> bool:
    """Whether a device's configuration presents its SIP-TLS server certificate as the TLS client certificate on its
    outbound legs (field-2026.md, "The TLS client-authentication EKU is gone": an SBC is the TLS client on its
    outbound legs, and a peer that checks the client-auth EKU may refuse a server-auth-only leaf).

    - AudioCodes: sbc-apis.md A ("TLS Context selection"): outgoing TLS uses the Proxy Set's TLS context, else the SIP
      Interface's, so the context's certificate - the one installed - is what the device presents as a client.
    - Ribbon SBC Core: sbc-apis.md B3/B4: the tlsProfile's ``clientCertName``; ``configured`` says whether it points
      at the installed object. Unknown: the stricter reading, it does.
    - Ribbon SBC Edge: the reference is silent (UNCONFIRMED) on the certificate used for outbound TLS: the stricter
      reading, the server certificate.
    - No vendor: not derived (False); give ``client_auth_required`` instead.
    """
    if vendor == "audiocodes":
        return True
    if vendor == "ribbon_core":
        return True if configured is None else bool(configured)
    if vendor == "ribbon_edge":
        return True
    return False


# -- input ------------------------------------------------------------------------------------------------------------
def parse_time(value: t.Any, field: str) -> datetime.datetime | None:
    """ISO 8601 with a time zone (``Z`` allowed) or seconds since the epoch -> aware UTC datetime; None stays None.
    A time without a zone is refused: it is ambiguous (the stricter reading)."""
    if value is None or value == "":
        return None
    if isinstance(value, bool):
        raise InputError(field, "expected a time (ISO 8601 with a time zone, or seconds since the epoch), got a bool")
    if isinstance(value, (int, float)):
        return datetime.datetime.fromtimestamp(float(value), datetime.timezone.utc)
    if isinstance(value, datetime.datetime):
        parsed = value
    elif isinstance(value, str):
        text = value.strip()
        if re.match(r"^\d+(\.\d+)?$", text):
            return datetime.datetime.fromtimestamp(float(text), datetime.timezone.utc)
        if text.endswith(("Z", "z")):
            text = text[:-1] + "+00:00"
        try:
            parsed = datetime.datetime.fromisoformat(text)
        except ValueError:
            raise InputError(field, f"{value!r} is not an ISO 8601 time (for example 2027-01-28T10:00:00Z)") from None
    else:
        raise InputError(field, f"expected a time, got {type(value).__name__}")
    if parsed.tzinfo is None:
        raise InputError(field, f"{value!r} has no time zone; give UTC (Z) or an offset")
    return parsed.astimezone(datetime.timezone.utc)


def iso(value: datetime.datetime | None) -> str | None:
    return value.strftime("%Y-%m-%dT%H:%M:%SZ") if value is not None else None


def _text(value: t.Any, field: str, *, required: bool = False) -> str | None:
    if value is None or value == "":
        if required:
            raise InputError(field, "is required")
        return None
    if isinstance(value, (dict, list)):
        raise InputError(field, f"expected text, got {type(value).__name__}")
    return str(value)


def _hhmm(value: t.Any, field: str, default: str) -> int:
    """A local time ``HH:MM`` as minutes after midnight; ``24:00`` is the end of the day (the window format of
    ``roles/fleet_plan/tasks/window.yml``, where ``start`` defaults to 00:00 and ``end`` to 24:00)."""
    text = default if value is None or str(value).strip() == "" else str(value).strip()
    if text == "24:00":
        return 24 * 60
    m = re.match(r"^([01]?\d|2[0-3]):([0-5]\d)$", text)
    if not m:
        raise InputError(field, f"{value!r} is not a local time HH:MM (00:00 to 24:00)")
    return int(m.group(1)) * 60 + int(m.group(2))


def _clock(minutes: int) -> str:
    return f"{minutes // 60:02d}:{minutes % 60:02d}"


def _window(w: t.Any, field: str) -> dict:
    """One maintenance window in the inventory's format (``byoc_maintenance_window``, roles/fleet_plan window.yml):
    ``timezone`` (IANA, required), ``days`` (default every day; only the first three letters count, as there),
    ``start`` (default 00:00), ``end`` (default 24:00)."""
    if not isinstance(w, dict):
        raise InputError(field, "expected {timezone, start, end, days (optional)}")
    tz_name = _text(w.get("timezone"), f"{field}.timezone", required=True)
    if zoneinfo is None:  # pragma: no cover
        raise InputError(f"{field}.timezone", "IANA time zones need Python 3.9 or later (zoneinfo)")
    try:
        tz = zoneinfo.ZoneInfo(tz_name)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        raise InputError(f"{field}.timezone", f"{tz_name!r} is not an IANA time zone (for example Europe/Berlin)") from None
    days = w.get("days") or list(DAYS)
    if not isinstance(days, list) or any(str(d).lower()[:3] not in DAYS for d in days):
        raise InputError(f"{field}.days", f"expected a list of week days ({', '.join(DAYS)})")
    return {"timezone": tz_name, "tz": tz, "start": _hhmm(w.get("start"), f"{field}.start", "00:00"),
            "end": _hhmm(w.get("end"), f"{field}.end", "24:00"),
            "days": sorted({DAYS.index(str(d).lower()[:3]) for d in days})}


def check_groups(groups: t.Any) -> list[dict]:
    """Validate and normalize ``groups`` (times parsed, defaults filled). Raises InputError naming the field."""
    if not isinstance(groups, list):
        raise InputError("groups", "expected a list of groups")
    out, seen = [], set()
    for i, g in enumerate(groups):
        f = f"groups[{i}]"
        if not isinstance(g, dict):
            raise InputError(f, f"expected a dict, got {type(g).__name__}")
        name = _text(g.get("group"), f"{f}.group", required=True)
        if name in seen:
            raise InputError(f"{f}.group", f"{name!r} is listed twice")
        seen.add(name)
        status = str(g.get("status") or "").strip().lower()
        if status not in STATUSES:
            raise InputError(f"{f}.status", f"{g.get('status')!r} is not one of {', '.join(STATUSES)}")
        members = []
        for j, m in enumerate(g.get("members") or []):
            mf = f"{f}.members[{j}]"
            if not isinstance(m, dict):
                raise InputError(mf, "expected {host, endpoint, fingerprint, not_after}")
            eku = m.get("extended_key_usage")
            if eku is not None and not isinstance(eku, list):
                raise InputError(f"{mf}.extended_key_usage", "expected a list of usages (serverAuth, clientAuth)")
            vendor = _text(m.get("vendor"), f"{mf}.vendor")
            if vendor is not None and vendor not in VENDORS:
                raise InputError(f"{mf}.vendor", f"{vendor!r} is not one of {', '.join(VENDORS)}")
            explicit = m.get("client_auth_required")
            client = (bool(explicit) if explicit is not None
                      else presents_client_certificate(vendor, m.get("client_certificate_configured")))
            members.append({"host": _text(m.get("host"), f"{mf}.host", required=True),
                            "endpoint": _text(m.get("endpoint"), f"{mf}.endpoint"),
                            "fingerprint": _text(m.get("fingerprint"), f"{mf}.fingerprint"),
                            "not_after": parse_time(m.get("not_after"), f"{mf}.not_after"),
                            "client_auth_required": client, "vendor": vendor,
                            "extended_key_usage": [str(e) for e in eku] if eku is not None else None,
                            "issuer": _text(m.get("issuer"), f"{mf}.issuer"),
                            "has_eku": "extended_key_usage" in m})
        trunks = []
        for j, tr in enumerate(g.get("trunks") or []):
            tf = f"{f}.trunks[{j}]"
            if not isinstance(tr, dict):
                raise InputError(tf, "expected {name, connected, observed_at}")
            trunks.append({"name": _text(tr.get("name"), f"{tf}.name", required=True),
                           "connected": bool(tr.get("connected")),
                           "observed_at": parse_time(tr.get("observed_at"), f"{tf}.observed_at")})
        cas = []
        for j, ca in enumerate(g.get("genesys_cas") or []):
            cf = f"{f}.genesys_cas[{j}]"
            if not isinstance(ca, dict):
                raise InputError(cf, "expected {name (or subject), not_after}")
            cas.append({"name": _text(ca.get("name") or ca.get("subject"), f"{cf}.name") or f"CA {j + 1}",
                        "subject": _text(ca.get("subject"), f"{cf}.subject"),
                        "issuer": _text(ca.get("issuer"), f"{cf}.issuer"),
                        "fingerprint": _text(ca.get("fingerprint"), f"{cf}.fingerprint"),
                        "not_after": parse_time(ca.get("not_after"), f"{cf}.not_after")})
        warnings = g.get("warnings") or []
        if not isinstance(warnings, list):
            warnings = [warnings]
        out.append({
            "group": name, "status": status, "reason": _text(g.get("reason"), f"{f}.reason") or "",
            "old_not_after": parse_time(g.get("old_not_after"), f"{f}.old_not_after"),
            "new_not_after": parse_time(g.get("new_not_after"), f"{f}.new_not_after"),
            "next_renewal": parse_time(g.get("next_renewal"), f"{f}.next_renewal"),
            "issuer": _text(g.get("issuer"), f"{f}.issuer"),
            "members": members, "trunks": trunks, "genesys_cas": cas,
            "warnings": [str(w) for w in warnings],
            "maintenance_windows": [_window(w, f"{f}.maintenance_windows[{k}]")
                                    for k, w in enumerate(g.get("maintenance_windows") or [])],
        })
    return out


# -- findings ---------------------------------------------------------------------------------------------------------
def leaf_not_after(g: dict) -> datetime.datetime | None:
    """The expiry of the certificate the group serves after this run: the new one, else the members', else the old."""
    if g["new_not_after"] is not None:
        return g["new_not_after"]
    served = [m["not_after"] for m in g["members"] if m["not_after"] is not None]
    return min(served) if served else g["old_not_after"]


def in_window(when: datetime.datetime, w: dict) -> bool:
    """``when`` falls in the window: on one of its days, from start to end local time; an end at or before the start
    crosses midnight (the day is the day the window starts), as in roles/fleet_plan/tasks/window.yml."""
    local = when.astimezone(w["tz"])
    now_min = local.hour * 60 + local.minute
    start, end = w["start"], w["end"]
    if start < end:
        return local.weekday() in w["days"] and start <= now_min < end
    if now_min >= start:
        return local.weekday() in w["days"]
    if now_min < end:
        return (local.weekday() - 1) % 7 in w["days"]
    return False


def leaf_issuers(g: dict) -> set[str]:
    """The issuer names of the group's leaf: the group's ``issuer`` and its members' (RFC 4514 strings)."""
    out = {m["issuer"] for m in g["members"] if m["issuer"]}
    if g["issuer"]:
        out.add(g["issuer"])
    return out


def chain_cas(g: dict) -> tuple[list[dict], bool]:
    """The Genesys CAs the group's leaf chains to, and whether that could be decided.

    With the leaf's issuer and the CAs' subjects known, the chain is walked upwards by name (issuer -> the CA with
    that subject -> its issuer ...), so a CA of the org that has nothing to do with this group (another group's,
    or one superseded and waiting to be pruned) is not reported against it. CAs without subjects are taken as the
    group's chain (the caller picked them); CAs with subjects but no known leaf issuer decide nothing."""
    cas = g["genesys_cas"]
    issuers = leaf_issuers(g)
    if cas and all(c["subject"] for c in cas) and not issuers:
        return [], False  # the org's whole list, but the leaf's issuer is unknown: which chain cannot be told
    if not issuers or not cas or not all(c["subject"] for c in cas):
        return cas, False
    picked: list[dict] = []
    names = set(issuers)
    while True:
        more = [c for c in cas if c["subject"] in names and c not in picked]
        if not more:
            break
        picked.extend(more)
        names = {c["issuer"] for c in more if c["issuer"] and c["issuer"] != c["subject"]}
    return picked, True


def flags_for(g: dict) -> list[str]:
    """What the group's data says a user must know (issue 11 §5), one sentence each."""
    flags: list[str] = []
    for m in g["members"]:
        eku = m["extended_key_usage"]
        if m["client_auth_required"] and eku is not None and "clientAuth" not in eku:
            flags.append(f"{m['host']}: the leaf has no TLS clientAuth extended key usage ({', '.join(eku) or 'none'}),"
                         " but the device presents it as a TLS client on its outbound SIP-TLS legs. A peer that"
                         " checks the client EKU may refuse it. Let's Encrypt's classic profile dropped clientAuth on"
                         " 2026-02-11: use a CA or profile that still includes it, or have the peer stop requiring it")
    leaf_end = leaf_not_after(g)
    cas, walked = chain_cas(g)
    if walked and not cas:
        flags.append(f"no certificate authority the Genesys org trusts issued the leaf (issuer"
                     f" {', '.join(sorted(leaf_issuers(g)))}): the Edges will refuse the SBC's certificate. Add the"
                     " issuing chain as REMOTE certificate authorities (the rotation's trust step does)")
    if leaf_end is not None:
        for ca in cas:
            if ca["not_after"] is not None and ca["not_after"] < leaf_end:
                flags.append(f"the Genesys CA {ca['name']} expires {iso(ca['not_after'])}, before the leaf"
                             f" ({iso(leaf_end)}): trunks will go down then. Add the CA's successor as a REMOTE"
                             " certificate authority before that date")
    flags.extend(g["warnings"])
    windows = g["maintenance_windows"]
    if windows and g["next_renewal"] is not None and not any(in_window(g["next_renewal"], w) for w in windows):
        where = "; ".join(f"{','.join(DAYS[d] for d in w['days'])} {_clock(w['start'])}-{_clock(w['end'])}"
                          f" {w['timezone']}" for w in windows)
        flags.append(f"the next renewal ({iso(g['next_renewal'])}) falls outside every maintenance window ({where}):"
                     " the run on that day will skip the group unless forced. Widen a window or move the stagger")
    return flags


def run_failed(groups: list[dict], failed: bool | None) -> bool:
    """The run failed if the caller says so, else if any group failed or was rolled back."""
    if failed is not None:
        return bool(failed)
    return any(g["status"] in FAILURE for g in groups)


# -- console table ----------------------------------------------------------------------------------------------------
def _day(value: datetime.datetime | None) -> str:
    return value.strftime("%Y-%m-%d") if value is not None else "-"


def table(groups: list[dict], flags: dict[str, list[str]], *, failed: bool, run_id: str | None) -> list[str]:
    header = ["GROUP", "STATUS", "EXPIRY OLD -> NEW", "MEMBERS", "TRUNKS", "REASON"]
    rows = []
    for g in groups:
        # No new certificate this run (unchanged, skipped, deferred, rolled back): the one served is kept.
        expiry = (f"{_day(g['old_not_after'])} -> {_day(g['new_not_after'])}" if g["new_not_after"] is not None
                  else f"{_day(g['old_not_after'] or leaf_not_after(g))} (kept)")
        connected = sum(1 for tr in g["trunks"] if tr["connected"])
        trunks = f"{connected}/{len(g['trunks'])} up" if g["trunks"] else "-"
        rows.append([g["group"], g["status"], expiry, str(len(g["members"])), trunks, g["reason"] or "-"])
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header) - 1)]
    lines = []
    for r in [header, *rows]:
        lines.append("  ".join(c.ljust(w) for c, w in zip(r[:-1], widths)) + "  " + r[-1])
    lines.insert(1, "  ".join("-" * w for w in widths) + "  " + "-" * 6)
    counts = {s: sum(1 for g in groups if g["status"] == s) for s in STATUSES}
    summary = ", ".join(f"{n} {s}" for s, n in counts.items() if n) or "no groups"
    lines.append("")
    lines.append(f"{'FAILED' if failed else 'OK'}: {len(groups)} groups ({summary})" + (f", run {run_id}" if run_id else ""))
    for g in groups:
        for f in flags.get(g["group"], []):
            lines.append(f"! {g['group']}: {f}")
    return lines


# -- Prometheus textfile ----------------------------------------------------------------------------------------------
def escape_label(value: str) -> str:
    """Label value escapes of the text exposition format: backslash, double quote, line feed."""
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def _unescape(value: str) -> str:
    return re.sub(r"\\(.)", lambda m: "\n" if m.group(1) == "n" else m.group(1), value)


def _labels(pairs: list[tuple[str, str]]) -> str:
    return "{" + ",".join(f'{k}="{escape_label(v)}"' for k, v in pairs) + "}"


def _num(value: float) -> str:
    return repr(float(value)) if value != int(value) else str(int(value))


def previous_last_success(text: str) -> dict[tuple[str, str, str], float]:
    """Last-success times from an earlier textfile, by (group, host, endpoint), to carry over a failed run."""
    out: dict[tuple[str, str, str], float] = {}
    for line in text.splitlines():
        m = _SAMPLE_RE.match(line)
        if not m or m.group("name") != _LAST_SUCCESS:
            continue
        labels = {k: _unescape(v) for k, v in _LABEL_RE.findall(m.group("labels"))}
        try:
            out[(labels.get("group", ""), labels.get("host", ""), labels.get("endpoint", ""))] = float(m.group("value"))
        except ValueError:
            continue
    return out


_RUN_RE = re.compile(r"^(byoc_certificates_last_run_(?:timestamp_seconds|success)) (\S+)$")


def previous_last_run(text: str) -> dict[str, float]:
    """The last rotation run's time and success from an earlier textfile (kept by a read-only report)."""
    out: dict[str, float] = {}
    for line in text.splitlines():
        m = _RUN_RE.match(line)
        if m:
            try:
                out[m.group(1)] = float(m.group(2))
            except ValueError:
                continue
    return out


def prometheus(groups: list[dict], flags: dict[str, list[str]], *, now: datetime.datetime, failed: bool,
               previous: dict[tuple[str, str, str], float] | None = None, read_only: bool = False,
               previous_run: dict[str, float] | None = None) -> str:
    """The textfile (for node_exporter's textfile collector): one HELP and TYPE per metric, then its samples.

    ``read_only`` (a report run, ``playbooks/report.yml``, that rotated nothing): no endpoint gets a new "last
    success" and the last run's time and success stay those of the last rotation run (``previous_run``), so a report
    after a failed rotation does not hide the failure from an alert on their age."""
    previous = previous or {}
    metrics: dict[str, tuple[str, list[str]]] = {
        "byoc_certificates_endpoint_expiry_timestamp_seconds":
            ("When the certificate served by the endpoint expires (Unix time).", []),
        "byoc_certificates_endpoint_next_renewal_timestamp_seconds":
            ("When the endpoint's certificate group is next due for renewal (Unix time).", []),
        _LAST_SUCCESS: ("The last run that verified the endpoint's group (status unchanged or renewed) (Unix time).", []),
        "byoc_certificates_group_status":
            ("Outcome of the group in the last run: 1 for its status, 0 for the others.", []),
        "byoc_certificates_group_findings":
            ("Findings the report names for the group (missing clientAuth EKU, CA expiring first, no window...).", []),
        "byoc_certificates_group_trunks_connected": ("Genesys trunks of the group seen connected after the run.", []),
        "byoc_certificates_group_trunks": ("Genesys trunks checked for the group.", []),
        "byoc_certificates_last_run_timestamp_seconds": ("When the last rotation run wrote this report (Unix time).", []),
        "byoc_certificates_last_run_success": ("1 if the last rotation run succeeded, 0 if it failed.", []),
    }
    now_ts = int(now.timestamp())  # whole seconds
    for g in groups:
        gl = [("group", g["group"])]
        for m in g["members"]:
            key = (g["group"], m["host"], m["endpoint"] or "")
            el = _labels([("group", g["group"]), ("host", m["host"]), ("endpoint", m["endpoint"] or "")])
            expiry = m["not_after"] or leaf_not_after(g)
            if expiry is not None:
                metrics["byoc_certificates_endpoint_expiry_timestamp_seconds"][1].append(
                    f"byoc_certificates_endpoint_expiry_timestamp_seconds{el} {_num(expiry.timestamp())}")
            if g["next_renewal"] is not None:
                metrics["byoc_certificates_endpoint_next_renewal_timestamp_seconds"][1].append(
                    f"byoc_certificates_endpoint_next_renewal_timestamp_seconds{el} {_num(g['next_renewal'].timestamp())}")
            last = now_ts if g["status"] in SUCCESS and not read_only else previous.get(key)
            if last is not None:
                metrics[_LAST_SUCCESS][1].append(f"{_LAST_SUCCESS}{el} {_num(last)}")
        for s in STATUSES:
            metrics["byoc_certificates_group_status"][1].append(
                f"byoc_certificates_group_status{_labels(gl + [('status', s)])} {1 if g['status'] == s else 0}")
        metrics["byoc_certificates_group_findings"][1].append(
            f"byoc_certificates_group_findings{_labels(gl)} {len(flags.get(g['group'], []))}")
        if g["trunks"]:
            metrics["byoc_certificates_group_trunks_connected"][1].append(
                f"byoc_certificates_group_trunks_connected{_labels(gl)} {sum(1 for tr in g['trunks'] if tr['connected'])}")
            metrics["byoc_certificates_group_trunks"][1].append(
                f"byoc_certificates_group_trunks{_labels(gl)} {len(g['trunks'])}")
    if read_only:
        for name, value in (previous_run or {}).items():
            metrics[name][1].append(f"{name} {_num(value)}")
    else:
        metrics["byoc_certificates_last_run_timestamp_seconds"][1].append(
            f"byoc_certificates_last_run_timestamp_seconds {_num(now_ts)}")
        metrics["byoc_certificates_last_run_success"][1].append(
            f"byoc_certificates_last_run_success {0 if failed else 1}")
    lines = []
    for name, (help_text, samples) in metrics.items():
        if not _METRIC_RE.match(name):  # pragma: no cover - a typo in a metric name above
            raise ValueError(f"invalid metric name {name}")
        if not samples:
            continue
        lines += [f"# HELP {name} {help_text}", f"# TYPE {name} gauge", *samples]
    return "\n".join(lines) + "\n"


# -- JSON -------------------------------------------------------------------------------------------------------------
def report_json(groups: list[dict], flags: dict[str, list[str]], *, now: datetime.datetime, failed: bool,
                run_id: str | None) -> dict:
    def group_out(g: dict) -> dict:
        return {
            "group": g["group"], "status": g["status"], "reason": g["reason"],
            "old_not_after": iso(g["old_not_after"]), "new_not_after": iso(g["new_not_after"]),
            "next_renewal": iso(g["next_renewal"]),
            "members": [{"host": m["host"], "endpoint": m["endpoint"], "fingerprint": m["fingerprint"],
                         "not_after": iso(m["not_after"]), "client_auth_required": m["client_auth_required"],
                         "extended_key_usage": m["extended_key_usage"]} for m in g["members"]],
            "trunks": [{"name": tr["name"], "connected": tr["connected"], "observed_at": iso(tr["observed_at"])}
                       for tr in g["trunks"]],
            "trunks_connected": sum(1 for tr in g["trunks"] if tr["connected"]),
            "genesys_cas": [{"name": c["name"], "not_after": iso(c["not_after"])} for c in chain_cas(g)[0]],
            "maintenance_windows": [{"timezone": w["timezone"], "days": [DAYS[d] for d in w["days"]],
                                     "start": _clock(w["start"]), "end": _clock(w["end"])}
                                    for w in g["maintenance_windows"]],
            "findings": flags.get(g["group"], []),
        }

    return {
        "schema_version": SCHEMA_VERSION,
        "generated_at": iso(now),
        "run_id": run_id,
        "failed": failed,
        "summary": {"groups": len(groups), **{s: sum(1 for g in groups if g["status"] == s) for s in STATUSES},
                    "findings": sum(len(v) for v in flags.values())},
        "groups": [group_out(g) for g in groups],
    }


# -- I/O --------------------------------------------------------------------------------------------------------------
def write_atomic(path: str, text: str, mode: int = 0o644) -> bool:
    """Write ``text`` to ``path`` through a temporary file in the same directory and a rename, so that a reader (the
    node_exporter textfile collector) never sees half a file. The temporary name does not end in ``.prom``. Returns
    whether the content changed."""
    try:
        with open(path, encoding="utf-8") as fh:
            if fh.read() == text:
                return False
    except (FileNotFoundError, UnicodeDecodeError):
        pass
    directory = os.path.dirname(path) or "."
    fd, tmp = tempfile.mkstemp(prefix=f".{os.path.basename(path)}.", suffix=".tmp", dir=directory)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise
    return True


def redact_url(url: str) -> str:
    """The heartbeat URL without its path and query (a healthchecks.io ping URL's path is its secret)."""
    m = re.match(r"^([a-zA-Z][a-zA-Z0-9+.-]*://)(?:[^@/]*@)?([^/?#]*)", url or "")
    return f"{m.group(1)}{m.group(2)}/..." if m else "(the heartbeat URL)"


def heartbeat_target(url: str, failed: bool) -> str:
    """healthchecks.io convention (https://healthchecks.io/docs/http_api/): the ping URL signals success, the same
    URL with ``/fail`` appended signals failure."""
    base = url.rstrip("/")
    return f"{base}/fail" if failed else base


def ping(url: str, failed: bool, body: str, timeout: float, opener: t.Callable[..., t.Any]) -> dict:
    """Ping the heartbeat; never raises. ``opener(url, data=..., method=..., timeout=...)`` is ``open_url``."""
    target = heartbeat_target(url, failed)
    shown = redact_url(url) + ("/fail" if failed else "")
    try:
        resp = opener(target, data=body.encode("utf-8"), method="POST", timeout=timeout,
                      headers={"Content-Type": "text/plain; charset=utf-8"}, follow_redirects="all")
        status = getattr(resp, "status", None) or resp.getcode()
        resp.read()
    except Exception as exc:  # pylint: disable=broad-exception-caught
        status = getattr(exc, "code", None)
        why = f"HTTP {status}" if status else type(exc).__name__
        return {"sent": False, "kind": "fail" if failed else "success", "target": shown, "status": status,
                "warning": f"the heartbeat ping to {shown} failed ({why}); the run's outcome is unchanged. Check"
                           " the URL and that the controller can reach it"}
    ok = 200 <= int(status) < 300
    out = {"sent": ok, "kind": "fail" if failed else "success", "target": shown, "status": int(status)}
    if not ok:
        out["warning"] = f"the heartbeat ping to {shown} answered HTTP {status}; the run's outcome is unchanged"
    return out


def build(params: dict, now: datetime.datetime | None = None) -> dict:
    """Everything but the writes: the normalized groups, findings, table, file contents."""
    now = now or datetime.datetime.now(datetime.timezone.utc)
    groups = check_groups(params.get("groups"))
    flags = {g["group"]: flags_for(g) for g in groups}
    failed = run_failed(groups, params.get("failed"))
    run_id = params.get("run_id") or None
    return {"groups": groups, "flags": flags, "failed": failed, "now": now, "run_id": run_id,
            "table": table(groups, flags, failed=failed, run_id=run_id),
            "json": report_json(groups, flags, now=now, failed=failed, run_id=run_id)}


def run(params: dict, *, check_mode: bool, opener: t.Callable[..., t.Any] | None,
        now: datetime.datetime | None = None) -> dict:
    """Build, write both files (unless check mode), ping the heartbeat (unless check mode or no URL)."""
    built = build(params, now)
    directory = params.get("dir")
    if not directory:
        raise InputError("dir", "is required: the directory the report files go to")
    directory = os.path.abspath(os.path.expanduser(directory))
    prom_path, json_path = os.path.join(directory, PROM_FILE), os.path.join(directory, JSON_FILE)
    previous, previous_run = {}, {}
    try:
        with open(prom_path, encoding="utf-8") as fh:
            old_text = fh.read()
        previous, previous_run = previous_last_success(old_text), previous_last_run(old_text)
    except (FileNotFoundError, UnicodeDecodeError, IsADirectoryError):
        pass
    prom = prometheus(built["groups"], built["flags"], now=built["now"], failed=built["failed"], previous=previous,
                      read_only=bool(params.get("read_only")), previous_run=previous_run)
    report = json.dumps(built["json"], indent=2, sort_keys=False) + "\n"
    written = False
    warnings: list[str] = []
    heartbeat: dict[str, t.Any] = {"sent": False, "kind": None, "target": None, "status": None}
    if not check_mode:
        try:
            os.makedirs(directory, exist_ok=True)
        except OSError as exc:
            raise InputError("dir", f"{directory} cannot be created ({exc.strerror or type(exc).__name__})") from None
        write_atomic(json_path, report)
        write_atomic(prom_path, prom)
        written = True
        if params.get("heartbeat_url"):
            summary = next(line for line in built["table"] if line.startswith(("OK: ", "FAILED: ")))
            heartbeat = ping(params["heartbeat_url"], built["failed"], summary + "\n",
                             float(params.get("heartbeat_timeout") or 10.0), opener)
            if heartbeat.get("warning"):
                warnings.append(heartbeat["warning"])
    # Never "changed": the report is rewritten on every run (it carries the run's time), which changes nothing in the
    # fleet; a second, converged run must report no change (issue 11, idempotence).
    return {
        "changed": False,
        "written": written,
        "report_failed": built["failed"],
        "table": built["table"],
        "findings": {k: v for k, v in built["flags"].items() if v},
        "summary": built["json"]["summary"],
        "files": {"json": json_path, "prometheus": prom_path},
        "heartbeat": heartbeat,
        "warnings": warnings,
    }
