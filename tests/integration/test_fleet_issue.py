"""Batch issuance (issue 13): byoc.certificates.fleet_issue against the lab's Pebble and BIND, with the store on disk.

Each test runs a tiny playbook (one fleet_issue task, run through ansible-playbook, registered with no_log) and
observes independently: Pebble's log (orders, accounts), the BIND primary (TXT records left behind), the store's
files (the new current, its encrypted key opened with the passphrase, the account and the backoff), and the chain
verified with cryptography against the root Pebble publishes (its management /roots/0).
"""

from __future__ import annotations

import hashlib
import json
import re
import subprocess
import sys
import urllib.request
import ssl
from pathlib import Path

import dns.message
import dns.query
import dns.rdatatype
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.x509.verification import PolicyBuilder, Store

from byoc_harness import REPO, ansible_env  # noqa: E402  (on sys.path via conftest)

PASSPHRASE = "fleet-issue-test-passphrase-1"


class Batch:
    def __init__(self, lab, directory: Path) -> None:
        self.lab = lab
        self.dir = directory
        self.pebble = lab.part("pebble")
        self.bind = lab.part("bind")
        self.store = directory / "store"
        self.zone = self.bind["zones"]["direct"]
        self.primary = f"{self.bind['primary']['host']}:{self.bind['primary']['port']}"

    def group(self, name: str, names: list[str], **over) -> dict:
        b = self.bind
        g = {
            "group": name, "names": names,
            "acme": {"directory": self.pebble["directory"], "ca_file": self.pebble.get("ca_file") or "",
                     "root_url": f"{self.pebble['management']}/roots/0", "profile": "default"},
            "dns": {"provider": "rfc2136", "zone": "", "nameservers": [self.primary], "wait_timeout": 60,
                    "options": {"server": b["primary"]["host"], "port": b["primary"]["port"],
                                "key_name": b["tsig"]["name"], "key_secret": b["tsig"]["secret"],
                                "key_algorithm": b["tsig"]["algorithm"]}},
            "store": {"backend": "filesystem", "path": str(self.store)},
        }
        for k, v in over.items():
            g[k] = dict(g[k], **v) if isinstance(v, dict) and isinstance(g.get(k), dict) else v
        return g

    def run(self, groups: list[dict], *, check: bool = False, verbosity: int = 0, no_log: bool = True,
            **args) -> subprocess.CompletedProcess:
        out = self.dir / "result.json"
        if out.exists():
            out.unlink()
        vars_file = self.dir / "vars.json"
        vars_file.write_text(json.dumps({"fi_args": {"groups": groups, "passphrase": PASSPHRASE, **args}}))
        vars_file.chmod(0o600)
        play = self.dir / "play.yml"
        play.write_text(f"""- hosts: localhost
  connection: local
  gather_facts: false
  tasks:
    - name: Issue the batch
      byoc.certificates.fleet_issue: "{{{{ fi_args }}}}"
      register: fi
      no_log: {str(no_log).lower()}
    - name: Save the public part of the result for the test
      ansible.builtin.copy:
        content: >-
          {{{{ fi | dict2items | rejectattr('key', 'eq', 'private_keys') | items2dict
             | combine({{'key_groups': fi.private_keys | default({{}}) | list}}) | to_nice_json }}}}
        dest: {out}
        mode: "0600"
      changed_when: false
      check_mode: false
""")
        cmd = [str(Path(sys.executable).parent / "ansible-playbook"), "-i", "localhost,", str(play),
               "-e", f"@{vars_file}"]
        if check:
            cmd.append("--check")
        if verbosity:
            cmd.append("-" + "v" * verbosity)
        env = ansible_env({})
        env["ANSIBLE_STDOUT_CALLBACK"] = "default"
        proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=900, cwd=REPO, check=False)
        proc.result = json.loads(out.read_text()) if out.exists() else None
        return proc

    # -- independent observers ---------------------------------------------------------------------------------
    def pebble_log(self) -> str:
        return (self.lab.lab.dir / "logs" / "pebble.log").read_text()

    def orders(self) -> int:
        # orders Pebble created (a POST /order-plz refused for a bad nonce and sent again is not an order)
        return len(re.findall(r"Added order ", self.pebble_log()))

    def new_accounts(self) -> int:
        return len(re.findall(r"There are now \d+ accounts in memory", self.pebble_log()))

    def doc(self, group: str) -> dict:
        return json.loads((self.store / group / "state.json").read_text())

    def txt(self, name: str) -> list[str]:
        p = self.bind["primary"]
        resp = dns.query.tcp(dns.message.make_query(f"_acme-challenge.{name}", dns.rdatatype.TXT), p["host"],
                             port=p["port"], timeout=5)
        return [r.to_text() for rr in resp.answer if rr.rdtype == dns.rdatatype.TXT for r in rr]

    def root(self) -> x509.Certificate:
        url = f"{self.pebble['management']}/roots/0"
        ctx = ssl.create_default_context(cafile=self.pebble.get("ca_file") or str(self.lab.ca_file))
        with urllib.request.urlopen(url, context=ctx, timeout=10) as resp:
            return x509.load_pem_x509_certificate(resp.read())

    def digest(self) -> str:
        h = hashlib.sha256()
        for p in sorted(self.store.rglob("*")):
            if p.is_file() and p.name != "lock.json":
                h.update(str(p.relative_to(self.store)).encode() + b"\0" + p.read_bytes())
        return h.hexdigest()


@pytest.fixture(scope="module")
def batch(lab, tmp_path_factory):
    return Batch(lab, tmp_path_factory.mktemp("fleet-issue"))


@pytest.fixture(scope="module")
def first(batch):
    """Three groups issued in ONE call (forced, no decision given: the module decides)."""
    names = {f"fi-g{i}": [f"fi{i}.{batch.zone}"] for i in (1, 2, 3)}
    names["fi-g3"].append(f"fi3b.{batch.zone}")
    orders, accounts, size = batch.orders(), batch.new_accounts(), len(batch.pebble_log())
    proc = batch.run([batch.group(g, n) for g, n in names.items()], force=True)
    return {"proc": proc, "names": names, "orders": batch.orders() - orders, "accounts": batch.new_accounts() - accounts,
            "log": batch.pebble_log()[size:]}


def test_three_groups_in_one_call_three_orders_one_account(first):
    proc, r = first["proc"], first["proc"].result
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-2000:]
    assert first["orders"] == 3, first["log"]  # one order per group (Pebble's log)
    assert first["accounts"] <= 1 and r["requests"]["accounts"] == 1, first["log"]  # one ACME account for the batch
    assert r["renewed_groups"] == ["fi-g1", "fi-g2", "fi-g3"] and r["failed_groups"] == []
    assert sorted(r["key_groups"]) == ["fi-g1", "fi-g2", "fi-g3"]
    for g in first["names"]:
        res = r["groups"][g]
        assert res["renewed"] and res["private_key_fact"] == "certificate_issue_private_key"
        assert res["dns_wait_seconds"] is not None and res["dns_wait_seconds"] >= 0
        assert "BEGIN CERTIFICATE" in res["certificate"] and "BEGIN CERTIFICATE" in res["root"]


def test_every_txt_record_is_removed_afterwards(batch, first):
    for names in first["names"].values():
        for n in names:
            assert batch.txt(n) == [], n


def test_the_store_holds_each_group_with_an_encrypted_key_and_a_chain_to_pebbles_root(batch, first):
    root = batch.root()
    accounts = set()
    for g, names in first["names"].items():
        doc = batch.doc(g)
        cur = doc["current"]
        assert "ENCRYPTED PRIVATE KEY" in cur["privatekey"]
        key = serialization.load_pem_private_key(cur["privatekey"].encode(), PASSPHRASE.encode())
        chain = x509.load_pem_x509_certificates(cur["fullchain"].encode())
        assert key.public_key().public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo) == \
            chain[0].public_key().public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
        for n in names:
            PolicyBuilder().store(Store([root])).build_server_verifier(x509.DNSName(n)).verify(chain[0], chain[1:])
        assert cur["root_fingerprint"] and doc["last_order_url"] == cur["order_uri"]
        acct = doc["accounts"][batch.pebble["directory"]]
        serialization.load_pem_private_key(acct["key"].encode(), PASSPHRASE.encode())  # opens with the passphrase
        accounts.add((acct["uri"], acct["key_fingerprint"]))
    assert len(accounts) == 1  # every group's entry records the same account


def test_a_group_outside_every_zone_fails_by_name_with_its_backoff_and_the_others_succeed(batch, first):
    orders = batch.orders()
    good = batch.group("fi-g1", first["names"]["fi-g1"])
    bad = batch.group("fi-bad", ["fi-bad.nowhere-zone.test"])
    proc = batch.run([good, bad], force=True)
    r = proc.result
    assert proc.returncode == 0 and r is not None, proc.stdout[-3000:]
    assert r["failed_groups"] == ["fi-bad"] and r["renewed_groups"] == ["fi-g1"]
    msg = r["groups"]["fi-bad"]["msg"]
    assert re.search(r"^Group fi-bad: issuing failed at '[^']+': .*Backoff: failure 1; the CA is not contacted", msg), msg
    backoff = batch.doc("fi-bad")["backoff"]
    assert backoff["failures"] == 1 and backoff["next_attempt"]
    assert batch.orders() - orders == 2  # the bad group's order was created before its record could be published
    assert batch.doc("fi-g1")["backoff"] is None


def test_a_group_another_run_renewed_after_the_plan_is_delivered_and_not_ordered(batch, first):
    orders, before = batch.orders(), batch.doc("fi-g2")["current"]["fingerprint"]
    decision = {"renew": True, "skip": False, "reasons": ["forced"], "msg": "Group fi-g2: renew (forced)",
                "trigger": None, "renew_at": None, "next_attempt": None, "replaces_cert_id": None}
    g = batch.group("fi-g2", first["names"]["fi-g2"], decision=decision, planned_fingerprint="0" * 64)
    proc = batch.run([g])
    res = proc.result["groups"]["fi-g2"]
    assert proc.returncode == 0 and not res["renewed"] and not res["failed"], proc.stdout[-3000:]
    assert "another run" in res["msg"] and res["current"]["fingerprint"] == before
    assert batch.orders() == orders


def test_check_mode_orders_nothing_and_writes_nothing(batch, first):
    orders, digest = batch.orders(), batch.digest()
    proc = batch.run([batch.group(g, n) for g, n in first["names"].items()], check=True, force=True)
    r = proc.result
    assert proc.returncode == 0, proc.stdout[-3000:]
    assert batch.orders() == orders and batch.digest() == digest
    assert all("check mode" in r["groups"][g]["msg"] and not r["groups"][g]["renewed"] for g in first["names"])


def test_no_secret_in_the_output_at_vvv(batch, first):
    proc = batch.run([batch.group("fi-g1", first["names"]["fi-g1"]),
                      batch.group("fi-bad", ["fi-bad.nowhere-zone.test"])], force=True, verbosity=3)
    assert proc.returncode == 0, proc.stdout[-3000:]
    out = proc.stdout + proc.stderr
    for secret in (PASSPHRASE, batch.bind["tsig"]["secret"]):
        assert secret not in out
    assert "PRIVATE KEY" not in out


def test_a_forgotten_no_log_still_prints_no_key(batch, first):
    """A user who calls fleet_issue without no_log gets the result hidden (it holds the private keys), at -vvv too."""
    proc = batch.run([batch.group("fi-g1", first["names"]["fi-g1"])], force=True, verbosity=3, no_log=False)
    assert proc.returncode == 0, proc.stdout[-3000:]
    assert proc.result["key_groups"] == ["fi-g1"]  # a key was delivered (and registered)
    out = proc.stdout + proc.stderr
    assert "PRIVATE KEY" not in out and PASSPHRASE not in out
    assert "the output has been hidden" in out
