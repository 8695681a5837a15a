# Copyright (c) 2026, byoc.certificates contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

# Note that this module util is **PRIVATE** to the collection. It can have breaking changes at any time.

"""Trunk health as plain data: which trunks a task means, and whether each is up and, if not, why.

Input is wire JSON (camelCase) of Trunk and TrunkBase (genesys-cloud-api.md §2.6, §2.8); no network here.
"""

from __future__ import annotations

import typing as t

from ansible_collections.byoc.certificates.plugins.module_utils._errors import NotFound

PROXY_LIST = "trunk_transport_serverProxyList"  # §3: "SIP Servers or Proxies" of a trunk base


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


def health(trunk: dict) -> dict:
    """One trunk's state and, when it is down, every reason the API gives (§2.6 "Trunk down" signal)."""
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


def progress_line(poll: int, elapsed: float, states: list[dict]) -> str:
    down = [s for s in states if not s["up"]]
    line = f"poll {poll} at {elapsed:.0f}s: {len(states) - len(down)}/{len(states)} trunks up"
    if down:
        shown = ", ".join(f"{s['name']} on {s['edge']['name']}" for s in down[:5])
        line += f"; down: {shown}" + (f" and {len(down) - 5} more" if len(down) > 5 else "")
    return line


def down_summary(states: list[dict]) -> list[dict]:
    return [{"id": s["id"], "name": s["name"], "edge": s["edge"]["name"], "reasons": s["reasons"]}
            for s in states if not s["up"]]
