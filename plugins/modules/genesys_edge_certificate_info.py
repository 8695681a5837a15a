#!/usr/bin/python
# Copyright (c) 2026, byoc.certificates contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
module: genesys_edge_certificate_info
short_description: List the certificate authorities of the Genesys Cloud Edge trust store
version_added: 0.1.0
description:
  - Lists the org's certificate authorities (BYOC Premises), that is the REMOTE ones you manage and the MANAGED one
    that Genesys maintains.
  - Returns the MANAGED CA's PEM, which every SBC must have in its trusted roots to accept the Edges' certificates.
  - Uses the official Genesys Cloud Python SDK.
author:
  - byoc.certificates contributors (!UNKNOWN)
extends_documentation_fragment:
  - byoc.certificates._genesys
  - byoc.certificates._attributes.ACTIONGROUP_GENESYS
  - byoc.certificates._attributes
  - byoc.certificates._attributes.info_module
options:
  type:
    description:
      - Only return entries of this type.
    type: str
    choices: [all, MANAGED, REMOTE]
    default: all
  fingerprint:
    description:
      - Only return entries whose PEM holds the certificate with this SHA-256 fingerprint (hex, colons allowed).
    type: str
seealso:
  - module: byoc.certificates.genesys_edge_certificate
"""

EXAMPLES = r"""
- name: Read the trust store
  byoc.certificates.genesys_edge_certificate_info:
    region: eu_west_1
  register: trust_store

- name: Give the MANAGED CA to the SBCs' trusted roots
  ansible.builtin.copy:
    content: "{{ trust_store.managed_ca.certificate }}"
    dest: files/genesys-managed-ca.pem
    mode: "0644"
"""

RETURN = r"""
authorities:
  description: The certificate authorities (filtered by O(type) and O(fingerprint)).
  returned: always
  type: list
  elements: dict
  contains:
    id:
      description: Id of the entry.
      type: str
      sample: 3b0c1b9e-4e0b-4b3e-9d38-8f0a2f7b9e11
    name:
      description: Name of the entry.
      type: str
      sample: BYOC SBC issuing CA
    type:
      description: V(MANAGED) or V(REMOTE).
      type: str
      sample: REMOTE
    services:
      description: Services the entry is used for.
      type: list
      elements: str
      sample: [SIP]
    version:
      description: Version of the entry (changes on every update).
      type: int
      sample: 1
    state:
      description: State of the entry.
      type: str
      sample: active
    fingerprint:
      description: SHA-256 fingerprint of the (first) certificate in the entry.
      type: str
      sample: 5e1f0d0b8d3d6c9c6a8e8f6a0e8d2c7b4b1f3a2d9c8e7f6a5b4c3d2e1f0a9b8c
    fingerprints:
      description: SHA-256 fingerprints of every certificate in the entry (an entry may hold a chain).
      type: list
      elements: str
      sample: [5e1f0d0b8d3d6c9c6a8e8f6a0e8d2c7b4b1f3a2d9c8e7f6a5b4c3d2e1f0a9b8c]
    subjects:
      description: Subjects as parsed by Genesys Cloud.
      type: list
      elements: str
      sample: [CN=BYOC SBC issuing CA,O=Example]
    expiration_dates:
      description: Expiry dates as parsed by Genesys Cloud.
      type: list
      elements: str
      sample: ["2030-01-01T00:00:00+00:00"]
    certificates:
      description:
        - Every certificate in the entry's PEM as parsed by this module - C(fingerprint), C(subject), C(issuer)
          (RFC 4514, as M(byoc.certificates.tls_endpoint_info) gives a leaf's issuer) and C(not_after). A report
          walks a leaf's chain through the org's CAs with them.
      type: list
      elements: dict
      sample: [{fingerprint: 5e1f..., subject: "CN=E5,O=Let's Encrypt,C=US", issuer: "CN=ISRG Root X2,O=ISRG,C=US",
                not_after: "2027-03-12T23:59:59+00:00"}]
    certificate:
      description: The PEM of the entry (public CA certificates).
      type: str
      sample: "-----BEGIN CERTIFICATE-----..."
managed_ca:
  description: The org's MANAGED CA, with the same keys as an item of RV(authorities); C(null) if the org has none.
  returned: always
  type: dict
  sample: {id: 0c4..., name: Managed CA, type: MANAGED, certificate: "-----BEGIN CERTIFICATE-----..."}
api:
  description: What the run cost against the API.
  returned: always
  type: dict
  contains:
    requests:
      description: HTTP requests sent, retries included.
      type: int
      sample: 1
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

from ansible_collections.byoc.certificates.plugins.module_utils._genesys import trust
from ansible_collections.byoc.certificates.plugins.module_utils._genesys.common import (
    check_connection_params,
    client_from_params,
    connection_argument_spec,
    stats,
)
from ansible_collections.byoc.certificates.plugins.module_utils._module import ByocModule
from ansible_collections.byoc.certificates.plugins.module_utils._runner import run_module


def work(module: AnsibleModule) -> dict:
    p = module.params
    fp = trust.normalize_fingerprint(p["fingerprint"], "fingerprint") if p["fingerprint"] else None
    api_url = check_connection_params(p)
    client = client_from_params(p, api_url)
    listing = client.call("TelephonyProvidersEdgeApi", "get_telephony_providers_edges_certificateauthorities")
    entries = [trust.summarize(client.to_wire(ca)) for ca in listing.entities or []]
    managed = next((e for e in entries if e["type"] == "MANAGED"), None)
    chosen = [e for e in entries if (p["type"] == "all" or e["type"] == p["type"])
              and (fp is None or fp in e["fingerprints"])]
    return {"changed": False, "authorities": chosen, "managed_ca": managed, "api": stats(client)}


def argument_spec() -> dict:
    spec = connection_argument_spec()
    spec.update(
        type={"type": "str", "choices": ["all", "MANAGED", "REMOTE"], "default": "all"},
        fingerprint={"type": "str"},
    )
    return spec


def main() -> None:
    module = ByocModule(argument_spec=argument_spec(), supports_check_mode=True)
    run_module(module, work)


if __name__ == "__main__":
    main()
