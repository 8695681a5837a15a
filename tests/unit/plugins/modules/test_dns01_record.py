# Copyright (c) 2026, byoc.certificates contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""The module's argument spec: secrets are no_log with env fallbacks, and it matches the documentation."""

from __future__ import annotations

import yaml

from ansible_collections.byoc.certificates.plugins.modules import dns01_record

SECRETS = {("rfc2136", "key_secret"): "BYOC_TSIG_KEY_SECRET", ("route53", "secret_key"): "AWS_SECRET_ACCESS_KEY",
           ("route53", "session_token"): "AWS_SESSION_TOKEN", ("powerdns", "api_key"): "PDNS_API_KEY",
           ("cloudflare", "api_token"): "CLOUDFLARE_API_TOKEN", ("azure", "client_secret"): "AZURE_CLIENT_SECRET"}
AZURE_ENV = {"subscription_id": "AZURE_SUBSCRIPTION_ID", "tenant_id": "AZURE_TENANT_ID", "client_id": "AZURE_CLIENT_ID"}


def test_secrets_are_no_log_with_env_fallback():
    spec = dns01_record.argument_spec()
    for (group, name), env in SECRETS.items():
        opt = spec[group]["options"][name]
        assert opt["no_log"] is True, (group, name)
        assert opt["fallback"][1] == [env]


def test_docs_match_argspec():
    docs = yaml.safe_load(dns01_record.DOCUMENTATION)["options"]
    spec = dns01_record.argument_spec()
    assert set(docs) == set(spec)
    for name, opt in spec.items():
        assert docs[name]["type"] == opt["type"], name
        if "options" in opt:
            assert set(docs[name]["suboptions"]) == set(opt["options"]), name
    assert docs["provider"]["choices"] == spec["provider"]["choices"]


def test_azure_credentials_come_from_the_usual_environment_variables():
    opts = dns01_record.argument_spec()["azure"]["options"]
    for name, env in AZURE_ENV.items():
        assert opts[name]["fallback"][1] == [env], name
    assert "azure" in dns01_record.argument_spec()["provider"]["choices"]


def test_examples_and_return_parse():
    assert "txt_now" in yaml.safe_load(dns01_record.RETURN)
    assert any(t.get("byoc.certificates.dns01_record", {}).get("provider") == "azure"
               for t in yaml.safe_load(dns01_record.EXAMPLES))
