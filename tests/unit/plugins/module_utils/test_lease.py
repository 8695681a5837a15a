# Copyright (c) 2026, byoc.certificates contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Leases in the store (issue 12 item 5): acquire / renew / release / wait on the filesystem backend, with real
processes racing for one lease (the s3 backend runs the same code over its conditional writes, see
tests/integration/test_lease_s3.py)."""

from __future__ import annotations

import datetime
import json
import multiprocessing
import os
import re
import time
import types

import pytest

from ansible_collections.byoc.certificates.plugins.module_utils._errors import InputError, WaitTimeout
from ansible_collections.byoc.certificates.plugins.module_utils._store import lease as L
from ansible_collections.byoc.certificates.plugins.module_utils._store.base import LockHeld
from ansible_collections.byoc.certificates.plugins.module_utils._store.filesystem import FilesystemStore

T0 = datetime.datetime(2026, 11, 30, 8, 0, 0, tzinfo=datetime.timezone.utc)


def at(seconds: float) -> datetime.datetime:
    return T0 + datetime.timedelta(seconds=seconds)


def test_acquire_refresh_held_and_expiry(tmp_path):
    store = FilesystemStore(str(tmp_path))
    lease, changed = L.acquire(store, "grp-a", "slice-1", 60, now=at(0))
    assert changed and lease["holder"] == "slice-1" and lease["expires"] == "2026-11-30T08:01:00Z"
    on_disk = json.loads((tmp_path / "grp-a" / "lock.json").read_text())
    assert on_disk["owner"] == "slice-1"
    # the holder itself may take it again (a refresh)
    again, changed = L.acquire(store, "grp-a", "slice-1", 60, now=at(30))
    assert changed and again["expires"] == "2026-11-30T08:01:30Z"
    # someone else cannot, until it expires; the message names holder and expiry
    with pytest.raises(LockHeld) as err:
        L.acquire(store, "grp-a", "slice-2", 60, now=at(89))
    assert "slice-1" in err.value.msg and "2026-11-30T08:01:30Z" in err.value.msg
    taken = L.acquire(store, "grp-a", "slice-2", 60, now=at(90))[0]
    assert taken["holder"] == "slice-2"
    assert json.loads((tmp_path / "grp-a" / "lock.json").read_text())["owner"] == "slice-2"


def test_renew_only_while_ours(tmp_path):
    store = FilesystemStore(str(tmp_path))
    L.acquire(store, "grp-a", "slice-1", 60, now=at(0))
    renewed = L.renew(store, "grp-a", "slice-1", 60, now=at(50))
    assert renewed["expires"] == "2026-11-30T08:01:50Z" and renewed["acquired"] == "2026-11-30T08:00:00Z"
    # not renewed: it expires and another run takes it; the late renewal is refused and says who has it
    L.acquire(store, "grp-a", "slice-2", 60, now=at(111))
    with pytest.raises(L.LeaseLost) as err:
        L.renew(store, "grp-a", "slice-1", 60, now=at(112))
    assert "slice-2" in err.value.msg
    assert json.loads((tmp_path / "grp-a" / "lock.json").read_text())["owner"] == "slice-2"
    with pytest.raises(L.LeaseLost):
        L.renew(store, "grp-b", "slice-1", 60, now=at(0))


def test_release_never_removes_another_holders_lease(tmp_path):
    store = FilesystemStore(str(tmp_path))
    L.acquire(store, "grp-a", "slice-1", 60, now=at(0))
    L.acquire(store, "grp-a", "slice-2", 60, now=at(61))  # slice-1's lease expired and was taken
    released, found = L.release(store, "grp-a", "slice-1", now=at(62))
    assert not released and found["holder"] == "slice-2"
    assert json.loads((tmp_path / "grp-a" / "lock.json").read_text())["owner"] == "slice-2"
    released, found = L.release(store, "grp-a", "slice-2", now=at(63))
    assert released and found["holder"] == "slice-2"
    assert not (tmp_path / "grp-a" / "lock.json").exists()
    assert L.release(store, "grp-a", "slice-2") == (False, None)
    # free again: anyone takes it at once
    assert L.acquire(store, "grp-a", "slice-3", 60, now=at(64))[0]["holder"] == "slice-3"


def test_released_record_is_free(tmp_path):
    """The default release (used by the s3 backend) leaves a released record: an expired lock, free to take."""
    store = FilesystemStore(str(tmp_path))
    L.acquire(store, "grp-a", "slice-1", 60, now=at(0))
    held = store.read_lock("grp-a")
    record = {"owner": None, "released": "x", "expires": L.iso(at(1))}
    assert FilesystemStore.__mro__[1]._release_lock(store, "grp-a", held, record)  # base implementation
    assert not L.is_live(L.read(store, "grp-a"), at(2))
    assert L.release(store, "grp-a", "slice-1") == (False, None)
    assert L.acquire(store, "grp-a", "slice-2", 60, now=at(2))[0]["holder"] == "slice-2"


def test_wait_shows_progress_and_takes_the_lease_when_it_expires(tmp_path):
    store = FilesystemStore(str(tmp_path))
    L.acquire(store, "grp-a", "dead-slice", 20, now=at(0))
    clock = {"t": 0.0}
    lines: list[str] = []

    def sleep(seconds):
        clock["t"] += seconds

    got = L.wait_acquire(store, "grp-a", "slice-2", 60, timeout=300, poll=5, progress=lines.append,
                         clock=lambda: clock["t"], sleep=sleep, now=lambda: at(clock["t"]))
    assert got["lease"]["holder"] == "slice-2" and got["changed"]
    assert got["waited_for"] == [{"holder": "dead-slice", "expires": "2026-11-30T08:00:20Z",
                                  "acquired": "2026-11-30T08:00:00Z"}]
    assert 20 <= got["waited"] <= 26
    assert len(lines) == 1 and got["progress"] == lines  # one line: the wait started (it ended within 30 s)
    assert lines[0] == ("waiting for the lease grp-a (0s of at most 300s): held by dead-slice since"
                        " 2026-11-30T08:00:00Z, until 2026-11-30T08:00:20Z")


def test_wait_progress_every_30_seconds_and_on_a_new_holder(tmp_path):
    store = FilesystemStore(str(tmp_path))
    L.acquire(store, "grp-a", "slice-1", 100, now=at(0))
    clock = {"t": 0.0}
    lines: list[str] = []

    def sleep(seconds):
        clock["t"] += seconds
        if 100 <= clock["t"] < 105:  # slice-1's lease expired; slice-3 took it before us
            L.acquire(store, "grp-a", "slice-3", 60, now=at(clock["t"]))

    got = L.wait_acquire(store, "grp-a", "slice-2", 60, timeout=600, poll=5, progress=lines.append,
                         clock=lambda: clock["t"], sleep=sleep, now=lambda: at(clock["t"]))
    assert got["lease"]["holder"] == "slice-2"
    assert [w["holder"] for w in got["waited_for"]] == ["slice-1", "slice-3"]
    assert [re.search(r"\((\d+)s of", line).group(1) for line in lines] == ["0", "30", "60", "90", "100", "130"]
    assert all("held by slice-1" in line for line in lines[:4]) and all("held by slice-3" in line for line in lines[4:])


def test_wait_times_out_naming_the_holder(tmp_path):
    store = FilesystemStore(str(tmp_path))
    L.acquire(store, "grp-a", "slice-1", 3600, now=at(0))
    clock = {"t": 0.0}

    def sleep(seconds):
        clock["t"] += seconds

    with pytest.raises(WaitTimeout) as err:
        L.wait_acquire(store, "grp-a", "slice-2", 60, timeout=30, poll=5, clock=lambda: clock["t"], sleep=sleep,
                       now=lambda: at(clock["t"]))
    assert "slice-1" in err.value.msg and "until 2026-11-30T09:00:00Z" in err.value.msg
    assert err.value.details["waited"] == 30
    assert json.loads((tmp_path / "grp-a" / "lock.json").read_text())["owner"] == "slice-1"


def test_input_checks(tmp_path):
    with pytest.raises(InputError):
        L.check_ttl(0)
    with pytest.raises(InputError):
        L.check_ttl(True)
    with pytest.raises(InputError):
        L.check_holder("  ")
    with pytest.raises(InputError):
        L.acquire(FilesystemStore(str(tmp_path)), "../x", "h", 60)
    assert L.default_holder({"JOB_ID": "42"}, pid=7).startswith("42@") and L.default_holder({}, pid=7).endswith(":7")


def _race(path, name, holder, start, results):
    # widen the window between "the lock file exists" and "its content is written" (serialising the content is
    # slow here): a lock that can be seen empty reads as expired, and a second process takes it
    from ansible_collections.byoc.certificates.plugins.module_utils._store import filesystem

    real_dumps = filesystem.json.dumps

    def slow_dumps(*args, **kwargs):
        time.sleep(0.05)
        return real_dumps(*args, **kwargs)

    filesystem.json = types.SimpleNamespace(dumps=slow_dumps, loads=json.loads)
    store = FilesystemStore(path)
    start.wait()
    try:
        L.acquire(store, name, holder, 60)
        results.put(holder)
    except LockHeld:
        results.put(None)


@pytest.mark.parametrize("round_", range(5))
def test_processes_racing_for_one_lease_exactly_one_wins(tmp_path, round_):
    """Eight processes released at once: exactly one holds the lease, and the lock on disk names it (an empty,
    half-created lock would read as expired and let a second process in)."""
    del round_
    ctx = multiprocessing.get_context("fork")
    start, results = ctx.Event(), ctx.Queue()
    procs = [ctx.Process(target=_race, args=(str(tmp_path), "grp-a", f"p{i}", start, results)) for i in range(8)]
    for p in procs:
        p.start()
    start.set()
    for p in procs:
        p.join(30)
    winners = [w for w in (results.get(timeout=5) for _proc in procs) if w]
    assert len(winners) == 1
    assert json.loads((tmp_path / "grp-a" / "lock.json").read_text())["owner"] == winners[0]
    assert not [f for f in os.listdir(tmp_path / "grp-a") if f.endswith(".tmp")]
