# Copyright (c) 2026, byoc.certificates contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Controller side of ``genesys_trunk_info``: live progress while waiting for trunks to connect.

With ``wait: true`` (and not in check mode) the module runs in rounds of at most ``ROUND_SECONDS``, each with
``on_timeout: return``; after each round that is not done one line says how many trunks are up and which are
down. The first round only looks (``wait: false``), which also measures what a module call costs beyond its wait,
so that the rounds end by the task's ``timeout`` and never after it. The token cache of the shared client means
the rounds reuse one OAuth token.

``observed_after: now`` is resolved here, once, before the first round: every round must compare with the start of
the task, not with its own start.
"""

from __future__ import annotations

import datetime

from ansible.module_utils.parsing.convert_bool import boolean
from ansible.plugins.action import ActionBase

from ansible_collections.byoc.certificates.plugins.module_utils._genesys.polling import merge_rounds
from ansible_collections.byoc.certificates.plugins.module_utils._genesys.trunks import iso
from ansible_collections.byoc.certificates.plugins.plugin_utils._rounds import Rounds, run_in_rounds

MODULE = "byoc.certificates.genesys_trunk_info"
ROUND_SECONDS = 30


def resolve_now(args: dict, now: datetime.datetime) -> dict:
    """``observed_after: now`` as the controller's time at the start of the task (UTC, ISO 8601)."""
    value = args.get("observed_after")
    if isinstance(value, str) and value.strip().lower() == "now":
        return dict(args, observed_after=iso(now))
    return args


def round_args(args: dict, seconds: float) -> dict:
    if seconds <= 0:
        return dict(args, wait=False)  # the first round: look once
    return dict(args, timeout=seconds, on_timeout="return")


def combine(rounds: Rounds, args: dict, total: float) -> dict:
    """One result for the whole wait: the last round's state, with the polls, progress and API cost of every round
    (progress numbered across rounds, times from the start of the wait)."""
    last = rounds.last
    result = dict(last)
    if rounds.failed:
        return result
    merged = merge_rounds(rounds.results, rounds.starts)
    result.update(merged)
    polls = merged["polls"]
    if not last.get("all_up") and args.get("on_timeout", "fail") != "return":
        down = last.get("down") or []
        why = "; ".join(f"{d['name']} on {d['edge']}: {', '.join(d['reasons'])}" for d in down)
        result["failed"] = True
        result["msg"] = (
            f"{len(down)} of {last.get('total')} Genesys Cloud trunks were still down after {total:g}s"
            f" ({polls} polls): {why}. Check the SBCs' certificates and that their issuing CA is a"
            " REMOTE certificate authority (genesys_edge_certificate).")
    return result


class ActionModule(ActionBase):
    TRANSFERS_FILES = False

    def run(self, tmp=None, task_vars=None):
        result = super().run(tmp, task_vars)
        args = resolve_now(dict(self._task.args), datetime.datetime.now(datetime.timezone.utc))
        try:
            wait = boolean(args.get("wait", False), strict=False)
            total = float(args.get("timeout", 300))
        except (TypeError, ValueError):
            wait, total = False, 0.0  # the module reports the bad value with its own message
        if not wait or self._task.check_mode or not 0 < total < float("inf"):
            result.update(self._execute_module(module_name=MODULE, module_args=args, task_vars=task_vars))
            return result

        def progress(res, elapsed):
            last = (res.get("progress") or ["no poll yet"])[-1]
            return (f"genesys_trunk_info: waiting for {res.get('total', '?')} trunks to be connected,"
                    f" {elapsed:.0f}s of {total:g}s: {last.split(': ', 1)[-1]}")

        rounds = run_in_rounds(
            lambda a: self._execute_module(module_name=MODULE, module_args=a, task_vars=task_vars), args,
            total=total, round_seconds=ROUND_SECONDS, done=lambda res: bool(res.get("all_up")),
            round_args=round_args, progress=progress, keep_deadline=True)
        result.update(combine(rounds, args, total))
        return result
