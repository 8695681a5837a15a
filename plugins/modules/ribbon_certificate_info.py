#!/usr/bin/python
# Copyright (c) 2026, byoc.certificates contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
module: ribbon_certificate_info
short_description: Report the certificates installed on a Ribbon SBC Core or SBC Edge, which one is bound, and HA state
version_added: 0.1.0
description:
  - B(SBC Core) lists the PKI certificate objects and the TLS profiles that reference them, and reads
    C(serverStatus) (C(mgmtRedundancyRole), C(syncStatus)) and C(syncStatus). When O(nodes) and SFTP credentials are
    given it also reads each referenced file back from every node and reports the fingerprint found there, so a
    node that lacks the bound certificate is visible before a switchover. Reading a C(local) PKCS#12 needs
    O(pkcs12_passphrase).
  - B(SBC Edge) lists the certificates (slot 1 is the server certificate, the others are trusted CAs) with their
    details and fingerprints. SBC Edge has no HA configuration sync; each unit is its own host.
author:
  - byoc.certificates contributors (!UNKNOWN)
extends_documentation_fragment:
  - byoc.certificates._ribbon
  - byoc.certificates._attributes.ACTIONGROUP_RIBBON
  - byoc.certificates._attributes
  - byoc.certificates._attributes.INFO_MODULE
seealso:
  - module: byoc.certificates.ribbon_certificate
"""

EXAMPLES = r"""
- name: What does the SBC Core pair serve, and is every node ready for a switchover?
  byoc.certificates.ribbon_certificate_info:
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
  register: core_info

- name: Certificates on an SBC Edge
  byoc.certificates.ribbon_certificate_info:
    platform: edge
    api_url: https://sbc-edge.example.com
    username: restuser
    password: "{{ vault_edge_password }}"
  register: edge_info
"""

RETURN = r"""
platform:
  description: The platform the task ran against.
  returned: always
  type: str
  sample: edge
certificates:
  description:
    - The installed certificates.
    - SBC Core items have C(name), C(file_name), C(type), C(state), C(bound_by) (profile leaves that reference
      it) and, when the files were read, C(nodes) (per node C(present) and C(fingerprint)) and C(details).
    - SBC Edge items have C(id), C(role) (V(server) or V(ca)), C(fingerprint), C(common_name), C(subject),
      C(issuer), C(serial_number), C(not_before_epoch) and C(not_after_epoch).
  returned: always
  type: list
  elements: dict
bound:
  description:
    - The certificate serving SIP-TLS. SBC Core, the object named by O(tls_profile)'s C(serverCertName) with
      C(nodes) and C(details); SBC Edge, certificate 1.
  returned: always
  type: dict
profiles:
  description: SBC Core. Every TLS profile with its C(serverCertName) and C(clientCertName).
  returned: platform=core
  type: list
  elements: dict
ha:
  description:
    - HA state. C(pair), C(in_sync), C(active), C(nodes) (name, role, sync_status), C(sync_modules) and
      C(problems) (what is wrong, empty when healthy). SBC Edge always reports a standalone unit.
  returned: always
  type: dict
system:
  description: SBC Edge. Software version fields from C(/rest/system).
  returned: platform=edge
  type: dict
"""

from ansible.module_utils.basic import AnsibleModule

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
        core.validate_common(dict(p, state="info", name_prefix="byoc", retain=0))
        return core.run_info(p)
    return edge.run_info(p)


def argument_spec() -> dict:
    return connection_argument_spec()


def main() -> None:
    module = ByocModule(argument_spec=argument_spec(), supports_check_mode=True)
    run_module(module, with_platform_credentials(work))


if __name__ == "__main__":
    main()
