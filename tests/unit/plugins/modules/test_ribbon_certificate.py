# Copyright (c) 2026, byoc.certificates contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""The Ribbon modules' argument specs: secrets are no_log with env fallbacks, and they match the documentation."""

from __future__ import annotations

import pytest
import yaml

from ansible_collections.byoc.certificates.plugins.doc_fragments import _ribbon
from ansible_collections.byoc.certificates.plugins.module_utils._ribbon.credentials import ENV_CREDENTIALS
from ansible_collections.byoc.certificates.plugins.modules import ribbon_certificate, ribbon_certificate_info

SECRETS = {"sftp_password": "RIBBON_SFTP_PASSWORD", "pkcs12_passphrase": "RIBBON_PKCS12_PASSPHRASE"}


def documented_options(module) -> dict:
    opts = dict(yaml.safe_load(_ribbon.ModuleDocFragment.DOCUMENTATION)["options"])
    opts.update(yaml.safe_load(module.DOCUMENTATION).get("options") or {})
    return opts


@pytest.mark.parametrize("module", [ribbon_certificate, ribbon_certificate_info])
def test_secrets_are_no_log_with_env_fallback(module):
    spec = module.argument_spec()
    for name, env in SECRETS.items():
        assert spec[name]["no_log"] is True, name
        assert spec[name]["fallback"][1] == [env], name
    # user name and password depend on the platform (RIBBON_CORE_* / RIBBON_EDGE_*, then the old shared names):
    # read by _ribbon/credentials.py, since an argument-spec env fallback cannot depend on another option
    assert spec["password"]["no_log"] is True and "fallback" not in spec["password"]
    assert ENV_CREDENTIALS[("core", "username")] == ["RIBBON_CORE_USERNAME", "RIBBON_USERNAME"]
    assert ENV_CREDENTIALS[("edge", "password")] == ["RIBBON_EDGE_PASSWORD", "RIBBON_PASSWORD"]
    assert spec["validate_certs"]["default"] is True


def test_key_options_are_no_log():
    spec = ribbon_certificate.argument_spec()
    assert spec["private_key"]["no_log"] is True
    assert spec["private_key_passphrase"]["no_log"] is True


@pytest.mark.parametrize("module", [ribbon_certificate, ribbon_certificate_info])
def test_docs_match_argspec(module):
    docs = documented_options(module)
    spec = module.argument_spec()
    assert set(docs) == set(spec)
    for name, opt in spec.items():
        assert docs[name]["type"] == opt["type"], name
        assert docs[name].get("default") == opt.get("default"), name
        assert docs[name].get("choices") == opt.get("choices"), name
        if opt["type"] == "list":
            assert docs[name]["elements"] == opt["elements"], name
        if "options" in opt:
            assert set(docs[name]["suboptions"]) == set(opt["options"]), name


def test_rollback_target_and_cleanup_returns_are_documented():
    ret = yaml.safe_load(ribbon_certificate.RETURN)
    for key in ("previous", "bound_before", "cleaned_up", "left_behind"):
        assert key in ret, key
    text = " ".join(ret["previous"]["description"])
    assert "every run" in text and "Null when nothing changed" not in text


def test_allow_expired_ca_is_an_explicit_opt_in():
    spec = ribbon_certificate.argument_spec()
    assert spec["allow_expired_ca"] == {"type": "bool", "default": False}
