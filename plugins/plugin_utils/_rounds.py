# Copyright (c) 2026, byoc.certificates contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

# Note that this plugin util is **PRIVATE** to the collection. It can have breaking changes at any time.

"""Live progress for modules that wait: run the module in bounded rounds from an action plugin.

A module cannot print while it runs, so a long wait would be silent until it ends. An action plugin instead
calls the module repeatedly, each call waiting at most ``round_seconds`` and returning (not failing) when its
round runs out; between rounds the plugin prints one line saying what is being waited on, for how long, and
what has been seen so far. The modules are idempotent, so a later round only waits again.
"""

from __future__ import annotations

import math
import time
import typing as t

from ansible.utils.display import Display

display = Display()


class Rounds:
    """Outcome of :func:`run_in_rounds`: every round's result, the last one, and the time spent."""

    def __init__(self) -> None:
        self.results: list[dict] = []
        self.elapsed = 0.0

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
    round_args: t.Callable[[dict, int], dict],
    done: t.Callable[[dict], bool],
    progress: t.Callable[[dict, float], str],
    round_seconds: int = 10,
) -> Rounds:
    """Call ``execute(module_args)`` until ``done(result)``, a round fails, or ``total`` seconds have passed.

    ``round_args(args, seconds)`` returns the module arguments for one round of at most ``seconds``;
    ``progress(result, elapsed)`` is the line printed after each round that is not done.
    """
    rounds = Rounds()
    start = time.monotonic()
    while True:
        remaining = total - (time.monotonic() - start)
        seconds = max(0, min(round_seconds, int(math.ceil(remaining))))
        result = execute(round_args(dict(args), seconds))
        rounds.results.append(result)
        rounds.elapsed = time.monotonic() - start
        if result.get("failed") or done(result):
            return rounds
        display.display(progress(result, rounds.elapsed))
        if rounds.elapsed >= total:
            return rounds
