# Copyright (c) 2026, byoc.certificates contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

from ansible_collections.byoc.certificates.plugins.module_utils._genesys.polling import merge_rounds, poll_until


class Clock:
    def __init__(self):
        self.now = 100.0
        self.slept: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


def test_looks_once_without_waiting():
    clock = Clock()
    polls = poll_until(lambda n: (False, f"poll {n} at 0s: down"), keep_waiting=False, started=clock.now, timeout=60,
                       poll_interval=10, clock=clock, sleep=clock.sleep)
    assert (polls.count, polls.timed_out, polls.progress, clock.slept) == (1, False, ["poll 1 at 0s: down"], [])


def test_stops_when_done_and_logs_every_line():
    clock = Clock()
    logged: list[str] = []
    polls = poll_until(lambda n: (n == 3, f"poll {n}"), keep_waiting=True, started=clock.now, timeout=60,
                       poll_interval=10, log=logged.append, clock=clock, sleep=clock.sleep)
    assert (polls.count, polls.timed_out, clock.slept) == (3, False, [10, 10])
    assert logged == polls.progress == ["poll 1", "poll 2", "poll 3"]


def test_last_sleep_is_clipped_to_the_deadline_and_then_it_times_out():
    clock = Clock()
    polls = poll_until(lambda n: (False, f"poll {n}"), keep_waiting=True, started=clock.now, timeout=25,
                       poll_interval=10, clock=clock, sleep=clock.sleep)
    # polls at 0, 10, 20 and 25 (the timeout), never after it
    assert (polls.count, polls.timed_out, clock.slept) == (4, True, [10, 10, 5])


def test_rounds_add_up():
    rounds = [{"polls": 1, "progress": ["poll 1 at 0s: 1/2 trunks up"], "api": {"requests": 3, "tokens_minted": 1}},
              {"polls": 2, "progress": ["poll 1 at 0s: 1/2 trunks up", "poll 2 at 30s: 2/2 trunks up"],
               "api": {"requests": 2, "rate_limit_waits": [1.5]}}]
    merged = merge_rounds(rounds, [0.0, 2.4])
    assert merged == {"polls": 3,
                      "progress": ["poll 1 at 0s: 1/2 trunks up", "poll 2 at 2s: 1/2 trunks up", "poll 3 at 32s: 2/2 trunks up"],
                      "api": {"requests": 5, "tokens_minted": 1, "rate_limit_waits": [1.5]}}
