# Copyright (c) 2026, byoc.certificates contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Controller side of ``certificate_store_lease``: take a lease in the store, showing progress while another run
(an AWX job slice) holds it.

Why an action plugin (docs/DEVELOPING.md, "Layout"): a module cannot print while it waits, and a wait of minutes for
another slice's ACME order must say what it waits for, for how long, who holds the lease and until when. The work
is a few store reads and conditional writes, done in-process (``module_utils/_store/lease.py``). The default holder
is the ``ansible-playbook`` process that runs the task (this plugin runs in a worker forked from it), so every task
of one run, on every host, acts for the same holder.

Errors follow the module rules: bad input names the field; anything unexpected is reported by type and place only
(``plugin_utils/_action.run_action``); the S3 keys and the passphrase are never in the result or a message.
"""

from __future__ import annotations

import os

from ansible.plugins.action import ActionBase
from ansible.utils.display import Display

from ansible_collections.byoc.certificates.plugins.module_utils._store import lease as _lease
from ansible_collections.byoc.certificates.plugins.plugin_utils._action import run_action

display = Display()


class ActionModule(ActionBase):
    TRANSFERS_FILES = False
    _requires_connection = False

    def run(self, tmp=None, task_vars=None):
        result = super().run(tmp, task_vars)
        del tmp
        host = (task_vars or {}).get("inventory_hostname", "")

        def progress(line: str) -> None:
            display.display(f"certificate_store_lease [{host}]: {line}")

        def work(args):
            out = _lease.run_task(args, check_mode=bool(self._task.check_mode), progress=progress,
                                  holder_pid=os.getppid())
            warning = out.pop("warning", None)
            return dict(out, warnings=[warning] if warning else [])

        return run_action(self, result, "certificate_store_lease", _lease.argument_spec(), work)
