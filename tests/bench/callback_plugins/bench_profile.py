"""Benchmark-only callback (tests/bench, never shipped): per task, how many host results and how much wall time,
and the DNS-01 propagation wait of every certificate. Two engines, two sources: the role engine
(``byoc_issue_engine: role``) reports ``wait_seconds`` in every byoc.certificates.dns01_record result; the batch engine
(fleet_issue, the default) runs with no_log, so its result never reaches a callback, and the wait is read from
``dns_wait_seconds`` of the ``certificate_issue_result`` fact that roles/fleet_plan/tasks/issue.yml then sets on each
group's leader (public material only). Writes JSON to $BYOC_BENCH_PROFILE at the end of the run. Enabled only by
tests/bench/fleet_bench.py."""

from __future__ import annotations

import json
import os
import time

from ansible.plugins.callback import CallbackBase

DOCUMENTATION = """
name: bench_profile
type: aggregate
short_description: task timings and DNS waits for tests/bench (test-only)
description: [Per-task host counts and wall time, the DNS-01 wait per certificate (either engine), written as JSON.]
"""


class CallbackModule(CallbackBase):
    CALLBACK_VERSION = 2.0
    CALLBACK_TYPE = "aggregate"
    CALLBACK_NAME = "bench_profile"
    CALLBACK_NEEDS_ENABLED = True

    def __init__(self):
        super().__init__()
        self.tasks: dict[str, dict] = {}
        self.current = None
        self.started = None
        self.dns_waits: list[dict] = []
        self.failed: list[str] = []

    def _close(self):
        if self.current is not None:
            entry = self.tasks.setdefault(self.current, {"wall": 0.0, "results": 0, "runs": 0})
            entry["wall"] += time.monotonic() - self.started
            entry["runs"] += 1
        self.current = None

    def v2_playbook_on_task_start(self, task, is_conditional):
        self._close()
        self.current = f"{task.get_name()} [{task.action}]"
        self.started = time.monotonic()

    v2_playbook_on_handler_task_start = v2_playbook_on_task_start

    def _result(self, result, failed=False):
        name = self.current or "?"
        self.tasks.setdefault(name, {"wall": 0.0, "results": 0, "runs": 0})["results"] += 1
        res = result._result or {}
        action = getattr(result._task, "action", "")
        if action.endswith("dns01_record"):
            for item in res.get("results") or [res]:  # a loop's results are a list
                if isinstance(item, dict) and item.get("wait_seconds") is not None and item.get("propagated") is not None:
                    self.dns_waits.append({"host": result._host.get_name(), "wait_seconds": item["wait_seconds"]})
        facts = res.get("ansible_facts") if isinstance(res.get("ansible_facts"), dict) else {}
        issued = facts.get("certificate_issue_result")
        if isinstance(issued, dict) and issued.get("renewed") and isinstance(issued.get("dns_wait_seconds"), (int, float)):
            self.dns_waits.append({"host": result._host.get_name(), "group": issued.get("group"),
                                   "wait_seconds": issued["dns_wait_seconds"], "engine": "batch"})
        if failed:
            self.failed.append(f"{result._host.get_name()}: {name}")

    def v2_runner_on_ok(self, result):
        self._result(result)

    def v2_runner_on_failed(self, result, ignore_errors=False):
        self._result(result, failed=not ignore_errors)

    def v2_runner_on_skipped(self, result):
        self._result(result)

    def v2_playbook_on_stats(self, stats):
        self._close()
        path = os.environ.get("BYOC_BENCH_PROFILE")
        if path:
            with open(path, "w", encoding="utf-8") as fh:
                json.dump({"tasks": self.tasks, "dns_waits": self.dns_waits, "failed": self.failed}, fh)
