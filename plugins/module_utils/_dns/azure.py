# Copyright (c) 2026, byoc.certificates contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

# Note that this module util is **PRIVATE** to the collection. It can have breaking changes at any time.

"""Azure DNS through Azure Resource Manager (RRset-shaped: one TXT record set per name, guarded by its etag).

Facts (Microsoft Learn, REST API "Record Sets" and "Zones", api-version 2018-05-01; Microsoft identity platform):
- AZ1 record sets: ``{arm}/subscriptions/{sub}/resourceGroups/{rg}/providers/Microsoft.Network/dnsZones/{zone}/TXT/
  {relative name}?api-version=2018-05-01`` (GET, PUT, PATCH, DELETE); the zone name has no trailing dot, the record
  set name is relative to the zone (``@`` for the apex).
- AZ2 body ``{"etag", "properties": {"TTL": n, "TXTRecords": [{"value": ["string", ...]}]}}``; one TXT record's
  ``value`` is its list of character strings.
- AZ3 ``If-Match: <etag>`` writes only over the version read; ``If-None-Match: *`` only creates. A failed
  condition is HTTP 412 (PreconditionFailed): someone else changed the set between our read and our write.
- AZ4 PUT answers 200 or 201; DELETE answers 200, or 204 when the set does not exist, and also takes If-Match.
- AZ5 ``GET {arm}/subscriptions/{sub}/providers/Microsoft.Network/dnszones`` (or ``.../resourceGroups/{rg}/
  providers/Microsoft.Network/dnsZones``) lists zones as ``{"value": [...], "nextLink"}``; each zone's ``id`` names
  its resource group.
- AZ6 errors are ``{"error": {"code", "message"}}``; ARM throttles with 429 and Retry-After (HttpClient honours it).
- AZ7 tokens by client credentials: ``POST {authority}/{tenant}/oauth2/v2.0/token`` with ``client_id``,
  ``client_secret``, ``grant_type=client_credentials`` and ``scope={arm}/.default``; errors carry ``error``,
  ``error_description`` and ``error_codes`` (AADSTS numbers).
- AZ8 managed identity: ``GET {imds}?api-version=2018-02-01&resource={arm}/`` with ``Metadata: true``; a
  user-assigned identity is picked with ``client_id``.

Multi-value safety: a write is always read-modify-write of the whole set under the etag just read; on 412 the set
is read again, this task's additions and removals are applied to what is there now, and the write is retried
(at most ``MAX_CONFLICTS`` times), so a concurrent writer's values are never lost.
"""

from __future__ import annotations

import re
import typing as t
from urllib.parse import quote, urlencode, urlsplit

from ansible_collections.byoc.certificates.plugins.module_utils._errors import (
    ApiError,
    AuthenticationFailure,
    ConnectionFailure,
    InputError,
    NotFound,
)
from ansible_collections.byoc.certificates.plugins.module_utils._http import HttpClient, Response
from ansible_collections.byoc.certificates.plugins.module_utils._dns.provider import (
    DNSProvider,
    clean_secret,
    longest_suffix_zone,
    register,
)
from ansible_collections.byoc.certificates.plugins.module_utils._dns.txt import (
    is_subdomain,
    join_strings,
    relative_name,
)

API_VERSION = "2018-05-01"
IMDS_API_VERSION = "2018-02-01"
DEFAULT_ARM = "https://management.azure.com"
DEFAULT_AUTHORITY = "https://login.microsoftonline.com"
DEFAULT_IMDS = "http://169.254.169.254/metadata/identity/oauth2/token"
MAX_CONFLICTS = 5
MAX_PAGES = 50
GUID = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")
# Resource group names: letters, digits, underscores, hyphens, periods and parentheses, up to 90, not ending in '.'
RESOURCE_GROUP = re.compile(r"^[\w\-.()]{1,90}$")
TENANT = re.compile(r"^[A-Za-z0-9][A-Za-z0-9\-.]{0,252}$")
# AADSTS error numbers -> the option to check (AZ7)
AAD_FIELDS = {7000215: "azure.client_secret", 7000222: "azure.client_secret", 700016: "azure.client_id",
              90002: "azure.tenant_id", 900023: "azure.tenant_id", 90013: "azure.tenant_id",
              # the scope (resource_manager_url + /.default) names no resource the tenant knows
              70011: "azure.resource_manager_url", 500011: "azure.resource_manager_url"}


def arm_error(resp: Response) -> str | None:
    data = resp.json()
    if isinstance(data, dict) and isinstance(data.get("error"), dict):
        err = data["error"]
        return f"{err.get('code')}: {err.get('message')}".rstrip(".")
    return None


def aad_error(resp: Response) -> str | None:
    data = resp.json()
    if isinstance(data, dict) and data.get("error"):
        desc = str(data.get("error_description") or "").splitlines()[0] if data.get("error_description") else ""
        return f"{data['error']}: {desc}".rstrip(": .")
    return None


def txt_strings(value: str) -> list[str]:
    """One value as character strings of at most 255 octets each (RFC 1035 3.3), cut between characters so that
    each is a whole UTF-8 string (JSON cannot carry half a character)."""
    out: list[str] = []
    cur: list[str] = []
    size = 0
    for ch in value:
        n = len(ch.encode("utf-8"))
        if size + n > 255:
            out.append("".join(cur))
            cur, size = [], 0
        cur.append(ch)
        size += n
    out.append("".join(cur))
    return out


def txt_records(values: list[str]) -> list[dict]:
    """AZ2: one TXT record per value; its ``value`` is the list of its character strings."""
    return [{"value": txt_strings(v)} for v in values]


def record_values(rrset: dict) -> list[str]:
    """The decoded values of a record set as GET returns it (AZ2): each record's strings joined."""
    props = rrset.get("properties") or {}
    out = []
    for rec in props.get("TXTRecords") or []:
        strings = rec.get("value") or []
        out.append(join_strings([s.encode("utf-8") for s in strings]))
    return out


def record_set_body(values: list[str], ttl: int) -> dict:
    return {"properties": {"TTL": ttl, "TXTRecords": txt_records(values)}}


def apply_change(current: list[str], added: list[str], removed: list[str]) -> list[str]:
    """This task's change applied to what the set holds now (others' values kept, duplicates dropped)."""
    out: list[str] = []
    for v in current:
        if v not in removed and v not in out:
            out.append(v)
    for v in added:
        if v not in out:
            out.append(v)
    return out


def _http_url(value: str, field: str) -> str:
    url = (value or "").strip().rstrip("/")
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise InputError(field, f"{value!r} is not an http(s) URL")
    return url


@register("azure")
class AzureProvider(DNSProvider):
    name = "azure"

    def __init__(self, options: dict[str, t.Any], client: t.Any = None, token_client: t.Any = None) -> None:
        super().__init__(options)
        self._client = client
        self._token_client = token_client
        self._zone_rg: dict[str, str] = {}
        self._sets: dict[str, tuple[str | None, list[str]]] = {}  # record -> (etag, values) as last read
        self.conflicts = 0

    # -- options ----------------------------------------------------------------------------------------------
    @property
    def arm_url(self) -> str:
        return (self.options.get("resource_manager_url") or DEFAULT_ARM).rstrip("/")

    def describe(self) -> str:
        rg = self.options.get("resource_group")
        return (f"Azure DNS at {self.arm_url} (subscription {self.options.get('subscription_id')}"
                f"{', resource group ' + rg if rg else ''})")

    def validate(self) -> None:
        o = dict(self.options)
        sub = (o.get("subscription_id") or "").strip()
        if not sub:
            raise InputError("azure.subscription_id", "is required (or set AZURE_SUBSCRIPTION_ID)")
        if not GUID.match(sub):
            raise InputError("azure.subscription_id", f"{sub[:60]!r} is not a subscription ID (a GUID such as"
                             " 00000000-0000-0000-0000-000000000000)")
        o["subscription_id"] = sub
        rg = (o.get("resource_group") or "").strip() or None
        if rg is not None and (not RESOURCE_GROUP.match(rg) or rg.endswith(".")):
            raise InputError("azure.resource_group", f"{rg[:100]!r} is not a resource group name (letters, digits,"
                             " _ - . ( ), at most 90, not ending in a period)")
        o["resource_group"] = rg
        o["resource_manager_url"] = _http_url(o.get("resource_manager_url") or DEFAULT_ARM, "azure.resource_manager_url")
        auth = o.get("auth") or "client_secret"
        if auth == "client_secret":
            tenant = (o.get("tenant_id") or "").strip()
            if not tenant:
                raise InputError("azure.tenant_id", "is required for auth=client_secret (or set AZURE_TENANT_ID)")
            if not TENANT.match(tenant):
                raise InputError("azure.tenant_id", f"{tenant[:60]!r} is not a tenant ID (a GUID or a domain such as"
                                 " contoso.onmicrosoft.com)")
            o["tenant_id"] = tenant
            client_id = (o.get("client_id") or "").strip()
            if not client_id:
                raise InputError("azure.client_id", "is required for auth=client_secret (or set AZURE_CLIENT_ID)")
            o["client_id"] = client_id
            secret = clean_secret(o.get("client_secret"), "azure.client_secret", "the client secret")
            if not secret:
                raise InputError("azure.client_secret", "is required for auth=client_secret (or set"
                                 " AZURE_CLIENT_SECRET)")
            o["client_secret"] = secret
            o["authority_url"] = _http_url(o.get("authority_url") or DEFAULT_AUTHORITY, "azure.authority_url")
        elif auth == "managed_identity":
            o["client_id"] = (o.get("client_id") or "").strip() or None
            o["managed_identity_url"] = _http_url(o.get("managed_identity_url") or DEFAULT_IMDS,
                                                  "azure.managed_identity_url")
        else:
            raise InputError("azure.auth", f"{auth!r} must be client_secret or managed_identity")
        o["auth"] = auth
        self.options = o

    # -- tokens -----------------------------------------------------------------------------------------------
    def _http(self, base: str, service: str, **kw: t.Any) -> HttpClient:
        return HttpClient(base, service=service, validate_certs=self.options.get("validate_certs", True),
                          ca_path=self.options.get("ca_path"), retries=3, max_retry_after=30, **kw)

    def _token(self) -> str:
        o = self.options
        if o["auth"] == "managed_identity":
            client = self._token_client or self._http(o["managed_identity_url"], "managed identity endpoint",
                                                      error_message=aad_error)
            query = {"api-version": IMDS_API_VERSION, "resource": self.arm_url + "/"}
            if o.get("client_id"):
                query["client_id"] = o["client_id"]
            url = f"{o['managed_identity_url']}?{urlencode(query)}"
            field, where = "azure.managed_identity_url", "the managed identity endpoint"
            try:
                resp = client.request("GET", url, headers={"Metadata": "true"}, ok=(200, 400, 401, 403, 404))
            except ConnectionFailure as exc:
                raise ConnectionFailure(f"{exc.msg} (azure.auth=managed_identity: is this host an Azure resource"
                                        f" with a managed identity? Check {field}.)", **exc.details) from None
        else:
            client = self._token_client or self._http(o["authority_url"], "Microsoft Entra ID token endpoint",
                                                      error_message=aad_error)
            url = f"{o['authority_url']}/{quote(o['tenant_id'], safe='')}/oauth2/v2.0/token"
            form = urlencode({"client_id": o["client_id"], "client_secret": o["client_secret"],
                              "grant_type": "client_credentials", "scope": self.arm_url + "/.default"})
            field, where = "azure.client_secret", "Microsoft Entra ID"
            try:
                resp = client.request("POST", url, data=form.encode("ascii"), ok=(200, 400, 401, 403, 404),
                                      headers={"Content-Type": "application/x-www-form-urlencoded"})
            except ConnectionFailure as exc:
                raise ConnectionFailure(f"{exc.msg} Check azure.authority_url.", **exc.details) from None
        data = resp.json() if resp is not None else None
        if resp is not None and resp.status == 200 and isinstance(data, dict) and data.get("access_token"):
            token = str(data["access_token"])
            if clean_secret(token, "azure token", "the token") != token:
                raise ApiError(f"{where} returned an access token that cannot be sent in a header.")
            return token
        said = ((aad_error(resp) if resp is not None else None) or "(no error text)").rstrip(".")
        codes = (data or {}).get("error_codes") if isinstance(data, dict) else None
        if codes and isinstance(codes, list):
            field = next((AAD_FIELDS[c] for c in codes if c in AAD_FIELDS), field)
        raise AuthenticationFailure(
            f"{where} refused a token for {self.arm_url} (HTTP {resp.status if resp is not None else '?'}): {said}."
            f" Check {field}" + (" (and azure.tenant_id, azure.client_id)" if field == "azure.client_secret" else "")
            + ".", field=field, status=resp.status if resp is not None else None)

    @property
    def client(self) -> t.Any:
        if self._client is None:
            self._client = self._http(self.arm_url, "Azure Resource Manager", error_message=arm_error,
                                      headers={"Authorization": f"Bearer {self._token()}"})
        return self._client

    def _arm(self, method: str, path: str, **kw: t.Any) -> Response | None:
        client = self.client  # the token first: its own errors name the credential options
        try:
            return client.request(method, path, **kw)
        except ConnectionFailure as exc:
            raise ConnectionFailure(f"{exc.msg} Check azure.resource_manager_url.", **exc.details) from None
        except AuthenticationFailure as exc:
            raise AuthenticationFailure(
                f"{exc.msg.split(' Check the API key')[0]} The identity needs the role 'DNS Zone Contributor' on the"
                " zone (or its resource group); check azure.subscription_id and the role assignment.",
                **exc.details) from None

    # -- zones ------------------------------------------------------------------------------------------------
    def _list_zones(self) -> dict[str, str]:
        """zone name -> resource group, following nextLink (AZ5)."""
        sub = quote(self.options["subscription_id"], safe="")
        rg = self.options.get("resource_group")
        if rg:
            path = f"subscriptions/{sub}/resourceGroups/{quote(rg, safe='')}/providers/Microsoft.Network/dnsZones"
        else:
            path = f"subscriptions/{sub}/providers/Microsoft.Network/dnszones"
        url: str | None = f"{path}?api-version={API_VERSION}"
        zones: dict[str, str] = {}
        for _page in range(MAX_PAGES):
            if url is None:
                break
            try:
                resp = self._arm("GET", url)
            except NotFound as exc:
                field = "azure.resource_group" if rg else "azure.subscription_id"
                raise NotFound(f"{exc.msg} Check {field}.", field=field, **exc.details) from None
            data = (resp.json() if resp is not None else None) or {}
            for z in data.get("value") or []:
                name = str(z.get("name", "")).rstrip(".").lower()
                m = re.search(r"/resourceGroups/([^/]+)/", str(z.get("id", "")), re.IGNORECASE)
                zones[name] = m.group(1) if m else (rg or "")
            url = data.get("nextLink") or None
        return zones

    def find_zone(self, record: str, zone: str | None) -> str:
        zones = self._list_zones()
        if zone:
            if not is_subdomain(record, zone):
                raise InputError("zone", f"{record} is not inside the zone {zone}")
            if zone not in zones:
                raise NotFound(f"{self.describe()} has no DNS zone {zone} visible to this identity (zones seen:"
                               f" {', '.join(sorted(zones)) or 'none'}). Check the zone option, azure.resource_group"
                               " and the identity's role assignment.", zone=zone, field="zone")
            name = zone
        else:
            name = longest_suffix_zone(record, zones, self.describe())
        self._zone_rg[name] = zones[name]
        return name

    def _set_path(self, zone: str, record: str) -> str:
        sub = quote(self.options["subscription_id"], safe="")
        rg = quote(self._zone_rg[zone], safe="")
        rel = quote(relative_name(record, zone), safe="@")
        return (f"subscriptions/{sub}/resourceGroups/{rg}/providers/Microsoft.Network/dnsZones/{quote(zone, safe='')}"
                f"/TXT/{rel}?api-version={API_VERSION}")

    def _read(self, zone: str, record: str) -> tuple[str | None, list[str]]:
        resp = self._arm("GET", self._set_path(zone, record), missing_ok=True)
        if resp is None:
            return None, []
        data = resp.json() or {}
        return data.get("etag"), record_values(data)

    def get_txt(self, zone: str, record: str) -> list[str]:
        etag, values = self._read(zone, record)
        self._sets[record] = (etag, values)
        return list(values)

    def change(self, zone: str, record: str, *, before: list[str], after: list[str], added: list[str],
               removed: list[str], ttl: int) -> None:
        etag, current = self._sets.get(record, (None, before))
        want = after
        for _attempt in range(MAX_CONFLICTS + 1):
            if (want == current and etag is not None) or (not want and etag is None):
                return  # nothing (left) to do: a concurrent writer already did it
            path = self._set_path(zone, record)
            if not want:
                # AZ4: delete the set only as we read it (If-Match), so that a value added meanwhile survives
                resp = self._arm("DELETE", path, headers={"If-Match": etag}, ok=(200, 204, 412))
            else:
                cond = {"If-Match": etag} if etag else {"If-None-Match": "*"}  # AZ3
                resp = self._arm("PUT", path, json=record_set_body(want, ttl), headers=cond, ok=(200, 201, 412))
            if resp is not None and resp.status != 412:
                data = resp.json() or {}
                self._sets[record] = (data.get("etag"), want)
                return
            # AZ3: 412, someone changed the set since we read it: read again, re-apply our change, try again
            self.conflicts += 1
            etag, current = self._read(zone, record)
            want = apply_change(current, added, removed)
        raise ApiError(
            f"{self.describe()}: the TXT record set {record} kept changing under this task ({MAX_CONFLICTS + 1}"
            f" writes refused with HTTP 412, the set was changed by someone else each time). It now holds"
            f" {', '.join(repr(v) for v in current) or 'nothing'}; run the task again.", conflicts=self.conflicts)
