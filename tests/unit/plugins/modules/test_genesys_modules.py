# Copyright (c) 2026, byoc.certificates contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""genesys_edge_certificate, _info and genesys_trunk_info: docs match the argument specs, the secret is no_log
with env fallbacks, bad input fails through fail_json before any request, and check mode never writes."""

from __future__ import annotations

import json
import types

import pytest
import yaml
from ansible.module_utils.testing import patch_module_args

from ansible_collections.byoc.certificates.plugins.doc_fragments import _genesys as fragment
from ansible_collections.byoc.certificates.plugins.modules import genesys_edge_certificate as cert_mod
from ansible_collections.byoc.certificates.plugins.modules import genesys_edge_certificate_info as info_mod
from ansible_collections.byoc.certificates.plugins.modules import genesys_trunk_info as trunk_mod

MODULES = [cert_mod, info_mod, trunk_mod]
IDS = ["edge_certificate", "edge_certificate_info", "trunk_info"]
FRAGMENT_OPTIONS = yaml.safe_load(fragment.ModuleDocFragment.DOCUMENTATION)["options"]
CONN = {"api_url": "https://127.0.0.1:9", "client_id": "cid", "client_secret": "s3cr3t-value"}


@pytest.mark.parametrize("module", MODULES, ids=IDS)
def test_docs_match_argspec(module):
    docs = dict(FRAGMENT_OPTIONS)
    docs.update(yaml.safe_load(module.DOCUMENTATION)["options"])
    spec = module.argument_spec()
    assert set(docs) == set(spec)
    for name, opt in spec.items():
        assert docs[name]["type"] == opt["type"], name
        default = docs[name].get("default")
        assert (float(default) if opt["type"] == "float" and default is not None else default) == opt.get("default"), name
        assert docs[name].get("elements") == opt.get("elements"), name
        assert docs[name].get("choices") == opt.get("choices"), name
    for doc in (module.EXAMPLES, module.RETURN):
        assert yaml.safe_load(doc)


@pytest.mark.parametrize("module", MODULES, ids=IDS)
def test_secret_no_log_env_fallbacks_tls_on(module):
    spec = module.argument_spec()
    assert spec["client_secret"]["no_log"] is True
    assert spec["client_secret"]["fallback"][1] == ["GENESYS_CLOUD_CLIENT_SECRET"]
    assert spec["client_id"]["fallback"][1] == ["GENESYS_CLOUD_CLIENT_ID"]
    assert spec["region"]["fallback"][1] == ["GENESYS_CLOUD_REGION"]
    assert spec["validate_certs"]["default"] is True


def _run(module, args, capsys, check=False):
    if check:
        args = {**args, "_ansible_check_mode": True}
    with patch_module_args(args), pytest.raises(SystemExit):
        module.main()
    return json.loads(capsys.readouterr().out)


@pytest.fixture
def no_network(monkeypatch):
    def boom(*a, **k):
        raise AssertionError("the API must not be touched")
    for module in MODULES:
        monkeypatch.setattr(module, "client_from_params", boom)


@pytest.mark.parametrize("module,args,field", [
    (cert_mod, {"certificate": "not a pem"}, "certificate"),
    (cert_mod, {}, "certificate"),
    (cert_mod, {"state": "absent"}, "certificate"),
    (cert_mod, {"state": "absent", "fingerprints": ["xyz"]}, "fingerprints"),
    (cert_mod, {"certificate": "x", "services": []}, "services"),
    (info_mod, {"fingerprint": "12"}, "fingerprint"),
    (trunk_mod, {"timeout": 0}, "timeout"),
    (trunk_mod, {"trunk_names": [" "]}, "trunk_names"),
    (info_mod, {"api_url": None, "region": "atlantis"}, "region"),
    (info_mod, {"client_secret": None}, "client_secret"),
], ids=lambda v: v if isinstance(v, str) else None)
def test_bad_input_fails_before_any_request(module, args, field, capsys, no_network, monkeypatch):
    monkeypatch.delenv("GENESYS_CLOUD_CLIENT_SECRET", raising=False)
    res = _run(module, {**CONN, **args}, capsys)
    assert res["failed"] is True and res["msg"].startswith(f"{field}:"), res
    assert "Traceback" not in json.dumps(res)


def chain_pem() -> str:
    import datetime

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    out, signer = [], None
    for cn in ("Root CA", "Issuing CA"):
        key = ec.generate_private_key(ec.SECP256R1())
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])
        now = datetime.datetime.now(datetime.timezone.utc)
        cert = (x509.CertificateBuilder().subject_name(name).issuer_name(signer[0].subject if signer else name)
                .public_key(key.public_key()).serial_number(x509.random_serial_number()).not_valid_before(now)
                .not_valid_after(now + datetime.timedelta(days=1))
                .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
                .sign(signer[1] if signer else key, hashes.SHA256()))
        signer = (cert, key)
        out.insert(0, cert.public_bytes(serialization.Encoding.PEM).decode())
    return "".join(out)


class FakeClient:
    """Records calls; lists one MANAGED CA."""

    def __init__(self, entities):
        self.entities = entities
        self.calls = []
        self.requests = 1
        self.tokens_minted = 0
        self.rate_limit_waits = []

    def call(self, api, method, *args):
        self.calls.append(method)
        if method == "get_telephony_providers_edges_certificateauthorities":
            return types.SimpleNamespace(entities=list(self.entities))
        raise AssertionError(f"unexpected write {method}")

    def to_wire(self, obj):
        return obj


def test_check_mode_plans_but_never_writes(capsys, monkeypatch):
    fake = FakeClient([{"id": "m", "name": "Managed", "type": "MANAGED", "services": ["SIP"], "certificate": ""}])
    monkeypatch.setattr(cert_mod, "client_from_params", lambda p, u: fake)
    res = _run(cert_mod, {**CONN, "certificate": chain_pem(), "_ansible_diff": True}, capsys, check=True)
    assert res["changed"] is True
    assert [a["action"] for a in res["authorities"]] == ["create", "create"]
    assert fake.calls == ["get_telephony_providers_edges_certificateauthorities"]
    assert len(res["diff"]["after"]["remote_certificate_authorities"]) == 2
    assert "s3cr3t-value" not in json.dumps(res)
