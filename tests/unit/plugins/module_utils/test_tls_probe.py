"""Pure parts of tls_endpoint_info (module_utils/_tls_probe.py): name matching, input checks, leaf facts, summary.
The wire behaviour (handshakes, refusals, DNS) is tested against the lab in tests/integration/test_tls_endpoint_info.py."""

from __future__ import annotations

import datetime
import hashlib
import ipaddress

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from ansible_collections.byoc.certificates.plugins.module_utils import _tls_probe as P
from ansible_collections.byoc.certificates.plugins.module_utils._errors import InputError

NOW = datetime.datetime.now(datetime.timezone.utc)


def make(cn, issuer=None, *, ca=False, sans=(), ips=(), ekus=None):
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])
    b = (x509.CertificateBuilder().subject_name(subject)
         .issuer_name(issuer[0].subject if issuer else subject).public_key(key.public_key())
         .serial_number(x509.random_serial_number())
         .not_valid_before(NOW - datetime.timedelta(hours=1)).not_valid_after(NOW + datetime.timedelta(days=30))
         .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True))
    names = [x509.DNSName(s) for s in sans] + [x509.IPAddress(ipaddress.ip_address(i)) for i in ips]
    if names:
        b = b.add_extension(x509.SubjectAlternativeName(names), critical=False)
    if ekus is not None:
        b = b.add_extension(x509.ExtendedKeyUsage(ekus), critical=False)
    return b.sign(issuer[1] if issuer else key, hashes.SHA256()), key


def pem(cert) -> str:
    return cert.public_bytes(serialization.Encoding.PEM).decode()


def key_pem(key) -> str:
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption()).decode()


@pytest.fixture(scope="module")
def ca():
    return make("Probe test CA", ca=True)


# -- name matching (RFC 6125 §6.4) ------------------------------------------------------------------------------------
@pytest.mark.parametrize("name,dns,ips,expected", [
    ("sbc1.example.com", ["sbc1.example.com"], [], True),
    ("SBC1.Example.COM.", ["sbc1.example.com"], [], True),
    ("sbc1.example.com", ["sbc2.example.com"], [], False),
    ("sbc1.example.com", ["*.example.com"], [], True),
    ("a.sbc1.example.com", ["*.example.com"], [], False),      # a wildcard matches exactly one label
    ("example.com", ["*.example.com"], [], False),              # ... and never the bare suffix
    ("sbc.test", ["*.test"], [], False),                        # no wildcard below a single-label suffix
    ("sbc1.example.com", ["sbc*.example.com"], [], False),      # only a whole left-most label is a wildcard
    ("192.0.2.10", ["192.0.2.10"], [], False),                  # an address only matches an IP entry
    ("192.0.2.10", [], ["192.0.2.10"], True),
    ("2001:db8::1", [], ["2001:db8:0::1"], True),
    ("sbc1.example.com", [], ["192.0.2.10"], False),
    ("sbc1.example.com", [], [], False),                        # no SAN: the CN is never used
])
def test_name_matches(name, dns, ips, expected):
    assert P.name_matches(name, dns, ips) is expected


def test_leaf_facts_from_der(ca):
    leaf, _key = make("sbc1.example.com", ca, sans=["sbc1.example.com"], ips=["192.0.2.10"],
                      ekus=[ExtendedKeyUsageOID.SERVER_AUTH])
    der = leaf.public_bytes(serialization.Encoding.DER)
    facts = P.leaf_facts(der)
    assert facts["fingerprint"] == hashlib.sha256(der).hexdigest()
    assert facts["subject_alt_names"] == ["DNS:sbc1.example.com", "IP:192.0.2.10"]
    assert facts["extended_key_usage"] == ["serverAuth"]
    assert facts["not_after"] == leaf.not_valid_after_utc.strftime("%Y-%m-%dT%H:%M:%SZ")
    assert facts["issuer"] == "CN=Probe test CA"
    assert P.leaf_facts(b"not a certificate")["_unparsable"] is True


def test_extended_key_usage_absent_is_none(ca):
    leaf, _key = make("x.example.com", ca, sans=["x.example.com"])
    assert P.extended_key_usage(leaf) is None
    other, _key = make("y.example.com", ca, ekus=[ExtendedKeyUsageOID.CLIENT_AUTH, ExtendedKeyUsageOID.CODE_SIGNING])
    assert P.extended_key_usage(other) == ["clientAuth", "codeSigning"]


# -- input ----------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("value", [":".join(["AB"] * 32), "ab" * 32, " " + "AB" * 32 + " ", "sha256=" + "0f" * 32])
def test_normalize_fingerprint(value):
    out = P.normalize_fingerprint(value, "f")
    assert len(out) == 64 and out == out.lower() and ":" not in out


@pytest.mark.parametrize("value", ["ab" * 31, "zz" * 32, 12, "ab" * 33])
def test_normalize_fingerprint_refuses(value):
    with pytest.raises(InputError) as err:
        P.normalize_fingerprint(value, "endpoints[0].expected_fingerprint")
    assert err.value.field == "endpoints[0].expected_fingerprint"


@pytest.mark.parametrize("value,expected", [
    ("127.0.0.1", ("127.0.0.1", 53)), ("127.0.0.1:5353", ("127.0.0.1", 5353)), ("[::1]:5300", ("::1", 5300)),
    ("::1", ("::1", 53)), ("[2001:db8::53]", ("2001:db8::53", 53)),
])
def test_parse_nameserver(value, expected):
    assert P.parse_nameserver(value, "nameservers[0]") == expected


@pytest.mark.parametrize("value", ["ns1.example.com", "127.0.0.1:dns", "127.0.0.1:0", "", "1.2.3.4:70000"])
def test_parse_nameserver_refuses(value):
    with pytest.raises(InputError) as err:
        P.parse_nameserver(value, "nameservers[1]")
    assert err.value.field == "nameservers[1]"


def params(ca, **extra):
    base = {"endpoints": [{"name": "sbc1.example.com", "port": 5061}], "ca_certificates": pem(ca[0]),
            "nameservers": [], "timeout": 5.0, "concurrency": 4}
    base.update(extra)
    return base


def test_check_input_normalizes(ca):
    eps, settings = P.check_input(params(ca, endpoints=[
        {"name": "SBC1.example.com.", "port": None, "expected_fingerprint": "AB" * 32, "label": "g/h"}]))
    assert eps == [{"name": "SBC1.example.com", "port": 5061, "host": None, "expected_fingerprint": "ab" * 32,
                    "label": "g/h"}]
    assert settings.cadata.count("BEGIN CERTIFICATE") == 1 and settings.client_chain is None


@pytest.mark.parametrize("change,field", [
    ({"endpoints": []}, "endpoints"),
    ({"endpoints": [{"name": "bad name", "port": 5061}]}, "endpoints[0].name"),
    ({"endpoints": [{"name": "a.example.com", "port": 0}]}, "endpoints[0].port"),
    ({"endpoints": [{"name": "a.example.com", "port": 5061, "expected_fingerprint": "12"}]},
     "endpoints[0].expected_fingerprint"),
    ({"ca_certificates": "not pem"}, "ca_certificates"),
    ({"timeout": 0.0}, "timeout"),
    ({"concurrency": 0}, "concurrency"),
    ({"nameservers": ["dns.example.com"]}, "nameservers[0]"),
])
def test_check_input_refuses(ca, change, field):
    with pytest.raises(InputError) as err:
        P.check_input(params(ca, **change))
    assert err.value.field == field


def test_ca_certificates_refuse_a_leaf_and_key_material_without_echo(ca):
    leaf, key = make("sbc1.example.com", ca, sans=["sbc1.example.com"])
    with pytest.raises(InputError) as err:
        P.check_input(params(ca, ca_certificates=pem(ca[0]) + pem(leaf)))
    assert err.value.field == "ca_certificates" and "leaf" in err.value.msg
    secret = key_pem(key)
    with pytest.raises(InputError) as err:
        P.check_input(params(ca, ca_certificates=pem(ca[0]) + secret))
    body = "".join(line for line in secret.splitlines() if "-----" not in line)
    assert err.value.field == "ca_certificates" and body[:40] not in err.value.msg


def test_client_pair_checked_and_eku_warning(ca):
    client, key = make("probe", ca, ekus=[ExtendedKeyUsageOID.SERVER_AUTH])
    _eps, settings = P.check_input(params(ca, client_certificate=pem(client), client_private_key=key_pem(key)))
    assert settings.client_chain.startswith("-----BEGIN CERTIFICATE-----") and settings.client_key
    assert any("clientAuth" in w for w in settings.warnings)
    good, good_key = make("probe2", ca, ekus=[ExtendedKeyUsageOID.CLIENT_AUTH])
    _eps, settings = P.check_input(params(ca, client_certificate=pem(good), client_private_key=key_pem(good_key)))
    assert not settings.warnings
    with pytest.raises(InputError) as err:
        P.check_input(params(ca, client_certificate=pem(good)))
    assert err.value.field == "client_certificate"
    with pytest.raises(InputError) as err:
        P.check_input(params(ca, client_certificate=pem(good), client_private_key=key_pem(key)))
    assert err.value.field == "client_private_key" and "does not match" in err.value.msg


def test_summary_names_failures_by_label_else_name_and_port():
    ok = dict(P.blank_result({"name": "a.example.com", "port": 5061, "label": "g/a"}), ok=True)
    bad = P.blank_result({"name": "b.example.com", "port": 5062, "label": None})
    bad2 = P.blank_result({"name": "c.example.com", "port": 5061, "label": "g/c"})
    out = P.summarize([ok, bad, bad2], ["w"])
    assert out["all_ok"] is False and out["failed_endpoints"] == ["b.example.com:5062", "g/c"]
    assert out["probed"] == 3 and out["changed"] is False and out["warnings"] == ["w"]
    assert P.summarize([ok], [])["all_ok"] is True and "warnings" not in P.summarize([ok], [])


def test_refusal_sentences_say_what_to_do():
    assert "requires a client certificate" in P._refused("x:5061 (127.0.0.1)", "certificate_required", False)
    assert "did not accept our client certificate" in P._refused("x:5061 (127.0.0.1)", "unknown_ca", True)
    assert "without a TLS alert" in P._refused("x:5061 (127.0.0.1)", "closed", False)


def test_resolve_an_address_needs_no_lookup(ca):
    _eps, settings = P.check_input(params(ca))
    assert P.resolve("192.0.2.7", settings) == ["192.0.2.7"]
