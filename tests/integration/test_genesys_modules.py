"""The genesys_* modules against the lab's Genesys Cloud emulator (part ``genesys``).

Every assertion about an effect is checked independently of the module's own answer: through the emulator's
test-only control API (its stored state and request log), or with a real TLS handshake + SIP OPTIONS probe.
"""

from __future__ import annotations

import json
import os
import re
import ssl
import stat
import sys
import urllib.error
import urllib.request
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "lab"))

from emulators.common.siptls import sip_options_probe  # noqa: E402

CERT_RE = re.compile(r"-----BEGIN CERTIFICATE-----.+?-----END CERTIFICATE-----", re.S)
CAS = "/api/v2/telephony/providers/edges/certificateauthorities"


class Genesys:
    """The emulator as the tests see it: its lab.json description, the control API, and direct API calls."""

    def __init__(self, desc: dict, ca_file: str, token_dir: str):
        self.d = desc
        self.ctx = ssl.create_default_context(cafile=ca_file)
        self.ca_file = ca_file
        self.token_dir = token_dir
        self._token = None

    def http(self, method: str, path: str, body=None, headers=None):
        data = json.dumps(body).encode() if body is not None else None
        hdrs = {"Content-Type": "application/json", **(headers or {})}
        req = urllib.request.Request(self.d["api_url"] + path, data=data, headers=hdrs, method=method)
        try:
            with urllib.request.urlopen(req, context=self.ctx, timeout=60) as resp:
                raw = resp.read()
                return resp.status, json.loads(raw) if raw else None
        except urllib.error.HTTPError as exc:
            raw = exc.read()
            return exc.code, json.loads(raw) if raw else None

    def control(self, method: str, path: str, body=None):
        status, data = self.http(method, "/_control" + path, body)
        assert status == 200, (path, status, data)
        return data

    def state(self) -> dict:
        return self.control("GET", "/state")

    def token(self) -> str:
        import base64

        auth = base64.b64encode(f"{self.d['client_id']}:{self.d['client_secret']}".encode()).decode()
        req = urllib.request.Request(self.d["api_url"] + "/oauth/token", data=b"grant_type=client_credentials",
                                     headers={"Authorization": f"Basic {auth}",
                                              "Content-Type": "application/x-www-form-urlencoded"}, method="POST")
        with urllib.request.urlopen(req, context=self.ctx, timeout=30) as resp:
            return json.loads(resp.read())["access_token"]

    def api(self, method: str, path: str, body=None):
        for _attempt in range(2):
            if self._token is None:
                self._token = self.token()
            status, data = self.http(method, path, body, {"Authorization": f"Bearer {self._token}"})
            if status != 401:
                break
            self._token = None
        return status, data

    def add_remote(self, pem: str, name: str = "test CA", services=("SIP",)) -> str:
        status, data = self.api("POST", CAS, {"name": name, "certificate": pem, "type": "REMOTE",
                                              "services": list(services)})
        assert status == 200, data
        return data["id"]

    def wait_round(self) -> dict:
        return self.control("POST", "/health/wait", {"rounds": 1, "timeout": 30})

    def args(self, **extra) -> dict:
        base = {"api_url": self.d["api_url"], "client_id": self.d["client_id"],
                "client_secret": self.d["client_secret"], "ca_path": self.ca_file, "token_cache_dir": self.token_dir}
        base.update(extra)
        return base

    def pem(self, key: str) -> str:
        return Path(self.d["sbc_ca"][key]).read_text()

    def requests(self) -> list[dict]:
        return self.control("GET", "/requests")["requests"]


def fp_of(pem: str) -> str:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes

    return x509.load_pem_x509_certificate(pem.encode()).fingerprint(hashes.SHA256()).hex()


def remote(state: dict) -> list[dict]:
    return [c for c in state["certificate_authorities"] if c["type"] == "REMOTE"]


@pytest.fixture(scope="module")
def genesys(lab, tmp_path_factory):
    desc = lab.part("genesys")
    return Genesys(desc, lab.ca_file, str(tmp_path_factory.mktemp("genesys-tokens")))


@pytest.fixture(scope="module")
def home(tmp_path_factory):
    # The SDK reads ~/.genesyscloudpython (genesys-cloud-api.md §4.4): run every module with an empty HOME.
    return {"HOME": str(tmp_path_factory.mktemp("home"))}


@pytest.fixture(autouse=True)
def clean(genesys):
    genesys.control("POST", "/reset")
    genesys.control("POST", "/requests/reset")
    yield
    genesys.control("DELETE", "/faults")


@pytest.fixture
def run(run_module, home):
    def _run(name, args, **kw):
        return run_module(name, args, env=home, **kw)
    return _run


# -- genesys_edge_certificate ------------------------------------------------------------------------------
def test_chain_check_mode_then_create_then_idempotent(genesys, run):
    chain = genesys.pem("chain_pem_file")
    want = sorted(fp_of(p) for p in CERT_RE.findall(chain))

    res = run("genesys_edge_certificate", genesys.args(certificate=chain), check=True, diff=True)
    assert res["changed"] is True, res
    assert sorted(res["diff"]["after"]["remote_certificate_authorities"]) == want
    assert res["diff"]["before"]["remote_certificate_authorities"] == {}
    assert remote(genesys.state()) == [], "check mode must not write"
    assert not [r for r in genesys.requests() if r["method"] != "GET" and r["path"] != "/oauth/token"]

    res = run("genesys_edge_certificate", genesys.args(certificate=chain), diff=True)
    assert res["changed"] is True, res
    stored = remote(genesys.state())
    # One entry per CA certificate of the chain, keyed by fingerprint, services defaulting to SIP.
    assert sorted(fp for c in stored for fp in c["fingerprints"]) == want
    assert all(len(c["fingerprints"]) == 1 and c["services"] == ["SIP"] for c in stored)

    res = run("genesys_edge_certificate", genesys.args(certificate=chain))
    assert res["changed"] is False, res
    assert {a["action"] for a in res["authorities"]} == {"none"}
    assert [r["method"] for r in genesys.requests() if r["path"].startswith(CAS)].count("POST") == 2


def test_absent_removes_only_remote_and_managed_is_refused(genesys, run):
    root = genesys.pem("root_pem_file")
    inter = genesys.pem("intermediate_pem_file")
    genesys.add_remote(root, "root")
    genesys.add_remote(inter, "issuing")
    managed_pem = Path(genesys.d["managed_ca_pem_file"]).read_text()

    res = run("genesys_edge_certificate", genesys.args(state="absent", certificate=managed_pem + root))
    assert res.get("failed") is True, res
    assert "MANAGED" in res["msg"] and "certificate" in res["msg"], res["msg"]
    assert len(remote(genesys.state())) == 2, "nothing may be removed when the MANAGED CA is aimed at"
    assert not [r for r in genesys.requests() if r["method"] == "DELETE"]

    res = run("genesys_edge_certificate", genesys.args(state="absent", fingerprints=[fp_of(root)]))
    assert res["changed"] is True, res
    state = genesys.state()
    assert [c["fingerprints"] for c in remote(state)] == [[fp_of(inter)]]
    assert [c["type"] for c in state["certificate_authorities"]].count("MANAGED") == 1


def test_bad_pem_fails_before_any_request(genesys, run):
    res = run("genesys_edge_certificate", genesys.args(certificate="-----BEGIN CERTIFICATE-----\nnot base64!\n"))
    assert res.get("failed") is True
    assert res["msg"].startswith("certificate:"), res["msg"]
    assert "Traceback" not in res["_stdout"]
    assert genesys.requests() == [], "bad input must be refused before the API is touched"


def test_leaf_certificate_is_refused(genesys, run):
    leaf = Path(genesys.d["responders"][0]["cert_file"]).read_text()
    res = run("genesys_edge_certificate", genesys.args(certificate=leaf))
    assert res.get("failed") is True and "is a leaf (end-entity) certificate" in res["msg"], res
    assert genesys.requests() == []


def test_version_conflict_is_reread_and_retried(genesys, run):
    inter = genesys.pem("intermediate_pem_file")
    ca_id = genesys.add_remote(inter, "old name")
    # Another writer changes the entry between our read and our PUT (its version moves on once).
    genesys.control("POST", "/faults", {"conflict": {"count": 1}})
    res = run("genesys_edge_certificate", genesys.args(certificate=inter, name="SBC issuing CA"))
    assert res["changed"] is True, res
    entry = next(c for c in genesys.state()["certificate_authorities"] if c["id"] == ca_id)
    assert entry["name"] == "SBC issuing CA"
    assert entry["version"] == 3  # 1, bumped by the other writer, then our retried write
    puts = [r["status"] for r in genesys.requests() if r["method"] == "PUT"]
    assert puts == [409, 200], puts


def test_token_expiring_mid_run_is_replaced_once(genesys, run):
    inter = genesys.pem("intermediate_pem_file")
    ca_id = genesys.add_remote(inter, "issuing")
    before = genesys.state()["tokens_minted"]
    # The token dies after the next API request: the list call succeeds, the GET of the entry meets a 401.
    genesys.control("POST", "/faults", {"expire_tokens": {"after_requests": 1}})
    res = run("genesys_edge_certificate", genesys.args(certificate=inter, name="renamed"))
    assert res["changed"] is True, res
    assert next(c for c in genesys.state()["certificate_authorities"] if c["id"] == ca_id)["name"] == "renamed"
    statuses = [r["status"] for r in genesys.requests() if r["path"] != "/oauth/token"]
    assert 401 in statuses, statuses
    assert genesys.state()["tokens_minted"] - before <= 2  # at most the cached one (if absent) + one re-auth
    assert res["api"]["tokens_minted"] == 1


def test_wrong_client_secret(genesys, run):
    secret = "definitely-not-the-secret"
    res = run("genesys_edge_certificate_info", genesys.args(client_secret=secret))
    assert res.get("failed") is True, res
    assert "client_id" in res["msg"] and "client_secret" in res["msg"] and "oauth/token" in res["msg"], res["msg"]
    assert secret not in res["_stdout"]
    assert genesys.state()["token_failures"] >= 1


# -- rate limiting --------------------------------------------------------------------------------------------
def test_429_storm_and_5xx_are_waited_out_within_the_cap(genesys, run):
    genesys.control("POST", "/faults", {"errors": {"count": 2, "status": 503},
                                        "rate_limit": {"count": 3, "retry_after": 1}})
    res = run("genesys_edge_certificate_info", genesys.args(max_retry_after=5, type="MANAGED"))
    assert res.get("failed") is not True, res
    assert res["api"]["rate_limit_waits"] == [1.0, 1.0, 1.0]
    assert [r["status"] for r in genesys.requests() if r["path"] == CAS] == [429, 429, 429, 503, 503, 200]
    assert [a["type"] for a in res["authorities"]] == ["MANAGED"]
    assert Path(genesys.d["managed_ca_pem_file"]).read_text().strip() == res["managed_ca"]["certificate"].strip()
    # The token cache is private.
    files = list(Path(genesys.token_dir).glob("token-*.json"))
    assert files and all(stat.S_IMODE(os.stat(f).st_mode) == 0o600 for f in files)
    assert stat.S_IMODE(os.stat(genesys.token_dir).st_mode) & 0o077 == 0


def test_429_beyond_the_cap_fails_clearly(genesys, run):
    genesys.control("POST", "/faults", {"rate_limit": {"count": 100, "retry_after": 30}})
    res = run("genesys_edge_certificate_info", genesys.args(max_retry_after=2))
    assert res.get("failed") is True, res
    assert "429" in res["msg"] and "max_retry_after" in res["msg"] and "30" in res["msg"], res["msg"]
    assert [r["status"] for r in genesys.requests() if r["path"] == CAS] == [429]  # no waiting, no hammering


# -- trunk health ---------------------------------------------------------------------------------------------
def test_trunk_health_follows_the_trust_store(genesys, run):
    chain = genesys.pem("chain_pem_file")
    inter = genesys.pem("intermediate_pem_file")
    root = genesys.pem("root_pem_file")
    responders = genesys.d["responders"]
    addresses = [r["address"] for r in responders]

    # Nothing trusted yet: every trunk is down and says why.
    genesys.wait_round()
    res = run("genesys_trunk_info", genesys.args(sbc_addresses=addresses))
    assert res["all_up"] is False and res["total"] == len(genesys.d["trunks"]), res
    assert all("certificate verif" in " ".join(d["reasons"]) for d in res["down"]), res["down"]

    # Trust the chain; wait until connected (progress shown per poll).
    run("genesys_edge_certificate", genesys.args(certificate=chain))
    res = run("genesys_trunk_info", genesys.args(sbc_addresses=addresses, wait=True, poll_interval=0.5, timeout=60))
    assert res["all_up"] is True, res
    assert res["progress"] and res["progress"][-1].endswith(f"{res['total']}/{res['total']} trunks up")
    assert all(t["connected"] for t in genesys.state()["trunks"])
    # Independently: a real handshake + OPTIONS with only those CAs succeeds.
    host, port = responders[0]["address"].split(":")
    assert sip_options_probe(host, int(port), cadata=chain, server_name=host)["ok"] is True

    # Remove the CA that signs the responders' certificates: down within one polling round.
    res = run("genesys_edge_certificate", genesys.args(state="absent", certificate=inter))
    assert res["changed"] is True
    genesys.wait_round()
    res = run("genesys_trunk_info", genesys.args(trunk_names=["Lab SBC 1"]))
    assert res["all_up"] is False and res["total"] == 1, res
    assert "certificate verif" in res["down"][0]["reasons"][0], res["down"]
    assert sip_options_probe(host, int(port), cadata=root, server_name=host)["ok"] is False

    # Restore it: reconnected.
    run("genesys_edge_certificate", genesys.args(certificate=inter))
    ids = [t["id"] for t in genesys.d["trunks"]]
    res = run("genesys_trunk_info", genesys.args(trunk_ids=ids, wait=True, poll_interval=0.5, timeout=60))
    assert res["all_up"] is True and res["total"] == len(ids), res
    assert all(t["connected"] for t in genesys.state()["trunks"])


def test_trunk_wait_times_out_naming_each_down_trunk(genesys, run):
    res = run("genesys_trunk_info", genesys.args(trunk_names=["Lab SBC 3"], wait=True, poll_interval=0.5, timeout=1.5))
    assert res.get("failed") is True, res
    assert "still down" in res["msg"] and "Lab SBC 3 on Lab Edge 1" in res["msg"] and "Lab Edge 2" in res["msg"]
    assert len(res["down"]) == 2 and res["progress"][-1].startswith("poll ")
    # The wait is visible while it happens (the action plugin prints between rounds), naming what is down.
    assert "genesys_trunk_info: waiting for 2 trunks to be connected" in res["_stdout"], res["_stdout"]
    assert "down: Lab SBC 3 on Lab Edge" in res["_stdout"]


def test_trunk_wait_can_return_instead_of_failing(genesys, run):
    args = genesys.args(trunk_names=["Lab SBC 3"], wait=True, poll_interval=0.5, timeout=1.5, on_timeout="return")
    res = run("genesys_trunk_info", args)
    assert res.get("failed") is not True, res
    assert res["all_up"] is False and len(res["down"]) == 2 and res["polls"] >= 1


def test_unknown_selector_is_reported(genesys, run):
    res = run("genesys_trunk_info", genesys.args(sbc_addresses=["192.0.2.1:5061"]))
    assert res.get("failed") is True and "sbc_addresses: 192.0.2.1:5061" in res["msg"], res


# -- health newer than the change (issue 9 §3) ----------------------------------------------------------------
TRUNKS = "/api/v2/telephony/providers/edges/trunks"
METRICS = TRUNKS + "/metrics"


def wire_time(text: str):
    import datetime

    return datetime.datetime.fromisoformat(text.replace("Z", "+00:00"))


def hold_health(genesys) -> str:
    """Stop the emulated org's health rounds, wait until none is running, and return a point in time (UTC, ISO)
    after every observation it has made."""
    import datetime
    import time

    genesys.control("POST", "/faults", {"hold_health": True})
    for _attempt in range(300):
        st = genesys.state()
        if st["rounds_started"] == st["rounds_completed"]:
            break
        time.sleep(0.05)
    time.sleep(0.01)
    return datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="milliseconds")


def connect_all(genesys, run):
    run("genesys_edge_certificate", genesys.args(certificate=genesys.pem("chain_pem_file")))
    genesys.wait_round()
    st = genesys.wait_round()
    assert all(t["connected"] for t in st["trunks"]), st["trunks"]


def test_connected_before_the_point_is_not_fresh_until_a_round_after_it(genesys, run):
    connect_all(genesys, run)
    point = hold_health(genesys)
    names = ["Lab SBC 1"]
    held = {t["id"]: t for t in genesys.state()["trunks"] if t["name"] in names}
    assert held and all(t["connected"] and wire_time(t["observed"]) < wire_time(point) for t in held.values())

    # Connected, but last observed before the point: not accepted, however long the task waits.
    res = run("genesys_trunk_info", genesys.args(trunk_names=names, observed_after=point, wait=True, poll_interval=0.5,
                                                 timeout=6, on_timeout="return"))
    assert res.get("failed") is not True and res["all_up"] is False, res
    assert res["polls"] >= 1 and res["up_count"] == 0
    for t in res["trunks"]:
        assert t["connected"] is True and t["fresh"] is False and t["up"] is False, t
        assert wire_time(t["observed_at"]) == wire_time(held[t["id"]]["observed"])  # the emulator's eventTime
        assert any("not observed after" in r for r in t["reasons"]), t["reasons"]
    assert all(wire_time(t["observed"]) < wire_time(point)
               for t in genesys.state()["trunks"] if t["id"] in held)  # still held: nothing new was observed

    # The org observes them again: a round that starts after the point makes them fresh.
    genesys.control("DELETE", "/faults")
    genesys.wait_round()
    after = {t["id"]: t for t in genesys.state()["trunks"] if t["id"] in held}
    assert all(wire_time(t["observed"]) > wire_time(point) for t in after.values())
    res = run("genesys_trunk_info", genesys.args(trunk_names=names, observed_after=point))
    assert res["all_up"] is True and res["up_count"] == len(held), res
    later = {t["id"]: t for t in genesys.state()["trunks"] if t["id"] in held}
    for t in res["trunks"]:  # the observation the module reports is one the emulator made (rounds go on meanwhile)
        seen = wire_time(t["observed_at"])
        assert t["fresh"] is True and seen > wire_time(point)
        assert wire_time(after[t["id"]]["observed"]) <= seen <= wire_time(later[t["id"]]["observed"])
    assert res["observed_after"] == wire_time(point).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def test_observed_after_now_through_a_real_change(genesys, run):
    """A rotation-like verify: remove the issuing CA (trunks go down), hold the org's reports, put the CA back, and
    verify with observed_after: now. Stale "down" is refused until the org has observed the trunk again."""
    connect_all(genesys, run)
    inter = genesys.pem("intermediate_pem_file")
    run("genesys_edge_certificate", genesys.args(state="absent", certificate=inter))
    genesys.wait_round()
    assert not any(t["connected"] for t in genesys.wait_round()["trunks"] if t["name"] == "Lab SBC 2")
    hold_health(genesys)
    run("genesys_edge_certificate", genesys.args(certificate=inter))
    res = run("genesys_trunk_info", genesys.args(trunk_names=["Lab SBC 2"], observed_after="now", wait=True,
                                                 poll_interval=0.5, timeout=2))
    assert res.get("failed") is True and "still down after 2s" in res["msg"], res
    assert "not observed after" in res["msg"]
    point = res["observed_after"]
    genesys.control("DELETE", "/faults")
    res = run("genesys_trunk_info", genesys.args(trunk_names=["Lab SBC 2"], observed_after=point, wait=True,
                                                 poll_interval=0.5, timeout=60))
    assert res["all_up"] is True, res
    st = {t["id"]: t for t in genesys.state()["trunks"]}
    for t in res["trunks"]:
        assert st[t["id"]]["connected"] is True and wire_time(st[t["id"]]["observed"]) > wire_time(point)


def test_requests_per_poll_stay_constant_for_many_trunks(genesys, run):
    # 60 more trunk bases on both Edges: 120 more trunks (more than one page and one metrics batch in all).
    edges = [e["id"] for e in genesys.d["edges"]]
    proxy = genesys.d["trunk_bases"][0]["proxies"][0]
    for i in range(60):
        genesys.control("POST", "/trunks", {"name": f"Bulk {i:02d}", "proxies": [proxy], "edges": edges})
    total = len(genesys.state()["trunks"])
    assert total == len(genesys.d["trunks"]) + 120
    hold_health(genesys)  # nothing is observed again: every poll of the wait below finds every trunk stale
    genesys.control("POST", "/requests/reset")
    # A wait long enough for several polls even on a busy machine (the first round is a single poll).
    res = run("genesys_trunk_info", genesys.args(observed_after="now", wait=True, poll_interval=0.5, timeout=15,
                                                 on_timeout="return"))
    assert res["total"] == total and res["all_up"] is False and res["polls"] >= 2, res
    log = genesys.requests()
    listing = [r for r in log if r["path"] == TRUNKS]
    metrics = [r for r in log if r["path"] == METRICS]
    api = [r for r in log if r["path"].startswith("/api/")]
    # Per poll: 2 listing pages (100 per page) and 2 metrics batches (100 ids each), whatever the trunk count.
    assert len(listing) == 2 * res["polls"] and len(metrics) == 2 * res["polls"], (res["polls"], len(listing), len(metrics))
    assert len(api) == 4 * res["polls"] and all(r["status"] == 200 for r in api)
    sizes = genesys.state()["trunk_metrics_queries"]
    assert len(sizes) == 2 * res["polls"] and max(sizes) <= 100 and sum(sizes) == total * res["polls"]


def test_trunk_metrics_endpoint_follows_the_reference(genesys):
    ids = [t["id"] for t in genesys.d["trunks"]]
    genesys.wait_round()
    status, body = genesys.api("GET", f"{METRICS}?trunkIds={','.join(ids)}")
    assert status == 200 and isinstance(body, list) and [m["trunk"]["id"] for m in body] == ids
    observed = {t["id"]: t["observed"] for t in genesys.state()["trunks"]}
    assert all(m["eventTime"] == observed[m["trunk"]["id"]] for m in body)
    assert all(set(m) >= {"eventTime", "trunk", "logicalInterface", "calls", "qos"} for m in body)
    # The SDK's own model (response_type list[TrunkMetrics]) keeps every field, eventTime as the same instant.
    import tempfile

    saved = os.environ.get("HOME")
    with tempfile.TemporaryDirectory() as empty:
        os.environ["HOME"] = empty  # never read ~/.genesyscloudpython (genesys-cloud-api.md §4.4)
        try:
            import PureCloudPlatformClientV2 as sdk
        finally:
            os.environ.update({"HOME": saved} if saved is not None else {})
    client = sdk.ApiClient()
    back = client.sanitize_for_serialization(client._ApiClient__deserialize(body, "list[TrunkMetrics]"))
    assert [{k: v for k, v in m.items() if k != "eventTime"} for m in back] == \
        [{k: v for k, v in m.items() if k != "eventTime"} for m in body]
    assert all(wire_time(b["eventTime"]) == wire_time(m["eventTime"]) for b, m in zip(body, back))
    status, body = genesys.api("GET", METRICS)
    assert status == 400 and body["code"] == "bad.request" and body["details"][0]["fieldName"] == "trunkIds"
    status, body = genesys.api("GET", f"{METRICS}?trunkIds={ids[0]},00000000-0000-0000-0000-000000000000")
    assert status == 404 and body["code"] == "not.found"
    status, body = genesys.api("GET", f"{METRICS}?trunkIds={','.join([ids[0]] * 50 + [ids[1]] * 51)}")
    assert status == 400 and "at most 100" in body["message"]


# -- the shared gate and clean failures (issue 10) --------------------------------------------------------------
def _self_signed_ca(days_from: int, days_to: int, with_key: bool = False) -> str:
    import datetime

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, f"Gate CA {days_from}..{days_to}")])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now + datetime.timedelta(days=days_from))
            .not_valid_after(now + datetime.timedelta(days=days_to))
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(key, hashes.SHA256()))
    text = cert.public_bytes(serialization.Encoding.PEM).decode()
    if with_key:
        text += key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                  serialization.NoEncryption()).decode()
    return text


def test_key_material_in_the_certificate_is_refused_unseen_and_before_any_request(genesys, run):
    material = genesys.pem("root_pem_file") + _self_signed_ca(0, 30, with_key=True).split("-----END CERTIFICATE-----\n")[1]
    key_line = material.split("PRIVATE KEY-----\n")[1].splitlines()[0]
    res = run("genesys_edge_certificate", genesys.args(certificate=material), verbosity=3)
    assert res.get("failed") is True and res["msg"].startswith("certificate: ") and "private key" in res["msg"], res
    assert key_line not in res["_stdout"] and key_line not in json.dumps(res)
    assert genesys.requests() == []


def test_expired_ca_is_refused_unless_allowed_and_then_warned(genesys, run):
    expired = _self_signed_ca(-30, -1)
    res = run("genesys_edge_certificate", genesys.args(certificate=expired))
    assert res.get("failed") is True and "expired on" in res["msg"] and "allow_expired_ca" in res["msg"], res
    assert genesys.requests() == []
    res = run("genesys_edge_certificate", genesys.args(certificate=expired, allow_expired_ca=True))
    assert res["changed"] is True, res
    assert any("expired on" in w and "allow_expired_ca=true" in w for w in res.get("warnings", [])), res
    assert fp_of(expired) in [f for c in remote(genesys.state()) for f in c["fingerprints"]]
    # And it can be removed without any allowance.
    res = run("genesys_edge_certificate", genesys.args(certificate=expired, state="absent"))
    assert res["changed"] is True and remote(genesys.state()) == []


@pytest.mark.parametrize("where", ["missing", "directory"])
def test_missing_ca_path_is_a_clear_input_error(genesys, run, tmp_path, where):
    path = str(tmp_path / "no-such-ca.pem") if where == "missing" else str(tmp_path)
    res = run("genesys_trunk_info", genesys.args(ca_path=path))
    assert res.get("failed") is True and res["msg"].startswith("ca_path: "), res
    assert "Traceback" not in res["_stdout"] and res.get("exception") in (None, "(traceback unavailable)"), res
    assert genesys.requests() == []
