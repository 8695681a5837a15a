"""Fixtures for the integration layer: a lab that starts each part on first use, and a module runner.
The helpers themselves live in byoc_harness.py so that test modules can import them."""

from __future__ import annotations

import shutil
import sys
import tempfile
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

from byoc_harness import LiveLab, ModuleRunner  # noqa: E402


@pytest.fixture(scope="session")
def lab():
    # Not tmp_path_factory: pytest prunes old base temp dirs, which could remove a lab another run still uses.
    directory = Path(tempfile.mkdtemp(prefix="byoc-lab-"))
    live = LiveLab(directory)
    yield live
    live.lab.down()
    shutil.rmtree(directory, ignore_errors=True)


@pytest.fixture(scope="session")
def run_module():
    return ModuleRunner()
