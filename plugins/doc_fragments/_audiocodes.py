# Copyright (c) 2026, byoc.certificates contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

# Note that this doc fragment is **PRIVATE** to the collection. It can have breaking changes at any time.

from __future__ import annotations


class ModuleDocFragment:
    # Connection to the AudioCodes Mediant REST API.
    DOCUMENTATION = r"""
options:
  api_url:
    description:
      - The base URL of the device's REST API, ending with C(/api/v1), for example C(https://sbc1.example.com/api/v1).
      - For an HA pair, the management (OAMP) address, which always reaches the active unit.
      - Exactly one of O(api_url) and O(host) is required.
    type: str
  host:
    description:
      - Host name or IP address of the device's management interface; the module then uses
        C(https://<host>:<port>/api/v1).
      - Exactly one of O(api_url) and O(host) is required.
    type: str
  port:
    description:
      - HTTPS port of the management interface, used with O(host).
    type: int
    default: 443
  username:
    description:
      - A Local User of the device. The REST API authenticates every request with HTTP Basic.
      - Reading and writing TLS contexts and saving the configuration need the Administrator (or Security
        Administrator) privilege level; a Monitor user is refused with a clear error.
      - If not set, the value of the E(AUDIOCODES_USERNAME) environment variable is used.
    type: str
  password:
    description:
      - The password of O(username).
      - If not set, the value of the E(AUDIOCODES_PASSWORD) environment variable is used.
    type: str
  validate_certs:
    description:
      - Verify the TLS certificate of the management interface.
      - A Mediant ships with a self-signed management certificate; rather than turning this off, point O(ca_path)
        at that certificate or at the CA that signed the one you installed.
    type: bool
    default: true
  ca_path:
    description:
      - A PEM file with the certificate(s) to trust for the management interface (a CA bundle or the device's own
        self-signed certificate).
    type: path
  timeout:
    description:
      - Seconds to wait for each HTTP request.
    type: int
    default: 30
"""
