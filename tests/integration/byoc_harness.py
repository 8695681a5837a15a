"""Helpers for the integration layer, importable by test modules (``from byoc_harness import ...``):
the growing lab, the Ansible environment, and runners for a module (ad hoc, JSON result) or a playbook."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "tests" / "lab"))

from byoclab.components import select  # noqa: E402
from byoclab.core import Lab  # noqa: E402


class LiveLab:
    """One lab for the whole test session. ``part(name)`` starts that part (and what it requires) the first
    time it is asked for, and returns its lab.json description."""

    def __init__(self, directory: Path):
        self.lab = Lab(directory)

    def part(self, name: str) -> dict:
        if name not in self.lab.components:
            self.lab.up(select([name]), keep_on_failure=True)
        return self.lab.components[name]

    @property
    def json_file(self) -> Path:
        return self.lab.json_file

    @property
    def ca_file(self) -> str:
        return str(self.lab.ca.cert_file)


def ansible_env(extra: dict | None = None) -> dict:
    env = dict(os.environ)
    env.update({
        "ANSIBLE_COLLECTIONS_PATH": f"{REPO}/.build/dev:{REPO}/.build/collections",
        "ANSIBLE_COLLECTIONS_SCAN_SYS_PATH": "false",
        "ANSIBLE_LOAD_CALLBACK_PLUGINS": "1",
        "ANSIBLE_STDOUT_CALLBACK": "ansible.posix.json",
        "ANSIBLE_PYTHON_INTERPRETER": sys.executable,
        "ANSIBLE_HOST_KEY_CHECKING": "false",
        "ANSIBLE_RETRY_FILES_ENABLED": "false",
        "ANSIBLE_NOCOLOR": "1",
        "ANSIBLE_LOCAL_TEMP": str(REPO / ".build" / "ansible-tmp"),
        "PATH": f"{Path(sys.executable).parent}:{env.get('PATH', '')}",
    })
    env.update(extra or {})
    return env


class ModuleRunner:
    """Run ``byoc.certificates.<name>`` on localhost via ``ansible -m`` and return its result dict.

    The result also carries ``_stdout`` (everything Ansible printed, for assertions about what a user sees,
    such as progress lines or the absence of secrets)."""

    def __call__(self, name: str, args: dict, *, check: bool = False, diff: bool = False,
                 verbosity: int = 0, env: dict | None = None, timeout: float = 600) -> dict:
        fqcn = name if "." in name else f"byoc.certificates.{name}"
        cmd = [str(Path(sys.executable).parent / "ansible"), "localhost", "-i", "localhost,", "-c", "local",
               "-m", fqcn, "-a", json.dumps(args)]
        if check:
            cmd.append("--check")
        if diff:
            cmd.append("--diff")
        if verbosity:
            cmd.append("-" + "v" * verbosity)
        proc = subprocess.run(cmd, capture_output=True, text=True, env=ansible_env(env), timeout=timeout, cwd=REPO,
                              check=False)
        out = proc.stdout
        start = out.find("{")
        try:
            data = json.loads(out[start:]) if start >= 0 else {}
            result = data["plays"][0]["tasks"][0]["hosts"]["localhost"]
        except (ValueError, KeyError, IndexError) as exc:
            raise AssertionError(f"could not parse ansible output ({exc}); rc={proc.returncode}\n"
                                 f"stdout:\n{out}\nstderr:\n{proc.stderr}") from None
        result["_stdout"] = out + proc.stderr
        return result


def run_playbook(playbook: Path, *, extra_vars: dict | None = None, inventory: str = "localhost,",
                 check: bool = False, diff: bool = False, env: dict | None = None,
                 timeout: float = 900) -> subprocess.CompletedProcess:
    """Run a playbook with the default (human) callback; returns the completed process."""
    cmd = [str(Path(sys.executable).parent / "ansible-playbook"), "-i", inventory, str(playbook)]
    if extra_vars:
        cmd += ["-e", json.dumps(extra_vars)]
    if check:
        cmd.append("--check")
    if diff:
        cmd.append("--diff")
    e = ansible_env(env)
    e["ANSIBLE_STDOUT_CALLBACK"] = "default"
    return subprocess.run(cmd, capture_output=True, text=True, env=e, timeout=timeout, cwd=REPO, check=False)
