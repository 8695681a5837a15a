#!/usr/bin/python
# Copyright (c) 2026, byoc.certificates contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
module: genesys_edge_certificate
short_description: Manage REMOTE certificate authorities in the Genesys Cloud Edge trust store
version_added: 0.1.0
description:
  - Makes the CA certificates that issue your SBCs' SIP-TLS certificates trusted by the Genesys Cloud Edges
    (BYOC Premises), or removes them.
  - A PEM chain becomes one REMOTE certificate authority per CA certificate. Entries are found by the SHA-256
    fingerprint of their certificate, never by name or PEM text, so the module is idempotent.
  - Only REMOTE entries are ever changed. The org's MANAGED CA (maintained by Genesys) is never touched; aiming
    O(state=absent) at it fails with a clear message before anything is changed.
  - Add the new CA before an SBC serves a certificate that chains to it; remove the old one only after every trunk
    is connected again (see M(byoc.certificates.genesys_trunk_info)). Deleting and re-adding an entry gives it a new id.
  - Uses the official Genesys Cloud Python SDK.
author:
  - byoc.certificates contributors (!UNKNOWN)
extends_documentation_fragment:
  - byoc.certificates._genesys
  - byoc.certificates._attributes.ACTIONGROUP_GENESYS
  - byoc.certificates._attributes
attributes:
  check_mode:
    support: full
  diff_mode:
    support: full
  idempotent:
    support: full
options:
  state:
    description:
      - V(present) makes every CA certificate of O(certificate) a REMOTE entry with exactly O(services).
      - V(absent) removes the REMOTE entries holding the certificates of O(certificate) or O(fingerprints).
    type: str
    choices: [present, absent]
    default: present
  certificate:
    description:
      - PEM text of one CA certificate or of a chain (issuing CA, then root).
      - Checked, before any request, by the same rules as every module of the collection that takes certificates.
        Each certificate must be a CA certificate (basicConstraints CA:TRUE, or an old v1 self-signed root). Refused,
        naming this option and the reason - a leaf (end-entity) certificate, because it would become a trust anchor;
        private key material, which is never shown; text that is not PEM; and, with O(state=present), a CA that has
        expired or is not valid yet (see O(allow_expired_ca)).
      - Required with O(state=present). With O(state=absent), this or O(fingerprints); an expired CA can always be
        removed.
    type: str
  allow_expired_ca:
    description:
      - With O(state=present), also add CA certificates that have expired or are not valid yet. Each one is reported
        with a warning.
      - An Edge that trusts only an expired CA cannot connect to an SBC whose certificate it issued, so this is meant
        for keeping an old entry while it is being replaced, not for a new one.
    type: bool
    default: false
  fingerprints:
    description:
      - With O(state=absent), SHA-256 fingerprints (hex, colons allowed) of the CA certificates to remove.
    type: list
    elements: str
  name:
    description:
      - Name of the entry. With a chain, each entry is named C(<name> - <CN of that certificate>).
      - When not set, new entries are named after the certificate's common name, and existing entries keep their
        names.
    type: str
  services:
    description:
      - The services the Edges may use this CA for. The documented UI choice for SIP trunks is V(SIP).
      - An existing entry whose services differ is updated in place (same id), with the version check Genesys
        Cloud applies; a version conflict is resolved by reading again and retrying.
    type: list
    elements: str
    default: [SIP]
seealso:
  - module: byoc.certificates.genesys_edge_certificate_info
  - module: byoc.certificates.genesys_trunk_info
"""

EXAMPLES = r"""
- name: Trust the CA chain that issues the SBC certificates (credentials from the environment)
  byoc.certificates.genesys_edge_certificate:
    region: eu_west_1
    certificate: "{{ lookup('ansible.builtin.file', 'pki/sbc-issuing-chain.pem') }}"
    name: SBC issuing CA 2027

- name: Remove the previous CA after the rotation, by fingerprint
  byoc.certificates.genesys_edge_certificate:
    region: eu_west_1
    state: absent
    fingerprints:
      - "3f:9a:...:c1"

- name: Use module_defaults for the connection
  module_defaults:
    group/byoc.certificates.genesys:
      region: "{{ genesys_region }}"
      client_id: "{{ genesys_client_id }}"
      client_secret: "{{ genesys_client_secret }}"
  block:
    - name: Preview what would change
      byoc.certificates.genesys_edge_certificate:
        certificate: "{{ new_ca_chain }}"
      check_mode: true
      diff: true
"""

RETURN = r"""
authorities:
  description: One item per CA certificate asked for, with what was (or, in check mode, would be) done.
  returned: always
  type: list
  elements: dict
  contains:
    action:
      description: V(create), V(update), V(delete) or V(none).
      type: str
      sample: create
    id:
      description: Id of the entry (absent for an entry created in check mode).
      type: str
      sample: 3b0c1b9e-4e0b-4b3e-9d38-8f0a2f7b9e11
    name:
      description: Name of the entry.
      type: str
      sample: BYOC SBC issuing CA
    fingerprint:
      description: SHA-256 fingerprint of the certificate (lowercase hex).
      type: str
      sample: 5e1f0d0b8d3d6c9c6a8e8f6a0e8d2c7b4b1f3a2d9c8e7f6a5b4c3d2e1f0a9b8c
    services:
      description: Services of the entry after the change.
      type: list
      elements: str
      sample: [SIP]
    subject:
      description: Subject of the certificate (when known from O(certificate)).
      type: str
      sample: CN=BYOC SBC issuing CA,O=Example
    not_after:
      description: Expiry of the certificate (when known from O(certificate)).
      type: str
      sample: "2030-01-01T00:00:00+00:00"
diff:
  description: Before and after of the REMOTE entries, keyed by fingerprint (only with C(--diff)).
  returned: when diff mode is on
  type: dict
  sample:
    before: {remote_certificate_authorities: {}}
    after: {remote_certificate_authorities: {"5e1f...9b8c": {name: BYOC SBC issuing CA, services: [SIP]}}}
api:
  description: What the run cost against the API.
  returned: always
  type: dict
  contains:
    requests:
      description: HTTP requests sent, retries included.
      type: int
      sample: 2
    tokens_minted:
      description: OAuth tokens minted by this task (0 when a cached token was used).
      type: int
      sample: 0
    rate_limit_waits:
      description: Seconds waited for each HTTP 429.
      type: list
      elements: float
      sample: []
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.byoc.certificates.plugins.module_utils._errors import InputError, NotFound
from ansible_collections.byoc.certificates.plugins.module_utils._genesys import trust
from ansible_collections.byoc.certificates.plugins.module_utils._genesys.client import load_sdk
from ansible_collections.byoc.certificates.plugins.module_utils._genesys.common import (
    check_connection_params,
    client_from_params,
    connection_argument_spec,
    stats,
)
from ansible_collections.byoc.certificates.plugins.module_utils._module import ByocModule
from ansible_collections.byoc.certificates.plugins.module_utils._runner import run_module

API = "TelephonyProvidersEdgeApi"


def work(module: AnsibleModule) -> dict:
    p = module.params
    # 1. Input, before anything is touched.
    services = trust.check_services(p["services"])
    desired: list[dict] = []
    remove: list[str] = []
    warnings: list[str] = []
    if p["state"] == "present":
        if not p["certificate"]:
            raise InputError("certificate", "required with state=present (PEM of the CA certificate or chain)")
        if p["fingerprints"]:
            raise InputError("fingerprints", "only used with state=absent")
        desired = trust.desired_authorities(p["certificate"], "certificate", p["name"], services,
                                            allow_expired=p["allow_expired_ca"], warnings=warnings)
    else:
        if p["certificate"]:
            # Removing an expired CA is what a clean-up does: allowed without a warning.
            remove = [d["fingerprint"] for d in trust.desired_authorities(p["certificate"], "certificate", None,
                                                                          services, allow_expired=True)]
        remove += [trust.normalize_fingerprint(f, "fingerprints") for f in p["fingerprints"] or []]
        if not remove:
            raise InputError("certificate", "state=absent needs certificate or fingerprints to know what to remove")
    field = "certificate" if p["certificate"] else "fingerprints"
    api_url = check_connection_params(p)
    for warning in warnings:
        module.warn(warning)

    # 2. Read.
    client = client_from_params(p, api_url)
    listing = client.call(API, "get_telephony_providers_edges_certificateauthorities")
    existing = [trust.summarize(client.to_wire(ca)) for ca in listing.entities or []]

    # 3. Compare by fingerprint.
    if p["state"] == "present":
        actions = trust.plan_present(existing, desired, name_given=bool(p["name"]))
        for act in actions:
            if act.get("note"):
                module.warn(f"{act['fingerprint']}: {act['note']}; left as it is.")
    else:
        actions = trust.plan_absent(existing, remove, field)
    changed = any(a["action"] != "none" for a in actions)

    # 4. Write only what differs.
    if changed and not module.check_mode:
        for act in actions:
            apply_action(client, act)

    result = {"changed": changed, "authorities": [trust.public(a) for a in actions], "api": stats(client)}
    if module._diff:
        result["diff"] = {"before": trust.diff_view(existing), "after": trust.diff_view(trust.apply_to(existing, actions))}
    return result


def apply_action(client, act: dict) -> None:
    models = load_sdk()["sdk"]
    if act["action"] == "create":
        body = models.DomainCertificateAuthority()
        body.name = act["name"]
        body.certificate = act["certificate"]
        body.type = "REMOTE"
        body.services = act["services"]
        created = client.call(API, "post_telephony_providers_edges_certificateauthorities", body)
        act["id"] = created.id
    elif act["action"] == "update":
        def read():
            return client.call(API, "get_telephony_providers_edges_certificateauthority", act["id"])

        def write(current):
            current.name = act["name"]
            current.services = act["services"]
            return client.call(API, "put_telephony_providers_edges_certificateauthority", act["id"], current)

        client.update_with_retry(read, write)
    elif act["action"] == "delete":
        try:
            client.call(API, "delete_telephony_providers_edges_certificateauthority", act["id"])
        except NotFound:
            pass  # already gone: the desired state is reached


def argument_spec() -> dict:
    spec = connection_argument_spec()
    spec.update(
        state={"type": "str", "choices": ["present", "absent"], "default": "present"},
        certificate={"type": "str"},
        fingerprints={"type": "list", "elements": "str"},
        name={"type": "str"},
        services={"type": "list", "elements": "str", "default": list(trust.DEFAULT_SERVICES)},
        allow_expired_ca={"type": "bool", "default": False},
    )
    return spec


def main() -> None:
    module = ByocModule(argument_spec=argument_spec(), supports_check_mode=True)
    run_module(module, work)


if __name__ == "__main__":
    main()
