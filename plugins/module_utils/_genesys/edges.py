# Copyright (c) 2026, byoc.certificates contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

# Note that this module util is **PRIVATE** to the collection. It can have breaking changes at any time.

"""Edge health as plain data: which Edges serve the trunks a task means, whether each is healthy, whether it
carries more calls than a threshold, and the verdict per selector (ready, unhealthy, busy, unmatched).

Input is wire JSON (camelCase) of Edge, Trunk and TrunkBase (genesys-cloud-api.md §2.4, §2.6, §2.8); no network
here. The Genesys API has no Edge status endpoint: health is read from the Edge object itself. "Healthy" is
``onlineStatus == ONLINE``, ``statusCode == ACTIVE`` and ``state == active`` (§2.4, a design inference there). A
value the SDK does not know arrives as ``outdated_sdk_version`` (§2 "Enum handling") and is unhealthy, as is a
missing one: a rotation that cannot be verified must not start.
"""

from __future__ import annotations

from ansible_collections.byoc.certificates.plugins.module_utils._genesys.trunks import address_matches, proxies_of

HEALTHY = {"onlineStatus": "ONLINE", "statusCode": "ACTIVE", "state": "active"}  # §2.4
SHOWN = 5  # names shown in a progress line before "and N more"


def edge_state(edge: dict, max_conversations: int | None, seen: list | None = None) -> dict:
    """One Edge: its §2.4 health fields, ``healthy`` and why not, and ``busy`` (more conversations than
    ``max_conversations``; a count that is not reported counts as busy, the stricter reading)."""
    reasons = []
    for field, wanted in HEALTHY.items():
        value = edge.get(field)
        if value != wanted:
            reasons.append(f"{field} is {value if value else 'not reported'}, not {wanted}")
    count = edge.get("conversationCount")
    count = count if isinstance(count, int) and not isinstance(count, bool) else None
    busy = max_conversations is not None and (count is None or count > max_conversations)
    return {
        "id": edge.get("id"), "name": edge.get("name"),
        "online_status": edge.get("onlineStatus"), "status_code": edge.get("statusCode"), "state": edge.get("state"),
        "conversation_count": count, "healthy": not reasons, "reasons": reasons, "busy": busy,
        "seen_counts": list(seen or []) + [count],
    }


def match_selectors(trunks: list[dict], bases: dict[str, dict], edge_index: dict[str, dict], trunk_ids: list[str],
                    sbc_addresses: list[str], edge_ids: list[str]) -> tuple[list[dict], list[str]]:
    """Per selector, the trunks it means and the Edges that serve them: ``([{selector, kind, trunks, edge_ids}],
    unmatched)``. A trunk id or SBC address that matches no trunk, and an Edge id the org does not have, is
    unmatched. ``edge_index`` is the Edge listing by id (only needed for ``edge_ids``)."""
    selected, unmatched = [], []

    def add(kind: str, selector: str, hits: list[dict]) -> None:
        if not hits:
            unmatched.append(f"{kind}: {selector}")
            return
        selected.append({
            "selector": selector, "kind": kind,
            "trunks": [{"id": tr.get("id"), "name": tr.get("name")} for tr in hits],
            "edge_ids": list(dict.fromkeys((tr.get("edge") or {}).get("id") for tr in hits
                                           if (tr.get("edge") or {}).get("id"))),
        })

    for tid in trunk_ids:
        add("trunk_ids", tid, [tr for tr in trunks if tr.get("id") == tid])
    for addr in sbc_addresses:
        add("sbc_addresses", addr, [tr for tr in trunks if any(
            address_matches(addr, p) for p in proxies_of(bases.get((tr.get("trunkBase") or {}).get("id"), {})))])
    for eid in edge_ids:
        if eid in edge_index:
            selected.append({"selector": eid, "kind": "edge_ids", "trunks": [], "edge_ids": [eid]})
        else:
            unmatched.append(f"edge_ids: {eid}")
    return selected, unmatched


def _names(states: list[dict]) -> str:
    shown = ", ".join(str(s["name"]) for s in states[:SHOWN])
    return shown + (f" and {len(states) - SHOWN} more" if len(states) > SHOWN else "")


def busy_text(s: dict, max_conversations: int | None) -> str:
    count = s["conversation_count"]
    if count is None:
        return f"{s['name']} does not report its conversationCount"
    return f"{s['name']} carries {count} conversations, more than {max_conversations}"


def judge(states: dict[str, dict], selected: list[dict], max_conversations: int | None, waited: float,
          polls: int) -> dict:
    """The verdict per selector and overall. A selector is ``unhealthy`` when one of its Edges is, else ``busy``
    when one of them carries more than ``max_conversations`` (after ``waited`` seconds of waiting: ``deferred``),
    else ``ready``. Reasons name the Edges and what was seen."""
    verdicts = []
    for sel in selected:
        edges = [states[eid] for eid in sel["edge_ids"] if eid in states]
        missing = [eid for eid in sel["edge_ids"] if eid not in states]
        sick = [s for s in edges if not s["healthy"]]
        busy = [s for s in edges if s["busy"]]
        if missing or sick:
            status = "unhealthy"
            reason = "; ".join([f"Edge {s['name']}: {', '.join(s['reasons'])}" for s in sick]
                               + [f"Edge {eid} serves its trunks but is not in the org's Edge listing" for eid in missing])
        elif busy:
            status = "busy"
            seen = "; ".join(f"{busy_text(s, max_conversations)} (seen: "
                             f"{', '.join('?' if c is None else str(c) for c in s['seen_counts'])})" for s in busy)
            reason = (f"{seen}; waited {waited:.0f}s ({polls} polls) for at most {max_conversations}"
                      " conversations per Edge")
        else:
            status, reason = "ready", ""
        verdicts.append({**sel, "edges": [s["name"] for s in edges], "status": status, "reason": reason})
    in_use = {eid for sel in selected for eid in sel["edge_ids"]}
    chosen = [s for eid, s in states.items() if eid in in_use]
    return {
        "selected": verdicts,
        "healthy": all(s["healthy"] for s in chosen) and not any(v["status"] == "unhealthy" for v in verdicts),
        "unhealthy": [{"id": s["id"], "name": s["name"], "reasons": s["reasons"]} for s in chosen if not s["healthy"]],
        "busy": [{"id": s["id"], "name": s["name"], "conversation_count": s["conversation_count"]}
                 for s in chosen if s["busy"]],
        "deferred": any(v["status"] == "busy" for v in verdicts),
        # what a wait still waits for: busy Edges that are healthy (an unhealthy Edge's groups are skipped anyway)
        "waiting_on": [s["name"] for s in chosen if s["busy"] and s["healthy"]],
    }


def progress_line(poll: int, elapsed: float, chosen: list[dict], max_conversations: int | None) -> str:
    """``poll N at Ss: E Edges, H healthy; unhealthy: ...; busy: Edge 1 (12 > 5)``."""
    sick = [s for s in chosen if not s["healthy"]]
    busy = [s for s in chosen if s["busy"]]
    line = f"poll {poll} at {elapsed:.0f}s: {len(chosen)} Edges, {len(chosen) - len(sick)} healthy"
    if sick:
        line += f"; unhealthy: {_names(sick)}"
    if max_conversations is not None:
        if busy:
            counts = ", ".join(f"{s['name']} ({'?' if s['conversation_count'] is None else s['conversation_count']}"
                               f" > {max_conversations})" for s in busy[:SHOWN])
            line += f"; busy: {counts}" + (f" and {len(busy) - SHOWN} more" if len(busy) > SHOWN else "")
        else:
            line += f"; all at or below {max_conversations} conversations"
    return line


def merge_seen(rounds: list[list[dict]]) -> dict[str, list]:
    """Edge id -> every conversationCount seen, over the results' ``edges`` of several rounds."""
    seen: dict[str, list] = {}
    for edges in rounds:
        for s in edges:
            seen.setdefault(s["id"], []).extend(s.get("seen_counts") or [])
    return seen


def summary(verdicts: dict, unmatched: list[str]) -> str:
    """One sentence for ``msg``: what is not ready and why, or that every Edge is ready."""
    bad = [v for v in verdicts["selected"] if v["status"] != "ready"]
    parts = [f"{v['selector']}: {v['status']}: {v['reason']}" for v in bad]
    parts += [f"{u}: no trunk or Edge matches" for u in unmatched]
    if not parts:
        return "every Edge that serves the selected trunks is healthy and, with a threshold, quiet enough"
    return "; ".join(parts)
