# Copyright (c) 2026, byoc.certificates contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Controller side of ``fleet_plan``: the plan of a whole batch, in-process, with threads.

Why an action plugin (issue 11, docs/DEVELOPING.md "The fleet plan"): a module costs a new interpreter per host and
task (about 0.6 s of CPU), while the plan only calls APIs from the controller. One ``run_once`` task here reads every
device of the batch concurrently with the vendors' own read functions, reads each group's store entry once, asks ARI
at most once per certificate and applies the pure decision (``module_utils/_fleet_plan.py``, ``_renewal.py``).
The module of the same name documents it and runs the same code when the action is bypassed.

Errors follow the module rules: bad input names the field; a device that cannot be read is a per-host entry of
``failed_hosts`` (not a failure of the batch); anything unexpected is reported by type and place only
(``plugin_utils/_action.run_action``), never by its text, which could quote a password.
"""

from __future__ import annotations

from ansible.plugins.action import ActionBase

from ansible_collections.byoc.certificates.plugins.module_utils import _fleet_plan
from ansible_collections.byoc.certificates.plugins.plugin_utils._action import run_action


class ActionModule(ActionBase):
    TRANSFERS_FILES = False
    _requires_connection = False

    def run(self, tmp=None, task_vars=None):
        result = super().run(tmp, task_vars)
        del tmp

        def work(args):
            warnings: list[str] = []
            out = _fleet_plan.run(args, check_mode=bool(self._play_context.check_mode), warn=warnings.append)
            return dict(out, warnings=warnings)

        return run_action(self, result, "fleet_plan", _fleet_plan.ARGUMENT_SPEC, work)
