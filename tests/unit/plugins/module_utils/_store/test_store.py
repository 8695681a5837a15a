# Copyright (c) 2026, byoc.certificates contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""The store's document model, key encryption and the filesystem backend (the s3 backend runs the same suite
against moto's server in tests/integration/test_store.py)."""

from __future__ import annotations

import datetime
import os
import stat
import subprocess
import sys
import textwrap

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from ansible_collections.byoc.certificates.plugins.module_utils._errors import ApiError, InputError
from ansible_collections.byoc.certificates.plugins.module_utils._store import document as d
from ansible_collections.byoc.certificates.plugins.module_utils._store.base import LockHeld
from ansible_collections.byoc.certificates.plugins.module_utils._store.filesystem import FilesystemStore

PASS = "correct horse battery staple"


def child_env() -> dict:
    """The collection must import in a child process the same way it does here (pytest or ansible-test units)."""
    return dict(os.environ, PYTHONPATH=os.pathsep.join(p for p in sys.path if p))


def make_cert(name="a.example.test", days=90):
    key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)]))
            .issuer_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "test CA")]))
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now).not_valid_after(now + datetime.timedelta(days=days))
            .add_extension(x509.SubjectAlternativeName([x509.DNSName(name)]), critical=False)
            .sign(key, hashes.SHA256()))
    key_pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption()).decode()
    return cert.public_bytes(serialization.Encoding.PEM).decode(), key_pem


def test_material_is_validated_and_key_encrypted():
    cert, key = make_cert()
    material = d.build_material(certificate=cert, chain=None, fullchain=None, key_pem=key,
                                key_passphrases=[None, PASS], passphrase=PASS)[0]
    assert "ENCRYPTED PRIVATE KEY" in material["privatekey"]
    assert key.strip() not in material["privatekey"]
    assert material["names"] == ["a.example.test"]
    assert material["key_type"] == "ecdsa-secp256r1"
    loaded = serialization.load_pem_private_key(material["privatekey"].encode(), PASS.encode())
    assert loaded.private_numbers() == serialization.load_pem_private_key(key.encode(), None).private_numbers()
    with pytest.raises(InputError, match="passphrase"):
        d.decrypt_stored_key(material["privatekey"], "wrong passphrase!!", "the current key")


def test_key_must_match_certificate():
    cert = make_cert()[0]
    other = make_cert()[1]
    with pytest.raises(InputError, match="privatekey_content: the private key does not match the certificate"):
        d.build_material(certificate=cert, chain=None, fullchain=None, key_pem=other, key_passphrases=[None],
                         passphrase=PASS)


def test_passphrase_rules():
    with pytest.raises(InputError, match="BYOC_STORE_PASSPHRASE"):
        d.require_passphrase(None, "to store a key")
    with pytest.raises(InputError, match="at least 12"):
        d.require_passphrase("short", "to store a key")


def test_group_names_are_checked():
    store = FilesystemStore("/tmp/unused-store-root")
    for bad in ("", "../etc", "a/b", ".hidden", "x" * 200):
        with pytest.raises(InputError, match="group"):
            store.read(bad)


def test_filesystem_roundtrip_modes_and_atomic_replace(tmp_path):
    store = FilesystemStore(str(tmp_path / "store"))
    assert store.read("g1") is None
    doc = d.empty_document("g1")
    doc["last_order_url"] = "https://acme/order/1"
    store.write("g1", doc, 0)
    path = tmp_path / "store" / "g1" / "state.json"
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert stat.S_IMODE(os.stat(path.parent).st_mode) == 0o700
    assert store.read("g1")["last_order_url"] == "https://acme/order/1"
    doc["last_order_url"] = "https://acme/order/2"
    store.write("g1", doc, 0)
    assert store.read("g1")["last_order_url"] == "https://acme/order/2"
    assert sorted(p.name for p in path.parent.iterdir()) == [".write.lock", "state.json"]


def test_corrupt_document_is_reported(tmp_path):
    store = FilesystemStore(str(tmp_path))
    (tmp_path / "g1").mkdir()
    (tmp_path / "g1" / "state.json").write_text("{not json")
    with pytest.raises(ApiError, match="not valid JSON"):
        store.read("g1")


def test_lock_is_exclusive_refreshable_and_expires(tmp_path):
    store = FilesystemStore(str(tmp_path))
    now = datetime.datetime(2026, 11, 1, tzinfo=datetime.timezone.utc)
    lock = store.acquire("g1", "run-a", 600, now=now)[0]
    assert lock["owner"] == "run-a"
    with pytest.raises(LockHeld, match="locked by another run \\(owner run-a"):
        store.acquire("g1", "run-b", 600, now=now + datetime.timedelta(seconds=10))
    store.acquire("g1", "run-a", 600, now=now + datetime.timedelta(seconds=20))  # refresh own
    with pytest.raises(LockHeld, match="belongs to run-a"):
        store.release("g1", "run-b")
    # after expiry a crashed run's lock is taken over
    lock = store.acquire("g1", "run-b", 600, now=now + datetime.timedelta(seconds=700))[0]
    assert lock["owner"] == "run-b"
    assert store.release("g1", "run-b") is True
    assert store.read_lock("g1") is None


def test_lock_between_processes(tmp_path):
    """Two processes race for the same lock: exactly one wins."""
    code = textwrap.dedent(f"""
        import sys
        from ansible_collections.byoc.certificates.plugins.module_utils._store.filesystem import FilesystemStore
        from ansible_collections.byoc.certificates.plugins.module_utils._store.base import LockHeld
        try:
            FilesystemStore({str(tmp_path)!r}).acquire("g1", sys.argv[1], 600)
            print("won")
        except LockHeld:
            print("lost")
    """)
    procs = [subprocess.Popen([sys.executable, "-c", code, f"run-{i}"], stdout=subprocess.PIPE, text=True,
                              env=child_env()) for i in range(4)]
    outs = [p.communicate(timeout=60)[0].strip() for p in procs]
    assert sorted(outs) == ["lost", "lost", "lost", "won"]


def test_process_killed_mid_write_leaves_previous_document(tmp_path):
    """A writer SIGKILLed after half of the new document reached the disk: the previous document still reads,
    with its key decrypting; the next write cleans the leftover temporary file."""
    cert, key = make_cert()
    store = FilesystemStore(str(tmp_path))
    doc = d.empty_document("g1")
    doc["current"] = d.build_material(certificate=cert, chain=None, fullchain=None, key_pem=key,
                                      key_passphrases=[None], passphrase=PASS)[0]
    store.write("g1", doc, 0)
    code = textwrap.dedent(f"""
        import os, signal
        from ansible_collections.byoc.certificates.plugins.module_utils._store.filesystem import FilesystemStore
        from ansible_collections.byoc.certificates.plugins.module_utils._store import document as d
        store = FilesystemStore({str(tmp_path)!r})
        doc = store.read("g1")
        doc["previous"], doc["current"] = doc["current"], None
        doc["last_order_url"] = "x" * 200000
        real_write = os.write
        def half_then_die(fd, data):
            real_write(fd, bytes(data)[: len(data) // 2])
            os.kill(os.getpid(), signal.SIGKILL)
        os.write = half_then_die
        store.write("g1", doc, 0)
    """)
    proc = subprocess.run([sys.executable, "-c", code], env=child_env(), timeout=60, check=False)
    assert proc.returncode == -9
    leftovers = [p for p in (tmp_path / "g1").iterdir() if p.name not in ("state.json", ".write.lock")]
    assert leftovers and all(p.name.endswith(".tmp") for p in leftovers)
    again = store.read("g1")
    assert again["current"]["fingerprint"] == doc["current"]["fingerprint"]
    assert again["last_order_url"] is None
    d.decrypt_stored_key(again["current"]["privatekey"], PASS, "current")
    # a young temporary file may belong to a live writer: the next write leaves it alone (issue 10) ...
    store.write("g1", again, 0)
    assert all(p.exists() for p in leftovers)
    # ... and removes it once it is older than any write can take
    for p in leftovers:
        os.utime(p, (1, 1))
    store.write("g1", again, 0)
    assert sorted(p.name for p in (tmp_path / "g1").iterdir()) == [".write.lock", "state.json"]
