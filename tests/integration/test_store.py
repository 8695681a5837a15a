"""The certificate store through the real modules, the same suite for the filesystem backend and for the s3
backend against moto's server (lab part ``moto``): rotation, idempotence, encryption at rest, modes, backoff, the
lock between runs, check mode, bad input, a writer killed mid-write; the passphrase rules, the compare-and-swap
on the revision and two concurrent writer processes (issue 10). Also: every action group's common options set
through ``module_defaults`` reach every module of the group without "Unsupported parameters" (issue 9 §5)."""

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
    assert r.get("failed") and r["msg"].startswith("privatekey_content: the private key does not match the certificate"), r
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
    store.write(params["group"], doc, doc["revision"])
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


# -- issue 10 ------------------------------------------------------------------------------------------------------
def test_passphrase_that_does_not_open_the_group_is_refused_and_new_passphrase_rekeys(run_module, backend):
    cert1, key1 = make_cert("sbc7.example.test")
    cert2, key2 = make_cert("sbc7.example.test")
    store(run_module, backend, group="g7", certificate=cert1, privatekey_content=key1)
    store(run_module, backend, group="g7", certificate=cert2, privatekey_content=key2)
    raw = backend.raw("g7")
    other = "another-passphrase-" + uuid.uuid4().hex[:6]
    cert3, key3 = make_cert("sbc7.example.test")
    r = run_module("certificate_store", {**backend.options, "group": "g7", "passphrase": other,
                                         "certificate": cert3, "privatekey_content": key3})
    assert r.get("failed") and r["msg"].startswith("passphrase: does not open the existing document"), r
    assert "new_passphrase" in r["msg"] and other not in r["_stdout"]
    assert backend.raw("g7") == raw  # nothing written, the rollback key still opens

    r = run_module("certificate_store", {**backend.options, "group": "g7", "passphrase": PASSPHRASE,
                                         "new_passphrase": other}, diff=True)
    assert r["changed"] and r["passphrase_changed"] and not r.get("failed"), r
    assert other not in r["_stdout"] and PASSPHRASE not in r["_stdout"]
    doc = json.loads(backend.raw("g7"))
    for slot, key in (("current", key2), ("previous", key1)):  # both generations, read back independently
        loaded = serialization.load_pem_private_key(doc[slot]["privatekey"].encode(), other.encode())
        assert loaded.private_numbers() == serialization.load_pem_private_key(key.encode(), None).private_numbers()
    again = run_module("certificate_store", {**backend.options, "group": "g7", "passphrase": PASSPHRASE,
                                             "new_passphrase": other})
    assert again["changed"] is False and not again.get("failed"), again
    got = run_module("certificate_store_info", {**backend.options, "group": "g7", "passphrase": other})
    assert got["current"]["key_matches"] and got["previous"]["key_matches"]


def test_stale_revision_is_refused(run_module, backend):
    store(run_module, backend, group="g8", last_order_url="https://ca/o/1")
    store(run_module, backend, group="g8", last_order_url="https://ca/o/2")
    raw = backend.raw("g8")
    r = store(run_module, backend, group="g8", last_order_url="https://ca/o/3", expected_revision=1)
    assert r.get("failed") and "read revision 1, the store now holds revision 2" in r["msg"], r
    assert "Run the task again" in r["msg"] and backend.raw("g8") == raw


WRITERS = textwrap.dedent("""
    import json, sys
    from ansible_collections.byoc.certificates.plugins.module_utils._store import document as d
    from ansible_collections.byoc.certificates.plugins.module_utils._store.base import StaleRevision, revision_of
    params, me, n = json.loads(sys.argv[1]), sys.argv[2], int(sys.argv[3])
    store = d.open_store(params)
    out = []
    for i in range(n):
        group = "w%d" % (i // 4)
        try:
            doc = store.read(group) or d.empty_document(group)
            rev = revision_of(doc)
            doc = dict(doc, revision=rev + 1, last_order_url="%s-%d" % (me, i))
            store.write(group, doc, rev)
            out.append("ok")
        except StaleRevision:
            out.append("stale")
        except Exception as exc:
            out.append("error: %s: %s" % (type(exc).__name__, exc))
    print(json.dumps(out))
""")


def test_two_concurrent_writer_processes(backend):
    """Two processes write the same new groups at once, on both backends: every attempt either lands or is
    refused as stale (never "No such file or directory" from a removed temporary file), and each group's final
    revision equals the writes that landed on it (no lost update)."""
    params = {**backend.options, "group": "w0"}
    env = dict(os.environ, PYTHONPATH=str(REPO / ".build" / "dev"))
    n = 24
    procs = [subprocess.Popen([sys.executable, "-c", WRITERS, json.dumps(params), f"p{i}", str(n)], env=env,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for i in range(2)]
    outcomes = []
    for proc in procs:
        out, err = proc.communicate(timeout=300)
        assert proc.returncode == 0, err
        outcomes += json.loads(out)
    assert not [o for o in outcomes if o not in ("ok", "stale")], sorted(set(outcomes))
    revisions = sum(json.loads(backend.raw(f"w{g}"))["revision"] for g in range(n // 4))
    assert revisions == outcomes.count("ok")
    if backend.kind == "filesystem":
        assert not list(backend.root.glob("w*/*.tmp"))


def test_store_path_that_is_a_file(run_module, tmp_path):
    afile = tmp_path / "store-file"
    afile.write_text("not a directory")
    for module in ("certificate_store", "certificate_store_info"):
        r = run_module(module, {"path": str(afile), "group": "g1", "passphrase": PASSPHRASE,
                                **({"last_order_url": "https://ca/o/1"} if module == "certificate_store" else {})})
        assert r.get("failed") and r["msg"].startswith(f"path: {afile} is not a directory"), r
        assert "Traceback" not in r["_stdout"] and "Unexpected" not in r["msg"]


# -- issue 9 §5: module_defaults for every action group --------------------------------------------------------------
GROUP_DEFAULTS = {
    # the options every module of the group shares (doc_fragments/_<group>.py), with values that reach nothing
    # but a closed port on 127.0.0.1 (or a temporary store), so the modules run harmlessly in check mode
    "store": lambda tmp: {"path": str(tmp / "store"), "passphrase": PASSPHRASE, "group": "defaults-g"},
    "renewal": lambda tmp: {"renew_fraction": 0.25, "short_lived_fraction": 0.5, "short_lived_days": 10,
                            "stagger_fraction": 0.05, "use_ari": True},
    "dns": lambda tmp: {"provider": "rfc2136", "zone": "example.test", "nameservers": ["127.0.0.1:9"],
                        "rfc2136": {"server": "127.0.0.1", "port": 9, "key_name": "k", "key_secret": "c2VjcmV0",
                                    "key_algorithm": "hmac-sha256"}},
    "audiocodes": lambda tmp: {"api_url": "https://127.0.0.1:9/api/v1", "username": "admin", "password": "pw-xyz",
                               "validate_certs": True, "timeout": 5},
    "ribbon": lambda tmp: {"platform": "edge", "api_url": "https://127.0.0.1:9", "username": "admin",
                           "password": "pw-xyz", "validate_certs": True, "timeout": 5},
    "genesys": lambda tmp: {"api_url": "https://127.0.0.1:9", "client_id": "id", "client_secret": "pw-xyz",
                            "validate_certs": True, "request_timeout": 5},
    "verify": lambda tmp: {"nameservers": ["127.0.0.1:9"], "timeout": 5, "concurrency": 2},
    "report": lambda tmp: {"dir": str(tmp / "report"), "print_table": False},
    "plan": lambda tmp: {"concurrency": 2, "timeout": 5, "managed_fingerprint": ""},
    "issue": lambda tmp: {"workers": 2, "timeout": 5, "lease_ttl": 60, "passphrase": PASSPHRASE},
}
# the module's own minimal arguments (everything else comes from the group's defaults)
MODULE_ARGS = {
    "certificate_store": {"last_order_url": "https://ca/o/defaults"},
    "certificate_renewal_decision": {"group": "defaults-g", "names": ["a.example.test"]},
    "dns01_record": {"record": "_acme-challenge.a.example.test", "value": ["token"], "state": "absent", "wait": False},
    "genesys_trunk_info": {"wait": False},
    "tls_endpoint_info": {"endpoints": [{"name": "a.example.test", "host": "127.0.0.1", "port": 9}],
                          "ca_certificates": "not a certificate: refused by the gate, after the options were accepted"},
    "fleet_report": {"groups": []},
    "fleet_plan": {"hosts": []},
    "fleet_issue": {"groups": []},
}


def test_every_action_group_through_module_defaults(tmp_path):
    import yaml

    groups = yaml.safe_load((REPO / "meta" / "runtime.yml").read_text())["action_groups"]
    assert set(groups) == set(GROUP_DEFAULTS), "a new action group needs its common options in GROUP_DEFAULTS"
    tasks = []
    for group, members in sorted(groups.items()):
        for member in members:
            tasks.append({
                "name": f"{group}: {member}",
                "module_defaults": {f"group/byoc.certificates.{group}": GROUP_DEFAULTS[group](tmp_path)},
                f"byoc.certificates.{member}": MODULE_ARGS.get(member, {}),
                "check_mode": True, "ignore_errors": True, "register": f"r_{member}"})
    # a control that proves the check can see the failure: an option that no module of the group has
    tasks.append({"name": "control", "module_defaults": {"group/byoc.certificates.store": {
        **GROUP_DEFAULTS["store"](tmp_path), "renew_fraction": 0.5}},
        "byoc.certificates.certificate_store_info": {}, "ignore_errors": True, "register": "r_control"})
    results = {m: f"{{{{ r_{m} }}}}" for ms in groups.values() for m in ms}
    results["control"] = "{{ r_control }}"
    tasks.append({"ansible.builtin.copy": {"content": "{{ results | to_json }}", "dest": str(tmp_path / "out.json"),
                                           "mode": "0600"}, "vars": {"results": results}})
    play = tmp_path / "defaults.yml"
    play.write_text(yaml.safe_dump([{"hosts": "localhost", "connection": "local", "gather_facts": False,
                                     "tasks": tasks}], sort_keys=False))
    proc = run_playbook(play)
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-2000:]
    out = json.loads((tmp_path / "out.json").read_text())
    assert "Unsupported parameters" in out.pop("control").get("msg", "")
    assert len(out) == sum(len(m) for m in groups.values())
    for member, result in out.items():
        msg = str(result.get("msg", ""))
        assert "Unsupported parameters" not in msg, f"{member}: {msg}"
        assert "Unexpected" not in msg and "Traceback" not in str(result.get("module_stderr", "")), f"{member}: {msg}"
    # the modules that need no server succeed with nothing but the group's defaults
    for member in ("certificate_store", "certificate_store_info", "certificate_renewal_decision"):
        assert not out[member].get("failed"), out[member]
    assert out["certificate_store"]["changed"] and out["certificate_store_info"]["group"] == "defaults-g"
