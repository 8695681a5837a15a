"""AWX / Automation Controller custom credential types (issue 12 item 2): extensions/awx/credential_types/*.yml.

Each type's injectors are rendered the way AWX renders them (awx/main/models/credential.py, CredentialType
.inject_credential): every input field is a Jinja variable (a field left empty renders as ''), templates are
rendered in a sandboxed environment, `file` injectors are written to files in the job's private data directory and
their paths are `{{ tower.filename }}` / `{{ tower.filename.<name> }}`, `env` goes into the job's environment and
`extra_vars` into its extra vars. The tests then:

- hold every type to the shape AWX accepts (field ids, types, `required`, injector kinds, no reserved variable, only
  declared fields in templates);
- hold the injected names to exactly what the code reads: every env var an injector sets is read by a module
  (`env_fallback` in plugins/) or by the roles/inventories (`lookup('ansible.builtin.env', ...)`), and every
  secret a module reads from the environment is set by some type;
- prove that a module picks up every injected value: each module runs against a private lab with its credentials
  ONLY in the injected environment (none in its arguments), and the device, API or store accepts them (a wrong
  value is refused, so acceptance proves the value itself arrived).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import ssl
import tempfile
import urllib.request
import uuid
from pathlib import Path

import dns.message
import dns.query
import dns.rdatatype
import jinja2
import jinja2.meta
import jinja2.sandbox
import pytest
import yaml

from byoc_harness import REPO, ModuleRunner  # noqa: E402  (on sys.path via conftest)
from byoclab.components import select  # noqa: E402
from byoclab.core import Lab  # noqa: E402

TYPES_DIR = REPO / "extensions" / "awx" / "credential_types"
PARTS = ["bind", "genesys", "audiocodes", "ribbon_core", "ribbon_edge", "moto", "powerdns", "cloudflare", "azure"]
# AWX refuses injectors for these (they would break the job's own environment).
RESERVED = {"PATH", "PYTHONPATH", "VIRTUAL_ENV", "HOME", "JOB_ID", "INVENTORY_ID", "PROJECT_REVISION",
            "AWX_HOST", "MAX_EVENT_RES", "CALLBACK_QUEUE", "CALLBACK_CONNECTION", "CACHE", "JOB_CALLBACK_DEBUG",
            "INVENTORY_HOSTVARS"}
# Secrets a module reads from the environment that no type sets, each with the reason.
NOT_INJECTED = {
    "AWS_SESSION_TOKEN": "short-lived STS tokens do not fit a stored credential; AWX's built-in AWS type sets it",
    "RIBBON_PASSWORD": "read after RIBBON_CORE_PASSWORD / RIBBON_EDGE_PASSWORD for compatibility; both Ribbon types"
                       " used to set it, so one overwrote the other",
}


def load_types() -> dict[str, dict]:
    return {p.stem: yaml.safe_load(p.read_text()) for p in sorted(TYPES_DIR.glob("*.yml"))}


def render(ctype: dict, values: dict, private_data_dir: Path) -> dict:
    """Render a credential type's injectors as AWX does; return {'env', 'extra_vars', 'files'}."""
    env = jinja2.sandbox.ImmutableSandboxedEnvironment(undefined=jinja2.StrictUndefined)
    namespace: dict = {}
    for field in ctype["inputs"]["fields"]:
        default = False if field.get("type") == "boolean" else ""
        namespace[field["id"]] = values.get(field["id"], default)
    files: dict[str, Path] = {}
    tower: dict = {}
    for label, template in (ctype["injectors"].get("file") or {}).items():
        fd, path = tempfile.mkstemp(prefix="awx_", dir=private_data_dir)
        with os.fdopen(fd, "w") as handle:
            handle.write(env.from_string(template).render(**namespace))
        os.chmod(path, 0o600)
        name = label.split(".", 1)[1] if "." in label else None
        files[name or "filename"] = Path(path)
        if name:
            tower.setdefault("filename", {})[name] = path
        else:
            tower["filename"] = path
    namespace["tower"] = tower
    out_env = {k: env.from_string(v).render(**namespace) for k, v in (ctype["injectors"].get("env") or {}).items()}
    extra = {k: env.from_string(v).render(**namespace)
             for k, v in (ctype["injectors"].get("extra_vars") or {}).items()}
    return {"env": out_env, "extra_vars": extra, "files": files}


def code_env_reads() -> tuple[set[str], set[str]]:
    """(every env var the code reads, the subset that modules read into no_log options)."""
    every, secret = set(), set()
    consts = {}
    for path in (REPO / "plugins").rglob("*.py"):
        text = path.read_text()
        consts.update(dict(re.findall(r'^([A-Z_]+) = "([A-Z0-9_]+)"$', text, re.M)))
        for line in text.splitlines():
            m = re.search(r"env_fallback, \[([^\]]*)\]", line)
            if not m:
                continue
            names = [consts.get(n.strip(), n.strip()) for n in m.group(1).replace('"', "").split(",")]
            every.update(names)
            if re.search(r"no_log\"?\s*[:=]\s*True", line):
                secret.update(names)
    # the Ribbon API user: per platform, looked up by _ribbon/credentials.py (env_fallback cannot depend on platform)
    from ansible_collections.byoc.certificates.plugins.module_utils._ribbon.credentials import ENV_CREDENTIALS, SECRET_OPTIONS

    for (_platform, option), names in ENV_CREDENTIALS.items():
        every.update(names)
        if option in SECRET_OPTIONS:
            secret.update(names)
    for base in ("roles", "playbooks", "inventory.example"):
        for path in (REPO / base).rglob("*.yml"):
            every.update(re.findall(r"lookup\('ansible\.builtin\.env', '([A-Z0-9_]+)'\)", path.read_text()))
    return every, secret


def test_every_type_has_the_shape_awx_accepts():
    types = load_types()
    assert len(types) == 11, sorted(types)
    for stem, t in types.items():
        assert set(t) == {"name", "kind", "description", "inputs", "injectors"}, stem
        assert t["kind"] in ("cloud", "net"), stem
        assert t["name"].startswith("BYOC "), stem
        ids = [f["id"] for f in t["inputs"]["fields"]]
        assert len(ids) == len(set(ids)), stem
        for field in t["inputs"]["fields"]:
            assert set(field) <= {"id", "label", "type", "secret", "help_text", "multiline", "format", "choices"}, field
            assert re.fullmatch(r"[a-z_][a-z0-9_]*", field["id"]) and field["type"] in ("string", "boolean"), field
        assert set(t["inputs"].get("required", [])) <= set(ids), stem
        assert set(t["injectors"]) <= {"env", "extra_vars", "file"}, stem
        parser = jinja2.Environment()
        for kind, templates in t["injectors"].items():
            for key, template in templates.items():
                if kind == "env":
                    assert re.fullmatch(r"[A-Z][A-Z0-9_]*", key) and key not in RESERVED, (stem, key)
                    assert not key.startswith("ANSIBLE_"), (stem, key)
                used = jinja2.meta.find_undeclared_variables(parser.parse(template))
                assert used <= set(ids) | {"tower"}, (stem, key, used)
        # every secret field is injected somewhere (a field nobody reads is a credential that does nothing)
        injected = " ".join(str(v) for templates in t["injectors"].values() for v in templates.values())
        assert all(re.search(r"\{\{\s*%s\s*\}\}" % i, injected) for i in ids), stem
    names = [t["name"] for t in types.values()]
    assert len(names) == len(set(names))


def test_no_two_types_inject_the_same_variable():
    """AWX merges the environments of a job's credentials: a name set by two types is silently overwritten by one
    (the Ribbon SBC Core and Edge types both set RIBBON_USERNAME / RIBBON_PASSWORD once)."""
    owners: dict[str, list[str]] = {}
    for stem, t in load_types().items():
        for name in t["injectors"].get("env") or {}:
            owners.setdefault(name, []).append(stem)
    shared = {name: stems for name, stems in owners.items() if len(stems) > 1}
    assert not shared, shared
    assert owners["RIBBON_CORE_USERNAME"] == ["ribbon_core"] and owners["RIBBON_EDGE_USERNAME"] == ["ribbon_edge"]


def test_injected_names_are_exactly_what_the_code_reads():
    every, secret = code_env_reads()
    assert {"GENESYS_CLOUD_CLIENT_SECRET", "BYOC_STORE_PASSPHRASE", "PDNS_API_KEY", "SBC_API_PASSWORD"} <= every
    injected = {k for t in load_types().values() for k in (t["injectors"].get("env") or {})}
    extra = {k for t in load_types().values() for k in (t["injectors"].get("extra_vars") or {})}
    assert not extra  # every value reaches the code through the environment the modules and inventories read
    assert injected <= every, f"injected but read by nothing: {sorted(injected - every)}"
    uncovered = secret - injected - set(NOT_INJECTED)
    assert not uncovered, f"secrets the modules read from the environment that no credential type sets: {uncovered}"


def test_render_follows_awx_semantics(tmp_path):
    """An empty optional field renders as '', file injectors land in private files named by tower.filename."""
    ctype = {"inputs": {"fields": [{"id": "a", "type": "string"}, {"id": "b", "type": "string", "secret": True}]},
             "injectors": {"file": {"template.key": "[k]\nb={{ b }}"},
                           "env": {"A": "{{ a }}", "KEY_FILE": "{{ tower.filename.key }}"},
                           "extra_vars": {"x": "{{ a }}-{{ b }}"}}}
    out = render(ctype, {"b": "s3cret"}, tmp_path)
    assert out["env"]["A"] == "" and out["extra_vars"] == {"x": "-s3cret"}
    key_file = Path(out["env"]["KEY_FILE"])
    assert key_file.parent == tmp_path and key_file.read_text() == "[k]\nb=s3cret"
    assert oct(key_file.stat().st_mode & 0o777) == "0o600"


# -- every value reaches a module ----------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def lab():
    directory = Path(tempfile.mkdtemp(prefix="byoc-awx-cred-"))
    live = Lab(directory / "lab")
    try:
        live.up(select(PARTS))
        yield live
    finally:
        live.down()
        shutil.rmtree(directory, ignore_errors=True)


@pytest.fixture(scope="module")
def inject(tmp_path_factory):
    types = load_types()
    every, _secret = code_env_reads()
    ambient = sorted(n for n in every if n in os.environ and n not in ("BYOC_LAB_JSON", "BYOC_REPORT_DIR"))
    assert not ambient, f"the test environment already sets {ambient}: it would hide what the injectors do"
    pdd = tmp_path_factory.mktemp("awx-private-data")

    def _inject(stem: str, values: dict) -> dict:
        out = render(types[stem], values, pdd)
        return out["env"]
    return _inject


def run_env(run_module: ModuleRunner, module: str, args: dict, env: dict) -> dict:
    return run_module(module, args, env={"HOME": os.environ.get("HOME", ""), **env})


def _get(url: str, ca_file: str | None = None):
    ctx = ssl.create_default_context(cafile=ca_file) if ca_file else None
    with urllib.request.urlopen(url, context=ctx, timeout=30) as resp:
        return json.load(resp)


def test_genesys_client_and_region(lab, inject, tmp_path):
    g = lab.components["genesys"]
    runner = ModuleRunner()
    env = inject("genesys_cloud", {"client_id": g["client_id"], "client_secret": g["client_secret"]})
    args = {"api_url": g["api_url"], "ca_path": str(lab.ca.cert_file), "token_cache_dir": str(tmp_path)}
    res = run_env(runner, "genesys_edge_certificate_info", args, env)
    assert not res.get("failed"), res.get("msg")
    tokens = [r for r in _get(g["control_url"] + "/requests", str(lab.ca.cert_file))["requests"]
              if r["path"] == "/oauth/token"]
    assert tokens, "the emulator saw no token request"
    bad = inject("genesys_cloud", {"client_id": g["client_id"], "client_secret": "wrong-" + uuid.uuid4().hex})
    res = run_env(runner, "genesys_edge_certificate_info", dict(args, token_cache=False), bad)
    assert res.get("failed")  # the emulator checks the secret: acceptance above proves the injected value
    # the region: without api_url, the injected region is what the module resolves (an unknown one is named)
    env = inject("genesys_cloud", {"client_id": "c", "client_secret": "s", "region": "xx_awx_nowhere"})
    res = run_env(runner, "genesys_edge_certificate_info", {"token_cache": False}, env)
    assert res.get("failed") and "xx_awx_nowhere" in res["msg"], res.get("msg")


def test_audiocodes_user(lab, inject):
    dev = lab.components["audiocodes"]["devices"]["mediant-sa"]
    env = inject("audiocodes", {"username": dev["username"], "password": dev["password"]})
    res = run_env(ModuleRunner(), "audiocodes_tls_context_info", {"api_url": dev["api_url"], "ca_path": dev["ca_file"]},
                  env)
    assert not res.get("failed"), res.get("msg")
    bad = inject("audiocodes", {"username": dev["username"], "password": "wrong-" + uuid.uuid4().hex})
    res = run_env(ModuleRunner(), "audiocodes_tls_context_info", {"api_url": dev["api_url"], "ca_path": dev["ca_file"]},
                  bad)
    assert res.get("failed"), res


def test_ribbon_core_rest_sftp_and_pkcs12(lab, inject):
    core = lab.components["ribbon_core"]
    nodes = [{k: n[k] for k in ("name", "host", "port", "host_key")} for n in core["nodes"]]
    args = {"platform": "core", "api_url": core["api_url"], "ca_path": core["ca_file"], "nodes": nodes}
    env = inject("ribbon_core", {"username": core["credentials"]["username"],
                                 "password": core["credentials"]["password"],
                                 "sftp_username": core["sftp"]["username"], "sftp_password": core["sftp"]["password"],
                                 "pkcs12_passphrase": core["initial"]["passphrase"]})
    res = run_env(ModuleRunner(), "ribbon_certificate_info", args, env)
    assert not res.get("failed"), res.get("msg")
    bound = res["bound"]
    # REST: the bound object; SFTP: its file read back from every node; PKCS#12: opened with the injected passphrase
    assert bound["name"] == core["initial"]["name"], bound
    assert sorted(bound["nodes"]) == sorted(n["name"] for n in nodes), bound
    assert all(n["present"] and n["fingerprint"] == core["initial"]["fingerprint"] for n in bound["nodes"].values())
    assert bound["details"], bound  # the certificate inside the PKCS#12 was read: the passphrase arrived


def test_ribbon_edge_user(lab, inject):
    edge = lab.components["ribbon_edge"]
    env = inject("ribbon_edge", {"username": edge["credentials"]["username"],
                                 "password": edge["credentials"]["password"]})
    res = run_env(ModuleRunner(), "ribbon_certificate_info",
                  {"platform": "edge", "api_url": edge["api_url"], "ca_path": edge["ca_file"]}, env)
    assert not res.get("failed"), res.get("msg")
    assert res["certificates"], res


def _ribbon_both(lab, inject) -> tuple[dict, dict, dict]:
    """The environment of a job template holding both Ribbon credentials, and each platform's info arguments."""
    core, edge = lab.components["ribbon_core"], lab.components["ribbon_edge"]
    assert core["credentials"]["password"] != edge["credentials"]["password"]  # else the test could not tell
    env = {**inject("ribbon_core", {"username": core["credentials"]["username"],
                                    "password": core["credentials"]["password"],
                                    "sftp_username": core["sftp"]["username"], "sftp_password": core["sftp"]["password"],
                                    "pkcs12_passphrase": core["initial"]["passphrase"]}),
           **inject("ribbon_edge", {"username": edge["credentials"]["username"],
                                    "password": edge["credentials"]["password"]})}
    nodes = [{k: n[k] for k in ("name", "host", "port", "host_key")} for n in core["nodes"]]
    core_args = {"platform": "core", "api_url": core["api_url"], "ca_path": core["ca_file"], "nodes": nodes}
    edge_args = {"platform": "edge", "api_url": edge["api_url"], "ca_path": edge["ca_file"]}
    return env, core_args, edge_args


def test_ribbon_job_with_both_credentials_gets_both(lab, inject):
    env, core_args, edge_args = _ribbon_both(lab, inject)
    core, edge = lab.components["ribbon_core"], lab.components["ribbon_edge"]
    res = run_env(ModuleRunner(), "ribbon_certificate_info", core_args, env)
    assert not res.get("failed"), res.get("msg")
    assert res["bound"]["name"] == core["initial"]["name"], res["bound"]  # the Core pair accepted the Core user
    res = run_env(ModuleRunner(), "ribbon_certificate_info", edge_args, env)
    assert not res.get("failed"), res.get("msg")
    assert res["certificates"], res  # the Edge accepted the Edge user in the same environment
    for secret in (core["credentials"]["password"], edge["credentials"]["password"]):
        assert secret not in res["_stdout"]


def test_ribbon_old_variable_names_are_still_read_after_the_platform_ones(lab, inject):
    env, core_args, edge_args = _ribbon_both(lab, inject)
    edge = lab.components["ribbon_edge"]
    # an older custom type or a hand-set environment: only the shared names
    old = {"RIBBON_USERNAME": edge["credentials"]["username"], "RIBBON_PASSWORD": edge["credentials"]["password"]}
    res = run_env(ModuleRunner(), "ribbon_certificate_info", edge_args, old)
    assert not res.get("failed"), res.get("msg")
    # the platform's own variables win over the shared ones (here the shared ones hold a wrong password)
    wrong = "wrong-" + uuid.uuid4().hex
    res = run_env(ModuleRunner(), "ribbon_certificate_info", core_args,
                  dict(env, RIBBON_USERNAME="admin", RIBBON_PASSWORD=wrong))
    assert not res.get("failed"), res.get("msg")
    res = run_env(ModuleRunner(), "ribbon_certificate_info", edge_args,
                  {"RIBBON_EDGE_USERNAME": edge["credentials"]["username"], "RIBBON_EDGE_PASSWORD": wrong,
                   "RIBBON_PASSWORD": edge["credentials"]["password"]})
    assert res.get("failed"), res  # the Edge refused the platform's (wrong) password: the shared one was not used
    assert wrong not in res["_stdout"]
    # nothing set: the task fails naming the option and the variables, before any request
    res = run_env(ModuleRunner(), "ribbon_certificate_info", edge_args, {})
    assert res.get("failed") and "username" in res["msg"], res
    assert "RIBBON_EDGE_USERNAME" in res["msg"] and "RIBBON_USERNAME" in res["msg"], res["msg"]


def _txt(host: str, port: int, name: str) -> list[str]:
    resp = dns.query.tcp(dns.message.make_query(name, dns.rdatatype.TXT), host, port=port, timeout=5)
    return [s.decode() for rr in resp.answer for r in rr for s in r.strings]


def test_dns_tsig_key(lab, inject):
    bind = lab.components["bind"]
    prim = bind["primary"]
    name = f"_acme-challenge.awx-{uuid.uuid4().hex[:8]}.{bind['zones']['direct']}"
    env = inject("dns_tsig", {"key_secret": bind["tsig"]["secret"]})
    res = run_env(ModuleRunner(), "dns01_record", {
        "provider": "rfc2136", "record": name, "value": ["awx-tsig"],
        "rfc2136": {"server": prim["host"], "port": prim["port"], "key_name": bind["tsig"]["name"],
                    "key_algorithm": bind["tsig"]["algorithm"]}}, env)
    assert not res.get("failed"), res.get("msg")
    assert _txt(prim["host"], prim["port"], name) == ["awx-tsig"]  # BIND checked the TSIG signature


def test_dns_powerdns_key(lab, inject):
    pdns = lab.components["powerdns"]
    name = f"_acme-challenge.awx-{uuid.uuid4().hex[:8]}.{pdns['zone']}"
    env = inject("dns_powerdns", {"api_key": pdns["api"]["api_key"]})
    res = run_env(ModuleRunner(), "dns01_record", {
        "provider": "powerdns", "record": name, "value": ["awx-pdns"],
        "powerdns": {"url": pdns["api"]["url"], "server_id": pdns["api"]["server_id"]}}, env)
    assert not res.get("failed"), res.get("msg")
    assert _txt(pdns["dns"]["host"], pdns["dns"]["port"], name) == ["awx-pdns"]


def test_dns_cloudflare_token(lab, inject):
    cf = lab.components["cloudflare"]
    name = f"_acme-challenge.awx-{uuid.uuid4().hex[:8]}.{cf['zone']}"
    env = inject("dns_cloudflare", {"api_token": cf["api_token"]})
    res = run_env(ModuleRunner(), "dns01_record", {"provider": "cloudflare", "record": name, "value": ["awx-cf"],
                                                   "cloudflare": {"api_url": cf["api_url"]}}, env)
    assert not res.get("failed"), res.get("msg")
    records = _get(cf["control_url"] + "/state")["records"]
    assert [r["content"].strip('"') for r in records if r["name"] == name and r["type"] == "TXT"] == ["awx-cf"]


def test_dns_route53_keys(lab, inject):
    import boto3

    moto = lab.components["moto"]
    name = f"_acme-challenge.awx-{uuid.uuid4().hex[:8]}.{moto['zone']}"
    args = {"provider": "route53", "record": name, "value": ["awx-r53"],
            "route53": {"endpoint_url": moto["endpoint_url"], "region": moto["region"]}}
    # moto accepts any key, so the proof is the module's own refusal without them and success with them
    res = run_env(ModuleRunner(), "dns01_record", args, {})
    assert res.get("failed"), res
    env = inject("dns_route53", {"access_key": moto["access_key"], "secret_key": moto["secret_key"]})
    res = run_env(ModuleRunner(), "dns01_record", args, env)
    assert not res.get("failed"), res.get("msg")
    client = boto3.client("route53", endpoint_url=moto["endpoint_url"], region_name=moto["region"],
                          aws_access_key_id=moto["access_key"], aws_secret_access_key=moto["secret_key"])
    rrsets = client.list_resource_record_sets(HostedZoneId=moto["hosted_zone_id"], StartRecordName=name + ".",
                                              StartRecordType="TXT", MaxItems="1")["ResourceRecordSets"]
    assert [rr["Value"].strip('"') for r in rrsets if r["Name"].rstrip(".") == name
            for rr in r["ResourceRecords"]] == ["awx-r53"]


def test_dns_azure_service_principal(lab, inject):
    az = lab.components["azure"]
    name = f"_acme-challenge.awx-{uuid.uuid4().hex[:8]}.{az['zone']}"
    env = inject("dns_azure", {k: az[k] for k in ("subscription_id", "tenant_id", "client_id", "client_secret")})
    res = run_env(ModuleRunner(), "dns01_record", {
        "provider": "azure", "record": name, "value": ["awx-az"],
        "azure": {"resource_manager_url": az["resource_manager_url"], "authority_url": az["authority_url"],
                  "ca_path": az["ca_file"]}}, env)
    assert not res.get("failed"), res.get("msg")
    bad = inject("dns_azure", {k: az[k] for k in ("subscription_id", "tenant_id", "client_id")}
                 | {"client_secret": "wrong-" + uuid.uuid4().hex})
    res = run_env(ModuleRunner(), "dns01_record", {
        "provider": "azure", "record": name, "value": ["awx-az"], "state": "absent",
        "azure": {"resource_manager_url": az["resource_manager_url"], "authority_url": az["authority_url"],
                  "ca_path": az["ca_file"]}}, bad)
    assert res.get("failed") and "401" in res["msg"], res.get("msg")  # Entra ID checked the injected secret


def test_store_passphrase(lab, inject, tmp_path):
    cert_file, key_file = lab.ca.issue("awx-store", ["awx-store.lab.test"])
    passphrase = "awx-store-passphrase-" + uuid.uuid4().hex[:8]
    env = inject("store", {"passphrase": passphrase})
    assert env["BYOC_HEARTBEAT_URL"] == ""  # an optional field left empty renders as '' (the role then pings nothing)
    store = tmp_path / "store"
    res = run_env(ModuleRunner(), "certificate_store", {
        "path": str(store), "group": "awx", "certificate": cert_file.read_text(),
        "chain": Path(lab.ca.cert_file).read_text(), "privatekey_content": key_file.read_text()}, env)
    assert not res.get("failed") and res["changed"], res.get("msg")
    # the same material again with the passphrase given explicitly: nothing to change, so the stored key opened
    # with it (the key was encrypted with the injected passphrase); another passphrase cannot open it
    same = {"path": str(store), "group": "awx", "certificate": cert_file.read_text(),
            "chain": Path(lab.ca.cert_file).read_text(), "privatekey_content": key_file.read_text()}
    res = ModuleRunner()("certificate_store", dict(same, passphrase=passphrase))
    assert not res.get("failed") and not res["changed"], res
    assert key_file.read_text().strip().splitlines()[1] not in (store / "awx" / "state.json").read_text()
    res = ModuleRunner()("certificate_store", dict(same, passphrase="another-passphrase-" + uuid.uuid4().hex[:6]))
    assert res.get("failed"), res
