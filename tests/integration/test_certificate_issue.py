"""The certificate_issue role against the lab's ACME servers (Pebble 2.10, Pebble 2.4, Pebble with EAB,
acme2certifier), DNS-01 through dns01_record (rfc2136 on the lab's BIND).

Everything is observed independently of the role's own claims: the issued chain is verified against the root
fetched now from the ACME server's management API (acme2certifier: its issuing CA), names are read from the
certificate, new orders are counted in the server's own log or database, ``replaces`` is read back from the
order object on the server, and the store is read with certificate_store_info."""

from __future__ import annotations

import base64
import datetime
import json
import re
import sqlite3
import ssl
import subprocess
import sys
import urllib.request
import uuid
from pathlib import Path

import dns.message
import dns.query
import dns.rdatatype
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization


from byoc_harness import REPO, ansible_env, run_playbook  # noqa: E402  (on sys.path via conftest)

PASSPHRASE = "issue-passphrase-" + uuid.uuid4().hex[:12]
UA = {"User-Agent": "byoc-tests/1"}
PEBBLES = ("pebble", "pebble-2.4", "pebble-eab", "pebble-dns", "pebble-random")


# -- helpers -------------------------------------------------------------------------------------------------------
def https(url: str, ca_file: str, data: bytes | None = None) -> bytes:
    req = urllib.request.Request(url, data=data, headers=UA, method="POST" if data is not None else "GET")
    with urllib.request.urlopen(req, context=ssl.create_default_context(cafile=ca_file), timeout=10) as resp:
        return resp.read()


def part(lab, name: str) -> dict:
    """A lab part's description; the parts of tests/lab/byoclab/components/resolver.py are started here until
    they are listed in the lab's registry."""
    if name in lab.lab.components:
        return lab.lab.components[name]
    if name in ("dnsbridge", "resolver", "pebble-dns"):
        from byoclab.components import resolver, select

        lab.lab.up(select(["bind", "powerdns", "moto", "cloudflare", "azure"]) + resolver.components(), keep_on_failure=True)
        return lab.lab.components[name]
    return lab.part(name)


def acme_vars(lab, part_name: str) -> dict:
    acme = part(lab, part_name)
    out = {"certificate_issue_acme_directory": acme["directory"]}
    if acme.get("ca_file"):
        out["certificate_issue_acme_ca_file"] = acme["ca_file"]
    if acme.get("eab"):
        out["certificate_issue_acme_eab"] = {"kid": acme["eab"]["kid"], "hmac_key": acme["eab"]["hmac_key"],
                                             "alg": acme["eab"]["alg"]}
    return out


def bind_vars(lab) -> dict:
    bind = lab.part("bind")
    primary = f"{bind['primary']['host']}:{bind['primary']['port']}"
    return {
        "certificate_issue_dns_provider": "rfc2136",
        "certificate_issue_dns_options": {
            "server": bind["primary"]["host"], "port": bind["primary"]["port"], "key_name": bind["tsig"]["name"],
            "key_secret": bind["tsig"]["secret"], "key_algorithm": bind["tsig"]["algorithm"]},
        "certificate_issue_dns_zone": bind["zones"]["direct"],
        "certificate_issue_dns_nameservers": [primary],
    }


class Role:
    """Runs the role in a playbook on localhost; the outcome fact lands in result.json."""

    def __init__(self, lab, tmp_path: Path, part: str, group: str, names: list[str], **extra):
        self.lab, self.tmp, self.part, self.group = lab, tmp_path, part, group
        self.store = tmp_path / "store"
        self.vars = {
            "certificate_issue_group": group,
            "certificate_issue_names": names,
            "certificate_issue_store_path": str(self.store),
            # acme2certifier refuses accounts without contact information
            "certificate_issue_acme_contact": ["mailto:pki@example.test"],
            **acme_vars(lab, part), **bind_vars(lab), **extra,
        }

    def run(self, verbosity: int = 0, **overrides):
        result = self.tmp / "result.json"
        if result.exists():
            result.unlink()
        vars_file = self.tmp / "vars.json"
        vars_file.write_text(json.dumps({**self.vars, **overrides}))
        vars_file.chmod(0o600)
        play = self.tmp / "play.yml"
        play.write_text(f"""- hosts: localhost
  connection: local
  gather_facts: false
  roles:
    - role: byoc.certificates.certificate_issue
  post_tasks:
    - name: Save the outcome for the test
      ansible.builtin.copy:
        content: "{{{{ certificate_issue_result | to_nice_json }}}}"
        dest: {result}
        mode: "0600"
      changed_when: false
""")
        cmd = [str(Path(sys.executable).parent / "ansible-playbook"), "-i", "localhost,", str(play),
               "-e", f"@{vars_file}"]
        if verbosity:
            cmd.append("-" + "v" * verbosity)
        env = ansible_env({"BYOC_STORE_PASSPHRASE": PASSPHRASE})
        env["ANSIBLE_STDOUT_CALLBACK"] = "default"
        proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=900, cwd=REPO, check=False)
        proc.result = json.loads(result.read_text()) if result.exists() else None
        return proc

    def stored(self, run_module, **extra) -> dict:
        return run_module("certificate_store_info", {"path": str(self.store), "group": self.group,
                                                     "passphrase": PASSPHRASE, **extra})

    # the server's own record of new orders
    def order_count(self) -> int:
        if self.part in PEBBLES:
            return len(re.findall(r"Added order ", self.lab.lab.log_file(self.part).read_text()))
        db = Path(part(self.lab, self.part)["config"]).parent / "acme_srv.db"
        with sqlite3.connect(db) as conn:
            return conn.execute("SELECT count(*) FROM orders").fetchone()[0]

    def requests_seen(self) -> int:
        """Every request Pebble handled (its log has one line per request)."""
        return len(re.findall(r"-> calling handler\(\)", self.lab.lab.log_file(self.part).read_text()))

    def roots(self) -> list[x509.Certificate]:
        acme = part(self.lab, self.part)
        if acme.get("management"):
            # the issuance root, fetched now from the management API (never the listener CA)
            pem = https(f"{acme['management']}/roots/0", acme["ca_file"])
        else:
            pem = Path(acme["roots"][0]).read_bytes()
        return x509.load_pem_x509_certificates(pem)


def verify_chain(fullchain: str, roots: list, names: list[str]) -> x509.Certificate:
    certs = x509.load_pem_x509_certificates(fullchain.encode())
    leaf = certs[0]
    issuer_chain = certs[1:]
    current = leaf
    for nxt in issuer_chain:
        current.verify_directly_issued_by(nxt)
        current = nxt
    root_ok = False
    for root in roots:
        try:
            current.verify_directly_issued_by(root)
            root_ok = True
        except (ValueError, TypeError, Exception):  # noqa: BLE001 - InvalidSignature or name mismatch
            continue
    assert root_ok, "the chain does not end at the ACME server's root"
    sans = leaf.extensions.get_extension_for_class(x509.SubjectAlternativeName).value.get_values_for_type(x509.DNSName)
    assert sorted(sans) == sorted(names)
    now = datetime.datetime.now(datetime.timezone.utc)
    assert leaf.not_valid_before_utc <= now + datetime.timedelta(minutes=5) and now < leaf.not_valid_after_utc
    return leaf


def ari_cert_id(cert: x509.Certificate) -> str:
    """RFC 9773 §4.1, computed here independently: base64url(AKI keyIdentifier) '.' base64url(serial DER)."""
    aki = cert.extensions.get_extension_for_class(x509.AuthorityKeyIdentifier).value.key_identifier
    serial = cert.serial_number.to_bytes((cert.serial_number.bit_length() + 8) // 8, "big")
    return f"{_b64url(aki)}.{_b64url(serial)}"


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def set_renewal_window(lab, part: str, cert_pem: str, start: datetime.datetime, end: datetime.datetime) -> None:
    """acme-and-dns.md §5.1: POST /set-renewal-info/ {Certificate, ARIResponse} on Pebble's management API."""
    acme = lab.part(part)
    body = {"Certificate": cert_pem, "ARIResponse": json.dumps({"suggestedWindow": {
        "start": start.isoformat().replace("+00:00", "Z"), "end": end.isoformat().replace("+00:00", "Z")}})}
    https(f"{acme['management']}/set-renewal-info/", acme["ca_file"], json.dumps(body).encode())


def order_on_server(run_module, role: Role, tmp_path: Path, order_uri: str) -> dict:
    """Read the order object from the ACME server with the group's own account (key exported encrypted)."""
    acme = part(role.lab, role.part)
    exp = role.stored(run_module, export_dir=str(tmp_path / "acct"), account_directory=acme["directory"])
    got = run_module("community.crypto.acme_certificate_order_info", {
        "acme_directory": acme["directory"], "acme_version": 2, "order_uri": order_uri,
        "account_key_src": exp["files"]["account_key"], "account_key_passphrase": PASSPHRASE,
        "account_uri": exp["account"]["uri"], "select_crypto_backend": "cryptography"},
        env={"SSL_CERT_FILE": acme.get("ca_file", "")})
    assert not got.get("failed"), got
    return got["order"]


# -- tests ---------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("part", ["pebble", "pebble-2.4", "pebble-eab", "acme2certifier", "pebble-random"])
def test_issue_verifies_to_the_root_and_second_run_orders_nothing(lab, run_module, tmp_path, part):
    group = f"g-{part}".replace(".", "")
    names = [f"{group}-a.example.test", f"{group}-b.example.test"]
    extra = {"certificate_issue_acme_profile": "default"} if part in ("pebble", "pebble-eab", "pebble-random") else {}
    role = Role(lab, tmp_path, part, group, names, **extra)
    before = role.order_count()
    first = role.run()
    assert first.returncode == 0, first.stdout[-6000:] + first.stderr[-3000:]
    assert role.order_count() == before + 1
    stored = role.stored(run_module)
    assert stored["current"]["key_matches"] is True
    verify_chain(stored["current"]["fullchain"], role.roots(), names)
    assert first.result["renewed"] is True and first.result["current"]["fingerprint"] == stored["current"]["fingerprint"]
    # the account was created on first use and kept (key encrypted) in the store
    acct = role.stored(run_module, account_directory=lab.part(part)["directory"])["account"]
    assert acct["exists"] and acct["uri"]

    second = role.run()
    assert second.returncode == 0, second.stdout[-6000:]
    assert role.order_count() == before + 1, "the second run placed an order"
    assert second.result["renewed"] is False and second.result["due"] is False
    assert re.search(r"localhost\s*:\s*ok=\d+\s+changed=0 ", second.stdout), second.stdout[-1500:]
    assert role.stored(run_module)["current"]["fingerprint"] == stored["current"]["fingerprint"]


def test_ari_window_in_the_past_renews_with_replaces_and_future_window_does_not(lab, run_module, tmp_path):
    role = Role(lab, tmp_path, "pebble", "g-ari", ["ari1.example.test"], certificate_issue_acme_profile="default")
    assert role.run().returncode == 0
    first = role.stored(run_module)["current"]
    first_cert = x509.load_pem_x509_certificate(first["certificate"].encode())
    now = datetime.datetime.now(datetime.timezone.utc)
    count = role.order_count()

    set_renewal_window(lab, "pebble", first["certificate"], now - datetime.timedelta(days=2), now - datetime.timedelta(days=1))
    renewed = role.run()
    assert renewed.returncode == 0, renewed.stdout[-6000:]
    assert role.order_count() == count + 1
    assert renewed.result["renewed"] and renewed.result["trigger"] == "ari"
    after = role.stored(run_module)
    assert after["current"]["fingerprint"] != first["fingerprint"]
    assert after["previous"]["fingerprint"] == first["fingerprint"]  # kept for rollback
    # the order on the server carries replaces = the old certificate's ARI ID (computed here, RFC 9773 §4.1)
    order = order_on_server(run_module, role, tmp_path, after["last_order_url"])
    assert order.get("replaces") == ari_cert_id(first_cert), order
    verify_chain(after["current"]["fullchain"], role.roots(), ["ari1.example.test"])

    set_renewal_window(lab, "pebble", after["current"]["certificate"], now + datetime.timedelta(days=30),
                       now + datetime.timedelta(days=31))
    calm = role.run()
    assert calm.returncode == 0
    assert role.order_count() == count + 1
    assert calm.result["renewed"] is False and calm.result["trigger"] == "ari"


def test_six_day_profile_renews_at_the_configured_fraction(lab, run_module, tmp_path):
    role = Role(lab, tmp_path, "pebble", "g-short", ["short1.example.test"], certificate_issue_acme_profile="shortlived",
                certificate_issue_use_ari=False, certificate_issue_stagger_fraction=0,
                certificate_issue_short_lived_fraction=0.3333)
    assert role.run().returncode == 0
    cur = role.stored(run_module)["current"]
    nb = datetime.datetime.fromisoformat(cur["not_before"].replace("Z", "+00:00"))
    na = datetime.datetime.fromisoformat(cur["not_after"].replace("Z", "+00:00"))
    assert datetime.timedelta(days=5.9) < na - nb <= datetime.timedelta(days=6, minutes=1)  # Pebble's 6-day profile
    point = na - (na - nb) * 0.3333
    count = role.order_count()
    early = role.run(certificate_issue_now=(point - datetime.timedelta(minutes=10)).isoformat())
    assert early.returncode == 0 and early.result["renewed"] is False
    assert role.order_count() == count
    late = role.run(certificate_issue_now=(point + datetime.timedelta(minutes=10)).isoformat())
    assert late.returncode == 0, late.stdout[-6000:]
    assert late.result["renewed"] is True and "lifetime" in " ".join(late.result["reasons"])
    assert role.order_count() == count + 1


def test_failed_validation_backs_off_without_contacting_the_ca_then_retries(lab, run_module, tmp_path):
    bind = lab.part("bind")
    # The TXT record is put in the wrong zone (a static alias into the challenge zone, but example.test has no
    # CNAME there): the record is published and propagated, yet the CA's validation fails.
    role = Role(lab, tmp_path, "pebble", "g-backoff", ["bo1.example.test"], certificate_issue_acme_profile="default",
                certificate_issue_dns_zone="",
                certificate_issue_dns_challenge_aliases={"bo1.example.test": f"_acme-challenge.bo1.{bind['zones']['challenge']}"})
    count = role.order_count()
    failed = role.run()
    assert failed.returncode != 0
    assert "issuing failed" in failed.stdout and "Backoff: failure 1" in failed.stdout, failed.stdout[-4000:]
    assert role.order_count() == count + 1
    backoff = role.stored(run_module)["backoff"]
    assert backoff["failures"] == 1 and backoff["in_window"] is True

    seen = role.requests_seen()
    skipped = role.run()
    assert skipped.returncode == 0, skipped.stdout[-4000:]
    assert skipped.result["skipped"] is True and skipped.result["renewed"] is False
    assert "backoff" in skipped.result["msg"] and "not contacted" in skipped.result["msg"]
    assert role.requests_seen() == seen, "a run inside the backoff window contacted the ACME server"
    assert role.order_count() == count + 1

    # after the window (the decision is made for a time just past next_attempt) the run contacts the CA again;
    # with the alias fixed it succeeds and the backoff is cleared
    after_window = datetime.datetime.fromisoformat(backoff["next_attempt"].replace("Z", "+00:00")) + datetime.timedelta(seconds=5)
    retried = role.run(certificate_issue_now=after_window.isoformat(), certificate_issue_dns_challenge_aliases={})
    assert retried.returncode == 0, retried.stdout[-6000:]
    assert role.order_count() == count + 2
    stored = role.stored(run_module)
    assert stored["backoff"] is None and stored["current"]["key_matches"]


def test_lock_held_by_another_run_stops_the_order(lab, run_module, tmp_path):
    role = Role(lab, tmp_path, "pebble", "g-lock", ["lock1.example.test"], certificate_issue_acme_profile="default")
    held = run_module("certificate_store", {"path": str(role.store), "group": "g-lock", "lock": "acquire",
                                            "lock_owner": "other-awx-job-42"})
    assert held["changed"]
    count = role.order_count()
    # the role waits for the group's lease (another run or AWX job slice may be ordering), with progress, then stops
    proc = role.run(certificate_issue_lease_wait=4, certificate_issue_lease_poll=1)
    assert proc.returncode != 0
    assert "is held by other-awx-job-42" in proc.stdout and "waited" in proc.stdout, proc.stdout[-3000:]
    assert role.order_count() == count


def test_check_mode_plans_and_orders_nothing(lab, run_module, tmp_path):
    role = Role(lab, tmp_path, "pebble", "g-check", ["check1.example.test"], certificate_issue_acme_profile="default")
    count = role.order_count()
    play = tmp_path / "check.yml"
    play.write_text("- hosts: localhost\n  connection: local\n  gather_facts: false\n  roles:\n"
                    "    - role: byoc.certificates.certificate_issue\n")
    proc = run_playbook(play, extra_vars=role.vars, check=True, env={"BYOC_STORE_PASSPHRASE": PASSPHRASE})
    assert proc.returncode == 0, proc.stdout[-4000:]
    assert "renewal due (check mode, nothing ordered)" in proc.stdout
    assert role.order_count() == count
    assert role.stored(run_module)["exists"] is False


def test_no_secret_in_output_at_vvv(lab, run_module, tmp_path):
    role = Role(lab, tmp_path, "pebble-eab", "g-secrets", ["sec1.example.test"], certificate_issue_acme_profile="default")
    proc = role.run(verbosity=3)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out[-6000:]
    eab = lab.part("pebble-eab")["eab"]
    tsig = lab.part("bind")["tsig"]["secret"]
    keys = role.stored(run_module, account_directory=lab.part("pebble-eab")["directory"])
    assert keys["current"]["key_matches"]
    # the decrypted keys, read here directly from the store document
    doc = json.loads((role.store / "g-secrets" / "state.json").read_text())
    secrets = [PASSPHRASE, eab["hmac_key"], tsig]
    for enc in (doc["current"]["privatekey"], doc["accounts"][lab.part("pebble-eab")["directory"]]["key"]):
        key = serialization.load_pem_private_key(enc.encode(), PASSPHRASE.encode())
        clear = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                  serialization.NoEncryption()).decode()
        secrets += [line for line in clear.splitlines() if "-----" not in line]
        secrets.append(enc.splitlines()[1])  # not even the encrypted form
    leaked = [s for s in secrets if s and s in out]
    assert not leaked, f"{len(leaked)} secret value(s) in the -vvv output"
    assert "PRIVATE KEY-----" not in out


def provider_vars(lab, provider: str) -> tuple[dict, str]:
    """dns01_record settings for one provider, and the zone the names go in."""
    if provider == "powerdns":
        pdns = part(lab, "powerdns")
        return {"certificate_issue_dns_provider": "powerdns",
                "certificate_issue_dns_options": {"url": pdns["api"]["url"], "api_key": pdns["api"]["api_key"],
                                                  "server_id": pdns["api"]["server_id"]},
                "certificate_issue_dns_zone": pdns["zone"],
                "certificate_issue_dns_nameservers": [f"{pdns['dns']['host']}:{pdns['dns']['port']}"]}, pdns["zone"]
    bridge = part(lab, "dnsbridge")["dns"]
    if provider == "route53":
        moto = part(lab, "moto")
        return {"certificate_issue_dns_provider": "route53",
                "certificate_issue_dns_options": {"access_key": moto["access_key"], "secret_key": moto["secret_key"],
                                                  "endpoint_url": moto["endpoint_url"], "region": moto["region"],
                                                  "hosted_zone_id": moto["hosted_zone_id"]},
                "certificate_issue_dns_zone": moto["zone"],
                "certificate_issue_dns_nameservers": [f"{bridge['host']}:{bridge['port']}"]}, moto["zone"]
    if provider == "cloudflare":
        cf = part(lab, "cloudflare")
        return {"certificate_issue_dns_provider": "cloudflare",
                "certificate_issue_dns_options": {"api_token": cf["api_token"], "api_url": cf["api_url"]},
                "certificate_issue_dns_zone": cf["zone"],
                "certificate_issue_dns_nameservers": [f"{bridge['host']}:{bridge['port']}"]}, cf["zone"]
    # rfc2136 with CNAME delegation: _acme-challenge.sbcN.corp.test -> sbcN.acme-dns.corp.test
    bind = part(lab, "bind")
    resolver = part(lab, "resolver")["dns"]
    return {**bind_vars(lab), "certificate_issue_dns_zone": "", "certificate_issue_dns_follow_cname": True,
            "certificate_issue_dns_resolver": [f"{resolver['host']}:{resolver['port']}"]}, bind["zones"]["delegating"]


@pytest.mark.parametrize("provider", ["powerdns", "route53", "cloudflare", "rfc2136-cname"])
def test_issue_through_every_dns_provider(lab, run_module, tmp_path, provider):
    part(lab, "pebble-dns")
    dns_settings, zone = provider_vars(lab, provider)
    names = ["sbc1." + zone] if provider == "rfc2136-cname" else [f"sbc-{provider}.{zone}"]
    role = Role(lab, tmp_path, "pebble-dns", f"g-dns-{provider}", names, certificate_issue_acme_profile="default",
                **dns_settings)
    count = role.order_count()
    proc = role.run()
    assert proc.returncode == 0, proc.stdout[-6000:] + proc.stderr[-2000:]
    assert role.order_count() == count + 1
    stored = role.stored(run_module)
    verify_chain(stored["current"]["fullchain"], role.roots(), names)
    # the TXT records were removed afterwards (always:), as the ACME server's resolver sees it
    res = part(lab, "resolver")["dns"]
    for name in names:
        answer = dns.query.tcp(dns.message.make_query(f"_acme-challenge.{name}", dns.rdatatype.TXT),
                               res["host"], port=res["port"], timeout=5)
        assert not [r for r in answer.answer if r.rdtype == dns.rdatatype.TXT], answer


def test_role_with_the_s3_store(lab, run_module, tmp_path):
    """The whole role on the s3 backend (moto's server): issue, then a second run orders nothing."""
    import boto3

    moto = part(lab, "moto")
    bucket = "issue-" + uuid.uuid4().hex[:10]
    boto3.client("s3", endpoint_url=moto["endpoint_url"], region_name=moto["region"],
                 aws_access_key_id=moto["access_key"], aws_secret_access_key=moto["secret_key"]).create_bucket(Bucket=bucket)
    s3 = {"bucket": bucket, "prefix": "prod/", "endpoint_url": moto["endpoint_url"], "region": moto["region"],
          "access_key": moto["access_key"], "secret_key": moto["secret_key"]}
    role = Role(lab, tmp_path, "pebble", "g-s3", ["s3store1.example.test"], certificate_issue_acme_profile="default",
                certificate_issue_store_backend="s3", certificate_issue_store_s3=s3, certificate_issue_store_path="")
    count = role.order_count()
    first = role.run()
    assert first.returncode == 0, first.stdout[-6000:]
    got = run_module("certificate_store_info", {"backend": "s3", "s3": s3, "group": "g-s3", "passphrase": PASSPHRASE})
    assert got["exists"] and got["current"]["key_matches"] is True
    assert got["location"] == f"s3://{bucket}/prod/g-s3/state.json"
    verify_chain(got["current"]["fullchain"], role.roots(), ["s3store1.example.test"])
    assert not (tmp_path / "store").exists()
    second = role.run()
    assert second.returncode == 0 and second.result["renewed"] is False
    assert role.order_count() == count + 1


def test_two_concurrent_runs_order_once(lab, run_module, tmp_path):
    """Two runs of the same group start together (two AWX jobs): the store's lock lets one order; the other
    either finds the lock taken, or finds the new certificate; the CA sees one order."""
    import concurrent.futures

    roles = []
    for n in (1, 2):
        work = tmp_path / f"run{n}"
        work.mkdir()
        role = Role(lab, work, "pebble", "g-race", ["race1.example.test"], certificate_issue_acme_profile="default",
                    certificate_issue_store_path=str(tmp_path / "store"))
        role.store = tmp_path / "store"
        roles.append(role)
    count = roles[0].order_count()
    with concurrent.futures.ThreadPoolExecutor(max_workers=2) as pool:
        procs = list(pool.map(lambda r: r.run(), roles))
    assert roles[0].order_count() == count + 1, [p.stdout[-3000:] for p in procs]
    renewed = [p for p in procs if p.result and p.result["renewed"]]
    assert len(renewed) == 1
    other = procs[1] if procs[0] is renewed[0] else procs[0]
    assert other.returncode == 0 or "locked by another run" in other.stdout or \
        "another run stored a new certificate" in other.stdout, other.stdout[-3000:]
    stored = roles[0].stored(run_module)
    assert stored["current"]["fingerprint"] == renewed[0].result["current"]["fingerprint"]
    assert stored["previous"] is None and stored["lock"] is None


def test_lost_replacement_is_ordered_again_without_replaces(lab, run_module, tmp_path):
    """A run got the replacement but was cut off before keeping it (simulated by restoring the store document
    from before that run): the next run's order with ``replaces`` gets ``alreadyReplaced`` from Pebble 2.10, and
    the role orders again without it instead of failing forever."""
    role = Role(lab, tmp_path, "pebble", "g-lost", ["lost1.example.test"], certificate_issue_acme_profile="default")
    assert role.run().returncode == 0
    state = role.store / "g-lost" / "state.json"
    snapshot = state.read_bytes()
    first = role.stored(run_module)["current"]
    now = datetime.datetime.now(datetime.timezone.utc)
    set_renewal_window(lab, "pebble", first["certificate"], now - datetime.timedelta(days=2), now - datetime.timedelta(days=1))
    replaced = role.run()
    assert replaced.returncode == 0 and replaced.result["renewed"], replaced.stdout[-4000:]
    second_fp = role.stored(run_module)["current"]["fingerprint"]
    state.write_bytes(snapshot)  # the store lost the replacement

    third = role.run()
    assert third.returncode == 0, third.stdout[-6000:]
    assert "alreadyReplaced" in third.stdout
    assert third.result["renewed"] is True and third.result["replaces"] is None
    after = role.stored(run_module)
    assert after["current"]["fingerprint"] not in (first["fingerprint"], second_fp)
    order = order_on_server(run_module, role, tmp_path, after["last_order_url"])
    assert not order.get("replaces"), order
    verify_chain(after["current"]["fullchain"], role.roots(), ["lost1.example.test"])


def test_deploy_step_gets_key_chain_and_root_with_store_module_defaults(lab, run_module, tmp_path):
    """issue 9 §5. With ``module_defaults`` for the store group around the role (this used to stop the role at
    the renewal decision with "Unsupported parameters"), the role hands the deploy step the certificate, chain
    and the root fetched where Pebble publishes it (management ``/roots/0``) in certificate_issue_result, and the
    key in certificate_issue_private_key: a post-task uses them with no store read, passphrase or export dir.
    Nothing of the key is printed, even with the whole result dumped at -v."""
    acme = lab.part("pebble")
    role = Role(lab, tmp_path, "pebble", "g-deliver", ["deliver1.example.test"], certificate_issue_acme_profile="default",
                certificate_issue_acme_root_url=f"{acme['management']}/roots/0")
    deployed = tmp_path / "deployed.key"
    result_file = tmp_path / "deliver.json"
    play = tmp_path / "deliver.yml"
    play.write_text(f"""- hosts: localhost
  connection: local
  gather_facts: false
  module_defaults:
    group/byoc.certificates.store:
      path: {role.store}
      passphrase: "{{{{ lookup('ansible.builtin.env', 'BYOC_STORE_PASSPHRASE') }}}}"
  roles:
    - role: byoc.certificates.certificate_issue
  post_tasks:
    - name: The deploy step as a user writes it
      ansible.builtin.copy:
        content: "{{{{ certificate_issue_private_key }}}}"
        dest: {deployed}
        mode: "0600"
      no_log: true
    - name: A user prints the whole result
      ansible.builtin.debug:
        var: certificate_issue_result
    - name: Save the outcome for the test
      ansible.builtin.copy:
        content: "{{{{ certificate_issue_result | to_nice_json }}}}"
        dest: {result_file}
        mode: "0600"
      changed_when: false
""")

    def run(**overrides):
        vars_file = tmp_path / "vars.json"
        vars_file.write_text(json.dumps({**role.vars, **overrides}))
        env = ansible_env({"BYOC_STORE_PASSPHRASE": PASSPHRASE})
        env["ANSIBLE_STDOUT_CALLBACK"] = "default"
        return subprocess.run([str(Path(sys.executable).parent / "ansible-playbook"), "-i", "localhost,", str(play),
                               "-e", f"@{vars_file}", "-v"], capture_output=True, text=True, env=env, timeout=900,
                              cwd=REPO, check=False)

    count = role.order_count()
    proc = run()
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out[-6000:]
    assert "Unsupported parameters" not in out
    assert role.order_count() == count + 1
    result = json.loads(result_file.read_text())
    # the root is the one Pebble publishes now (fetched here independently), and the chain leads to it
    pebble_root = role.roots()[0]
    root = x509.load_pem_x509_certificate(result["root"].encode())
    assert root.fingerprint(hashes.SHA256()) == pebble_root.fingerprint(hashes.SHA256())
    leaf = verify_chain(result["fullchain"], [root], ["deliver1.example.test"])
    assert result["certificate"].strip() == leaf.public_bytes(serialization.Encoding.PEM).decode().strip()
    assert result["private_key_fact"] == "certificate_issue_private_key"
    assert "PRIVATE KEY" not in json.dumps(result) and "privatekey" not in result["current"]
    # the store keeps the root with the material (for rollback too)
    stored = role.stored(run_module)
    assert stored["current"]["root_fingerprint"] == pebble_root.fingerprint(hashes.SHA256()).hex()
    # the deploy step got the key that belongs to the certificate
    key = serialization.load_pem_private_key(deployed.read_bytes(), None)
    assert key.public_key().public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo) == \
        leaf.public_key().public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    body = [line for line in deployed.read_text().splitlines() if "-----" not in line]
    assert body and not [line for line in body if line in out], "the private key was printed"
    assert "PRIVATE KEY-----" not in out

    # a root file that does not anchor the chain (the lab's listener CA) is refused, naming the option; no order
    wrong = tmp_path / "wrong-root.pem"
    wrong.write_text(Path(lab.ca_file).read_text())
    bad = run(certificate_issue_acme_root_file=str(wrong))
    assert bad.returncode != 0 and "root: the chain from the leaf" in bad.stdout and "does not lead" in bad.stdout, \
        bad.stdout[-4000:]
    assert role.order_count() == count + 1
    # the right root as a file (the general answer): nothing changes, nothing is ordered
    right = tmp_path / "root.pem"
    right.write_text(result["root"])
    again = run(certificate_issue_acme_root_file=str(right))
    assert again.returncode == 0, again.stdout[-4000:]
    assert re.search(r"localhost\s*:\s*ok=\d+\s+changed=0 ", again.stdout), again.stdout[-1500:]
    assert json.loads(result_file.read_text())["renewed"] is False
    assert role.order_count() == count + 1
