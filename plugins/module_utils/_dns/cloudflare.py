# Copyright (c) 2026, byoc.certificates contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

# Note that this module util is **PRIVATE** to the collection. It can have breaking changes at any time.

"""Cloudflare API v4 (per-record API).

Facts (Cloudflare's API reference, developers.cloudflare.com/api/resources/dns/subresources/records/):
- Auth is ``Authorization: Bearer <token>``; a token that is not valid for the zone gets HTTP 403 with error
  code 10000 "Authentication error" (cloudflare/cloudflare-docs#27798).
- Every answer is the envelope ``{"success", "errors": [{"code", "message"}], "messages", "result"}``; lists add
  ``result_info`` with ``page``, ``per_page``, ``count``, ``total_count``, ``total_pages``.
- ``GET /zones?name=`` finds zones; ``GET /zones/{id}/dns_records?type=&name=`` lists records (name is the full
  name); ``POST /zones/{id}/dns_records`` creates one record; ``DELETE /zones/{id}/dns_records/{rid}`` deletes one.
- TXT ``content`` "must consist of quoted character strings (RFC 1035)", longer strings are split by the API
  (cloudflare/cloudflare-typescript#1777); older records may come back unquoted, so reading accepts both.
- ``ttl`` 1 means automatic.
"""

from __future__ import annotations

import typing as t
from urllib.parse import urlencode

from ansible_collections.byoc.certificates.plugins.module_utils._errors import ApiError, InputError, NotFound
from ansible_collections.byoc.certificates.plugins.module_utils._http import HttpClient, Response
from ansible_collections.byoc.certificates.plugins.module_utils._dns.provider import (
    DNSProvider,
    clean_secret,
    longest_suffix_zone,
    register,
)
from ansible_collections.byoc.certificates.plugins.module_utils._dns.txt import is_subdomain, quote_txt, unquote_txt

DEFAULT_URL = "https://api.cloudflare.com/client/v4"
PER_PAGE = 100


def cloudflare_error(resp: Response) -> str | None:
    data = resp.json()
    if isinstance(data, dict) and data.get("errors"):
        return "; ".join(f"{e.get('code')}: {e.get('message')}" for e in data["errors"] if isinstance(e, dict))
    return None


def record_body(record: str, value: str, ttl: int) -> dict:
    return {"type": "TXT", "name": record, "content": quote_txt(value), "ttl": ttl}


@register("cloudflare")
class CloudflareProvider(DNSProvider):
    name = "cloudflare"

    def __init__(self, options: dict[str, t.Any], client: HttpClient | None = None) -> None:
        super().__init__(options)
        self._client = client
        self._zone_ids: dict[str, str] = {}
        self._records: dict[str, list[dict]] = {}

    def describe(self) -> str:
        return f"the Cloudflare API at {self.options.get('api_url') or DEFAULT_URL}"

    def validate(self) -> None:
        # issue 10: a token with a trailing newline is stripped; one that a header cannot carry is refused unseen
        token = clean_secret(self.options.get("api_token"), "cloudflare.api_token", "the token")
        if not token:
            raise InputError("cloudflare.api_token", "is required (or set CLOUDFLARE_API_TOKEN)")
        self.options = dict(self.options, api_token=token)
        url = self.options.get("api_url") or DEFAULT_URL
        if not url.startswith(("http://", "https://")):
            raise InputError("cloudflare.api_url", f"{url!r} is not an http(s) URL")

    @property
    def client(self) -> HttpClient:
        if self._client is None:
            self._client = HttpClient(
                self.options.get("api_url") or DEFAULT_URL, service="Cloudflare API",
                headers={"Authorization": f"Bearer {self.options['api_token']}"},
                validate_certs=self.options.get("validate_certs", True), ca_path=self.options.get("ca_path"),
                error_message=cloudflare_error)
        return self._client

    def _get_all(self, path: str, params: dict[str, t.Any]) -> list[dict]:
        """Follow ``result_info`` paging until the last page."""
        items: list[dict] = []
        page = 1
        while True:
            query = urlencode({**params, "page": page, "per_page": PER_PAGE})
            resp = self.client.request("GET", f"{path}?{query}")
            data = resp.json() or {}
            if not data.get("success", False):
                raise ApiError(f"{self.describe()} answered success=false on GET {path}: {cloudflare_error(resp)}")
            items.extend(data.get("result") or [])
            info = data.get("result_info") or {}
            if page >= int(info.get("total_pages") or 1):
                return items
            page += 1

    def find_zone(self, record: str, zone: str | None) -> str:
        if zone:
            if not is_subdomain(record, zone):
                raise InputError("zone", f"{record} is not inside the zone {zone}")
            found = self._get_all("zones", {"name": zone})
            if not found:
                raise NotFound(f"{self.describe()} has no zone {zone} visible to this token.", zone=zone)
            self._zone_ids[zone] = found[0]["id"]
            return zone
        zones = {str(z["name"]).lower(): z["id"] for z in self._get_all("zones", {})}
        name = longest_suffix_zone(record, zones, self.describe())
        self._zone_ids[name] = zones[name]
        return name

    def get_txt(self, zone: str, record: str) -> list[str]:
        recs = self._get_all(f"zones/{self._zone_ids[zone]}/dns_records", {"type": "TXT", "name": record})
        recs = [r for r in recs if str(r.get("name", "")).lower().rstrip(".") == record and r.get("type") == "TXT"]
        self._records[record] = recs
        return [unquote_txt(str(r.get("content", ""))) for r in recs]

    def change(self, zone: str, record: str, *, before: list[str], after: list[str], added: list[str],
               removed: list[str], ttl: int) -> None:
        base = f"zones/{self._zone_ids[zone]}/dns_records"
        for rec in self._records.get(record, []):
            if unquote_txt(str(rec.get("content", ""))) in removed:
                self.client.request("DELETE", f"{base}/{rec['id']}")
        for value in added:
            self.client.request("POST", base, json=record_body(record, value, ttl))
