# Copyright (c) 2026, byoc.certificates contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Every module is in exactly one action group of meta/runtime.yml, and its documentation says which, so that
``module_defaults: group/byoc.certificates.<group>`` works as documented."""

from __future__ import annotations

import importlib
from pathlib import Path

import pytest
import yaml

from ansible_collections.byoc.certificates.plugins.doc_fragments._attributes import ModuleDocFragment

ROOT = Path(__file__).resolve().parents[3]
GROUPS = yaml.safe_load((ROOT / "meta" / "runtime.yml").read_text())["action_groups"]
MODULES = sorted(p.stem for p in (ROOT / "plugins" / "modules").glob("*.py") if p.stem != "__init__")


@pytest.mark.parametrize("name", MODULES)
def test_module_is_in_one_group_and_documents_it(name):
    groups = [g for g, members in GROUPS.items() if name in members]
    assert len(groups) == 1, f"{name} is in action groups {groups}"
    module = importlib.import_module(f"ansible_collections.byoc.certificates.plugins.modules.{name}")
    fragments = yaml.safe_load(module.DOCUMENTATION)["extends_documentation_fragment"]
    wanted = f"byoc.certificates._attributes.ACTIONGROUP_{groups[0].upper()}"
    assert wanted in fragments, f"{name} should extend {wanted}"
    doc = yaml.safe_load(getattr(ModuleDocFragment, f"ACTIONGROUP_{groups[0].upper()}"))
    assert doc["attributes"]["action_group"]["membership"] == [f"byoc.certificates.{groups[0]}"]


def test_every_group_member_exists():
    for group, members in GROUPS.items():
        for member in members:
            assert member in MODULES, f"action group {group} lists {member}, which is not a module"
