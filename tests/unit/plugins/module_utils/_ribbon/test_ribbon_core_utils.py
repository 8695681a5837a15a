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
from ansible_collections.byoc.certificates.plugins.module_utils._errors import (
    ApiError,
    AuthenticationFailure,
    ConnectionFailure,
    InputError,
)
from ansible_collections.byoc.certificates.plugins.module_utils._http import HttpClient, Response
from ansible_collections.byoc.certificates.plugins.module_utils._ribbon import core


NOW = datetime.datetime.now(datetime.timezone.utc)


def cert_and_key(cn="sbc.example.test", days=10, start=None, issuer=None, ca=False):
    """A certificate valid from ``start`` (default: an hour ago) for ``days``; self-signed unless ``issuer``."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])
    start = start or NOW - datetime.timedelta(hours=1)
    icert, ikey = issuer if issuer else (None, key)
    builder = (x509.CertificateBuilder().subject_name(name).issuer_name(icert.subject if icert else name)
               .public_key(key.public_key()).serial_number(x509.random_serial_number()).not_valid_before(start)
               .not_valid_after(start + datetime.timedelta(days=days)))
    if ca or issuer:
        builder = builder.add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
    return builder.sign(ikey, hashes.SHA256()), key


def params(**kw):
    cert, key = cert_and_key()
    p = {"state": "present", "nodes": [{"name": "a", "host": "10.0.0.1", "port": 22}],
         "sftp_username": "admin", "name_prefix": "byoc", "tls_profile": "defaultTlsProfile", "retain": 1,
         "certificate": _pem.to_pem(cert), "private_key": _pem.key_to_pem(key), "pkcs12_passphrase": "pw",
         "ca_certificates": [], "client_certificate": False, "sftp_directory": "/opt/sonus/external"}
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
    start = datetime.datetime(2030, 1, 1, tzinfo=datetime.timezone.utc)
    c1, _k1 = cert_and_key(days=10, start=start)
    c2, _k2 = cert_and_key(days=40, start=start)
    n1, n2 = core.object_name("sip", c1), core.object_name("sip", c2)
    assert n1.startswith("sip-20300111-") and n1.endswith(_pem.fingerprint(c1)[:8])
    objs = [{"name": n1, "type": "local"}, {"name": n2, "type": "local"}, {"name": "sip-ca-abc", "type": "remote"},
            {"name": "other", "type": "local"}, {"name": "sip-x-20300101-abcdef01", "type": "local"}]
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


def v(i, c):
    return f"p-2030010{i}-{c * 8}"


@pytest.mark.parametrize("retain, expected", [(0, [v(3, "c"), v(2, "b")]),
                                              (1, [v(3, "c"), v(2, "b")]),
                                              (2, [v(2, "b")]), (5, [])])
def test_prune_never_touches_bound_or_just_replaced(retain, expected):
    objs = [{"name": v(i, c), "type": "local", "fileName": f"f{i}.p12"}
            for i, c in ((5, "e"), (4, "d"), (3, "c"), (2, "b"))] + [{"name": "lab", "type": "local"}]
    client = FakeClient(objs, [{"name": "defaultTlsProfile", "serverCertName": v(5, "e")}])
    sftp = FakeSftp()
    pruned = core.prune(client, [sftp], {"name_prefix": "p", "retain": retain}, keep={v(5, "e"), v(4, "d")})
    assert pruned == expected
    assert "lab" not in pruned and v(5, "e") not in pruned and v(4, "d") not in pruned
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
    ca, _ca_key = cert_and_key("ca", ca=True)
    p["ca_certificates"] = [_pem.to_pem(ca), _pem.to_pem(ca)]
    want = core.desired_material(p)
    assert len(want["cas"]) == 1
    assert want["name"] == core.object_name("byoc", want["leaf"])


def test_chain_members_become_remote_objects_too():
    root = cert_and_key("root", ca=True)
    inter = cert_and_key("inter", issuer=root, ca=True)
    leaf, leaf_key = cert_and_key("leaf", issuer=inter)
    want = core.desired_material(params(certificate=_pem.to_pem(leaf) + _pem.to_pem(inter[0]),
                                        private_key=_pem.key_to_pem(leaf_key)))
    assert want["leaf"] == leaf and want["chain"] == [inter[0]] and want["cas"] == [inter[0]]
    # a self-signed root after the intermediates is a trust anchor: a remote object, not part of the PKCS#12 chain
    want = core.desired_material(params(certificate=_pem.to_pem(leaf) + _pem.to_pem(inter[0]) + _pem.to_pem(root[0]),
                                        private_key=_pem.key_to_pem(leaf_key)))
    assert want["chain"] == [inter[0]] and want["cas"] == [inter[0], root[0]]


# ------------------------------------------------------------------------------ issue 10: the one gate
def test_gate_refuses_an_expired_leaf():
    cert, key = cert_and_key(start=NOW - datetime.timedelta(days=30), days=10)
    with pytest.raises(InputError) as err:
        core.desired_material(params(certificate=_pem.to_pem(cert), private_key=_pem.key_to_pem(key)))
    assert err.value.field == "certificate" and "expired" in err.value.msg


def test_gate_refuses_a_ca_as_the_server_certificate():
    ca, key = cert_and_key("issuing ca", ca=True)
    with pytest.raises(InputError) as err:
        core.desired_material(params(certificate=_pem.to_pem(ca), private_key=_pem.key_to_pem(key)))
    assert err.value.field == "certificate" and "is a CA certificate" in err.value.msg


def test_gate_refuses_a_leaf_in_ca_certificates():
    other, _k = cert_and_key("other-leaf.example.test")
    with pytest.raises(InputError) as err:
        core.desired_material(params(ca_certificates=[_pem.to_pem(other)]))
    assert err.value.field == "ca_certificates[0]" and "leaf" in err.value.msg


def test_gate_refuses_an_expired_ca_unless_allowed_and_then_warns():
    old_ca, _k = cert_and_key("old ca", ca=True, start=NOW - datetime.timedelta(days=30), days=10)
    with pytest.raises(InputError) as err:
        core.desired_material(params(ca_certificates=[_pem.to_pem(old_ca)]))
    assert err.value.field == "ca_certificates[0]" and "allow_expired_ca" in err.value.msg
    want = core.desired_material(params(ca_certificates=[_pem.to_pem(old_ca)], allow_expired_ca=True))
    assert want["cas"] == [old_ca]
    assert len(want["warnings"]) == 1 and "ca_certificates[0]" in want["warnings"][0]


def test_gate_refuses_key_material_in_a_certificate_field_without_echoing_it():
    _c, key = cert_and_key()
    key_pem = _pem.key_to_pem(key)
    with pytest.raises(InputError) as err:
        core.desired_material(params(ca_certificates=[key_pem]))
    assert err.value.field == "ca_certificates[0]"
    body = key_pem.splitlines()[1]
    assert body not in err.value.msg and "PRIVATE KEY-----" not in err.value.msg


# ------------------------------------------------------------------------------ names checked before any write
@pytest.mark.parametrize("prefix", ["..", "a..b", "bÿoc", "a/b", "x" * 41, "-lead", "trail.", "sp ace", ""])
def test_name_prefix_the_device_would_refuse_is_an_input_error(prefix):
    with pytest.raises(InputError) as err:
        core.validate_common(params(name_prefix=prefix))
    assert err.value.field == "name_prefix"


@pytest.mark.parametrize("profile", ["prof/../x", "profïle", "a" * 24])
def test_tls_profile_name_is_checked(profile):
    with pytest.raises(InputError) as err:
        core.validate_common(params(tls_profile=profile))
    assert err.value.field == "tls_profile"


@pytest.mark.parametrize("directory", ["relative/dir", "/opt/sonus/../etc", "/opt/sonus/ext ernal"])
def test_sftp_directory_is_checked(directory):
    with pytest.raises(InputError) as err:
        core.validate_common(params(sftp_directory=directory))
    assert err.value.field == "sftp_directory"


def test_good_names_pass():
    core.validate_common(params(name_prefix="sip.core-1_a", sftp_directory="/opt/sonus/external"))


# ------------------------------------------------------------------------------ rollback target (issue 9 section 5)
def objs(*names, foreign=("lab-initial",)):
    out = {n: {"name": n, "type": "local", "state": "enabled", "fileName": f"{n}.p12"} for n in names}
    for f in foreign:
        out[f] = {"name": f, "type": "local", "state": "enabled", "fileName": f"{f}.p12"}
    out["sip-ca-0123456789ab"] = {"name": "sip-ca-0123456789ab", "type": "remote", "state": "enabled"}
    return out


A, B, C = "sip-20270301-aaaaaaaa", "sip-20270201-bbbbbbbb", "sip-20270101-cccccccc"


def test_rollback_twice_changes_nothing_the_second_time():
    """Before the fix the target was 'the newest object that is not bound', so each run flipped A <-> B."""
    devices = objs(A, B, C)
    first = core.rollback_target(A, devices, "sip")
    assert first == B
    assert core.rollback_target(first, devices, "sip") == first  # second run: nothing to do
    assert core.rollback_target(first, devices, "sip") == first


def test_rollback_target_cases():
    assert core.rollback_target(B, objs(A, B), "sip") == B  # a newer object exists: already rolled back
    assert core.rollback_target(A, objs(A), "sip") == "lab-initial"  # first install replaced the only other one
    assert core.rollback_target(A, objs(A, foreign=("x", "y")), "sip") is None  # ambiguous
    assert core.rollback_target(A, objs(A, foreign=()), "sip") is None
    assert core.rollback_target("lab-initial", objs(A, B), "sip") == "lab-initial"  # not ours: nothing to undo
    assert core.rollback_target(None, objs(A), "sip") is None
    disabled = objs(A, foreign=("x",))
    disabled["y"] = {"name": "y", "type": "local", "state": "disabled"}
    assert core.rollback_target(A, disabled, "sip") == "x"


def device(bound, objects):
    return {"ha": {}, "profile": {"name": "defaultTlsProfile", "serverCertName": bound},
            "objects": objects, "profiles": [{"name": "defaultTlsProfile", "serverCertName": bound}]}


def test_plan_reports_previous_on_a_run_that_changes_nothing():
    """Before the fix ``previous`` was null whenever the certificate was already bound."""
    p = params(name_prefix="sip")
    want = core.desired_material(p)
    name = want["name"]
    older = "sip-20000101-00000000"
    objects = objs(name, older)
    files = {"leaf": {"a": want["fingerprint"]}, "cas": {}}
    plan = core.plan_present(p, want, device(name, objects), files)
    assert plan["changed"] is False and plan["rollback_target"] == older
    # and on the run that changes: the same answer as the next no-op run will give
    plan = core.plan_present(p, want, device(older, objs(older)), {"leaf": {"a": None}, "cas": {}})
    assert plan["changed"] is True and plan["rollback_target"] == older and plan["bound_before"] == older


def test_plan_checks_every_name_before_any_write():
    p = params(name_prefix="sip")
    want = core.desired_material(p)
    want["name"] = "sip..-20270101-aaaaaaaa"  # what a prefix that slipped past validate_common would produce
    with pytest.raises(InputError) as err:
        core.plan_present(p, want, device("lab-initial", objs()), {"leaf": {"a": None}, "cas": {}})
    assert err.value.field == "name_prefix"


def test_plan_refuses_to_replace_the_file_of_an_in_use_object_with_another_passphrase():
    p = params(name_prefix="sip")
    want = core.desired_material(p)
    objects = objs(want["name"])
    files = {"leaf": {"a": core.UNREADABLE}, "cas": {}}
    with pytest.raises(InputError) as err:
        core.plan_present(p, want, device(want["name"], objects), files)
    assert err.value.field == "pkcs12_passphrase"
    plan = core.plan_present(p, want, device("lab-initial", objects), files)  # not in use: re-installed
    assert plan["install"] is True and plan["upload"] == ["a"]


# ------------------------------------------------------------------------------ half-written state
class Node:
    def __init__(self, name, fail_put=False, fail_remove=False):
        self.name, self.fail_put, self.fail_remove = name, fail_put, fail_remove
        self.files: dict[str, bytes] = {}

    def path(self, f):
        return f"/opt/sonus/external/{f}"

    def put(self, f, data):
        if self.fail_put:
            raise ConnectionFailure(f"SFTP on node {self.name}: upload of {self.path(f)} failed: Permission denied")
        self.files[f] = data

    def remove(self, f):
        if self.fail_remove:
            return False
        return self.files.pop(f, None) is not None


class Rest:
    def __init__(self, fail_on=None):
        self.fail_on, self.objects, self.calls = fail_on, {}, []

    def put_certificate(self, name, file_name, cert_type, passphrase=None):
        self.calls.append(("PUT", name))
        if self.fail_on == ("PUT", cert_type):
            raise ApiError(f"The Ribbon SBC Core REST API answered HTTP 400 on PUT .../{name}: bad value.")
        self.objects[name] = cert_type

    def delete_certificate(self, name):
        self.calls.append(("DELETE", name))
        self.objects.pop(name, None)

    def point_profile(self, name, server, client):
        self.calls.append(("PATCH", name))
        if self.fail_on == ("PATCH", None):
            raise ApiError("The Ribbon SBC Core REST API answered HTTP 400 on PATCH tlsProfile: bad.")

    def profile(self, name):
        return {"serverCertName": None}


def planned(nodes=("a", "b")):
    p = params(name_prefix="sip", client_certificate=False, pkcs12_passphrase="pw")
    ca, _k = cert_and_key("issuing ca", ca=True)
    p["ca_certificates"] = [_pem.to_pem(ca)]
    want = core.desired_material(p)
    files = {"leaf": {n: None for n in nodes}, "cas": {core.ca_object_name("sip", ca): {n: None for n in nodes}}}
    return p, want, core.plan_present(p, want, device("lab-initial", objs()), files)


def test_upload_failure_on_node_b_removes_what_node_a_got():
    p, want, plan = planned()
    a, b = Node("a"), Node("b", fail_put=True)
    rest = Rest()
    with pytest.raises(ConnectionFailure) as err:
        core.apply_present(plan, want, rest, [a, b], p)
    assert a.files == {} and b.files == {}  # the PKCS#12 (with the key) and the CA file are gone from node a
    assert rest.calls == []  # the configuration was never touched
    assert "node b" in err.value.msg and "removed again" in err.value.msg
    assert f"{plan['file_name']} on node a" in err.value.msg
    assert err.value.details["left_behind"] == []


def test_what_cannot_be_removed_is_named_file_by_file_and_node_by_node():
    p, want, plan = planned()
    a, b = Node("a", fail_remove=True), Node("b", fail_put=True)
    with pytest.raises(ConnectionFailure) as err:
        core.apply_present(plan, want, Rest(), [a, b], p)
    assert "did NOT remove" in err.value.msg
    left = err.value.details["left_behind"]
    assert f"/opt/sonus/external/{plan['file_name']} on node a" in left
    assert len(left) == 2 and all(x.endswith("on node a") for x in left)


@pytest.mark.parametrize("fail_on", [("PUT", "remote"), ("PUT", "local"), ("PATCH", None)])
def test_rest_failure_after_upload_removes_files_and_objects(fail_on):
    p, want, plan = planned()
    a, b = Node("a"), Node("b")
    rest = Rest(fail_on)
    with pytest.raises(ApiError) as err:
        core.apply_present(plan, want, rest, [a, b], p)
    assert a.files == {} and b.files == {}
    assert rest.objects == {}  # every object this run created was deleted again
    assert "removed again" in err.value.msg and "node a" in err.value.msg and "node b" in err.value.msg


# ------------------------------------------------------------------------------ 401 wording (issue 10 section 5)
def test_401_says_user_name_and_password_were_refused_naming_the_url(monkeypatch):
    http = HttpClient("https://sbc.example.test", service="Ribbon SBC Core REST API", retries=0,
                      url_username="admin", url_password="s3cret-pw", error_message=core.confd_error)
    body = (b'<errors xmlns="http://tail-f.com/ns/rest"><error><error-tag>access-denied</error-tag>'
            b"<error-message>access denied for s3cret-pw</error-message></error></errors>")
    monkeypatch.setattr(http, "_once", lambda *a: (Response(401, {}, body), None))
    client = core.CoreClient("https://sbc.example.test", "admin", "s3cret-pw", http=http)
    with pytest.raises(AuthenticationFailure) as err:
        client.certificates()
    msg = err.value.msg
    assert "user name and password" in msg and "'admin'" in msg
    assert "https://sbc.example.test/api/config/system/security/pki/certificate" in msg
    assert "API key" not in msg and "token" not in msg
    assert "s3cret-pw" not in msg and "s3cret-pw" not in str(err.value.details)
