# Copyright (c) 2026, byoc.certificates contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

# Note that this module util is **PRIVATE** to the collection. It can have breaking changes at any time.

"""The one place where exceptions become ``fail_json``.

Modules call ``run_module(module, work)`` where ``work(module)`` returns the result dict. Known errors
(``ByocError``) fail with their message and details; anything else still fails cleanly, with the traceback kept
in ``exception`` (shown with ``-vvv``) instead of a crash.
"""

from __future__ import annotations

import traceback
import typing as t

from ansible_collections.byoc.certificates.plugins.module_utils._errors import ByocError


def run_module(module: t.Any, work: t.Callable[[t.Any], dict]) -> None:
    try:
        result = work(module)
    except ByocError as exc:
        module.fail_json(msg=exc.msg, **exc.details)
    except Exception as exc:  # pylint: disable=broad-exception-caught
        module.fail_json(
            msg=f"Unexpected {type(exc).__name__} in {module._name}: {exc}. This is a bug in byoc.certificates;"
            " please report it with the output of -vvv.",
            exception=traceback.format_exc(),
        )
    module.exit_json(**result)
