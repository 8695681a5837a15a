"""Azure DNS emulator: Microsoft Entra ID tokens and Azure Resource Manager DNS zones / TXT record sets, HTTPS on
loopback with a certificate from the lab CA.

    python -m emulators.azure --config azure.json     (from tests/lab)

``azure.json`` (mode 0600, it holds the client secret): ``{"port", "cert_file", "key_file", "tenant_id",
"client_id", "client_secret", "subscription_id", "resource_groups": {"rg": ["zone", ...]}, "managed_identity":
bool, "page_size": n}``.

Facts followed (Microsoft Learn; quoted in the issue that asked for this provider, issue 14):
- AZ1 record sets live at ``/subscriptions/{sub}/resourceGroups/{rg}/providers/Microsoft.Network/dnsZones/{zone}/
  {recordType}/{relativeRecordSetName}?api-version=2018-05-01`` with GET, PUT, PATCH and DELETE; the zone name is
  without a terminating dot and the record set name is relative to the zone (REST API "Record Sets").
- AZ2 the body is ``{"etag", "properties": {"TTL": n, "TXTRecords": [{"value": ["..."]}]}}``; a record set as
  returned also has ``id``, ``name``, ``type`` and ``properties.fqdn`` (Record Sets - Get, sample response).
- AZ3 ``If-Match: <etag>``: the write only succeeds when the record set's etag still matches; ``If-None-Match: *``
  creates a record set but never updates an existing one (Record Sets - Create Or Update, request headers).
  A failed condition is HTTP 412 ``PreconditionFailed`` (ARM optimistic concurrency).
- AZ4 Create Or Update answers 200 (updated) or 201 (created); Delete answers 200 (deleted) or 204 (the record set
  was not found), and also takes ``If-Match`` (Record Sets - Delete, responses).
- AZ5 ``GET /subscriptions/{sub}/providers/Microsoft.Network/dnszones`` lists the zones of a subscription and
  ``.../resourceGroups/{rg}/providers/Microsoft.Network/dnsZones`` those of a resource group; ``$top`` defaults
  to 100; the answer is ``{"value": [...], "nextLink": "..."}`` (Zones - List, Zones - List By Resource Group).
- AZ6 errors are ``{"error": {"code", "message"}}`` (ARM "Error" definition, "default response").
- AZ7 tokens: ``POST {authority}/{tenant}/oauth2/v2.0/token`` form ``client_id``, ``client_secret``,
  ``grant_type=client_credentials``, ``scope=https://management.azure.com/.default``; success
  ``{"token_type": "Bearer", "expires_in", "access_token"}``; failure ``{"error", "error_description",
  "error_codes": [n]}`` with AADSTS codes (Microsoft identity platform, "OAuth 2.0 client credentials flow").
- AZ8 managed identity: ``GET /metadata/identity/oauth2/token?api-version=2018-02-01&resource=...`` with the
  header ``Metadata: true`` on the instance metadata service ("How to use managed identities ... to acquire an
  access token", REST).
- AZ9 ARM throttles with HTTP 429 and a ``Retry-After`` header (ARM "Understand how Azure Resource Manager
  throttles requests").

Where the documents are silent the emulator is stricter, and says so (UNCONFIRMED): a wrong ``api-version`` is
refused; each TXT string is at most 255 octets; any path segment case is accepted only as documented above.

``/_control/...`` is the lab's fault-injection API (DEVELOPING.md): TEST-ONLY, never called by the product, no
authentication. ``GET /_control/state``; ``GET /_control/requests``; ``POST /_control/recordset`` ``{"zone", "name",
"values"}`` (a write by "someone else", new etag); ``POST /_control/fault`` ``{"kind": "concurrent", "name", "value",
"count"}`` (before the next ``count`` writes to that record set, another writer adds ``value``: the client's etag
is stale, so it gets 412) or ``{"kind": "throttle", "count", "retry_after"}`` (the next ``count`` ARM requests get
429); ``POST /_control/reset``.
"""

from __future__ import annotations

import argparse
import json
import secrets
import threading
import time
import uuid
from urllib.parse import parse_qs, quote

from ..common.httpserver import EmulatorHTTPServer, Reply, Request, Router

API_VERSION = "2018-05-01"
IMDS_API_VERSION = "2018-02-01"
MAX_STRING = 255  # UNCONFIRMED: the docs give no per-string limit; stricter: the DNS character-string limit
TOKEN_TTL = 3599


def arm_error(status: int, code: str, message: str, headers: dict | None = None) -> Reply:
    return Reply.json({"error": {"code": code, "message": message}}, status, headers)  # AZ6


def aad_error(status: int, error: str, code: int, description: str) -> Reply:
    # AZ7: the token endpoint's own error shape, with the AADSTS code also in error_codes
    return Reply.json({"error": error, "error_description": f"AADSTS{code}: {description}", "error_codes": [code],
                       "timestamp": time.strftime("%Y-%m-%d %H:%M:%SZ", time.gmtime()),
                       "trace_id": str(uuid.uuid4()), "correlation_id": str(uuid.uuid4())}, status)


class State:
    def __init__(self, config: dict) -> None:
        self.lock = threading.Lock()
        self.config = config
        self.sub = config["subscription_id"]
        self.rgs = {rg.lower(): rg for rg in config["resource_groups"]}
        # zone name -> {"rg", "etag", "records": {relative name (lower) -> record set}}
        self.zones: dict[str, dict] = {}
        for rg, zones in config["resource_groups"].items():
            for zone in zones:
                self.zones[zone.lower()] = {"rg": rg, "etag": str(uuid.uuid4()), "records": {}}
        self.tokens: dict[str, float] = {}
        self.page_size = int(config.get("page_size") or 100)
        self.concurrent: list[dict] = []
        self.throttle = {"count": 0, "retry_after": 1}

    def zone_id(self, zone: str) -> str:
        z = self.zones[zone]
        return f"/subscriptions/{self.sub}/resourceGroups/{z['rg']}/providers/Microsoft.Network/dnszones/{zone}"

    def zone_json(self, zone: str) -> dict:
        z = self.zones[zone]
        return {"id": self.zone_id(zone), "name": zone, "type": "Microsoft.Network/dnszones", "etag": z["etag"],
                "location": "global", "tags": {},
                "properties": {"maxNumberOfRecordSets": 10000, "numberOfRecordSets": 2 + len(z["records"]),
                               "nameServers": [f"ns1-01.azure-dns.{zone}."], "zoneType": "Public"}}

    def set_json(self, zone: str, rel: str) -> dict:
        rs = self.zones[zone]["records"][rel]
        fqdn = (zone if rel == "@" else f"{rel}.{zone}") + "."
        # AZ2: the record set as GET returns it
        return {"id": f"{self.zone_id(zone)}/TXT/{rel}", "name": rel, "type": "Microsoft.Network/dnszones/TXT",
                "etag": rs["etag"], "properties": {"metadata": {}, "TTL": rs["ttl"], "fqdn": fqdn,
                                                   "provisioningState": "Succeeded",
                                                   "TXTRecords": [{"value": list(v)} for v in rs["txt"]]}}

    def external_write(self, zone: str, rel: str, add: list[str] | None = None, values: list[str] | None = None) -> None:
        """Another writer (not the module): replaces or extends the set; the etag changes (AZ3)."""
        rs = self.zones[zone]["records"].setdefault(rel, {"etag": "", "ttl": 60, "txt": []})
        if values is not None:
            rs["txt"] = [[v] for v in values]
        for v in add or []:
            if [v] not in rs["txt"]:
                rs["txt"].append([v])
        rs["etag"] = str(uuid.uuid4())


def build(state: State) -> Router:
    router = Router()
    cfg = state.config
    sub_re = r"/subscriptions/(?P<sub>[^/]+)"
    zone_re = sub_re + r"/resourceGroups/(?P<rg>[^/]+)/providers/Microsoft\.Network/dnsZones/(?P<zone>[^/]+)"

    # -- Microsoft Entra ID ---------------------------------------------------------------------------------------
    @router.route("POST", r"/(?P<tenant>[^/]+)/oauth2/v2\.0/token")
    def token(req: Request, tenant: str) -> Reply:
        form = {k: v[0] for k, v in parse_qs(req.body.decode("utf-8", "replace")).items()}
        if tenant.lower() != cfg["tenant_id"].lower():
            return aad_error(400, "invalid_request", 90002, f"Tenant '{tenant}' not found.")  # AZ7
        if form.get("grant_type") != "client_credentials":
            return aad_error(400, "unsupported_grant_type", 70003, "The app requested an unsupported grant type.")
        if form.get("client_id") != cfg["client_id"]:
            return aad_error(400, "unauthorized_client", 700016,
                             f"Application with identifier '{form.get('client_id')}' was not found in the directory.")
        if form.get("client_secret") != cfg["client_secret"]:
            # AZ7 (AADSTS7000215); the secret itself is never echoed
            return aad_error(401, "invalid_client", 7000215, "Invalid client secret provided.")
        if form.get("scope") != cfg["scope"]:
            return aad_error(400, "invalid_scope", 70011, f"The provided value for scope {form.get('scope')} is not valid.")
        return issue_token()

    def issue_token() -> Reply:
        tok = "eyJ0eXAi." + secrets.token_urlsafe(40)
        with state.lock:
            state.tokens[tok] = time.time() + TOKEN_TTL
        return Reply.json({"token_type": "Bearer", "expires_in": TOKEN_TTL, "ext_expires_in": TOKEN_TTL,
                           "access_token": tok})

    @router.route("GET", r"/metadata/identity/oauth2/token")
    def imds_token(req: Request) -> Reply:
        # AZ8: the metadata header is required; the resource must be the ARM audience
        if req.headers.get("Metadata", "").lower() != "true":
            return Reply.json({"error": "invalid_request", "error_description": "Required metadata header not specified"}, 400)
        if not cfg.get("managed_identity"):
            return Reply.json({"error": "invalid_request", "error_description": "Identity not found"}, 400)
        if req.q("api-version") != IMDS_API_VERSION or req.q("resource", "").rstrip("/") != cfg["resource"]:
            return Reply.json({"error": "invalid_resource", "error_description": "AADSTS500011: The resource principal"
                               f" named {req.q('resource')} was not found in the tenant."}, 400)
        return issue_token()

    # -- Azure Resource Manager ----------------------------------------------------------------------------------
    def arm_guard(req: Request, sub: str, rg: str | None = None, zone: str | None = None) -> Reply | None:
        with state.lock:
            if state.throttle["count"] > 0:
                state.throttle["count"] -= 1
                # AZ9: 429 with Retry-After
                return arm_error(429, "TooManyRequests", "The request is being throttled.",
                                 {"Retry-After": str(state.throttle["retry_after"])})
            auth = req.headers.get("Authorization", "")
            tok = auth[7:] if auth.startswith("Bearer ") else None
            if tok is None:
                return arm_error(401, "AuthenticationFailed", "Authentication failed. The 'Authorization' header is missing.")
            if state.tokens.get(tok, 0) < time.time():
                return arm_error(401, "InvalidAuthenticationToken", "The access token is invalid.")
        if req.q("api-version") != API_VERSION:
            # UNCONFIRMED: ARM accepts other published versions; stricter: only the one this contract covers
            return arm_error(400, "InvalidApiVersionParameter",
                             f"The api-version '{req.q('api-version')}' is invalid. Use '{API_VERSION}'.")
        if sub.lower() != state.sub.lower():
            return arm_error(404, "SubscriptionNotFound", f"The subscription '{sub}' could not be found.")
        if rg is not None and rg.lower() not in state.rgs:
            return arm_error(404, "ResourceGroupNotFound", f"Resource group '{rg}' could not be found.")
        if zone is not None:
            z = state.zones.get(zone.lower())
            if z is None or z["rg"].lower() != rg.lower():
                return arm_error(404, "ResourceNotFound", f"The Resource 'Microsoft.Network/dnszones/{zone}' under"
                                 f" resource group '{rg}' was not found.")
        return None

    def listing(req: Request, names: list[str], base: str) -> Reply:
        # AZ5: $top (default 100) and nextLink; the skip token is opaque to the client
        try:
            top = min(int(req.q("$top") or 100), state.page_size)
            skip = int(req.q("$skipToken") or 0)
        except ValueError:
            return arm_error(400, "InvalidParameter", "Invalid $top or $skipToken.")
        with state.lock:
            chunk = [state.zone_json(z) for z in names[skip:skip + top]]
        body: dict = {"value": chunk}
        if skip + top < len(names):
            body["nextLink"] = f"{base}?api-version={API_VERSION}&$top={top}&$skipToken={skip + top}"
        return Reply.json(body)

    @router.route("GET", sub_re + r"/providers/Microsoft\.Network/dnszones")
    def list_zones(req: Request, sub: str) -> Reply:
        bad = arm_guard(req, sub)
        if bad:
            return bad
        base = f"https://{req.headers.get('Host')}/subscriptions/{sub}/providers/Microsoft.Network/dnszones"
        return listing(req, sorted(state.zones), base)

    @router.route("GET", sub_re + r"/resourceGroups/(?P<rg>[^/]+)/providers/Microsoft\.Network/dnsZones")
    def list_rg_zones(req: Request, sub: str, rg: str) -> Reply:
        bad = arm_guard(req, sub, rg)
        if bad:
            return bad
        base = (f"https://{req.headers.get('Host')}/subscriptions/{sub}/resourceGroups/{rg}/providers/"
                "Microsoft.Network/dnsZones")
        return listing(req, sorted(z for z, v in state.zones.items() if v["rg"].lower() == rg.lower()), base)

    @router.route("GET", zone_re)
    def get_zone(req: Request, sub: str, rg: str, zone: str) -> Reply:
        bad = arm_guard(req, sub, rg, zone)
        if bad:
            return bad
        with state.lock:
            return Reply.json(state.zone_json(zone.lower()))

    def rel_of(rel: str) -> str:
        return rel.lower()

    @router.route("GET", zone_re + r"/TXT/(?P<rel>[^/]+)")
    def get_set(req: Request, sub: str, rg: str, zone: str, rel: str) -> Reply:
        bad = arm_guard(req, sub, rg, zone)
        if bad:
            return bad
        with state.lock:
            z = zone.lower()
            if rel_of(rel) not in state.zones[z]["records"]:
                return arm_error(404, "NotFound", f"The resource record '{rel}' does not exist in resource group"
                                 f" '{rg}' of subscription '{sub}'.")
            return Reply.json(state.set_json(z, rel_of(rel)))

    def apply_concurrent(z: str, rel: str) -> None:
        """A scheduled concurrent writer acts just before this write (between the client's read and write)."""
        for fault in list(state.concurrent):
            if fault["name"] == (rel if rel == "@" else f"{rel}.{z}") and fault["count"] > 0:
                fault["count"] -= 1
                state.external_write(z, rel, add=[fault["value"]])
                if fault["count"] == 0:
                    state.concurrent.remove(fault)

    def precondition(req: Request, current: dict | None) -> Reply | None:
        # AZ3: If-Match must equal the current etag (or '*' for any existing set); If-None-Match: * only creates
        if_match, if_none = req.headers.get("If-Match"), req.headers.get("If-None-Match")
        if if_none is not None and if_none.strip() == "*" and current is not None:
            return arm_error(412, "PreconditionFailed", "The condition '*' in the If-None-Match header was not"
                             " satisfied: the record set exists.")
        if if_match is not None:
            want = if_match.strip().strip('"')
            if current is None or (want != "*" and want != current["etag"]):
                return arm_error(412, "PreconditionFailed", f"The condition '{if_match}' in the If-Match header was"
                                 " not satisfied. The current etag is different.")
        return None

    @router.route("PUT", zone_re + r"/TXT/(?P<rel>[^/]+)")
    def put_set(req: Request, sub: str, rg: str, zone: str, rel: str) -> Reply:
        bad = arm_guard(req, sub, rg, zone)
        if bad:
            return bad
        try:
            body = req.json() or {}
            props = body["properties"]
            ttl = props.get("TTL", 3600)
            txt = props.get("TXTRecords", [])
            ok = isinstance(ttl, int) and 0 <= ttl <= 2147483647 and isinstance(txt, list) and all(
                isinstance(r, dict) and isinstance(r.get("value"), list) and r["value"]
                and all(isinstance(s, str) and len(s.encode()) <= MAX_STRING for s in r["value"]) for r in txt)
        except (ValueError, KeyError, TypeError, AttributeError):
            ok = False
        if not ok:
            return arm_error(400, "BadRequest", "The request body is not a valid TXT record set (properties.TTL,"
                             f" properties.TXTRecords[].value: strings of at most {MAX_STRING} octets).")
        with state.lock:
            z, r = zone.lower(), rel_of(rel)
            apply_concurrent(z, r)
            current = state.zones[z]["records"].get(r)
            failed = precondition(req, current)
            if failed:
                return failed
            created = current is None
            state.zones[z]["records"][r] = {"etag": str(uuid.uuid4()), "ttl": ttl,
                                            "txt": [list(rec["value"]) for rec in txt]}
            return Reply.json(state.set_json(z, r), 201 if created else 200)  # AZ4

    @router.route("DELETE", zone_re + r"/TXT/(?P<rel>[^/]+)")
    def delete_set(req: Request, sub: str, rg: str, zone: str, rel: str) -> Reply:
        bad = arm_guard(req, sub, rg, zone)
        if bad:
            return bad
        with state.lock:
            z, r = zone.lower(), rel_of(rel)
            apply_concurrent(z, r)
            current = state.zones[z]["records"].get(r)
            failed = precondition(req, current)
            if failed:
                return failed
            if current is None:
                return Reply(204, b"")  # AZ4
            del state.zones[z]["records"][r]
            return Reply(200, b"")

    # -- test-only control API ---------------------------------------------------------------------------------
    @router.route("GET", "/_control/state")
    def control_state(req: Request) -> Reply:
        with state.lock:
            out = {}
            for zone, z in state.zones.items():
                records = {}
                for rel, rs in z["records"].items():
                    records[zone if rel == "@" else f"{rel}.{zone}"] = {
                        "etag": rs["etag"], "ttl": rs["ttl"], "values": ["".join(v) for v in rs["txt"]],
                        "strings": rs["txt"]}
                out[zone] = {"resource_group": z["rg"], "records": records}
            return Reply.json({"zones": out, "faults": {"concurrent": state.concurrent, "throttle": state.throttle}})

    def split(name: str) -> tuple[str, str] | None:
        name = name.lower().rstrip(".")
        for zone in sorted(state.zones, key=len, reverse=True):
            if name == zone:
                return zone, "@"
            if name.endswith("." + zone):
                return zone, name[: -len(zone) - 1]
        return None

    @router.route("POST", "/_control/recordset")
    def control_recordset(req: Request) -> Reply:
        body = req.json() or {}
        with state.lock:
            where = split(body["name"])
            if where is None:
                return Reply.json({"error": "no zone"}, 404)
            state.external_write(*where, values=list(body["values"]))
            return Reply.json(state.set_json(*where))

    @router.route("POST", "/_control/fault")
    def control_fault(req: Request) -> Reply:
        body = req.json() or {}
        with state.lock:
            if body.get("kind") == "concurrent":
                state.concurrent.append({"name": body["name"].lower().rstrip("."), "value": body["value"],
                                         "count": int(body.get("count", 1))})
            elif body.get("kind") == "throttle":
                state.throttle = {"count": int(body.get("count", 1)), "retry_after": int(body.get("retry_after", 1))}
            else:
                return Reply.json({"error": "kind must be concurrent or throttle"}, 400)
            return Reply.json({"concurrent": state.concurrent, "throttle": state.throttle})

    @router.route("POST", "/_control/reset")
    def control_reset(req: Request) -> Reply:
        with state.lock:
            state.concurrent.clear()
            state.throttle = {"count": 0, "retry_after": 1}
            return Reply.json({})

    return router


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", required=True)
    args = parser.parse_args()
    with open(args.config, encoding="utf-8") as fh:
        config = json.load(fh)
    config["resource"] = config["resource"].rstrip("/")
    config["scope"] = config["resource"] + "/.default"  # AZ7: the ARM audience's .default scope
    state = State(config)
    router = build(state)
    server = EmulatorHTTPServer(("127.0.0.1", int(config["port"])), router, name="azure",
                                certfile=config["cert_file"], keyfile=config["key_file"])

    @router.route("GET", "/_control/requests")
    def control_requests(req: Request) -> Reply:
        with server.log_lock:
            return Reply.json([{"method": m, "path": p, "status": s} for m, p, s in server.request_log])

    print(f"azure emulator listening on https://127.0.0.1:{config['port']} (resource {quote(config['resource'])})",
          flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
