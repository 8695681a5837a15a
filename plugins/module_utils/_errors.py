# Copyright (c) 2026, byoc.certificates contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

# Note that this module util is **PRIVATE** to the collection. It can have breaking changes at any time.

"""Exceptions raised anywhere in the collection's code.

Nothing below the module's ``main()`` calls ``fail_json``. Code raises one of these; ``_runner.run_module`` is the
one place that turns them into ``fail_json`` with ``msg`` (what failed, where, and what to do) and structured extras.
"""

from __future__ import annotations

import typing as t


class ByocError(Exception):
    """Base class. ``msg`` is the sentence the user reads; ``details`` become extra keys of the failed result."""

    def __init__(self, msg: str, **details: t.Any) -> None:
        super().__init__(msg)
        self.msg = msg
        self.details = {k: v for k, v in details.items() if v is not None}


class InputError(ByocError):
    """The task's input is wrong. Raised before any device or server is touched; ``field`` names the option."""

    def __init__(self, field: str, msg: str, **details: t.Any) -> None:
        super().__init__(f"{field}: {msg}", field=field, **details)
        self.field = field


class ConnectionFailure(ByocError):
    """A server could not be reached at all (refused, timed out, DNS or TLS failure)."""


class AuthenticationFailure(ByocError):
    """The server rejected our credentials (HTTP 401/403, TSIG BADKEY/BADSIG, DNS NOTAUTH/REFUSED)."""


class NotFound(ByocError):
    """Something the task names does not exist on the server (a zone, a context, a trunk)."""


class ApiError(ByocError):
    """The server answered with an error we do not map to one of the classes above."""


class WaitTimeout(ByocError):
    """A wait ran out of time; ``details`` say what was seen so far."""


class MissingDependency(ByocError):
    """A Python library the task needs is not installed on the controller."""

    def __init__(self, library: str, purpose: str, import_error: str | None = None) -> None:
        super().__init__(
            f"The Python library {library} is required {purpose} but could not be imported on the controller"
            f" (interpreter used: the one running Ansible). Install it, for example with: pip install {library}",
            import_error=import_error,
        )
