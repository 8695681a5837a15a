# Copyright (c) 2026, byoc.certificates contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Controller side of ``dns01_record``: live progress while waiting for propagation.

A module cannot print while it runs, so with ``wait: true`` (and not in check mode) the module is run in rounds
of at most ``ROUND_SECONDS``, each with ``on_wait_timeout: return``. The first round writes; later rounds find
nothing to change and only wait. After each round that is not done, one progress line is printed.
"""

from __future__ import annotations

from ansible.module_utils.parsing.convert_bool import boolean
from ansible.plugins.action import ActionBase
from ansible_collections.byoc.certificates.plugins.module_utils._dns.record import left_text, wait_summary
from ansible_collections.byoc.certificates.plugins.plugin_utils._rounds import run_in_rounds

MODULE = "byoc.certificates.dns01_record"
ROUND_SECONDS = 10


class ActionModule(ActionBase):
    TRANSFERS_FILES = False

    def run(self, tmp=None, task_vars=None):
        result = super().run(tmp, task_vars)
        args = dict(self._task.args)
        try:
            wait = boolean(args.get("wait", False), strict=False)
            total = int(args.get("wait_timeout", 300))
        except (TypeError, ValueError):
            wait, total = False, 0  # let the module report the bad value with its own message
        if not wait or self._task.check_mode or total < 0:
            result.update(self._execute_module(module_name=MODULE, module_args=args, task_vars=task_vars))
            return result

        user_return = args.get("on_wait_timeout", "fail") == "return"
        state = args.get("state", "present")

        def progress(res, elapsed):
            statuses = res.get("nameserver_status") or []
            return (f"dns01_record: waiting for TXT {res.get('record')} on {len(statuses)} nameservers,"
                    f" {elapsed:.0f}s of {total}s: {wait_summary(res.get('record'), statuses, state)}")

        rounds = run_in_rounds(
            lambda a: self._execute_module(module_name=MODULE, module_args=a, task_vars=task_vars), args,
            total=total, round_seconds=ROUND_SECONDS, done=lambda res: bool(res.get("propagated")),
            round_args=lambda a, secs: dict(a, wait_timeout=secs, on_wait_timeout="return"), progress=progress)
        last, changed = rounds.last, rounds.changed
        if rounds.failed:
            result.update(last)
            result["changed"] = changed
            return result
        waited = sum(float(r.get("wait_seconds") or 0) for r in rounds.results)
        writer = next((r for r in rounds.results if r.get("added") or r.get("removed")), None)

        result.update(last)
        result["changed"] = changed
        result["wait_seconds"] = round(waited, 3)
        if writer is not None:
            result["added"], result["removed"] = writer.get("added", []), writer.get("removed", [])
            result["txt_before"] = writer.get("txt_before", [])
            if "diff" in writer:
                result["diff"] = writer["diff"]
        if not last.get("propagated") and not user_return:
            statuses = last.get("nameserver_status") or []
            result["failed"] = True
            result["msg"] = (
                f"Timed out (wait_timeout {total}s, {rounds.elapsed:.0f}s elapsed) waiting for all"
                f" {len(statuses)} nameservers of {last.get('zone')} to"
                f" {'serve' if state == 'present' else 'stop serving'} the TXT values at"
                f" {last.get('record')}: {wait_summary(last.get('record'), statuses, state)}."
                " Check that the secondaries receive NOTIFY and zone transfers from the primary (or the provider has"
                " finished publishing), or raise wait_timeout. "
                + left_text(last.get("record"), last.get("zone"), last.get("txt_after") or [], state))
        return result
