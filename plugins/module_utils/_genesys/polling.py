# Copyright (c) 2026, byoc.certificates contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

# Note that this module util is **PRIVATE** to the collection. It can have breaking changes at any time.

"""The wait of the Genesys info modules (``genesys_trunk_info``, ``genesys_edge_info``), shared.

Module side, :func:`poll_until`: look (one listing), record one progress line, stop when done or when not waiting,
else sleep ``poll_interval`` and look again, the last sleep clipped to the deadline, so that the last poll happens at
the timeout, never after it. The clock starts in the module's ``work`` (loading the SDK and minting a token count
against the timeout).

Action side, :func:`merge_rounds`: the action plugins run the module in rounds (``plugin_utils/_rounds.py``) to show
progress; the rounds' polls, progress lines (renumbered across the whole wait) and API cost add up to one result.
"""

from __future__ import annotations

import re
import time
import typing as t

PROGRESS_RE = re.compile(r"^poll (\d+) at (\d+)s: ")  # the head of every progress line of both modules


class Polls:
    """What :func:`poll_until` did: how many polls, one progress line each, and whether it ran out of time."""

    def __init__(self) -> None:
        self.count = 0
        self.progress: list[str] = []
        self.timed_out = False


def poll_until(look: t.Callable[[int], tuple[bool, str]], *, keep_waiting: bool, started: float, timeout: float,
               poll_interval: float, log: t.Callable[[str], None] | None = None,
               clock: t.Callable[[], float] = time.monotonic, sleep: t.Callable[[float], None] = time.sleep) -> Polls:
    """Call ``look(poll_number)`` (1, 2, ...), which returns ``(done, progress_line)``, until it is done, or once
    when ``keep_waiting`` is false, or until ``timeout`` seconds after ``started`` (a ``clock()`` value); then
    ``timed_out`` is set. Between looks it sleeps ``poll_interval`` seconds, the last sleep clipped to the deadline.
    Each line is also passed to ``log``."""
    polls = Polls()
    deadline = started + timeout
    while True:
        polls.count += 1
        done, line = look(polls.count)
        polls.progress.append(line)
        if log is not None:
            log(line)
        if done or not keep_waiting:
            return polls
        remaining = deadline - clock()
        if remaining <= 0:
            polls.timed_out = True
            return polls
        sleep(min(poll_interval, remaining))


def continue_progress(lines: list[str], polls_before: int, seconds_before: float) -> list[str]:
    """The progress lines of one wait round, renumbered to follow the rounds before it: poll numbers go on from
    ``polls_before`` and times are counted from the start of the whole wait, not from the round's."""
    out = []
    for line in lines:
        m = PROGRESS_RE.match(line)
        if m is None:
            out.append(line)
            continue
        poll = int(m.group(1)) + polls_before
        at = int(m.group(2)) + seconds_before
        out.append(f"poll {poll} at {at:.0f}s: {line[m.end():]}")
    return out


def merge_rounds(results: list[dict], starts: list[float]) -> dict:
    """``polls``, ``progress`` and ``api`` of a wait run in rounds: every round's results (``starts``: seconds from
    the start of the wait to each round's start), polls counted and progress numbered across rounds, API cost
    summed."""
    progress: list[str] = []
    polls = 0
    for res, began in zip(results, starts):
        progress += continue_progress(list(res.get("progress") or []), polls, began)
        polls += int(res.get("polls") or 0)
    apis = [r.get("api") or {} for r in results]
    return {
        "polls": polls,
        "progress": progress,
        "api": {
            "requests": sum(int(a.get("requests") or 0) for a in apis),
            "tokens_minted": sum(int(a.get("tokens_minted") or 0) for a in apis),
            "rate_limit_waits": [w for a in apis for w in (a.get("rate_limit_waits") or [])],
        },
    }
