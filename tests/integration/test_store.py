"""The certificate store through the real modules, the same suite for the filesystem backend and for the s3
backend against moto's server (lab part ``moto``): rotation, idempotence, encryption at rest, modes, backoff, the
lock between runs, check mode, bad input, and a writer killed mid-write."""

from __future__ import annotations

import datetime
import json
import os
import signal
import stat
import subprocess
import sys
import textwrap
import uuid

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from byoc_harness import REPO, run_playbook  # noqa: E402  (on sys.path via conftest)

PASSPHRASE = "store-passphrase-" + uuid.uuid4().hex[:8]


def make_cert(name: str, days: int = 90) -> tuple[str, str]:
    key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)]))
            .issuer_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "store test CA")]))
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now).not_valid_after(now + datetime.timedelta(days=days))
            .add_extension(x509.SubjectAlternativeName([x509.DNSName(name)]), critical=False)
            .sign(key, hashes.SHA256()))
    return (cert.public_bytes(serialization.Encoding.PEM).decode(),
            key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                              serialization.NoEncryption()).decode())


def fingerprint(pem: str) -> str:
    return x509.load_pem_x509_certificate(pem.encode()).fingerprint(hashes.SHA256()).hex()


class Backend:
    """Module options for one backend, plus a way to read the raw stored bytes independently of the modules."""

    def __init__(self, kind: str, tmp_path, lab):
        self.kind = kind
        if kind == "filesystem":
            self.root = tmp_path / "store"
            self.options = {"backend": "filesystem", "path": str(self.root)}
        else:
            import boto3

            moto = lab.part("moto")
            self.bucket = "store-" + uuid.uuid4().hex[:10]
            self.client = boto3.client("s3", endpoint_url=moto["endpoint_url"], region_name=moto["region"],
                                       aws_access_key_id=moto["access_key"], aws_secret_access_key=moto["secret_key"])
            self.client.create_bucket(Bucket=self.bucket)
            self.options = {"backend": "s3", "s3": {
                "bucket": self.bucket, "prefix": "certs/", "endpoint_url": moto["endpoint_url"],
                "access_key": moto["access_key"], "secret_key": moto["secret_key"], "region": moto["region"]}}

    def raw(self, group: str) -> bytes | None:
        if self.kind == "filesystem":
            path = self.root / group / "state.json"
            return path.read_bytes() if path.exists() else None
        try:
            return self.client.get_object(Bucket=self.bucket, Key=f"certs/{group}/state.json")["Body"].read()
        except self.client.exceptions.NoSuchKey:
            return None


@pytest.fixture(params=["filesystem", "s3"])
def backend(request, tmp_path, lab):
    return Backend(request.param, tmp_path, lab)


def store(run_module, backend, **args):
    return run_module("certificate_store", {**backend.options, "passphrase": PASSPHRASE, **args})


def info(run_module, backend, **args):
    return run_module("certificate_store_info", {**backend.options, "passphrase": PASSPHRASE, **args})


def test_rotation_idempotence_and_encryption_at_rest(run_module, backend, tmp_path):
    cert1, key1 = make_cert("sbc1.example.test")
    cert2, key2 = make_cert("sbc1.example.test")
    r = store(run_module, backend, group="g1", certificate=cert1, privatekey_content=key1, order_uri="https://ca/o/1")
    assert r["changed"] and r["rotated"], r
    assert r["current"]["fingerprint"] == fingerprint(cert1)
    assert "privatekey" not in r["current"] and "PRIVATE KEY" not in r["_stdout"]
    # the same certificate again: nothing changes (compared by fingerprint)
    again = store(run_module, backend, group="g1", certificate=cert1, privatekey_content=key1)
    assert again["changed"] is False and again["rotated"] is False, again
    r = store(run_module, backend, group="g1", certificate=cert2, privatekey_content=key2)
    assert r["rotated"] and r["previous"]["fingerprint"] == fingerprint(cert1)

    got = info(run_module, backend, group="g1")
    assert got["current"]["fingerprint"] == fingerprint(cert2)
    assert got["previous"]["fingerprint"] == fingerprint(cert1)
    assert got["current"]["key_matches"] is True and got["previous"]["key_matches"] is True
    assert "privatekey" not in got["current"]
    assert got["last_order_url"] == "https://ca/o/1"

    # independently: the raw stored bytes hold no clear key, and the encrypted key decrypts to the original
    raw = backend.raw("g1").decode()
    assert "BEGIN PRIVATE KEY" not in raw and key2.splitlines()[1] not in raw
    doc = json.loads(raw)
    loaded = serialization.load_pem_private_key(doc["current"]["privatekey"].encode(), PASSPHRASE.encode())
    assert loaded.private_numbers() == serialization.load_pem_private_key(key2.encode(), None).private_numbers()
    if backend.kind == "filesystem":
        assert stat.S_IMODE(os.stat(backend.root / "g1" / "state.json").st_mode) == 0o600
        assert stat.S_IMODE(os.stat(backend.root / "g1").st_mode) == 0o700

    # export: files 0600, keys exported encrypted only
    out = info(run_module, backend, group="g1", export_dir=str(tmp_path / "export"))
    assert set(out["files"]) >= {"cert", "fullchain", "privkey", "previous_cert", "previous_privkey"}
    privkey = open(out["files"]["privkey"]).read()
    assert "ENCRYPTED PRIVATE KEY" in privkey
    assert stat.S_IMODE(os.stat(out["files"]["privkey"]).st_mode) == 0o600

    # the wrong passphrase is refused clearly
    bad = run_module("certificate_store_info", {**backend.options, "passphrase": "not-the-passphrase", "group": "g1"})
    assert bad.get("failed") and "passphrase" in bad["msg"], bad


def test_check_mode_and_bad_input_write_nothing(run_module, backend):
    cert, key = make_cert("sbc2.example.test")
    r = run_module("certificate_store", {**backend.options, "passphrase": PASSPHRASE, "group": "g2",
                                         "certificate": cert, "privatekey_content": key}, check=True)
    assert r["changed"] is True and not r.get("failed")
    assert backend.raw("g2") is None
    other_key = make_cert("sbc2.example.test")[1]
    r = store(run_module, backend, group="g2", certificate=cert, privatekey_content=other_key)
    assert r.get("failed") and r["msg"].startswith("privatekey: the private key does not belong"), r
    r = store(run_module, backend, group="../g2", certificate=cert, privatekey_content=key)
    assert r.get("failed") and r["msg"].startswith("group:"), r
    r = run_module("certificate_store", {**backend.options, "passphrase": "short", "group": "g2",
                                         "certificate": cert, "privatekey_content": key})
    assert r.get("failed") and "at least 12" in r["msg"]
    assert backend.raw("g2") is None
    # no secret in any output
    assert PASSPHRASE not in r["_stdout"] and key.splitlines()[1] not in r["_stdout"]


def test_backoff_is_persisted_and_steps(run_module, backend):
    now = "2026-11-01T00:00:00Z"
    r = store(run_module, backend, group="g3", failure={"msg": "validation failed"}, now=now)
    assert r["backoff"]["failures"] == 1 and r["backoff"]["next_attempt"] == "2026-11-01T00:01:00Z"
    r = store(run_module, backend, group="g3", failure={"msg": "validation failed"}, now=now)
    assert r["backoff"]["next_attempt"] == "2026-11-01T00:10:00Z"
    got = info(run_module, backend, group="g3", now="2026-11-01T00:05:00Z")
    assert got["backoff"]["in_window"] is True and got["backoff"]["failures"] == 2
    r = store(run_module, backend, group="g3", clear_backoff=True)
    assert r["changed"] and r["backoff"] is None
    assert json.loads(backend.raw("g3"))["backoff"] is None


def test_lock_keeps_a_second_run_out(run_module, backend):
    a = store(run_module, backend, group="g4", lock="acquire", lock_owner="run-a")
    assert a["changed"] and a["lock"]["owner"] == "run-a"
    b = store(run_module, backend, group="g4", lock="acquire", lock_owner="run-b")
    assert b.get("failed") and "locked by another run (owner run-a" in b["msg"], b
    # writes of another owner are refused while the lock is held
    w = store(run_module, backend, group="g4", last_order_url="https://ca/o/x", lock_owner="run-b")
    assert w.get("failed") and "did not write" in w["msg"]
    assert backend.raw("g4") is None
    # the owner may write
    assert store(run_module, backend, group="g4", last_order_url="https://ca/o/a", lock_owner="run-a")["changed"]
    rel = store(run_module, backend, group="g4", lock="release", lock_owner="run-a")
    assert rel["changed"] and rel["lock"] is None
    b = store(run_module, backend, group="g4", lock="acquire", lock_owner="run-b")
    assert not b.get("failed") and b["lock"]["owner"] == "run-b"


KILLER = textwrap.dedent("""
    import json, os, signal, socket, sys
    from ansible_collections.byoc.certificates.plugins.module_utils._store import document as d
    params = json.loads(sys.argv[1])
    store = d.open_store(params)
    doc = store.read(params["group"])
    doc["previous"], doc["current"] = doc["current"], None
    doc["last_order_url"] = "x" * 300000            # big enough to be written in several pieces
    def die_after_half(send):
        def wrapper(self_or_fd, data, *rest):
            data = bytes(data)
            if len(data) > 1000:
                send(self_or_fd, data[: len(data) // 2], *rest)
                os.kill(os.getpid(), signal.SIGKILL)
            return send(self_or_fd, data, *rest)
        return wrapper
    os.write = die_after_half(os.write)                             # filesystem backend
    socket.socket.sendall = die_after_half(socket.socket.sendall)   # s3 backend (plain http to moto)
    socket.socket.send = die_after_half(socket.socket.send)
    store.write(params["group"], doc)
    print("NOT KILLED")
""")


def test_writer_killed_mid_write_leaves_previous_material(run_module, backend):
    cert, key = make_cert("sbc5.example.test")
    assert store(run_module, backend, group="g5", certificate=cert, privatekey_content=key)["changed"]
    before = backend.raw("g5")
    params = {**backend.options, "group": "g5"}
    env = dict(os.environ, PYTHONPATH=str(REPO / ".build" / "dev"))
    proc = subprocess.run([sys.executable, "-c", KILLER, json.dumps(params)], env=env, capture_output=True,
                          text=True, timeout=120, check=False)
    assert proc.returncode == -signal.SIGKILL, (proc.returncode, proc.stdout, proc.stderr)
    assert backend.raw("g5") == before
    got = info(run_module, backend, group="g5", return_private_keys=False)
    assert got["current"]["fingerprint"] == fingerprint(cert) and got["current"]["key_matches"] is True
    assert got["last_order_url"] is None
    # and the store keeps working afterwards
    cert2, key2 = make_cert("sbc5.example.test")
    r = store(run_module, backend, group="g5", certificate=cert2, privatekey_content=key2)
    assert r["rotated"] and r["previous"]["fingerprint"] == fingerprint(cert)


def test_private_keys_only_with_no_log(run_module, backend, tmp_path):
    cert, key = make_cert("sbc6.example.test")
    store(run_module, backend, group="g6", certificate=cert, privatekey_content=key)
    r = info(run_module, backend, group="g6", return_private_keys=True)
    assert r.get("failed") and "no_log" in r["msg"]
    assert key.splitlines()[1] not in r["_stdout"]
    # with no_log on the task the key is returned to the play (and censored in output)
    play = tmp_path / "p.yml"
    play.write_text(textwrap.dedent(f"""
        - hosts: localhost
          connection: local
          gather_facts: false
          tasks:
            - byoc.certificates.certificate_store_info: {json.dumps({**backend.options, "group": "g6",
                                                                     "return_private_keys": True})}
              no_log: true
              register: got
            - ansible.builtin.copy:
                content: "{{{{ got.current.privatekey }}}}"
                dest: {tmp_path / 'out.pem'}
                mode: "0600"
              no_log: true
    """))
    proc = run_playbook(play, env={"BYOC_STORE_PASSPHRASE": PASSPHRASE})
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert key.splitlines()[1] not in proc.stdout + proc.stderr
    out = serialization.load_pem_private_key((tmp_path / "out.pem").read_bytes(), None)
    assert out.private_numbers() == serialization.load_pem_private_key(key.encode(), None).private_numbers()
