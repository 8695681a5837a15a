# Copyright (c) 2026, byoc.certificates contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""genesys_edge_certificate, _info and genesys_trunk_info: docs match the argument specs, the secret is no_log
with env fallbacks, bad input fails through fail_json before any request, and check mode never writes."""

from __future__ import annotations

import datetime
import json
import types

import pytest
import yaml
from ansible.module_utils.basic import AnsibleModule
from ansible.module_utils.testing import patch_module_args

from ansible_collections.byoc.certificates.plugins.doc_fragments import _genesys as fragment
from ansible_collections.byoc.certificates.plugins.module_utils._errors import ByocError
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
    (cert_mod, {"certificate": "x", "groups": ["g1"]}, "groups"),  # recorded in the store: store needed
    (cert_mod, {"state": "absent", "fingerprints": ["ab"], "groups": ["g1"]}, "groups"),
    (cert_mod, {"certificate": "x", "store": {"path": "/tmp"}, "groups": ["g1", "../x"]}, "groups"),
    (info_mod, {"fingerprint": "12"}, "fingerprint"),
    (trunk_mod, {"timeout": 0}, "timeout"),
    (trunk_mod, {"trunk_names": [" "]}, "trunk_names"),
    (info_mod, {"api_url": None, "region": "atlantis"}, "region"),
    (info_mod, {"client_secret": None}, "client_secret"),
    (info_mod, {"ca_path": "/nonexistent/genesys-ca.pem"}, "ca_path"),
    (trunk_mod, {"ca_path": "/"}, "ca_path"),
    (cert_mod, {"certificate": "x", "ca_path": "/nonexistent/genesys-ca.pem"}, "certificate"),
    (trunk_mod, {"client_secret": "s\u00e9cret-value"}, "client_secret"),
    (trunk_mod, {"observed_after": "2026-11-30T04:40:33"}, "observed_after"),
    (trunk_mod, {"observed_after": "soon"}, "observed_after"),
    (trunk_mod, {"poll_interval": float("nan")}, "poll_interval"),
    (info_mod, {"request_timeout": float("inf")}, "request_timeout"),
], ids=lambda v: v if isinstance(v, str) else None)
def test_bad_input_fails_before_any_request(module, args, field, capsys, no_network, monkeypatch):
    monkeypatch.delenv("GENESYS_CLOUD_CLIENT_SECRET", raising=False)
    res = _run(module, {**CONN, **args}, capsys)
    assert res["failed"] is True and res["msg"].startswith(f"{field}:"), res
    assert "Traceback" not in json.dumps(res) and res.get("exception") in (None, "(traceback unavailable)")


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


# -- genesys_trunk_info: the wait, freshness, and the rounds of the action plugin ------------------------------
class FakeClock:
    """Time that only moves when the code under test sleeps or a fake request costs something."""

    def __init__(self):
        self.now = 1000.0
        self.sleeps = []

    def monotonic(self):
        return self.now

    def sleep(self, seconds):
        assert seconds >= 0
        self.sleeps.append(seconds)
        self.now += seconds


class FakeOrg:
    """A Genesys org as the module sees it through the client: trunks that are connected since long ago, whose
    last observation (TrunkMetrics eventTime) is ``observed(clock)``; counts each request by method."""

    def __init__(self, clock, trunks=1, observed=None, connected=True, request_cost=0.0, connect_cost=0.0):
        self.clock = clock
        self.trunks = [{"id": f"t{i:03d}", "name": f"SBC {i}", "edge": {"id": "e1", "name": "Edge 1"},
                        "trunkBase": {"id": f"b{i}", "name": f"SBC {i}"}, "inService": True, "enabled": True,
                        "optionsEnabledStatus": "ENABLED",
                        "connectedStatus": {"connected": connected, "connectedStateTime": "2026-01-01T00:00:00.000Z"},
                        "optionsStatus": [{"proxyAddress": "sbc.lab:5061", "optionState": connected,
                                           "optionStateTime": "2026-01-01T00:00:00.000Z"}]}
                       for i in range(trunks)]
        self.observed = observed or (lambda clock: "2026-01-01T00:00:00.000Z")
        self.request_cost = request_cost
        self.connect_cost = connect_cost
        self.calls: list[tuple[str, int]] = []
        self.requests = 0
        self.tokens_minted = 0
        self.rate_limit_waits = []

    def connect(self):
        self.clock.now += self.connect_cost

    def _cost(self, method, n=0):
        self.calls.append((method, n))
        self.requests += 1
        self.clock.now += self.request_cost

    def list_all(self, api, method, **kw):
        assert method == "get_telephony_providers_edges_trunks" and kw == {"trunk_type": "EXTERNAL"}
        for _page in range(0, max(1, len(self.trunks)), 100):
            self._cost(method)
        return [dict(t) for t in self.trunks]

    def call(self, api, method, ids):
        assert method == "get_telephony_providers_edges_trunks_metrics"
        ids = ids.split(",")
        assert 0 < len(ids) <= 100
        self._cost(method, len(ids))
        return [{"trunk": {"id": i}, "eventTime": self.observed(self.clock)} for i in ids]

    def to_wire(self, obj):
        return obj


class FakeModule:
    def __init__(self, args):
        spec = trunk_mod.argument_spec()
        self.params = {k: v.get("default") for k, v in spec.items()}
        self.params.update(CONN)
        self.params.update(args)
        self.check_mode = False
        self._diff = False
        self.logged = []

    def log(self, msg):
        self.logged.append(msg)


@pytest.fixture
def clock(monkeypatch):
    c = FakeClock()
    monkeypatch.setattr(trunk_mod, "time", types.SimpleNamespace(monotonic=c.monotonic, sleep=c.sleep))
    return c


def _org(monkeypatch, org):
    monkeypatch.setattr(trunk_mod, "client_from_params", lambda p, u: org)
    return org


def test_last_sleep_is_clipped_to_the_timeout_and_a_final_poll_made(clock, monkeypatch):
    _org(monkeypatch, FakeOrg(clock, connected=False))
    start = clock.now
    with pytest.raises(trunk_mod.WaitTimeout) as err:
        trunk_mod.work(FakeModule({"wait": True, "timeout": 6.0, "poll_interval": 4.0}))
    # Polls at 0, 4 and 6 s: the second sleep is cut to the 2 s left, and nothing runs past the timeout.
    assert clock.sleeps == [4.0, 2.0]
    assert clock.now - start == 6.0
    assert [p.split(":")[0] for p in err.value.details["progress"]] == ["poll 1 at 0s", "poll 2 at 4s", "poll 3 at 6s"]


def test_sdk_load_and_login_count_against_the_timeout(clock, monkeypatch):
    _org(monkeypatch, FakeOrg(clock, connected=False, connect_cost=1.5))
    start = clock.now
    res = trunk_mod.work(FakeModule({"wait": True, "timeout": 6.0, "poll_interval": 1.0, "on_timeout": "return"}))
    assert clock.now - start == 6.0 and res["all_up"] is False
    assert res["progress"][-1].startswith("poll 6 at 6s:")


def test_observed_after_waits_for_an_observation_after_the_point(clock, monkeypatch):
    # The trunks are connected all along; Genesys observes them again only from the 3rd poll on (at 2 s).
    start = clock.now
    point = datetime.datetime(2026, 11, 30, 4, 40, 33, tzinfo=datetime.timezone.utc)

    def observed(c):
        late = c.now - start >= 2.0
        return "2026-11-30T04:40:35.000Z" if late else "2026-11-30T04:40:30.000Z"

    org = _org(monkeypatch, FakeOrg(clock, trunks=3, observed=observed))
    fixed = types.SimpleNamespace(now=lambda tz=None: point)
    monkeypatch.setattr(trunk_mod, "datetime", types.SimpleNamespace(datetime=fixed, timezone=datetime.timezone))
    res = trunk_mod.work(FakeModule({"wait": True, "timeout": 30.0, "poll_interval": 1.0,
                                     "observed_after": "2026-11-30T04:40:33Z"}))
    assert res["all_up"] is True and res["polls"] == 3
    assert res["observed_after"] == "2026-11-30T04:40:33.000Z"
    assert {t["observed_at"] for t in res["trunks"]} == {"2026-11-30T04:40:35.000Z"}
    assert all(t["fresh"] and t["up"] for t in res["trunks"])
    assert res["progress"][0] == ("poll 1 at 0s: 0/3 trunks up; down: SBC 0 on Edge 1, SBC 1 on Edge 1, SBC 2 on"
                                  " Edge 1; 3 not observed since the change yet")
    # One listing and one metrics batch per poll.
    assert [m for m, _n in org.calls].count("get_telephony_providers_edges_trunks_metrics") == 3
    assert len(org.calls) == 6


def test_without_observed_after_no_metrics_are_read(clock, monkeypatch):
    org = _org(monkeypatch, FakeOrg(clock, trunks=2))
    res = trunk_mod.work(FakeModule({}))
    assert res["all_up"] is True and "observed_after" not in res
    assert [m for m, _n in org.calls] == ["get_telephony_providers_edges_trunks"]


@pytest.mark.parametrize("trunks,per_poll", [(1, 2), (100, 2), (101, 4), (250, 6)])
def test_requests_per_poll_do_not_grow_with_each_trunk(clock, monkeypatch, trunks, per_poll):
    org = _org(monkeypatch, FakeOrg(clock, trunks=trunks))
    res = trunk_mod.work(FakeModule({"wait": True, "timeout": 3.0, "poll_interval": 1.0, "on_timeout": "return",
                                     "observed_after": "2026-01-02T00:00:00Z"}))
    assert res["polls"] == 4 and res["all_up"] is False
    assert len(org.calls) == 4 * per_poll
    sizes = [n for m, n in org.calls if m == "get_telephony_providers_edges_trunks_metrics"]
    assert sum(sizes) == 4 * trunks and max(sizes) <= 100


# The action plugin: rounds of the real module's work() on a fake clock, where each module call also costs
# process start-up time that the module itself cannot see.
from ansible.plugins.action import ActionBase  # noqa: E402

from ansible_collections.byoc.certificates.plugins.action import genesys_trunk_info as trunk_action  # noqa: E402
from ansible_collections.byoc.certificates.plugins.plugin_utils import _rounds  # noqa: E402


def _action(monkeypatch, clock, org, args, startup=0.7):
    shown, seen_args = [], []
    monkeypatch.setattr(_rounds, "time", types.SimpleNamespace(monotonic=clock.monotonic))
    monkeypatch.setattr(_rounds.display, "display", shown.append)
    monkeypatch.setattr(ActionBase, "run", lambda self, tmp=None, task_vars=None: {})
    _org(monkeypatch, org)

    def execute(module_name, module_args, task_vars):
        seen_args.append(dict(module_args))
        clock.now += startup  # AnsiballZ, Python and Ansible imports: before the module's own clock starts
        org.requests = 0  # each module run has its own client
        try:
            return trunk_mod.work(FakeModule(module_args))
        except ByocError as exc:
            return {"failed": True, "msg": exc.msg, **exc.details}

    action = trunk_action.ActionModule.__new__(trunk_action.ActionModule)
    action._task = types.SimpleNamespace(args=args, check_mode=False)
    action._execute_module = execute
    start = clock.now
    res = action.run(task_vars={})
    return res, shown, seen_args, clock.now - start


def test_rounds_never_run_past_the_timeout(clock, monkeypatch):
    org = FakeOrg(clock, trunks=2, connected=False, connect_cost=0.3, request_cost=0.05)
    res, shown, _args, took = _action(monkeypatch, clock, org, {**CONN, "wait": True, "timeout": 6, "poll_interval": 1})
    assert took <= 6.0, (took, shown)
    assert res["failed"] is True and "still down after 6s" in res["msg"]
    for line in shown:
        seconds = int(line.split(" of 6s")[0].rsplit(", ", 1)[1].rstrip("s"))
        assert seconds <= 6, shown


def test_rounds_number_the_polls_across_the_whole_wait(clock, monkeypatch):
    org = FakeOrg(clock, trunks=1, connected=False, request_cost=0.05)
    monkeypatch.setattr(trunk_action, "ROUND_SECONDS", 3)
    args = {**CONN, "wait": True, "timeout": 12, "poll_interval": 1, "on_timeout": "return"}
    res, shown, _args, _took = _action(monkeypatch, clock, org, args)
    assert len(shown) >= 3  # several rounds ran
    numbers = [int(p.split()[1]) for p in res["progress"]]
    times = [int(p.split()[3].rstrip("s:")) for p in res["progress"]]
    assert numbers == list(range(1, len(numbers) + 1)) and res["polls"] == len(numbers)
    assert times == sorted(times) and times[-1] <= 12
    assert res["api"]["requests"] == len(org.calls)


def test_observed_after_now_is_the_start_of_the_task_in_every_round(clock, monkeypatch):
    org = FakeOrg(clock, trunks=1, request_cost=0.05)  # connected, but never observed again
    monkeypatch.setattr(trunk_action, "ROUND_SECONDS", 2)
    res, _shown, seen, _took = _action(monkeypatch, clock, org, {**CONN, "wait": True, "timeout": 5,
                                                                 "poll_interval": 1, "observed_after": "now",
                                                                 "on_timeout": "return"})
    points = {a["observed_after"] for a in seen}
    assert len(seen) >= 2 and len(points) == 1 and "now" not in points
    assert res["all_up"] is False and res["trunks"][0]["fresh"] is False


# -- genesys_edge_certificate through the shared gate (issue 10) ------------------------------------------------
def _ca_pem(days_from=0, days_to=1, ca=True, with_key=False):
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Gate test CA")])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now + datetime.timedelta(days=days_from))
            .not_valid_after(now + datetime.timedelta(days=days_to))
            .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
            .sign(key, hashes.SHA256()))
    text = cert.public_bytes(serialization.Encoding.PEM).decode()
    if with_key:
        text += key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.TraditionalOpenSSL,
                                  serialization.NoEncryption()).decode()
    return text


@pytest.mark.parametrize("certificate,words", [
    (_ca_pem(with_key=True), "private key material"),
    (_ca_pem(-30, -1), "expired on"),
    (_ca_pem(2, 30), "is not valid before"),
    (_ca_pem(ca=False), "is a leaf (end-entity) certificate"),
    ("-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n", "is not a valid X.509 certificate"),
], ids=["key", "expired", "not-yet-valid", "leaf", "garbage"])
def test_edge_certificate_refuses_bad_material_before_any_request(certificate, words, capsys, no_network):
    res = _run(cert_mod, {**CONN, "certificate": certificate}, capsys)
    assert res["failed"] is True and res["msg"].startswith("certificate: ") and words in res["msg"], res["msg"]
    out = json.dumps(res)
    assert "PRIVATE KEY" not in out and "MHcCAQEE" not in out  # never the key, not even in the invocation


@pytest.fixture
def warned(monkeypatch):
    """What the module passes to module.warn() (recorded here: once controller code is imported in this process,
    ansible-core sends module warnings to the display instead of the result)."""
    seen: list[str] = []
    monkeypatch.setattr(AnsibleModule, "warn", lambda self, msg, **kw: seen.append(msg))
    return seen


def test_expired_ca_allowed_explicitly_is_warned(capsys, monkeypatch, warned):
    fake = FakeClient([{"id": "m", "name": "Managed", "type": "MANAGED", "services": ["SIP"], "certificate": ""}])
    monkeypatch.setattr(cert_mod, "client_from_params", lambda p, u: fake)
    res = _run(cert_mod, {**CONN, "certificate": _ca_pem(-30, -1), "allow_expired_ca": True}, capsys, check=True)
    assert res["changed"] is True and [a["action"] for a in res["authorities"]] == ["create"]
    assert len(warned) == 1 and "expired on" in warned[0] and "allow_expired_ca=true" in warned[0]


def test_an_expired_ca_can_always_be_removed(capsys, monkeypatch, warned):
    old = _ca_pem(-30, -1)
    fake = FakeClient([{"id": "r", "name": "Old", "type": "REMOTE", "services": ["SIP"], "certificate": old}])
    monkeypatch.setattr(cert_mod, "client_from_params", lambda p, u: fake)
    res = _run(cert_mod, {**CONN, "certificate": old, "state": "absent"}, capsys, check=True)
    assert res["changed"] is True and [a["action"] for a in res["authorities"]] == ["delete"]
    assert warned == []


def test_docs_describe_the_action_plugin_that_exists():
    from pathlib import Path

    root = Path(trunk_mod.__file__).resolve().parents[2]
    assert (root / "plugins" / "action" / "genesys_trunk_info.py").is_file()
    text = (root / "docs" / "genesys.md").read_text(encoding="utf-8")
    assert "not written yet" not in text and "plugins/action/genesys_trunk_info.py" in text
