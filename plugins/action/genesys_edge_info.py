# Copyright (c) 2026, byoc.certificates contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Controller side of ``genesys_edge_info``: live progress while waiting for busy Edges to calm down.

With ``wait: true`` and ``max_conversations`` (and not in check mode) the module runs in rounds of at most
``ROUND_SECONDS`` (``plugin_utils/_rounds.py``); after each round that still waits, one line says what is waited
on, for how long, and the conversation counts seen so far. The first round only looks (one Edge listing), which
also measures what a module call costs beyond its wait, so the rounds end by the task's ``timeout``, never after
it. At the end the verdicts are judged again over the whole wait (its total time, every poll, every count seen),
so a deferral's reason describes the whole wait, not its last round.
"""

from __future__ import annotations

from ansible.module_utils.parsing.convert_bool import boolean
from ansible.plugins.action import ActionBase

from ansible_collections.byoc.certificates.plugins.module_utils._genesys import edges as E
from ansible_collections.byoc.certificates.plugins.module_utils._genesys.polling import merge_rounds
from ansible_collections.byoc.certificates.plugins.plugin_utils._rounds import Rounds, run_in_rounds

MODULE = "byoc.certificates.genesys_edge_info"
ROUND_SECONDS = 30


def round_args(args: dict, seconds: float, first: dict | None) -> dict:
    """The first round looks once; later rounds wait and ask for the first round's Edges by id, so that they cost
    one Edge listing per poll and no trunk or trunk base listing."""
    if seconds <= 0 or first is None:
        return dict(args, wait=False)
    ids = sorted({eid for sel in first.get("selected") or [] for eid in sel.get("edge_ids") or []})
    return dict(args, timeout=seconds, trunk_ids=[], sbc_addresses=[], edge_ids=ids, on_unmatched="return")


def combine(rounds: Rounds) -> dict:
    """One result for the whole wait: the last round's Edges, with every round's polls, progress, counts and API
    cost, judged again (per selector of the first round) with the total time waited."""
    last = rounds.last
    first = rounds.results[0]
    result = dict(last)
    if rounds.failed:
        return result
    merged = merge_rounds(rounds.results, rounds.starts)
    seen = E.merge_seen([r.get("edges") or [] for r in rounds.results])
    states = {s["id"]: dict(s, seen_counts=seen.get(s["id"], s.get("seen_counts") or [])) for s in last.get("edges") or []}
    waited = rounds.starts[-1] + float(last.get("waited") or 0)
    verdicts = E.judge(states, list(first.get("selected") or []), last.get("max_conversations"), waited, merged["polls"])
    unmatched = list(first.get("unmatched") or [])
    result.update(verdicts, **merged, edges=list(states.values()), unmatched=unmatched, waited=round(waited, 1),
                  msg=E.summary(verdicts, unmatched))
    return result


class ActionModule(ActionBase):
    TRANSFERS_FILES = False

    def run(self, tmp=None, task_vars=None):
        result = super().run(tmp, task_vars)
        args = dict(self._task.args)
        try:
            wait = boolean(args.get("wait", False), strict=False)
            total = float(args.get("timeout", 300))
            limit = args.get("max_conversations")
        except (TypeError, ValueError):
            wait, total, limit = False, 0.0, None  # the module reports the bad value with its own message
        if not wait or limit in (None, "") or self._task.check_mode or not 0 < total < float("inf"):
            result.update(self._execute_module(module_name=MODULE, module_args=args, task_vars=task_vars))
            return result

        def progress(res, elapsed):
            last = (res.get("progress") or ["no poll yet"])[-1]
            waiting = res.get("waiting_on") or []
            return (f"genesys_edge_info: waiting up to {total:g}s for {len(waiting)} busy Edge(s)"
                    f" ({', '.join(waiting[:E.SHOWN])}) to carry at most {limit} conversations,"
                    f" {elapsed:.0f}s so far: {last.split(': ', 1)[-1]}")

        seen: list[dict] = []

        def execute(module_args):
            res = self._execute_module(module_name=MODULE, module_args=module_args, task_vars=task_vars)
            seen.append(res)
            return res

        rounds = run_in_rounds(
            execute, args, total=total, round_seconds=ROUND_SECONDS, done=lambda res: not res.get("waiting_on"),
            round_args=lambda a, seconds: round_args(a, seconds, seen[0] if seen else None),
            progress=progress, keep_deadline=True)
        result.update(combine(rounds))
        return result
