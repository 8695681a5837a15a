# Copyright (c) 2026, byoc.certificates contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Edge health as data (issue 15): the healthy rule, busy against a threshold, which Edges serve which selector,
the verdicts and their reasons, and the action plugin's combination of wait rounds (pure logic, no network)."""

from __future__ import annotations

import pytest

from ansible_collections.byoc.certificates.plugins.action import genesys_edge_info as action
from ansible_collections.byoc.certificates.plugins.module_utils._genesys import edges as E
from ansible_collections.byoc.certificates.plugins.plugin_utils._rounds import Rounds


def edge(eid="e1", name="Edge 1", online="ONLINE", code="ACTIVE", state="active", count=0):
    out = {"id": eid, "name": name, "onlineStatus": online, "statusCode": code, "state": state}
    if count is not None:
        out["conversationCount"] = count
    return out


def trunk(tid, edge_id, base_id):
    return {"id": tid, "name": f"trunk {tid}", "edge": {"id": edge_id, "name": edge_id}, "trunkBase": {"id": base_id}}


def base(bid, proxies):
    return {"id": bid, "properties": {"trunk_transport_serverProxyList": {"value": {"instance": proxies}}}}


@pytest.mark.parametrize("fields,reason", [
    ({"online": "OFFLINE"}, "onlineStatus is OFFLINE, not ONLINE"),
    ({"code": "INACTIVE"}, "statusCode is INACTIVE, not ACTIVE"),
    ({"code": "outdated_sdk_version"}, "statusCode is outdated_sdk_version, not ACTIVE"),  # an enum the SDK lacks
    ({"state": "inactive"}, "state is inactive, not active"),
    ({"online": None}, "onlineStatus is not reported, not ONLINE"),
])
def test_only_online_active_active_is_healthy(fields, reason):
    s = E.edge_state(edge(**fields), None)
    assert s["healthy"] is False and s["reasons"] == [reason]
    assert E.edge_state(edge(), None)["healthy"] is True


@pytest.mark.parametrize("count,limit,busy", [(5, 5, False), (6, 5, True), (0, 0, False), (None, 5, True),
                                              (100, None, False), (True, 5, True)])
def test_busy_means_above_the_threshold_and_an_unreported_count_is_busy(count, limit, busy):
    assert E.edge_state(edge(count=count), limit)["busy"] is busy


def test_selectors_map_to_the_edges_of_their_trunks_and_unmatched_ones_are_named():
    trunks = [trunk("t1", "e1", "b1"), trunk("t2", "e1", "b2"), trunk("t3", "e2", "b2")]
    bases = {"b1": base("b1", ["sbc1.lab.test:5061"]), "b2": base("b2", ["sbc2.lab.test:5061"])}
    index = {"e1": edge(), "e2": edge("e2", "Edge 2")}
    selected, unmatched = E.match_selectors(trunks, bases, index, ["t3", "t9"], ["sbc2.lab.test", "sbc9.lab.test"],
                                            ["e2", "e9"])
    by = {s["selector"]: s for s in selected}
    assert by["t3"]["edge_ids"] == ["e2"]
    assert by["sbc2.lab.test"]["edge_ids"] == ["e1", "e2"]  # a bare host matches any port
    assert by["e2"]["edge_ids"] == ["e2"] and by["e2"]["trunks"] == []
    assert unmatched == ["trunk_ids: t9", "sbc_addresses: sbc9.lab.test", "edge_ids: e9"]


def test_verdicts_unhealthy_wins_over_busy_and_a_missing_edge_is_unhealthy():
    states = {"e1": E.edge_state(edge(count=9), 5, [12]), "e2": E.edge_state(edge("e2", "Edge 2", online="OFFLINE"), 5)}
    selected = [{"selector": "a", "kind": "sbc_addresses", "trunks": [], "edge_ids": ["e1"]},
                {"selector": "b", "kind": "sbc_addresses", "trunks": [], "edge_ids": ["e1", "e2"]},
                {"selector": "c", "kind": "trunk_ids", "trunks": [], "edge_ids": ["e7"]}]
    v = E.judge(states, selected, 5, 61.2, 3)
    a, b, c = v["selected"]
    assert a["status"] == "busy" and a["reason"] == ("Edge 1 carries 9 conversations, more than 5 (seen: 12, 9);"
                                                     " waited 61s (3 polls) for at most 5 conversations per Edge")
    assert b["status"] == "unhealthy" and b["reason"] == "Edge Edge 2: onlineStatus is OFFLINE, not ONLINE"
    assert c["status"] == "unhealthy" and "e7" in c["reason"]
    assert v["deferred"] is True and v["healthy"] is False
    assert v["waiting_on"] == ["Edge 1"]  # the OFFLINE Edge is not waited for
    assert "a: busy:" in E.summary(v, []) and "x: 1: no trunk or Edge matches" in E.summary(v, ["x: 1"])


def test_progress_line_says_what_is_busy_and_what_is_unhealthy():
    chosen = [E.edge_state(edge(count=31), 20), E.edge_state(edge("e2", "Edge 2", code="RMA"), 20)]
    assert E.progress_line(2, 60.4, chosen, 20) == "poll 2 at 60s: 2 Edges, 1 healthy; unhealthy: Edge 2; busy: Edge 1 (31 > 20)"
    assert E.progress_line(1, 0, chosen[:1], None) == "poll 1 at 0s: 1 Edges, 1 healthy"


def test_the_action_judges_the_whole_wait_and_later_rounds_ask_only_for_the_edges():
    sel = [{"selector": "sbc1:5061", "kind": "sbc_addresses", "trunks": [], "edge_ids": ["e1"]}]
    first = {"selected": sel, "unmatched": [], "edges": [E.edge_state(edge(count=30), 5)], "polls": 1, "waited": 0.5,
             "progress": ["poll 1 at 0s: 1 Edges, 1 healthy; busy: Edge 1 (30 > 5)"], "max_conversations": 5,
             "api": {"requests": 3, "tokens_minted": 1, "rate_limit_waits": []}}
    args = action.round_args({"sbc_addresses": ["sbc1:5061"], "max_conversations": 5, "wait": True}, 29.0, first)
    assert args["edge_ids"] == ["e1"] and args["sbc_addresses"] == [] and args["timeout"] == 29.0
    assert action.round_args({"wait": True}, 0, None) == {"wait": False}
    last_edges = [E.edge_state(edge(count=8), 5, [20]), ]
    last = {"selected": [{"selector": "e1", "kind": "edge_ids", "trunks": [], "edge_ids": ["e1"]}], "unmatched": [],
            "edges": last_edges, "polls": 2, "waited": 30.0, "progress": ["poll 1 at 0s: x", "poll 2 at 30s: y"],
            "max_conversations": 5, "api": {"requests": 2, "tokens_minted": 0, "rate_limit_waits": []}}
    rounds = Rounds()
    rounds.results, rounds.starts = [first, last], [0.0, 1.0]
    out = action.combine(rounds)
    assert out["polls"] == 3 and out["api"]["requests"] == 5 and out["waited"] == 31.0
    assert out["progress"] == ["poll 1 at 0s: 1 Edges, 1 healthy; busy: Edge 1 (30 > 5)", "poll 2 at 1s: x",
                               "poll 3 at 31s: y"]
    assert out["selected"][0]["selector"] == "sbc1:5061" and out["selected"][0]["status"] == "busy"
    assert "(seen: 30, 20, 8); waited 31s (3 polls)" in out["selected"][0]["reason"]
    assert out["deferred"] is True and out["msg"].startswith("sbc1:5061: busy:")
