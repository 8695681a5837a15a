# Copyright (c) 2026, byoc.certificates contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

# Note that this doc fragment is **PRIVATE** to the collection. It can have breaking changes at any time.

from __future__ import annotations


class ModuleDocFragment:
    # Connection to a Ribbon SBC Core (ConfD REST) or SBC Edge (/rest) management API.
    DOCUMENTATION = r"""
options:
  platform:
    description:
      - Which Ribbon product the API belongs to.
      - V(core) is SBC Core (5400, 7000, SWe) with its ConfD REST API and HTTP Basic on every request.
      - V(edge) is SBC Edge (1000, 2000, SWe Lite) with its C(/rest) API and a login cookie.
    type: str
    required: true
    choices: [core, edge]
  api_url:
    description:
      - Base URL of the management API, for example C(https://sbc1.example.com).
      - For an SBC Core HA pair, the logical management address (always the active node).
      - If not set, the value of the E(RIBBON_API_URL) environment variable is used.
    type: str
    required: true
  username:
    description:
      - API user. On SBC Edge the user needs the REST access level.
      - If not set, the value of the E(RIBBON_CORE_USERNAME) (O(platform=core)) or E(RIBBON_EDGE_USERNAME)
        (O(platform=edge)) environment variable is used, else that of E(RIBBON_USERNAME) (the name both
        credential types used to set, still read for compatibility). The task fails naming these variables when
        none is set.
      - The AWX credential types C(BYOC Ribbon SBC Core API and SFTP users) and C(BYOC Ribbon SBC Edge API user) set
        the platform's own variables, so one job template can hold both.
    type: str
  password:
    description:
      - Password of O(username).
      - If not set, the value of the E(RIBBON_CORE_PASSWORD) (O(platform=core)) or E(RIBBON_EDGE_PASSWORD)
        (O(platform=edge)) environment variable is used, else that of E(RIBBON_PASSWORD). The task fails naming
        these variables when none is set.
    type: str
  validate_certs:
    description:
      - Verify the TLS certificate of the management API. Turn off only in a lab.
    type: bool
    default: true
  ca_path:
    description:
      - A PEM file with the CA certificate(s) that signed the management API's certificate, for appliances whose
        management certificate is not signed by a public CA.
    type: path
  timeout:
    description:
      - Seconds to wait for each HTTP request and SFTP connection.
    type: int
    default: 30
  nodes:
    description:
      - SBC Core only. Every node of the HA pair, for SFTP access to C(/opt/sonus/external).
      - Certificate files are not replicated between nodes, so they are uploaded to each node.
    type: list
    elements: dict
    suboptions:
      name:
        description: A name for the node in results and messages. Defaults to O(nodes[].host).
        type: str
      host:
        description: Address of the node for SFTP (its own management or physical address).
        type: str
        required: true
      port:
        description: SSH port of the node.
        type: int
        default: 22
      host_key:
        description:
          - The node's SSH host key as in C(known_hosts), V(<type> <base64>), for example
            V(ecdsa-sha2-nistp256 AAAA...). When not set, O(sftp_known_hosts) is used.
        type: str
  sftp_username:
    description:
      - SBC Core only. SFTP user on the nodes.
      - If not set, the value of the E(RIBBON_SFTP_USERNAME) environment variable is used.
    type: str
  sftp_password:
    description:
      - SBC Core only. Password of O(sftp_username).
      - If not set, the value of the E(RIBBON_SFTP_PASSWORD) environment variable is used.
    type: str
  sftp_private_key:
    description: SBC Core only. A private key file for SFTP authentication instead of a password.
    type: path
  sftp_known_hosts:
    description:
      - SBC Core only. A known_hosts file for nodes without O(nodes[].host_key). Defaults to the user's
        C(~/.ssh/known_hosts).
    type: path
  sftp_host_key_checking:
    description:
      - SBC Core only. Refuse nodes whose host key is unknown. Turn off only in a lab.
    type: bool
    default: true
  sftp_directory:
    description: SBC Core only. The directory the SBC installs certificates from.
    type: str
    default: /opt/sonus/external
  tls_profile:
    description: SBC Core only. The TLS profile whose certificate is managed or reported.
    type: str
    default: defaultTlsProfile
  pkcs12_passphrase:
    description:
      - SBC Core only. Passphrase of the PKCS#12 files the module builds and of the PKI objects.
      - Also used to read the certificate inside the bound PKCS#12 file back from each node.
      - If not set, the value of the E(RIBBON_PKCS12_PASSPHRASE) environment variable is used.
    type: str
requirements:
  - cryptography
  - paramiko (platform V(core), for SFTP)
"""
