# Copyright (c) 2026, byoc.certificates contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""``run_action``: the in-process action plugins never print a ``no_log`` value, not even on a type error that
ansible-core's own validation reports with the value in it. The real action plugins run, with a real ``Task``; only
the connection (which these plugins never use) is a stand-in."""

from __future__ import annotations

import json
import types

from ansible.module_utils.common.arg_spec import ArgumentSpecValidator
from ansible.playbook.play_context import PlayContext
from ansible.playbook.task import Task
from ansible.plugins.action import ActionBase

from ansible_collections.byoc.certificates.plugins.action.certificate_store_lease import ActionModule as LeaseAction
from ansible_collections.byoc.certificates.plugins.action.tls_endpoint_info import ActionModule as ProbeAction
from ansible_collections.byoc.certificates.plugins.module_utils._errors import InputError
from ansible_collections.byoc.certificates.plugins.module_utils._store import lease as _lease
from ansible_collections.byoc.certificates.plugins.plugin_utils._action import run_action

SECRET = "Sup3r-S3cret-Passphrase-7f3a"
STORE_SECRET = "AKIA-secret-in-a-list-91c2"


def action(cls, args: dict, check_mode: bool = False):
    task = Task()
    task.args = args
    task.check_mode = check_mode
    connection = types.SimpleNamespace(_shell=types.SimpleNamespace(tmpdir="/nonexistent"))
    return cls(task, connection, PlayContext(), None, None)


def printed(result: dict) -> str:
    return json.dumps(result) + repr(result)


def test_lease_secret_in_list_for_dict_option_is_masked(tmp_path):
    args = {"path": str(tmp_path), "group": "g1", "passphrase": SECRET, "s3": [[STORE_SECRET]]}
    # ansible-core alone quotes the value (ansible/ansible#81672): the test would prove nothing otherwise.
    raw = ArgumentSpecValidator(_lease.argument_spec()).validate(dict(args))
    assert STORE_SECRET in raw.errors.msg
    result = action(LeaseAction, args).run(task_vars={"inventory_hostname": "sbc1"})
    assert result["failed"] is True
    assert "s3" in result["msg"]
    assert STORE_SECRET not in printed(result)
    assert SECRET not in printed(result)
    assert list(tmp_path.iterdir()) == []  # nothing was touched


def test_lease_passphrase_given_to_another_option_is_masked(tmp_path):
    args = {"path": str(tmp_path), "group": "g1", "passphrase": SECRET, "ttl": SECRET}
    raw = ArgumentSpecValidator(_lease.argument_spec()).validate(dict(args))
    assert SECRET in raw.errors.msg
    result = action(LeaseAction, args).run(task_vars={})
    assert result["failed"] is True
    assert "ttl" in result["msg"] and "int" in result["msg"]
    assert "********" in result["msg"]
    assert SECRET not in printed(result)


def test_lease_validation_crash_is_a_clean_failure(tmp_path):
    # ansible-core's validation raises TypeError for a list holding a non-dict in a dict option with fallbacks.
    args = {"path": str(tmp_path), "group": "g1", "passphrase": SECRET, "s3": [STORE_SECRET, 5]}
    result = action(LeaseAction, args).run(task_vars={})
    assert result["failed"] is True
    assert result["msg"].startswith("The options of certificate_store_lease could not be validated")
    assert "TypeError" in result["msg"]
    assert STORE_SECRET not in printed(result) and SECRET not in printed(result)


def test_lease_is_taken_and_read_back_through_the_helper(tmp_path):
    args = {"path": str(tmp_path), "group": "g1", "passphrase": SECRET, "state": "acquired", "holder": "run-a"}
    result = action(LeaseAction, args).run(task_vars={})
    assert not result.get("failed"), result
    assert result["changed"] is True and result["lease"]["holder"] == "run-a"
    assert SECRET not in printed(result)
    read = action(LeaseAction, {"path": str(tmp_path), "group": "g1", "state": "read"}).run(task_vars={})
    assert not read.get("failed"), read
    assert read["held"] is True and read["held_by_us"] is False and read["lease"]["holder"] == "run-a"


def test_probe_key_given_as_dict_is_never_printed():
    key = "-----BEGIN PRIVATE KEY-----\nMIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQg" + "A" * 40 + "\n-----END PRIVATE KEY-----\n"
    args = {"endpoints": [{"name": "sbc.lab.test"}], "ca_certificates": "not a certificate",
            "client_certificate": "not a certificate", "client_private_key": {"k": key}}
    result = action(ProbeAction, args).run(task_vars={})
    assert result["failed"] is True
    text = printed(result)
    assert "BEGIN PRIVATE KEY" not in text and "A" * 40 not in text


class Quoting(ActionBase):
    """An action whose work fails with a message that quotes its secret (what a careless library does)."""

    SPEC = {"token": {"type": "str", "no_log": True}, "name": {"type": "str"}}

    def run(self, tmp=None, task_vars=None):
        def work(args):
            if args["name"] == "length":
                return {"length": len(args["token"])}
            if args["name"] == "warn":
                return {"warnings": [f"token {args['token']!r} is about to expire"], "ok": 1}
            raise InputError("name", f"refused with token {args['token']!r}")

        return run_action(self, {}, "quoting", self.SPEC, work)


def test_work_failure_and_warnings_are_masked():
    failed = action(Quoting, {"token": SECRET, "name": "x"}).run()
    assert failed["failed"] is True and "refused with token" in failed["msg"]
    assert SECRET not in printed(failed)
    warned = action(Quoting, {"token": SECRET, "name": "warn"}).run()
    assert warned["ok"] == 1 and "failed" not in warned
    assert len(warned["warnings"]) == 1 and SECRET not in printed(warned)


def test_no_log_string_is_stripped_after_validation():
    assert action(Quoting, {"token": "  " + SECRET + "\n", "name": "length"}).run() == {"length": len(SECRET)}


def test_unexpected_exception_is_reported_by_type_and_place():
    class Crashing(ActionBase):
        def run(self, tmp=None, task_vars=None):
            def work(args):
                raise RuntimeError(f"boom {args['token']}")
            return run_action(self, {}, "crashing", Quoting.SPEC, work)

    result = action(Crashing, {"token": SECRET, "name": "x"}).run()
    assert result["failed"] is True
    assert "Unexpected RuntimeError in crashing at" in result["msg"]
    assert SECRET not in printed(result)
    assert "RuntimeError: (message not shown" in result["exception"]
