#!/usr/bin/python
# Copyright (c) 2026, byoc.certificates contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
module: ribbon_certificate
short_description: Install, rotate and roll back the SIP-TLS certificate of a Ribbon SBC Core or SBC Edge
version_added: 0.1.0
description:
  - B(SBC Core) (O(platform=core)) builds a PKCS#12 (key, certificate and chain) protected with
    O(pkcs12_passphrase), uploads it over SFTP to C(/opt/sonus/external) on B(every) node of the HA pair, installs
    the CA certificates as C(remote) PKI objects, installs the PKCS#12 as a C(local) PKI object under a new
    versioned name (V(<name_prefix>-<notAfter YYYYMMDD>-<first 8 hex of the SHA-256 fingerprint>)), and re-points
    the TLS profile's C(serverCertName) to it. The object that was bound before is kept for rollback. With
    O(retain) set, older versioned objects beyond it are removed at once (with their files); without it (the
    default) nothing is removed here, and O(state=pruned) removes old objects after O(grace_period). Nothing is
    re-pointed if any node's upload fails.
  - O(state=rollback) re-points the TLS profile at O(rollback_to) or, without it, at the object that was in use
    before the bound one, derived from the device alone (see RV(previous)); a second rollback changes nothing.
    It first checks that the target's file is present on every node.
  - O(state=pruned) (SBC Core) removes this module's versioned C(local) objects older than the bound one and the
    rollback target (current and previous, see RV(previous)), and their files on every node, once the object that
    replaced each has been in place for O(grace_period) days (dated by that object's certificate notBefore, read
    from its file). Never an object any TLS profile points at (server or client certificate), one newer than the
    bound one, one of another prefix, or a C(remote) (CA) object, which the device may need as a trust anchor.
    Check mode shows the verdicts (RV(prune)). An SBC Edge keeps one server certificate (slot 1, replaced by each
    import), so there is nothing to prune there.
  - Every certificate option goes through the collection's one certificate gate before anything is contacted, so
    the same bad input gets the same refusal as from every other module. Refused are an expired or not yet valid
    leaf, a CA certificate where the server certificate belongs, a second leaf, private key material in a
    certificate option, a leaf in O(ca_certificates), intermediates that do not chain to the leaf, and an expired
    CA certificate unless O(allow_expired_ca=true) (then with a warning).
  - Every object and file name the SBC Core will see is checked (ASCII letters, digits, C(_), C(-), C(.) inside,
    no C(..), at most 63 characters) before the first upload. When an upload or a REST call fails half way, the
    files and objects this run wrote are removed again (the PKCS#12 holds the key); what cannot be removed is named
    in the error, file by file and node by node.
  - B(SBC Edge) (O(platform=edge)) imports the CA certificates into trusted CA slots first and the server
    certificate (slot 1) last, one PEM per call. The module checks before importing anything that the server
    certificate chains to a CA that is installed or given, so a wrong order is refused rather than discovered.
    When an import fails before slot 1 was replaced, the CA slots this run filled are emptied again.
  - With O(key_custody=device) the SBC Edge generates the key pair. O(state=csr) returns a CSR made on the box;
    after it is signed (for example by ACME), O(state=present) with the signed O(certificate) imports it. The private
    key never leaves the SBC. With O(key_custody=external) the key and certificate are imported as PKCS#12.
  - Certificates are compared by the SHA-256 fingerprint of their DER encoding, so a converged device is not
    touched.
  - New TLS connections use the new certificate at once; established connections keep the old one until they are
    re-established (Ribbon documents this for SBC Core).
author:
  - byoc.certificates contributors (!UNKNOWN)
extends_documentation_fragment:
  - byoc.certificates._ribbon
  - byoc.certificates._attributes.ACTIONGROUP_RIBBON
  - byoc.certificates._attributes
attributes:
  check_mode:
    support: full
  diff_mode:
    support: full
  idempotent:
    support: partial
    details:
      - O(state=present), O(state=rollback) and O(state=pruned) are idempotent.
      - O(state=csr) generates a new key pair on the SBC every time it runs.
options:
  state:
    description:
      - V(present) installs O(certificate) and binds it.
      - V(rollback) binds the previous certificate again (SBC Core only).
      - V(csr) makes the SBC Edge generate a key pair and a CSR (O(key_custody=device) only).
      - V(pruned) removes old versioned objects and their files after O(grace_period) (SBC Core only).
    type: str
    choices: [present, rollback, csr, pruned]
    default: present
  certificate:
    description:
      - The certificate in PEM, optionally followed by its intermediate CA certificates.
      - The intermediates go into the PKCS#12 and become C(remote) PKI objects (SBC Core), or are imported as trusted
        CAs (SBC Edge).
      - The leaf must come first, be valid now and not be a CA certificate; the certificates after it must be CA
        certificates that chain to it.
    type: str
  private_key:
    description:
      - The private key of O(certificate) in PEM. Required on SBC Core and with O(key_custody=external).
      - Must not be given with O(key_custody=device).
    type: str
  private_key_passphrase:
    description: Passphrase of O(private_key) if it is encrypted.
    type: str
  ca_certificates:
    description:
      - CA certificates (PEM, one or more per item) that must be trusted by the SBC, for example the issuing CA of
        O(certificate) and the Genesys Cloud managed CA.
      - SBC Core installs them as C(remote) PKI objects; SBC Edge imports them into trusted CA slots before the server
        certificate.
      - Every certificate must be a CA certificate (a leaf here would become a trust anchor) and valid now, unless
        O(allow_expired_ca=true).
    type: list
    elements: str
    default: []
  allow_expired_ca:
    description:
      - Install CA certificates (in O(ca_certificates) or after the leaf in O(certificate)) that are expired or not
        yet valid. Each one is named in a warning.
      - An expired or not yet valid leaf is refused regardless.
    type: bool
    default: false
  key_custody:
    description:
      - SBC Edge only. V(external) imports a key and certificate made elsewhere (as PKCS#12).
      - V(device) keeps the key on the SBC; use O(state=csr) first, then O(state=present) with the signed certificate.
    type: str
    choices: [external, device]
    default: external
  csr:
    description: SBC Edge with O(state=csr). What the on-box CSR requests.
    type: dict
    suboptions:
      common_name:
        description: The subject common name.
        type: str
        required: true
      subject_alt_names:
        description: DNS names for the subjectAltName extension.
        type: list
        elements: str
        default: []
      key_bits:
        description: RSA key size generated on the SBC.
        type: int
        choices: [1024, 2048]
        default: 2048
  name_prefix:
    description:
      - SBC Core only. Prefix of the versioned PKI object names this module creates and prunes.
      - 1-40 ASCII letters, digits, C(_), C(-) or C(.) (not first or last, never C(..)).
    type: str
    default: byoc
  client_certificate:
    description: SBC Core only. Also point the profile's C(clientCertName) at the new object.
    type: bool
    default: false
  retain:
    description:
      - SBC Core only. With O(state=present), remove at once the versioned objects beyond this many previous ones
        (the bound object and the one bound before the run are always kept). Not set (the default), O(state=present)
        removes nothing; use O(state=pruned), which waits for O(grace_period).
      - With O(state=pruned), how many more versioned objects older than the rollback target to keep (default 0).
    type: int
  grace_period:
    description:
      - SBC Core only, with O(state=pruned). Days the object that replaced an old object must have been in place
        (its certificate's notBefore) before the old object is removed.
      - The default of 30 days leaves time to notice a bad rotation and roll back by name (O(rollback_to)) past the
        previous object, and outlasts the TLS sessions that keep an old certificate until they reconnect (sbc-apis.md
        B6).
    type: int
    default: 30
  rollback_to:
    description:
      - SBC Core only, with O(state=rollback). The PKI object to bind.
      - Defaults to the object in use before the bound one, as derived from the device (see RV(previous)).
    type: str
  require_ha_sync:
    description:
      - SBC Core only. Refuse to change anything unless C(serverStatus) shows one active and one standby node and
        every C(syncStatus) is C(syncCompleted).
    type: bool
    default: true
seealso:
  - module: byoc.certificates.ribbon_certificate_info
notes:
  - SBC Edge PKCS#12 import over REST uses parameter names that Ribbon does not document publicly; if your firmware
    refuses it, use O(key_custody=device).
"""

EXAMPLES = r"""
- name: Rotate the SIP-TLS certificate on an SBC Core HA pair
  byoc.certificates.ribbon_certificate:
    platform: core
    api_url: https://sbc-core.example.com
    username: admin
    password: "{{ vault_ribbon_password }}"
    nodes:
      - {name: a, host: 192.0.2.11, host_key: "ecdsa-sha2-nistp256 AAAAE2VjZHNh..."}
      - {name: b, host: 192.0.2.12, host_key: "ecdsa-sha2-nistp256 AAAAE2VjZHNh..."}
    sftp_username: admin
    sftp_password: "{{ vault_ribbon_password }}"
    pkcs12_passphrase: "{{ vault_p12_passphrase }}"
    certificate: "{{ lookup('file', 'sbc.fullchain.pem') }}"
    private_key: "{{ lookup('file', 'sbc.key') }}"
    ca_certificates:
      - "{{ lookup('file', 'issuing-ca.pem') }}"
      - "{{ lookup('file', 'genesys-managed-ca.pem') }}"
  register: rotated

- name: Roll back to the object bound before
  byoc.certificates.ribbon_certificate:
    platform: core
    state: rollback
    api_url: https://sbc-core.example.com
    username: admin
    password: "{{ vault_ribbon_password }}"
    rollback_to: "{{ rotated.previous }}"

- name: Roll back without naming the object (the one in use before; running it again changes nothing)
  byoc.certificates.ribbon_certificate:
    platform: core
    state: rollback
    api_url: https://sbc-core.example.com
    username: admin
    password: "{{ vault_ribbon_password }}"

- name: SBC Edge, key kept on the device - step 1, CSR
  byoc.certificates.ribbon_certificate:
    platform: edge
    state: csr
    key_custody: device
    api_url: https://sbc-edge.example.com
    username: restuser
    password: "{{ vault_edge_password }}"
    csr:
      common_name: sbc-edge.example.com
      subject_alt_names: [sbc-edge.example.com]
  register: edge_csr

- name: SBC Edge - step 2, import the signed certificate (CA first)
  byoc.certificates.ribbon_certificate:
    platform: edge
    key_custody: device
    api_url: https://sbc-edge.example.com
    username: restuser
    password: "{{ vault_edge_password }}"
    certificate: "{{ signed_fullchain }}"
    ca_certificates:
      - "{{ lookup('file', 'issuing-root.pem') }}"
"""

RETURN = r"""
platform:
  description: The platform the task ran against.
  returned: always
  type: str
  sample: core
fingerprint:
  description: SHA-256 fingerprint (hex) of the certificate that is (or would be) bound.
  returned: when state=present
  type: str
  sample: 5f1c0a9e...
certificate_name:
  description: SBC Core. The PKI object that is (or would be) bound to the TLS profile.
  returned: platform=core
  type: str
  sample: byoc-20270301-5f1c0a9e
file_name:
  description: SBC Core. The PKCS#12 file name in the SFTP directory.
  returned: platform=core and state=present
  type: str
  sample: byoc-20270301-5f1c0a9e.p12
previous:
  description:
    - With O(state=present), on every run (changed or not, check mode too), what a rollback would go back to.
    - SBC Core, the PKI object that O(state=rollback) without O(rollback_to) binds, derived from the device alone.
      The versioned names sort by the certificate's notAfter date, so it is the next older versioned object when
      the bound one is the newest; when there is no older one, the only other enabled local object (the
      certificate the first install replaced), or null when there is not exactly one. When a newer versioned object
      exists (the profile was rolled back already) or the bound object is not one of O(name_prefix)'s, it is the
      bound object itself (a rollback would change nothing).
    - SBC Edge, the SHA-256 fingerprint of the server certificate that the bound one replaced. The module records it
      in the import's C(CertFileName), so later runs still report it; null when the device does not return that
      name or the certificate was not imported by this module.
    - With O(state=rollback) (SBC Core), the object that was bound before this run; give it as O(rollback_to) to
      roll forward again.
    - With O(state=pruned) (SBC Core), the rollback target, which is never pruned.
  returned: when state is present, rollback or pruned
  type: str
  sample: byoc-20270301-5f1c0a9e
bound_before:
  description: SBC Core. The object O(tls_profile) pointed at before this run.
  returned: platform=core and state in (present, rollback, pruned)
  type: str
  sample: byoc-20261201-0b2d44e1
uploaded_to:
  description: SBC Core. Nodes that received the PKCS#12 (empty when every node already had it).
  returned: platform=core and state=present
  type: list
  elements: str
ca_objects:
  description: SBC Core. Names of the remote PKI objects for O(ca_certificates).
  returned: platform=core and state=present
  type: list
  elements: str
pruned:
  description: SBC Core. Versioned objects removed because of O(retain), or by O(state=pruned) (in check mode, the
    ones that would be).
  returned: platform=core and state in (present, pruned)
  type: list
  elements: str
prune:
  description: SBC Core, O(state=pruned). The verdict on each versioned object of O(name_prefix), newest first.
  returned: platform=core and state=pruned
  type: list
  elements: dict
  contains:
    name:
      description: The PKI object.
      type: str
      sample: byoc-20261201-0b2d44e1
    file_name:
      description: Its file on the nodes.
      type: str
      sample: byoc-20261201-0b2d44e1.p12
    verdict:
      description: V(pruned) (removed, or would be in check mode), V(waiting) (within the grace period), V(in use)
        (bound, or the rollback target), V(kept) (see RV(prune[].why)).
      type: str
      sample: waiting
    why:
      description: The reason, in a sentence.
      type: str
      sample: the rollback target (previous)
    superseded:
      description: With V(waiting) and V(pruned), when the object that replaced it was issued.
      type: str
      sample: "2026-11-01T08:00:00Z"
    prune_after:
      description: With V(waiting), when it may be pruned.
      type: str
      sample: "2026-12-01T08:00:00Z"
cleaned_up:
  description: When a write failed half way, what this run wrote and removed again (SBC Core, files per node and PKI
    objects; SBC Edge, CA slots).
  returned: on failure after the first write
  type: list
  elements: str
left_behind:
  description: When a write failed half way, what this run wrote and could not remove, file by file and node by node
    on SBC Core (remove them by hand; a C(.p12) file holds the private key), slot by slot on SBC Edge.
  returned: on failure after the first write
  type: list
  elements: str
files_present:
  description: SBC Core rollback. Whether the target's file is present, per node.
  returned: platform=core and state=rollback
  type: dict
ha:
  description: SBC Core. The HA state read from C(serverStatus) and C(syncStatus).
  returned: platform=core
  type: dict
  sample: {"active": "a", "in_sync": true, "pair": true, "problems": [], "nodes": [], "sync_modules": []}
ca_imported:
  description: SBC Edge. The CA certificates imported, with their slot ids, in import order.
  returned: platform=edge and state=present
  type: list
  elements: dict
server_replaced:
  description: SBC Edge. Whether certificate 1 was (or would be) replaced.
  returned: platform=edge and state=present
  type: bool
csr:
  description: SBC Edge with O(state=csr). The PEM CSR generated on the SBC (null in check mode).
  returned: state=csr
  type: str
certificate:
  description: Details of the desired certificate (subject, issuer, names, validity, fingerprint); no key material.
  returned: when state=present
  type: dict
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.byoc.certificates.plugins.module_utils._errors import InputError
from ansible_collections.byoc.certificates.plugins.module_utils._ribbon import core, edge
from ansible_collections.byoc.certificates.plugins.module_utils._ribbon.common import (
    check_url,
    connection_argument_spec,
)
from ansible_collections.byoc.certificates.plugins.module_utils._ribbon.credentials import with_platform_credentials
from ansible_collections.byoc.certificates.plugins.module_utils._module import ByocModule
from ansible_collections.byoc.certificates.plugins.module_utils._runner import run_module


def work(module: AnsibleModule) -> dict:
    p = dict(module.params)
    check_url(p)
    if p["platform"] == "core":
        if p["state"] == "csr":
            raise InputError("state", "state=csr is for platform edge with key_custody=device; SBC Core takes a key"
                                      " and certificate made elsewhere")
        if p["key_custody"] == "device":
            raise InputError("key_custody", "key_custody=device is supported on platform edge only")
        if p["state"] == "rollback":
            return core.run_rollback(p, module.check_mode, module._diff)
        if p["state"] == "pruned":
            return core.run_pruned(p, module.check_mode, module._diff)
        return core.run_present(p, module.check_mode, module._diff)
    if p["state"] == "pruned":
        raise InputError("state", "state=pruned is for platform core: an SBC Edge keeps one server certificate (slot 1,"
                                  " replaced by each import, sbc-apis.md C), so there is nothing older to prune")
    if p["state"] == "rollback":
        raise InputError("state", "state=rollback is for platform core; on SBC Edge re-run state=present with the"
                                  " previous certificate and key")
    if p["state"] == "csr":
        return edge.run_csr(p, module.check_mode)
    return edge.run_present(p, module.check_mode, module._diff)


def argument_spec() -> dict:
    spec = connection_argument_spec()
    spec.update(
        state=dict(type="str", default="present", choices=["present", "rollback", "csr", "pruned"]),
        certificate=dict(type="str"),
        private_key=dict(type="str", no_log=True),
        private_key_passphrase=dict(type="str", no_log=True),
        ca_certificates=dict(type="list", elements="str", default=[]),
        allow_expired_ca=dict(type="bool", default=False),
        key_custody=dict(type="str", default="external", choices=["external", "device"]),
        csr=dict(type="dict", options=dict(
            common_name=dict(type="str", required=True),
            subject_alt_names=dict(type="list", elements="str", default=[]),
            key_bits=dict(type="int", default=2048, choices=[1024, 2048]),
        )),
        name_prefix=dict(type="str", default="byoc"),
        client_certificate=dict(type="bool", default=False),
        retain=dict(type="int"),
        grace_period=dict(type="int", default=30),
        rollback_to=dict(type="str"),
        require_ha_sync=dict(type="bool", default=True),
    )
    return spec


def main() -> None:
    module = ByocModule(argument_spec=argument_spec(), supports_check_mode=True)
    run_module(module, with_platform_credentials(work))


if __name__ == "__main__":
    main()
