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


# -- issue 9 §5: every module of a group accepts the group's common options --------------------------------------
class _Captured(Exception):
    def __init__(self, spec):
        super().__init__("argument_spec captured")
        self.spec = spec


class _CaptureModule:
    def __init__(self, argument_spec=None, **_kwargs):
        raise _Captured(argument_spec)


def argument_spec(name: str) -> dict:
    """The module's real argument_spec, taken from its main() without running it."""
    module = importlib.import_module(f"ansible_collections.byoc.certificates.plugins.modules.{name}")
    saved = {n: getattr(module, n) for n in ("ByocModule", "AnsibleModule") if hasattr(module, n)}
    try:
        for n in saved:
            setattr(module, n, _CaptureModule)
        with pytest.raises(_Captured) as got:
            module.main()
    finally:
        for n, v in saved.items():
            setattr(module, n, v)
    return got.value.spec


def common_options(group: str) -> set[str] | None:
    """A group's common options: those of the connection fragment named like it (doc_fragments/_<group>.py).
    None for a one-module group without such a fragment (all of its options are its own)."""
    try:
        fragment = importlib.import_module(f"ansible_collections.byoc.certificates.plugins.doc_fragments._{group}")
    except ImportError:
        return None
    return set(yaml.safe_load(fragment.ModuleDocFragment.DOCUMENTATION)["options"])


@pytest.mark.parametrize("group", sorted(GROUPS))
def test_every_member_accepts_the_groups_common_options(group):
    members = GROUPS[group]
    common = common_options(group)
    if common is None:
        assert len(members) == 1, f"group {group} has several modules but no doc_fragments/_{group}.py naming its common options"
        return
    for member in members:
        spec = argument_spec(member)
        missing = sorted(common - set(spec))
        assert not missing, f"{member} is in action group {group} but does not accept its common options {missing}"
        fragments = yaml.safe_load(importlib.import_module(
            f"ansible_collections.byoc.certificates.plugins.modules.{member}").DOCUMENTATION)["extends_documentation_fragment"]
        assert f"byoc.certificates._{group}" in fragments


def test_renewal_decision_is_not_in_the_store_group():
    """It reads no store, so it takes none of the store's options (issue 9 §5); it has its own group."""
    assert "certificate_renewal_decision" not in GROUPS["store"]
    assert GROUPS["renewal"] == ["certificate_renewal_decision"]
    assert not {"path", "passphrase", "backend", "s3"} & set(argument_spec("certificate_renewal_decision"))
