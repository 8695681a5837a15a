# Copyright (c) 2026, byoc.certificates contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""The fleet plan's pure core: device summaries, the store entry for the decision, ARI identifiers and windows,
maintenance windows, the leader and the plan of a host."""

from __future__ import annotations

import base64
import datetime

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from ansible_collections.byoc.certificates.plugins.module_utils import _fleet_plan as fp
from ansible_collections.byoc.certificates.plugins.module_utils import _renewal
from ansible_collections.byoc.certificates.plugins.module_utils._errors import InputError

UTC = datetime.timezone.utc
NOW = datetime.datetime(2026, 11, 30, 8, 0, tzinfo=UTC)  # a Monday
FP_A, FP_B, MANAGED = "a" * 64, "b" * 64, "c" * 64


def details(fp: str, not_after: str = "2027-02-28T10:00:00+00:00", names=("sbc1.lab.test",)) -> dict:
    return {"fingerprint_sha256": fp, "not_after": not_after, "subject_alt_names": [f"DNS:{n}" for n in names]}


# -- device summaries ------------------------------------------------------------------------------------------------
def test_audiocodes_summary_reads_the_context_of_the_given_sip_interfaces_only():
    names = {0: "default", 1: "byoc-A", 2: "byoc-B"}
    sip = {"SIPInterface_0": {"tls_context": "byoc-A", "mutual_auth": 1},
           "SIPInterface_9": {"tls_context": "byoc-B", "mutual_auth": 0}}
    contexts = {1: {"certificate": details(FP_A), "trusted_roots": [details(MANAGED)]}}
    s = fp.summary_audiocodes({"highAvailability": "Operational"}, contexts, names, sip, ["SIPInterface_0"])
    assert s["fingerprint"] == FP_A and s["names"] == ["sbc1.lab.test"] and s["roots"] == [MANAGED]
    assert s["mutual_auth"] is True and s["split"] is False
    assert s["serving"] == {"index": 1, "name": "byoc-A"} and s["ha"] == "Operational"


def test_audiocodes_interfaces_on_two_contexts_with_different_certificates_are_split():
    names = {1: "byoc-A", 2: "byoc-B"}
    sip = {"S0": {"tls_context": "byoc-A", "mutual_auth": None}, "S1": {"tls_context": "byoc-B", "mutual_auth": None}}
    contexts = {1: {"certificate": details(FP_A)}, 2: {"certificate": details(FP_B)}}
    s = fp.summary_audiocodes({}, contexts, names, sip, ["S0", "S1"])
    assert s["fingerprint"] is None and s["split"] is True
    assert s["split_detail"] == "SIP Interfaces use different TLS contexts: byoc-A, byoc-B"
    assert s["mutual_auth"] is False


def test_audiocodes_interface_without_a_context_uses_default():
    s = fp.summary_audiocodes({}, {0: {"certificate": details(FP_A)}}, {0: "default"},
                              {"S0": {"tls_context": "", "mutual_auth": None}}, ["S0"])
    assert s["fingerprint"] == FP_A and s["serving"] == {"index": 0, "name": "default"}


def core_info(node_fps, in_sync=True, auth="true") -> dict:
    return {
        "bound": {"tls_profile": "p1", "name": "byoc-x", "details": details(node_fps[0]) if node_fps[0] else None,
                  "nodes": {f"n{i}": {"present": f is not None, "fingerprint": f} for i, f in enumerate(node_fps)}},
        "profiles": [{"name": "p1", "authClient": auth}, {"name": "other", "authClient": "false"}],
        "certificates": [{"type": "remote", "details": details(MANAGED)}, {"type": "local", "details": details(FP_A)},
                         {"type": "remote", "details": None}],
        "ha": {"in_sync": in_sync, "problems": [] if in_sync else ["syncStatus config=syncInProgress"]},
    }


def test_ribbon_core_summary_of_a_pair_in_agreement():
    s = fp.summary_ribbon_core(core_info([FP_A, FP_A]))
    assert s["fingerprint"] == FP_A and not s["split"] and s["roots"] == [MANAGED] and s["mutual_auth"] is True
    assert s["serving"] == {"name": "byoc-x"} and s["ha"] == "in sync"


@pytest.mark.parametrize("fps, in_sync, words", [
    ([FP_A, FP_B], True, "nodes hold " + FP_A + " / " + FP_B),
    ([FP_A, None], True, "nothing readable"),
    ([FP_A, FP_A], False, "HA not in sync: syncStatus config=syncInProgress"),
])
def test_ribbon_core_nodes_that_disagree_or_lack_the_file_or_ha_out_of_sync_are_split(fps, in_sync, words):
    s = fp.summary_ribbon_core(core_info(fps, in_sync))
    assert s["split"] is True and words in s["split_detail"]


def test_ribbon_edge_summary():
    info = {"bound": {"fingerprint": FP_A, "not_after_epoch": 1803902400, "common_name": "edge.lab.test"},
            "certificates": [{"role": "server", "fingerprint": FP_A}, {"role": "ca", "fingerprint": MANAGED}]}
    s = fp.summary_ribbon_edge(info)
    assert s == {"fingerprint": FP_A, "not_after": "2027-03-01T12:00:00+00:00", "names": ["edge.lab.test"],
                 "roots": [MANAGED], "mutual_auth": False, "split": False, "split_detail": "",
                 "serving": {"fingerprint": FP_A}, "ha": "standalone"}
    assert fp.summary_ribbon_edge({})["fingerprint"] is None


# -- store and decision inputs -----------------------------------------------------------------------------------------
def test_store_current_for_the_decision_needs_no_key():
    stored = {"not_before": "2026-11-01T00:00:00Z", "not_after": "2027-01-30T00:00:00Z", "names": ["a.test"],
              "key_type": "ecdsa-secp256r1", "has_privatekey": True, "fingerprint": FP_A}
    cur = fp.store_current(stored)
    assert cur["not_after"] == datetime.datetime(2027, 1, 30, tzinfo=UTC) and cur["key_matches"] is None
    assert cur["key_missing"] is False
    assert fp.store_current(dict(stored, has_privatekey=False))["key_missing"] is True
    assert fp.store_current(None) is None and fp.store_current({}) is None
    d = _renewal.decide(group="g", names=["a.test"], now=NOW, current=cur, key_type="ecdsa-secp256r1")
    assert d["renew"] is False and d["trigger"] == "lifetime"


@pytest.mark.parametrize("acme, wanted", [({}, "ecdsa-secp256r1"), ({"key_type": "rsa", "key_size": 3072}, "rsa-3072"),
                                          ({"key_type": "ecdsa", "key_curve": "secp384r1"}, "ecdsa-secp384r1")])
def test_wanted_key_type_is_named_as_the_store_names_it(acme, wanted):
    assert fp.wanted_key_type(acme) == wanted


# -- ARI -------------------------------------------------------------------------------------------------------------------
def certificate(serial: int, aki: bytes | None):
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "a.test")])
    b = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
         .serial_number(serial).not_valid_before(NOW).not_valid_after(NOW + datetime.timedelta(days=90)))
    if aki is not None:
        b = b.add_extension(x509.AuthorityKeyIdentifier(aki, None, None), critical=False)
    return b.sign(key, hashes.SHA256())


def test_ari_cert_id_is_aki_dot_serial_in_base64url_without_padding():
    # RFC 9773 §4.1 example: keyIdentifier 69:88:5B:6B:87:46:40:41:E1:B3:7B:84:7B:A0:AE:2C:DE:01:C8:D4,
    # serial 00:87:65:43:21 -> "aYhba4dGQEHhs3uEe6CuLN4ByNQ.AIdlQyE"
    aki = bytes.fromhex("69885B6B87464041E1B37B847BA0AE2CDE01C8D4")
    assert fp.ari_cert_id(certificate(0x87654321, aki)) == "aYhba4dGQEHhs3uEe6CuLN4ByNQ.AIdlQyE"
    small = fp.ari_cert_id(certificate(0x1234, b"\x01"))
    assert small.split(".")[1] == base64.urlsafe_b64encode(b"\x12\x34").decode().rstrip("=")


def test_ari_cert_id_without_aki_is_refused_by_name():
    with pytest.raises(InputError, match="authority key identifier"):
        fp.ari_cert_id(certificate(5, None))


def test_ari_window_parses_the_suggested_window_or_gives_none():
    w = fp.ari_window({"suggestedWindow": {"start": "2027-01-01T00:00:00Z", "end": "2027-01-03T00:00:00Z"},
                       "explanationURL": "https://ca.example/why"})
    assert w["window_start"] == datetime.datetime(2027, 1, 1, tzinfo=UTC) and w["explanation_url"] == "https://ca.example/why"
    for bad in (None, [], {}, {"suggestedWindow": {"start": "garbage", "end": "x"}}, {"suggestedWindow": {"start": ""}}):
        assert fp.ari_window(bad) is None


# -- maintenance windows -----------------------------------------------------------------------------------------------------
def test_no_window_is_always_open():
    assert fp.window_state({}, NOW) == {"open": True, "reason": ""}


def test_window_in_local_time_of_an_iana_zone():
    # 08:00 UTC Monday = 09:00 Monday in Berlin (CET)
    assert fp.window_state({"timezone": "Europe/Berlin", "start": "08:30", "end": "10:00"}, NOW)["open"]
    shut = fp.window_state({"timezone": "Europe/Berlin", "days": ["tue"], "start": "08:30", "end": "10:00"}, NOW)
    assert not shut["open"]
    assert shut["reason"] == "outside its maintenance window (tue 08:30-10:00 Europe/Berlin; it is mon 09:00 there)"


def test_window_over_midnight_belongs_to_the_day_it_starts():
    w = {"timezone": "UTC", "days": ["sun"], "start": "22:00", "end": "09:00"}
    assert fp.window_state(w, NOW)["open"]  # Monday 08:00 is still Sunday's window
    assert not fp.window_state(dict(w, days=["mon"]), NOW)["open"]


def test_unknown_zone_is_an_input_error():
    with pytest.raises(InputError, match="IANA zone"):
        fp.window_state({"timezone": "Mars/Olympus_Mons"}, NOW)


# -- leader and plan --------------------------------------------------------------------------------------------------------
def test_leader_is_the_first_member_with_an_open_window_or_any_when_forced():
    windows = {"a": {"open": False}, "b": {"open": True}, "c": {"open": True}}
    assert fp.pick_leader(["a", "b", "c"], windows, False) == "b"
    assert fp.pick_leader(["a", "b"], windows, True) == "a"
    assert fp.pick_leader(["a"], windows, False) == ""


def installed(fp_: str | None = FP_A, roots=(MANAGED,), split=False) -> dict:
    return {"fingerprint": fp_, "not_after": "2027-02-28T10:00:00+00:00", "roots": list(roots), "split": split,
            "split_detail": "nodes hold x / y" if split else "", "serving": {"name": "byoc-old"}}


def outcome(renew=False, current=FP_A, check=False, backoff=False) -> dict:
    d = {"renew": renew, "skip": backoff, "reasons": ["renewal forced"] if renew or backoff else [],
         "msg": "Group g: ...", "renew_at": "2027-01-01T00:00:00Z", "trigger": "lifetime", "next_attempt": None}
    return fp.group_outcome(d, {"fingerprint": current, "not_after": "2027-02-28T10:00:00Z"} if current else None, check)


def plan(inst=None, out=None, window=None, force=False, managed=MANAGED, vendor="audiocodes") -> dict:
    return fp.plan_host(host="h1", group="g", vendor=vendor, endpoint="sbc1.lab.test:5061", leader="h1",
                        installed=inst or installed(), outcome=out or outcome(), window=window or {"open": True},
                        force=force, managed_fingerprint=managed)


def test_converged_host_has_nothing_to_do():
    p = plan()
    assert p["deploy"] is False and p["why"] == [] and p["wanted"] == FP_A and not p["skipped"]
    assert fp.plan_line(p).startswith("g/h1 (audiocodes, sbc1.lab.test:5061): nothing to do; serves " + FP_A)


def test_a_due_group_deploys_every_member_and_says_why():
    p = plan(out=outcome(renew=True))
    assert p["deploy"] and p["renew"] and p["why"] == ["the group renews (renewal forced)"]
    c = plan(out=outcome(renew=True, check=True))
    assert fp.plan_line(c).startswith("g/h1 (audiocodes, sbc1.lab.test:5061): deploy: the group would renew (renewal forced")


def test_first_issuance_deploys_with_no_wanted_fingerprint_yet():
    p = plan(out=outcome(renew=True, current=None))
    assert p["deploy"] and p["wanted"] is None


def test_a_member_behind_the_store_gets_the_group_certificate():
    p = plan(inst=installed(FP_B))
    assert p["deploy"] and p["why"] == [f"serves {FP_B}, the group has {FP_A}"] and not p["renew"]


def test_ribbon_core_object_that_does_not_open_is_named():
    p = plan(inst=installed(None), vendor="ribbon_core")
    assert p["why"] == [f"serves object byoc-old, whose file does not open with the PKCS#12 passphrase, the group has {FP_A}"]


def test_split_pair_and_missing_managed_ca_deploy():
    assert plan(inst=installed(split=True))["why"] == ["HA members disagree (split): nodes hold x / y"]
    assert plan(inst=installed(roots=()))["why"] == ["the org's MANAGED CA is not in its trusted roots"]
    assert plan(inst=installed(roots=()), vendor="ribbon_edge")["deploy"] is False  # no trusted roots managed there
    assert plan(inst=installed(roots=()), managed="")["deploy"] is False


def test_group_in_backoff_renews_nothing_but_a_lagging_member_still_gets_the_stored_one():
    assert plan(out=outcome(backoff=True))["deploy"] is False
    assert plan(inst=installed(FP_B), out=outcome(backoff=True))["deploy"] is True


def test_closed_window_skips_unless_forced():
    shut = {"open": False, "reason": "outside its maintenance window (x)"}
    p = plan(out=outcome(renew=True), window=shut)
    assert p["skipped"] and not p["deploy"] and not p["renew"] and p["skip_reason"] == shut["reason"]
    assert fp.plan_line(p).endswith("skipped: outside its maintenance window (x) | group: Group g: ...")
    forced = plan(out=outcome(renew=True), window=shut, force=True)
    assert forced["deploy"] and not forced["skipped"]


def test_unreadable_device_is_never_deployed():
    p = plan(inst={"error": "could not read"}, out=outcome(renew=True))
    assert p["deploy"] is False


# -- threads and ansible-core's process-wide urllib opener -------------------------------------------------------------------
def test_each_thread_keeps_its_own_opener_while_the_plan_runs():
    """open_url installs its opener (with the request's CA file) process-wide, then opens through the global opener:
    without the per-thread opener, a thread's request could go out with another thread's CA file."""
    import threading
    import urllib.request

    class Opener:
        def __init__(self, name):
            self.name = name

        def open(self, url, data=None, timeout=None):
            return (self.name, url)

    saved = (urllib.request.install_opener, getattr(urllib.request, "_opener", None))
    installed, seen = threading.Barrier(2), {}
    open_global = getattr(urllib.request, "url" + "open")  # what ansible-core's Request.open calls

    def worker(name):
        urllib.request.install_opener(Opener(name))
        installed.wait()  # both threads have installed theirs before either opens
        seen[name] = open_global(f"https://{name}.test/", None, 5)

    with fp._ThreadLocalOpener():
        threads = [threading.Thread(target=worker, args=(n,)) for n in ("a", "b")]
        for th in threads:
            th.start()
        for th in threads:
            th.join()
    assert seen == {"a": ("a", "https://a.test/"), "b": ("b", "https://b.test/")}
    assert (urllib.request.install_opener, getattr(urllib.request, "_opener", None)) == saved  # restored


def test_ignore_backoff_reaches_the_decision(tmp_path):
    """A group in its backoff after a rollback renews when forced only with ignore_backoff (rotate.yml
    byoc_ignore_backoff): the store is read by read_group, no device, no ARI (use_ari false)."""
    import json

    stored = {"fingerprint": FP_A, "not_before": "2026-11-01T00:00:00Z", "not_after": "2027-01-30T00:00:00Z",
              "names": ["a.test"], "key_type": "ecdsa-secp256r1"}
    backoff = _renewal.record_failure(None, NOW, "rolled back: managed-ca")
    (tmp_path / "g1").mkdir()
    (tmp_path / "g1" / "state.json").write_text(json.dumps(
        {"format": "byoc.certificates/store/1", "group": "g1", "revision": 1, "current": stored, "backoff": backoff}))
    host = {"names": ["a.test"], "store": {"backend": "filesystem", "path": str(tmp_path), "s3": {}},
            "acme": {"directory": "https://acme.invalid/dir", "use_ari": False, "renew_fraction": 0.3333,
                     "short_lived_fraction": 0.5, "short_lived_days": 10, "stagger_fraction": 0.1}}
    held = fp.read_group("g1", host, NOW, True, False, None, print)
    assert held["renew"] is False and held["backoff"] is True
    retried = fp.read_group("g1", host, NOW, True, False, None, print, ignore_backoff=True)
    assert retried["renew"] is True and "renewal forced" in retried["reasons"]


def test_audiocodes_unit_serving_another_context_than_the_one_holding_the_group_certificate_is_deployed():
    """Fault matrix row 17 (a run killed after its staged writes, before the re-bind): context byoc-B holds the
    group's certificate, the SIP Interface still serves byoc-A. What the unit serves is what the SIP Interface is
    bound to, so the unit is planned for deploy (the staged install then only re-binds)."""
    names = {0: "default", 1: "byoc-A", 2: "byoc-B"}
    sip = {"SIPInterface_0": {"tls_context": "byoc-A", "mutual_auth": 0}}
    contexts = {1: {"certificate": details(FP_B), "trusted_roots": [details(MANAGED)]},
                2: {"certificate": details(FP_A), "trusted_roots": [details(MANAGED)]}}
    s = fp.summary_audiocodes({"highAvailability": "Operational"}, contexts, names, sip, ["SIPInterface_0"])
    assert s["fingerprint"] == FP_B and s["serving"] == {"index": 1, "name": "byoc-A"} and not s["split"]
    p = plan(inst=s)
    assert p["deploy"] and p["why"] == [f"serves {FP_B}, the group has {FP_A}"] and p["wanted"] == FP_A


# -- the verification's read-back (devices_only) ---------------------------------------------------------------------
def test_ribbon_core_summary_counts_only_our_versioned_local_objects():
    """A prune is skipped when the pair holds two or fewer of our versioned objects (bound + rollback target);
    objects of another prefix, unversioned names and CA (remote) objects do not count."""
    info = core_info([FP_A, FP_A])
    info["certificates"] = [{"type": "local", "name": "byoc-20270228-0123abcd"},
                            {"type": "local", "name": "byoc-20270101-89abcdef"},
                            {"type": "local", "name": "byoc-20261201-00000000"},
                            {"type": "local", "name": "other-20270228-0123abcd"},
                            {"type": "local", "name": "byoc-manual"},
                            {"type": "remote", "name": "byoc-20270228-fedcba98"}]
    assert fp.summary_ribbon_core(info)["versioned"] == 3
    assert fp.summary_ribbon_core(info, "other")["versioned"] == 1
    assert fp.summary_ribbon_core(core_info([FP_A, FP_A]))["versioned"] == 0


def _args(hosts, **kw):
    base = {"hosts": hosts, "force": False, "ignore_backoff": False, "now": "", "managed_fingerprint": "",
            "concurrency": 4, "timeout": 5, "devices_only": False}
    return dict(base, **kw)


def _device_only_host(name):
    return {"host": name, "group": name, "vendor": "ribbon_edge", "names": None, "endpoint": "",
            "connection": {"api_url": "https://127.0.0.1:9/", "username": "u", "password": "s3cret-pw"},
            "maintenance_window": {}, "install_managed_ca": True, "acme": None, "store": None}


def test_a_plan_needs_names_acme_and_store_by_host_and_field():
    with pytest.raises(InputError) as e:
        fp.run(_args([_device_only_host("e1")]), check_mode=False, warn=print, now=NOW)
    assert e.value.field == "hosts[0].names"


def test_devices_only_reads_every_device_and_nothing_else(monkeypatch):
    """The verification's read-back: one read per device, no store entry, no ARI request, no plan; a device that
    cannot be read is named in failed_hosts without its password."""
    read = []

    def fake_read(host, timeout):
        read.append(host["host"])
        if host["host"] == "e2":
            raise ConnectionError(f"refused for {host['connection']['password']}")
        return {"fingerprint": FP_A}

    monkeypatch.setattr(fp, "read_device", fake_read)
    monkeypatch.setattr(fp, "read_group", lambda *a, **k: pytest.fail("devices_only read a store entry"))
    out = fp.run(_args([_device_only_host("e1"), _device_only_host("e2")], devices_only=True),
                 check_mode=False, warn=print, now=NOW)
    assert sorted(read) == ["e1", "e2"]
    assert out["installed"] == {"e1": {"fingerprint": FP_A}} and list(out["failed_hosts"]) == ["e2"]
    assert "could not read ribbon_edge device e2" in out["failed_hosts"]["e2"]
    assert "s3cret-pw" not in out["failed_hosts"]["e2"]
    assert out["requests"] == {"devices": 2, "store": 0, "ari": 0} and out["hosts"] == {} and out["deploy_hosts"] == []
