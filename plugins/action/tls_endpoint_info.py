# Copyright (c) 2026, byoc.certificates contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Controller side of ``tls_endpoint_info``: the probes run here, in-process, with threads.

Why an action plugin: a module run costs a new Python interpreter and the collection's imports (about 0.6 s of CPU
on the reference machine, issue 11), and it only calls the network from the controller anyway. Here one task
probes every endpoint of the fleet concurrently (``concurrency`` at a time) inside the worker that runs the task,
with no module transfer and no connection to the inventory host (``_requires_connection = False``). The module of the
same name has the documentation and the same code path (``module_utils/_tls_probe.py``) for when the action is
bypassed.

Errors follow the module's rules (DEVELOPING.md): bad input is reported with the field and the gate's words; an
unexpected exception is reported by its type and place only (``plugin_utils/_action.run_action``), never by its text, which could
quote the client key.
"""

from __future__ import annotations

from ansible.plugins.action import ActionBase

from ansible_collections.byoc.certificates.plugins.module_utils import _tls_probe
from ansible_collections.byoc.certificates.plugins.plugin_utils._action import run_action


class ActionModule(ActionBase):
    TRANSFERS_FILES = False
    _requires_connection = False

    def run(self, tmp=None, task_vars=None):
        result = super().run(tmp, task_vars)
        del tmp
        return run_action(self, result, "tls_endpoint_info", _tls_probe.ARGUMENT_SPEC, _tls_probe.run,
                          required_together=_tls_probe.REQUIRED_TOGETHER)
