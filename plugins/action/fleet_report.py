# Copyright (c) 2026, byoc.certificates contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Controller side of ``fleet_report``: the whole report in one in-process call.

The report is rendered from data the playbook already holds (the groups' outcomes), and its files and the
heartbeat belong to the controller (or the AWX execution node), not to an inventory host. So it is one action on the
controller: no module transfer, no new interpreter, no connection (``_requires_connection = False``), and the table
goes straight to the console with ``Display`` (a module cannot print). The work is in
``module_utils/_fleet_report.py``, shared with the module of the same name.

A heartbeat that cannot be sent is a warning, never a failure (the run's outcome is what it is). The heartbeat URL
is a secret (a healthchecks.io ping URL's path is its key): it is never printed, only its scheme and host.
"""

from __future__ import annotations

from ansible.module_utils.urls import open_url
from ansible.plugins.action import ActionBase
from ansible.utils.display import Display

from ansible_collections.byoc.certificates.plugins.module_utils import _fleet_report
from ansible_collections.byoc.certificates.plugins.plugin_utils._action import run_action

display = Display()


class ActionModule(ActionBase):
    TRANSFERS_FILES = False
    _requires_connection = False

    def run(self, tmp=None, task_vars=None):
        result = super().run(tmp, task_vars)
        del tmp

        def work(args):
            report = _fleet_report.run(args, check_mode=bool(self._task.check_mode), opener=open_url)
            if args.get("print_table", True):
                display.display("\n".join(["", "byoc.certificates fleet report", *report["table"], ""]))
            return report

        return run_action(self, result, "fleet_report", _fleet_report.ARGUMENT_SPEC, work)
