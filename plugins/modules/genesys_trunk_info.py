#!/usr/bin/python
# Copyright (c) 2026, byoc.certificates contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
module: genesys_trunk_info
short_description: Health of many Genesys Cloud trunks in one call, optionally waiting until they are connected
version_added: 0.1.0
description:
  - Reads the connection state of BYOC Premises (external) trunks, that is C(connectedStatus), the SIP OPTIONS state
    of each proxy, and the C(errorInfo) that says why a trunk is down.
  - Select trunks by id, by name, or by the SBC address (host or host:port) in their trunk base's
    C(SIP Servers or Proxies) list. Without a selector, every external trunk of the org is returned.
  - One poll reads every trunk with one paged listing (100 trunks per request), so checking 50 trunks costs one
    request per poll, plus one request at the start when selecting by SBC address. This keeps well under the
    300 requests per minute allowed per token.
  - With O(wait=true), polls every O(poll_interval) seconds until all selected trunks are up, and fails after
    O(timeout) seconds naming each trunk that is still down and why. The last wait is cut short so that the final
    poll happens at the timeout, never after it. While it waits, a progress line is printed about every 30 seconds;
    every poll is also listed in RV(progress), numbered across the whole wait.
  - A trunk can report C(connected) from before a change. With O(observed_after), a trunk only counts as up when
    Genesys Cloud observed it after that point in time, so a verify step after a certificate change never accepts
    stale health. The observation time is the trunk's C(eventTime) from
    C(GET /api/v2/telephony/providers/edges/trunks/metrics), read for 100 trunks per request, or a change of its
    connection state recorded after that point. C(optionStateTime) alone is not an observation time, because it is
    the time of the last change of the option state.
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
    description: Ids of trunks (trunk instances).
    type: list
    elements: str
    default: []
  trunk_names:
    description: Names of trunks or of their trunk base settings (case-insensitive). A name usually matches one trunk
      per Edge.
    type: list
    elements: str
    default: []
  sbc_addresses:
    description:
      - SBC addresses as written in the trunk bases' server lists, for example V(sbc1.example.com:5061). A bare host
        matches any port.
    type: list
    elements: str
    default: []
  wait:
    description: Wait until every selected trunk is up (connected, every proxy answering SIP OPTIONS, in service).
    type: bool
    default: false
  timeout:
    description: With O(wait=true), give up after this many seconds.
    type: float
    default: 300
  poll_interval:
    description: With O(wait=true), seconds between polls.
    type: float
    default: 10
  on_timeout:
    description:
      - What to do when O(wait=true) and some trunks are still down after O(timeout) seconds.
      - V(fail) fails the task naming each trunk that is down and why.
      - V(return) returns normally with RV(all_up=false) and the same details, for playbooks that decide themselves.
      - While waiting, the task prints one progress line per poll round (trunks up, which are down).
    type: str
    choices: [fail, return]
    default: fail
  observed_after:
    description:
      - Only count a trunk as up when it was observed after this point in time, so that health from before a change
        (an SBC certificate install, a new REMOTE CA) is not taken for health after it.
      - V(now) means the start of the task. Otherwise an ISO 8601 timestamp with a time zone, for example
        V(2026-11-30T04:40:33Z) (such as C(ansible_date_time.iso8601) gathered after the change), or seconds since
        the epoch. A timestamp without a time zone is refused as ambiguous, and one more than 5 minutes in the future
        is refused as a mistake.
      - The controller's clock is compared with the times Genesys Cloud reports, so keep it synchronised (NTP).
      - Costs one more request per poll for every 100 selected trunks (C(GET /trunks/metrics?trunkIds=...)).
    type: str
seealso:
  - module: byoc.certificates.genesys_edge_certificate
"""

EXAMPLES = r"""
- name: After rotating the SBC certificates, wait until their trunks are connected again
  byoc.certificates.genesys_trunk_info:
    region: eu_west_1
    sbc_addresses: "{{ groups['sbc_site_a'] | map('extract', hostvars, 'sip_tls_address') | list }}"
    wait: true
    timeout: 600
  register: trunks

- name: Note when the SBC certificate install starts (UTC, with its time zone)
  ansible.builtin.set_fact:
    install_started: "{{ now(utc=true).strftime('%Y-%m-%dT%H:%M:%SZ') }}"

# ... install the new certificates on the SBCs ...

- name: Accept only health that Genesys Cloud observed after the install started
  byoc.certificates.genesys_trunk_info:
    region: eu_west_1
    trunk_names: [SBC site A]
    observed_after: "{{ install_started }}"
    wait: true
    timeout: 300

- name: Show the trunks that are down and why
  ansible.builtin.debug:
    var: trunks.down
"""

RETURN = r"""
trunks:
  description: The selected trunks, as of the last poll.
  returned: always
  type: list
  elements: dict
  contains:
    id:
      description: Trunk id.
      type: str
      sample: 7d1d7f43-0a0e-4c54-a4f8-2ce59e0f0c3e
    name:
      description: Trunk name.
      type: str
      sample: SBC site A
    edge:
      description: The Edge of the trunk (C(id), C(name)).
      type: dict
      sample: {id: 9c2..., name: Edge 1}
    trunk_base:
      description: The trunk base settings (C(id), C(name)).
      type: dict
      sample: {id: 1f0..., name: SBC site A}
    up:
      description: Connected, every proxy answering SIP OPTIONS, in service, and (with O(observed_after)) observed
        after that point.
      type: bool
      sample: true
    observed_at:
      description: With O(observed_after), the latest time the trunk is known to have been observed (its
        C(eventTime), or a later recorded state change); V(null) without O(observed_after) or when unknown.
      type: str
      sample: "2026-11-30T04:41:02.118Z"
    fresh:
      description: Observed after O(observed_after) (always V(true) without it).
      type: bool
      sample: true
    connected:
      description: C(connectedStatus.connected) as reported.
      type: bool
      sample: true
    connected_since:
      description: When the connected state last changed.
      type: str
      sample: "2026-11-25T19:21:51.309000+00:00"
    in_service:
      description: C(inService) (from the trunk base's C(trunk_enabled)).
      type: bool
      sample: true
    enabled:
      description: C(enabled) (the Edge is in service).
      type: bool
      sample: true
    proxies:
      description: SIP OPTIONS state per proxy (C(address), C(options_ok), C(since), C(error)).
      type: list
      elements: dict
      sample: [{address: "sbc1.example.com:5061", options_ok: true, since: "2026-11-25T19:21:51+00:00", error: null}]
    reasons:
      description: Why the trunk is down, from C(errorInfo) and the states above; empty when it is up.
      type: list
      elements: str
      sample: ["sbc1.example.com:5061: TLS certificate verification failed: unable to get local issuer certificate"]
down:
  description: The trunks that are down (C(id), C(name), C(edge), C(reasons)).
  returned: always
  type: list
  elements: dict
  sample: []
all_up:
  description: Every selected trunk is up (with O(observed_after), also observed after it).
  returned: always
  type: bool
  sample: true
up_count:
  description: Number of selected trunks that are up.
  returned: always
  type: int
  sample: 4
total:
  description: Number of selected trunks.
  returned: always
  type: int
  sample: 4
polls:
  description: Number of polls made.
  returned: always
  type: int
  sample: 1
progress:
  description: "One line per poll, for example C(poll 2 at 10s: 3/4 trunks up; down: SBC B on Edge 1)."
  returned: always
  type: list
  elements: str
  sample: ["poll 1 at 0s: 4/4 trunks up"]
observed_after:
  description: The point in time that O(observed_after) resolved to (UTC, ISO 8601).
  returned: when O(observed_after) is set
  type: str
  sample: "2026-11-30T04:40:33.000Z"
api:
  description: What the run cost against the API (C(requests), C(tokens_minted), C(rate_limit_waits)).
  returned: always
  type: dict
  sample: {requests: 2, tokens_minted: 0, rate_limit_waits: []}
"""

import datetime
import time

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.byoc.certificates.plugins.module_utils._errors import InputError, NotFound, WaitTimeout
from ansible_collections.byoc.certificates.plugins.module_utils._genesys import trunks as T
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


def work(module: AnsibleModule) -> dict:
    # The wait's clock starts here, so that loading the SDK and getting a token count against the timeout.
    started = time.monotonic()
    p = module.params
    for field in ("trunk_ids", "trunk_names", "sbc_addresses"):
        for value in p[field]:
            if not isinstance(value, str) or not value.strip():
                raise InputError(field, f"{value!r} is empty")
    if not p["timeout"] > 0 or p["timeout"] == float("inf"):
        raise InputError("timeout", "must be a number of seconds more than 0")
    if not p["poll_interval"] > 0 or p["poll_interval"] == float("inf"):
        raise InputError("poll_interval", "must be a number of seconds more than 0")
    after = None
    if p["observed_after"] is not None:
        after = T.parse_observed_after(p["observed_after"], datetime.datetime.now(datetime.timezone.utc))
    api_url = check_connection_params(p)
    client = client_from_params(p, api_url)
    client.connect()

    bases: dict[str, dict] = {}
    if p["sbc_addresses"]:
        for base in client.list_all(API, "get_telephony_providers_edges_trunkbasesettings", expand=["properties"]):
            wire = client.to_wire(base)
            bases[wire["id"]] = wire

    view: dict = {}

    def look(poll: int) -> tuple[bool, str]:
        listing = client.list_all(API, "get_telephony_providers_edges_trunks", trunk_type="EXTERNAL")
        wires = [client.to_wire(tr) for tr in listing]
        chosen = T.select(wires, bases, p["trunk_ids"], p["trunk_names"], p["sbc_addresses"])
        event_times = observations(client, [tr["id"] for tr in chosen]) if after is not None else {}
        view["states"] = states = [T.health(tr, event_times.get(tr["id"]), after) for tr in chosen]
        return all(s["up"] for s in states), T.progress_line(poll, time.monotonic() - started, states)

    polls = poll_until(look, keep_waiting=p["wait"], started=started, timeout=p["timeout"],
                       poll_interval=p["poll_interval"], log=lambda line: module.log(f"genesys_trunk_info: {line}"),
                       clock=time.monotonic, sleep=time.sleep)
    states = view["states"]
    if polls.timed_out and p["on_timeout"] != "return":
        down = T.down_summary(states)
        why = "; ".join(f"{d['name']} on {d['edge']}: {', '.join(d['reasons'])}" for d in down)
        raise WaitTimeout(
            f"{len(down)} of {len(states)} Genesys Cloud trunks were still down after {p['timeout']:g}s"
            f" ({polls.count} polls at {api_url}): {why}. Check the SBCs' certificates and that their issuing CA is a"
            " REMOTE certificate authority (genesys_edge_certificate).",
            down=down, trunks=states, progress=polls.progress, api=stats(client))

    result = {"changed": False, "trunks": states, "down": T.down_summary(states), "all_up": all(s["up"] for s in states),
              "up_count": sum(1 for s in states if s["up"]), "total": len(states), "polls": polls.count,
              "progress": polls.progress, "api": stats(client)}
    if after is not None:
        result["observed_after"] = T.iso(after)
    return result


def observations(client, ids: list[str]) -> dict[str, object]:
    """TrunkMetrics ``eventTime`` per trunk id (§2.7), ``T.METRICS_CHUNK`` ids per request (§1.4). A batch that meets
    a trunk deleted since the listing (404) gives no observation this poll; the next poll lists again."""
    times: dict[str, object] = {}
    for chunk in T.chunks(ids):
        try:
            items = client.call(API, "get_telephony_providers_edges_trunks_metrics", ",".join(chunk))
        except NotFound:
            continue
        for item in items or []:
            wire = client.to_wire(item)
            trunk_id = (wire.get("trunk") or {}).get("id")
            if trunk_id:
                times[trunk_id] = wire.get("eventTime")
    return times


def argument_spec() -> dict:
    spec = connection_argument_spec()
    spec.update(
        trunk_ids={"type": "list", "elements": "str", "default": []},
        trunk_names={"type": "list", "elements": "str", "default": []},
        sbc_addresses={"type": "list", "elements": "str", "default": []},
        wait={"type": "bool", "default": False},
        timeout={"type": "float", "default": 300.0},
        poll_interval={"type": "float", "default": 10.0},
        on_timeout={"type": "str", "choices": ["fail", "return"], "default": "fail"},
        observed_after={"type": "str"},
    )
    return spec


def main() -> None:
    module = ByocModule(argument_spec=argument_spec(), supports_check_mode=True)
    run_module(module, work)


if __name__ == "__main__":
    main()
