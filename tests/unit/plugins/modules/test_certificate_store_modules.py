# Copyright (c) 2026, byoc.certificates contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""certificate_store, certificate_store_info and certificate_renewal_decision: the modules' work() with their
real argument defaults, on the filesystem backend (no network)."""

from __future__ import annotations

import datetime
import json

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from ansible_collections.byoc.certificates.plugins.module_utils._errors import ByocError, InputError
from ansible_collections.byoc.certificates.plugins.modules import certificate_renewal_decision as decision_mod
from ansible_collections.byoc.certificates.plugins.modules import certificate_store as store_mod
from ansible_collections.byoc.certificates.plugins.modules import certificate_store_info as info_mod

PASS = "unit-test-passphrase"


class FakeModule:
    def __init__(self, params, check_mode=False, diff=False, no_log=False):
        self.params, self.check_mode, self._diff, self.no_log = params, check_mode, diff, no_log
        self.warnings = []

    def warn(self, msg):
        self.warnings.append(msg)


def defaults(**params):
    base = {"backend": "filesystem", "path": None, "s3": None, "group": "g1", "passphrase": PASS,
            "certificate": None, "chain": None, "fullchain": None, "privatekey_content": None,
            "privatekey_path": None, "privatekey_passphrase": None, "order_uri": None, "account": None, "ari": None,
            "last_order_url": None, "failure": None, "clear_backoff": False,
            "backoff_schedule": [60, 600, 6000, 86400], "lock": None, "lock_owner": None, "lock_ttl": 3600,
            "now": None, "account_directory": None, "export_dir": None, "return_private_keys": False,
            "new_passphrase": None, "expected_revision": None, "root": None}
    base.update(params)
    return base


def make_cert(name="a.example.test", days=90, start_days=0):
    key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(days=start_days)
    cert = (x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)]))
            .issuer_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "unit CA")]))
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now).not_valid_after(now + datetime.timedelta(days=days))
            .add_extension(x509.SubjectAlternativeName([x509.DNSName(name)]), critical=False)
            .sign(key, hashes.SHA256()))
    return (cert.public_bytes(serialization.Encoding.PEM).decode(),
            key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                              serialization.NoEncryption()).decode())


def test_store_then_info_then_decide(tmp_path):
    cert, key = make_cert()
    path = str(tmp_path)
    r = store_mod.work(FakeModule(defaults(path=path, certificate=cert, privatekey_content=key), diff=True))
    assert r["changed"] and r["rotated"] and r["revision"] == 1
    assert "PRIVATE KEY" not in json.dumps(r)  # not in the result, not in the diff
    assert r["diff"]["before"]["current"] is None and r["diff"]["after"]["current"]["fingerprint"]
    again = store_mod.work(FakeModule(defaults(path=path, certificate=cert, privatekey_content=key)))
    assert again["changed"] is False

    got = info_mod.work(FakeModule(defaults(path=path)))
    assert got["exists"] and got["current"]["key_matches"] is True and "privatekey" not in got["current"]
    with pytest.raises(InputError, match="no_log"):
        info_mod.work(FakeModule(defaults(path=path, return_private_keys=True)))
    keys = info_mod.work(FakeModule(defaults(path=path, return_private_keys=True), no_log=True))
    assert keys["current"]["privatekey"].startswith("-----BEGIN PRIVATE KEY-----")

    d = decision_mod.work(FakeModule({
        "group": "g1", "names": ["a.example.test"], "current": got["current"], "key_type": "ecdsa-secp256r1",
        "force": False, "backoff": got["backoff"], "ignore_backoff": False, "use_ari": True, "ari": None,
        "renew_fraction": 0.3333, "short_lived_fraction": 0.5, "short_lived_days": 10, "stagger_fraction": 0.1,
        "now": None}))
    assert d["renew"] is False and d["changed"] is False and d["trigger"] == "lifetime"


def test_check_mode_writes_nothing(tmp_path):
    cert, key = make_cert()
    r = store_mod.work(FakeModule(defaults(path=str(tmp_path), certificate=cert, privatekey_content=key),
                                  check_mode=True))
    assert r["changed"] is True
    assert not (tmp_path / "g1").exists()


def test_decision_input_errors_name_the_field():
    base = {"group": "g1", "names": ["a.example.test"], "current": None, "key_type": None, "force": False,
            "backoff": None, "ignore_backoff": False, "use_ari": True, "ari": None, "renew_fraction": 0.3333,
            "short_lived_fraction": 0.5, "short_lived_days": 10, "stagger_fraction": 0.1, "now": None}
    for change, field in (({"renew_fraction": 1.5}, "renew_fraction"), ({"names": [" "]}, "names"),
                          ({"now": "tomorrow"}, "now"),
                          ({"ari": {"window_start": "2026-01-01T00:00:00Z", "window_end": None, "cert_id": None,
                                    "explanation_url": None}}, "ari"),
                          ({"current": {"certificate": "not a pem"}}, "current.certificate")):
        with pytest.raises(InputError) as err:
            decision_mod.work(FakeModule({**base, **change}))
        assert err.value.field == field


def test_lock_owner_required_and_failure_recorded(tmp_path):
    with pytest.raises(InputError, match="lock_owner"):
        store_mod.work(FakeModule(defaults(path=str(tmp_path), lock="acquire")))
    r = store_mod.work(FakeModule(defaults(path=str(tmp_path), failure={"msg": "boom", "retry_after": None},
                                           now="2026-11-01T00:00:00Z")))
    assert r["backoff"]["next_attempt"] == "2026-11-01T00:01:00Z"
    r = store_mod.work(FakeModule(defaults(path=str(tmp_path), lock="acquire", lock_owner="a")))
    with pytest.raises(ByocError, match="locked by another run"):
        store_mod.work(FakeModule(defaults(path=str(tmp_path), last_order_url="x", lock_owner="b")))


# -- issue 10: bad input to the renewal decision is a clear InputError naming the field, never a traceback -------
DECISION = {"group": "g1", "names": ["a.example.test"], "current": None, "key_type": None, "force": False,
            "backoff": None, "ignore_backoff": False, "use_ari": True, "ari": None, "renew_fraction": 0.3333,
            "short_lived_fraction": 0.5, "short_lived_days": 10, "stagger_fraction": 0.1, "now": None}
CURRENT = {"not_before": "2026-11-01T00:00:00Z", "not_after": "2027-01-30T00:00:00Z", "names": ["a.example.test"],
           "key_matches": True}


@pytest.mark.parametrize("change, field", [
    ({"now": "garbage"}, "now"),
    ({"now": "99999999999999999999"}, "now"),
    ({"now": "2026-13-45T00:00:00Z"}, "now"),
    ({"current": dict(CURRENT, names=42)}, "current.names"),
    ({"current": dict(CURRENT, names="a.example.test")}, "current.names"),
    ({"current": dict(CURRENT, names=[1, 2])}, "current.names"),
    ({"current": dict(CURRENT, not_before="soon")}, "current.not_before"),
    ({"current": dict(CURRENT, not_after=["x"])}, "current.not_after"),
    ({"current": dict(CURRENT, not_after="2026-10-01T00:00:00Z")}, "current.not_after"),
    ({"current": dict(CURRENT, key_matches="perhaps")}, "current.key_matches"),
    ({"short_lived_days": float("inf")}, "short_lived_days"),
    ({"short_lived_days": float("nan")}, "short_lived_days"),
    ({"short_lived_days": -1.0}, "short_lived_days"),
    ({"short_lived_days": 1e12}, "short_lived_days"),
    ({"renew_fraction": float("nan")}, "renew_fraction"),
    ({"stagger_fraction": float("inf")}, "stagger_fraction"),
    ({"backoff": {"next_attempt": "later", "failures": 1}}, "backoff.next_attempt"),
    ({"backoff": {"next_attempt": "2026-11-01T00:00:00Z", "failures": "many"}}, "backoff.failures"),
    ({"ari": {"window_start": "2026-11-01T00:00:00Z", "window_end": "x", "cert_id": None,
              "explanation_url": None}}, "ari.window_end"),
])
def test_decision_bad_input_is_an_input_error_naming_the_field(change, field):
    params = {**DECISION, "current": CURRENT, **change}
    with pytest.raises(InputError) as err:
        decision_mod.work(FakeModule(params))
    assert err.value.field == field, err.value.msg


@pytest.mark.parametrize("module", [store_mod, info_mod])
def test_store_modules_now_garbage_is_an_input_error(tmp_path, module):
    with pytest.raises(InputError) as err:
        module.work(FakeModule(defaults(path=str(tmp_path), now="garbage")))
    assert err.value.field == "now"


# -- issue 10: the store ----------------------------------------------------------------------------------------
NEW_PASS = "the-new-unit-passphrase"


def _key_opens(pem, passphrase):
    try:
        serialization.load_pem_private_key(pem.encode(), passphrase.encode())
        return True
    except ValueError:
        return False


def _account_key():
    return ec.generate_private_key(ec.SECP256R1()).private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()).decode()


def _two_generations(path):
    """A group with current, previous and an account key, all under PASS."""
    for name in ("one.example.test", "two.example.test"):
        cert, key = make_cert(name)
        store_mod.work(FakeModule(defaults(path=path, certificate=cert, privatekey_content=key)))
    store_mod.work(FakeModule(defaults(path=path, account={"directory": "https://acme/dir", "key_content": _account_key(),
                                                           "key_path": None, "key_passphrase": None, "uri": "u"})))


@pytest.mark.parametrize("module", [store_mod, info_mod])
def test_store_path_that_is_a_file_is_an_input_error(tmp_path, module):
    afile = tmp_path / "not-a-dir"
    afile.write_text("x")
    for path in (afile, afile / "below"):
        with pytest.raises(InputError) as err:
            module.work(FakeModule(defaults(path=str(path), last_order_url="https://acme/o/1")))
        assert err.value.field == "path" and "not a directory" in err.value.msg


@pytest.mark.parametrize("change", [
    {"certificate": "new", "privatekey_content": "new"},  # placeholders: replaced by a real pair below
    {"ari": {"window_start": "2026-01-01T00:00:00Z"}},
    {"last_order_url": "https://acme/o/9"},
])
def test_write_with_a_passphrase_that_does_not_open_the_group_is_refused(tmp_path, change):
    path = str(tmp_path)
    _two_generations(path)
    state = tmp_path / "g1" / "state.json"
    raw = state.read_bytes()
    if "certificate" in change:
        change = dict(zip(("certificate", "privatekey_content"), make_cert("three.example.test")))
    with pytest.raises(InputError) as err:
        store_mod.work(FakeModule(defaults(path=path, passphrase="another-passphrase-entirely", **change)))
    assert err.value.field == "passphrase"
    assert "does not open" in err.value.msg and "new_passphrase" in err.value.msg
    assert "another-passphrase" not in err.value.msg
    assert state.read_bytes() == raw  # nothing written: the rollback key still opens with the group's passphrase
    doc = json.loads(raw)
    assert _key_opens(doc["previous"]["privatekey"], PASS)


def test_new_passphrase_reencrypts_current_previous_and_accounts_together(tmp_path):
    path = str(tmp_path)
    _two_generations(path)
    r = store_mod.work(FakeModule(defaults(path=path, new_passphrase=NEW_PASS), diff=True))
    assert r["changed"] and r["passphrase_changed"] and r["revision"] == 4
    doc = json.loads((tmp_path / "g1" / "state.json").read_text())
    for pem in (doc["current"]["privatekey"], doc["previous"]["privatekey"], doc["accounts"]["https://acme/dir"]["key"]):
        assert _key_opens(pem, NEW_PASS) and not _key_opens(pem, PASS)
    info = info_mod.work(FakeModule(defaults(path=path, passphrase=NEW_PASS)))
    assert info["current"]["key_matches"] and info["previous"]["key_matches"]
    # idempotent: the same task again changes nothing
    again = store_mod.work(FakeModule(defaults(path=path, new_passphrase=NEW_PASS)))
    assert again["changed"] is False and again["passphrase_changed"] is False
    # the old passphrase alone is now refused
    with pytest.raises(InputError, match="does not open"):
        store_mod.work(FakeModule(defaults(path=path, last_order_url="https://acme/o/2")))
    # neither passphrase opens: refused
    with pytest.raises(InputError, match="neither passphrase nor new_passphrase"):
        store_mod.work(FakeModule(defaults(path=path, passphrase="wrong-passphrase-1", new_passphrase="wrong-passphrase-2")))
    with pytest.raises(InputError) as err:
        store_mod.work(FakeModule(defaults(path=path, passphrase=NEW_PASS, new_passphrase=NEW_PASS)))
    assert err.value.field == "new_passphrase"


def test_new_passphrase_in_check_mode_writes_nothing(tmp_path):
    path = str(tmp_path)
    _two_generations(path)
    raw = (tmp_path / "g1" / "state.json").read_bytes()
    r = store_mod.work(FakeModule(defaults(path=path, new_passphrase=NEW_PASS), check_mode=True))
    assert r["changed"] and r["passphrase_changed"]
    assert (tmp_path / "g1" / "state.json").read_bytes() == raw


def test_stale_revision_is_refused_not_overwritten(tmp_path):
    from ansible_collections.byoc.certificates.plugins.module_utils._store.base import StaleRevision
    from ansible_collections.byoc.certificates.plugins.module_utils._store.filesystem import FilesystemStore

    path = str(tmp_path)
    r = store_mod.work(FakeModule(defaults(path=path, last_order_url="https://acme/o/1")))
    assert r["revision"] == 1
    with pytest.raises(StaleRevision) as err:
        store_mod.work(FakeModule(defaults(path=path, last_order_url="https://acme/o/2", expected_revision=0)))
    assert "revision 1" in err.value.msg and "Run the task again" in err.value.msg
    # another writer gets in between this task's read and its write: the backend's compare-and-swap refuses it
    store = FilesystemStore(path)
    mine = store.read("g1")
    theirs = dict(mine, revision=2, last_order_url="https://acme/o/theirs")
    store.write("g1", theirs, 1)
    with pytest.raises(StaleRevision):
        store.write("g1", dict(mine, revision=2, last_order_url="https://acme/o/mine"), 1)
    assert store.read("g1")["last_order_url"] == "https://acme/o/theirs"


CONCURRENT_WRITER = """
import json, sys
from ansible_collections.byoc.certificates.plugins.module_utils._errors import ByocError
from ansible_collections.byoc.certificates.plugins.modules import certificate_store as store_mod
path, me, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
params = json.loads(sys.argv[4])
class M:
    check_mode = False
    _diff = False
    def warn(self, msg):
        pass
outcomes = []
for i in range(n):
    m = M()
    m.params = dict(params, path=path, group="g%d" % (i // 5), last_order_url="https://acme/%s/%d" % (me, i))
    try:
        store_mod.work(m)
        outcomes.append("ok")
    except ByocError as exc:
        outcomes.append("stale" if "changed while this task ran" in exc.msg else "error: " + exc.msg)
    except Exception as exc:
        outcomes.append("crash: %r" % (exc,))
print(json.dumps(outcomes))
"""


def test_two_concurrent_writer_processes_never_break_each_other(tmp_path):
    """Two processes write the same (new) groups at the same time: no writer ever loses its temporary file
    (issue 10: "No such file or directory"), a refused write is always the stale-revision refusal, and the
    final revision counts exactly the writes that succeeded (no lost update)."""
    import os
    import subprocess
    import sys

    env = dict(os.environ, PYTHONPATH=os.pathsep.join(p for p in sys.path if p))
    n = 60
    procs = [subprocess.Popen([sys.executable, "-c", CONCURRENT_WRITER, str(tmp_path), f"w{i}", str(n),
                               json.dumps(defaults(passphrase=None))], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              text=True, env=env) for i in range(2)]
    results = []
    for proc in procs:
        out, err = proc.communicate(timeout=300)
        assert proc.returncode == 0, err
        results.append(json.loads(out))
    outcomes = results[0] + results[1]
    assert not [o for o in outcomes if o not in ("ok", "stale")], sorted(set(outcomes))
    ok = outcomes.count("ok")
    revisions = 0
    for group_dir in tmp_path.iterdir():
        doc = json.loads((group_dir / "state.json").read_text())
        revisions += doc["revision"]
        assert not [p.name for p in group_dir.iterdir() if p.name.endswith(".tmp")]
    assert revisions == ok and ok >= n  # every group got written; each success is one revision


# -- the root kept with the material (issue 9 §5), and the gate on certificate options (issue 10) --------------------
def _ca(name, issuer=None, issuer_key=None):
    key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.datetime.now(datetime.timezone.utc)
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    cert = (x509.CertificateBuilder().subject_name(subject)
            .issuer_name(issuer.subject if issuer else subject)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(days=1)).not_valid_after(now + datetime.timedelta(days=3650))
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(issuer_key or key, hashes.SHA256()))
    return cert, key


def _pki():
    root, root_key = _ca("unit root")
    inter, inter_key = _ca("unit intermediate", root, root_key)
    leaf_key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.datetime.now(datetime.timezone.utc)
    leaf = (x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "sbc1.example.test")]))
            .issuer_name(inter.subject).public_key(leaf_key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now).not_valid_after(now + datetime.timedelta(days=90))
            .add_extension(x509.SubjectAlternativeName([x509.DNSName("sbc1.example.test")]), critical=False)
            .sign(inter_key, hashes.SHA256()))

    def pem(c):
        return c.public_bytes(serialization.Encoding.PEM).decode()
    key_pem = leaf_key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                     serialization.NoEncryption()).decode()
    return pem(leaf), pem(inter), pem(root), key_pem


def test_root_is_checked_and_kept_with_the_material(tmp_path):
    leaf, inter, root, key = _pki()
    path = str(tmp_path)
    r = store_mod.work(FakeModule(defaults(path=path, certificate=leaf, chain=inter, privatekey_content=key, root=root)))
    assert r["current"]["root_fingerprint"] == x509.load_pem_x509_certificate(root.encode()).fingerprint(hashes.SHA256()).hex()
    got = info_mod.work(FakeModule(defaults(path=path, export_dir=str(tmp_path / "out"))))
    assert got["current"]["root"] == root and got["files"]["root"].endswith("root.pem")
    assert (tmp_path / "out" / "root.pem").read_text() == root
    # attaching the same root again changes nothing
    assert store_mod.work(FakeModule(defaults(path=path, root=root)))["changed"] is False
    other_root = _pki()[2]
    for bad, why in ((other_root, "does not lead to"), (inter, "not self-signed"), (leaf, "leaf"),
                     (root + other_root, "exactly one")):
        with pytest.raises(InputError) as err:
            store_mod.work(FakeModule(defaults(path=path, root=bad)))
        assert err.value.field == "root" and why in err.value.msg, err.value.msg
    with pytest.raises(InputError, match="no current certificate"):
        store_mod.work(FakeModule(defaults(path=str(tmp_path / "empty"), root=root)))


def test_key_material_in_a_certificate_option_is_refused_and_never_echoed(tmp_path):
    leaf, inter, _root, key = _pki()
    body = key.splitlines()[1]
    for field, params in (("certificate", {"certificate": leaf + key}), ("chain", {"certificate": leaf, "chain": key}),
                          ("fullchain", {"certificate": leaf, "fullchain": leaf + inter + key})):
        with pytest.raises(InputError) as err:
            store_mod.work(FakeModule(defaults(path=str(tmp_path), privatekey_content=key, **params)))
        assert err.value.field == field and "private key material" in err.value.msg
        assert body not in err.value.msg
    assert not (tmp_path / "g1").exists()


def test_store_refuses_what_every_module_refuses_in_the_gates_words(tmp_path):
    """A CA where the leaf belongs, a leaf in the chain, garbage: the gate's refusal, naming the option. The
    validity dates are not judged (a store keeps what was issued)."""
    from ansible_collections.byoc.certificates.plugins.module_utils import _gate

    leaf, inter, root, key = _pki()
    other_leaf = make_cert("other.example.test")[0]
    garbage = "-----BEGIN CERTIFICATE-----\nbm90IGEgY2VydGlmaWNhdGU=\n-----END CERTIFICATE-----\n"
    for params, field, gate_call in (
            ({"certificate": inter}, "certificate", lambda: _gate.server_certificate(inter, "certificate")),
            ({"certificate": leaf, "chain": other_leaf}, "chain", lambda: _gate.ca_certificates(other_leaf, "chain")),
            ({"certificate": garbage}, "certificate", lambda: _gate.server_certificate(garbage, "certificate"))):
        with pytest.raises(InputError) as want:
            gate_call()
        with pytest.raises(InputError) as err:
            store_mod.work(FakeModule(defaults(path=str(tmp_path), privatekey_content=key, **params)))
        assert err.value.field == field and err.value.msg == want.value.msg
    assert not (tmp_path / "g1").exists()
    # an expired certificate is still kept (it was issued; deploying it is refused elsewhere)
    old_cert, old_key = make_cert("old.example.test", days=9, start_days=-10)
    assert store_mod.work(FakeModule(defaults(path=str(tmp_path), certificate=old_cert, privatekey_content=old_key)))["rotated"]
