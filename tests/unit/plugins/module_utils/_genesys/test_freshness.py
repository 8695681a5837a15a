# Copyright (c) 2026, byoc.certificates contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Health that is newer than the change: parsing observed_after, the freshness decision, metrics batching, and
progress lines numbered across wait rounds (pure logic, no network)."""

from __future__ import annotations

import datetime

import pytest

from ansible_collections.byoc.certificates.plugins.module_utils._errors import InputError
from ansible_collections.byoc.certificates.plugins.module_utils._genesys import trunks as T

UTC = datetime.timezone.utc
NOW = datetime.datetime(2026, 11, 30, 4, 40, 33, tzinfo=UTC)
CHANGE = NOW


def at(seconds: float) -> str:
    """A wire time ``seconds`` after the change (negative: before), as the emulator and the SDK write them."""
    return (CHANGE + datetime.timedelta(seconds=seconds)).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def trunk(connected=True, connected_time=-600.0, option_times=(-600.0,), option_ok=True):
    return {"id": "t1", "name": "SBC A", "edge": {"id": "e1", "name": "Edge 1"}, "trunkBase": {"id": "b", "name": "SBC A"},
            "inService": True, "enabled": True, "optionsEnabledStatus": "ENABLED",
            "connectedStatus": {"connected": connected, "connectedStateTime": at(connected_time)},
            "optionsStatus": [{"proxyAddress": f"sbc{i}.lab:5061", "optionState": option_ok,
                               "optionStateTime": at(x) if x is not None else None}
                              for i, x in enumerate(option_times)]}


@pytest.mark.parametrize("text,expected", [
    ("now", NOW),
    (" NOW ", NOW),
    ("2026-11-30T04:40:33Z", NOW),
    ("2026-11-30T05:40:33+01:00", NOW),
    ("2026-11-30T04:40:33.000Z", NOW),
    ("2026-11-30 04:40:33+00:00", NOW),
    (str(int(NOW.timestamp())), NOW),
    ("2026-11-29T04:40:33Z", NOW - datetime.timedelta(days=1)),
])
def test_observed_after_forms(text, expected):
    assert T.parse_observed_after(text, NOW) == expected


@pytest.mark.parametrize("text,words", [
    ("", "is empty"),
    ("yesterday", "is not a timestamp"),
    ("2026-11-30T04:40:33", "no time zone"),
    ("2026-11-30T05:40:34Z", "in the future"),
    ("nan", "is not a timestamp"),
    ("inf", "is not a timestamp"),
    ("1e12", "is not a timestamp"),
])
def test_observed_after_refusals_name_the_field(text, words):
    with pytest.raises(InputError, match=words) as err:
        T.parse_observed_after(text, NOW)
    assert err.value.field == "observed_after"
    assert err.value.msg.startswith("observed_after: ")


def test_stale_connected_is_not_up_until_observed_after_the_change():
    after = CHANGE
    # Connected since 10 minutes before the change, last observed 1 s before it: stale.
    old = T.health(trunk(), at(-1), after)
    assert old["connected"] is True and old["fresh"] is False and old["up"] is False
    assert old["observed_at"] == at(-1)
    assert "not observed after 2026-11-30T04:40:33.000Z yet (last observation 2026-11-30T04:40:32.000Z)" in old["reasons"][0]
    # eventTime equal to the point is not after it.
    assert T.health(trunk(), at(0), after)["up"] is False
    # Observed 2 s after the change: up.
    new = T.health(trunk(), at(2), after)
    assert new["fresh"] is True and new["up"] is True and new["reasons"] == [] and new["observed_at"] == at(2)
    # Without observed_after nothing changes: up, fresh, no observation time.
    plain = T.health(trunk(), at(-1))
    assert plain["up"] is True and plain["fresh"] is True and plain["observed_at"] is None


def test_a_state_change_after_the_point_is_an_observation():
    after = CHANGE
    # No metrics at all, but the connected state changed after the point.
    assert T.health(trunk(connected_time=3), None, after)["fresh"] is True
    # Every proxy's option state changed after the point: observed (the oldest of them counts).
    state = T.health(trunk(option_times=(4, 5)), None, after)
    assert state["fresh"] is True and state["observed_at"] == at(4)
    # Only one of two proxies changed after it: the other may be stale, so the trunk is not observed.
    assert T.health(trunk(option_times=(4, -5)), None, after)["fresh"] is False
    assert T.health(trunk(option_times=(4, None)), None, after)["fresh"] is False
    # Nothing known at all: not observed, and said so.
    bare = trunk(option_times=())
    bare["connectedStatus"] = {"connected": True}
    state = T.health(bare, None, after)
    assert state["fresh"] is False and "last observation unknown" in state["reasons"][0]


def test_fresh_but_down_keeps_its_reasons():
    state = T.health(trunk(connected=False, connected_time=2, option_ok=False, option_times=(2,)), at(2), CHANGE)
    assert state["fresh"] is True and state["up"] is False
    assert state["reasons"] == ["sbc0.lab:5061: SIP OPTIONS not answered"]


@pytest.mark.parametrize("value", [None, "", "garbage", "2026-11-30T04:40:33", 17])
def test_unreadable_wire_times_prove_nothing(value):
    assert T.parse_wire_time(value) is None


def test_metrics_batches_are_at_most_100_ids():
    ids = [f"id{i}" for i in range(250)]
    got = T.chunks(ids)
    assert [len(c) for c in got] == [100, 100, 50]
    assert [x for c in got for x in c] == ids
    assert T.chunks([]) == []
    assert T.chunks(ids[:100]) == [ids[:100]]


def test_progress_line_counts_stale_trunks():
    states = [T.health(trunk(), at(-1), CHANGE), T.health(trunk(), at(1), CHANGE)]
    assert T.progress_line(2, 4.4, states) == ("poll 2 at 4s: 1/2 trunks up; down: SBC A on Edge 1;"
                                               " 1 not observed since the change yet")


def test_progress_continues_across_rounds():
    first = ["poll 1 at 0s: 0/2 trunks up; down: A on Edge 1"]
    second = ["poll 1 at 0s: 1/2 trunks up; down: A on Edge 1", "poll 2 at 4s: 2/2 trunks up"]
    assert T.continue_progress(first, 0, 0.2) == first
    assert T.continue_progress(second, 1, 1.4) == ["poll 2 at 1s: 1/2 trunks up; down: A on Edge 1",
                                                   "poll 3 at 5s: 2/2 trunks up"]
    assert T.continue_progress(["something else"], 3, 9) == ["something else"]


# -- fuzz: whatever a user writes, observed_after is a point in time or an InputError naming the field ----------
from hypothesis import HealthCheck, example, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

# A fixed seed unless BYOC_FUZZ_RANDOM=1 (as in test_gate_fuzz.py): CI is reproducible, exploration is by hand.
_DERANDOMIZE = __import__("os").environ.get("BYOC_FUZZ_RANDOM") != "1"


@settings(max_examples=300, deadline=None, derandomize=_DERANDOMIZE, suppress_health_check=[HealthCheck.too_slow])
@given(st.one_of(st.text(max_size=80), st.integers(), st.floats(allow_nan=True, allow_infinity=True),
                 st.datetimes(timezones=st.sampled_from([UTC, datetime.timezone(datetime.timedelta(hours=5))]))
                 .map(lambda d: d.isoformat())))
@example("0001-01-01T00:00:00+05:00")
@example("9999-12-31T23:59:59-05:00")
@example("99999999999.5")
def test_observed_after_fuzz(value):
    try:
        point = T.parse_observed_after(value, NOW)
    except InputError as err:
        assert err.field == "observed_after" and err.msg.startswith("observed_after: ")
        assert len(err.msg) < 400  # at most 64 characters of the value are quoted
        return
    assert point.tzinfo is not None and (point - NOW).total_seconds() <= T.FUTURE_SLACK


@settings(max_examples=300, deadline=None, derandomize=_DERANDOMIZE)
@given(st.one_of(st.none(), st.text(max_size=40), st.integers(), st.floats(), st.booleans()))
@example("0001-01-01T00:00:00+05:00")
@example("9999-12-31T23:59:59.999-05:00")
def test_wire_time_fuzz(value):
    parsed = T.parse_wire_time(value)
    assert parsed is None or parsed.utcoffset() == datetime.timedelta(0)
