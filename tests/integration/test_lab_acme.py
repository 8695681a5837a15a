"""The lab's ACME servers really issue: one DNS-01 certificate from each part, checked from the outside.

For every ACME part (Pebble 2.10 fast / random / EAB, Pebble 2.4, acme2certifier) a fresh account orders a
certificate for a new name under example.test. The test writes the TXT record with a TSIG-signed RFC 2136
update to the BIND primary, reads it back with a real DNS query, lets the server validate it, and removes the
record afterwards (and reads again that it is gone). The issued chain is verified with cryptography against
the root the part published in lab.json (never the lab's listener CA), for the ordered name.

Client: the ``acme`` library (certbot's, 5.9.0) over HTTPS that trusts only the lab CA.
"""

from __future__ import annotations

import datetime
import json
import secrets
import ssl
import time
import urllib.request
from pathlib import Path

import dns.message
import dns.query
import dns.rcode
import dns.rdatatype
import dns.tsig
import dns.tsigkeyring
import dns.update
import josepy as jose
import pytest
from acme import challenges as acme_challenges
from acme import client as acme_client
from acme import crypto_util as acme_crypto_util
from acme import messages as acme_messages
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.verification import PolicyBuilder, Store, VerificationError

ACME_PARTS = ["pebble", "pebble-random", "pebble-2.4", "pebble-eab", "acme2certifier"]
USER_AGENT = "byoc-certificates-tests/1"


# -- DNS: the challenge record, written and read over the wire -------------------------------------------------
class Dns:
    def __init__(self, bind: dict):
        self.host = bind["primary"]["host"]
        self.port = int(bind["primary"]["port"])
        self.zone = bind["zones"]["direct"]
        tsig = bind["tsig"]
        self.keyring = dns.tsigkeyring.from_text({tsig["name"]: tsig["secret"]})
        self.keyname = tsig["name"]
        assert tsig["algorithm"] == "hmac-sha256"

    def _update(self, fqdn: str, value: str, add: bool) -> None:
        upd = dns.update.UpdateMessage(self.zone, keyring=self.keyring, keyname=self.keyname,
                                       keyalgorithm=dns.tsig.HMAC_SHA256)
        if add:
            upd.add(fqdn + ".", 60, "TXT", f'"{value}"')
        else:
            upd.delete(fqdn + ".", "TXT", f'"{value}"')
        resp = dns.query.tcp(upd, self.host, port=self.port, timeout=5)
        assert resp.rcode() == dns.rcode.NOERROR, f"RFC 2136 update of {fqdn} refused: {dns.rcode.to_text(resp.rcode())}"

    def add_txt(self, fqdn: str, value: str) -> None:
        self._update(fqdn, value, add=True)

    def delete_txt(self, fqdn: str, value: str) -> None:
        self._update(fqdn, value, add=False)

    def txt(self, fqdn: str) -> list[str]:
        """TXT strings of ``fqdn`` as the primary serves them (a real query over TCP)."""
        resp = dns.query.tcp(dns.message.make_query(fqdn, dns.rdatatype.TXT), self.host, port=self.port, timeout=5)
        values = []
        for rrset in resp.answer:
            if rrset.rdtype == dns.rdatatype.TXT:
                values += [b"".join(r.strings).decode() for r in rrset]
        return values


# -- ACME ------------------------------------------------------------------------------------------------------
def new_client(part: dict, lab_ca: str) -> tuple:
    """A fresh ES256 account key and a ClientV2 for the part's directory (HTTPS trusts only the lab CA)."""
    key = jose.JWKEC(key=ec.generate_private_key(ec.SECP256R1()))
    verify = part.get("ca_file", lab_ca) if part["directory"].startswith("https:") else True
    net = acme_client.ClientNetwork(key, alg=jose.ES256, user_agent=USER_AGENT, verify_ssl=verify)
    directory = acme_client.ClientV2.get_directory(part["directory"], net)
    return key, acme_client.ClientV2(directory, net), directory


def register(client, key, directory, eab: dict | None = None):
    binding = None
    if eab:
        binding = acme_messages.ExternalAccountBinding.from_data(
            account_public_key=key.public_key(), kid=eab["kid"], hmac_key=eab["hmac_key"], directory=directory,
            hmac_alg=eab.get("alg", "HS256"))
    reg = acme_messages.NewRegistration.from_data(
        email="ops@example.test", terms_of_service_agreed=True, external_account_binding=binding)
    return client.new_account(reg)


def nonce_retry(fn, *args, **kwargs):
    """Call an acme client method, retrying a badNonce. ``pebble-random`` rejects 5% of nonces on purpose; the acme
    library retries once, so two rejections in a row (0.25% of requests) would fail the test, not the lab."""
    for attempt in range(4):
        try:
            return fn(*args, **kwargs)
        except acme_messages.Error as exc:
            if exc.code != "badNonce" or attempt == 3:
                raise
    raise AssertionError("unreachable")


def issue(part: dict, lab_ca: str, dnsw: Dns, name: str, profile: str | None = None) -> list[x509.Certificate]:
    """Order ``name`` over DNS-01 and return the issued chain (leaf first). Always removes the TXT record."""
    key, client, directory = new_client(part, lab_ca)
    nonce_retry(register, client, key, directory, part.get("eab"))
    cert_key = ec.generate_private_key(ec.SECP256R1())
    csr = acme_crypto_util.make_csr(
        cert_key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                               serialization.NoEncryption()), [name])
    order = nonce_retry(client.new_order, csr, profile=profile) if profile else nonce_retry(client.new_order, csr)
    written: list[tuple[str, str]] = []
    try:
        for authz in order.authorizations:
            assert authz.body.identifier.value == name
            challb = next(c for c in authz.body.challenges if isinstance(c.chall, acme_challenges.DNS01))
            record = challb.chall.validation_domain_name(name)
            value = challb.chall.validation(key)
            dnsw.add_txt(record, value)
            written.append((record, value))
            # Observed independently: the primary really serves the value before the server is asked to look.
            assert value in dnsw.txt(record)
            nonce_retry(client.answer_challenge, challb, challb.chall.response(key))
        deadline = datetime.datetime.now() + datetime.timedelta(seconds=120)
        final = nonce_retry(client.poll_and_finalize, order, deadline)
    finally:
        for record, value in written:
            dnsw.delete_txt(record, value)
    for record, value in written:
        assert value not in dnsw.txt(record), f"TXT {record} still served after clean-up"
    return x509.load_pem_x509_certificates(final.fullchain_pem.encode())


def verify_chain(chain: list[x509.Certificate], roots: list[str], name: str) -> list[x509.Certificate]:
    """Verify leaf + intermediates to one of ``roots`` as a TLS server certificate for ``name``."""
    store = Store([x509.load_pem_x509_certificate(Path(p).read_bytes()) for p in roots])
    verifier = PolicyBuilder().store(store).build_server_verifier(x509.DNSName(name))
    return verifier.verify(chain[0], chain[1:])


def san_names(cert: x509.Certificate) -> list[str]:
    return cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value.get_values_for_type(x509.DNSName)


def get_directory(part: dict) -> dict:
    """The directory as any client sees it (own HTTP request, Pebble 2.10 wants a User-Agent)."""
    ctx = ssl.create_default_context(cafile=part["ca_file"]) if part["directory"].startswith("https:") else None
    req = urllib.request.Request(part["directory"], headers={"User-Agent": USER_AGENT})
    with urllib.request.urlopen(req, context=ctx, timeout=10) as resp:
        return json.loads(resp.read())


def fresh_name(dnsw: Dns, part_name: str) -> str:
    return f"{part_name.replace('.', '-')}-{secrets.token_hex(3)}.{dnsw.zone}"


# -- tests -----------------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def dnsw(lab) -> Dns:
    return Dns(lab.part("bind"))


@pytest.mark.parametrize("part_name", ACME_PARTS)
def test_issues_over_dns01_and_chain_verifies_to_published_root(lab, dnsw, part_name):
    part = lab.part(part_name)
    name = fresh_name(dnsw, part_name)
    chain = issue(part, lab.ca_file, dnsw, name)
    leaf = chain[0]
    assert san_names(leaf) == [name]
    verified = verify_chain(chain, part["roots"], name)
    root_fp = {x509.load_pem_x509_certificate(Path(p).read_bytes()).fingerprint(leaf.signature_hash_algorithm)
               for p in part["roots"]}
    assert verified[-1].fingerprint(leaf.signature_hash_algorithm) in root_fp
    # The lab CA only signs the servers' own listeners; an issued chain must not verify against it.
    with pytest.raises(VerificationError):
        verify_chain(chain, [lab.ca_file], name)


def test_pebble_210_profile_shortlived_sets_lifetime(lab, dnsw):
    part = lab.part("pebble")
    assert part["profiles"]["shortlived"] == 518400
    name = fresh_name(dnsw, "short")
    leaf = issue(part, lab.ca_file, dnsw, name, profile="shortlived")[0]
    lifetime = (leaf.not_valid_after_utc - leaf.not_valid_before_utc).total_seconds()
    # Pebble counts notAfter inclusively (validity - 1 s); allow that, nothing like 90 days.
    assert abs(lifetime - 518400) <= 60, lifetime


@pytest.mark.parametrize("part_name", ["pebble", "pebble-random", "pebble-eab"])
def test_pebble_210_directory_has_ari_and_profiles(lab, part_name):
    part = lab.part(part_name)
    directory = get_directory(part)
    assert "renewalInfo" in directory
    assert set(directory["meta"]["profiles"]) == {"default", "shortlived"}
    assert part["version"].startswith("2.10") and part["ari"] is True
    assert part["profiles"] == {"default": 7776000, "shortlived": 518400}


def test_pebble_24_directory_has_neither_ari_nor_profiles(lab):
    part = lab.part("pebble-2.4")
    directory = get_directory(part)
    assert "renewalInfo" not in directory
    assert "profiles" not in (directory.get("meta") or {})
    assert part["version"] == "2.4.0" and part["ari"] is False and part["profiles"] == {}


def test_acme2certifier_description_matches_its_directory(lab):
    part = lab.part("acme2certifier")
    directory = get_directory(part)
    assert part["ari"] == ("renewalInfo" in directory)
    assert part["eab"] is None and part["version"] == "0.46.3"


def test_pebble_eab_refuses_account_without_binding(lab):
    part = lab.part("pebble-eab")
    assert get_directory(part)["meta"]["externalAccountRequired"] is True
    key, client, directory = new_client(part, lab.ca_file)
    with pytest.raises(acme_messages.Error) as err:
        register(client, key, directory, eab=None)
    assert err.value.typ == "urn:ietf:params:acme:error:externalAccountRequired", err.value


def test_pebble_eab_refuses_wrong_hmac_key_and_accepts_right_one(lab):
    part = lab.part("pebble-eab")
    wrong = dict(part["eab"], hmac_key=jose.b64encode(secrets.token_bytes(32)).decode())
    key, client, directory = new_client(part, lab.ca_file)
    with pytest.raises(acme_messages.Error):
        register(client, key, directory, eab=wrong)
    key, client, directory = new_client(part, lab.ca_file)
    regr = register(client, key, directory, eab=part["eab"])
    assert regr.body.status == "valid"
    assert regr.uri.startswith(part["directory"].rsplit("/", 1)[0])


@pytest.mark.parametrize("part_name", ["pebble", "pebble-2.4", "acme2certifier"])
def test_wrong_txt_value_is_refused(lab, dnsw, part_name):
    """The DNS check is real: a wrong TXT value makes the authorization invalid (nothing is always-valid)."""
    part = lab.part(part_name)
    key, client, directory = new_client(part, lab.ca_file)
    register(client, key, directory, part.get("eab"))
    name = fresh_name(dnsw, "wrong")
    cert_key = ec.generate_private_key(ec.SECP256R1())
    csr = acme_crypto_util.make_csr(cert_key.private_bytes(serialization.Encoding.PEM,
                                                           serialization.PrivateFormat.PKCS8,
                                                           serialization.NoEncryption()), [name])
    order = client.new_order(csr)
    authz = order.authorizations[0]
    challb = next(c for c in authz.body.challenges if isinstance(c.chall, acme_challenges.DNS01))
    record = challb.chall.validation_domain_name(name)
    dnsw.add_txt(record, "not-the-key-authorization")
    try:
        client.answer_challenge(challb, challb.chall.response(key))
        # Read the authorization back until the server has decided (acme's poll_authorizations only raises
        # when a challenge carries an error document, which acme2certifier does not attach).
        deadline = time.monotonic() + 60
        while True:
            authz = client.poll(authz)[0]
            if authz.body.status not in (acme_messages.STATUS_PENDING, acme_messages.STATUS_PROCESSING):
                break
            assert time.monotonic() < deadline, f"{part_name} left the authorization {authz.body.status}"
            time.sleep(0.5)
        assert authz.body.status == acme_messages.STATUS_INVALID
    finally:
        dnsw.delete_txt(record, "not-the-key-authorization")
