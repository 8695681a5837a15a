"""The in-process ACME client (plugins/module_utils/_acme) against the lab's real Pebble and acme2certifier.

DNS-01 records are written with the collection's own DNS core (``_dns.record.run``, rfc2136 provider, TSIG-signed
to the lab's BIND primary) and waited for with its resolve code; issued chains are verified with cryptography
against the root each ACME part published (Pebble's management ``/roots/0``), never the lab's listener CA.
Request counts are asserted where a caller relies on them (a second account lookup is one request, a nonce pool
that saves the newNonce round trip).
"""

from __future__ import annotations

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


@pytest.mark.parametrize("part_name", ["pebble-2.4", "acme2certifier"])
def test_other_servers_issue(lab, dnsw, part_name):
    part = lab.part(part_name)
    c = AcmeClient(part["directory"], key_pem(), ca_file=part.get("ca_file"))
    c.account(contact=["mailto:ops@example.test"], eab=part.get("eab"))  # acme2certifier wants a contact
    names = [dnsw.name(part_name.replace(".", ""))]
    res = issue(c, dnsw, names)
    verify_chain(res["download"]["fullchain"], part["roots"], names)
