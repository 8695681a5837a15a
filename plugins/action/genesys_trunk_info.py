# Copyright (c) 2026, byoc.certificates contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Controller side of ``genesys_trunk_info``: live progress while waiting for trunks to connect.

With ``wait: true`` (and not in check mode) the module runs in rounds of about ``ROUND_SECONDS``, each with
``on_timeout: return``; after each round that is not done one line says how many trunks are up and which are
down. The token cache of the shared client means the rounds reuse one OAuth token.
"""

from __future__ import annotations

from ansible.module_utils.parsing.convert_bool import boolean
from ansible.plugins.action import ActionBase

from ansible_collections.byoc.certificates.plugins.plugin_utils._rounds import run_in_rounds

MODULE = "byoc.certificates.genesys_trunk_info"
ROUND_SECONDS = 30


class ActionModule(ActionBase):
    TRANSFERS_FILES = False

    def run(self, tmp=None, task_vars=None):
        result = super().run(tmp, task_vars)
        args = dict(self._task.args)
        try:
            wait = boolean(args.get("wait", False), strict=False)
            total = float(args.get("timeout", 300))
        except (TypeError, ValueError):
            wait, total = False, 0.0  # the module reports the bad value with its own message
        if not wait or self._task.check_mode or total <= 0:
            result.update(self._execute_module(module_name=MODULE, module_args=args, task_vars=task_vars))
            return result

        def progress(res, elapsed):
            last = (res.get("progress") or ["no poll yet"])[-1]
            return (f"genesys_trunk_info: waiting for {res.get('total', '?')} trunks to be connected,"
                    f" {elapsed:.0f}s of {total:g}s: {last.split(': ', 1)[-1]}")

        rounds = run_in_rounds(
            lambda a: self._execute_module(module_name=MODULE, module_args=a, task_vars=task_vars), args,
            total=total, round_seconds=ROUND_SECONDS, done=lambda res: bool(res.get("all_up")),
            round_args=lambda a, secs: dict(a, timeout=max(1, secs), on_timeout="return"), progress=progress)
        last = rounds.last
        result.update(last)
        if rounds.failed:
            return result
        result["polls"] = sum(int(r.get("polls") or 0) for r in rounds.results)
        result["progress"] = [line for r in rounds.results for line in (r.get("progress") or [])]
        result["api"] = {
            "requests": sum(int((r.get("api") or {}).get("requests") or 0) for r in rounds.results),
            "tokens_minted": sum(int((r.get("api") or {}).get("tokens_minted") or 0) for r in rounds.results),
            "rate_limit_waits": [w for r in rounds.results for w in ((r.get("api") or {}).get("rate_limit_waits") or [])],
        }
        if not last.get("all_up") and args.get("on_timeout", "fail") != "return":
            down = last.get("down") or []
            why = "; ".join(f"{d['name']} on {d['edge']}: {', '.join(d['reasons'])}" for d in down)
            result["failed"] = True
            result["msg"] = (
                f"{len(down)} of {last.get('total')} Genesys Cloud trunks were still down after {total:g}s"
                f" ({result['polls']} polls): {why}. Check the SBCs' certificates and that their issuing CA is a"
                " REMOTE certificate authority (genesys_edge_certificate).")
        return result
