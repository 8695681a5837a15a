#!/usr/bin/python
# Copyright (c) 2026, byoc.certificates contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
module: audiocodes_tls_context
short_description: Install a key, certificate and trusted roots in an AudioCodes Mediant TLS context without an outage
version_added: 0.1.0
description:
  - Ensures that the SIP Interfaces and Proxy Sets of an AudioCodes Mediant SBC (REST API C(/api/v1)) use a TLS
    context that holds the given private key, certificate and trusted root certificates, and saves the
    configuration to non-volatile memory.
  - "B(mode=staged) (recommended): the material goes into the context of an A/B pair (O(staging_contexts)) that
    nothing is bound to. It is verified (C(privateKey.valid), the certificate read back by fingerprint, the
    trusted roots, the HA pair still in sync), then the SIP Interfaces and Proxy Sets are re-bound to it in one
    write, then the configuration is saved. A context that serves traffic is never written to, so SIP-TLS never
    stops. The previous context is kept: O(state=rollback) re-binds to it."
  - "B(mode=in_place): the material is written into the context O(context_index). If that context serves
    traffic, it serves no TLS between the key and the certificate write (the device only reports the mismatch in
    C(privateKey.valid)), for seconds or, with HA synchronisation retries, minutes. The module warns when it
    does that."
  - Compares by the SHA-256 fingerprint of the certificate. The private key cannot be read back from the device; it
    counts as installed when the device holds the desired certificate and reports the key as valid
    (C(privateKey.valid)). A second run with the same material changes nothing.
  - All certificate material is checked by the collection's common gate before the device is contacted; the
    same bad input is refused the same way by every module of the collection. Refused are a certificate that
    is a CA, expired or not yet valid; a second leaf; a leaf in O(chain) or O(trusted_roots); private key
    material in a certificate option; intermediates that are not on the path from the leaf; an expired CA
    unless O(allow_expired_ca=true); a key that does not match the certificate.
  - The intermediate certificates go into the context's trusted root store (whether the device accepts a chain in
    its certificate file is not documented), together with O(trusted_roots), for example the Genesys Cloud
    MANAGED CA that signs the Edges' certificates (needed when the SIP Interface has TLS mutual authentication).
  - For an HA pair, talks to the active unit only (the management address); the device replicates the change to
    the redundant unit. While the pair synchronises, the device answers every write with HTTP 409; the module
    retries with a doubling delay and reports every wait in RV(sync_retries) and as a warning.
  - If a run stops half way, the error says what is left where, and running the task again completes it. In
    staged mode a failure before the re-bind leaves everything that serves traffic untouched.
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
  state:
    description:
      - V(present) installs the material (see O(mode)).
      - V(rollback) re-binds O(sip_interfaces) and O(proxy_sets) to the previous context of the
        O(staging_contexts) pair, or to O(rollback_to). It writes no key or certificate, and running it twice
        changes nothing the second time. The material options are not used.
    type: str
    choices: [present, rollback]
    default: present
  mode:
    description:
      - V(staged) stages the material into the member of O(staging_contexts) that nothing is bound to, then
        re-binds. Recommended, and the mode the rotation pipeline uses.
      - V(in_place) writes into O(context_index).
      - Default is V(staged) when O(staging_contexts) is given or O(state=rollback), else V(in_place).
    type: str
    choices: [staged, in_place]
  staging_contexts:
    description:
      - Two TLS context indexes (1 to 99) that form the A/B pair of O(mode=staged). The module creates them when
        they are missing, named O(context_name) with C(-A) and C(-B) appended, and refuses to use an existing
        context of another name.
      - Context 0 cannot be one of them, because it always serves the management interface.
      - If the SIP Interfaces and Proxy Sets are bound to both contexts of the pair, the module refuses to stage
        (both serve traffic) without changing anything.
    type: list
    elements: int
  context_index:
    description:
      - With O(mode=in_place), the index of the TLS context, 0 to 99.
      - Index 0 is the C(default) context, which the management interface (Web and REST API) also uses; writing to
        it needs O(allow_management_context=true), and the management certificate then changes with it.
    type: int
  context_name:
    description:
      - With O(mode=in_place), the name of the TLS context; required to create a missing context. When the context
        exists under another name, the module fails without changing anything, so that a wrong index never
        overwrites another context.
      - With O(mode=staged), the base name of the pair; the contexts are named C(<context_name>-A) and
        C(<context_name>-B). Required.
      - Letters, digits, C(-), C(_), C(.) and inner spaces, at most 31 characters (29 in staged mode); anything
        else, such as non-ASCII letters, is refused before the device is contacted.
    type: str
  allow_management_context:
    description:
      - Allow O(mode=in_place) to write into context 0, which also serves the management interface. The module
        then warns that the management certificate changes too.
    type: bool
    default: false
  rollback_to:
    description:
      - With O(state=rollback), the index of the context to re-bind to, instead of the pair's previous one. It
        must hold a valid key and certificate.
    type: int
  private_key:
    description:
      - The private key in PEM format (PKCS#1, PKCS#8 or SEC1). Sent to the device unencrypted, inside the
        HTTPS connection.
      - Required together with O(certificate).
    type: str
  private_key_passphrase:
    description:
      - Passphrase of O(private_key) when it is encrypted. The key is decrypted on the controller. Given for a key
        that is not encrypted, it is refused.
    type: str
  certificate:
    description:
      - The server (leaf) certificate in PEM format, first, optionally followed by its intermediate CA
        certificates, which are then treated like O(chain).
      - Required together with O(private_key), and with O(mode=staged).
    type: str
  chain:
    description:
      - Intermediate (and optionally root) CA certificates in PEM format, one after another. They are added to the
        context's trusted root store, from which the device completes the chain it sends. Each must be on the
        path from the leaf.
    type: str
  trusted_roots:
    description:
      - Further CA certificates in PEM format that the context must trust, for example the Genesys Cloud MANAGED
        CA. Each item may hold several certificates. A leaf certificate is refused here.
    type: list
    elements: str
    default: []
  allow_expired_ca:
    description:
      - Install expired (or not yet valid) CA certificates from O(certificate), O(chain) and O(trusted_roots)
        instead of refusing them. Each one is reported as a warning.
    type: bool
    default: false
  trusted_roots_mode:
    description:
      - V(present) adds the certificates of O(chain) and O(trusted_roots) that the store lacks and keeps the
        others (for example roots that other SIP peers need). In staged mode, the staged context gets the
        roots of the context that served before plus these.
      - V(exact) makes the store exactly those certificates when it differs. The REST API cannot empty a store,
        so V(exact) with no certificates changes nothing.
    type: str
    choices: [present, exact]
    default: present
  sip_interfaces:
    description:
      - Names of SIP Interfaces whose TLS context must be this one (SIP Interface column C(TLSContext)). Other SIP
        Interfaces are left alone. Bound only after the new material has been verified.
      - With O(mode=staged) or O(state=rollback), at least one SIP Interface or Proxy Set is required.
    type: list
    elements: str
    default: []
  proxy_sets:
    description:
      - Names of Proxy Sets whose TLS context must be this one (Proxy Set column C(TLSContextName)). Bound in the
        same write as O(sip_interfaces).
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
        fails. This bounds the wait.
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
    only the columns being set. No device reset is needed for that. The SIP Interfaces and Proxy Sets are re-bound
    in one such write.
  - Existing TLS connections may keep the old certificate until they are re-established.
seealso:
  - module: byoc.certificates.audiocodes_tls_context_info
"""

EXAMPLES = r"""
- name: Install the renewed SBC certificate without an outage (staged into the free context of the pair 1/2)
  byoc.certificates.audiocodes_tls_context:
    api_url: https://sbc1.example.com/api/v1
    ca_path: /etc/ssl/sbc1-management.pem
    staging_contexts: [1, 2]
    context_name: BYOC
    private_key: "{{ lookup('file', 'sbc1.key') }}"
    certificate: "{{ lookup('file', 'sbc1.crt') }}"
    chain: "{{ lookup('file', 'intermediate.pem') }}"
    trusted_roots:
      - "{{ genesys_managed_ca_pem }}"
    sip_interfaces:
      - SIPInterface_0
    proxy_sets:
      - GenesysEdges
    require_ha: true
  environment:
    AUDIOCODES_USERNAME: "{{ vault_sbc_user }}"
    AUDIOCODES_PASSWORD: "{{ vault_sbc_password }}"
  register: sbc1_install

- name: Roll back to the previous certificate (a re-bind; running it again changes nothing)
  byoc.certificates.audiocodes_tls_context:
    api_url: https://sbc1.example.com/api/v1
    ca_path: /etc/ssl/sbc1-management.pem
    state: rollback
    staging_contexts: [1, 2]
    context_name: BYOC
    sip_interfaces:
      - SIPInterface_0
    proxy_sets:
      - GenesysEdges
  when: verification_failed | default(false)

- name: Only add a trusted root to an existing context (in place; roots do not interrupt TLS)
  byoc.certificates.audiocodes_tls_context:
    host: 192.0.2.10
    username: Admin
    password: "{{ vault_sbc_password }}"
    ca_path: /etc/ssl/sbc-ca.pem
    mode: in_place
    context_index: 1
    trusted_roots:
      - "{{ lookup('file', 'genesys-managed-ca.pem') }}"
"""

RETURN = r"""
mode:
  description: How the run worked, V(staged), V(in_place) or V(rollback).
  returned: always
  type: str
  sample: staged
actions:
  description: What was done (or, in check mode, would be done), in order.
  returned: always
  type: list
  elements: str
  sample: ["upload private key to context 2", "upload certificate 3f5c... to context 2",
           "bind SIP Interface 'SIPInterface_0' to TLS context 'BYOC-B' (one write)",
           "save the configuration (saveConfiguration)"]
context:
  description: The TLS context that holds the material and is bound after the run (in staged mode the one that
    was staged into or already held it; with O(state=rollback) the one re-bound to).
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
serving_before:
  description: The contexts that the given SIP Interfaces and Proxy Sets used before the run.
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
      description: Fingerprint, subject and end of validity of its certificate (null if none).
      type: dict
previous:
  description:
    - What a O(state=rollback) run would re-bind to after this run (the other context of the pair, holding the
      older usable certificate); null when there is nothing to go back to. Returned on every run, also when
      nothing changed and when the run failed.
  returned: always
  type: dict
  contains:
    index:
      description: Context index.
      type: int
    name:
      description: Context name.
      type: str
    certificate:
      description: Fingerprint, subject and end of validity of its certificate.
      type: dict
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
        state={"type": "str", "choices": ["present", "rollback"], "default": "present"},
        mode={"type": "str", "choices": ["staged", "in_place"]},
        staging_contexts={"type": "list", "elements": "int"},
        context_index={"type": "int"},
        context_name={"type": "str"},
        allow_management_context={"type": "bool", "default": False},
        rollback_to={"type": "int"},
        private_key={"type": "str", "no_log": True},
        private_key_passphrase={"type": "str", "no_log": True},
        certificate={"type": "str"},
        chain={"type": "str"},
        trusted_roots={"type": "list", "elements": "str", "default": []},
        allow_expired_ca={"type": "bool", "default": False},
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
