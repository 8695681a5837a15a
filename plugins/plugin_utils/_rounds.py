# Copyright (c) 2026, byoc.certificates contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

# Note that this plugin util is **PRIVATE** to the collection. It can have breaking changes at any time.

"""Live progress for modules that wait: run the module in bounded rounds from an action plugin.

A module cannot print while it runs, so a long wait would be silent until it ends. An action plugin instead
calls the module repeatedly, each call waiting at most ``round_seconds`` and returning (not failing) when its
round runs out; between rounds the plugin prints one line saying what is being waited on, for how long, and
what has been seen so far. The modules are idempotent, so a later round only waits again.

With ``keep_deadline=True`` the whole wait never runs past ``total``: every module call costs some seconds beyond the
wait it is given (starting Python, loading libraries, a login), so the first round only looks (it is given 0
seconds), and each later round is given what is left minus the largest such overhead seen so far. The runner stops
when no time is left for another round.
"""

from __future__ import annotations

import math
import time
import typing as t

from ansible.utils.display import Display

display = Display()
OVERHEAD_MARGIN = 1.25  # keep_deadline: a round may cost this much more than the largest overhead seen so far
MIN_ROUND = 0.1  # keep_deadline: seconds; a shorter round is not worth starting


class Rounds:
    """Outcome of :func:`run_in_rounds`: every round's result, the last one, and the time spent."""

    def __init__(self) -> None:
        self.results: list[dict] = []
        self.starts: list[float] = []  # seconds from the start of the wait to the start of each round
        self.elapsed = 0.0
        self.overhead = 0.0  # the largest time a round took beyond the seconds it was given

    @property
    def last(self) -> dict:
        return self.results[-1]

    @property
    def failed(self) -> bool:
        return bool(self.last.get("failed"))

    @property
    def changed(self) -> bool:
        return any(r.get("changed") for r in self.results)


def run_in_rounds(
    execute: t.Callable[[dict], dict],
    args: dict,
    *,
    total: float,
    round_args: t.Callable[[dict, float], dict],
    done: t.Callable[[dict], bool],
    progress: t.Callable[[dict, float], str],
    round_seconds: int = 10,
    keep_deadline: bool = False,
    clock: t.Callable[[], float] | None = None,
) -> Rounds:
    """Call ``execute(module_args)`` until ``done(result)``, a round fails, or ``total`` seconds have passed.

    ``round_args(args, seconds)`` returns the module arguments for one round of at most ``seconds`` (an int, or with
    ``keep_deadline`` a float, 0 for the first round: look once, do not wait); ``progress(result, elapsed)`` is the
    line printed after each round that is not done.
    """
    clock = clock or time.monotonic
    rounds = Rounds()
    start = clock()
    while True:
        began = clock() - start
        remaining = total - began
        if not keep_deadline:
            seconds: float = max(0, min(round_seconds, int(math.ceil(remaining))))
        elif not rounds.results:
            seconds = 0.0
        else:
            seconds = min(float(round_seconds), remaining - OVERHEAD_MARGIN * rounds.overhead)
            if seconds < MIN_ROUND:
                return rounds  # no time left for another round that would end before the deadline
        result = execute(round_args(dict(args), seconds))
        rounds.results.append(result)
        rounds.starts.append(began)
        rounds.elapsed = clock() - start
        rounds.overhead = max(rounds.overhead, rounds.elapsed - began - seconds)
        if result.get("failed") or done(result):
            return rounds
        display.display(progress(result, rounds.elapsed))
        if rounds.elapsed >= total:
            return rounds
