# Copyright (c) 2026, byoc.certificates contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""audiocodes_tls_context and _info: argument specs match the docs, secrets are no_log with env fallbacks, and
bad input fails through fail_json (never a traceback) before any request."""

from __future__ import annotations

import json

import pytest
import yaml
from ansible.module_utils.testing import patch_module_args

from ansible_collections.byoc.certificates.plugins.doc_fragments import _audiocodes as fragment
from ansible_collections.byoc.certificates.plugins.modules import audiocodes_tls_context as mod
from ansible_collections.byoc.certificates.plugins.modules import audiocodes_tls_context_info as info_mod

FRAGMENT_OPTIONS = yaml.safe_load(fragment.ModuleDocFragment.DOCUMENTATION)["options"]


@pytest.mark.parametrize("module", [mod, info_mod], ids=["tls_context", "tls_context_info"])
def test_docs_match_argspec(module):
    docs = dict(FRAGMENT_OPTIONS)
    docs.update(yaml.safe_load(module.DOCUMENTATION)["options"])
    spec = module.argument_spec()
    assert set(docs) == set(spec)
    for name, opt in spec.items():
        assert docs[name]["type"] == opt["type"], name
        assert docs[name].get("default") == opt.get("default"), name
        assert docs[name].get("elements") == opt.get("elements"), name
        assert docs[name].get("choices") == opt.get("choices"), name
    for doc in (module.EXAMPLES, module.RETURN):
        assert yaml.safe_load(doc)


@pytest.mark.parametrize("module", [mod, info_mod], ids=["tls_context", "tls_context_info"])
def test_secrets_no_log_and_env_fallbacks(module):
    spec = module.argument_spec()
    assert spec["password"]["no_log"] is True
    assert spec["password"]["fallback"][1] == ["AUDIOCODES_PASSWORD"]
    assert spec["username"]["fallback"][1] == ["AUDIOCODES_USERNAME"]
    assert spec["validate_certs"]["default"] is True
    if module is mod:
        assert spec["private_key"]["no_log"] is True
        assert spec["private_key_passphrase"]["no_log"] is True


def _run(module, args, capsys):
    with patch_module_args(args), pytest.raises(SystemExit):
        module.main()
    return json.loads(capsys.readouterr().out)


def test_out_of_range_index_fails_cleanly(capsys):
    result = _run(mod, {"api_url": "https://127.0.0.1:9/api/v1", "username": "u", "password": "p",
                        "context_index": 100}, capsys)
    assert result["failed"] and result["field"] == "context_index"
    assert "0 to 99" in result["msg"] and "exception" not in result


def test_key_without_certificate_is_refused_by_argspec(capsys):
    result = _run(mod, {"api_url": "https://127.0.0.1:9/api/v1", "username": "u", "password": "p",
                        "context_index": 1, "private_key": "x"}, capsys)
    assert result["failed"] and "certificate" in result["msg"]


def test_info_needs_a_password(capsys, monkeypatch):
    monkeypatch.delenv("AUDIOCODES_PASSWORD", raising=False)
    result = _run(info_mod, {"host": "127.0.0.1", "port": 9, "username": "u"}, capsys)
    assert result["failed"] and result["field"] == "password" and "AUDIOCODES_PASSWORD" in result["msg"]


@pytest.mark.parametrize("extra,field,needle", [
    ({"staging_contexts": [1, 2]}, "context_name", "<context_name>-A"),
    ({"staging_contexts": [0, 1], "context_name": "BYOC"}, "staging_contexts", "management interface"),
    ({"staging_contexts": [1], "context_name": "BYOC"}, "staging_contexts", "exactly two"),
    ({"staging_contexts": [1, 2], "context_name": "BYOC", "context_index": 1}, "context_index", "mode=in_place"),
    ({"context_index": 0}, "context_index", "allow_management_context"),
    ({"context_index": 1, "context_name": "Größe"}, "context_name", "non-ASCII"),
    ({"state": "rollback", "staging_contexts": [1, 2], "context_name": "BYOC"}, "sip_interfaces", "re-binds"),
])
def test_staged_and_context_options_fail_cleanly_before_any_request(capsys, extra, field, needle):
    args = {"api_url": "https://127.0.0.1:9/api/v1", "username": "u", "password": "long-enough-to-mask"}
    args.update(extra)
    result = _run(mod, args, capsys)
    assert result["failed"] and result["field"] == field, result
    assert needle in result["msg"] and "exception" not in result
