#!/usr/bin/python
# Copyright (c) 2026, byoc.certificates contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
module: audiocodes_tls_context_info
short_description: Read the TLS contexts, HA state and save state of an AudioCodes Mediant
version_added: 0.1.0
description:
  - Reads the TLS contexts of an AudioCodes Mediant SBC over its REST API (C(/api/v1)) - the installed
    certificate's details, whether the private key is valid, the trusted root certificates, and which SIP
    Interfaces and Proxy Sets use each context - plus the device's HA state, whether a save or a reset is needed,
    and its active alarms.
  - The private key itself can never be read from the device; only its size and validity are returned.
author:
  - byoc.certificates contributors (!UNKNOWN)
extends_documentation_fragment:
  - byoc.certificates._audiocodes
  - byoc.certificates._attributes.ACTIONGROUP_AUDIOCODES
  - byoc.certificates._attributes
  - byoc.certificates._attributes.info_module
options:
  context_index:
    description:
      - Only return this TLS context (0 to 99). All contexts when not set.
      - A context index that does not exist on the device gives an empty RV(contexts).
    type: int
notes:
  - The device requires the Administrator privilege level for C(/files), so a Monitor user cannot read TLS
    contexts.
seealso:
  - module: byoc.certificates.audiocodes_tls_context
"""

EXAMPLES = r"""
- name: Read TLS context 1
  byoc.certificates.audiocodes_tls_context_info:
    api_url: https://sbc1.example.com/api/v1
    ca_path: /etc/ssl/sbc1-management.pem
    context_index: 1
  register: sbc1

- name: Fail when the certificate expires within 30 days
  ansible.builtin.assert:
    that:
      - (sbc1.contexts[0].certificate.not_after | to_datetime('%Y-%m-%dT%H:%M:%S%z')
         - now(utc=true)).days > 30
"""

RETURN = r"""
contexts:
  description: The TLS contexts, by index.
  returned: always
  type: list
  elements: dict
  contains:
    index:
      description: Context index.
      type: int
    name:
      description: Context name.
      type: str
    certificate:
      description: The installed certificate; null when none is loaded.
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
          description: Key type and size.
          type: str
        is_ca:
          description: Whether it is a CA certificate.
          type: bool
    private_key:
      description: The device's view of the private key (C(privateKey)); never the key.
      type: dict
      contains:
        size:
          description: Key size in bits (0 when none is loaded).
          type: int
        valid:
          description: Whether the key matches the certificate.
          type: bool
    trusted_roots:
      description: The trusted root store, with the same keys as RV(contexts[].certificate).
      type: list
      elements: dict
    sip_interfaces:
      description: SIP Interfaces that use this context (for context 0, also those that name no context).
      type: list
      elements: str
    proxy_sets:
      description: Proxy Sets that use this context.
      type: list
      elements: str
sip_interfaces:
  description:
    - Every SIP Interface, with the TLS context it uses and its TLS mutual authentication setting (column
      C(TLSMutualAuthentication)). With mutual authentication on, the device verifies the peer's client
      certificate (for a Genesys Edge, signed by the org's MANAGED CA) against that context's trusted roots.
  returned: always
  type: list
  elements: dict
  contains:
    name:
      description: The SIP Interface's name.
      type: str
    tls_context:
      description: The name of the TLS context it uses (C(default) when none is set).
      type: str
    mutual_authentication:
      description: The C(TLSMutualAuthentication) value as the device reports it (C(1) on, C(0) off); null when
        the device's INI file has no such column.
      type: int
status:
  description: Device status.
  returned: always
  type: dict
  contains:
    high_availability:
      description: C(Operational) for a working HA pair, C(Not Operational) otherwise.
      type: str
    ha_operational:
      description: Whether RV(status.high_availability) is C(Operational).
      type: bool
    save_needed:
      description: Whether the running configuration has unsaved changes.
      type: bool
    reset_needed:
      description: Whether a reset is needed for changes to take effect.
      type: bool
    product_type:
      description: Product type.
      type: str
    version:
      description: Firmware version.
      type: str
    serial_number:
      description: Serial number.
      type: str
    operational_state:
      description: C(UNLOCKED) or C(LOCKED).
      type: str
alarms:
  description: Active alarms (empty when there are none).
  returned: always
  type: list
  elements: dict
  contains:
    id:
      description: Alarm id.
      type: str
    description:
      description: Alarm text.
      type: str
"""


from ansible_collections.byoc.certificates.plugins.module_utils._audiocodes.client import (
    CONNECTION_MUTUALLY_EXCLUSIVE,
    CONNECTION_REQUIRED_ONE_OF,
    connection_argument_spec,
)
from ansible_collections.byoc.certificates.plugins.module_utils._audiocodes.tls_context import info
from ansible_collections.byoc.certificates.plugins.module_utils._module import ByocModule
from ansible_collections.byoc.certificates.plugins.module_utils._runner import run_module


def argument_spec() -> dict:
    spec = connection_argument_spec()
    spec.update(context_index={"type": "int"})
    return spec


def main() -> None:
    module = ByocModule(
        argument_spec=argument_spec(),
        supports_check_mode=True,
        mutually_exclusive=CONNECTION_MUTUALLY_EXCLUSIVE,
        required_one_of=CONNECTION_REQUIRED_ONE_OF,
    )
    run_module(module, info)


if __name__ == "__main__":
    main()
