# Copyright (c) 2026, byoc.certificates contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

# Note that this module util is **PRIVATE** to the collection. It can have breaking changes at any time.

"""Connection options shared by the genesys_* modules (documented by the ``_genesys`` doc fragment)."""

from __future__ import annotations

import typing as t

from ansible.module_utils.basic import env_fallback

from ansible_collections.byoc.certificates.plugins.module_utils._errors import InputError
from ansible_collections.byoc.certificates.plugins.module_utils._genesys.client import (
    GenesysClient,
    ca_context,
    check_credentials,
    resolve_api_url,
)


def connection_argument_spec() -> dict[str, dict[str, t.Any]]:
    return {
        "region": {"type": "str", "fallback": (env_fallback, ["GENESYS_CLOUD_REGION"])},
        "api_url": {"type": "str"},
        "client_id": {"type": "str", "fallback": (env_fallback, ["GENESYS_CLOUD_CLIENT_ID"])},
        "client_secret": {"type": "str", "no_log": True, "fallback": (env_fallback, ["GENESYS_CLOUD_CLIENT_SECRET"])},
        "validate_certs": {"type": "bool", "default": True},
        "ca_path": {"type": "path"},
        "token_cache": {"type": "bool", "default": True},
        "token_cache_dir": {"type": "path"},
        "max_retry_after": {"type": "float", "default": 60.0},
        "request_timeout": {"type": "float", "default": 30.0},
    }


def check_connection_params(params: dict) -> str:
    """Validate the connection options (no network); return the API base URL."""
    api_url = resolve_api_url(params.get("region"), params.get("api_url"))
    if not params.get("client_id"):
        raise InputError("client_id", "required; set client_id or the environment variable GENESYS_CLOUD_CLIENT_ID")
    if not params.get("client_secret"):
        raise InputError("client_secret", "required; set client_secret or the environment variable"
                         " GENESYS_CLOUD_CLIENT_SECRET")
    check_credentials(params["client_id"], params["client_secret"])
    if params.get("max_retry_after") is not None and not 0 <= params["max_retry_after"] < float("inf"):
        raise InputError("max_retry_after", "must be a number of seconds, 0 or more")
    if params.get("request_timeout") is not None and not 0 < params["request_timeout"] < float("inf"):
        raise InputError("request_timeout", "must be a number of seconds more than 0")
    if params.get("ca_path") and params.get("validate_certs", True):
        ca_context(params["ca_path"])  # a missing or unusable bundle is an InputError now, before any request
    return api_url


def client_from_params(params: dict, api_url: str) -> GenesysClient:
    return GenesysClient(
        api_url, params["client_id"], params["client_secret"], validate_certs=params.get("validate_certs", True),
        ca_path=params.get("ca_path"), token_cache=params.get("token_cache", True),
        token_cache_dir=params.get("token_cache_dir"), max_retry_after=params.get("max_retry_after", 60.0),
        timeout=params.get("request_timeout", 30.0))


def stats(client: GenesysClient) -> dict:
    """What the run cost: returned as ``api`` by every genesys_* module."""
    return {"requests": client.requests, "tokens_minted": client.tokens_minted,
            "rate_limit_waits": list(client.rate_limit_waits)}
