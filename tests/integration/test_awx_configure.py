"""playbooks/awx_configure.yml (issue 12 item 3). No AWX server runs here, so this checks what can be checked:

- `ansible-playbook --syntax-check` with the awx.awx collection from the pinned ansible wheel;
- the module arguments, checked by the awx.awx modules themselves: every task of the play runs (each loop once) with
  the controller at a closed local port. A module validates its arguments before it connects, so an unknown option,
  a wrong type or a value outside the choices fails with Ansible's argument error, while correct arguments get as
  far as the connection and fail there. The test asserts the latter for every task;
- the survey, schedule and credentials wiring that AWX would otherwise check server-side.
It is untested against a live controller (docs/awx.md says so).
"""

from __future__ import annotations

import json
import re
import socket
import subprocess
import sys
from pathlib import Path

import yaml

from byoc_harness import REPO, ansible_env  # noqa: E402  (on sys.path via conftest)

PLAYBOOK = REPO / "playbooks" / "awx_configure.yml"
BIN = Path(sys.executable).parent
VAULT_DUMMIES = {k: "dummy-" + k for k in ("vault_genesys_client_id", "vault_genesys_client_secret",
                                           "vault_sbc_username", "vault_sbc_password", "vault_tsig_secret",
                                           "vault_store_passphrase")}


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]  # closed again when the socket closes: nothing listens there


def test_syntax_check():
    proc = subprocess.run([str(BIN / "ansible-playbook"), "--syntax-check", str(PLAYBOOK)], capture_output=True,
                          text=True, env=ansible_env(), cwd=REPO, timeout=300, check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_every_task_passes_the_modules_argument_validation(tmp_path):
    play = yaml.safe_load(PLAYBOOK.read_text())[0]
    tasks = play["tasks"]
    modules = [next(k for k in t if k.startswith("awx.awx.")) for t in tasks]
    assert modules == ["awx.awx.credential_type", "awx.awx.credential", "awx.awx.execution_environment",
                       "awx.awx.project", "awx.awx.inventory", "awx.awx.inventory_source",
                       "awx.awx.notification_template", "awx.awx.job_template", "awx.awx.schedule"]
    for task in tasks:
        task["ignore_errors"] = True
        task["no_log"] = False  # the test's dummies only; we need the module's message
        if "loop" in task:
            task["loop"] = "{{ (%s)[:1] }}" % task["loop"].strip().removeprefix("{{").removesuffix("}}")
    copy = tmp_path / "awx_configure_check.yml"
    # beside the original so that playbook_dir (credential type files) resolves the same way
    copy = PLAYBOOK.parent / f".awx_configure_check_{tmp_path.name}.yml"
    try:
        copy.write_text(yaml.safe_dump([play], sort_keys=False))
        port = closed_port()
        env = ansible_env({"CONTROLLER_HOST": f"https://127.0.0.1:{port}", "CONTROLLER_OAUTH_TOKEN": "dummy-token",
                           "ANSIBLE_STDOUT_CALLBACK": "ansible.posix.json"})
        proc = subprocess.run([str(BIN / "ansible-playbook"), "-i", "localhost,", str(copy),
                               "-e", json.dumps(VAULT_DUMMIES)], capture_output=True, text=True, env=env, cwd=REPO,
                              timeout=900, check=False)
    finally:
        copy.unlink(missing_ok=True)
    out = json.loads(proc.stdout[proc.stdout.find("{"):])
    results = out["plays"][0]["tasks"]
    assert len(results) == len(tasks), [r["task"]["name"] for r in results]
    for task, result in zip(tasks, results):
        host = result["hosts"]["localhost"]
        items = host.get("results") or [host]
        assert items, task["name"]
        for item in items:
            msg = str(item.get("msg", ""))
            assert item.get("failed"), (task["name"], item)  # nothing listens: a pass would mean no request
            assert not re.search(r"Unsupported parameters|must be one of|is of type|missing required|"
                                 r"mutually exclusive|Unable to evaluate|template error|undefined", msg, re.I), \
                (task["name"], msg)
            assert re.search(r"connect|refused|Connection|URL", msg), (task["name"], msg)


def test_survey_schedule_and_credentials_are_wired():
    play = yaml.safe_load(PLAYBOOK.read_text())[0]
    tasks = {next(k for k in t if k.startswith("awx.awx.")): t for t in play["tasks"]}
    jt = tasks["awx.awx.job_template"]["awx.awx.job_template"]
    assert jt["playbook"] == "playbooks/rotate.yml" and (REPO / jt["playbook"]).is_file()
    spec = jt["survey_spec"]["spec"]
    assert {q["variable"] for q in spec} == {"byoc_force", "byoc_canary_size"}
    for q in spec:  # the fields AWX requires of a survey question
        assert {"question_name", "variable", "type", "required"} <= set(q), q
        assert q["type"] in ("text", "textarea", "password", "integer", "float", "multiplechoice", "multiselect")
    # rotate.yml reads byoc_force with | bool and byoc_rollout_serial as its serial
    rotate = (REPO / "playbooks" / "rotate.yml").read_text()
    assert "byoc_force | default(false) | bool" in rotate and "byoc_rollout_serial" in rotate
    assert "byoc_canary_size" in jt["extra_vars"]["byoc_rollout_serial"]
    assert jt["ask_limit_on_launch"] is True  # the site: the Limit prompt
    assert jt["notification_templates_error"] == ["{{ byoc_awx_prefix }} failed"]
    sched = tasks["awx.awx.schedule"]["awx.awx.schedule"]
    assert "RRULE:FREQ=DAILY;INTERVAL=1" in sched["rrule"]
    assert sched["unified_job_template"] == jt["name"]
    # every credential listed names a credential type file
    types = {p.stem for p in (REPO / "extensions" / "awx" / "credential_types").glob("*.yml")}
    assert {c["type"] for c in play["vars"]["byoc_awx_credentials"]} <= types
