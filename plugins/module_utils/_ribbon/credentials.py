# Copyright (c) 2026, byoc.certificates contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

# Note that this module util is **PRIVATE** to the collection. It can have breaking changes at any time.

"""The Ribbon API user from the environment, per platform.

The AWX credential types ``BYOC Ribbon SBC Core ...`` and ``BYOC Ribbon SBC Edge ...`` (extensions/awx/credential_types)
used to inject the same ``RIBBON_USERNAME`` / ``RIBBON_PASSWORD``, so a job template with both credentials silently
got one of them overwritten. Each now sets its own variables, and the modules read the variable of the platform
the task is for; the shared names are still read after them, for compatibility. ansible-core's ``env_fallback`` is
static (it cannot depend on ``platform``), so the lookup is done here, before the module's work, and the value is
added to the module's ``no_log`` values at once, as ansible-core does for a fallback.

Order: the option given in the task, then the platform's variable, then the shared one.
"""

from __future__ import annotations

import os
import typing as t

from ansible_collections.byoc.certificates.plugins.module_utils._errors import InputError
from ansible_collections.byoc.certificates.plugins.module_utils._module import secret_forms

# (platform, option) -> environment variables, first set one wins. test_awx_credentials.py reads this table.
ENV_CREDENTIALS: dict[tuple[str, str], list[str]] = {
    ("core", "username"): ["RIBBON_CORE_USERNAME", "RIBBON_USERNAME"],
    ("core", "password"): ["RIBBON_CORE_PASSWORD", "RIBBON_PASSWORD"],
    ("edge", "username"): ["RIBBON_EDGE_USERNAME", "RIBBON_USERNAME"],
    ("edge", "password"): ["RIBBON_EDGE_PASSWORD", "RIBBON_PASSWORD"],
}
SECRET_OPTIONS = {"password"}


def from_environment(module: t.Any) -> None:
    """Fill ``username`` and ``password`` of ``module.params`` that the task did not set from the platform's
    environment variables; raise ``InputError`` naming the option and the variables when neither has a value."""
    params = module.params
    platform = params.get("platform")
    for option in ("username", "password"):
        if params.get(option) not in (None, ""):
            continue
        names = ENV_CREDENTIALS.get((platform, option), [])
        value = next((os.environ[n] for n in names if os.environ.get(n, "") != ""), None)
        if value is None:
            raise InputError(option, f"required: set the option or one of the environment variables {', '.join(names)}"
                             " (AWX: attach the Ribbon SBC credential of this platform to the job template)")
        if option in SECRET_OPTIONS:
            value = value.strip()  # as ByocModule does for no_log options
            module.no_log_values.update(secret_forms(value))
        params[option] = value


def with_platform_credentials(work: t.Callable[[t.Any], dict]) -> t.Callable[[t.Any], dict]:
    """``work`` preceded by :func:`from_environment` (for ``run_module``, so that a missing value fails cleanly)."""
    def run(module: t.Any) -> dict:
        from_environment(module)
        return work(module)
    return run
