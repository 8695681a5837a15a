# Copyright (c) 2026, byoc.certificates contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Controller side of ``fleet_issue``: every due certificate group of a batch issued in one call, in-process, with
threads (issue 13, docs/DEVELOPING.md "Batch issuance (fleet_issue)").

Why an action plugin: the role path ran about 30 Ansible tasks per group (each a Python process), five groups at a
time. Here one ``run_once`` task orders for every group of the batch concurrently, shares the ACME account, the root
and the DNS providers, and waits once for every TXT record (``module_utils/_fleet_issue.py``). Progress (lease waits,
the DNS wait) is printed while it runs. The module of the same name documents it and runs the same code when the
action is bypassed.

The result holds the private keys (``private_keys``): register it with ``no_log: true``; a result that holds a key
is hidden anyway (``_ansible_no_log``), so a forgotten ``no_log`` prints no key. Errors follow the module
rules: bad input names the field; a group's failure is data (``groups[g].failed``, ``msg``), never a failure of the
batch; anything unexpected is reported by type and place only (``_runner.failure_of``).
"""

from __future__ import annotations

from ansible.plugins.action import ActionBase
from ansible.utils.display import Display

from ansible_collections.byoc.certificates.plugins.module_utils import _fleet_issue
from ansible_collections.byoc.certificates.plugins.module_utils._http import scrub
from ansible_collections.byoc.certificates.plugins.plugin_utils._action import run_action

display = Display()


class ActionModule(ActionBase):
    TRANSFERS_FILES = False
    _requires_connection = False

    def run(self, tmp=None, task_vars=None):
        result = super().run(tmp, task_vars)
        del tmp

        def work(args):
            # the DNS provider options are free-form: their secrets are found by name and masked here too
            secrets = _fleet_issue.secrets_of(args)
            warnings: list[str] = []

            def progress(line: str) -> None:
                display.display(f"fleet_issue: {scrub(line, secrets)}")

            out = _fleet_issue.run(args, check_mode=bool(self._play_context.check_mode), warn=warnings.append,
                                   progress=progress)
            return dict(out, warnings=[scrub(w, secrets) for w in warnings])

        result = run_action(self, result, "fleet_issue", _fleet_issue.ARGUMENT_SPEC, work)
        if result.get("private_keys"):
            # A result that holds a private key is hidden as if the task had no_log, also when the user forgot it:
            # no key may print, not at -vvv (ansible-core honours a result's own _ansible_no_log).
            result["_ansible_no_log"] = True
        return result
