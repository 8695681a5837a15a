# Copyright (c) 2026, byoc.certificates contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

# Note that this module util is **PRIVATE** to the collection. It can have breaking changes at any time.

"""The provider-neutral core of ``dns01_record``: validate, follow CNAMEs, find the zone, read, plan, write,
wait. Providers (``provider.py``) do only I/O; every decision is made here, once, for all of them.

Order of work (docs/DEVELOPING.md): all input is checked before any server is contacted; then the current
values are read; the change is planned as set differences (multi-value safe: present adds the missing values
and keeps the others, absent removes exactly the given values and keeps the others); the write happens only
when something differs and not in check mode; the wait polls every authoritative server directly.
"""

from __future__ import annotations

import typing as t

from ansible_collections.byoc.certificates.plugins.module_utils._errors import ApiError, ByocError, InputError, WaitTimeout
from ansible_collections.byoc.certificates.plugins.module_utils._dns import resolve
from ansible_collections.byoc.certificates.plugins.module_utils._dns.provider import create_provider
# Imported for their @register side effect (and so that Ansible packs them with the module).
from ansible_collections.byoc.certificates.plugins.module_utils._dns import azure as _azure  # noqa: F401
from ansible_collections.byoc.certificates.plugins.module_utils._dns import cloudflare as _cloudflare  # noqa: F401
from ansible_collections.byoc.certificates.plugins.module_utils._dns import powerdns as _powerdns  # noqa: F401
from ansible_collections.byoc.certificates.plugins.module_utils._dns import rfc2136 as _rfc2136  # noqa: F401
from ansible_collections.byoc.certificates.plugins.module_utils._dns import route53 as _route53  # noqa: F401
from ansible_collections.byoc.certificates.plugins.module_utils._dns.txt import (
    check_host,
    format_addr,
    is_subdomain,
    normalize_name,
    parse_addr,
    quote_txt,
)

PROVIDERS = ("rfc2136", "route53", "powerdns", "cloudflare", "azure")


def unique(values: t.Iterable[str]) -> list[str]:
    seen: list[str] = []
    for v in values:
        if v not in seen:
            seen.append(v)
    return seen


def plan(before: list[str], values: list[str], state: str) -> tuple[list[str], list[str], list[str]]:
    """``(after, added, removed)``. Values other than ``values`` are always kept."""
    wanted = unique(values)
    if state == "present":
        added = [v for v in wanted if v not in before]
        return unique(before) + added, added, []
    removed = [v for v in wanted if v in before]
    return [v for v in unique(before) if v not in wanted], [], removed


def diff_text(record: str, values: list[str]) -> str:
    return "".join(f"{record}. TXT {quote_txt(v)}\n" for v in values)


def describe_status(status: dict) -> str:
    """``127.0.0.1:53002 (serves nothing)``, ``... (serves 'a', 'b')`` or ``... (error: ...)``."""
    if status.get("error"):
        return f"{status['server']} (error: {status['error']})"
    serving = status.get("serving") or []
    if not serving:
        return f"{status['server']} (serves nothing)"
    return f"{status['server']} (serves {', '.join(repr(v) for v in serving)})"


def wait_summary(record: str, statuses: list[dict], state: str) -> str:
    """One sentence on who serves what: used in the failure message and by the action plugin's progress."""
    good = [s for s in statuses if s.get("ok")]
    behind = [s for s in statuses if not s.get("ok")]
    verb = "serves it" if state == "present" else "no longer serves it"
    parts = []
    if good:
        parts.append(f"{', '.join(s['server'] for s in good)} {verb}")
    if behind:
        parts.append(f"still behind: {', '.join(describe_status(s) for s in behind)}")
    return "; ".join(parts) or f"no nameserver to poll for {record}"


def _host_port(text: str, default_port: int, field: str) -> tuple[str, int]:
    host, port = parse_addr(text, default_port, field)
    return check_host(host, field), port


def validate_params(p: dict[str, t.Any]) -> dict[str, t.Any]:
    """Check and normalise everything the user gave, before any server is contacted."""
    out: dict[str, t.Any] = {}
    if p.get("provider") not in PROVIDERS:
        raise InputError("provider", f"unknown provider {p.get('provider')!r}; choose one of {', '.join(PROVIDERS)}")
    out["record"] = normalize_name(p.get("record") or "", "record")
    values = p.get("value")
    if not values:
        raise InputError("value", "must list at least one TXT value (the ACME key authorization digest)")
    for i, v in enumerate(values):
        if not isinstance(v, str) or v == "":
            raise InputError("value", f"entry {i + 1} is empty; every TXT value must be a non-empty string")
    out["values"] = unique(values)
    out["zone"] = normalize_name(p["zone"], "zone") if p.get("zone") else None
    if out["zone"] and not p.get("follow_cname") and not is_subdomain(out["record"], out["zone"]):
        raise InputError("zone", f"the record {out['record']} is not inside the zone {out['zone']}")
    ttl = p.get("ttl", 60)
    if not isinstance(ttl, int) or not 0 < ttl <= 2147483647:
        raise InputError("ttl", f"{ttl!r} must be between 1 and 2147483647 seconds")
    out["ttl"] = ttl
    wt = p.get("wait_timeout", 300)
    if wt is None or wt < 0:
        raise InputError("wait_timeout", "must be 0 or more seconds")
    wi = p.get("wait_interval", 2)
    if wi is None or wi <= 0:
        raise InputError("wait_interval", "must be more than 0 seconds")
    nport = p.get("nameserver_port", 53)
    if not 0 < int(nport) < 65536:
        raise InputError("nameserver_port", f"{nport} is not a port number (1-65535)")
    out["resolvers"] = [_host_port(r, 53, "resolver") for r in (p.get("resolver") or [])]
    out["nameservers"] = [_host_port(n, int(nport), "nameservers") for n in (p.get("nameservers") or [])]
    if p.get("on_wait_timeout", "fail") not in ("fail", "return"):
        raise InputError("on_wait_timeout", "must be fail or return")
    return out


def values_text(values: list[str]) -> str:
    return ", ".join(repr(v) for v in values) if values else "no TXT value"


def _current(provider, zone: str, record: str) -> list[str] | None:
    """A fresh read after a failure (None when even that fails): the basis for saying what is left."""
    try:
        return provider.get_txt(zone, record)
    except Exception:  # pylint: disable=broad-exception-caught  # noqa: BLE001 - best effort, the first error wins
        return None


def _amend(exc: BaseException, sentence: str, **details: t.Any) -> ByocError:
    """The error to raise after a write: the original ByocError with ``sentence`` appended, or an ApiError naming
    only the type of an unexpected exception (its text may hold request data)."""
    if not isinstance(exc, ByocError):
        exc = ApiError(f"Unexpected {type(exc).__name__} after the write (its text is not shown).")
    exc.msg = f"{exc.msg} {sentence}"
    exc.args = (exc.msg,)
    exc.details.update({k: v for k, v in details.items() if v is not None})
    return exc


def after_failed_change(provider, zone: str, record: str, before: list[str], added: list[str],
                        removed: list[str]) -> tuple[str, list[str] | None]:
    """The write itself failed, maybe half way (per-record providers send one request per value): say exactly
    what the record holds now, read back from the provider."""
    now = _current(provider, zone, record)
    if now is None:
        return (f"The change of {record} (zone {zone}) may be incomplete and the record could not be read back:"
                f" check it by hand (it held {values_text(before)}; this task wanted to add {values_text(added)}"
                f" and remove {values_text(removed)})."), None
    if sorted(now) == sorted(before):
        return f"Nothing was changed: {record} still holds {values_text(now)}.", now
    return f"The change is incomplete: {record} (zone {zone}) now holds {values_text(now)}.", now


def roll_back(provider, zone: str, record: str, added: list[str], removed: list[str], ttl: int) -> tuple[str, list[str] | None]:
    """A later step failed after a successful write. Values this task added are removed again (re-read first, so
    that values written meanwhile by others stay); removed values are not put back (the task wanted them gone)."""
    if not added:
        now = _current(provider, zone, record)
        return (f"The values {values_text(removed)} were removed from {record} (zone {zone}), which now holds"
                f" {values_text(now) if now is not None else 'an unknown set (it could not be read back)'}."), now
    try:
        now = provider.get_txt(zone, record)
        after, _added, gone = plan(now, added, "absent")
        if gone:
            provider.change(zone, record, before=now, after=after, added=[], removed=gone, ttl=ttl)
        return (f"The values this task added ({values_text(added)}) were removed again; {record} (zone {zone})"
                f" holds {values_text(after)} as before."), after
    except Exception as exc:  # pylint: disable=broad-exception-caught  # noqa: BLE001 - report, do not mask
        what = exc.msg if isinstance(exc, ByocError) else type(exc).__name__
        return (f"Removing the values this task added also failed ({what}): {values_text(added)} are still at"
                f" {record} (zone {zone}); remove them with state=absent."), None


def run(p: dict[str, t.Any], *, check_mode: bool = False, want_diff: bool = False,
        provider_factory: t.Callable[[str, dict], t.Any] = create_provider) -> dict[str, t.Any]:
    """Do the whole task for the module's params ``p``; return the result dict (raises ByocError).

    Everything that can be checked or resolved is done before the write (issue 10): the provider options, the
    update server's name, the zone, the current values and, with ``wait``, the nameservers to poll. A failure
    after a write removes what this task added, or says exactly what is left."""
    v = validate_params(p)
    provider = provider_factory(p["provider"], p.get(p["provider"]) or {})
    provider.validate()
    state = p.get("state", "present")
    waiting = bool(p.get("wait")) and not check_mode
    if waiting:
        resolve.require_dnspython("for wait")

    resolvers_cache: list = []

    def resolvers() -> list:
        if not resolvers_cache:
            resolvers_cache.extend(v["resolvers"] or resolve.system_resolvers())
        return resolvers_cache

    record, chain = v["record"], [v["record"]]
    if p.get("follow_cname"):
        resolve.require_dnspython("for follow_cname")
        record, chain = resolve.follow_cnames(v["record"], resolvers())
        if v["zone"] and not is_subdomain(record, v["zone"]):
            raise InputError("zone", f"{v['record']} leads by CNAME to {record}, which is not inside the zone"
                             f" {v['zone']}; the zone option names the zone of the final name")

    zone = provider.find_zone(record, v["zone"])
    before = provider.get_txt(zone, record)
    after, added, removed = plan(before, v["values"], state)
    changed = bool(added or removed)

    servers: list = []
    if waiting:
        # before the write: nameserver names that do not resolve, or a zone whose NS cannot be found, fail here
        # and leave nothing behind
        if v["nameservers"]:
            servers = resolve.resolve_hostport(v["nameservers"], resolvers, 5.0)
        else:
            servers = resolve.discover_nameservers(zone, resolvers(), int(p.get("nameserver_port", 53)))

    if changed and not check_mode:
        try:
            provider.change(zone, record, before=before, after=after, added=added, removed=removed, ttl=v["ttl"])
        except Exception as exc:  # pylint: disable=broad-exception-caught
            sentence, now = after_failed_change(provider, zone, record, before, added, removed)
            raise _amend(exc, sentence, txt_now=now) from None

    result: dict[str, t.Any] = {
        "changed": changed, "record": record, "zone": zone, "cname_chain": chain,
        "txt_before": before, "txt_after": after, "added": added, "removed": removed,
        "propagated": None, "wait_seconds": 0.0, "nameserver_status": [],
    }
    if want_diff:
        result["diff"] = {"before": diff_text(record, before), "after": diff_text(record, after),
                          "before_header": f"{record} TXT (zone {zone})", "after_header": f"{record} TXT (zone {zone})"}
    if not waiting:
        return result

    timeout = float(p.get("wait_timeout", 300))
    interval = float(p.get("wait_interval", 2))
    try:
        if changed:
            provider.wait_for_sync(timeout)
        propagated, seconds, statuses = resolve.wait_for_values(
            servers, record, v["values"], state, timeout=timeout, interval=interval)
    except Exception as exc:  # pylint: disable=broad-exception-caught
        if not changed:
            raise
        sentence, now = roll_back(provider, zone, record, added, removed, v["ttl"])
        raise _amend(exc, sentence, txt_now=now) from None
    result.update(propagated=propagated, wait_seconds=round(seconds, 3), nameserver_status=statuses)
    if not propagated and p.get("on_wait_timeout", "fail") == "fail":
        what = "serve" if state == "present" else "stop serving"
        raise WaitTimeout(
            f"Timed out (wait_timeout {timeout:g}s, {seconds:.0f}s spent polling) waiting for all {len(servers)}"
            f" nameservers of {zone} to {what} the TXT values at {record}: {wait_summary(record, statuses, state)}."
            " Check that the secondaries receive NOTIFY and zone transfers from the primary (or the provider"
            f" has finished publishing), or raise wait_timeout. {left_text(record, zone, after, state)}",
            **{k: result[k] for k in ("changed", "record", "zone", "cname_chain", "txt_before", "txt_after",
                                      "added", "removed", "propagated", "wait_seconds", "nameserver_status")})
    return result


def left_text(record: str, zone: str, after: list[str], state: str) -> str:
    """What a timed-out wait leaves at the provider (the write stands; propagation may still complete)."""
    if state == "present":
        return (f"The provider holds {values_text(after)} at {record} (zone {zone}); run with state=absent to"
                " remove this task's values.")
    return f"The provider holds {values_text(after)} at {record} (zone {zone})."


__all__ = ["run", "plan", "validate_params", "describe_status", "wait_summary", "format_addr"]
