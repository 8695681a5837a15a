# Copyright (c) 2026, byoc.certificates contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""The pure parts of batch issuance (plugins/module_utils/_fleet_issue.py): the failure message the fault matrix and
users match, the result shape the pipeline reads (certificate_issue_result), the "another run renewed" rule,
batching, secrets collected for scrubbing, and the progress line of the batch's one DNS wait."""

from __future__ import annotations

import re

import pytest

from ansible_collections.byoc.certificates.plugins.module_utils import _fleet_issue as fi

# roles/certificate_issue/tasks/report.yml: the keys of certificate_issue_result
ROLE_KEYS = {"group", "renewed", "skipped", "due", "reasons", "msg", "trigger", "renew_at", "next_attempt", "replaces",
             "order_uri", "current", "previous_fingerprint", "check_mode", "certificate", "chain", "fullchain", "root",
             "private_key_fact"}
DECISION = {"renew": True, "skip": False, "reasons": ["forced"], "msg": "Group g1: renew (forced)", "trigger": None,
            "renew_at": None, "next_attempt": None, "replaces_cert_id": "aki.serial"}


def test_failure_message_has_the_role_shape_with_the_backoff():
    msg = fi.failure_message("g1", fi.STEP_PUBLISH, "The DNS server 127.0.0.1:53 answered REFUSED to the update.",
                             {"failures": 2, "next_attempt": "2026-11-30T12:00:00Z"})
    assert msg == ("Group g1: issuing failed at '" + fi.STEP_PUBLISH + "': The DNS server 127.0.0.1:53 answered"
                   " REFUSED to the update. Backoff: failure 2; the CA is not contacted for this group again before"
                   " 2026-11-30T12:00:00Z.")
    assert re.search(r"issuing failed at '[^']+'", msg)  # what tests/integration/test_fault_matrix.py matches


def test_failure_message_without_a_recorded_backoff_has_no_backoff_sentence():
    msg = fi.failure_message("g1", fi.STEP_LEASE, "The lease g1 is held by job-7 until 12:00", None)
    assert msg.endswith("held by job-7 until 12:00.") and "Backoff" not in msg


def test_timed_out_wait_keeps_the_words_the_fault_matrix_matches():
    line = fi.failure_message("g1", fi.STEP_PUBLISH, "Timed out (wait_timeout 15s, 15s spent polling) waiting", None)
    assert re.search(r"issuing failed at '[^']+'", line) and re.search(r"Timed out \(wait_timeout 15s", line)


def test_result_has_every_key_of_certificate_issue_result_and_the_batch_extras():
    r = fi.result_for(group="g1", decision=DECISION, check_mode=False, use_ari=True, stored={"fingerprint": "ab"},
                      previous_fp="cd", renewed=True, order_uri="https://ca/order/1",
                      delivered={"certificate": "C", "chain": "I", "fullchain": "CI", "root": "R"}, dns_wait=1.23456)
    assert ROLE_KEYS <= set(r) and {"failed", "dns_wait_seconds"} <= set(r)
    assert r["renewed"] and r["due"] and not r["failed"] and r["replaces"] == "aki.serial"
    assert r["private_key_fact"] == "certificate_issue_private_key" and r["root"] == "R"
    assert r["dns_wait_seconds"] == 1.235
    assert "privatekey" not in repr(r).lower()


def test_replaces_is_reported_only_when_it_was_sent():
    base = {"group": "g1", "decision": DECISION, "check_mode": False, "stored": None, "previous_fp": None}
    assert fi.result_for(**base, use_ari=True, renewed=True, replaces_dropped=True)["replaces"] is None
    assert fi.result_for(**base, use_ari=False, renewed=True)["replaces"] is None
    assert fi.result_for(**base, use_ari=True, renewed=False)["replaces"] is None


def test_check_mode_result_shows_the_root_it_would_deliver_and_no_key_fact_without_material():
    r = fi.result_for(group="g1", decision=DECISION, check_mode=True, use_ari=True, stored=None, previous_fp=None,
                      root_pem="ROOT")
    assert r["root"] == "ROOT" and r["private_key_fact"] is None and r["check_mode"]
    assert fi.outcome_line(r).startswith("renewal due (check mode, nothing ordered): ")


def test_outcome_lines():
    ok = fi.result_for(group="g1", decision=DECISION, check_mode=False, use_ari=True, renewed=True,
                       stored={"fingerprint": "ab", "not_after": "2027-01-01T00:00:00Z"}, previous_fp=None, dns_wait=2)
    assert fi.outcome_line(ok) == "Group g1: renewed, new certificate ab valid until 2027-01-01T00:00:00Z (DNS wait 2.0 s)"
    bad = fi.result_for(group="g1", decision=DECISION, check_mode=False, use_ari=True, stored=None, previous_fp=None,
                        failed=True, msg="Group g1: issuing failed at 'x': y.")
    assert fi.outcome_line(bad) == "Group g1: issuing failed at 'x': y."


@pytest.mark.parametrize("planned, stored, expected", [
    ("", "aa", False),        # no plan given: nothing to compare
    ("aa", "aa", False),      # the store holds what the plan read
    ("none", None, False),    # no certificate then, none now
    ("aa", "bb", True),       # another run stored a new certificate meanwhile
    ("none", "bb", True),     # another run issued the first certificate meanwhile
])
def test_renewed_elsewhere(planned, stored, expected):
    assert fi.renewed_elsewhere(DECISION, planned, stored) is expected
    assert fi.renewed_elsewhere(dict(DECISION, renew=False), planned, stored) is False


def test_another_run_decision_orders_nothing_and_names_the_holder():
    d = fi.another_run_decision(DECISION, "g1", ["job-7@ctl:42"], "bb")
    assert d["renew"] is False and d["reasons"] == [fi.ANOTHER_RUN]
    assert "job-7@ctl:42" in d["msg"] and "(bb)" in d["msg"] and "nothing is ordered" in d["msg"]


def test_common_name_only_when_it_fits():
    assert fi.csr_common_name(["a.example.com", "b.example.com"]) == "a.example.com"
    assert fi.csr_common_name(["x" * 60 + ".example.com"]) is None
    assert fi.csr_common_name([]) is None


def test_challenge_alias_mapping():
    aliases = {"sbc1.example.com": "_acme-challenge.sbc1.acme.example.net."}
    assert fi.txt_record_for("_acme-challenge.sbc1.example.com", aliases) == "_acme-challenge.sbc1.acme.example.net"
    assert fi.txt_record_for("_acme-challenge.sbc2.example.com", aliases) == "_acme-challenge.sbc2.example.com"


def test_batches():
    assert fi.batches(list(range(5)), 2) == [[0, 1], [2, 3], [4]]
    assert fi.batches([], 3) == []
    assert fi.batches([1], 0) == [[1]]


def test_wait_line():
    assert fi.wait_line(12, 2, 9, 14.2, 120) == "waiting for 12 TXT records at 2 authoritative servers: 9 seen, 14 s of 120 s"
    assert fi.wait_line(1, 1, 0, 0, 5) == "waiting for 1 TXT record at 1 authoritative server: 0 seen, 0 s of 5 s"


def test_secrets_are_collected_for_scrubbing():
    args = {"passphrase": "store-passphrase-1", "groups": [{
        "acme": {"eab": {"kid": "kid-1", "hmac_key": "hmac-secret-value", "alg": "HS256"}},
        "dns": {"options": {"server": "127.0.0.1", "port": 53, "key_name": "acme-key", "key_secret": "tsig-secret=="}},
        "store": {"s3": {"bucket": "b", "secret_key": "s3-secret-key", "access_key": "AKIAEXAMPLE"}}}]}
    found = fi.secrets_of(args)
    for s in ("store-passphrase-1", "hmac-secret-value", "tsig-secret==", "s3-secret-key", "AKIAEXAMPLE"):
        assert s in found
    assert "127.0.0.1" not in found and "kid-1" not in found
    assert found == sorted(found, key=len, reverse=True)


def test_bad_input_is_refused_before_anything_is_contacted():
    group = {"group": "g1", "names": ["a.example.com"], "decision": {}, "planned_fingerprint": "",
             "acme": {"directory": "ftp://ca"}, "dns": {"wait_timeout": 10}, "store": {}}
    args = {"groups": [group], "passphrase": "long-enough-passphrase", "workers": 1, "backoff_schedule": [60]}
    with pytest.raises(fi.InputError, match=r"groups\[0\]\.acme\.directory"):
        fi.run(args, check_mode=True, warn=lambda w: None)
    with pytest.raises(fi.InputError, match="listed twice"):
        fi.run(dict(args, groups=[dict(group, acme={"directory": "https://ca"})] * 2), check_mode=True,
               warn=lambda w: None)
    with pytest.raises(fi.InputError, match="passphrase"):
        fi.run(dict(args, groups=[dict(group, acme={"directory": "https://ca"})], passphrase="short"),
               check_mode=True, warn=lambda w: None)
