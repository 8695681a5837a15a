"""Prune (issue 11 §5, design brief step 8): superseded REMOTE CAs in the Genesys org, after a grace period.

Against the lab's Genesys Cloud emulator and a filesystem store. Effects are read back independently: the org's
certificate authorities through the emulator's test-only /_control/state, the store's record (the ledger document)
from its file on disk, the request log for "no write".
"""

from __future__ import annotations

import datetime
import json
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from test_genesys_modules import CAS, Genesys, fp_of, remote  # noqa: F401 - the same emulator helpers

PASSPHRASE = "prune-test-store-passphrase"


# -- certificate material ------------------------------------------------------------------------------------------
def _name(cn: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])


def _cert(subject: str, key, issuer: str, issuer_key, *, ca: bool, days: int = 300, names=()):
    now = datetime.datetime.now(datetime.timezone.utc)
    b = (x509.CertificateBuilder().subject_name(_name(subject)).issuer_name(_name(issuer)).public_key(key.public_key())
         .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(hours=1))
         .not_valid_after(now + datetime.timedelta(days=days))
         .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True))
    if ca:
        b = b.add_extension(x509.KeyUsage(digital_signature=True, content_commitment=False, key_encipherment=False,
                                          data_encipherment=False, key_agreement=False, key_cert_sign=True,
                                          crl_sign=True, encipher_only=False, decipher_only=False), critical=True)
    else:
        b = b.add_extension(x509.SubjectAlternativeName([x509.DNSName(n) for n in names]), critical=False)
    return b.sign(issuer_key, hashes.SHA256())


def pem(cert) -> str:
    return cert.public_bytes(serialization.Encoding.PEM).decode()


def key_pem(key) -> str:
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption()).decode()


class Hierarchy:
    """One root and one issuing CA per generation; a leaf per generation for the store."""

    def __init__(self, tag: str, generations: int):
        self.root_key = ec.generate_private_key(ec.SECP256R1())
        self.root = _cert(f"{tag} Root", self.root_key, f"{tag} Root", self.root_key, ca=True, days=3000)
        self.inters, self.leaves = [], []
        for g in range(generations):
            ik = ec.generate_private_key(ec.SECP256R1())
            inter = _cert(f"{tag} Issuing {g}", ik, f"{tag} Root", self.root_key, ca=True, days=1000)
            lk = ec.generate_private_key(ec.SECP256R1())
            leaf = _cert(f"sbc.{tag.lower()}.test", lk, f"{tag} Issuing {g}", ik, ca=False, days=60 + g,
                         names=[f"sbc.{tag.lower()}.test"])
            self.inters.append(inter)
            self.leaves.append((leaf, lk))

    def chain(self, g: int) -> str:
        return pem(self.inters[g]) + pem(self.root)


# -- fixtures ------------------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def genesys(lab, tmp_path_factory):
    return Genesys(lab.part("genesys"), lab.ca_file, str(tmp_path_factory.mktemp("genesys-tokens")))


@pytest.fixture
def run(run_module, tmp_path_factory):
    home = {"HOME": str(tmp_path_factory.mktemp("home"))}

    def _run(name, args, **kw):
        return run_module(name, args, env=home, **kw)
    return _run


@pytest.fixture(autouse=True)
def clean(genesys):
    genesys.control("POST", "/reset")
    genesys.control("POST", "/requests/reset")
    yield
    genesys.control("DELETE", "/faults")


def ledger_file(store: Path) -> Path:
    files = list(store.glob("genesys-trust-*/state.json"))
    assert len(files) == 1, files
    return files[0]


def ledger(store: Path) -> dict:
    return json.loads(ledger_file(store).read_text())["genesys_trust"]["authorities"]


def backdate(store: Path, fp: str, days: int) -> None:
    """Test set-up: make the store's record say the CA was superseded ``days`` ago (the grace period is days long)."""
    path = ledger_file(store)
    doc = json.loads(path.read_text())
    when = datetime.datetime.now(datetime.timezone.utc) - datetime.timedelta(days=days)
    doc["genesys_trust"]["authorities"][fp]["superseded"] = when.strftime("%Y-%m-%dT%H:%M:%SZ")
    path.write_text(json.dumps(doc))


def org_fps(genesys) -> set[str]:
    return {fp for c in remote(genesys.state()) for fp in c["fingerprints"]}


def writes(genesys) -> list[dict]:
    return [r for r in genesys.requests() if r["path"].startswith(CAS) and r["method"] != "GET"]


def trust(genesys, run, store: Path, chain: str, group: str) -> dict:
    res = run("genesys_edge_certificate", genesys.args(certificate=chain, store={"path": str(store)}, group=group,
                                                       name="byoc.certificates issuing chain"))
    assert res.get("failed") is not True, res
    return res


def store_material(run, store: Path, group: str, h: Hierarchy, g: int) -> None:
    leaf, key = h.leaves[g]
    res = run("certificate_store", {"path": str(store), "group": group, "passphrase": PASSPHRASE,
                                    "certificate": pem(leaf), "chain": pem(h.inters[g]),
                                    "privatekey_content": key_pem(key), "root": pem(h.root)})
    assert res.get("failed") is not True, res


def prune(genesys, run, store: Path, groups, **kw) -> dict:
    check, diff = kw.pop("check", False), kw.pop("diff", False)
    return run("genesys_edge_certificate", genesys.args(state="pruned", store={"path": str(store)}, groups=groups, **kw),
               check=check, diff=diff)


# -- tests ---------------------------------------------------------------------------------------------------------
def test_prune_superseded_after_the_grace_period_only_what_was_added(genesys, run, tmp_path):
    store = tmp_path / "store"
    h = Hierarchy("Alpha", 3)
    # Three rotations of group alpha: each one's chain trusted first (and recorded), then stored as issued.
    for g in range(3):
        trust(genesys, run, store, h.chain(g), "alpha")
    user_ca = Hierarchy("Partner", 1).root
    user_id = genesys.add_remote(pem(user_ca), "partner root (added by hand)")
    for g in range(3):
        store_material(run, store, "alpha", h, g)
    rec = ledger(store)
    # The record holds exactly what the module created: the root once, three issuing CAs, never the partner's CA.
    assert set(rec) == {fp_of(pem(h.root))} | {fp_of(pem(c)) for c in h.inters}
    assert all(r["groups"] == ["alpha"] and r["superseded"] is None for r in rec.values())
    old = fp_of(pem(h.inters[0]))
    before = org_fps(genesys)
    assert old in before and fp_of(pem(user_ca)) in before

    # Check mode, grace 0: shows what would go (issuing CA 0: neither current nor previous), writes nothing.
    genesys.control("POST", "/requests/reset")
    res = prune(genesys, run, store, ["alpha"], grace_period=0, check=True, diff=True)
    assert res["changed"] is True, res
    verdicts = {v["fingerprint"]: v["verdict"] for v in res["prune"]}
    assert verdicts == {old: "pruned", fp_of(pem(h.inters[1])): "in use", fp_of(pem(h.inters[2])): "in use",
                        fp_of(pem(h.root)): "in use"}
    assert [a["fingerprint"] for a in res["authorities"]] == [old]
    assert [e["id"] for e in res["left_alone"]] == [user_id]
    assert old in json.dumps(res["diff"]["before"]) and old not in json.dumps(res["diff"]["after"])
    assert writes(genesys) == [] and org_fps(genesys) == before
    assert ledger(store)[old]["superseded"] is None, "check mode writes nothing, not even the record"

    # The default grace period (30 days): found superseded now, so it waits; the record remembers since when. Nothing
    # can go, which the store alone tells: not a single request to Genesys Cloud (not even a token).
    genesys.control("POST", "/requests/reset")
    res = prune(genesys, run, store, ["alpha"])
    assert res["changed"] is False and res["org_read"] is False, res
    assert genesys.requests() == []
    waiting = [v for v in res["prune"] if v["verdict"] == "waiting"]
    assert [v["fingerprint"] for v in waiting] == [old] and waiting[0]["prune_after"]
    assert ledger(store)[old]["superseded"] is not None and org_fps(genesys) == before
    assert writes(genesys) == []

    # 31 days later: pruned, exactly that one entry; the root, current and previous issuing CAs, the MANAGED CA
    # and the partner's CA stay.
    backdate(store, old, 31)
    res = prune(genesys, run, store, ["alpha"])
    assert res["changed"] is True, res
    after = org_fps(genesys)
    assert after == before - {old}
    assert [c["type"] for c in genesys.state()["certificate_authorities"]].count("MANAGED") == 1
    assert [r["method"] for r in writes(genesys)] == ["DELETE"]
    assert old not in ledger(store)

    # Idempotent: a second run removes nothing.
    genesys.control("POST", "/requests/reset")
    res = prune(genesys, run, store, ["alpha"], grace_period=0)
    assert res["changed"] is False and writes(genesys) == [], res
    assert org_fps(genesys) == after


def test_a_group_not_listed_or_not_issued_keeps_its_cas(genesys, run, tmp_path):
    store = tmp_path / "store"
    a, b = Hierarchy("Alpha", 2), Hierarchy("Beta", 1)
    for g in range(2):
        trust(genesys, run, store, a.chain(g), "alpha")
        store_material(run, store, "alpha", a, g)
    trust(genesys, run, store, b.chain(0), "beta")  # beta's chain trusted, but beta never issued (no store entry)
    beta_fps = {fp_of(pem(b.root)), fp_of(pem(b.inters[0]))}
    before = org_fps(genesys)

    res = prune(genesys, run, store, ["alpha"], grace_period=0)
    kept = {v["fingerprint"]: v for v in res["prune"] if v["verdict"] == "kept"}
    assert set(kept) == beta_fps and all("beta" in v["why"] for v in kept.values()), res
    assert res["changed"] is False and org_fps(genesys) == before

    # Listed but never issued (no current certificate in the store): what it needs cannot be known, so the same.
    genesys.control("POST", "/requests/reset")
    res = prune(genesys, run, store, ["alpha", "beta"], grace_period=0)
    assert res.get("failed") is not True and res["groups_without_material"] == ["beta"], res
    kept = {v["fingerprint"] for v in res["prune"] if v["verdict"] == "kept"}
    assert kept == beta_fps and any("beta" in w for w in res.get("warnings", [])), res
    assert writes(genesys) == [] and org_fps(genesys) == before


def test_a_ca_needed_again_is_no_longer_superseded(genesys, run, tmp_path):
    """A rollback to older material (or a re-trust of the same chain) clears the superseded mark."""
    store = tmp_path / "store"
    h = Hierarchy("Gamma", 3)
    for g in range(3):
        trust(genesys, run, store, h.chain(g), "gamma")
        store_material(run, store, "gamma", h, g)
    old = fp_of(pem(h.inters[0]))
    prune(genesys, run, store, ["gamma"])
    assert ledger(store)[old]["superseded"] is not None
    trust(genesys, run, store, h.chain(0), "gamma")  # the group's chain is trusted again
    assert ledger(store)[old]["superseded"] is None


@pytest.mark.parametrize("args, field", [
    ({"state": "pruned", "groups": ["alpha"]}, "store"),
    ({"state": "pruned", "store": {"path": "/nonexistent-store"}}, "groups"),
    ({"state": "pruned", "store": {"path": "/nonexistent-store"}, "groups": ["../etc"]}, "groups"),
    ({"state": "pruned", "store": {"path": "/nonexistent-store"}, "groups": ["a"], "grace_period": -1},
     "grace_period"),
    ({"certificate": "x", "store": {"path": "/nonexistent-store"}}, "group"),
    ({"certificate": "x", "group": "alpha"}, "group"),
])
def test_bad_prune_input_is_refused_before_any_request(genesys, run, args, field):
    res = run("genesys_edge_certificate", genesys.args(**args))
    assert res.get("failed") is True and res["msg"].startswith(f"{field}:"), res
    assert genesys.requests() == []


PLAYBOOK = """
- hosts: localhost
  connection: local
  gather_facts: false
  tasks:
    - name: Trust first, recorded
      ansible.builtin.include_role:
        name: byoc.certificates.genesys_trust
        tasks_from: ensure.yml
      vars:
        genesys_trust_org: "{{ org }}"
        genesys_trust_store: "{{ store }}"
        genesys_trust_chains: "{{ chains }}"
      when: chains | length > 0
    - name: Prune
      ansible.builtin.include_role:
        name: byoc.certificates.genesys_trust
        tasks_from: prune.yml
      vars:
        genesys_trust_org: "{{ org }}"
        genesys_trust_store: "{{ store }}"
        genesys_trust_groups: [delta]
        genesys_trust_grace_period: 0
"""


def test_the_role_records_in_ensure_and_prunes_in_check_mode_then_for_real(genesys, run, tmp_path):
    from byoc_harness import run_playbook

    store = tmp_path / "store"
    book = tmp_path / "prune.yml"
    book.write_text(PLAYBOOK)
    h = Hierarchy("Delta", 3)
    org = {"api_url": genesys.d["api_url"], "client_id": genesys.d["client_id"],
           "client_secret": genesys.d["client_secret"], "ca_path": genesys.ca_file, "token_cache_dir": genesys.token_dir}
    xv = {"org": org, "store": {"path": str(store)}}
    env = {"HOME": str(tmp_path)}
    for g in range(3):
        proc = run_playbook(book, extra_vars={**xv, "chains": [{"group": "delta", "chain": h.chain(g)}]}, env=env)
        assert proc.returncode == 0, proc.stdout + proc.stderr
        store_material(run, store, "delta", h, g)
    old = fp_of(pem(h.inters[0]))
    assert old in ledger(store)
    before = org_fps(genesys)

    genesys.control("POST", "/requests/reset")
    proc = run_playbook(book, extra_vars={**xv, "chains": []}, env=env, check=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "Would prune: byoc.certificates issuing chain - Delta Issuing 0." in proc.stdout, proc.stdout
    assert writes(genesys) == [] and org_fps(genesys) == before

    proc = run_playbook(book, extra_vars={**xv, "chains": []}, env=env)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "Pruned: byoc.certificates issuing chain - Delta Issuing 0." in proc.stdout, proc.stdout
    assert org_fps(genesys) == before - {old}


def test_the_role_prunes_under_the_orgs_lease_and_gives_it_back(genesys, run, tmp_path):
    """AWX job slices: pruning takes the org's lease (the one ensure.yml takes to add CAs). While another run holds
    it, the prune waits and then stops naming the holder, having changed nothing; once it is free, the prune runs
    and gives the lease back."""
    from byoc_harness import run_playbook

    store = tmp_path / "store"
    book = tmp_path / "prune.yml"
    book.write_text(PLAYBOOK)
    h = Hierarchy("Echo", 3)  # generation 0 is then neither current nor previous
    org = {"api_url": genesys.d["api_url"], "client_id": genesys.d["client_id"],
           "client_secret": genesys.d["client_secret"], "ca_path": genesys.ca_file, "token_cache_dir": genesys.token_dir}
    xv = {"org": org, "store": {"path": str(store)}}
    env = {"HOME": str(tmp_path)}
    for g in range(3):
        proc = run_playbook(book, extra_vars={**xv, "chains": [{"group": "delta", "chain": h.chain(g)}]}, env=env)
        assert proc.returncode == 0, proc.stdout + proc.stderr
        store_material(run, store, "delta", h, g)
    old = fp_of(pem(h.inters[0]))
    recorded = ledger(store)
    assert old in recorded
    before = org_fps(genesys)
    lease = {"path": str(store), "group": ledger_file(store).parent.name}  # the org's lease is its ledger group

    # another run (a job slice adding CAs, say) holds the org's lease
    other = run("certificate_store_lease", dict(lease, holder="other-awx-slice-7", ttl=600))
    assert other.get("failed") is not True and other["held_by_us"] is True, other
    genesys.control("POST", "/requests/reset")
    proc = run_playbook(book, extra_vars={**xv, "chains": [], "genesys_trust_lease_wait": 2}, env=env)
    assert proc.returncode != 0, proc.stdout
    assert "is held by other-awx-slice-7" in proc.stdout, proc.stdout[-3000:]
    assert genesys.requests() == [] and org_fps(genesys) == before  # not even a read of the org
    assert ledger(store) == recorded
    # the refused run did not give back a lease it never had
    read = run("certificate_store_lease", dict(lease, state="read"))
    assert read["held"] is True and read["lease"]["holder"] == "other-awx-slice-7", read

    # the other run gives it back: the prune takes it, prunes, and gives it back
    freed = run("certificate_store_lease", dict(lease, holder="other-awx-slice-7", state="released"))
    assert freed.get("failed") is not True, freed
    proc = run_playbook(book, extra_vars={**xv, "chains": []}, env=env)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "Pruned: byoc.certificates issuing chain - Echo Issuing 0." in proc.stdout, proc.stdout
    assert org_fps(genesys) == before - {old}
    assert "Give the org's lease back after pruning" in proc.stdout
    read = run("certificate_store_lease", dict(lease, state="read"))
    assert read.get("failed") is not True and read["held"] is False, read
    # a third run can take it at once
    third = run("certificate_store_lease", dict(lease, holder="third-run", ttl=60))
    assert third["held_by_us"] is True and third["waited"] == 0, third
