# Copyright (c) 2026, byoc.certificates contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""The renewal decision and the backoff (pure functions)."""

from __future__ import annotations

import datetime
import statistics

import pytest

from ansible_collections.byoc.certificates.plugins.module_utils import _renewal as r

UTC = datetime.timezone.utc
T0 = datetime.datetime(2026, 11, 1, tzinfo=UTC)
DAY = datetime.timedelta(days=1)


def cert(days: float, names=("a.example.test",), **extra) -> dict:
    return {"not_before": T0, "not_after": T0 + days * DAY, "names": list(names), "key_matches": True, **extra}


# -- backoff -------------------------------------------------------------------------------------------------------
def test_backoff_schedule_is_1m_10m_100m_then_daily():
    assert [r.backoff_delay(n) for n in range(1, 7)] == [60, 600, 6000, 86400, 86400, 86400]


def test_record_failure_steps_through_the_schedule():
    state = None
    now = T0
    for expected in (60, 600, 6000, 86400, 86400):
        state = r.record_failure(state, now, "validation failed")
        assert r.parse_time(state["next_attempt"]) == now + datetime.timedelta(seconds=expected)
        assert state["rate_limited"] is False
    assert state["failures"] == 5


def test_rate_limited_retry_after_text_is_honoured_when_later():
    msg = ("Error creating new order: urn:ietf:params:acme:error:rateLimited: too many certificates (5) already"
           " issued for this exact set of identifiers in the last 168h0m0s, retry after 2026-11-03 10:00:00 UTC")
    state = r.record_failure(None, T0, msg)
    assert state["rate_limited"] is True
    assert state["next_attempt"] == "2026-11-03T10:00:00Z"
    assert state["retry_after"] == "2026-11-03T10:00:00Z"


def test_explicit_retry_after_seconds_and_http_date():
    assert r.record_failure(None, T0, "x", retry_after="7200")["next_attempt"] == r.iso(T0 + datetime.timedelta(hours=2))
    state = r.record_failure(None, T0, "x", retry_after="Tue, 03 Nov 2026 08:00:00 GMT")
    assert state["next_attempt"] == "2026-11-03T08:00:00Z"


def test_retry_after_earlier_than_schedule_does_not_shorten_it():
    state = r.record_failure({"failures": 2}, T0, "x", retry_after="5")
    assert state["failures"] == 3
    assert state["next_attempt"] == r.iso(T0 + datetime.timedelta(seconds=6000))


# -- decision ------------------------------------------------------------------------------------------------------
def test_first_issuance():
    d = r.decide(group="g", names=["a.example.test"], now=T0, current=None)
    assert d["renew"] and "first issuance" in d["reasons"][0]


def test_fresh_certificate_is_left_alone():
    d = r.decide(group="g", names=["a.example.test"], now=T0 + DAY, current=cert(90))
    assert not d["renew"] and not d["skip"] and d["reasons"] == []
    assert d["trigger"] == "lifetime"


@pytest.mark.parametrize("days", [6, 45, 90, 200, 365 * 3])
def test_lifetime_rule_is_a_fraction_never_90_days(days):
    fraction = r.DEFAULT_SHORT_LIVED_FRACTION if days < 10 else r.DEFAULT_RENEW_FRACTION
    d0 = r.decide(group="g", names=["a.example.test"], now=T0, current=cert(days), stagger_fraction=0)
    point = r.parse_time(d0["renew_at"])
    assert point == T0 + days * DAY * (1 - fraction)
    before = r.decide(group="g", names=["a.example.test"], now=point - datetime.timedelta(seconds=1),
                      current=cert(days), stagger_fraction=0)
    after = r.decide(group="g", names=["a.example.test"], now=point, current=cert(days), stagger_fraction=0)
    assert not before["renew"] and after["renew"]


def test_six_day_certificate_renews_at_the_configured_fraction():
    # configured: renew with 1/3 left even for short-lived certificates
    kw = dict(group="g", names=["a.example.test"], current=cert(6), stagger_fraction=0, short_lived_fraction=1 / 3)
    assert not r.decide(now=T0 + 3.99 * DAY, **kw)["renew"]
    assert r.decide(now=T0 + 4.01 * DAY, **kw)["renew"]


def test_names_changed_mismatch_missing_key_type_and_force():
    now = T0 + DAY
    assert "names changed" in r.decide(group="g", names=["b.example.test"], now=now, current=cert(90))["reasons"][0]
    mism = r.decide(group="g", names=["a.example.test"], now=now, current=cert(90, key_matches=False))
    assert mism["renew"] and "does not match" in mism["reasons"][0]
    missing = r.decide(group="g", names=["a.example.test"], now=now, current=cert(90, key_missing=True))
    assert missing["renew"]
    kt = r.decide(group="g", names=["a.example.test"], now=now, current=cert(90, key_type="rsa-2048"),
                  key_type="ecdsa-secp256r1")
    assert kt["renew"] and "key type" in kt["reasons"][0]
    assert r.decide(group="g", names=["a.example.test"], now=now, current=cert(90), force=True)["renew"]
    # names compare case- and order-insensitively
    same = r.decide(group="g", names=["B.example.test.", "a.example.test"], now=now,
                    current=cert(90, names=["a.example.test", "b.example.test"]))
    assert not same["renew"]


def test_ari_window_in_the_past_renews_with_replaces_and_future_window_does_not():
    ari_past = {"window_start": T0 - 2 * DAY, "window_end": T0 - DAY, "cert_id": "abc.def"}
    d = r.decide(group="g", names=["a.example.test"], now=T0, current=cert(90), ari=ari_past)
    assert d["renew"] and d["trigger"] == "ari" and d["replaces_cert_id"] == "abc.def"
    ari_future = {"window_start": T0 + 85 * DAY, "window_end": T0 + 87 * DAY, "cert_id": "abc.def"}
    d = r.decide(group="g", names=["a.example.test"], now=T0 + 80 * DAY, current=cert(90), ari=ari_future)
    # ARI is the primary trigger: the lifetime backstop is not consulted while ARI gives a window
    assert not d["renew"] and d["trigger"] == "ari"
    d = r.decide(group="g", names=["a.example.test"], now=T0 + 80 * DAY, current=cert(90), ari=ari_future,
                 use_ari=False)
    assert d["renew"] and d["trigger"] == "lifetime"


def test_backoff_window_skips_and_after_it_renews():
    backoff = r.record_failure(None, T0, "validation failed")
    d = r.decide(group="g", names=["a.example.test"], now=T0 + datetime.timedelta(seconds=30), current=None,
                 backoff=backoff)
    assert d["skip"] and not d["renew"] and "backoff" in d["msg"] and "not contacted" in d["msg"]
    d = r.decide(group="g", names=["a.example.test"], now=T0 + datetime.timedelta(seconds=61), current=None,
                 backoff=backoff)
    assert d["renew"] and not d["skip"]
    d = r.decide(group="g", names=["a.example.test"], now=T0 + datetime.timedelta(seconds=30), current=None,
                 backoff=backoff, ignore_backoff=True)
    assert d["renew"]


def test_no_renewal_due_is_never_a_skip_even_in_backoff():
    backoff = r.record_failure(None, T0, "x")
    d = r.decide(group="g", names=["a.example.test"], now=T0 + DAY, current=cert(90), backoff=backoff)
    assert not d["skip"] and not d["renew"]


# -- stagger -------------------------------------------------------------------------------------------------------
def test_stagger_is_deterministic_and_only_earlier():
    a = r.lifetime_renew_at(T0, T0 + 90 * DAY, "group-a")
    assert a == r.lifetime_renew_at(T0, T0 + 90 * DAY, "group-a")
    assert a[0] <= T0 + 60 * DAY
    assert a[0] >= T0 + 60 * DAY - 9 * DAY


def test_stagger_spreads_200_groups_across_the_window():
    """200 groups with the same 90-day certificate: their lifetime renewal points spread over the 9-day stagger
    window (10 % of the lifetime) instead of all landing on day 60; ARI points spread over the ARI window."""
    groups = [f"site{n:03d}-sbc" for n in range(200)]
    points = [r.lifetime_renew_at(T0, T0 + 90 * DAY, g)[0] for g in groups]
    offsets_days = [(T0 + 60 * DAY - p).total_seconds() / 86400 for p in points]
    assert all(0 <= o < 9 for o in offsets_days)
    # one bucket per day of the 9-day window: every day gets some groups, none gets a pile-up
    buckets = [0] * 9
    for o in offsets_days:
        buckets[int(o)] += 1
    expected = 200 / 9
    assert min(buckets) >= expected * 0.4, buckets
    assert max(buckets) <= expected * 1.8, buckets
    # chi-square against uniform, 8 degrees of freedom: 26.1 is the p=0.001 critical value
    chi2 = sum((b - expected) ** 2 / expected for b in buckets)
    assert chi2 < 26.1, (chi2, buckets)
    assert len({p.date() for p in points}) == 9
    assert statistics.pstdev(offsets_days) > 2.0  # uniform over 9 days has sd ~2.6
    # inside an ARI window (2 days) the 200 points also spread out, and stay inside the window
    start, end = T0 + 59 * DAY, T0 + 61 * DAY
    ari_points = [r.ari_renew_at(start, end, g) for g in groups]
    assert all(start <= p <= end for p in ari_points)
    quarters = [0] * 4
    for p in ari_points:
        quarters[min(3, int((p - start) / (end - start) * 4))] += 1
    assert min(quarters) >= 30, quarters


def test_parse_time_errors_are_readable():
    with pytest.raises(ValueError, match="now: 'yesterday' is not an ISO 8601 time"):
        r.parse_time("yesterday", "now")
    assert r.parse_time("2026-11-01T00:00:00Z") == T0
    assert r.parse_time("2026-11-01 00:00:00 UTC") == T0
