# Copyright (c) 2026, byoc.certificates contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

# Note that this plugin util is **PRIVATE** to the collection. It can have breaking changes at any time.

"""``run_action``: the one argument check and failure path of the in-process action plugins.

The action plugins that do their work themselves (``fleet_plan``, ``fleet_report``, ``tls_endpoint_info``,
``certificate_store_lease``, ...) never construct ``ByocModule``, so ansible-core's ``validate_argument_spec`` and
the action's own result are all that stands between the task's secrets and the output. ansible-core does not mask
an action plugin's result with the ``no_log`` values of its argument spec, and its validation messages can quote
them: a type error in a dict or list-of-dicts option with secret sub-options (ansible/ansible#81672: "Value '...'
in the sub parameter field ... must be a dict"), or a secret given by mistake to another option ("'...' cannot be
converted to an int"). ``run_action`` does for these plugins what ``ByocModule`` does for modules
(``module_utils/_module.py``):

- every ``no_log`` value of the raw task arguments is collected with ``sensitive_strings`` (any depth, any wrong
  type, every PEM private key block of any option) before validation, and masked (``********``) in a failed
  result (message, details, traceback) and in the warnings;
- surrounding whitespace is stripped from ``no_log`` string options after validation;
- a crash inside ansible-core's argument validation becomes a clean failure naming no value;
- the work's exceptions become failures through ``_runner.failure_of`` (type and place only, unless a
  ``ByocError``), outside the ``except`` block.

Usage, in an action plugin's ``run``::

    result = super().run(tmp, task_vars)
    return run_action(self, result, "fleet_plan", _fleet_plan.ARGUMENT_SPEC,
                      lambda args: _fleet_plan.run(args, ...))

``work(args)`` gets the validated arguments and returns what to add to the result (``warnings`` included).
"""

from __future__ import annotations

import typing as t

from ansible.errors import AnsibleActionFail
from ansible.module_utils.common.parameters import remove_values

from ansible_collections.byoc.certificates.plugins.module_utils._module import sensitive_strings, strip_no_log_strings
from ansible_collections.byoc.certificates.plugins.module_utils._runner import failure_of

_PREFIX = "Validation of arguments failed:\n"  # older ansible-core releases put this before the messages
_CRASHES = (TypeError, ValueError, AttributeError, KeyError, IndexError)


def _validate(action: t.Any, name: str, argument_spec: dict, checks: dict) -> tuple[dict | None, str | None]:
    """The validated arguments, or the message saying why they are not valid."""
    crash: str | None = None
    try:
        _validation, args = action.validate_argument_spec(argument_spec=argument_spec, **checks)
    except AnsibleActionFail as exc:
        # ansible-core's messages name the option and its type; where they quote a value, it is masked below.
        return None, str(getattr(exc, "message", "") or "").replace(_PREFIX, "").strip() or f"{name}: invalid options"
    except _CRASHES as exc:
        crash = type(exc).__name__
    if crash is not None:
        return None, (f"The options of {name} could not be validated: ansible-core's argument validation failed"
                      f" with {crash}. An option has a type it cannot handle (for example a list or a string where"
                      " a dictionary belongs); check the types of the options given against the module"
                      " documentation.")
    strip_no_log_strings(argument_spec, args)
    return args, None


def run_action(action: t.Any, result: dict, name: str, argument_spec: dict, work: t.Callable[[dict], dict],
               **checks: t.Any) -> dict:
    """Validate the task's arguments against ``argument_spec`` (``checks``: ``required_together`` and the other
    keywords of ``validate_argument_spec``), run ``work(args)`` and merge what it returns into ``result``. Any
    failure (bad arguments, a ``ByocError``, an unexpected exception) sets ``failed`` and ``msg`` with no value of
    a ``no_log`` option in it. Returns ``result``."""
    raw = getattr(action._task, "args", None) or {}
    try:
        secrets = sensitive_strings(argument_spec, raw)
    except Exception:  # pylint: disable=broad-exception-caught  # pragma: no cover - sensitive_strings never raises
        secrets = set()
    args, invalid = _validate(action, name, argument_spec, checks)
    failure: dict | None = None
    out: dict = {}
    if invalid is not None:
        failure = {"msg": invalid}
    else:
        try:
            out = work(args) or {}
        except Exception as exc:  # pylint: disable=broad-exception-caught
            failure = failure_of(exc, name)
    # Outside the except block: nothing can attach the text of the exception being handled.
    if failure is not None:
        result.update(remove_values(failure, secrets) if secrets else failure)
        result["failed"] = True
        return result
    warnings = out.pop("warnings", None)
    result.update(out)
    if warnings:
        result["warnings"] = remove_values(list(warnings), secrets) if secrets else list(warnings)
    return result
