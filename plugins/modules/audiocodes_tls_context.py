#!/usr/bin/python
# Copyright (c) 2026, byoc.certificates contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
module: audiocodes_tls_context
short_description: Install a key, certificate and trusted roots in an AudioCodes Mediant TLS context
version_added: 0.1.0
description:
  - Ensures that a TLS context of an AudioCodes Mediant SBC (REST API C(/api/v1)) holds the given private key,
    certificate and trusted root certificates, creates the context if it is missing, optionally binds it to SIP
    Interfaces and Proxy Sets, and saves the configuration to non-volatile memory.
  - Compares by the SHA-256 fingerprint of the certificate. The private key cannot be read back from the device; it
    counts as installed when the device holds the desired certificate and reports the key as valid
    (C(privateKey.valid)).
  - Before uploading, checks that the key matches the certificate; a mismatch is refused before the device is
    contacted. After uploading, checks that C(privateKey.valid) is true and that the certificate reads back.
  - The intermediate certificates go into the context's trusted root store (whether the device accepts a chain in
    its certificate file is not documented), together with O(trusted_roots), for example the Genesys Cloud
    MANAGED CA that signs the Edges' certificates.
  - For an HA pair, talks to the active unit only (the management address); the device replicates the change to
    the redundant unit. While the pair synchronises, the device answers every write with HTTP 409; the module
    retries with a doubling delay and reports every wait in RV(sync_retries) and as a warning.
  - Writes happen in the order key, certificate, trusted roots, verification, bindings, save. If a run stops half
    way, running the task again completes it.
author:
  - byoc.certificates contributors (!UNKNOWN)
extends_documentation_fragment:
  - byoc.certificates._audiocodes
  - byoc.certificates._attributes.ACTIONGROUP_AUDIOCODES
  - byoc.certificates._attributes
attributes:
  check_mode:
    support: full
  diff_mode:
    support: full
    details:
      - The diff shows fingerprints and subjects, never key material.
  idempotent:
    support: full
options:
  context_index:
    description:
      - Index of the TLS context, 0 to 99. Index 0 is the C(default) context, which the management interface also
        uses.
    type: int
    required: true
  context_name:
    description:
      - Name of the TLS context. Required to create a missing context.
      - When the context exists under another name, the module fails without changing anything, so that a wrong
        index never overwrites another context.
    type: str
  private_key:
    description:
      - The private key in PEM format (PKCS#1, PKCS#8 or SEC1). Sent to the device unencrypted, inside the
        HTTPS connection.
      - Required together with O(certificate).
    type: str
  private_key_passphrase:
    description:
      - Passphrase of O(private_key) when it is encrypted. The key is decrypted on the controller.
    type: str
  certificate:
    description:
      - The server certificate in PEM format. It may be followed by its intermediate certificates, which are then
        treated like O(chain).
      - Required together with O(private_key).
    type: str
  chain:
    description:
      - Intermediate (and optionally root) CA certificates in PEM format, one after another. They are added to the
        context's trusted root store, from which the device completes the chain it sends.
    type: str
  trusted_roots:
    description:
      - Further CA certificates in PEM format that the context must trust, for example the Genesys Cloud MANAGED
        CA. Each item may hold several certificates.
    type: list
    elements: str
    default: []
  trusted_roots_mode:
    description:
      - V(present) adds the certificates of O(chain) and O(trusted_roots) that the store lacks and keeps the
        others (for example roots that other SIP peers need).
      - V(exact) replaces the whole store with exactly those certificates when it differs. The REST API cannot
        empty a store, so V(exact) with no certificates changes nothing.
    type: str
    choices: [present, exact]
    default: present
  sip_interfaces:
    description:
      - Names of SIP Interfaces whose TLS context must be this one (SIP Interface column C(TLSContext)). Other SIP
        Interfaces are left alone. Bound only after the new material has been verified.
    type: list
    elements: str
    default: []
  proxy_sets:
    description:
      - Names of Proxy Sets whose TLS context must be this one (Proxy Set column C(TLSContextName)).
    type: list
    elements: str
    default: []
  save:
    description:
      - Save the configuration (C(actions/saveConfiguration)) after a change, and also when the device reports
        unsaved changes. Without a save, a reset or an HA switchover loses the change.
    type: bool
    default: true
  require_ha:
    description:
      - Fail without writing anything unless the device reports C(highAvailability) as C(Operational), that is, an
        HA pair whose redundant unit is up and will receive the change.
    type: bool
    default: false
  sync_retries:
    description:
      - How many times a write answered with HTTP 409 (HA synchronisation in progress) is retried before the module
        fails.
    type: int
    default: 10
  sync_delay:
    description:
      - Seconds to wait before the first retry after HTTP 409; each further retry waits twice as long, at most 60
        seconds.
    type: float
    default: 5
notes:
  - Creating a context and binding it use C(PUT /api/v1/files/ini/incremental) with a C(FORMAT) line that lists
    only the columns being set. No device reset is needed for that.
  - Existing TLS connections may keep the old certificate until they are re-established.
seealso:
  - module: byoc.certificates.audiocodes_tls_context_info
"""

EXAMPLES = r"""
- name: Install the renewed SBC certificate and trust the Genesys Cloud managed CA
  byoc.certificates.audiocodes_tls_context:
    api_url: https://sbc1.example.com/api/v1
    ca_path: /etc/ssl/sbc1-management.pem
    context_index: 1
    context_name: BYOC
    private_key: "{{ lookup('file', 'sbc1.key') }}"
    certificate: "{{ lookup('file', 'sbc1.crt') }}"
    chain: "{{ lookup('file', 'intermediate.pem') }}"
    trusted_roots:
      - "{{ genesys_managed_ca_pem }}"
    sip_interfaces:
      - SIPInterface_0
    require_ha: true
  environment:
    AUDIOCODES_USERNAME: "{{ vault_sbc_user }}"
    AUDIOCODES_PASSWORD: "{{ vault_sbc_password }}"

- name: Only add a trusted root to an existing context
  byoc.certificates.audiocodes_tls_context:
    host: 192.0.2.10
    username: Admin
    password: "{{ vault_sbc_password }}"
    ca_path: /etc/ssl/sbc-ca.pem
    context_index: 1
    trusted_roots:
      - "{{ lookup('file', 'genesys-managed-ca.pem') }}"
"""

RETURN = r"""
actions:
  description: What was done (or, in check mode, would be done), in order.
  returned: always
  type: list
  elements: str
  sample: ["upload private key to context 1", "upload certificate 3f5c...", "save the configuration (saveConfiguration)"]
context:
  description: The TLS context.
  returned: always
  type: dict
  contains:
    index:
      description: Its index.
      type: int
    name:
      description: Its name.
      type: str
    created:
      description: Whether the module created it (or would, in check mode).
      type: bool
certificate:
  description: The certificate the context holds after the run (details, no key material); null when it holds none.
  returned: always
  type: dict
  contains:
    subject:
      description: Subject DN.
      type: str
    issuer:
      description: Issuer DN.
      type: str
    subject_alt_names:
      description: Subject alternative names, as C(DNS:...) and C(IP:...).
      type: list
      elements: str
    serial_number:
      description: Serial number in hex.
      type: str
    not_before:
      description: Start of validity (ISO 8601).
      type: str
    not_after:
      description: End of validity (ISO 8601).
      type: str
    fingerprint_sha256:
      description: SHA-256 of the DER encoding, lower-case hex.
      type: str
    public_key:
      description: Key type and size, for example C(RSA 2048).
      type: str
    is_ca:
      description: Whether it is a CA certificate.
      type: bool
private_key_valid:
  description: Whether the device reports the key as matching the certificate (C(privateKey.valid)).
  returned: always
  type: bool
trusted_roots:
  description: The trusted root store after the run.
  returned: always
  type: list
  elements: dict
  contains:
    fingerprint_sha256:
      description: SHA-256 fingerprint.
      type: str
    subject:
      description: Subject DN.
      type: str
    not_after:
      description: End of validity.
      type: str
high_availability:
  description: The device's C(highAvailability) status (C(Operational) for a working HA pair).
  returned: always
  type: str
  sample: Operational
saved:
  description: Whether the configuration was saved in this run.
  returned: always
  type: bool
save_needed:
  description: Whether the device still has unsaved changes after the run.
  returned: always
  type: bool
reset_needed:
  description: Whether the device reports that a reset is needed.
  returned: always
  type: bool
sync_retries:
  description: Every wait caused by HTTP 409 (HA synchronisation in progress), in order.
  returned: always
  type: list
  elements: dict
  contains:
    request:
      description: The request that was refused.
      type: str
    attempt:
      description: The retry number.
      type: int
    waited_seconds:
      description: How long the module waited before retrying.
      type: float
    device_said:
      description: The device's description of the refusal.
      type: str
"""


from ansible_collections.byoc.certificates.plugins.module_utils._audiocodes.client import (
    CONNECTION_MUTUALLY_EXCLUSIVE,
    CONNECTION_REQUIRED_ONE_OF,
    connection_argument_spec,
)
from ansible_collections.byoc.certificates.plugins.module_utils._audiocodes.tls_context import ensure
from ansible_collections.byoc.certificates.plugins.module_utils._module import ByocModule
from ansible_collections.byoc.certificates.plugins.module_utils._runner import run_module


def argument_spec() -> dict:
    spec = connection_argument_spec()
    spec.update(
        context_index={"type": "int", "required": True},
        context_name={"type": "str"},
        private_key={"type": "str", "no_log": True},
        private_key_passphrase={"type": "str", "no_log": True},
        certificate={"type": "str"},
        chain={"type": "str"},
        trusted_roots={"type": "list", "elements": "str", "default": []},
        trusted_roots_mode={"type": "str", "choices": ["present", "exact"], "default": "present"},
        sip_interfaces={"type": "list", "elements": "str", "default": []},
        proxy_sets={"type": "list", "elements": "str", "default": []},
        save={"type": "bool", "default": True},
        require_ha={"type": "bool", "default": False},
        sync_retries={"type": "int", "default": 10},
        sync_delay={"type": "float", "default": 5},
    )
    return spec


def main() -> None:
    module = ByocModule(
        argument_spec=argument_spec(),
        supports_check_mode=True,
        mutually_exclusive=CONNECTION_MUTUALLY_EXCLUSIVE,
        required_one_of=CONNECTION_REQUIRED_ONE_OF,
        required_together=[("private_key", "certificate")],
    )
    run_module(module, ensure)


if __name__ == "__main__":
    main()
