# Copyright (c) 2026, byoc.certificates contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

import pytest

from ansible_collections.byoc.certificates.plugins.module_utils._errors import InputError
from ansible_collections.byoc.certificates.plugins.module_utils._runner import run_module


class Exit(Exception):
    pass


class FakeModule:
    _name = "byoc.certificates.example"

    def __init__(self):
        self.outcome = None

    def fail_json(self, **kw):
        self.outcome = ("fail", kw)
        raise Exit()

    def exit_json(self, **kw):
        self.outcome = ("exit", kw)
        raise Exit()


def run(work):
    m = FakeModule()
    with pytest.raises(Exit):
        run_module(m, work)
    return m.outcome


def test_result_is_exited():
    assert run(lambda m: {"changed": True}) == ("exit", {"changed": True})


def test_known_error_fails_with_message_and_field():
    def work(m):
        raise InputError("value", "must not be empty")

    kind, kw = run(work)
    assert kind == "fail" and kw["msg"] == "value: must not be empty" and kw["field"] == "value"
    assert "exception" not in kw


def test_unexpected_error_fails_cleanly_with_traceback_kept_aside():
    def work(m):
        raise KeyError("oops")

    kind, kw = run(work)
    assert kind == "fail"
    assert kw["msg"].startswith("Unexpected KeyError in byoc.certificates.example")
    assert "Traceback" in kw["exception"]
