# Copyright (c) 2026, byoc.certificates contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""The neutral core: set logic, diff, input validation, check mode, and the wait evaluation."""

from __future__ import annotations

import pytest

from ansible_collections.byoc.certificates.plugins.module_utils._errors import (
    ApiError,
    AuthenticationFailure,
    InputError,
    NotFound,
    WaitTimeout,
)
from ansible_collections.byoc.certificates.plugins.module_utils._dns import record as core
from ansible_collections.byoc.certificates.plugins.module_utils._dns import resolve
from ansible_collections.byoc.certificates.plugins.module_utils._dns.provider import (
    REGISTRY,
    create_provider,
    longest_suffix_zone,
)


class FakeProvider:
    """Records every call; holds one zone's TXT values in memory."""

    def __init__(self, values=None, zone="example.test"):
        self.values = list(values or [])
        self.zone = zone
        self.calls = []

    def validate(self):
        self.calls.append("validate")

    def find_zone(self, record, zone):
        self.calls.append("find_zone")
        return zone or self.zone

    def get_txt(self, zone, record):
        self.calls.append("get_txt")
        return list(self.values)

    def change(self, zone, record, *, before, after, added, removed, ttl):
        self.calls.append(("change", tuple(added), tuple(removed), ttl))
        self.values = list(after)

    def wait_for_sync(self, timeout):
        return None


def params(**kw):
    p = {"provider": "rfc2136", "record": "_acme-challenge.sbc1.example.test", "value": ["tok1"], "state": "present",
         "zone": None, "ttl": 60, "follow_cname": False, "resolver": None, "wait": False, "wait_timeout": 300,
         "wait_interval": 2, "nameservers": None, "nameserver_port": 53, "on_wait_timeout": "fail",
         "rfc2136": {"server": "127.0.0.1"}}
    p.update(kw)
    return p


def run(fake, check=False, diff=False, **kw):
    return core.run(params(**kw), check_mode=check, want_diff=diff, provider_factory=lambda name, opts: fake)


# -- set logic -------------------------------------------------------------------------------------------------

def test_plan_present_adds_missing_and_keeps_others():
    assert core.plan(["other"], ["tok1"], "present") == (["other", "tok1"], ["tok1"], [])
    assert core.plan(["tok1", "other"], ["tok1"], "present") == (["tok1", "other"], [], [])
    assert core.plan([], ["a", "a", "b"], "present") == (["a", "b"], ["a", "b"], [])


def test_plan_absent_removes_exactly_these():
    assert core.plan(["tok1", "other"], ["tok1"], "absent") == (["other"], [], ["tok1"])
    assert core.plan(["other"], ["tok1"], "absent") == (["other"], [], [])
    assert core.plan(["tok1"], ["tok1"], "absent") == ([], [], ["tok1"])
    # duplicates at the provider (per-record APIs) all go
    assert core.plan(["tok1", "tok1", "x"], ["tok1"], "absent") == (["x"], [], ["tok1"])


# -- run ----------------------------------------------------------------------------------------------------

def test_present_writes_then_is_idempotent():
    fake = FakeProvider(["other"])
    first = run(fake)
    assert first["changed"] is True and first["added"] == ["tok1"] and first["txt_after"] == ["other", "tok1"]
    assert ("change", ("tok1",), (), 60) in fake.calls
    second = run(fake)
    assert second["changed"] is False and second["added"] == [] and second["txt_before"] == ["other", "tok1"]
    assert second["propagated"] is None and second["nameserver_status"] == []


def test_check_mode_predicts_without_writing():
    fake = FakeProvider(["other"])
    res = run(fake, check=True, diff=True, wait=True)
    assert res["changed"] is True and res["txt_after"] == ["other", "tok1"]
    assert not any(isinstance(c, tuple) for c in fake.calls)
    assert fake.values == ["other"]
    assert res["propagated"] is None  # no wait in check mode
    assert res["diff"]["before"] == '_acme-challenge.sbc1.example.test. TXT "other"\n'
    assert res["diff"]["after"].endswith('TXT "tok1"\n')


def test_absent_last_value_empties_the_set():
    fake = FakeProvider(["tok1"])
    res = run(fake, state="absent")
    assert res["removed"] == ["tok1"] and res["txt_after"] == [] and fake.values == []


@pytest.mark.parametrize("override,field", [
    ({"value": []}, "value"),
    ({"value": [""]}, "value"),
    ({"value": ["ok", ""]}, "value"),
    ({"record": ""}, "record"),
    ({"zone": "other.test"}, "zone"),
    ({"ttl": 0}, "ttl"),
    ({"wait_interval": 0}, "wait_interval"),
    ({"wait_timeout": -1}, "wait_timeout"),
    ({"resolver": ["1.2.3.4:99999"]}, "resolver"),
    ({"nameservers": ["[::1"]}, "nameservers"),
    ({"provider": "bogus"}, "provider"),
])
def test_bad_input_fails_before_any_server_is_touched(override, field):
    fake = FakeProvider()
    with pytest.raises(InputError) as err:
        run(fake, **override)
    assert err.value.field == field
    assert fake.calls == []


def test_provider_errors_propagate():
    class Refusing(FakeProvider):
        def change(self, *a, **kw):
            raise AuthenticationFailure("The DNS server 127.0.0.1:53 answered REFUSED")

    with pytest.raises(AuthenticationFailure):
        run(Refusing())


# -- wait ---------------------------------------------------------------------------------------------------

def test_server_ok():
    assert resolve.server_ok(["a", "b"], ["a"], "present")
    assert not resolve.server_ok(["b"], ["a"], "present")
    assert resolve.server_ok(["b"], ["a"], "absent")
    assert not resolve.server_ok(["a"], ["a"], "absent")
    assert not resolve.server_ok(None, ["a"], "present")  # could not ask: never counts as done
    assert not resolve.server_ok(None, ["a"], "absent")


class Clock:
    def __init__(self):
        self.now = 0.0

    def __call__(self):
        return self.now

    def sleep(self, s):
        self.now += s


def test_wait_polls_until_all_serve(monkeypatch):
    answers = {("10.0.0.1", 53): [["tok1"], ["tok1"]], ("10.0.0.2", 53): [[], ["tok1"]]}

    def fake_txt_at(server, name, timeout):
        return answers[server].pop(0)

    monkeypatch.setattr(resolve, "txt_at", fake_txt_at)
    clock = Clock()
    ok, seconds, statuses = resolve.wait_for_values(list(answers), "n", ["tok1"], "present", timeout=10,
                                                    interval=2, clock=clock, sleep=clock.sleep)
    assert ok is True and seconds == 2
    assert [s["ok"] for s in statuses] == [True, True]


def test_wait_times_out_and_reports(monkeypatch):
    def fake_txt_at(server, name, timeout):
        if server[0] == "10.0.0.2":
            raise resolve.ConnectionFailure("The DNS server 10.0.0.2:53 did not answer")
        return ["tok1"]

    monkeypatch.setattr(resolve, "txt_at", fake_txt_at)
    clock = Clock()
    ok, seconds, statuses = resolve.wait_for_values([("10.0.0.1", 53), ("10.0.0.2", 53)], "n", ["tok1"], "present",
                                                    timeout=5, interval=2, clock=clock, sleep=clock.sleep)
    assert ok is False and seconds == 5
    assert statuses[1]["error"].startswith("The DNS server 10.0.0.2:53")
    text = core.wait_summary("n", statuses, "present")
    assert text == "10.0.0.1:53 serves it; still behind: 10.0.0.2:53 (error: The DNS server 10.0.0.2:53 did not answer)"


def test_run_wait_timeout_fail_and_return(monkeypatch):
    monkeypatch.setattr(resolve, "wait_for_values", lambda *a, **kw: (False, 3.0, [
        {"server": "127.0.0.1:1", "serving": ["tok1"], "ok": True, "error": None},
        {"server": "127.0.0.1:2", "serving": [], "ok": False, "error": None}]))
    with pytest.raises(WaitTimeout) as err:
        run(FakeProvider(), wait=True, nameservers=["127.0.0.1:1", "127.0.0.1:2"], wait_timeout=3)
    assert "still behind: 127.0.0.1:2 (serves nothing)" in err.value.msg
    assert err.value.details["propagated"] is False and err.value.details["changed"] is True
    res = run(FakeProvider(), wait=True, nameservers=["127.0.0.1:1", "127.0.0.1:2"], on_wait_timeout="return")
    assert res["propagated"] is False and res["wait_seconds"] == 3.0 and len(res["nameserver_status"]) == 2


def test_describe_status():
    assert core.describe_status({"server": "s:53", "serving": ["a", "b"]}) == "s:53 (serves 'a', 'b')"


# -- registry ---------------------------------------------------------------------------------------------

def test_registry_has_all_providers():
    assert sorted(REGISTRY) == ["azure", "cloudflare", "powerdns", "rfc2136", "route53"]
    with pytest.raises(InputError) as err:
        create_provider("bind", {})
    assert err.value.field == "provider"


def test_longest_suffix_zone():
    zones = ["example.test.", "sub.example.test", "other.test"]
    assert longest_suffix_zone("_acme-challenge.a.sub.example.test", zones, "x") == "sub.example.test"
    assert longest_suffix_zone("_acme-challenge.a.example.test", zones, "x") == "example.test"
    with pytest.raises(NotFound) as err:
        longest_suffix_zone("_acme-challenge.a.example.org", zones, "the API")
    assert "_acme-challenge.a.example.org" in err.value.msg and "other.test" in err.value.msg
    # a zone that is only a string suffix is not a parent
    with pytest.raises(NotFound):
        longest_suffix_zone("a.myexample.test", ["example.test"], "x")


# -- issue 10: validate first, write second; a failure after a write cleans up or says what is left ----------

def _writes(fake):
    return [c for c in fake.calls if isinstance(c, tuple)]


def test_nameservers_that_do_not_resolve_fail_before_any_write(monkeypatch):
    monkeypatch.setattr(resolve, "addresses_of", lambda host, resolvers, timeout: [])
    fake = FakeProvider(["other"])
    with pytest.raises(NotFound) as err:
        run(fake, wait=True, nameservers=["ns1.nowhere.test"], resolver=["127.0.0.1:9"])
    assert "ns1.nowhere.test" in err.value.msg
    assert _writes(fake) == [] and fake.values == ["other"]


def test_nameserver_discovery_failure_comes_before_any_write(monkeypatch):
    def no_ns(zone, resolvers, port, timeout=5.0):
        raise NotFound(f"The resolvers return no NS records for the zone {zone}.")

    monkeypatch.setattr(resolve, "discover_nameservers", no_ns)
    fake = FakeProvider()
    with pytest.raises(NotFound):
        run(fake, wait=True, resolver=["127.0.0.1:9"])
    assert _writes(fake) == [] and fake.values == []


@pytest.mark.parametrize("field,entry", [("nameservers", "bad host!"), ("nameservers", "a" * 64 + ".test"),
                                         ("resolver", "foo..bar"), ("nameservers", "ns\x00.test")])
def test_garbage_nameserver_or_resolver_names_are_input_errors(field, entry):
    fake = FakeProvider()
    with pytest.raises(InputError) as err:
        run(fake, wait=True, **{field: [entry]})
    assert err.value.field == field and fake.calls == []


class FailingSync(FakeProvider):
    """The write succeeds; the step after it (the provider's own sync wait) fails."""

    def wait_for_sync(self, timeout):
        raise ApiError("GetChange failed: Throttling")


def test_failure_after_the_write_removes_what_was_added(monkeypatch):
    fake = FailingSync(["other"])
    with pytest.raises(ApiError) as err:
        run(fake, wait=True, nameservers=["127.0.0.1:1"])
    assert fake.values == ["other"]
    assert _writes(fake) == [("change", ("tok1",), (), 60), ("change", (), ("tok1",), 60)]
    assert "Throttling" in err.value.msg and "were removed again" in err.value.msg
    assert err.value.details["txt_now"] == ["other"]


def test_rollback_keeps_values_written_meanwhile_by_others():
    class Concurrent(FailingSync):
        def wait_for_sync(self, timeout):
            self.values.append("theirs")  # another task's value arrives after our write
            super().wait_for_sync(timeout)

    fake = Concurrent(["other"])
    with pytest.raises(ApiError):
        run(fake, wait=True, nameservers=["127.0.0.1:1"])
    assert fake.values == ["other", "theirs"]


def test_failed_rollback_says_exactly_what_is_left():
    class Stuck(FailingSync):
        def change(self, zone, record, *, before, after, added, removed, ttl):
            if removed:
                raise AuthenticationFailure("The DNS server answered REFUSED")
            super().change(zone, record, before=before, after=after, added=added, removed=removed, ttl=ttl)

    fake = Stuck(["other"])
    with pytest.raises(ApiError) as err:
        run(fake, wait=True, nameservers=["127.0.0.1:1"])
    assert "'tok1' are still at _acme-challenge.sbc1.example.test" in err.value.msg
    assert "state=absent" in err.value.msg


def test_half_done_change_says_what_the_record_holds_now():
    class Half(FakeProvider):
        def change(self, zone, record, *, before, after, added, removed, ttl):
            self.values = [v for v in self.values if v not in removed]  # the deletes went through
            raise ApiError("POST answered HTTP 500")

    fake = Half(["old", "keep"])
    with pytest.raises(ApiError) as err:
        core.run(params(value=["old"], state="absent"), provider_factory=lambda n, o: fake)
    assert "Nothing was changed" not in err.value.msg  # sanity: the removal went through
    fake = Half(["keep"])
    with pytest.raises(ApiError) as err:
        run(fake, value=["new"])
    assert "Nothing was changed: _acme-challenge.sbc1.example.test still holds 'keep'" in err.value.msg


def test_unexpected_exception_after_write_is_not_echoed_and_rolled_back():
    class Boom(FakeProvider):
        def wait_for_sync(self, timeout):
            raise ValueError("Invalid header value b'Bearer SEKRIT\\n'")

    fake = Boom()
    with pytest.raises(ApiError) as err:
        run(fake, wait=True, nameservers=["127.0.0.1:1"])
    assert "SEKRIT" not in err.value.msg and "ValueError" in err.value.msg
    assert fake.values == []


def test_wait_timeout_says_what_is_left(monkeypatch):
    monkeypatch.setattr(resolve, "wait_for_values", lambda *a, **kw: (False, 3.0, [
        {"server": "127.0.0.1:2", "serving": [], "ok": False, "error": None}]))
    with pytest.raises(WaitTimeout) as err:
        run(FakeProvider(["other"]), wait=True, nameservers=["127.0.0.1:2"], wait_timeout=3)
    assert "The provider holds 'other', 'tok1' at _acme-challenge.sbc1.example.test" in err.value.msg
