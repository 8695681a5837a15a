#!/usr/bin/python
# Copyright (c) 2026, byoc.certificates contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
module: genesys_edge_info
short_description: Health and traffic of the Genesys Cloud Edges that serve given trunks, optionally waiting for calm
version_added: 0.2.0
description:
  - Finds the Edges that serve the selected BYOC Premises trunks and reports, per Edge, C(onlineStatus),
    C(statusCode), C(state) and C(conversationCount). An Edge is healthy when it is C(ONLINE), C(ACTIVE) and
    C(active). The API has no Edge status endpoint; these fields of the Edge object are its health.
  - Select trunks by id, or by the SBC address (host or host:port) in their trunk base's C(SIP Servers or Proxies)
    list, or select Edges by id. Each selector gets a verdict in RV(selected), so one call serves a whole batch of
    SBCs; without a selector, every Edge of the org is reported.
  - "One call costs: one Edge listing per poll (100 Edges per request), plus, once at the start, one trunk listing
    (100 trunks per request) when selecting by trunk id or SBC address and one trunk base listing when selecting by
    SBC address. Never one request per SBC or per Edge."
  - With O(max_conversations), an Edge that carries more conversations than that is busy. With O(wait=true), the
    module polls every O(poll_interval) seconds until no healthy selected Edge is busy, for at most O(timeout)
    seconds, and then returns with RV(deferred=true) and the reason, rather than failing. A progress line (what is
    waited on, for how long, the counts seen so far) is printed about every 30 seconds; every poll is also listed in
    RV(progress).
  - An unhealthy Edge is not waited for; its selectors are reported as V(unhealthy).
  - Uses the official Genesys Cloud Python SDK.
author:
  - byoc.certificates contributors (!UNKNOWN)
extends_documentation_fragment:
  - byoc.certificates._genesys
  - byoc.certificates._attributes.ACTIONGROUP_GENESYS
  - byoc.certificates._attributes
  - byoc.certificates._attributes.info_module
options:
  trunk_ids:
    description: Ids of trunks (trunk instances); their Edges are reported.
    type: list
    elements: str
    default: []
  sbc_addresses:
    description:
      - SBC addresses as written in the trunk bases' server lists, for example V(sbc1.example.com:5061). A bare host
        matches any port. The Edges of every trunk that uses the address are reported.
    type: list
    elements: str
    default: []
  edge_ids:
    description: Ids of Edges, for example those a previous call returned in RV(selected) (costs no trunk listing).
    type: list
    elements: str
    default: []
  max_conversations:
    description:
      - An Edge that carries more than this many conversations (C(conversationCount)) is busy; its selectors are
        V(busy) and RV(deferred) is V(true). An Edge that does not report the count is busy too.
      - Not set means no traffic threshold.
    type: int
  wait:
    description: With O(max_conversations), wait until no healthy selected Edge is busy, for at most O(timeout).
    type: bool
    default: false
  timeout:
    description: With O(wait=true), stop waiting after this many seconds and return the busy selectors as deferred.
    type: float
    default: 300
  poll_interval:
    description: With O(wait=true), seconds between polls.
    type: float
    default: 30
  on_unmatched:
    description:
      - What to do with a trunk id or SBC address that matches no trunk, or an Edge id the org does not have.
      - V(fail) fails the task naming every such selector, before waiting.
      - V(return) lists them in RV(unmatched) and goes on with the others.
    type: str
    choices: [fail, return]
    default: fail
seealso:
  - module: byoc.certificates.genesys_trunk_info
"""

EXAMPLES = r"""
- name: Before rotating, the Edges of these SBCs' trunks must be healthy, and carry at most 20 calls each
  byoc.certificates.genesys_edge_info:
    region: eu_west_1
    sbc_addresses: [sbc1.example.com:5061, sbc2.example.com:5061]
    max_conversations: 20
    wait: true
    timeout: 900
    poll_interval: 60
  register: edges

- name: Rotate only the SBCs whose Edges are ready
  ansible.builtin.debug:
    msg: "{{ edges.selected | selectattr('status', 'equalto', 'ready') | map(attribute='selector') | list }}"

- name: After the change, the same Edges are still healthy (one Edge listing)
  byoc.certificates.genesys_edge_info:
    region: eu_west_1
    edge_ids: "{{ edges.selected | map(attribute='edge_ids') | flatten | unique }}"
  register: edges_after
  failed_when: not edges_after.healthy
"""

RETURN = r"""
edges:
  description: The selected Edges as of the last poll.
  returned: always
  type: list
  elements: dict
  contains:
    id:
      description: Edge id.
      type: str
      sample: 9c2b3c1e-6f0e-4b7c-9a55-3e1f1b2b7d10
    name:
      description: Edge name.
      type: str
      sample: Edge 1
    online_status:
      description: C(onlineStatus) (V(ONLINE) or V(OFFLINE)).
      type: str
      sample: ONLINE
    status_code:
      description: C(statusCode), for example V(ACTIVE) or V(INACTIVE).
      type: str
      sample: ACTIVE
    state:
      description: C(state) (V(active), V(inactive) or V(deleted)).
      type: str
      sample: active
    conversation_count:
      description: C(conversationCount); V(null) when not reported.
      type: int
      sample: 3
    healthy:
      description: C(ONLINE), C(ACTIVE) and C(active).
      type: bool
      sample: true
    reasons:
      description: Why the Edge is not healthy; empty when it is.
      type: list
      elements: str
      sample: ["onlineStatus is OFFLINE, not ONLINE"]
    busy:
      description: More conversations than O(max_conversations) (always V(false) without it).
      type: bool
      sample: false
    seen_counts:
      description: The conversation counts seen at each poll of this call, oldest first.
      type: list
      elements: int
      sample: [31, 18, 4]
selected:
  description: One verdict per selector.
  returned: always
  type: list
  elements: dict
  contains:
    selector:
      description: The trunk id, SBC address or Edge id as given.
      type: str
      sample: sbc1.example.com:5061
    kind:
      description: V(trunk_ids), V(sbc_addresses) or V(edge_ids).
      type: str
      sample: sbc_addresses
    trunks:
      description: The trunks it matched (C(id), C(name)).
      type: list
      elements: dict
      sample: [{id: 7d1d7f43-0a0e-4c54-a4f8-2ce59e0f0c3e, name: SBC site A}]
    edge_ids:
      description: The Edges that serve those trunks.
      type: list
      elements: str
      sample: [9c2b3c1e-6f0e-4b7c-9a55-3e1f1b2b7d10]
    edges:
      description: Their names.
      type: list
      elements: str
      sample: [Edge 1]
    status:
      description: V(ready), V(unhealthy) (an Edge is not healthy) or V(busy) (an Edge carries more than
        O(max_conversations), after the wait if any).
      type: str
      sample: ready
    reason:
      description: Why it is not ready, naming the Edges and what was seen; empty when ready.
      type: str
      sample: "Edge 1 carries 31 conversations, more than 20 (seen: 35, 31); waited 120s (3 polls) for at most 20 conversations per Edge"
unmatched:
  description: Selectors that matched nothing (with O(on_unmatched=return)), each as its kind, a colon and the value.
  returned: always
  type: list
  elements: str
  sample: []
healthy:
  description: Every selected Edge is healthy.
  returned: always
  type: bool
  sample: true
unhealthy:
  description: The selected Edges that are not healthy (C(id), C(name), C(reasons)).
  returned: always
  type: list
  elements: dict
  sample: []
busy:
  description: The selected Edges above O(max_conversations) (C(id), C(name), C(conversation_count)).
  returned: always
  type: list
  elements: dict
  sample: []
deferred:
  description: Some selector is still busy (after the wait, with O(wait=true)); the caller should defer it.
  returned: always
  type: bool
  sample: false
waiting_on:
  description: The healthy Edges that are still busy (what a wait would wait for).
  returned: always
  type: list
  elements: str
  sample: []
msg:
  description: One sentence saying what is not ready and why.
  returned: always
  type: str
  sample: "sbc1.example.com:5061: unhealthy: Edge Edge 1: onlineStatus is OFFLINE, not ONLINE"
polls:
  description: Number of Edge listings made (one per poll).
  returned: always
  type: int
  sample: 1
waited:
  description: Seconds from the start of the task to the last poll.
  returned: always
  type: float
  sample: 0.4
progress:
  description: "One line per poll, for example C(poll 2 at 60s: 2 Edges, 2 healthy; busy: Edge 1 (31 > 20))."
  returned: always
  type: list
  elements: str
  sample: ["poll 1 at 0s: 2 Edges, 2 healthy; all at or below 20 conversations"]
max_conversations:
  description: The threshold used (V(null) without one).
  returned: always
  type: int
  sample: 20
api:
  description: What the run cost against the API (C(requests), C(tokens_minted), C(rate_limit_waits)).
  returned: always
  type: dict
  sample: {requests: 3, tokens_minted: 0, rate_limit_waits: []}
"""

import time

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.byoc.certificates.plugins.module_utils._errors import InputError, NotFound
from ansible_collections.byoc.certificates.plugins.module_utils._genesys import edges as E
from ansible_collections.byoc.certificates.plugins.module_utils._genesys.common import (
    check_connection_params,
    client_from_params,
    connection_argument_spec,
    stats,
)
from ansible_collections.byoc.certificates.plugins.module_utils._genesys.polling import poll_until
from ansible_collections.byoc.certificates.plugins.module_utils._module import ByocModule
from ansible_collections.byoc.certificates.plugins.module_utils._runner import run_module

API = "TelephonyProvidersEdgeApi"


def check_params(p: dict) -> None:
    for field in ("trunk_ids", "sbc_addresses", "edge_ids"):
        for value in p[field]:
            if not isinstance(value, str) or not value.strip():
                raise InputError(field, f"{value!r} is empty")
    if p["max_conversations"] is not None and p["max_conversations"] < 0:
        raise InputError("max_conversations", "must be 0 or more")
    if not p["timeout"] > 0 or p["timeout"] == float("inf"):
        raise InputError("timeout", "must be a number of seconds more than 0")
    if not p["poll_interval"] > 0 or p["poll_interval"] == float("inf"):
        raise InputError("poll_interval", "must be a number of seconds more than 0")


def work(module: AnsibleModule) -> dict:
    started = time.monotonic()  # the wait's clock: loading the SDK and the token count against the timeout
    p = module.params
    check_params(p)
    api_url = check_connection_params(p)
    client = client_from_params(p, api_url)
    client.connect()
    limit = p["max_conversations"]

    trunks: list[dict] = []
    bases: dict[str, dict] = {}
    if p["sbc_addresses"]:
        for base in client.list_all(API, "get_telephony_providers_edges_trunkbasesettings", expand=["properties"]):
            wire = client.to_wire(base)
            bases[wire["id"]] = wire
    if p["trunk_ids"] or p["sbc_addresses"]:
        trunks = [client.to_wire(tr) for tr in
                  client.list_all(API, "get_telephony_providers_edges_trunks", trunk_type="EXTERNAL")]

    view: dict = {"selected": None, "unmatched": [], "seen": {}}

    def look(poll: int) -> tuple[bool, str]:
        listing = {e["id"]: e for e in (client.to_wire(x) for x in client.list_all(API, "get_telephony_providers_edges"))}
        if view["selected"] is None:
            if p["trunk_ids"] or p["sbc_addresses"] or p["edge_ids"]:
                view["selected"], view["unmatched"] = E.match_selectors(
                    trunks, bases, listing, p["trunk_ids"], p["sbc_addresses"], p["edge_ids"])
            else:
                view["selected"] = [{"selector": eid, "kind": "edge_ids", "trunks": [], "edge_ids": [eid]} for eid in listing]
            if view["unmatched"] and p["on_unmatched"] == "fail":
                raise NotFound("No Genesys Cloud trunk or Edge matches " + "; ".join(view["unmatched"]) + ". Check the"
                               " ids and the trunk bases' 'SIP Servers or Proxies' lists (or set on_unmatched: return).",
                               unmatched=view["unmatched"])
        wanted = {eid for sel in view["selected"] for eid in sel["edge_ids"]}
        states = {eid: E.edge_state(listing[eid], limit, view["seen"].get(eid)) for eid in wanted if eid in listing}
        view["seen"] = {eid: s["seen_counts"] for eid, s in states.items()}
        view["states"] = states
        view["elapsed"] = elapsed = time.monotonic() - started
        view["verdicts"] = verdicts = E.judge(states, view["selected"], limit, elapsed, poll)
        return not verdicts["waiting_on"], E.progress_line(poll, elapsed, list(states.values()), limit)

    polls = poll_until(look, keep_waiting=p["wait"] and limit is not None, started=started, timeout=p["timeout"],
                       poll_interval=p["poll_interval"], log=lambda line: module.log(f"genesys_edge_info: {line}"),
                       clock=time.monotonic, sleep=time.sleep)
    verdicts, unmatched = view["verdicts"], view["unmatched"]
    return {"changed": False, "edges": list(view["states"].values()), **verdicts, "unmatched": unmatched,
            "msg": E.summary(verdicts, unmatched), "polls": polls.count, "waited": round(view["elapsed"], 1),
            "progress": polls.progress, "max_conversations": limit, "api": stats(client)}


def argument_spec() -> dict:
    spec = connection_argument_spec()
    spec.update(
        trunk_ids={"type": "list", "elements": "str", "default": []},
        sbc_addresses={"type": "list", "elements": "str", "default": []},
        edge_ids={"type": "list", "elements": "str", "default": []},
        max_conversations={"type": "int"},
        wait={"type": "bool", "default": False},
        timeout={"type": "float", "default": 300.0},
        poll_interval={"type": "float", "default": 30.0},
        on_unmatched={"type": "str", "choices": ["fail", "return"], "default": "fail"},
    )
    return spec


def main() -> None:
    module = ByocModule(argument_spec=argument_spec(), supports_check_mode=True)
    run_module(module, work)


if __name__ == "__main__":
    main()
