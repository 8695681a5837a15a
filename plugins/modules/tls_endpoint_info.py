#!/usr/bin/python
# Copyright (c) 2026, byoc.certificates contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
module: tls_endpoint_info
short_description: Prove with fresh TLS handshakes that many SIP-TLS endpoints serve a certificate a peer will accept
version_added: 0.1.0
description:
  - Makes one new TCP connection and one new TLS handshake to every endpoint, by the name the Genesys Cloud trunks
    use (sent as SNI and checked against the served certificate), and reports per endpoint the served leaf's
    SHA-256 fingerprint, expiry and names, whether the name matches, whether the chain verifies against exactly
    O(ca_certificates), and whether the leaf is the expected one.
  - The chain is verified against O(ca_certificates) only, never the controller's system store. In the rotation
    pipeline these are the org's REMOTE certificate authorities as read back from Genesys Cloud, so RV(endpoints[].chain_verified)
    says whether a Genesys Edge trusting the same CAs accepts the chain.
  - No TLS session is ever resumed (each handshake uses a new context). Trunk health alone cannot prove a new
    certificate, because an Edge may keep an old session; this module shows what a new client gets now.
  - For devices with mutual TLS, give O(client_certificate) and O(client_private_key). Without them such a device
    refuses the handshake, which is reported as such (RV(endpoints[].client_certificate_accepted=false)).
  - When the handshake fails after the peer sent its certificate (an untrusted chain, a TLS 1.2 refusal of the client
    certificate), the served leaf is still reported, read from the unverified chain that the TLS library kept; the
    endpoint still costs one handshake.
  - Runs on the controller. The action plugin of the same name does the work in-process, with O(concurrency)
    endpoints at a time, so 200 endpoints cost one task, not 200 module runs. The module works the same way when
    the action plugin is bypassed.
  - This module never changes anything. It fails only for bad input; what it finds is in RV(all_ok), RV(failed_endpoints)
    and RV(endpoints[].error), so that the playbook decides (for example, roll back).
author:
  - byoc.certificates contributors (!UNKNOWN)
extends_documentation_fragment:
  - byoc.certificates._attributes.ACTIONGROUP_VERIFY
  - byoc.certificates._attributes
  - byoc.certificates._attributes.info_module
attributes:
  action:
    description: Runs as an action plugin on the controller.
    support: full
options:
  endpoints:
    description: The TLS endpoints to probe.
    type: list
    elements: dict
    required: true
    suboptions:
      name:
        description:
          - The DNS name the peers (the Genesys trunks) use for the endpoint. It is sent as SNI and must match the
            certificate's subjectAltName (RFC 6125; a wildcard only as the whole left-most label; the subject CN is
            not used).
          - An IP address is matched against the certificate's IP address entries.
        type: str
        required: true
      port:
        description: The TCP port.
        type: int
        default: 5061
      host:
        description:
          - Connect to this address (or name) instead of resolving O(endpoints[].name). The name is still what is
            sent and checked.
          - Useful to probe each member of an HA pair behind one name.
        type: str
      expected_fingerprint:
        description: The SHA-256 fingerprint (hex, colons allowed) of the leaf that should be served, for example the
          new certificate's. A different leaf makes the endpoint fail.
        type: str
      label:
        description: A label of your own (for example C(group/host)) returned with the result and used in RV(failed_endpoints).
        type: str
  ca_certificates:
    description:
      - PEM text of the CA certificates to verify the served chain against, and only those. Leaf certificates and
        key material are refused. An expired CA is accepted as input (it then anchors nothing).
    type: str
    required: true
  client_certificate:
    description:
      - PEM client certificate (optionally followed by its intermediates) to present to devices that require one
        (mutual TLS). A warning is returned when it lacks the TLS clientAuth extended key usage.
      - Requires O(client_private_key).
    type: str
  client_private_key:
    description: PEM private key (not encrypted) of O(client_certificate). It is written to a private temporary file
      only while the TLS library loads it.
    type: str
  nameservers:
    description:
      - Resolve names at these nameservers (IP address, optionally C(:port), for example V(127.0.0.1:5353)) with
        dnspython, instead of the system resolver. Use the DNS that the Genesys Edges use for the trunk names.
    type: list
    elements: str
    default: []
  timeout:
    description: Seconds for each step of one endpoint (resolve, connect, handshake).
    type: float
    default: 10
  concurrency:
    description: How many endpoints are probed at the same time (1 to 256).
    type: int
    default: 16
requirements:
  - cryptography
  - dnspython (only with O(nameservers))
notes:
  - With TLS 1.3 a server judges the client certificate after the client has finished the handshake (RFC 8446
    4.4.2.4), so the module waits up to 2 seconds (or O(timeout)) for its verdict; the session tickets an accepting
    server sends end that wait at once.
seealso:
  - module: byoc.certificates.genesys_edge_certificate_info
  - module: byoc.certificates.genesys_trunk_info
"""

EXAMPLES = r"""
- name: Read the CAs the org trusts
  byoc.certificates.genesys_edge_certificate_info:
    region: eu_west_1
  register: org_trust

- name: Prove every SBC of the group serves the new certificate to a new client
  byoc.certificates.tls_endpoint_info:
    endpoints:
      - name: sbc1.example.com
        port: 5061
        expected_fingerprint: "{{ new_certificate_fingerprint }}"
        label: emea/sbc1
      - name: sbc2.example.com
        expected_fingerprint: "{{ new_certificate_fingerprint }}"
        label: emea/sbc2
    ca_certificates: "{{ org_trust.certificates | selectattr('type', 'equalto', 'REMOTE') | map(attribute='certificate') | join }}"
  register: probe

- name: Stop when one of them is not right
  ansible.builtin.assert:
    that: probe.all_ok
    fail_msg: "{{ probe.endpoints | rejectattr('ok') | map(attribute='error') | list }}"

- name: A mutual-TLS device, resolving the name at the DNS the Edges use
  byoc.certificates.tls_endpoint_info:
    endpoints:
      - name: sbc-core.example.com
    ca_certificates: "{{ lookup('file', 'remote-cas.pem') }}"
    client_certificate: "{{ lookup('file', 'probe-client.pem') }}"
    client_private_key: "{{ vault_probe_client_key }}"
    nameservers: [192.0.2.53]
"""

RETURN = r"""
endpoints:
  description: One entry per requested endpoint, in the order given.
  returned: always
  type: list
  elements: dict
  contains:
    name:
      description: The name probed (sent as SNI and checked).
      type: str
      sample: sbc1.example.com
    port:
      description: The port.
      type: int
      sample: 5061
    label:
      description: The label given, or V(null).
      type: str
      sample: emea/sbc1
    address:
      description: The address connected to (V(null) when the name did not resolve).
      type: str
      sample: 192.0.2.10
    fingerprint:
      description: SHA-256 of the served leaf's DER, lowercase hex; V(null) when no certificate was seen.
      type: str
      sample: 3f5a0c...
    not_after:
      description: The served leaf's expiry (UTC, ISO 8601).
      type: str
      sample: "2027-01-28T10:00:00Z"
    not_before:
      description: The served leaf's start of validity (UTC, ISO 8601).
      type: str
      sample: "2026-11-29T10:00:00Z"
    subject:
      description: The served leaf's subject.
      type: str
      sample: CN=sbc1.example.com
    issuer:
      description: The served leaf's issuer.
      type: str
      sample: CN=R13,O=Let's Encrypt,C=US
    subject_alt_names:
      description: The served leaf's subjectAltName entries (C(DNS:...), C(IP:...)).
      type: list
      elements: str
      sample: ["DNS:sbc1.example.com"]
    extended_key_usage:
      description: The served leaf's extended key usages (C(serverAuth), C(clientAuth), or dotted OIDs); V(null) when
        it has none (then any usage is allowed).
      type: list
      elements: str
      sample: [serverAuth]
    tls_version:
      description: The negotiated TLS version.
      type: str
      sample: TLSv1.3
    name_matches:
      description: The leaf's subjectAltName matches O(endpoints[].name); V(null) when no certificate was seen.
      type: bool
      sample: true
    chain_verified:
      description: The chain verified against O(ca_certificates) (including validity dates); V(null) when the
        handshake did not get that far.
      type: bool
      sample: true
    expected_fingerprint:
      description: The expected fingerprint, normalized (lowercase hex), or V(null).
      type: str
      sample: 3f5a0c...
    matches_expected:
      description: The leaf is the expected one; V(null) without O(endpoints[].expected_fingerprint) or when no
        certificate was seen.
      type: bool
      sample: true
    client_certificate_accepted:
      description: V(false) when the peer refused the handshake for want of (or because of) a client certificate;
        V(true) when one was presented and accepted; V(null) otherwise.
      type: bool
      sample: null
    ok:
      description: Chain verified, name matches, accepted, and (when given) the expected leaf.
      type: bool
      sample: true
    stage:
      description: Where it ended - V(done), or the failing step V(resolve), V(connect), V(handshake), V(verify),
        V(name), V(fingerprint) (or V(internal)).
      type: str
      sample: done
    error:
      description: What failed, where, and what to do; V(null) when RV(endpoints[].ok).
      type: str
      sample: null
all_ok:
  description: Every endpoint is RV(endpoints[].ok).
  returned: always
  type: bool
  sample: true
failed_endpoints:
  description:
    - The endpoints that are not ok, by label (or C(name:port) without one).
    - Not called C(failed), which Ansible reads as the task's own failure.
  returned: always
  type: list
  elements: str
  sample: []
probed:
  description: Number of endpoints probed.
  returned: always
  type: int
  sample: 2
checked_at:
  description: When the probes finished (UTC, ISO 8601).
  returned: always
  type: str
  sample: "2026-11-30T05:40:00Z"
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.byoc.certificates.plugins.module_utils import _tls_probe
from ansible_collections.byoc.certificates.plugins.module_utils._module import ByocModule
from ansible_collections.byoc.certificates.plugins.module_utils._runner import run_module


def work(module: AnsibleModule) -> dict:
    return _tls_probe.run(module.params)


def main() -> None:
    module = ByocModule(argument_spec=_tls_probe.ARGUMENT_SPEC, required_together=_tls_probe.REQUIRED_TOGETHER,
                        supports_check_mode=True)
    run_module(module, work)


if __name__ == "__main__":
    main()
