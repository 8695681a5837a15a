"""The in-process ACME client (plugins/module_utils/_acme) against the lab's real Pebble and acme2certifier.

DNS-01 records are written with the collection's own DNS core (``_dns.record.run``, rfc2136 provider, TSIG-signed
to the lab's BIND primary) and waited for with its resolve code; issued chains are verified with cryptography
against the root each ACME part published (Pebble's management ``/roots/0``), never the lab's listener CA.
Request counts are asserted where a caller relies on them (a second account lookup is one request, a nonce pool
that saves the newNonce round trip).
"""

from __future__ import annotations

import json
import secrets
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import NameOID
from cryptography.x509.verification import PolicyBuilder, Store

from ansible_collections.byoc.certificates.plugins.module_utils._acme.client import AcmeClient, AcmeProblem
from ansible_collections.byoc.certificates.plugins.module_utils._dns import record as dns_record
from ansible_collections.byoc.certificates.plugins.module_utils._fleet_plan import ari_cert_id


def key_pem(kind: str = "ec256", passphrase: str | None = None) -> bytes:
    key = {"ec256": lambda: ec.generate_private_key(ec.SECP256R1()),
           "ec384": lambda: ec.generate_private_key(ec.SECP384R1()),
           "rsa": lambda: rsa.generate_private_key(public_exponent=65537, key_size=2048)}[kind]()
    enc = serialization.BestAvailableEncryption(passphrase.encode()) if passphrase else serialization.NoEncryption()
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, enc)


def csr_der(names: list[str]) -> bytes:
    key = ec.generate_private_key(ec.SECP256R1())
    csr = (x509.CertificateSigningRequestBuilder()
           .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, names[0])]))
           .add_extension(x509.SubjectAlternativeName([x509.DNSName(n) for n in names]), critical=False)
           .sign(key, hashes.SHA256()))
    return csr.public_bytes(serialization.Encoding.DER)


class Dns:
    """TXT records through the DNS core (rfc2136 to the lab's BIND primary), waited for on the primary."""

    def __init__(self, bind: dict) -> None:
        prim = bind["primary"]
        self.zone = bind["zones"]["direct"]
        self.base = {"provider": "rfc2136", "zone": self.zone, "ttl": 60,
                     "rfc2136": {"server": prim["host"], "port": prim["port"], "key_name": bind["tsig"]["name"],
                                 "key_secret": bind["tsig"]["secret"], "key_algorithm": bind["tsig"]["algorithm"]},
                     "nameservers": [f"{prim['host']}:{prim['port']}"]}

    def publish(self, record: str, value: str) -> None:
        res = dns_record.run(dict(self.base, record=record, value=[value], state="present", wait=True,
                                  wait_timeout=30, wait_interval=0.3))
        assert res["propagated"] is True, res

    def remove(self, record: str, value: str) -> None:
        dns_record.run(dict(self.base, record=record, value=[value], state="absent"))

    def name(self, stem: str) -> str:
        return f"{stem}-{secrets.token_hex(3)}.{self.zone}"


def verify_chain(fullchain: str, roots: list[str], names: list[str]) -> x509.Certificate:
    chain = x509.load_pem_x509_certificates(fullchain.encode())
    store = Store([x509.load_pem_x509_certificate(Path(p).read_bytes()) for p in roots])
    for name in names:
        PolicyBuilder().store(store).build_server_verifier(x509.DNSName(name)).verify(chain[0], chain[1:])
    return chain[0]


def issue(client: AcmeClient, dnsw: Dns, names: list[str], *, replaces: str | None = None) -> dict:
    """The whole DNS-01 flow with the client; returns {'order', 'authz', 'download', 'counts'}."""
    counts = {}
    before = client.request_count
    order = client.new_order(names, replaces=replaces)
    counts["new_order"] = client.request_count - before
    before = client.request_count
    authz = client.authorizations(order)
    counts["authorizations"] = client.request_count - before
    published = []
    try:
        for a in authz:
            if a["status"] == "valid":
                continue
            dnsw.publish(a["record"], a["value"])
            published.append((a["record"], a["value"]))
        before = client.request_count
        for a in authz:
            if a["status"] != "valid":
                client.respond(a["challenge_url"])
        counts["respond"] = client.request_count - before
        for a in authz:
            client.wait_authorization(a["url"], timeout=60)
    finally:
        for rec, value in published:
            dnsw.remove(rec, value)
    final = client.finalize(order, csr_der(names), timeout=60)
    assert final["status"] == "valid" and final["url"] == order["url"]
    before = client.request_count
    pem = client.download(final["certificate"])
    counts["download"] = client.request_count - before
    return {"order": order, "authz": authz, "download": pem, "counts": counts, "final": final}


@pytest.fixture(scope="module")
def dnsw(lab) -> Dns:
    return Dns(lab.part("bind"))


@pytest.fixture(scope="module")
def pebble(lab) -> dict:
    return lab.part("pebble")


@pytest.fixture(scope="module")
def messages() -> list[str]:
    return []


@pytest.fixture(scope="module")
def client(pebble, messages) -> AcmeClient:
    c = AcmeClient(pebble["directory"], key_pem("ec256"), ca_file=pebble["ca_file"], progress=messages.append)
    c.account(contact=["mailto:ops@example.test"])
    return c


@pytest.fixture(scope="module")
def first(client, dnsw, pebble) -> dict:
    names = [dnsw.name("acme-a"), dnsw.name("acme-b")]
    out = issue(client, dnsw, names)
    out["names"] = names
    return out


def test_register_then_find_the_same_account_with_one_request(pebble):
    pem = key_pem("ec384")
    c = AcmeClient(pebble["directory"], pem, ca_file=pebble["ca_file"])
    url = c.account(contact=["mailto:ops@example.test"])
    # directory, newNonce, lookup (accountDoesNotExist), newAccount: the nonce of each answer is reused
    assert c.request_count == 4
    assert url.startswith("https://") and c.account_url == url
    assert c.account() == url
    assert c.request_count == 5  # one lookup, no new account, no nonce request
    other = AcmeClient(pebble["directory"], pem, ca_file=pebble["ca_file"])
    assert other.account(create=False) == url
    with pytest.raises(AcmeProblem) as err:
        AcmeClient(pebble["directory"], key_pem(), ca_file=pebble["ca_file"]).account(create=False)
    assert err.value.kind == "accountDoesNotExist"


def test_rsa_and_encrypted_key_register(pebble):
    c = AcmeClient(pebble["directory"], key_pem("rsa", passphrase="pass-phrase-1"), passphrase="pass-phrase-1",
                   ca_file=pebble["ca_file"])
    assert c.account().startswith("https://")


def test_eab_account_on_the_eab_pebble(lab):
    part = lab.part("pebble-eab")
    c = AcmeClient(part["directory"], key_pem(), ca_file=part["ca_file"])
    with pytest.raises(AcmeProblem) as err:
        c.account()
    assert err.value.kind == "externalAccountRequired", str(err.value)
    wrong = dict(part["eab"], hmac_key=secrets.token_urlsafe(32))
    with pytest.raises(AcmeProblem) as err:
        c.account(eab=wrong)
    assert wrong["hmac_key"] not in str(err.value) and part["eab"]["hmac_key"] not in str(err.value)
    url = c.account(eab=part["eab"])
    assert url.startswith(part["directory"].rsplit("/", 1)[0])


def test_full_issuance_of_two_names(first, pebble):
    names = first["names"]
    assert sorted(a["identifier"] for a in first["authz"]) == sorted(names)
    assert all(a["record"] == f"_acme-challenge.{a['identifier']}" and a["status"] == "pending" for a in first["authz"])
    # every signed request reuses the previous answer's nonce: one request per step, nothing else
    assert first["counts"] == {"new_order": 1, "authorizations": 2, "respond": 2, "download": 1}
    leaf = verify_chain(first["download"]["fullchain"], pebble["roots"], names)
    assert leaf.public_bytes(serialization.Encoding.PEM).decode() == first["download"]["cert"]
    assert first["download"]["fullchain"] == first["download"]["cert"] + first["download"]["chain"]
    issuer = x509.load_pem_x509_certificates(first["download"]["chain"].encode())[0]
    assert issuer.subject == leaf.issuer


def test_order_with_replaces_then_already_replaced(client, first, dnsw, pebble):
    leaf = x509.load_pem_x509_certificate(first["download"]["cert"].encode())
    cert_id = ari_cert_id(leaf)
    second = issue(client, dnsw, first["names"], replaces=cert_id)
    assert second["order"].get("replaces") == cert_id
    verify_chain(second["download"]["fullchain"], pebble["roots"], first["names"])
    # acme-and-dns.md §5.3: Pebble 2.10 refuses a second order replacing the same certificate (alreadyReplaced)
    with pytest.raises(AcmeProblem) as err:
        client.new_order(first["names"], replaces=cert_id)
    assert err.value.kind == "alreadyReplaced", str(err.value)
    assert pebble["directory"].rsplit("/", 1)[0] in err.value.url
    assert "without 'replaces'" in str(err.value)


def test_unpublished_challenge_fails_naming_the_identifier(client, dnsw):
    name = dnsw.name("acme-unpublished")
    order = client.new_order([name])
    (authz,) = client.authorizations(order)
    client.respond(authz["challenge_url"])
    with pytest.raises(AcmeProblem) as err:
        client.wait_authorization(authz["url"], timeout=60)
    exc = err.value
    assert exc.kind in ("unauthorized", "dns"), str(exc)
    assert exc.detail and exc.detail in str(exc)
    assert name in str(exc) and exc.identifier == name


def test_five_orders_in_five_threads_on_one_client(client, dnsw, pebble):
    names = [[dnsw.name(f"acme-t{i}")] for i in range(5)]
    seen_threads = set()

    def one(n: list[str]) -> dict:
        seen_threads.add(threading.get_ident())
        return issue(client, dnsw, n)

    with ThreadPoolExecutor(max_workers=5) as pool:
        results = list(pool.map(one, names))
    for n, res in zip(names, results):
        verify_chain(res["download"]["fullchain"], pebble["roots"], n)
    assert len({r["order"]["url"] for r in results}) == 5


def test_pebble_with_its_randomness(lab, dnsw):
    """pebble-random: 5 % of nonces refused, 50 % authorization reuse, VA sleeps (acme-and-dns.md §5.1). The same
    names ordered twice: the second order may come with already-valid authorizations, which need nothing."""
    part = lab.part("pebble-random")
    c = AcmeClient(part["directory"], key_pem(), ca_file=part["ca_file"])
    c.account()
    names = [dnsw.name("acme-r1"), dnsw.name("acme-r2")]
    for _round in range(2):
        res = issue(c, dnsw, names)
        verify_chain(res["download"]["fullchain"], part["roots"], names)
        assert all(a["status"] == "valid" or a["value"] for a in res["authz"])


@pytest.mark.parametrize("part_name", ["pebble-2.4", "acme2certifier"])
def test_other_servers_issue(lab, dnsw, part_name):
    part = lab.part(part_name)
    c = AcmeClient(part["directory"], key_pem(), ca_file=part.get("ca_file"))
    c.account(contact=["mailto:ops@example.test"], eab=part.get("eab"))  # acme2certifier wants a contact
    names = [dnsw.name(part_name.replace(".", ""))]
    res = issue(c, dnsw, names)
    verify_chain(res["download"]["fullchain"], part["roots"], names)


# -- what Pebble cannot do: rate limits, 503, refused nonces on demand, dropped connections -------------------------
# A scripted stub ACME server over real HTTP on loopback (the client under test is not touched): each path answers
# from a queue of (status, headers, body) and then with its default; every request is recorded.
class StubAcme:
    def __init__(self) -> None:
        import http.server

        self.script: dict[str, list] = {}
        self.seen: list[tuple[str, str, str | None]] = []
        self.counter = 0
        stub = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, *args):  # quiet
                pass

            def _answer(self):
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                nonce = None
                if body:
                    nonce = json.loads(dec(json.loads(body)["protected"])).get("nonce")
                stub.seen.append((self.command, self.path, nonce))
                queue = stub.script.get(self.path) or []
                status, headers, payload = queue.pop(0) if queue else stub.default(self.path)
                stub.counter += 1
                data = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("Replay-Nonce", f"nonce-{stub.counter}")
                for k, v in headers.items():
                    self.send_header(k, v)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(data)

            do_GET = do_POST = do_HEAD = _answer

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def default(self, path: str):
        u = self.url
        if path == "/dir":
            return 200, {}, {"newNonce": f"{u}/nonce", "newAccount": f"{u}/acct", "newOrder": f"{u}/order"}
        if path == "/acct":
            return 200, {"Location": f"{u}/acct/1"}, {"status": "valid"}
        if path == "/order":
            return 201, {"Location": f"{u}/order/1"}, {"status": "pending", "authorizations": [f"{u}/authz/1"]}
        if path == "/authz/1":
            return 200, {}, {"status": "valid", "identifier": {"type": "dns", "value": "a.example.test"}}
        return 200, {}, {}

    def problem(self, status: int, kind: str, detail: str, **headers):
        return status, dict(headers, **{"Content-Type": "application/problem+json"}), \
            {"type": f"urn:ietf:params:acme:error:{kind}", "detail": detail}

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def dec(text: str) -> bytes:
    import base64

    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


@pytest.fixture()
def stub():
    s = StubAcme()
    yield s
    s.close()


def stub_client(stub: StubAcme, **kw) -> tuple[AcmeClient, list, list]:
    said, slept = [], []
    c = AcmeClient(f"{stub.url}/dir", key_pem(), progress=said.append, sleep=slept.append, **kw)
    c.account()
    return c, said, slept


def test_rate_limit_with_short_retry_after_is_waited_and_retried(stub):
    c, said, slept = stub_client(stub)
    stub.script["/order"] = [stub.problem(429, "rateLimited", "slow down", **{"Retry-After": "2"})]
    before = c.request_count
    assert c.new_order(["a.example.test"])["url"] == f"{stub.url}/order/1"
    assert c.request_count - before == 2 and slept == [2.0]
    assert said == ["ACME newOrder: rate limited, waiting 2 s as Retry-After says (attempt 1 of 4)"]


def test_rate_limit_with_long_retry_after_raises_at_once_with_retry_after(stub):
    c, said, slept = stub_client(stub)
    stub.script["/order"] = [stub.problem(429, "rateLimited", "too many certificates", **{"Retry-After": "3600"})]
    before = c.request_count
    with pytest.raises(AcmeProblem) as err:
        c.new_order(["a.example.test"])
    assert c.request_count - before == 1 and slept == [] and said == []
    assert err.value.kind == "rateLimited" and err.value.retry_after == 3600.0 and err.value.status == 429
    assert "too many certificates" in str(err.value) and "3600 s" in str(err.value)


def test_503_without_problem_document_is_retried_then_raised(stub):
    c, said, slept = stub_client(stub, retries=2)
    stub.script["/order"] = [(503, {"Retry-After": "1"}, b"busy")] * 5
    before = c.request_count
    with pytest.raises(AcmeProblem) as err:
        c.new_order(["a.example.test"])
    assert c.request_count - before == 3 and slept == [1.0, 1.0]
    assert err.value.kind == "http" and err.value.status == 503 and err.value.retry_after == 1.0
    assert said[0] == "ACME newOrder: server unavailable (503), waiting 1 s as Retry-After says (attempt 1 of 2)"
    stub.script["/order"] = [(503, {}, b"busy")]  # no Retry-After: raised at once
    with pytest.raises(AcmeProblem) as err:
        c.new_order(["a.example.test"])
    assert err.value.retry_after is None and len(slept) == 2


def test_gateway_error_without_retry_after_gets_a_short_bounded_retry(stub):
    c, said, slept = stub_client(stub, retries=2)
    stub.script["/order"] = [(502, {}, b"bad gateway")] * 5
    before = c.request_count
    with pytest.raises(AcmeProblem) as err:
        c.new_order(["a.example.test"])
    assert c.request_count - before == 3 and slept == [2.0, 2.0]
    assert err.value.status == 502 and err.value.retry_after is None
    assert said[0] == "ACME newOrder: server unavailable (502), waiting 2 s (gateway error, no Retry-After) (attempt 1 of 2)"


def test_bad_nonce_is_retried_with_the_fresh_nonce_then_raised(stub):
    c, said, slept = stub_client(stub, bad_nonce_retries=3)
    stub.script["/order"] = [stub.problem(400, "badNonce", "stale")]
    c.new_order(["a.example.test"])
    orders = [s for s in stub.seen if s[1] == "/order"]
    assert len(orders) == 2 and orders[0][2] != orders[1][2]  # the second attempt used the error's nonce
    stub.script["/order"] = [stub.problem(400, "badNonce", "stale")] * 10
    before = c.request_count
    with pytest.raises(AcmeProblem) as err:
        c.new_order(["a.example.test"])
    assert c.request_count - before == 4 and err.value.kind == "badNonce" and slept == []


def test_other_problems_raise_at_once_and_are_scrubbed(stub):
    c, said, slept = stub_client(stub)
    eab = {"kid": "k1", "hmac_key": "c2VjcmV0LWhtYWMta2V5LXZhbHVl", "alg": "HS256"}
    stub.script["/acct"] = [stub.problem(400, "accountDoesNotExist", "none"),
                            stub.problem(400, "malformed", f"bad binding {eab['hmac_key']}")]
    with pytest.raises(AcmeProblem) as err:
        c.account(eab=eab)
    assert eab["hmac_key"] not in str(err.value) and eab["hmac_key"] not in err.value.detail
    assert err.value.kind == "malformed" and slept == []


def test_dropped_connections_are_retried_briefly_then_reported(stub):
    c, said, slept = stub_client(stub, retries=3)
    stub.close()
    before = c.request_count
    with pytest.raises(AcmeProblem) as err:
        c.new_order(["a.example.test"])
    assert c.request_count - before == 4 and slept == [1.0, 2.0, 4.0]
    assert err.value.kind == "connection" and stub.url in str(err.value)
    stub.server = type("Closed", (), {"shutdown": lambda self: None, "server_close": lambda self: None})()


def test_polling_honours_retry_after_and_reports_progress_every_10_s(stub):
    c, said, slept = stub_client(stub)
    pending = (200, {"Retry-After": "3"}, {"status": "pending", "identifier": {"type": "dns", "value": "a.example.test"}})
    stub.script["/authz/1"] = [pending] * 10
    assert c.wait_authorization(f"{stub.url}/authz/1", timeout=120)["status"] == "valid"
    assert slept == [3.0] * 10
    # polled at 0, 3, ... 27 s of waiting: reported at 12 s and 24 s, with what is waited on and the last status
    assert len(said) == 2 and all("a.example.test" in m and "status pending" in m for m in said), said
    assert "12 s so far" in said[0] and "24 s so far" in said[1]
    stub.script["/authz/1"] = [pending] * 100
    with pytest.raises(AcmeProblem) as err:
        c.wait_authorization(f"{stub.url}/authz/1", timeout=10)
    assert err.value.kind == "timeout" and "pending" in str(err.value) and "a.example.test" in str(err.value)


def test_no_process_wide_urllib_opener(stub):
    import urllib.request

    before = getattr(urllib.request, "_opener", None)
    c, said, slept = stub_client(stub)
    c.new_order(["a.example.test"])
    assert getattr(urllib.request, "_opener", None) is before
