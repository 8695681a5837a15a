"""Cloudflare API v4 emulator: zones and DNS records, plain HTTP on loopback.

    python -m emulators.cloudflare --config cloudflare.json     (from tests/lab)

``cloudflare.json``: ``{"port": int, "token": str, "zones": {"cf.test": "<32-hex id>", ...}}`` (mode 0600: it
holds the token, which is therefore never on the command line).

Facts followed (Cloudflare's API reference and public threads; the search notes are in docs/dns01_record.md):
- CF1 every answer is the envelope ``{"success", "errors": [{"code", "message"}], "messages", "result"}``;
  list answers add ``result_info`` ``{page, per_page, count, total_count, total_pages}``
  (developers.cloudflare.com API reference; TundraSoft/tundra-connect wiki "CloudflareDNS API").
- CF2 auth is ``Authorization: Bearer <token>`` (API reference, "Security: API Token").
- CF3 a token that is not valid gets HTTP 403 ``{"code": 10000, "message": "Authentication error"}``
  (cloudflare/cloudflare-docs#27798, cloudflare/terraform-provider-cloudflare#913).
- CF4 no credentials at all gets HTTP 400 code 9106 "Missing X-Auth-Key, X-Auth-Email or Authorization
  headers" (cloudflare/cloudflare-python#2678).
- CF5 ``GET /zones?name=``; ``GET /zones/{id}/dns_records`` filtered by ``type``, ``name`` (the full name),
  ``content``; ``POST /zones/{id}/dns_records`` creates one record (``name`` is the complete name including the
  zone); ``DELETE /zones/{id}/dns_records/{rid}`` (API reference "Create DNS Record", "List DNS Records").
- CF6 TXT ``content`` "must consist of quoted character strings (RFC 1035)" (cloudflare/cloudflare-typescript#1777).
- CF7 ``ttl`` 1 means automatic (API reference).

``/_control/...`` is the lab's fault-injection API (DEVELOPING.md): TEST-ONLY, never called by the product, no
authentication. ``GET /_control/state`` (zones and records); ``POST /_control/config`` ``{"max_per_page": n}``;
``GET /_control/requests``.
"""

from __future__ import annotations

import argparse
import datetime
import json
import secrets
import threading

from ..common.httpserver import EmulatorHTTPServer, Reply, Request, Router

PREFIX = "/client/v4"


def envelope(result, status: int = 200, *, errors=None, messages=None, result_info=None) -> Reply:
    # CF1: the same envelope on success and on failure.
    body = {"success": not errors, "errors": errors or [], "messages": messages or [], "result": result}
    if result_info is not None:
        body["result_info"] = result_info
    return Reply.json(body, status)


def error(status: int, code: int, message: str) -> Reply:
    return envelope(None, status, errors=[{"code": code, "message": message}])


class State:
    def __init__(self, zones: dict[str, str]) -> None:
        self.lock = threading.Lock()
        self.zones = {zid: {"id": zid, "name": name, "status": "active"} for name, zid in zones.items()}
        self.records: dict[str, dict] = {}
        # UNCONFIRMED: Cloudflare's real per_page maximum. Stricter: a small cap so that clients must page.
        self.max_per_page = 100


def paged(items: list[dict], req: Request, state: State) -> Reply:
    try:
        page = max(1, int(req.q("page", "1")))
        per_page = int(req.q("per_page", "100"))
    except ValueError:
        return error(400, 1001, "Invalid page or per_page")  # UNCONFIRMED code; stricter: reject
    per_page = max(1, min(per_page, state.max_per_page))
    total = len(items)
    pages = max(1, -(-total // per_page))
    chunk = items[(page - 1) * per_page: page * per_page]
    # CF1: result_info on list answers.
    return envelope(chunk, result_info={"page": page, "per_page": per_page, "count": len(chunk),
                                        "total_count": total, "total_pages": pages})


def build(state: State, token: str) -> tuple[Router, object]:
    router = Router()

    def before(req: Request) -> Reply | None:
        auth = req.headers.get("Authorization")
        if not auth:
            return error(400, 9106, "Missing X-Auth-Key, X-Auth-Email or Authorization headers")  # CF4
        if auth != f"Bearer {token}":
            return error(403, 10000, "Authentication error")  # CF2, CF3
        return None

    @router.route("GET", f"{PREFIX}/zones")
    def list_zones(req: Request) -> Reply:
        name = req.q("name")  # CF5
        with state.lock:
            zones = [z for z in state.zones.values() if name is None or z["name"] == name.lower()]
            return paged(sorted(zones, key=lambda z: z["name"]), req, state)

    @router.route("GET", f"{PREFIX}/zones/(?P<zid>[^/]+)/dns_records")
    def list_records(req: Request, zid: str) -> Reply:
        with state.lock:
            if zid not in state.zones:
                # UNCONFIRMED exact code for an unknown zone id; stricter: a 404 error envelope.
                return error(404, 7003, "Could not route to /zones/" + zid + ", perhaps your object identifier is invalid?")
            recs = [r for r in state.records.values() if r["zone_id"] == zid]
            for key in ("type", "name", "content"):  # CF5: exact-match filters
                want = req.q(key)
                if want is not None:
                    recs = [r for r in recs if (r[key].lower() == want.lower().rstrip(".") if key == "name"
                                                else r[key] == want)]
            return paged(sorted(recs, key=lambda r: r["created_on"]), req, state)

    @router.route("POST", f"{PREFIX}/zones/(?P<zid>[^/]+)/dns_records")
    def create_record(req: Request, zid: str) -> Reply:
        try:
            body = req.json() or {}
        except ValueError:
            return error(400, 9207, "Request body is invalid.")  # UNCONFIRMED code
        with state.lock:
            zone = state.zones.get(zid)
            if zone is None:
                return error(404, 7003, "Could not route to /zones/" + zid + ", perhaps your object identifier is invalid?")
            rtype, name, content = body.get("type"), str(body.get("name") or "").lower().rstrip("."), body.get("content")
            if not rtype or not name or content is None:
                return error(400, 9000, "DNS record type, name and content are required.")  # UNCONFIRMED code
            if name != zone["name"] and not name.endswith("." + zone["name"]):
                # CF5: the name is the complete name; UNCONFIRMED code for one outside the zone.
                return error(400, 9005, f"Content for the name is invalid: {name} is not in zone {zone['name']}")
            ttl = body.get("ttl", 1)
            # CF7 ttl 1 = automatic. UNCONFIRMED range 60..86400 for other values (the API reference's TTL text).
            if not isinstance(ttl, int) or not (ttl == 1 or 60 <= ttl <= 86400):
                return error(400, 9021, "Invalid TTL. Must be between 60 and 86400 seconds, or 1 for Automatic.")
            messages = []
            if rtype == "TXT" and not str(content).startswith('"'):
                # CF6: content must be quoted strings; the API still accepts it and warns. UNCONFIRMED wording.
                messages.append({"code": 0, "message": "Content for TXT record should be in quotation marks."})
            for r in state.records.values():
                if r["zone_id"] == zid and (r["type"], r["name"], r["content"]) == (rtype, name, content):
                    # UNCONFIRMED code: an identical record is refused.
                    return error(400, 81058, "An identical record already exists.")
            now = datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="microseconds").replace("+00:00", "Z")
            rec = {"id": secrets.token_hex(16), "zone_id": zid, "zone_name": zone["name"], "name": name,
                   "type": rtype, "content": content, "ttl": ttl, "proxiable": False, "proxied": False,
                   "comment": body.get("comment"), "tags": body.get("tags") or [], "meta": {},
                   "created_on": now, "modified_on": now}
            state.records[rec["id"]] = rec
            return envelope(rec, messages=messages)

    @router.route("DELETE", f"{PREFIX}/zones/(?P<zid>[^/]+)/dns_records/(?P<rid>[^/]+)")
    def delete_record(req: Request, zid: str, rid: str) -> Reply:
        with state.lock:
            rec = state.records.get(rid)
            if zid not in state.zones or rec is None or rec["zone_id"] != zid:
                return error(404, 81044, "Record does not exist.")  # UNCONFIRMED code
            del state.records[rid]
            return envelope({"id": rid})

    # -- test-only control API -----------------------------------------------------------------------------
    @router.route("GET", "/_control/state")
    def control_state(req: Request) -> Reply:
        with state.lock:
            return Reply.json({"zones": list(state.zones.values()), "records": list(state.records.values()),
                               "max_per_page": state.max_per_page})

    @router.route("POST", "/_control/config")
    def control_config(req: Request) -> Reply:
        body = req.json() or {}
        with state.lock:
            if "max_per_page" in body:
                state.max_per_page = max(1, int(body["max_per_page"]))
            return Reply.json({"max_per_page": state.max_per_page})

    return router, before


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", required=True)
    args = parser.parse_args()
    with open(args.config, encoding="utf-8") as fh:
        config = json.load(fh)
    state = State(config["zones"])
    router, before = build(state, config["token"])
    server = EmulatorHTTPServer(("127.0.0.1", int(config["port"])), router, name="cloudflare", before=before)

    @router.route("GET", "/_control/requests")
    def control_requests(req: Request) -> Reply:
        with server.log_lock:
            return Reply.json([{"method": m, "path": p, "status": s} for m, p, s in server.request_log])

    print(f"cloudflare emulator listening on 127.0.0.1:{config['port']}", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
