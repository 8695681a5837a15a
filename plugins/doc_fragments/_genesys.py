# Copyright (c) 2026, byoc.certificates contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

# Note that this doc fragment is **PRIVATE** to the collection. It can have breaking changes at any time.

from __future__ import annotations


class ModuleDocFragment:
    DOCUMENTATION = r"""
options:
  region:
    description:
      - The Genesys Cloud region of the org, for example V(eu_west_1), V(us_east_1) or V(ap_southeast_2)
        (dashes are accepted too), or its domain such as V(mypurecloud.ie).
      - The API host is always taken from this option or O(api_url), never from C(~/.genesyscloudpython/config).
      - If not set, the value of the E(GENESYS_CLOUD_REGION) environment variable is used.
      - One of O(region) and O(api_url) is required. O(api_url) wins when both are set.
    type: str
  api_url:
    description:
      - The API base URL, for example V(https://api.mypurecloud.ie). Scheme, host and port only.
      - The login URL is derived from it the way the SDK does (C(//api.) becomes C(//login.)); a URL without
        C(api.) serves both login and API calls.
    type: str
  client_id:
    description:
      - The OAuth client ID of a Client Credentials grant. Its role needs C(telephony:plugin:all).
      - If not set, the value of the E(GENESYS_CLOUD_CLIENT_ID) environment variable is used.
    type: str
  client_secret:
    description:
      - The OAuth client secret. It is sent in an HTTP Basic header, so it must be printable ASCII; surrounding
        whitespace is removed.
      - If not set, the value of the E(GENESYS_CLOUD_CLIENT_SECRET) environment variable is used.
    type: str
  validate_certs:
    description:
      - Verify the API's TLS certificate. Only set to V(false) against a lab.
    type: bool
    default: true
  ca_path:
    description:
      - A PEM CA bundle to verify the API's certificate with, instead of the system's trust store.
      - A file that does not exist, a directory, or a file without a PEM certificate is refused before any request.
    type: path
  token_cache:
    description:
      - Cache the access token between tasks and hosts of a run, so a playbook mints one token.
      - The cache is a file per client ID and login host, mode C(0600) in a C(0700) directory, and a token is only
        reused with the same client secret. A token the API refuses (HTTP 401) is replaced once, automatically.
    type: bool
    default: true
  token_cache_dir:
    description:
      - Directory of the token cache. Defaults to C($XDG_CACHE_HOME/byoc.certificates/genesys), or
        C(~/.cache/byoc.certificates/genesys).
    type: path
  max_retry_after:
    description:
      - The longest single wait, in seconds, that a rate-limited (HTTP 429) answer's C(Retry-After) may impose.
        A longer requested wait, or more than 5 retries in a row, fails the task with a clear message.
    type: float
    default: 60
  request_timeout:
    description:
      - Timeout in seconds of each HTTP request.
    type: float
    default: 30
requirements:
  - PureCloudPlatformClientV2 (the official Genesys Cloud Python SDK) on the controller
notes:
  - The SDK is imported with C(HOME) pointed at an empty directory and its configuration live-reload switched off,
    so C(~/.genesyscloudpython/config) never changes the host, the gateway or the logging.
"""
