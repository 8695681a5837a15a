# Copyright (c) 2026, byoc.certificates contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""A role option that meta/argument_specs.yml documents with a default has that default in the role's
defaults/main.yml. ansible-core's argument validation checks the options but does not set a documented default, so
a default that only the spec holds is an 'undefined variable' for a user who leaves the option out (found with
rotation_verify_managed_fingerprint)."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[3]
ROLES = sorted(p.parent.parent for p in (ROOT / "roles").glob("*/meta/argument_specs.yml"))


def _options(role: Path):
    specs = yaml.safe_load((role / "meta" / "argument_specs.yml").read_text())["argument_specs"]
    for entry, spec in specs.items():
        for name, option in (spec.get("options") or {}).items():
            yield entry, name, option


@pytest.mark.parametrize("role", ROLES, ids=[r.name for r in ROLES])
def test_every_documented_default_is_a_role_default(role):
    defaults_file = role / "defaults" / "main.yml"
    defaults = (yaml.safe_load(defaults_file.read_text()) or {}) if defaults_file.exists() else {}
    missing = [f"{entry}: {name}" for entry, name, option in _options(role)
               if "default" in option and name.startswith(role.name + "_") and name not in defaults]
    assert not missing, f"{role.name}: documented defaults missing from defaults/main.yml: {missing}"


@pytest.mark.parametrize("role", ROLES, ids=[r.name for r in ROLES])
def test_a_role_default_agrees_with_its_documented_default(role):
    defaults_file = role / "defaults" / "main.yml"
    defaults = (yaml.safe_load(defaults_file.read_text()) or {}) if defaults_file.exists() else {}
    differ = [f"{entry}: {name} documented {option['default']!r}, defaults/main.yml {defaults[name]!r}"
              for entry, name, option in _options(role)
              if "default" in option and name in defaults and "{{" not in str(defaults[name])
              and defaults[name] != option["default"]]
    assert not differ, differ
