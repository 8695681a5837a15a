"""The lab's lagging DNS secondary (``lab.py up --lag-secondary SECONDS``; tests/lab/byoclab/components/bind.py).

Real zones have secondaries that get a change some time after the primary, and a CA may ask any authoritative
server. With a lag of ``LAG`` seconds the lab's secondary serves ``lab.test`` as the primary served it ``LAG`` seconds
earlier, and Pebble validates DNS-01 at that secondary. Asserted here, by what each server answers (real DNS
queries) and by what Pebble decides, never by timings:

- a TXT record published at the primary is not served by the secondary at first, then it is; a deletion too;
- an ACME order whose challenge is answered as soon as the primary serves the record fails validation (the lab is no
  more optimistic than reality), while ``dns01_record`` waiting for both authoritative servers (lab.json
  ``lab_zone_nameservers``) lets the next order pass.
"""

from __future__ import annotations

import datetime
import secrets
import shutil
import tempfile
import time
from pathlib import Path

import dns.query
import dns.rcode
import dns.tsigkeyring
import dns.update
import josepy as jose
import pytest
from acme import challenges as acme_challenges
from acme import client as acme_client
from acme import crypto_util as acme_crypto_util
from acme import errors as acme_errors
from acme import messages as acme_messages
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from byoclab import dnstools  # conftest puts tests/lab on sys.path
from byoclab.components import select
from byoclab.core import Lab

LAG = 4
POLL = 0.5
USER_AGENT = "byoc-certificates-tests/1"


@pytest.fixture(scope="module")
def laglab():
    """bind (secondary lagging LAG s) and pebble, in a lab of this module's own (the session lab has no lag)."""
    directory = Path(tempfile.mkdtemp(prefix="byoc-lab-lag-"))
    lab = Lab(directory)
    parts = select(["pebble"])
    for part in parts:
        if part.name == "bind":
            part.lag = LAG
    try:
        lab.up(parts)
        yield lab.components
    finally:
        lab.down()
        shutil.rmtree(directory, ignore_errors=True)


class Servers:
    def __init__(self, bind: dict):
        self.bind = bind
        self.prim = (bind["primary"]["host"], int(bind["primary"]["port"]))
        self.sec = (bind["secondary"]["host"], int(bind["secondary"]["port"]))

    def update(self, fqdn: str, value: str, add: bool) -> None:
        tsig = self.bind["tsig"]
        upd = dns.update.UpdateMessage(self.bind["zones"]["lab"], keyring=dns.tsigkeyring.from_text(
            {tsig["name"]: tsig["secret"]}), keyname=tsig["name"], keyalgorithm=tsig["algorithm"])
        if add:
            upd.add(fqdn + ".", 60, "TXT", f'"{value}"')
        else:
            upd.delete(fqdn + ".", "TXT", f'"{value}"')
        assert dns.query.tcp(upd, self.prim[0], port=self.prim[1], timeout=5).rcode() == dns.rcode.NOERROR

    def answers(self, fqdn: str) -> tuple[list[str], list[str]]:
        return dnstools.query_txt(*self.prim, fqdn), dnstools.query_txt(*self.sec, fqdn)

    def poll_until_secondary(self, fqdn: str, want: list[str], limit: int = 240) -> list[tuple[list, list]]:
        """Both servers' answers every POLL s until the secondary answers ``want`` (at most ``limit`` polls)."""
        seen = []
        for _poll in range(limit):
            seen.append(self.answers(fqdn))
            if seen[-1][1] == want:
                return seen
            time.sleep(POLL)
        raise AssertionError(f"the secondary never answered {want} for {fqdn}: {seen[-3:]}")


def test_lab_json_describes_the_lag(laglab):
    bind, pebble = laglab["bind"], laglab["pebble"]
    prim, sec = bind["primary"], bind["secondary"]
    assert bind["lag"]["seconds"] == LAG and "lab.test" in bind["lag"]["zones"]
    assert bind["lab_zone_nameservers"] == [f"{prim['host']}:{prim['port']}", f"{sec['host']}:{sec['port']}"]
    # Pebble's VA asks the lagging secondary, not the primary
    assert pebble["dns_server"] == f"{sec['host']}:{sec['port']}"


def test_secondary_serves_a_change_only_after_the_lag(laglab):
    servers = Servers(laglab["bind"])
    fqdn = f"_acme-challenge.lag-{secrets.token_hex(3)}.lab.test"
    servers.update(fqdn, "v1", add=True)
    seen = servers.poll_until_secondary(fqdn, ["v1"])
    assert all(p == ["v1"] for p, _s in seen)  # the primary serves it from the first query on
    assert seen[0][1] == []  # the secondary does not, at first ...
    behind = sum(1 for _p, s in seen if s == [])
    assert behind >= 2, seen  # ... for several polls (LAG s / POLL s of them on an idle machine)
    assert behind == len(seen) - 1  # and once it serves it, it keeps serving it

    servers.update(fqdn, "v1", add=False)
    seen = servers.poll_until_secondary(fqdn, [])
    assert all(p == [] for p, _s in seen)  # the primary dropped it at once
    assert seen[0][1] == ["v1"] and sum(1 for _p, s in seen if s == ["v1"]) >= 2, seen  # the secondary later


# -- ACME ------------------------------------------------------------------------------------------------------
def _client(pebble: dict):
    key = jose.JWKEC(key=ec.generate_private_key(ec.SECP256R1()))
    net = acme_client.ClientNetwork(key, alg=jose.ES256, user_agent=USER_AGENT, verify_ssl=pebble["ca_file"])
    directory = acme_client.ClientV2.get_directory(pebble["directory"], net)
    client = acme_client.ClientV2(directory, net)
    client.new_account(acme_messages.NewRegistration.from_data(email="ops@example.test", terms_of_service_agreed=True))
    return key, client


def _order(client, key, name: str):
    cert_key = ec.generate_private_key(ec.SECP256R1())
    csr = acme_crypto_util.make_csr(cert_key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()), [name])
    order = client.new_order(csr)
    authz = order.authorizations[0]
    challb = next(c for c in authz.body.challenges if isinstance(c.chall, acme_challenges.DNS01))
    return order, authz, challb, challb.chall.validation_domain_name(name), challb.chall.validation(key)


def _settle(client, authz, polls: int = 240):
    for _poll in range(polls):
        authz, _resp = client.poll(authz)
        if authz.body.status != acme_messages.STATUS_PENDING:
            return authz
        time.sleep(POLL)
    raise AssertionError(f"authorization {authz.uri} still pending")


def test_acme_fails_before_the_secondary_has_the_record_and_passes_after_dns01_record_waits(laglab, run_module):
    bind, pebble = laglab["bind"], laglab["pebble"]
    servers = Servers(bind)
    key, client = _client(pebble)
    name = f"lag-{secrets.token_hex(3)}.lab.test"

    # 1. As a client with no propagation wait: publish at the primary, answer the challenge as soon as it serves it.
    order, authz, challb, record, value = _order(client, key, name)
    servers.update(record, value, add=True)
    try:
        assert servers.answers(record) == ([value], [])  # published, not yet on the secondary
        client.answer_challenge(challb, challb.chall.response(key))
        authz = _settle(client, authz)
        assert authz.body.status == acme_messages.STATUS_INVALID
        problem = next(c.error for c in authz.body.challenges if isinstance(c.chall, acme_challenges.DNS01))
        assert problem is not None and problem.typ == "urn:ietf:params:acme:error:unauthorized", problem
        with pytest.raises(acme_errors.ValidationError):
            client.poll_and_finalize(order, datetime.datetime.now() + datetime.timedelta(seconds=30))
        servers.poll_until_secondary(record, [value])  # the record did arrive there, too late
    finally:
        servers.update(record, value, add=False)

    # 2. The same name through dns01_record, which waits for every server in lab_zone_nameservers.
    order, authz, challb, record, value = _order(client, key, name)
    args = {"provider": "rfc2136", "record": record, "value": [value], "wait": True, "wait_interval": POLL,
            "nameservers": bind["lab_zone_nameservers"],
            "rfc2136": {"server": servers.prim[0], "port": servers.prim[1], "key_name": bind["tsig"]["name"],
                        "key_secret": bind["tsig"]["secret"], "key_algorithm": bind["tsig"]["algorithm"]}}
    try:
        res = run_module("dns01_record", args)
        assert res.get("failed") is not True, res
        assert res["propagated"] is True and len(res["nameserver_status"]) == 2
        assert all(s["ok"] for s in res["nameserver_status"])
        assert servers.answers(record) == ([value], [value])  # observed independently: both serve it now
        client.answer_challenge(challb, challb.chall.response(key))
        final = client.poll_and_finalize(order, datetime.datetime.now() + datetime.timedelta(seconds=120))
    finally:
        run_module("dns01_record", dict(args, state="absent", wait=False))
    leaf = x509.load_pem_x509_certificates(final.fullchain_pem.encode())[0]
    assert leaf.extensions.get_extension_for_class(x509.SubjectAlternativeName).value.get_values_for_type(
        x509.DNSName) == [name]
