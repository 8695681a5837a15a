# Copyright (c) 2026, byoc.certificates contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

# Note that this module util is **PRIVATE** to the collection. It can have breaking changes at any time.

"""PowerDNS Authoritative HTTP API (RRset-shaped).

acme-and-dns.md 7.6 (VERIFIED against 4.7.3): base ``<url>/servers/<server_id>``, header ``X-API-Key``;
``GET /zones`` lists zones, ``GET /zones/<id>`` returns the zone with its ``rrsets``; ``PATCH /zones/<id>``
with ``{"rrsets": [{"name", "type", "ttl", "changetype": "REPLACE", "records": [{"content": "\\"v\\"",
"disabled": false}]}]}`` answers 204; a wrong key gets 401. TXT content is in quoted presentation format.
"""

from __future__ import annotations

import typing as t
from urllib.parse import quote

from ansible_collections.byoc.certificates.plugins.module_utils._errors import InputError, NotFound
from ansible_collections.byoc.certificates.plugins.module_utils._http import HttpClient, Response
from ansible_collections.byoc.certificates.plugins.module_utils._dns.provider import (
    DNSProvider,
    clean_secret,
    longest_suffix_zone,
    register,
)
from ansible_collections.byoc.certificates.plugins.module_utils._dns.txt import is_subdomain, quote_txt, unquote_txt


def pdns_error(resp: Response) -> str | None:
    data = resp.json()
    if isinstance(data, dict) and data.get("error"):
        return str(data["error"])
    return None


def rrset_patch(record: str, after: list[str], ttl: int) -> dict:
    """The PATCH body: REPLACE with the full set, or DELETE the RRset when nothing is left."""
    if after:
        return {"rrsets": [{"name": record + ".", "type": "TXT", "ttl": ttl, "changetype": "REPLACE",
                            "records": [{"content": quote_txt(v), "disabled": False} for v in after]}]}
    return {"rrsets": [{"name": record + ".", "type": "TXT", "changetype": "DELETE"}]}


@register("powerdns")
class PowerDNSProvider(DNSProvider):
    name = "powerdns"

    def __init__(self, options: dict[str, t.Any], client: HttpClient | None = None) -> None:
        super().__init__(options)
        self._client = client
        self._zone_ids: dict[str, str] = {}

    def describe(self) -> str:
        return f"the PowerDNS API at {self.options.get('url')}"

    def validate(self) -> None:
        url = self.options.get("url") or ""
        if not url.startswith(("http://", "https://")):
            raise InputError("powerdns.url", "must be the API base URL, like http://pdns.example.test:8081/api/v1")
        # issue 10: a key with a trailing newline is stripped; one that a header cannot carry is refused unseen
        key = clean_secret(self.options.get("api_key"), "powerdns.api_key", "the API key")
        if not key:
            raise InputError("powerdns.api_key", "is required (or set PDNS_API_KEY)")
        self.options = dict(self.options, api_key=key)

    @property
    def client(self) -> HttpClient:
        if self._client is None:
            self._client = HttpClient(
                self.options["url"], service="PowerDNS API", headers={"X-API-Key": self.options["api_key"]},
                validate_certs=self.options.get("validate_certs", True), ca_path=self.options.get("ca_path"),
                error_message=pdns_error)
        return self._client

    @property
    def base(self) -> str:
        return f"servers/{quote(self.options.get('server_id') or 'localhost', safe='')}"

    def find_zone(self, record: str, zone: str | None) -> str:
        resp = self.client.request("GET", f"{self.base}/zones")
        zones = {str(z["name"]).rstrip(".").lower(): str(z.get("id") or z["name"]) for z in (resp.json() or [])}
        if zone:
            if not is_subdomain(record, zone):
                raise InputError("zone", f"{record} is not inside the zone {zone}")
            if zone not in zones:
                raise NotFound(f"{self.describe()} has no zone {zone} (zones: {', '.join(sorted(zones)) or 'none'}).",
                               zone=zone)
            name = zone
        else:
            name = longest_suffix_zone(record, zones, self.describe())
        self._zone_ids[name] = zones[name]
        return name

    def _zone_path(self, zone: str) -> str:
        return f"{self.base}/zones/{quote(self._zone_ids[zone], safe='=.')}"

    def get_txt(self, zone: str, record: str) -> list[str]:
        resp = self.client.request("GET", self._zone_path(zone))
        data = resp.json() or {}
        for rrset in data.get("rrsets", []):
            if str(rrset.get("name", "")).rstrip(".").lower() == record and rrset.get("type") == "TXT":
                return [unquote_txt(r["content"]) for r in rrset.get("records", []) if not r.get("disabled")]
        return []

    def change(self, zone: str, record: str, *, before: list[str], after: list[str], added: list[str],
               removed: list[str], ttl: int) -> None:
        self.client.request("PATCH", self._zone_path(zone), json=rrset_patch(record, after, ttl))
