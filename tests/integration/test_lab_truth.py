"""Lab truth for the SIP-TLS path (issue 9 §1-§3): trunks that point BY NAME at the SBC emulators, trust in both
directions, and sessions that keep their old certificate.

These tests run their own lab (bind, pebble, genesys, audiocodes, ribbon_core, ribbon_edge) in a private directory,
because they change the devices' certificates, trust stores and mutual-authentication settings, which the other
test files of the same worker expect in their initial state.

Observed independently of the modules: DNS answers from the lab's BIND, real TLS handshakes (+ SIP OPTIONS) from a
client that resolves the name through the lab's DNS and trusts only the ACME root fetched from Pebble's management
port, the Genesys emulator's computed trunk health and its Edges' open sessions, and the SBC emulators' listener
statistics (via their test-only /_control APIs).
"""

from __future__ import annotations

import base64
import datetime
import hashlib
import json
import shutil
import ssl
import subprocess
import sys
import tempfile
import urllib.parse
import urllib.request
import uuid
from pathlib import Path

import dns.message
import dns.query
import dns.rcode
import dns.rdatatype
import dns.tsig
import dns.tsigkeyring
import dns.update
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import NameOID

from byoc_harness import REPO  # noqa: E402  (on sys.path via conftest)
from byoclab.components import select  # noqa: E402
from byoclab.core import Lab  # noqa: E402
from emulators.common.siptls import sip_options_probe  # noqa: E402

PARTS = ["bind", "pebble", "genesys", "audiocodes", "ribbon_core", "ribbon_edge"]
P12_PASS = "truth-p12-" + uuid.uuid4().hex[:10]
UA = {"User-Agent": "byoc-tests/1 (lab truth)"}


# -- plumbing -------------------------------------------------------------------------------------------------------
def https(url: str, ca_file: str, *, body=None, method: str | None = None, headers: dict | None = None,
          raw: bool = False):
    data = json.dumps(body).encode() if isinstance(body, (dict, list)) else body
    hdrs = {**UA, **({"Content-Type": "application/json"} if isinstance(body, (dict, list)) else {}), **(headers or {})}
    req = urllib.request.Request(url, data=data, method=method or ("POST" if data is not None else "GET"), headers=hdrs)
    with urllib.request.urlopen(req, context=ssl.create_default_context(cafile=ca_file), timeout=90) as resp:
        text = resp.read()
        return text if raw else json.loads(text or b"null")


def sha(cert) -> str:
    return hashlib.sha256(cert.public_bytes(serialization.Encoding.DER)).hexdigest()


def pem(cert) -> str:
    return cert.public_bytes(serialization.Encoding.PEM).decode()


class Truth:
    """The private lab and what the tests need from it."""

    def __init__(self, lab: Lab):
        self.lab = lab
        c = lab.components
        self.ca_file = str(lab.ca.cert_file)
        self.bind, self.pebble, self.genesys = c["bind"], c["pebble"], c["genesys"]
        self.ac = c["audiocodes"]["devices"]["mediant-ha"]
        self.core, self.edge = c["ribbon_core"], c["ribbon_edge"]
        self.targets = {  # label -> sip_tls {"host", "port", "name"}
            "audiocodes": self.ac["sip_tls"], "ribbon_core": self.core["sip_tls"], "ribbon_edge": self.edge["sip_tls"]}
        self.managed_pem = Path(self.genesys["managed_ca_pem_file"]).read_text()
        e1 = self.genesys["edges"][0]
        self.edge_cert = Path(e1["client_cert_file"]).read_text()
        self.edge_key = Path(e1["client_key_file"]).read_text()
        self.token_dir = tempfile.mkdtemp(prefix="byoc-truth-tokens-", dir=lab.dir)
        self.bases: dict[str, str] = {}

    # Genesys emulator (test-only control API)
    def gctl(self, path: str, body: dict | None = None):
        return https(self.genesys["control_url"] + path, self.ca_file, body=body)

    def rounds(self, n: int = 2) -> dict:
        return self.gctl("/health/wait", {"rounds": n, "timeout": 60})

    def trunks(self, state: dict, label: str) -> list[dict]:
        return [t for t in state["trunks"] if t["trunk_base_id"] == self.bases[label]]

    def sessions(self, state: dict, label: str) -> list[dict]:
        s = self.targets[label]
        return [x for x in state["edge_sessions"] if x["proxy"] == f"{s['name']}:{s['port']}"]

    # DNS and an independent SIP-TLS client
    def resolve(self, name: str) -> tuple[str | None, int]:
        b = self.bind["primary"]
        resp = dns.query.tcp(dns.message.make_query(name, dns.rdatatype.A), b["host"], port=b["port"], timeout=5)
        addrs = [r.to_text() for rr in resp.answer if rr.rdtype == dns.rdatatype.A for r in rr]
        return (addrs[0] if addrs else None), resp.rcode()

    def probe(self, label: str, trust: str, *, client: bool = True) -> dict:
        s = self.targets[label]
        address, _rcode = self.resolve(s["name"])
        assert address, f"{s['name']} does not resolve through the lab DNS"
        return sip_options_probe(address, s["port"], cadata=trust, server_name=s["name"],
                                 client_chain_pem=self.edge_cert if client else None,
                                 client_key_pem=self.edge_key if client else None)

    def acme_root(self) -> str:
        # Pebble makes a new root on every start: fetch it now from its management port (acme-and-dns.md §5.1).
        return https(f"{self.pebble['management']}/roots/0", self.ca_file, raw=True).decode()

    # module arguments
    def genesys_args(self, **extra) -> dict:
        g = self.genesys
        return {"api_url": g["api_url"], "client_id": g["client_id"], "client_secret": g["client_secret"],
                "ca_path": self.ca_file, "token_cache_dir": self.token_dir, **extra}

    def core_args(self, **extra) -> dict:
        c = self.core
        return {"platform": "core", "api_url": c["api_url"], "ca_path": c["ca_file"],
                "username": c["credentials"]["username"], "password": c["credentials"]["password"],
                "nodes": [{"name": n["name"], "host": n["host"], "port": n["port"], "host_key": n["host_key"]}
                          for n in c["nodes"]],
                "sftp_username": c["sftp"]["username"], "sftp_password": c["sftp"]["password"],
                "pkcs12_passphrase": P12_PASS, "name_prefix": "truth", **extra}

    def edge_args(self, **extra) -> dict:
        e = self.edge
        return {"platform": "edge", "api_url": e["api_url"], "ca_path": e["ca_file"],
                "username": e["credentials"]["username"], "password": e["credentials"]["password"], **extra}

    def ac_args(self, **extra) -> dict:
        a = self.ac
        return {"api_url": a["api_url"], "username": a["username"], "password": a["password"],
                "ca_path": a["ca_file"], "context_index": 1, "context_name": "BYOC",
                "sip_interfaces": ["SIPInterface_0"], "sync_delay": 0.05, **extra}

    # Ribbon SBC Core REST (as an operator would use it)
    def core_rest(self, method: str, path: str, body: bytes | None = None) -> None:
        c = self.core
        cred = base64.b64encode(f"{c['credentials']['username']}:{c['credentials']['password']}".encode()).decode()
        https(f"{c['api_url']}{path}", c["ca_file"], body=body, method=method, raw=True,
              headers={"Authorization": f"Basic {cred}", "Content-Type": "application/vnd.yang.data+xml"})

    def core_state(self) -> dict:
        return https(f"{self.core['control_url']}/state", self.ca_file)


@pytest.fixture(scope="module")
def truth():
    directory = Path(tempfile.mkdtemp(prefix="byoc-lab-truth-"))
    lab = Lab(directory)
    try:
        lab.up(select(PARTS))
        t = Truth(lab)
        # Trunks that point by name (issue 9 acceptance): one trunk base per SBC, assigned to both Edges.
        for label, s in t.targets.items():
            made = t.gctl("/trunks", {"name": f"Truth {label}", "proxies": [f"{s['name']}:{s['port']}"]})
            t.bases[label] = made["trunk_base_id"]
        yield t
    finally:
        lab.down()
        shutil.rmtree(directory, ignore_errors=True)


# -- ACME DNS-01 at the lab's Pebble, TXT records through TSIG updates of the lab zone at the lab's BIND --------------
def acme_issue(t: Truth, names: list[str]) -> tuple[str, str, str]:
    """(leaf PEM, intermediate PEM, key PEM) for ``names`` (all in the lab zone)."""
    import josepy as jose
    from acme import challenges, client, messages

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    csr = (x509.CertificateSigningRequestBuilder()
           .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, names[0])]))
           .add_extension(x509.SubjectAlternativeName([x509.DNSName(n) for n in names]), critical=False)
           .sign(key, hashes.SHA256()))
    b = t.bind
    ring = dns.tsigkeyring.from_text({b["tsig"]["name"]: b["tsig"]["secret"]})
    zone = b["zones"]["lab"]

    def txt(fqdn: str, value: str, add: bool) -> None:
        msg = dns.update.UpdateMessage(zone, keyring=ring, keyname=b["tsig"]["name"], keyalgorithm=dns.tsig.HMAC_SHA256)
        (msg.add if add else msg.delete)(fqdn + ".", *((60,) if add else ()), "TXT", f'"{value}"')
        assert dns.query.tcp(msg, b["primary"]["host"], port=b["primary"]["port"], timeout=5).rcode() == dns.rcode.NOERROR

    account = jose.JWKEC(key=ec.generate_private_key(ec.SECP256R1()))
    net = client.ClientNetwork(account, alg=jose.ES256, user_agent=UA["User-Agent"], verify_ssl=t.pebble["ca_file"])
    acme = client.ClientV2(client.ClientV2.get_directory(t.pebble["directory"], net), net)
    acme.new_account(messages.NewRegistration.from_data(email="ops@example.test", terms_of_service_agreed=True))
    order = acme.new_order(csr.public_bytes(serialization.Encoding.PEM))
    written = []
    try:
        for authz in order.authorizations:
            chall = next(c for c in authz.body.challenges if isinstance(c.chall, challenges.DNS01))
            record = chall.chall.validation_domain_name(authz.body.identifier.value)
            value = chall.chall.validation(account)
            txt(record, value, True)
            written.append((record, value))
            acme.answer_challenge(chall, chall.chall.response(account))
        final = acme.poll_and_finalize(order, datetime.datetime.now() + datetime.timedelta(seconds=120))
    finally:
        for record, value in written:
            txt(record, value, False)
    chain = x509.load_pem_x509_certificates(final.fullchain_pem.encode())
    key_pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption()).decode()
    return pem(chain[0]), "".join(pem(c) for c in chain[1:]), key_pem


@pytest.fixture(scope="module")
def issued(truth):
    leaf, inter, key = acme_issue(truth, [s["name"] for s in truth.targets.values()])
    return {"leaf": leaf, "inter": inter, "key": key, "root": truth.acme_root(),
            "fp": sha(x509.load_pem_x509_certificate(leaf.encode()))}


def rotate(t: Truth, run_module, cert: dict, *, core_trusts_managed: bool = True) -> None:
    """The hand-built rotation of issue 9 with the collection's modules: the CA chain to Genesys as REMOTE CAs, then
    key + certificate + the MANAGED CA into each SBC."""
    res = run_module("genesys_edge_certificate", t.genesys_args(certificate=cert["inter"] + cert["root"],
                                                                name="Lab truth ACME"))
    assert not res.get("failed"), res
    res = run_module("audiocodes_tls_context", t.ac_args(private_key=cert["key"], certificate=cert["leaf"],
                                                         chain=cert["inter"], trusted_roots=[t.managed_pem]))
    assert not res.get("failed"), res
    core_cas = [cert["root"]] + ([t.managed_pem] if core_trusts_managed else [])
    res = run_module("ribbon_certificate", t.core_args(certificate=cert["leaf"] + cert["inter"],
                                                       private_key=cert["key"], ca_certificates=core_cas))
    assert not res.get("failed"), res
    res = run_module("ribbon_certificate", t.edge_args(certificate=cert["leaf"] + cert["inter"],
                                                       private_key=cert["key"],
                                                       ca_certificates=[cert["root"], t.managed_pem]))
    assert not res.get("failed"), res


def forget_managed_ca_on_core(t: Truth) -> None:
    """Make sure the Core pair does not trust the MANAGED CA: delete any remote PKI object that holds it, through
    the REST API (sbc-apis.md B4), as an operator who left it out would have it."""
    managed_fp = sha(x509.load_pem_x509_certificate(t.managed_pem.encode()))
    st = t.core_state()
    for name, got in st["loaded"].items():
        if got.get("fingerprint") == managed_fp and st["certificates"][name]["type"] == "remote":
            t.core_rest("DELETE", f"/api/config/system/security/pki/certificate/{name}")


# -- tests ------------------------------------------------------------------------------------------------------------
def test_sip_names_resolve_through_the_lab_dns_and_an_unknown_name_is_a_down_trunk(truth):
    for label, s in truth.targets.items():
        address, rcode = truth.resolve(s["name"])
        assert rcode == dns.rcode.NOERROR and address == s["host"] == "127.0.0.1", (label, s)
    assert truth.bind["sip_names"]["mediant-ha"] == truth.ac["sip_tls"]["name"]
    assert all("name" in d["sip_tls"] for d in truth.lab.components["audiocodes"]["devices"].values())

    bad = truth.gctl("/trunks", {"name": "Truth nowhere", "proxies": ["nowhere.lab.test:5061"]})["trunk_base_id"]
    state = truth.rounds(2)
    nowhere = [t for t in state["trunks"] if t["trunk_base_id"] == bad]
    assert len(nowhere) == 2 and not any(t["connected"] for t in nowhere)
    for t in nowhere:
        text = t["options"][0]["errorInfo"]["text"]
        assert "cannot resolve nowhere.lab.test" in text and "NXDOMAIN" in text, text


def test_missing_managed_ca_on_a_mutual_auth_sbc_takes_its_trunk_down(truth, issued, run_module):
    assert truth.core["mutual_auth"] is True
    rotate(truth, run_module, issued, core_trusts_managed=False)
    forget_managed_ca_on_core(truth)
    state = truth.rounds(3)

    core_trunks = truth.trunks(state, "ribbon_core")
    assert len(core_trunks) == 2 and not any(t["connected"] for t in core_trunks), core_trunks
    for t in core_trunks:
        text = t["options"][0]["errorInfo"]["text"]
        assert "refused the Edge's client certificate" in text, text
    for label in ("audiocodes", "ribbon_edge"):  # the others are unaffected
        assert all(t["connected"] for t in truth.trunks(state, label)), truth.trunks(state, label)

    # Independently: the Core serves the new leaf (the Edge trusts it), but refuses the Edge's certificate.
    seen = truth.probe("ribbon_core", issued["root"])
    assert seen["peer_sha256"] == issued["fp"] and not seen["ok"], seen
    assert "refused the Edge's client certificate" in seen["error"], seen
    assert truth.core_state()["sip"]["clients_refused"] >= 1


def test_after_the_rotation_every_trunk_by_name_is_connected(truth, issued, run_module):
    rotate(truth, run_module, issued)
    state = truth.rounds(3)
    for label in truth.targets:
        trunks = truth.trunks(state, label)
        assert len(trunks) == 2, trunks  # one per Edge
        assert all(t["connected"] for t in trunks), (label, trunks)
        assert all(o["optionState"] for t in trunks for o in t["options"]), (label, trunks)
        sessions = truth.sessions(state, label)
        assert len(sessions) == 2 and all(s["peer_sha256"] == issued["fp"] for s in sessions), (label, sessions)

        # what an independent client sees: resolve through the lab DNS, trust only the ACME root, check the name
        seen = truth.probe(label, issued["root"])
        assert seen["ok"] and seen["peer_sha256"] == issued["fp"], (label, seen)
    # mutual authentication on the Core pair, observed without the Edge: a client without a certificate is refused
    anonymous = truth.probe("ribbon_core", issued["root"], client=False)
    assert not anonymous["ok"] and "no client certificate" in anonymous["error"], anonymous


def test_a_kept_edge_session_keeps_the_old_certificate_until_sessions_are_dropped(truth, issued, run_module):
    rotate(truth, run_module, issued)
    state = truth.rounds(2)
    before = {s["edge_id"]: s for s in truth.sessions(state, "ribbon_core")}
    assert len(before) == 2 and all(s["peer_sha256"] == issued["fp"] for s in before.values()), before

    # a new certificate for the Core's name, installed like the first one
    leaf2, inter2, key2 = acme_issue(truth, [truth.core["sip_tls"]["name"]])
    fp2 = sha(x509.load_pem_x509_certificate(leaf2.encode()))
    res = run_module("ribbon_certificate", truth.core_args(certificate=leaf2 + inter2, private_key=key2,
                                                           ca_certificates=[issued["root"], truth.managed_pem]))
    assert res["changed"] and not res.get("failed"), res
    assert truth.probe("ribbon_core", issued["root"])["peer_sha256"] == fp2  # a new connection gets the new one

    # ... but the Edges' kept sessions still run on the old certificate, and the trunk looks healthy on it
    state = truth.rounds(2)
    kept = {s["edge_id"]: s for s in truth.sessions(state, "ribbon_core")}
    for edge_id, s in kept.items():
        assert s["peer_sha256"] == issued["fp"] and s["handshakes"] == before[edge_id]["handshakes"], s
        assert s["last"]["ok"] and s["last"]["reused"], s
    assert all(t["connected"] for t in truth.trunks(state, "ribbon_core"))

    # test-only fault: drop the sessions (what a switchover or bouncing the sipSigPort does, sbc-apis.md B6)
    dropped = https(f"{truth.core['control_url']}/sessions/drop", truth.ca_file, body={})
    assert dropped["dropped"] >= 2, dropped
    state = truth.rounds(2)
    for edge_id, s in {s["edge_id"]: s for s in truth.sessions(state, "ribbon_core")}.items():
        assert s["peer_sha256"] == fp2 and s["handshakes"] == before[edge_id]["handshakes"] + 1, s
    assert all(t["connected"] for t in truth.trunks(state, "ribbon_core"))


def test_ribbon_edge_mutual_authentication_through_its_rest_api(truth, issued, run_module):
    rotate(truth, run_module, issued)
    e = truth.edge
    ctx = ssl.create_default_context(cafile=e["ca_file"])
    opener = urllib.request.build_opener(urllib.request.HTTPSHandler(context=ctx))
    login = urllib.parse.urlencode({"Username": e["credentials"]["username"],
                                    "Password": e["credentials"]["password"]}).encode()
    with opener.open(urllib.request.Request(f"{e['api_url']}/rest/login", data=login), timeout=10) as resp:
        cookies = [c.split(";", 1)[0] for c in resp.headers.get_all("Set-Cookie")]
    jar = dict(c.split("=", 1) for c in cookies)

    def set_mutual(on: bool) -> str:
        req = urllib.request.Request(f"{e['api_url']}/rest/tlsprofile/1", data=f"MutualAuth={int(on)}".encode(),
                                     headers={"Cookie": "; ".join(cookies), "X-CSRF-Token": jar["csrfp_token"],
                                              "Content-Type": "application/x-www-form-urlencoded"})
        with opener.open(req, timeout=10) as resp:
            return resp.read().decode()

    try:
        assert "<http_code>200</http_code>" in set_mutual(True)
        assert https(f"{e['control_url']}/state", truth.ca_file)["tls_profiles"]["1"]["MutualAuth"] == "1"
        anonymous = truth.probe("ribbon_edge", issued["root"], client=False)
        assert not anonymous["ok"] and "refused" in anonymous["error"], anonymous
        with_edge_cert = truth.probe("ribbon_edge", issued["root"])  # the MANAGED CA is in a CA slot
        assert with_edge_cert["ok"], with_edge_cert
        state = truth.rounds(2)
        assert all(t["connected"] for t in truth.trunks(state, "ribbon_edge"))
    finally:
        set_mutual(False)


def test_lab_up_into_an_existing_dir_starts_the_ribbon_core_clean(tmp_path):
    lab_py = [sys.executable, str(REPO / "tests" / "lab" / "lab.py")]
    directory = tmp_path / "lab"

    def up() -> dict:
        proc = subprocess.run(lab_py + ["up", "--dir", str(directory), "ribbon_core"], capture_output=True, text=True,
                              timeout=120, check=False)
        assert proc.returncode == 0, proc.stderr + proc.stdout
        return json.loads((directory / "lab.json").read_text())["components"]["ribbon_core"]

    try:
        first = up()
        stale = Path(first["nodes"][0]["root"]) / "previous-run.p12"
        stale.write_bytes(b"left by an earlier run")
        assert "previous-run.p12" in https(f"{first['control_url']}/state", first["ca_file"])["nodes"][0]["files"]
        second = up()  # into the same --dir: stops the first lab, starts a new one
        files = https(f"{second['control_url']}/state", second["ca_file"])["nodes"]
        assert all("previous-run.p12" not in n["files"] for n in files), files
        assert not stale.exists()
    finally:
        subprocess.run(lab_py + ["down", "--dir", str(directory)], capture_output=True, timeout=60, check=False)
