# Copyright (c) 2026, byoc.certificates contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

# Note that this module util is **PRIVATE** to the collection. It can have breaking changes at any time.

"""Amazon Route 53 with boto3 (RRset-shaped API).

acme-and-dns.md 2.1: TXT values must be quoted for Route 53; the whole RRset is written (UPSERT) or deleted
(DELETE needs the exact current values and TTL). `private_zone` picks between a public and a private zone of
the same name (split horizon). Changes report PENDING until Route 53's own servers have them, then INSYNC
(get_change); acme-and-dns.md 7.7: moto answers INSYNC at once.
"""

from __future__ import annotations

import time
import typing as t

from ansible_collections.byoc.certificates.plugins.module_utils._errors import (
    ApiError,
    AuthenticationFailure,
    ConnectionFailure,
    InputError,
    MissingDependency,
    NotFound,
)
from ansible_collections.byoc.certificates.plugins.module_utils._dns.provider import (
    DNSProvider,
    clean_secret,
    longest_suffix_zone,
    register,
)
from ansible_collections.byoc.certificates.plugins.module_utils._dns.txt import is_subdomain, quote_txt, unquote_txt

try:
    import boto3
    import botocore.exceptions
    HAS_BOTO3 = True
    BOTO3_IMPORT_ERROR = None
except ImportError as _exc:  # pragma: no cover
    HAS_BOTO3 = False
    BOTO3_IMPORT_ERROR = str(_exc)

AUTH_CODES = {"InvalidClientTokenId", "SignatureDoesNotMatch", "AccessDenied", "AccessDeniedException",
              "UnrecognizedClientException", "ExpiredToken", "InvalidAccessKeyId", "AuthFailure"}


def r53_name(name: str) -> str:
    """Route 53 names are absolute and escape some characters as \\DDD (e.g. ``*`` as ``\\052``)."""
    return name + "."


def from_r53_name(name: str) -> str:
    out, i = [], 0
    while i < len(name):
        if name[i] == "\\" and name[i + 1:i + 4].isdigit():
            out.append(chr(int(name[i + 1:i + 4], 8)))
            i += 4
        else:
            out.append(name[i])
            i += 1
    return "".join(out).rstrip(".").lower()


def change_batch(record: str, before: list[str], before_ttl: int | None, after: list[str], ttl: int) -> dict:
    """UPSERT the full set, or DELETE the current set (exact values and TTL) when nothing is left."""
    if after:
        action, values, rr_ttl = "UPSERT", after, ttl
    else:
        action, values, rr_ttl = "DELETE", before, before_ttl if before_ttl is not None else ttl
    return {
        "Comment": "byoc.certificates.dns01_record",
        "Changes": [{
            "Action": action,
            "ResourceRecordSet": {
                "Name": r53_name(record), "Type": "TXT", "TTL": rr_ttl,
                "ResourceRecords": [{"Value": quote_txt(v)} for v in values],
            },
        }],
    }


@register("route53")
class Route53Provider(DNSProvider):
    name = "route53"

    def __init__(self, options: dict[str, t.Any]) -> None:
        super().__init__(options)
        self._client = None
        self._zone_ids: dict[str, str] = {}
        self._ttl: int | None = None
        self.change_id: str | None = None

    def describe(self) -> str:
        return f"Route 53 ({self.options.get('endpoint_url') or 'AWS'})"

    def validate(self) -> None:
        # issue 10: credentials with a trailing newline are stripped; ones a request cannot carry are refused unseen
        cleaned = {name: clean_secret(self.options.get(name), f"route53.{name}", what)
                   for name, what in (("access_key", "the key ID"), ("secret_key", "the secret key"),
                                      ("session_token", "the session token"))}
        self.options = dict(self.options, **cleaned)
        if bool(self.options.get("access_key")) != bool(self.options.get("secret_key")):
            raise InputError("route53.secret_key" if self.options.get("access_key") else "route53.access_key",
                             "access_key and secret_key go together (or leave both unset to use the AWS credential"
                             " chain: AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, profile, instance role)")
        if not HAS_BOTO3:
            raise MissingDependency("boto3", "for the route53 provider", BOTO3_IMPORT_ERROR)

    @property
    def client(self):
        if self._client is None:
            self._client = boto3.session.Session().client(
                "route53",
                aws_access_key_id=self.options.get("access_key") or None,
                aws_secret_access_key=self.options.get("secret_key") or None,
                aws_session_token=self.options.get("session_token") or None,
                region_name=self.options.get("region") or "us-east-1",
                endpoint_url=self.options.get("endpoint_url") or None,
            )
        return self._client

    def _call(self, what: str, fn, **kwargs):
        where = self.describe()
        try:
            return fn(**kwargs)
        except botocore.exceptions.ClientError as exc:
            err = exc.response.get("Error", {})
            code, message = err.get("Code", "?"), err.get("Message", str(exc))
            if code in AUTH_CODES:
                raise AuthenticationFailure(f"{where} rejected the credentials on {what}: {code}: {message}. Check"
                                            " route53.access_key/secret_key (or the AWS environment variables) and"
                                            " the IAM policy.", code=code) from None
            if code in ("NoSuchHostedZone", "NoSuchChange"):
                raise NotFound(f"{where}: {what} failed: {code}: {message}.", code=code) from None
            raise ApiError(f"{where}: {what} failed: {code}: {message}.", code=code) from None
        except botocore.exceptions.NoCredentialsError:
            raise InputError("route53.access_key", "no AWS credentials found: set route53.access_key and"
                             " route53.secret_key or AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY") from None
        except (botocore.exceptions.EndpointConnectionError, botocore.exceptions.ConnectTimeoutError,
                botocore.exceptions.ReadTimeoutError) as exc:
            raise ConnectionFailure(f"Cannot reach {where} on {what}: {exc}. Check route53.endpoint_url and the"
                                    " network.") from None
        except botocore.exceptions.BotoCoreError as exc:
            raise ApiError(f"{where}: {what} failed: {exc}") from None

    def find_zone(self, record: str, zone: str | None) -> str:
        zone_id = self.options.get("hosted_zone_id")
        if zone_id:
            resp = self._call(f"GetHostedZone {zone_id}", self.client.get_hosted_zone, Id=zone_id)
            name = from_r53_name(resp["HostedZone"]["Name"])
            if not is_subdomain(record, name):
                raise InputError("route53.hosted_zone_id", f"the hosted zone {zone_id} is {name}, which does not"
                                 f" contain {record}")
            self._zone_ids[name] = resp["HostedZone"]["Id"]
            return name
        zones: dict[str, list[tuple[str, bool]]] = {}
        marker = None
        while True:
            kwargs = {"Marker": marker} if marker else {}
            resp = self._call("ListHostedZones", self.client.list_hosted_zones, **kwargs)
            for hz in resp.get("HostedZones", []):
                private = bool(hz.get("Config", {}).get("PrivateZone", False))
                zones.setdefault(from_r53_name(hz["Name"]), []).append((hz["Id"], private))
            if not resp.get("IsTruncated"):
                break
            marker = resp.get("NextMarker")
        want_private = self.options.get("private_zone")
        if want_private is not None:
            zones = {n: [z for z in ids if z[1] == bool(want_private)] for n, ids in zones.items()}
            zones = {n: ids for n, ids in zones.items() if ids}
        if zone:
            if zone not in zones:
                raise NotFound(f"{self.describe()} has no {'private ' if want_private else ''}hosted zone {zone}"
                               f" (zones seen: {', '.join(sorted(zones)) or 'none'}).", zone=zone)
            name = zone
        else:
            name = longest_suffix_zone(record, zones, self.describe())
        ids = zones[name]
        if len(ids) > 1:
            raise InputError("route53.private_zone", f"there are {len(ids)} hosted zones named {name}; set"
                             " route53.private_zone or route53.hosted_zone_id to pick one")
        self._zone_ids[name] = ids[0][0]
        return name

    def get_txt(self, zone: str, record: str) -> list[str]:
        resp = self._call("ListResourceRecordSets", self.client.list_resource_record_sets,
                          HostedZoneId=self._zone_ids[zone], StartRecordName=r53_name(record),
                          StartRecordType="TXT", MaxItems="1")
        for rrset in resp.get("ResourceRecordSets", []):
            if from_r53_name(rrset["Name"]) == record and rrset["Type"] == "TXT":
                self._ttl = rrset.get("TTL")
                return [unquote_txt(rr["Value"]) for rr in rrset.get("ResourceRecords", [])]
        return []

    def change(self, zone: str, record: str, *, before: list[str], after: list[str], added: list[str],
               removed: list[str], ttl: int) -> None:
        batch = change_batch(record, before, self._ttl, after, ttl)
        resp = self._call("ChangeResourceRecordSets", self.client.change_resource_record_sets,
                          HostedZoneId=self._zone_ids[zone], ChangeBatch=batch)
        self.change_id = resp.get("ChangeInfo", {}).get("Id")

    def wait_for_sync(self, timeout: float) -> bool | None:
        if not self.change_id:
            return None
        deadline = time.monotonic() + timeout
        while True:
            resp = self._call(f"GetChange {self.change_id}", self.client.get_change, Id=self.change_id)
            if resp.get("ChangeInfo", {}).get("Status") == "INSYNC":
                return True
            if time.monotonic() + 2 > deadline:
                return False
            time.sleep(2)
