# Copyright (c) 2026, byoc.certificates contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

# Note that this module util is **PRIVATE** to the collection. It can have breaking changes at any time.

"""The one place where exceptions become ``fail_json``.

Modules call ``run_module(module, work)`` where ``work(module)`` returns the result dict. Known errors
(``ByocError``) fail with their message and details; anything else still fails cleanly, with the traceback kept
in ``exception`` (shown with ``-vvv``) instead of a crash.

The text of an unexpected exception is never shown, neither in ``msg`` nor in the traceback: it can quote
anything the failing code held (a request header with a token, a request body with a key, a session cookie that
is in no ``no_log`` option). The message says the exception's type and where it was raised; the traceback keeps
the frames and the types of the whole chain. ``fail_json`` is called outside the ``except`` block, so that
ansible-core does not add the text of the exception (or of the one it was raised while handling) on its own.
"""

from __future__ import annotations

import os
import traceback
import typing as t

from ansible_collections.byoc.certificates.plugins.module_utils._errors import ByocError

_OURS = os.sep.join(("ansible_collections", "byoc", "certificates", ""))


def where(exc: BaseException) -> str:
    """'path/to/file.py:123 in function' for the innermost frame of the collection's own code (else the innermost
    frame) that raised ``exc``."""
    frames = traceback.extract_tb(exc.__traceback__)
    if not frames:
        return "(unknown place)"
    ours = [f for f in frames if _OURS in f.filename or "/plugins/" in f.filename]
    frame = (ours or frames)[-1]
    filename = frame.filename
    if _OURS in filename:
        filename = filename.split(_OURS, 1)[1]
    return f"{filename}:{frame.lineno} in {frame.name}"


def safe_traceback(exc: BaseException) -> str:
    """The traceback of ``exc`` and of every exception in its chain, with the types but without any message."""
    parts: list[str] = []
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        lines = ["Traceback (most recent call last):\n"]
        lines.extend(traceback.format_list(traceback.extract_tb(current.__traceback__)))
        lines.append(f"{type(current).__module__}.{type(current).__qualname__}: (message not shown: it may quote"
                     " secrets)\n")
        parts.append("".join(lines))
        if current.__cause__ is not None:
            current = current.__cause__
            link = "The above exception was the direct cause of the following exception:"
        elif current.__context__ is not None and not current.__suppress_context__:
            current = current.__context__
            link = "During handling of the above exception, another exception occurred:"
        else:
            break
        parts.append(f"\n{link}\n\n")
    # Oldest first, like Python prints them.
    return "".join(reversed(parts))


def failure_of(exc: BaseException, name: str) -> dict:
    """The failed result for ``exc`` raised by ``name``'s work: a ByocError's message and details, or, for anything
    else, the type and place without the exception's text. Shared by ``run_module`` and the action plugins."""
    if isinstance(exc, ByocError):
        return dict(exc.details, msg=exc.msg)
    return {
        "msg": f"Unexpected {type(exc).__name__} in {name} at {where(exc)}. This is a bug in"
               " byoc.certificates; please report it with the output of -vvv (the error's own text is not shown"
               " because it may quote a secret).",
        "exception": safe_traceback(exc),
    }


def run_module(module: t.Any, work: t.Callable[[t.Any], dict]) -> None:
    failure: dict | None = None
    try:
        result = work(module)
    except Exception as exc:  # pylint: disable=broad-exception-caught
        failure = failure_of(exc, module._name)
    # Outside the except blocks: with no exception being handled, fail_json cannot attach one's text by itself.
    if failure is not None:
        module.fail_json(**failure)
    module.exit_json(**result)
