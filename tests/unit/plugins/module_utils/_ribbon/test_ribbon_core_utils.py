# Copyright (c) 2026, byoc.certificates contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""SBC Core logic: ConfD error parsing, HA gating, versioned names, pruning, input validation."""

from __future__ import annotations

import datetime

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from ansible_collections.byoc.certificates.plugins.module_utils import _pem
from ansible_collections.byoc.certificates.plugins.module_utils._errors import InputError
from ansible_collections.byoc.certificates.plugins.module_utils._http import Response
from ansible_collections.byoc.certificates.plugins.module_utils._ribbon import core


def cert_and_key(cn="sbc.example.test", days=10):
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])
    now = datetime.datetime(2030, 1, 1, tzinfo=datetime.timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(7).not_valid_before(now).not_valid_after(now + datetime.timedelta(days=days))
            .sign(key, hashes.SHA256()))
    return cert, key


def params(**kw):
    cert, key = cert_and_key()
    p = {"state": "present", "nodes": [{"name": "a", "host": "10.0.0.1", "port": 22}],
         "sftp_username": "admin", "name_prefix": "byoc", "tls_profile": "defaultTlsProfile", "retain": 1,
         "certificate": _pem.to_pem(cert), "private_key": _pem.key_to_pem(key), "pkcs12_passphrase": "pw",
         "ca_certificates": []}
    p.update(kw)
    return p


def test_confd_error_message():
    body = (b'<errors xmlns="http://tail-f.com/ns/rest"><error><error-tag>invalid-value</error-tag>'
            b"<error-urlpath>/api/x</error-urlpath><error-message>file not found</error-message></error></errors>")
    assert core.confd_error(Response(400, {}, body)) == "file not found [invalid-value]"
    assert core.confd_error(Response(500, {}, b"plain text")) is None


def test_to_xml_escapes_values():
    assert core.to_xml("certificate", {"name": "a<b&c", "skip": None}) == (
        b"<certificate><name>a&lt;b&amp;c</name></certificate>")


def test_ha_state_healthy_and_broken():
    ok = core.ha_state([{"name": "a", "mgmtRedundancyRole": "active", "syncStatus": "syncCompleted"},
                        {"name": "b", "mgmtRedundancyRole": "standby", "syncStatus": "syncCompleted"}],
                       [{"syncModule": "Policy Data", "status": "syncCompleted"}])
    assert ok["in_sync"] and ok["active"] == "a" and not ok["problems"]
    bad = core.ha_state([{"name": "a", "mgmtRedundancyRole": "active", "syncStatus": "syncInProgress"},
                         {"name": "b", "mgmtRedundancyRole": "active", "syncStatus": "syncCompleted"}],
                        [{"syncModule": "Policy Data", "status": "unprotected"}])
    assert not bad["in_sync"]
    text = " ".join(bad["problems"])
    assert "exactly one active" in text and "syncInProgress on a" in text and "Policy Data=unprotected" in text


def test_versioned_names_sort_newest_first():
    c1, _k1 = cert_and_key(days=10)
    c2, _k2 = cert_and_key(days=40)
    n1, n2 = core.object_name("sip", c1), core.object_name("sip", c2)
    assert n1.startswith("sip-20300111-") and n1.endswith(_pem.fingerprint(c1)[:8])
    objs = [{"name": n1, "type": "local"}, {"name": n2, "type": "local"}, {"name": "sip-ca-abc", "type": "remote"},
            {"name": "other", "type": "local"}]
    assert [o["name"] for o in core.prefixed_local(objs, "sip")] == [n2, n1]


class FakeClient:
    def __init__(self, objects, profiles):
        self.objects, self._profiles, self.deleted = objects, profiles, []

    def certificates(self):
        return [o for o in self.objects if o["name"] not in self.deleted]

    def profiles(self):
        return self._profiles

    def delete_certificate(self, name):
        self.deleted.append(name)


class FakeSftp:
    def __init__(self):
        self.removed = []

    def remove(self, name):
        self.removed.append(name)
        return True


@pytest.mark.parametrize("retain, expected", [(0, ["p-20300103-c", "p-20300102-b"]),
                                              (1, ["p-20300103-c", "p-20300102-b"]),
                                              (2, ["p-20300102-b"]), (5, [])])
def test_prune_never_touches_bound_or_just_replaced(retain, expected):
    objs = [{"name": f"p-2030010{i}-{c}", "type": "local", "fileName": f"f{i}.p12"}
            for i, c in ((5, "e"), (4, "d"), (3, "c"), (2, "b"))] + [{"name": "lab", "type": "local"}]
    client = FakeClient(objs, [{"name": "defaultTlsProfile", "serverCertName": "p-20300105-e"}])
    sftp = FakeSftp()
    pruned = core.prune(client, [sftp], {"name_prefix": "p", "retain": retain}, keep={"p-20300105-e", "p-20300104-d"})
    assert pruned == expected
    assert "lab" not in pruned and "p-20300105-e" not in pruned and "p-20300104-d" not in pruned
    assert len(sftp.removed) == len(expected)


@pytest.mark.parametrize("change, field", [
    ({"nodes": []}, "nodes"),
    ({"nodes": [{"host": "a", "port": 0}]}, "nodes"),
    ({"nodes": [{"host": "a", "port": 22}, {"host": "a", "port": 22}]}, "nodes"),
    ({"sftp_username": None}, "sftp_username"),
    ({"name_prefix": "bad name"}, "name_prefix"),
    ({"tls_profile": "x" * 24}, "tls_profile"),
    ({"retain": -1}, "retain"),
])
def test_validate_common_names_the_field(change, field):
    with pytest.raises(InputError) as err:
        core.validate_common(params(**change))
    assert err.value.field == field


@pytest.mark.parametrize("change, field", [
    ({"certificate": None}, "certificate"),
    ({"certificate": "nope"}, "certificate"),
    ({"private_key": None}, "private_key"),
    ({"pkcs12_passphrase": ""}, "pkcs12_passphrase"),
    ({"ca_certificates": ["x"]}, "ca_certificates[0]"),
])
def test_desired_material_names_the_field(change, field):
    with pytest.raises(InputError) as err:
        core.desired_material(params(**change))
    assert err.value.field == field


def test_desired_material_refuses_a_foreign_key():
    _c, other = cert_and_key("other")
    with pytest.raises(InputError, match="does not match"):
        core.desired_material(params(private_key=_pem.key_to_pem(other)))


def test_desired_material_dedupes_cas_and_names_the_object():
    p = params()
    ca, _ca_key = cert_and_key("ca")
    p["ca_certificates"] = [_pem.to_pem(ca), _pem.to_pem(ca)]
    want = core.desired_material(p)
    assert len(want["cas"]) == 1
    assert want["name"] == core.object_name("byoc", want["leaf"])


def test_chain_members_become_remote_objects_too():
    root_key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.datetime.now(datetime.timezone.utc)
    root_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "root")])
    inter_key = ec.generate_private_key(ec.SECP256R1())
    inter = (x509.CertificateBuilder().subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "inter")]))
             .issuer_name(root_name).public_key(inter_key.public_key()).serial_number(2).not_valid_before(now)
             .not_valid_after(now + datetime.timedelta(days=2))
             .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
             .sign(root_key, hashes.SHA256()))
    leaf_key = ec.generate_private_key(ec.SECP256R1())
    leaf = (x509.CertificateBuilder().subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "leaf")]))
            .issuer_name(inter.subject).public_key(leaf_key.public_key()).serial_number(3).not_valid_before(now)
            .not_valid_after(now + datetime.timedelta(days=1)).sign(inter_key, hashes.SHA256()))
    want = core.desired_material(params(certificate=_pem.to_pem(inter) + _pem.to_pem(leaf),
                                        private_key=_pem.key_to_pem(leaf_key)))
    assert want["leaf"] == leaf and want["chain"] == [inter] and want["cas"] == [inter]
