#!/usr/bin/python
# Copyright (c) 2026, byoc.certificates contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
module: fleet_plan
short_description: Plan a certificate rotation for a whole batch of SBCs in one controller-side call
version_added: 0.1.0
description:
  - The plan step of C(byoc.certificates.rotate) (issue 11). In one call for a batch of hosts it reads every device
    once, concurrently, with the vendors' own read functions (AudioCodes Mediant, Ribbon SBC Core over REST and
    SFTP, Ribbon SBC Edge), reads each certificate group's store entry once (no private key is opened), asks the
    ACME server's renewal information (ARI, RFC 9773) at most once per certificate, and applies the renewal decision
    (ARI window, lifetime fraction with the group's stagger, names, key type, forced, failure backoff).
  - Returns the plan of every host (RV(hosts)) - whether it gets the group's material and why, the leader that
    issues for its group, a closed maintenance window - and what every device serves now (RV(installed)).
  - An ARI error (for example Pebble's C(400) for a certificate it did not issue) never fails the plan; the
    lifetime rule decides instead, with a warning.
  - A device that cannot be read is listed in RV(failed_hosts) with the host, the URL and what to do; the other
    hosts are still planned. Passwords and passphrases are never in the result or in a message.
  - Runs on the controller. The action plugin of the same name does the work in-process with threads, so a batch
    of 200 hosts costs one task, not 200 module runs. Use it with C(run_once). The module works the same way when
    the action plugin is bypassed.
  - This module never changes anything (no device, store or ACME write).
author:
  - byoc.certificates contributors (!UNKNOWN)
extends_documentation_fragment:
  - byoc.certificates._attributes.ACTIONGROUP_PLAN
  - byoc.certificates._attributes
  - byoc.certificates._attributes.info_module
attributes:
  action:
    description: Runs as an action plugin on the controller.
    support: full
options:
  hosts:
    description: The hosts of the batch, each with its certificate group and device connection.
    type: list
    elements: dict
    required: true
    suboptions:
      host:
        description: The inventory host name.
        type: str
        required: true
      group:
        description:
          - The certificate group (an inventory group); the members of a group share one certificate.
          - With O(devices_only) nothing of the group is read; any label will do.
        type: str
        required: true
      vendor:
        description: The SBC family.
        type: str
        required: true
        choices: [audiocodes, ribbon_core, ribbon_edge]
      names:
        description: The certificate's DNS names (the group's; taken from its first member). Required unless O(devices_only).
        type: list
        elements: str
      endpoint:
        description: The SIP-TLS endpoint C(name:port) the Genesys trunks use, for the plan's messages.
        type: str
        default: ""
      connection:
        description: The device's management connection.
        type: dict
        required: true
        suboptions:
          api_url:
            description: The management URL (AudioCodes ending in C(/api/v1)).
            type: str
            required: true
          username:
            description: The management user.
            type: str
            required: true
          password:
            description: The management password.
            type: str
            required: true
          ca_path:
            description: CA file for the management TLS connection; empty for the system store.
            type: str
            default: ""
          sip_interfaces:
            description: AudioCodes only, the SIP Interfaces whose TLS context serves the trunks.
            type: list
            elements: str
            default: [SIPInterface_0]
          nodes:
            description: Ribbon SBC Core only, every node of the pair (C(name), C(host), C(port), C(host_key)) for SFTP.
            type: list
            elements: dict
            default: []
          sftp_username:
            description: Ribbon SBC Core only, the SFTP user.
            type: str
            default: ""
          sftp_password:
            description: Ribbon SBC Core only, the SFTP password.
            type: str
            default: ""
          pkcs12_passphrase:
            description: Ribbon SBC Core only, the passphrase of the PKCS#12 files on the nodes.
            type: str
            default: ""
          tls_profile:
            description: Ribbon SBC Core only, the TLS profile of the SIP-TLS signalling; empty for C(defaultTlsProfile).
            type: str
            default: ""
          name_prefix:
            description:
              - Ribbon SBC Core only, the prefix of the versioned certificate objects this collection makes (as
                M(byoc.certificates.ribbon_certificate) O(byoc.certificates.ribbon_certificate#module:name_prefix)),
                counted in RV(installed) as C(versioned).
            type: str
            default: byoc
      maintenance_window:
        description:
          - "C({timezone, days, start, end}): an IANA zone, day names (mon ... sun, default every day) and HH:MM
            local times (default 00:00-24:00); an end before the start runs over midnight. Empty for always open."
          - A host whose window is closed now is skipped with the reason, unless O(force).
        type: dict
        default: {}
      install_managed_ca:
        description: Whether the org's MANAGED CA (O(managed_fingerprint)) must be in this device's trusted roots.
        type: bool
        default: true
      acme:
        description: The group's ACME and renewal settings. Required unless O(devices_only).
        type: dict
        suboptions:
          directory:
            description: The ACME directory URL.
            type: str
            required: true
          ca_file:
            description: CA file for the ACME server's TLS; empty for the system store.
            type: str
            default: ""
          use_ari:
            description: Ask ARI (RFC 9773) for the renewal window.
            type: bool
            default: true
          key_type:
            description: The wanted key type; a stored certificate with another key type renews.
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
          renew_fraction:
            description: Renew when less than this fraction of the lifetime is left (without an ARI window).
            type: float
            default: 0.3333
          short_lived_fraction:
            description: The fraction for certificates shorter than O(hosts[].acme.short_lived_days).
            type: float
            default: 0.5
          short_lived_days:
            description: Below this lifetime a certificate is short-lived.
            type: float
            default: 10
          stagger_fraction:
            description: How much of the lifetime the per-group stagger may move the renewal point earlier.
            type: float
            default: 0.1
      store:
        description:
          - Where the group's material is kept (as for M(byoc.certificates.certificate_store_info)). Required unless
            O(devices_only).
        type: dict
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
  force:
    description: Renew every group now (a closed maintenance window does not skip a host either).
    type: bool
    default: false
  ignore_backoff:
    description:
      - Decide as if the groups were not in their failure backoff (after a failed order or a rollback), for example
        to retry at once with O(force) once the cause is fixed.
    type: bool
    default: false
  now:
    description: Decide as if it were this time (ISO 8601); empty for the clock. Maintenance windows use the clock.
    type: str
    default: ""
  managed_fingerprint:
    description:
      - SHA-256 fingerprint of the org's MANAGED CA, as read back from the org. A device (other than a Ribbon SBC
        Edge) whose trusted roots lack it gets the group's material and the CA. Empty to not check.
    type: str
    default: ""
  concurrency:
    description: How many devices, store entries and ARI requests are read at the same time.
    type: int
    default: 16
  timeout:
    description: Seconds to wait for each device, store or ARI answer.
    type: int
    default: 30
  devices_only:
    description:
      - Only read what every device serves (RV(installed), RV(failed_hosts)); no store entry, no ARI request, no plan.
        The verification of a rotation reads the changed devices back this way, in one call for the batch.
      - RV(hosts), RV(groups), RV(lines), RV(deploy_hosts) and RV(deploy_groups) are then empty.
    type: bool
    default: false
notes:
  - The plan is the same whether or not the run is in check mode, except that a due group says "would renew".
seealso:
  - module: byoc.certificates.certificate_renewal_decision
  - module: byoc.certificates.certificate_store_info
"""

EXAMPLES = r"""
- name: Plan the batch (one call, run_once)
  byoc.certificates.fleet_plan:
    hosts:
      - host: mediant_ha
        group: grp_mediant_ha
        vendor: audiocodes
        names: [sbc1.example.com]
        endpoint: sbc1.example.com:5061
        connection:
          api_url: https://10.0.0.10/api/v1
          username: admin
          password: "{{ vault_mediant_password }}"
        acme:
          directory: https://acme-v02.api.letsencrypt.org/directory
        store:
          backend: filesystem
          path: /var/lib/byoc/store
    managed_fingerprint: "{{ genesys_trust_managed_fingerprint }}"
  register: fleet_plan_batch
  run_once: true

- name: Show what would change
  ansible.builtin.debug:
    msg: "{{ fleet_plan_batch.lines }}"
  run_once: true

- name: Read back what every changed device serves (no plan; one call for the batch)
  byoc.certificates.fleet_plan:
    devices_only: true
    hosts:
      - host: mediant_ha
        group: grp_mediant_ha
        vendor: audiocodes
        connection:
          api_url: https://10.0.0.10/api/v1
          username: admin
          password: "{{ vault_mediant_password }}"
  register: readback
  run_once: true
"""

RETURN = r"""
hosts:
  description:
    - The plan of every host, by host name.
    - C(deploy) says whether the host gets the group's material, C(why) the reasons, C(wanted) the fingerprint of
      the group's stored certificate (null before a first issuance), C(leader) the member that issues for the
      group in this batch, C(renew) whether the group renews now, C(skipped) and C(skip_reason) a closed maintenance
      window, C(installed) and C(installed_not_after) what the device serves, C(msg) the group's decision,
      C(error) why the device or group could not be read, C(wanted_issuer) and C(wanted_extended_key_usage) the
      stored certificate's issuer (RFC 4514) and extended key usages (for the report's clientAuth finding).
  returned: always
  type: dict
  sample:
    mediant_ha:
      host: mediant_ha
      group: grp_mediant_ha
      leader: mediant_ha
      vendor: audiocodes
      endpoint: sbc1.example.com:5061
      deploy: false
      renew: false
      renewed: false
      why: []
      reasons: []
      msg: "Group grp_mediant_ha: no renewal needed; next renewal point 2027-01-20T10:00:00Z"
      renew_at: "2027-01-20T10:00:00Z"
      installed: 5f1c0e7d0d9a0c2b6a8f3e4d2c1b0a9f8e7d6c5b4a392817161514131211100f
      installed_not_after: "2027-02-28T10:00:00+00:00"
      wanted: 5f1c0e7d0d9a0c2b6a8f3e4d2c1b0a9f8e7d6c5b4a392817161514131211100f
      wanted_not_after: "2027-02-28T10:00:00Z"
      skipped: false
      skip_reason: ""
installed:
  description:
    - What every device that could be read serves now, by host name - C(fingerprint) (null when its members or SIP
      Interfaces disagree), C(not_after), C(names), C(roots) (fingerprints of its trusted roots), C(mutual_auth),
      C(split) and C(split_detail), C(serving) (what a rollback goes back to), C(ha), and for a Ribbon SBC Core pair
      C(versioned), how many of its versioned certificate objects carry O(hosts[].connection.name_prefix) (with two or
      fewer, the bound one and the rollback target, a prune has nothing to remove).
  returned: always
  type: dict
  sample:
    mediant_ha:
      fingerprint: 5f1c0e7d0d9a0c2b6a8f3e4d2c1b0a9f8e7d6c5b4a392817161514131211100f
      not_after: "2027-02-28T10:00:00+00:00"
      names: [sbc1.example.com]
      roots: []
      mutual_auth: true
      split: false
      split_detail: ""
      serving: {index: 1, name: byoc-A}
      ha: Operational
groups:
  description:
    - The decision of every certificate group, by group name - C(renew), C(due), C(backoff), C(reasons), C(msg),
      C(trigger) (C(ari) or C(lifetime)), C(renew_at), C(next_attempt), C(current) (the stored certificate's
      fingerprint and expiry), C(store_revision), and C(decision), the full result of the renewal decision (as
      M(byoc.certificates.certificate_renewal_decision) returns it), for the issuing step.
  returned: always
  type: dict
  sample:
    grp_mediant_ha:
      renew: false
      due: false
      backoff: false
      reasons: []
      msg: "Group grp_mediant_ha: no renewal needed; next renewal point 2027-01-20T10:00:00Z"
      trigger: ari
failed_hosts:
  description: The hosts whose device (or group) could not be read, with what failed, where and what to do.
  returned: always
  type: dict
  sample:
    sbc_edge: "could not read ribbon_edge device sbc_edge at https://10.0.0.12: Cannot reach ..."
lines:
  description: One line per host saying what it gets and why (what the rotation prints as the plan).
  returned: always
  type: list
  elements: str
  sample: ["grp_mediant_ha/mediant_ha (audiocodes, sbc1.example.com:5061): nothing to do; serves 5f1c... until 2027-02-28"]
deploy_hosts:
  description: The hosts whose plan says deploy, in the order given.
  returned: always
  type: list
  elements: str
  sample: []
deploy_groups:
  description: The groups with at least one host to deploy.
  returned: always
  type: list
  elements: str
  sample: []
requests:
  description: What was read - C(devices) (one read each), C(store) (one entry per group), C(ari) (renewalInfo requests).
  returned: always
  type: dict
  sample: {devices: 4, store: 4, ari: 4}
now:
  description: The time the decision used (UTC, ISO 8601).
  returned: always
  type: str
  sample: "2026-11-30T08:00:00Z"
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.byoc.certificates.plugins.module_utils import _fleet_plan
from ansible_collections.byoc.certificates.plugins.module_utils._module import ByocModule
from ansible_collections.byoc.certificates.plugins.module_utils._runner import run_module


def work(module: AnsibleModule) -> dict:
    warnings: list[str] = []
    result = _fleet_plan.run(module.params, check_mode=module.check_mode, warn=warnings.append)
    for w in warnings:
        module.warn(w)
    return result


def main() -> None:
    module = ByocModule(argument_spec=_fleet_plan.ARGUMENT_SPEC, supports_check_mode=True)
    run_module(module, work)


if __name__ == "__main__":
    main()
