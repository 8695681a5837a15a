#!/usr/bin/python
# Copyright (c) 2026, byoc.certificates contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
module: fleet_issue
short_description: Issue certificates over ACME DNS-01 for every due certificate group of a batch in one call
version_added: 0.1.0
description:
  - The issuing step of C(byoc.certificates.rotate) (issue 13). For every group of O(groups) whose renewal
    decision (the fleet plan's, in O(groups[].decision)) says renew, it does what the role
    C(byoc.certificates.certificate_issue) does - take the group's lease in the store, read the group's entry, order
    with the group's names, profile and C(replaces) (RFC 9773), answer the DNS-01 challenges, finalize, keep the new
    certificate, chain and encrypted key in the store (the old current becomes previous), keep the root and the new
    certificate's ARI data, renew the lease while it works, remove the TXT records and give the lease back.
  - Once per batch, not per group - the ACME directory and account (one account key per directory, reused from a
    group's store entry when one has it, and recorded in the entry of every group that orders), the root CA (file or
    URL), the DNS provider objects.
  - DNS-01 for the whole batch together - every TXT record is published, then ONE wait until every authoritative
    server serves every record, then every challenge is answered. C(dns_wait_seconds) in RV(groups) is the wait per group.
  - If the store's current certificate differs from O(groups[].planned_fingerprint) once the lease is taken,
    another run renewed the group meanwhile - its certificate is delivered and nothing is ordered.
  - A group that fails is recorded in the store (failure backoff, as the role records it) and reported in
    C(msg) in RV(groups) as "Group <g> - issuing failed at '<step>' - <what>. Backoff - ..." (with colons); the other groups go on.
  - Runs on the controller. The action plugin of the same name does the work in-process with threads. Use it with
    C(run_once) and C(no_log) (the result holds the private keys in RV(private_keys)), then hand the material out
    per host with C(set_fact).
author:
  - byoc.certificates contributors (!UNKNOWN)
extends_documentation_fragment:
  - byoc.certificates._attributes.ACTIONGROUP_ISSUE
  - byoc.certificates._attributes
attributes:
  action:
    description: Runs as an action plugin on the controller.
    support: full
  check_mode:
    description: Orders nothing and writes nothing; says what would be ordered and delivers the stored material.
    support: full
  diff_mode:
    description: Not supported.
    support: none
  idempotent:
    description: A second run finds the groups renewed (the fleet plan then says nothing is due) and orders nothing.
    support: partial
options:
  groups:
    description: The certificate groups of the batch, each with its decision and settings.
    type: list
    elements: dict
    required: true
    suboptions:
      group:
        description: The certificate group (the store entry's name).
        type: str
        required: true
      names:
        description: The certificate's DNS names; the first is the subject CN when it has at most 64 characters.
        type: list
        elements: str
        required: true
      decision:
        description:
          - The renewal decision for the group (the fleet plan's C(groups[g].decision), as
            M(byoc.certificates.certificate_renewal_decision) returns it). Empty to decide here (store, ARI, lifetime).
        type: dict
        default: {}
      planned_fingerprint:
        description:
          - The store's current fingerprint when the decision was made (V(none) - no certificate). Empty to not check.
        type: str
        default: ""
      acme:
        description: The group's ACME settings.
        type: dict
        required: true
        suboptions:
          directory:
            description: The ACME directory URL.
            type: str
            required: true
          ca_file:
            description: CA file for the ACME server's TLS; empty for the system store.
            type: str
            default: ""
          validate_certs:
            description: Verify the ACME server's TLS certificate.
            type: bool
            default: true
          contact:
            description: Contact URLs for a new account (C(mailto:...)).
            type: list
            elements: str
            default: []
          terms_agreed:
            description: Agree to the CA's terms of service when the account is created.
            type: bool
            default: true
          eab:
            description: External account binding (C(kid), C(hmac_key), C(alg)) for CAs that require it.
            type: dict
            default: {}
            suboptions:
              kid:
                description: The key identifier the CA gave.
                type: str
                default: ""
              hmac_key:
                description: The MAC key the CA gave (base64url).
                type: str
                default: ""
              alg:
                description: The MAC algorithm.
                type: str
                default: HS256
          profile:
            description: The ACME certificate profile to order; empty for the CA's default.
            type: str
            default: ""
          use_ari:
            description: Use ARI (RFC 9773) - order with C(replaces) and keep the new certificate's renewal window.
            type: bool
            default: true
          root_file:
            description: A file holding the root CA of the chain (kept with the certificate, delivered as C(root) in RV(groups)).
            type: str
            default: ""
          root_url:
            description: Where the CA publishes its root (Pebble - its management interface C(/roots/0)); fetched once per batch.
            type: str
            default: ""
          key_type:
            description: The private key type.
            type: str
            default: ecdsa
            choices: [ecdsa, rsa]
          key_size:
            description: RSA key size.
            type: int
            default: 2048
          key_curve:
            description: ECDSA curve.
            type: str
            default: secp256r1
          key_policy:
            description: V(rotate) makes a new key on every renewal; V(reuse) keeps the stored key when it still fits.
            type: str
            default: rotate
            choices: [rotate, reuse]
          renew_fraction:
            description: Without a decision, renew when less than this fraction of the lifetime is left.
            type: float
            default: 0.3333
          short_lived_fraction:
            description: Without a decision, the fraction for short-lived certificates.
            type: float
            default: 0.5
          short_lived_days:
            description: Without a decision, below this lifetime a certificate is short-lived.
            type: float
            default: 10
          stagger_fraction:
            description: Without a decision, how much of the lifetime the per-group stagger may move the renewal point.
            type: float
            default: 0.1
      dns:
        description: The group's DNS-01 settings (as for M(byoc.certificates.dns01_record)).
        type: dict
        required: true
        suboptions:
          provider:
            description: The DNS provider.
            type: str
            required: true
            choices: [rfc2136, route53, powerdns, cloudflare, azure]
          options:
            description: The provider's settings (the sub-options of the provider in M(byoc.certificates.dns01_record)).
            type: dict
            default: {}
          zone:
            description: The zone of the TXT records; empty to find it.
            type: str
            default: ""
          follow_cname:
            description: Follow CNAMEs from C(_acme-challenge.<name>) and write the record at the final name.
            type: bool
            default: false
          resolver:
            description: Resolvers (C(host[:port])) for CNAMEs and the zone's NS; empty for the system's.
            type: list
            elements: str
            default: []
          nameservers:
            description: The authoritative servers (C(host[:port])) to wait for; empty to use the zone's NS.
            type: list
            elements: str
            default: []
          wait_timeout:
            description: Seconds to wait until every authoritative server serves the group's TXT records.
            type: int
            default: 300
          wait_interval:
            description: Seconds between two rounds of queries during the wait.
            type: float
            default: 1.0
          challenge_aliases:
            description: Static DNS alias mode - a name maps to the record that holds its challenge.
            type: dict
            default: {}
      store:
        description: Where the group's material is kept (as for M(byoc.certificates.certificate_store)).
        type: dict
        required: true
        suboptions:
          backend:
            description: The store backend.
            type: str
            default: filesystem
            choices: [filesystem, s3]
          path:
            description: The filesystem store's directory.
            type: str
            default: ""
          s3:
            description: The s3 store's options (bucket, prefix, region, endpoint_url, credentials).
            type: dict
            default: {}
  passphrase:
    description: The store passphrase (at least 12 characters); every key is stored encrypted with it.
    type: str
    required: true
  holder:
    description: Who holds the groups' leases (for example the AWX job); empty for C(<job>@<controller>:<pid>).
    type: str
    default: ""
  lease_ttl:
    description: Seconds a lease lasts unless renewed (a killed run blocks the group at most this long).
    type: int
    default: 3600
  lease_wait:
    description: Seconds to wait for a lease another run holds; V(-1) for O(lease_ttl) + 300.
    type: int
    default: -1
  lease_poll:
    description: Seconds between two looks at a lease another run holds.
    type: float
    default: 5.0
  backoff_schedule:
    description: Seconds before the CA is contacted again after the 1st, 2nd, ... failure of a group.
    type: list
    elements: int
    default: [60, 600, 6000, 86400]
  force:
    description: Without a decision, renew now.
    type: bool
    default: false
  ignore_backoff:
    description: Without a decision, decide as if the groups were not in their failure backoff.
    type: bool
    default: false
  now:
    description: Decide and record failures as if it were this time (ISO 8601); empty for the clock.
    type: str
    default: ""
  workers:
    description: How many groups are worked on at the same time.
    type: int
    default: 10
  timeout:
    description: Seconds to wait for each ACME, root or ARI answer.
    type: int
    default: 30
notes:
  - The private keys are only in RV(private_keys); register the task with C(no_log), and hand each key to the deploy
    step in a C(set_fact) with C(no_log). A result that holds a key is hidden even without C(no_log) (as if it were
    set), so a forgotten C(no_log) prints no key; print the public outcome from RV(groups) or RV(lines) instead.
seealso:
  - module: byoc.certificates.fleet_plan
  - module: byoc.certificates.certificate_store
  - module: byoc.certificates.dns01_record
"""

EXAMPLES = r"""
- name: Issue for every group of the batch that renews (one call, run_once)
  byoc.certificates.fleet_issue:
    groups:
      - group: grp_mediant_ha
        names: [sbc1.example.com]
        decision: "{{ fleet_plan_batch.groups.grp_mediant_ha.decision }}"
        planned_fingerprint: "{{ fleet_plan_batch.groups.grp_mediant_ha.current.fingerprint | default('none', true) }}"
        acme:
          directory: https://acme-v02.api.letsencrypt.org/directory
          root_file: /etc/byoc/isrg-root-x1.pem
        dns:
          provider: rfc2136
          options: {server: 10.0.0.53, key_name: acme, key_secret: "{{ vault_tsig_secret }}"}
          zone: example.com
        store:
          backend: filesystem
          path: /var/lib/byoc/store
    passphrase: "{{ vault_store_passphrase }}"
  register: fleet_issue_batch
  run_once: true
  no_log: true

- name: Show the outcome per group
  ansible.builtin.debug:
    msg: "{{ fleet_issue_batch.lines }}"
  run_once: true
"""

RETURN = r"""
groups:
  description:
    - The outcome of every group, by group name, shaped like the role's C(certificate_issue_result) - C(group),
      C(renewed), C(skipped), C(due), C(reasons), C(msg), C(trigger), C(renew_at), C(next_attempt), C(replaces),
      C(order_uri), C(current) (the stored certificate, no key), C(previous_fingerprint), C(check_mode),
      C(certificate), C(chain), C(fullchain), C(root), C(private_key_fact) - plus C(failed) and C(dns_wait_seconds).
  returned: always
  type: dict
  sample:
    grp_mediant_ha:
      group: grp_mediant_ha
      renewed: true
      failed: false
      msg: "Group grp_mediant_ha: renew (forced)"
      dns_wait_seconds: 1.2
private_keys:
  description: The private key (PEM) of every delivered group, by group name. Register the task with C(no_log).
  returned: always
  type: dict
  sample: {}
failed_groups:
  description: The groups whose issuance failed (their C(msg) says where and what).
  returned: always
  type: list
  elements: str
  sample: []
renewed_groups:
  description: The groups that got a new certificate.
  returned: always
  type: list
  elements: str
  sample: [grp_mediant_ha]
lines:
  description: One line per group, the outcome as the role's "Show the outcome" prints it.
  returned: always
  type: list
  elements: str
  sample: ["Group grp_mediant_ha: renewed, new certificate 5f1c... valid until 2027-02-28T10:00:00Z"]
requests:
  description: C(acme) requests, C(accounts) (ACME clients), C(orders), C(root) fetches.
  returned: always
  type: dict
  sample: {acme: 14, accounts: 1, orders: 1, root: 1}
progress:
  description: The progress lines printed while the call ran (lease waits, the DNS wait).
  returned: always
  type: list
  elements: str
  sample: ["waiting for 12 TXT records at 2 authoritative servers: 9 seen, 14 s of 120 s"]
holder:
  description: Who held the leases.
  returned: always
  type: str
  sample: "run@controller:4242"
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.byoc.certificates.plugins.module_utils import _fleet_issue
from ansible_collections.byoc.certificates.plugins.module_utils._module import ByocModule
from ansible_collections.byoc.certificates.plugins.module_utils._runner import run_module


def work(module: AnsibleModule) -> dict:
    warnings: list[str] = []
    result = _fleet_issue.run(module.params, check_mode=module.check_mode, warn=warnings.append)
    for w in warnings:
        module.warn(w)
    return result


def main() -> None:
    module = ByocModule(argument_spec=_fleet_issue.ARGUMENT_SPEC, supports_check_mode=True)
    run_module(module, work)


if __name__ == "__main__":
    main()
