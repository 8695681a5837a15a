"""Genesys Cloud Platform API emulator (test-only; the product never imports this file).

    cd tests/lab && python -m emulators.genesys.server --config CONFIG.json

It serves, on one HTTPS base (genesys-cloud-api.md §8.1: login and API on the same base, SDK mode (a) of §4.4):

- ``POST /oauth/token`` (client credentials, tokens that really expire);
- ``/api/v2/telephony/providers/edges/certificateauthorities`` CRUD with one seeded, read-only MANAGED CA;
- ``POST /api/v2/certificate/details``;
- edges, trunks and trunk base settings with paging and the documented query filters;
- ErrorBody errors with a correlation id, 429 with ``Retry-After`` and the ``inin-ratelimit-*`` headers.

Trunk health is computed, never scripted: a background loop plays each emulated Edge and, for every proxy in a TLS
trunk base's ``trunk_transport_serverProxyList``, does a real TLS handshake and sends SIP OPTIONS
(``emulators.common.siptls.SipTlsSession``), trusting only the REMOTE CAs currently in the trust store and
presenting the Edge's certificate, which is signed by the MANAGED CA. A proxy given by name is resolved through the
lab's DNS server (config ``dns``; never /etc/hosts or the machine's resolver) and the SBC's certificate is checked
against that name; an unresolvable name is a down trunk. Each Edge keeps one connection per proxy open and reuses it
while the SBC keeps it (sbc-apis.md §0.10, B6, E3), so after a certificate change on the SBC the trunk's health can
still reflect the old certificate until the session is re-established. ``connectedStatus``, ``optionsStatus`` and
their ``errorInfo`` are the result of the last round. A change to the trust store or to a trunk base wakes the loop
at once, so the next round (at most one polling interval later) reflects it.

Everything under ``/_control/`` is the lab's fault-injection and inspection API: TEST-ONLY, never called by the
product, and not part of the Genesys Cloud API (see ``docs/genesys.md``).

Facts are cited as ``§n`` of ``shared/reference/genesys-cloud-api.md``. Where a fact is UNCONFIRMED the stricter
behaviour is emulated and the comment says so.
"""

from __future__ import annotations

import argparse
import base64
import datetime
import fnmatch
import hashlib
import ipaddress
import json
import math
import re
import secrets
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from urllib.parse import parse_qs, unquote, urlencode

from cryptography import x509
from cryptography.hazmat.primitives import serialization

from emulators.common.httpserver import EmulatorHTTPServer, Reply, Request, Router
from emulators.common.siptls import SipTlsSession

EDGES = "/api/v2/telephony/providers/edges"
CAS = f"{EDGES}/certificateauthorities"
PEM_RE = re.compile(r"-----BEGIN CERTIFICATE-----[A-Za-z0-9+/=\s]+?-----END CERTIFICATE-----")
# §5.1: the message observed on a telephony PUT with a stale version (terraform-provider-genesyscloud #1461).
VERSION_MISMATCH = "The version number of the modified resource must match the version number in the database."
# §2.9 gives no maximum page size. UNCONFIRMED: the stricter 100 is enforced (400 above it).
MAX_PAGE_SIZE = 100
# §7 "External trunk settings": 5061 is the common listen port for TLS; used when a proxy entry has no port.
DEFAULT_TLS_PORT = 5061
# §1.3 documents "max 100" for edgeIds of GET /edges/metrics; §1.4 gives no maximum for trunkIds of
# GET /trunks/metrics. UNCONFIRMED, so the stricter reading: the same 100 (400 above it).
MAX_METRICS_IDS = 100
# §2.4 Edge enums (SDK models/edge.py) and the domain-entity state of §2.1.
EDGE_ONLINE_STATUSES = ("ONLINE", "OFFLINE")
EDGE_STATUS_CODES = ("NEW", "AWAITING_CONNECTION", "AWAITING_FINGERPRINT", "AWAITING_FINGERPRINT_VERIFICATION",
                     "FINGERPRINT_VERIFIED", "AWAITING_BOOTSTRAP", "ACTIVE", "INACTIVE", "RMA", "UNPAIRING", "UNPAIRED",
                     "INITIALIZING")
EDGE_STATES = ("active", "inactive", "deleted")


def now_utc() -> datetime.datetime:
    return datetime.datetime.now(datetime.timezone.utc)


def wire_time(ts: datetime.datetime | float | None = None) -> str:
    """§2 (models) and §2.10: ISO 8601 with milliseconds and ``Z``, e.g. ``2030-01-01T00:00:00.000Z``."""
    if ts is None:
        ts = now_utc()
    elif isinstance(ts, (int, float)):
        ts = datetime.datetime.fromtimestamp(ts, datetime.timezone.utc)
    return ts.strftime("%Y-%m-%dT%H:%M:%S.") + f"{ts.microsecond // 1000:03d}Z"


def parse_pem_chain(text: str) -> list:
    blocks = PEM_RE.findall(text or "")
    if not blocks:
        raise ValueError("no PEM certificate block")
    return [x509.load_pem_x509_certificate(b.encode("ascii")) for b in blocks]


def fingerprint(cert) -> str:
    return hashlib.sha256(cert.public_bytes(serialization.Encoding.DER)).hexdigest()


def _verifies(cert, issuer) -> bool:
    try:
        cert.verify_directly_issued_by(issuer)
        return True
    except Exception:  # noqa: BLE001 - any failure means "not verified"
        return False


def certificate_details(certs: list) -> list[dict]:
    """§2.3 CertificateDetails, one per certificate in the PEM (§1.2: "certificate or certificate chain").
    UNCONFIRMED: the order (kept as given) and the issuer/subject formatting (RFC 4514, "comma separated key=value").
    ``signatureValid`` is true only when the signature was actually verified against an issuer present in the
    same PEM (or itself when self-signed): the stricter reading."""
    out = []
    now = now_utc()
    for cert in certs:
        issuer = next((c for c in certs if c.subject == cert.issuer), None)
        expired = cert.not_valid_after_utc < now
        out.append({
            "issuer": cert.issuer.rfc4514_string(),
            "subject": cert.subject.rfc4514_string(),
            "expirationDate": wire_time(cert.not_valid_after_utc),
            "issueDate": wire_time(cert.not_valid_before_utc),
            "expired": expired,
            "valid": (not expired) and cert.not_valid_before_utc <= now,
            "signatureValid": bool(issuer is not None and _verifies(cert, issuer)),
        })
    return out


class ApiFailure(Exception):
    def __init__(self, status: int, code: str, message: str, details: list | None = None,
                 headers: dict | None = None, extra: dict | None = None):
        super().__init__(message)
        self.status, self.code, self.message = status, code, message
        self.details = details or []
        self.headers = headers or {}
        self.extra = extra or {}


def bad_request(message: str, field: str | None = None) -> ApiFailure:
    # §5.1: 400 bad.request; the field goes into details[].fieldName.
    details = [{"errorCode": "bad.request", "fieldName": field}] if field else []
    return ApiFailure(400, "bad.request", message, details)


def not_found() -> ApiFailure:
    return ApiFailure(404, "not.found", "The requested resource was not found.")  # §5.1


class Emulator:
    def __init__(self, config: dict):
        self.cfg = config
        self.lock = threading.RLock()
        self.round_cond = threading.Condition(self.lock)
        self.wake = threading.Event()
        self.org = config["org"]
        self.clients: dict[str, str] = dict(config["clients"])
        self.token_ttl = int(config.get("token_ttl", 86400))
        self.rate_limit = int(config.get("rate_limit_per_minute", 300))
        self.poll_interval = float(config.get("poll_interval", 2.0))
        self.tokens: dict[str, dict] = {}
        self.tokens_minted = 0
        self.token_failures = 0
        self.rate_windows: dict[str, list] = {}
        self.faults: dict = {}
        self.rounds_started = 0
        self.rounds_completed = 0
        self.last_round_seconds = 0.0
        self.trunk_metrics_queries: list[int] = []  # ids asked for by each GET /trunks/metrics (for /_control)
        self.health: dict[str, dict] = {}
        self.edges: dict[str, dict] = {}
        self.edge_material: dict[str, tuple[str, str]] = {}
        for e in config["edges"]:
            self.edges[e["id"]] = e
            with open(e["cert_file"], encoding="ascii") as fh:
                chain = fh.read()
            with open(e["key_file"], encoding="ascii") as fh:
                key = fh.read()
            self.edge_material[e["id"]] = (chain, key)
        with open(config["managed_ca"]["pem_file"], encoding="ascii") as fh:
            self.managed_pem = fh.read()
        self.seed_bases = config.get("trunk_bases", [])
        # Per Edge: the §2.4 health fields and the TEST-ONLY schedules that change them (see ``set_edge``).
        self.edge_status: dict[str, dict] = {}
        self.cas: dict[str, dict] = {}
        self.bases: dict[str, dict] = {}
        self.trunks: dict[str, dict] = {}
        self._seed()
        self.pool = ThreadPoolExecutor(max_workers=8, thread_name_prefix="edge-probe")
        # Edge -> SBC SIP-TLS sessions, one per (edge id, proxy), kept open between rounds.
        self.dns = config.get("dns")  # {"host", "port"}: the lab's DNS server that the Edges resolve names with
        self.sessions: dict[tuple[str, str], dict] = {}
        self.sessions_lock = threading.Lock()

    # -- seed / reset ------------------------------------------------------------------------------------
    def _seed(self) -> None:
        m = self.cfg["managed_ca"]
        certs = parse_pem_chain(self.managed_pem)
        stamp = wire_time()
        # §7 "Configure certificate authorities": exactly one MANAGED CA per org, read-only.
        self.cas = {m["id"]: {
            "id": m["id"], "name": m["name"], "version": 1, "dateCreated": stamp, "dateModified": stamp,
            "state": "active", "certificate": self.managed_pem, "type": "MANAGED", "services": ["SIP"],
            "certificateDetails": certificate_details(certs), "selfUri": f"{CAS}/{m['id']}",
        }}
        self.bases, self.trunks = {}, {}
        for b in self.seed_bases:
            self._add_base(b, seeded=True)
        # Optional per-Edge keys of the config (online_status, status_code, state, conversation_count); a config
        # without them (the fleet generator's, say) gets healthy, idle Edges.
        self.edge_status = {eid: {
            "onlineStatus": str(e.get("online_status", "ONLINE")), "statusCode": str(e.get("status_code", "ACTIVE")),
            "state": str(e.get("state", "active")), "conversationCount": int(e.get("conversation_count", 0)),
            "reads": 0, "schedule": [], "drain": None, "pending": []} for eid, e in self.edges.items()}

    def _add_base(self, spec: dict, seeded: bool = False) -> tuple[dict, list[dict]]:
        base_id = spec.get("id") or str(uuid.uuid4())
        stamp = wire_time()
        protocol = spec.get("protocol", "tls")
        base = {
            "id": base_id, "name": spec["name"], "version": 1, "dateCreated": stamp, "dateModified": stamp,
            "state": "active",
            # §1.5: BYOC Premises "External SIP" is external_sip.json with trunkType EXTERNAL.
            "trunkMetabase": {"id": "external_sip.json", "name": "External SIP"},
            "trunkType": "EXTERNAL", "managed": False,
            "site": {"id": self.cfg["site"]["id"], "name": self.cfg["site"]["name"],
                     "selfUri": f"{EDGES}/sites/{self.cfg['site']['id']}"},
            "selfUri": f"{EDGES}/trunkbasesettings/{base_id}",
            # §3 / §2.8: schema-plus-value properties; only confirmed keys are used.
            "properties": {
                "trunk_enabled": {"type": "boolean", "required": True,
                                  "value": {"default": True, "instance": bool(spec.get("enabled", True))}},
                "trunk_transport_protocolVariant": {"type": "string", "enum": ["udp", "tcp", "tls"],
                                                    "value": {"default": "udp", "instance": protocol}},
                "trunk_transport_serverProxyList": {"type": "array", "items": {"type": "string"},
                                                    "uniqueItems": True, "required": True,
                                                    "value": {"default": [], "instance": list(spec["proxies"])}},
            },
            "_seeded": seeded,
        }
        self.bases[base_id] = base
        trunks = []
        edge_ids = spec.get("edges") or list(self.edges)
        given = spec.get("trunks") or {}
        for edge_id in edge_ids:
            if edge_id not in self.edges:
                raise bad_request(f"unknown edge id {edge_id}", "edges")
            trunk_id = given.get(edge_id) or str(uuid.uuid4())
            # §1.4: a Trunk instance exists because a trunk base is assigned to an Edge (logical interface).
            self.trunks[trunk_id] = {"id": trunk_id, "base_id": base_id, "edge_id": edge_id, "created": stamp}
            self.health[trunk_id] = {"connected": False, "since": stamp, "options": [], "error": None}
            trunks.append({"id": trunk_id, "name": base["name"], "edge_id": edge_id, "trunk_base_id": base_id})
        return base, trunks

    def reset(self) -> None:
        self.drop_edge_sessions()
        with self.lock:
            self.faults = {}
            self.rate_windows = {}
            self.health = {}
            self._seed()
        self.wake.set()

    # -- helpers --------------------------------------------------------------------------------------------
    def _props(self, base: dict) -> dict:
        return base.get("properties") or {}

    def _prop(self, base: dict, key: str, default=None):
        entry = self._props(base).get(key)
        if not isinstance(entry, dict):
            return default
        value = entry.get("value") or {}
        return value.get("instance", value.get("default", default))

    def proxies(self, base: dict) -> list[str]:
        return [str(p) for p in (self._prop(base, "trunk_transport_serverProxyList", []) or [])]

    def remote_trust(self) -> str:
        """PEM of the REMOTE CAs that the Edge uses for SIP. §2.2: ``services`` = what the authority may be used
        to authenticate; UNCONFIRMED values, so the stricter reading: only entries listing SIP are trusted."""
        pems = [ca["certificate"] for ca in self.cas.values()
                if ca["type"] == "REMOTE" and ca.get("state") == "active"
                and any(str(s).upper() == "SIP" for s in ca.get("services") or [])]
        return "\n".join(pems)

    # -- Edge health (§2.4) ------------------------------------------------------------------------------
    def edge_down(self, edge_id: str) -> str | None:
        """Why this Edge cannot carry its trunks now, or None. §2.4: "healthy" = onlineStatus ONLINE, statusCode
        ACTIVE, state active. An OFFLINE Edge sends no SIP OPTIONS, so its trunks are down; UNCONFIRMED what a real
        org reports for the trunks of an Edge that is not ACTIVE or not active: the stricter reading, they are down
        too (never more optimistic than reality) and §2.6 ``enabled`` ("the Edge is in service") is false."""
        st = self.edge_status.get(edge_id) or {}
        self._drain(st)
        if st.get("onlineStatus") != "ONLINE":
            return f"the Edge is {st.get('onlineStatus')}: it sends no SIP OPTIONS"
        if st.get("statusCode") != "ACTIVE" or st.get("state") != "active":
            return f"the Edge is out of service (statusCode {st.get('statusCode')}, state {st.get('state')})"
        return None

    def edge_in_service(self, edge_id: str) -> bool:
        st = self.edge_status.get(edge_id) or {}
        return st.get("statusCode") == "ACTIVE" and st.get("state") == "active"

    @staticmethod
    def _drain(st: dict) -> None:
        """TEST-ONLY time-based decrease of conversationCount (``drainPerSecond``): calls end as time passes."""
        drain = st.get("drain")
        if drain:
            gone = int((time.monotonic() - drain["since"]) * drain["per_second"])
            st["conversationCount"] = max(0, drain["from"] - gone)

    def read_edge(self, edge_id: str) -> dict:
        """The Edge as one API answer shows it (listing or GET), and the read's effects on the TEST-ONLY schedules:
        the next value of ``conversationSchedule`` is what this read shows, and a ``pending`` change whose
        ``after_reads`` is reached applies after the read. Call with the lock held."""
        st = self.edge_status[edge_id]
        if st["schedule"]:
            st["conversationCount"] = st["schedule"].pop(0)
            st["drain"] = None
        view = self.edge_view(self.edges[edge_id])
        st["reads"] += 1
        due = [p for p in st["pending"] if p["after_reads"] <= st["reads"]]
        if due:
            st["pending"] = [p for p in st["pending"] if p["after_reads"] > st["reads"]]
            for change in due:
                self._apply_edge(st, change["set"])
            self.wake.set()  # the Edges' next round follows the new state at once
        return view

    def set_edge(self, edge_id: str, body: dict) -> dict:
        """TEST-ONLY: change an Edge now and/or schedule changes (see ``/_control/edges/<id>``). Raises ValueError."""
        st = self.edge_status[edge_id]
        now = {k: body[k] for k in ("onlineStatus", "statusCode", "state", "conversationCount") if k in body}
        self._check_edge_fields(now)
        schedule = body.get("conversationSchedule")
        if schedule is not None and (not isinstance(schedule, list)
                                     or not all(isinstance(n, int) and n >= 0 for n in schedule)):
            raise ValueError("conversationSchedule must be a list of counts (integers, 0 or more)")
        pending = body.get("pending") or []
        for p in pending:
            if not isinstance(p, dict) or not isinstance(p.get("after_reads"), int) or not isinstance(p.get("set"), dict):
                raise ValueError("pending entries are {after_reads: int, set: {field: value}}")
            self._check_edge_fields(p["set"])
        drain = body.get("drainPerSecond")
        if drain is not None and (not isinstance(drain, (int, float)) or drain <= 0):
            raise ValueError("drainPerSecond must be a number more than 0")
        self._apply_edge(st, now)
        if schedule is not None:
            st["schedule"] = list(schedule)
        if "pending" in body:  # replaces what was pending ([] clears it)
            st["pending"] = [{"after_reads": st["reads"] + int(p["after_reads"]), "set": dict(p["set"])}
                             for p in pending]
        if drain is not None:
            self._drain(st)
            st["drain"] = {"per_second": float(drain), "since": time.monotonic(), "from": st["conversationCount"]}
        self.wake.set()
        return self.edge_control_view(edge_id)

    @staticmethod
    def _check_edge_fields(fields: dict) -> None:
        if "onlineStatus" in fields and fields["onlineStatus"] not in EDGE_ONLINE_STATUSES:
            raise ValueError(f"onlineStatus must be one of {', '.join(EDGE_ONLINE_STATUSES)} (§2.4)")
        if "statusCode" in fields and fields["statusCode"] not in EDGE_STATUS_CODES:
            raise ValueError(f"statusCode must be one of {', '.join(EDGE_STATUS_CODES)} (§2.4)")
        if "state" in fields and fields["state"] not in EDGE_STATES:
            raise ValueError(f"state must be one of {', '.join(EDGE_STATES)} (§2.1)")
        if "conversationCount" in fields and (not isinstance(fields["conversationCount"], int)
                                              or fields["conversationCount"] < 0):
            raise ValueError("conversationCount must be an integer, 0 or more (§2.4)")
        unknown = set(fields) - {"onlineStatus", "statusCode", "state", "conversationCount"}
        if unknown:
            raise ValueError(f"unknown Edge fields {sorted(unknown)}")

    @staticmethod
    def _apply_edge(st: dict, fields: dict) -> None:
        st.update(fields)
        if "conversationCount" in fields:
            st["drain"] = None
            st["schedule"] = []

    def edge_control_view(self, edge_id: str) -> dict:
        st = self.edge_status[edge_id]
        self._drain(st)
        return {"id": edge_id, "name": self.edges[edge_id]["name"],
                **{k: st[k] for k in ("onlineStatus", "statusCode", "state", "conversationCount", "reads")},
                "schedule": list(st["schedule"]), "pending": list(st["pending"]),
                "drain_per_second": st["drain"]["per_second"] if st["drain"] else None,
                "down": self.edge_down(edge_id)}

    def find_edge(self, key: str) -> str | None:
        key = unquote(key)
        if key in self.edges:
            return key
        return next((eid for eid, e in self.edges.items() if e["name"].lower() == key.lower()), None)

    # -- health -------------------------------------------------------------------------------------------
    def health_loop(self) -> None:
        while True:
            if not self.faults.get("hold_health"):  # fault: the org reports nothing new (stale health, TEST-ONLY)
                self.run_round()
            self.wake.wait(self.poll_interval)
            self.wake.clear()

    def run_round(self) -> None:
        started = time.monotonic()
        with self.lock:
            self.rounds_started += 1
            # §2.7 TrunkMetrics.eventTime: the time of the observation. A round's results are stamped with the time the
            # round started probing (never later), so "observed after T" can only mean a probe that began after T.
            observed = wire_time()
            trust = self.remote_trust()
            jobs = []
            edge_down = {eid: self.edge_down(eid) for eid in self.edges}
            for trunk in self.trunks.values():
                base = self.bases[trunk["base_id"]]
                jobs.append((trunk["id"], trunk["edge_id"], self.proxies(base),
                             str(self._prop(base, "trunk_transport_protocolVariant", "udp")).lower(),
                             bool(self._prop(base, "trunk_enabled", True))))
        # An Edge that is down probes nothing and keeps no session (see edge_down).
        targets = {(edge_id, proxy) for _tid, edge_id, proxies, proto, enabled in jobs
                   if proto == "tls" and enabled and not edge_down.get(edge_id) for proxy in proxies}
        futures = {t: self.pool.submit(self._probe, t[0], t[1], trust) for t in targets}
        results = {t: f.result() for t, f in futures.items()}
        with self.sessions_lock:
            gone = [k for k in self.sessions if k not in targets]
        for key in gone:  # a proxy no longer in any trunk: the Edge closes its session to it
            self._drop_session(key)
        # §2.6 optionStateTime / connectedStateTime = the last change of the state: the round's observation time.
        stamp = observed
        with self.lock:
            for trunk_id, edge_id, proxies, proto, enabled in jobs:
                if trunk_id not in self.trunks:
                    continue
                old = self.health.get(trunk_id) or {"connected": False, "since": stamp, "options": []}
                old_opts = {o["proxyAddress"]: o for o in old.get("options", [])}
                options, error = [], None
                down = edge_down.get(edge_id)
                if not enabled:
                    connected = False
                elif down:
                    connected = False
                    error = down
                elif proto != "tls":
                    # UNCONFIRMED how UDP/TCP trunks look; the lab emulates TLS only, so they are never connected.
                    connected = False
                    error = "the lab's Edge only emulates TLS trunks"
                else:
                    for proxy in proxies:
                        res = results[(edge_id, proxy)]
                        prev = old_opts.get(proxy)
                        changed = prev is None or prev["optionState"] != res["ok"]
                        opt = {"proxyAddress": proxy, "optionState": res["ok"],
                               "optionStateTime": stamp if changed else prev["optionStateTime"]}
                        if not res["ok"]:
                            host = proxy.rsplit(":", 1)[0] if ":" in proxy else proxy
                            # §2.6 TrunkErrorInfo{text, code, details{code, message, hostname}}. The code strings are
                            # UNCONFIRMED; the emulator names the stage that failed.
                            opt["errorInfo"] = {"text": res["error"], "code": f"sip.options.{res['stage']}.failed",
                                                "details": {"code": res["stage"], "message": res["error"],
                                                            "hostname": host}}
                        options.append(opt)
                    # UNCONFIRMED whether one answering proxy is enough; the stricter reading: every proxy must answer.
                    connected = bool(options) and all(o["optionState"] for o in options)
                since = old["since"] if old.get("connected") == connected else stamp
                self.health[trunk_id] = {"connected": connected, "since": since, "options": options, "error": error,
                                         # §2.7 eventTime: only a round that probed the trunk observes it.
                                         "observed": observed if (enabled and proto == "tls" and not down)
                                         else old.get("observed")}
            self.rounds_completed += 1
            self.last_round_seconds = round(time.monotonic() - started, 3)
            self.round_cond.notify_all()

    def _resolve(self, host: str) -> tuple[str | None, str | None]:
        """(address, error). A literal address is used as it is; a name is resolved (A record) through the lab's
        DNS server only, as a real Edge resolves the trunk's SIP server names through its DNS."""
        try:
            ipaddress.ip_address(host)
            return host, None
        except ValueError:
            pass
        if not self.dns:
            return None, f"cannot resolve {host}: the lab gave the Edges no DNS server"
        try:
            import dns.exception
            import dns.resolver
        except ImportError:
            return None, f"cannot resolve {host}: dnspython is missing"
        res = dns.resolver.Resolver(configure=False)  # never /etc/resolv.conf or /etc/hosts
        res.nameservers, res.port = [self.dns["host"]], int(self.dns["port"])
        res.lifetime = res.timeout = 2.0
        where = f"{self.dns['host']}:{self.dns['port']}"
        try:
            answer = res.resolve(host, "A", search=False)
        except dns.resolver.NXDOMAIN:
            return None, f"cannot resolve {host}: no such name (NXDOMAIN from the lab DNS {where})"
        except dns.resolver.NoAnswer:
            return None, f"cannot resolve {host}: no A record (lab DNS {where})"
        except dns.exception.DNSException as exc:
            return None, f"cannot resolve {host} through the lab DNS {where}: {exc.__class__.__name__}: {exc}"
        return answer[0].to_text(), None

    def _probe(self, edge_id: str, proxy: str, trust: str) -> dict:
        host, _sep, port = proxy.rpartition(":")
        if not host or not port.isdigit():
            host, port = proxy, str(DEFAULT_TLS_PORT)
        chain, key = self.edge_material[edge_id]
        address, error = self._resolve(host)
        key_ = (edge_id, proxy)
        if address is None:
            self._drop_session(key_)
            return {"ok": False, "stage": "dns", "error": error, "status": None, "peer_sha256": None}
        trust_id = hashlib.sha256((trust or "").encode()).hexdigest()
        with self.sessions_lock:
            entry = self.sessions.get(key_)
        if entry is not None and (entry["address"] != address or entry["trust"] != trust_id):
            # UNCONFIRMED how an Edge treats its open sessions when its trust store changes; the stricter reading:
            # it connects again, so the new trust is proven by a new handshake.
            self._drop_session(key_)
            entry = None
        if entry is None:
            entry = {"address": address, "trust": trust_id, "opened": wire_time(),
                     "session": SipTlsSession(address, int(port), server_name=host, cadata=trust or None,
                                              client_chain_pem=chain, client_key_pem=key, timeout=3.0)}
            with self.sessions_lock:
                self.sessions[key_] = entry
        try:
            result = entry["session"].options()
        except Exception as exc:  # noqa: BLE001 - a broken probe is a failed probe, never a dead loop
            entry["session"].close()
            return {"ok": False, "stage": "tls", "error": f"probe failed: {exc}", "status": None, "peer_sha256": None}
        entry["last"] = {"ok": result["ok"], "reused": result.get("reused", False), "at": wire_time()}
        return result

    def _drop_session(self, key: tuple[str, str]) -> None:
        with self.sessions_lock:
            entry = self.sessions.pop(key, None)
        if entry is not None:
            entry["session"].close()

    def drop_edge_sessions(self) -> int:
        with self.sessions_lock:
            keys = list(self.sessions)
        for key in keys:
            self._drop_session(key)
        return len(keys)

    def session_view(self) -> list[dict]:
        """The Edges' open SIP-TLS sessions (test-only inspection): which certificate each one saw."""
        with self.sessions_lock:
            items = list(self.sessions.items())
        return [{"edge_id": k[0], "proxy": k[1], "address": e["address"], "open": e["session"].open,
                 "opened": e["opened"], "handshakes": e["session"].handshakes, "requests": e["session"].requests,
                 "peer_sha256": e["session"].peer_sha256, "last": e.get("last")} for k, e in items]

    def wait_rounds(self, rounds: int, timeout: float) -> bool:
        with self.lock:
            target = self.rounds_started + rounds
            self.wake.set()
            return self.round_cond.wait_for(lambda: self.rounds_completed >= target, timeout)

    # -- wire views ---------------------------------------------------------------------------------------
    def edge_view(self, e: dict) -> dict:
        site = self.cfg["site"]
        st = self.edge_status[e["id"]]
        self._drain(st)
        return {
            "id": e["id"], "name": e["name"], "version": 1,
            # §2.1 state, §2.4 statusCode / onlineStatus / conversationCount: the TEST-ONLY Edge controls set them.
            "state": st["state"],
            "dateCreated": self.cfg.get("created", wire_time()), "dateModified": self.cfg.get("created", wire_time()),
            "make": "Genesys", "model": "Lab Edge", "softwareVersion": "lab", "statusCode": st["statusCode"],
            "onlineStatus": st["onlineStatus"], "conversationCount": st["conversationCount"],
            "callDrainingState": "NONE",  # §2.4 enum; the lab never drains calls itself
            "physicalEdge": True, "managed": False, "edgeDeploymentType": "HARDWARE",
            "site": {"id": site["id"], "name": site["name"], "mediaModel": "Premises",
                     "selfUri": f"{EDGES}/sites/{site['id']}"},
            "selfUri": f"{EDGES}/{e['id']}",
        }

    def trunk_view(self, trunk: dict) -> dict:
        base = self.bases[trunk["base_id"]]
        edge = self.edges[trunk["edge_id"]]
        h = self.health.get(trunk["id"]) or {"connected": False, "since": trunk["created"], "options": []}
        view = {
            "id": trunk["id"],
            # UNCONFIRMED: a trunk instance is named after its trunk base.
            "name": base["name"], "version": 1, "state": "active",
            "dateCreated": trunk["created"], "dateModified": trunk["created"],
            "trunkType": base["trunkType"],
            "edge": {"id": edge["id"], "name": edge["name"], "selfUri": f"{EDGES}/{edge['id']}"},
            "trunkBase": {"id": base["id"], "name": base["name"], "selfUri": base["selfUri"]},
            "trunkMetabase": {"id": base["trunkMetabase"]["id"], "name": base["trunkMetabase"]["name"]},
            # §2.6: inService comes from trunk_enabled of the trunk base; enabled = the Edge is in service.
            "inService": bool(self._prop(base, "trunk_enabled", True)),
            "enabled": self.edge_in_service(edge["id"]),
            "logicalInterface": {"id": f"{edge['id']}-li1", "name": "Lab interface",
                                 "selfUri": f"{EDGES}/{edge['id']}/logicalinterfaces/{edge['id']}-li1"},
            "connectedStatus": {"connected": h["connected"], "connectedStateTime": h["since"]},
            "optionsStatus": h["options"],
            "optionsEnabledStatus": "ENABLED",
            "registersEnabledStatus": "DISABLED",
            "ipStatus": {"address": edge.get("address", "127.0.0.1")},
            "family": 2,
            "selfUri": f"{EDGES}/trunks/{trunk['id']}",
        }
        if h.get("error"):
            # §2.6 TrunkErrorInfo; the code strings are UNCONFIRMED (the emulator names the cause).
            code = "edge.down" if h["error"].startswith("the Edge is") else "transport.not.emulated"
            view["ipStatus"]["errorInfo"] = {"text": h["error"], "code": code}
        return view

    def base_view(self, base: dict, with_properties: bool = True) -> dict:
        view = {k: v for k, v in base.items() if not k.startswith("_")}
        if not with_properties:
            view.pop("properties", None)
        return view


def paged(req: Request, path: str, items: list, org_total: int | None, keep: dict) -> dict:
    """§2.9 paging envelope with host-relative URIs; nextUri/previousUri only when such a page exists."""
    try:
        size = int(req.q("pageSize", "25"))
        number = int(req.q("pageNumber", "1"))
    except ValueError:
        raise bad_request("pageSize and pageNumber must be integers", "pageSize") from None
    if size < 1 or size > MAX_PAGE_SIZE:
        raise bad_request(f"pageSize must be between 1 and {MAX_PAGE_SIZE}", "pageSize")
    if number < 1:
        raise bad_request("pageNumber must be 1 or more", "pageNumber")
    total = len(items)
    pages = max(1, math.ceil(total / size))

    def uri(n: int) -> str:
        params = {"pageSize": size, "pageNumber": n, **{k: v for k, v in keep.items() if v is not None}}
        return f"{path}?{urlencode(params)}"

    env = {
        "entities": items[(number - 1) * size: number * size],
        "pageSize": size, "pageNumber": number, "total": total, "pageCount": pages,
        "firstUri": uri(1), "lastUri": uri(pages), "selfUri": uri(number),
    }
    if org_total is not None:
        env["totalNumberOfEntities"] = org_total
    if number < pages:
        env["nextUri"] = uri(number + 1)
    if number > 1:
        env["previousUri"] = uri(min(number - 1, pages))
    return env


def name_matches(pattern: str | None, name: str) -> bool:
    # UNCONFIRMED: name filters are taken as case-insensitive with '*' wildcards.
    return pattern is None or fnmatch.fnmatchcase(name.lower(), pattern.lower())


def bool_q(req: Request, name: str) -> bool | None:
    val = req.q(name)
    if val is None:
        return None
    if val.lower() not in ("true", "false"):
        raise bad_request(f"{name} must be true or false", name)  # §2.10: booleans go as lowercase true/false
    return val.lower() == "true"


def build(emu: Emulator) -> Router:
    r = Router()

    def api(method: str, pattern: str):
        def deco(fn):
            r.add(method, pattern, lambda req, **kw: guarded(req, fn, kw))
            return fn
        return deco

    def error_reply(exc: ApiFailure, corr: str) -> Reply:
        # §5.1 ErrorBody; §8.7 contextId and the ININ-Correlation-Id header.
        body = {"message": exc.message, "code": exc.code, "status": exc.status, "contextId": corr,
                "details": exc.details, "errors": []}
        body.update(exc.extra)
        return Reply.json(body, exc.status, dict(exc.headers))

    def guarded(req: Request, fn, kw) -> Reply:
        corr = str(uuid.uuid4())
        headers = {"ININ-Correlation-Id": corr}
        try:
            with emu.lock:
                token = authenticate(req)
                rate_headers = rate_check(token)
                headers.update(rate_headers)
                inject_faults()
                expire_countdown()
            reply = fn(req, **kw)
        except ApiFailure as exc:
            exc.headers = {**headers, **exc.headers}
            return error_reply(exc, corr)
        reply.headers = {**headers, **reply.headers}
        return reply

    def authenticate(req: Request) -> str:
        auth = req.headers.get("Authorization") or ""
        if not auth.lower().startswith("bearer "):
            raise ApiFailure(401, "authentication.required",
                             "No authentication bearer token specified in authorization header.")  # §5.1
        token = auth.split(" ", 1)[1].strip()
        info = emu.tokens.get(token)
        if info is None:
            raise ApiFailure(401, "bad.credentials", "Invalid login credentials.")  # §5.1
        if info["expires_at"] <= time.time():
            raise ApiFailure(401, "credentials.expired",
                             "The supplied credentials are expired and cannot be used.")  # §5.1
        return token

    def rate_check(token: str) -> dict:
        # §5.4: client.credentials.token.rate.per.minute = 300 per token; §5.3: inin-ratelimit-* headers.
        now = time.time()
        window = emu.rate_windows.get(token)
        if window is None or now - window[0] >= 60:
            window = emu.rate_windows[token] = [now, 0]
        reset = max(1, int(math.ceil(60 - (now - window[0]))))
        storm = emu.faults.get("rate_limit")
        if storm and storm.get("count", 0) > 0:
            storm["count"] -= 1
            retry_after = int(storm.get("retry_after", 1))
            raise too_many(retry_after, window[1], reset)
        if window[1] >= emu.rate_limit:
            raise too_many(reset, window[1], reset)
        window[1] += 1
        return {"inin-ratelimit-count": str(window[1]), "inin-ratelimit-allowed": str(emu.rate_limit),
                "inin-ratelimit-reset": str(reset)}

    def too_many(retry_after: int, count: int, reset: int) -> ApiFailure:
        # §5.1/§8.6: 429, code too.many.requests.retry.after, Retry-After, the swagger message.
        return ApiFailure(
            429, "too.many.requests.retry.after",
            f"Rate limit exceeded the maximum. Retry the request in [{retry_after}] seconds",
            headers={"Retry-After": str(retry_after), "inin-ratelimit-count": str(count),
                     "inin-ratelimit-allowed": str(emu.rate_limit), "inin-ratelimit-reset": str(reset)},
            extra={"messageWithParams": "Rate limit exceeded the maximum. Retry the request in [{seconds}] seconds",
                   "messageParams": {"seconds": str(retry_after)},
                   "limit": {"key": "client.credentials.token.rate.per.minute", "namespace": "platform.api",
                             "value": emu.rate_limit}})

    def inject_faults() -> None:
        errs = emu.faults.get("errors")
        if errs and errs.get("count", 0) > 0:
            errs["count"] -= 1
            status = int(errs.get("status", 503))
            # §5.1: 500 internal.server.error, 503 service.unavailable, 504 request.timeout.
            code = {500: "internal.server.error", 503: "service.unavailable", 504: "request.timeout"}.get(
                status, "internal.server.error")
            raise ApiFailure(status, code, "The service is currently unavailable (injected by the lab).")

    def expire_countdown() -> None:
        exp = emu.faults.get("expire_tokens")
        if exp is None:
            return
        exp["after_requests"] -= 1
        if exp["after_requests"] <= 0:
            for info in emu.tokens.values():
                info["expires_at"] = time.time()
            emu.faults.pop("expire_tokens", None)

    # -- OAuth (§4.1, §8.1) ----------------------------------------------------------------------------------
    @r.route("POST", "/oauth/token")
    def token(req: Request) -> Reply:
        form = {k: v[0] for k, v in parse_qs(req.body.decode("utf-8", "replace")).items()}
        if form.get("grant_type") != "client_credentials":
            return Reply.json({"error": "unsupported_grant_type", "description": "grant type not supported",
                               "error_description": "grant type not supported"}, 400)
        auth = req.headers.get("Authorization") or ""
        cid = secret = None
        if auth.lower().startswith("basic "):
            try:
                cid, _sep, secret = base64.b64decode(auth.split(" ", 1)[1]).decode("utf-8").partition(":")
            except (ValueError, UnicodeDecodeError):
                cid = None
        with emu.lock:
            if cid is None or emu.clients.get(cid) != secret:
                emu.token_failures += 1
                # §4.1: OAuth-style error; 400 vs 401 UNCONFIRMED, the emulator answers 401.
                return Reply.json({"error": "invalid_client", "description": "authentication failed",
                                   "error_description": "authentication failed"}, 401)
            tok = secrets.token_urlsafe(32)
            emu.tokens[tok] = {"client_id": cid, "expires_at": time.time() + emu.token_ttl}
            emu.tokens_minted += 1
        return Reply.json({"access_token": tok, "token_type": "bearer", "expires_in": emu.token_ttl})

    # -- certificate authorities (§1.1, §2.2, §8.2) -----------------------------------------------------------
    def ca_certs(body: dict, field: str = "certificate") -> list:
        pem = body.get(field)
        if not isinstance(pem, str) or not pem.strip():
            raise bad_request(f"{field} is required", field)
        try:
            return parse_pem_chain(pem)
        except ValueError:
            # §1.2/§8.3: invalid PEM -> 400 bad.request (the exact message is UNCONFIRMED).
            raise bad_request("The certificate is not a valid X509 PEM encoded certificate.", field) from None

    def fps(pem: str) -> frozenset:
        return frozenset(fingerprint(c) for c in parse_pem_chain(pem))

    @api("GET", CAS)
    def list_cas(req: Request) -> Reply:
        # §1.1: no query parameters at all, but the standard listing envelope (§2.9).
        with emu.lock:
            items = [dict(ca) for ca in emu.cas.values()]
        size = max(25, len(items))
        first = f"{CAS}?pageSize={size}&pageNumber=1"
        return Reply.json({"entities": items, "pageSize": size, "pageNumber": 1, "total": len(items),
                           "pageCount": 1, "firstUri": first, "lastUri": first, "selfUri": first})

    @api("GET", CAS + r"/(?P<ca_id>[^/]+)")
    def get_ca(req: Request, ca_id: str) -> Reply:
        with emu.lock:
            ca = emu.cas.get(ca_id)
            if ca is None:
                raise not_found()
            return Reply.json(dict(ca))

    @api("POST", CAS)
    def create_ca(req: Request) -> Reply:
        body = json_body(req)
        for field in ("name", "certificate", "type", "services"):  # §2.2: required on input
            if body.get(field) in (None, "", []):
                raise bad_request(f"{field} is required", field)
        if str(body["type"]).upper() != "REMOTE":
            # §7: "You cannot add, edit, or delete managed certificate authorities."
            raise bad_request("Managed certificate authorities cannot be created.", "type")
        services = body["services"]
        if not isinstance(services, list) or not all(isinstance(s, str) and s for s in services):
            raise bad_request("services must be a list of service names", "services")
        certs = ca_certs(body)
        new_fps = frozenset(fingerprint(c) for c in certs)
        with emu.lock:
            # UNCONFIRMED (§9) whether duplicates are rejected: the stricter behaviour rejects them.
            for other in emu.cas.values():
                if fps(other["certificate"]) == new_fps:
                    raise bad_request(f"A certificate authority with this certificate already exists: {other['id']}",
                                      "certificate")
            ca_id = str(uuid.uuid4())
            stamp = wire_time()
            # §8.2: fill certificateDetails, id, version 1, state active, selfUri, dates.
            ca = {"id": ca_id, "name": str(body["name"]), "version": 1, "dateCreated": stamp, "dateModified": stamp,
                  "state": "active", "certificate": body["certificate"], "type": "REMOTE",
                  "services": list(services), "certificateDetails": certificate_details(certs),
                  "selfUri": f"{CAS}/{ca_id}"}
            if body.get("description"):
                ca["description"] = str(body["description"])
            withhold = emu.faults.get("withhold_remote")
            if withhold and int(withhold.get("count", 0)) > 0:
                # Fault (TEST-ONLY): the org does not keep this REMOTE CA. §7 / §1.1: anyone holding Telephony >
                # Plugin > All may delete a REMOTE CA; this stands for another administrator or automation that
                # removes it right after it was added. The answer is the normal 200 with the entity (§1), so only a
                # read-back shows that the org does not trust it.
                withhold["count"] = int(withhold["count"]) - 1
                withhold["withheld"] = withhold.get("withheld", 0) + 1
            else:
                emu.cas[ca_id] = ca
            out = dict(ca)
        emu.wake.set()
        return Reply.json(out, 200)  # §1: POST returns 200, not 201

    @api("PUT", CAS + r"/(?P<ca_id>[^/]+)")
    def update_ca(req: Request, ca_id: str) -> Reply:
        body = json_body(req)
        with emu.lock:
            ca = emu.cas.get(ca_id)
            if ca is None:
                raise not_found()
            if ca["type"] == "MANAGED":
                # §8.2: the status/code for changing the MANAGED CA is UNCONFIRMED; 400 bad.request as suggested.
                raise bad_request("Managed certificate authorities cannot be modified.", "type")
            conflict = emu.faults.get("conflict")
            if conflict and conflict.get("count", 0) > 0:
                # Fault: another writer changed the entity just before this PUT (its version moved on).
                conflict["count"] -= 1
                ca["version"] += 1
                ca["dateModified"] = wire_time()
            if body.get("version") is None:
                raise bad_request("version is required", "version")  # §5.2: require version on PUT
            if body.get("version") != ca["version"]:
                # §5.1/§5.2: 409 with the observed message; the code string is UNCONFIRMED (general.conflict).
                raise ApiFailure(409, "general.conflict", VERSION_MISMATCH)
            if str(body.get("type", "REMOTE")).upper() != "REMOTE":
                raise bad_request("The type of a certificate authority cannot be changed.", "type")
            if not body.get("name"):
                raise bad_request("name is required", "name")
            services = body.get("services")
            if not isinstance(services, list) or not services:
                raise bad_request("services is required", "services")
            new_pem = body.get("certificate")
            if new_pem:
                try:
                    same = fps(new_pem) == fps(ca["certificate"])
                except ValueError:
                    same = False
                if not same:
                    # §7: a remote CA is edited by changing its services; UNCONFIRMED whether the certificate may be
                    # replaced in place, the stricter behaviour refuses.
                    raise bad_request("The certificate of a certificate authority cannot be changed.", "certificate")
            ca.update({"name": str(body["name"]), "services": list(services), "version": ca["version"] + 1,
                       "dateModified": wire_time()})
            if "description" in body:
                ca["description"] = body["description"]
            out = dict(ca)
        emu.wake.set()
        return Reply.json(out)

    @api("DELETE", CAS + r"/(?P<ca_id>[^/]+)")
    def delete_ca(req: Request, ca_id: str) -> Reply:
        with emu.lock:
            ca = emu.cas.get(ca_id)
            if ca is None:
                raise not_found()
            if ca["type"] == "MANAGED":
                raise bad_request("Managed certificate authorities cannot be deleted.", "type")  # §7, §8.2
            del emu.cas[ca_id]
        emu.wake.set()
        return Reply(200, b"", "application/json")  # §1/§8.8: 200 with no body

    @api("POST", "/api/v2/certificate/details")
    def details(req: Request) -> Reply:
        certs = ca_certs(json_body(req))  # §1.2, §8.3
        return Reply.json({"certificateDetails": certificate_details(certs)})

    # -- edges (§1.3) -------------------------------------------------------------------------------------
    @api("GET", EDGES)
    def list_edges(req: Request) -> Reply:
        managed = bool_q(req, "managed")
        bool_q(req, "showCloudMedia")
        with emu.lock:
            views = [emu.edge_view(e) for e in emu.edges.values()]
        total = len(views)
        views = [v for v in views if name_matches(req.q("name"), v["name"])
                 and (req.q("site.id") is None or v["site"]["id"] == req.q("site.id"))
                 and req.q("edgeGroup.id") is None  # the lab has no edge groups
                 and (managed is None or v["managed"] == managed)]
        sort_by = req.q("sortBy", "name")
        views.sort(key=lambda v: str(v.get(sort_by, v["name"])).lower())
        keep = {k: req.q(k) for k in ("name", "site.id", "edgeGroup.id", "sortBy", "managed", "showCloudMedia")}
        page = paged(req, EDGES, views, total, keep)
        with emu.lock:  # what this answer shows is what the Edges' TEST-ONLY schedules count as a read
            page["entities"] = [emu.read_edge(v["id"]) for v in page["entities"]]
        return Reply.json(page)

    @api("GET", EDGES + r"/(?P<edge_id>[0-9a-f-]{36})")
    def get_edge(req: Request, edge_id: str) -> Reply:
        with emu.lock:
            if edge_id not in emu.edges:
                raise not_found()
            return Reply.json(emu.read_edge(edge_id))

    def trunk_listing(req: Request, path: str, edge_id: str | None) -> Reply:
        sort_order = (req.q("sortOrder") or "ASC").upper()
        if sort_order not in ("ASC", "DESC"):
            raise bad_request("sortOrder must be ASC or DESC", "sortOrder")
        trunk_type = req.q("trunkType")
        if trunk_type is not None and trunk_type.upper() not in ("EXTERNAL", "PHONE", "EDGE"):
            raise bad_request("trunkType must be EXTERNAL, PHONE or EDGE", "trunkType")  # §1.4
        edge_filter = edge_id or req.q("edge.id")
        with emu.lock:
            views = [emu.trunk_view(t) for t in emu.trunks.values()]
        total = len(views)
        views = [v for v in views
                 if (edge_filter is None or v["edge"]["id"] == edge_filter)
                 and (req.q("trunkBase.id") is None or v["trunkBase"]["id"] == req.q("trunkBase.id"))
                 and (trunk_type is None or v["trunkType"] == trunk_type.upper())]
        sort_by = req.q("sortBy", "name")
        views.sort(key=lambda v: (str(v.get(sort_by, v["name"])).lower(), v["edge"]["name"], v["id"]),
                   reverse=sort_order == "DESC")
        keep = {k: req.q(k) for k in ("sortBy", "sortOrder", "edge.id", "trunkBase.id", "trunkType")}
        return Reply.json(paged(req, path, views, total, keep))

    @api("GET", EDGES + r"/trunks")
    def list_trunks(req: Request) -> Reply:
        return trunk_listing(req, f"{EDGES}/trunks", None)

    @api("GET", EDGES + r"/(?P<edge_id>[0-9a-f-]{36})/trunks")
    def list_edge_trunks(req: Request, edge_id: str) -> Reply:
        with emu.lock:
            if edge_id not in emu.edges:
                raise not_found()
        return trunk_listing(req, f"{EDGES}/{edge_id}/trunks", edge_id)

    @api("GET", EDGES + r"/trunks/(?P<trunk_id>[0-9a-f-]{36})")
    def get_trunk(req: Request, trunk_id: str) -> Reply:
        with emu.lock:
            trunk = emu.trunks.get(trunk_id)
            if trunk is None:
                raise not_found()
            return Reply.json(emu.trunk_view(trunk))

    @api("GET", EDGES + r"/trunks/metrics")
    def trunks_metrics(req: Request) -> Reply:
        """§1.4 GET /trunks/metrics?trunkIds=<comma-separated> -> list[TrunkMetrics] (a bare JSON array, as the
        SDK's response_type list[TrunkMetrics] and the edges twin in §1.3 say)."""
        raw = req.q("trunkIds")
        ids = [i.strip() for i in (raw or "").split(",") if i.strip()]
        with emu.lock:
            emu.trunk_metrics_queries.append(len(ids))
        if not ids:
            # §1.4: trunkIds is required; §5.1: 400 bad.request with the field.
            raise bad_request("trunkIds is required", "trunkIds")
        if len(ids) > MAX_METRICS_IDS:
            raise bad_request(f"trunkIds may list at most {MAX_METRICS_IDS} ids", "trunkIds")  # see MAX_METRICS_IDS
        out = []
        with emu.lock:
            for trunk_id in dict.fromkeys(ids):
                trunk = emu.trunks.get(trunk_id)
                if trunk is None:
                    # UNCONFIRMED what an unknown id among several gives; the stricter reading: 404 not.found (§5.1)
                    # for the whole request, as GET /trunks/{trunkId}/metrics would.
                    raise not_found()
                view = emu.trunk_view(trunk)
                metrics = {
                    # §2.7 TrunkMetrics{eventTime, logicalInterface, trunk, calls, qos}. eventTime = the last health
                    # round that probed this trunk; absent (UNCONFIRMED, stricter) while it was never observed.
                    "logicalInterface": view["logicalInterface"],
                    "trunk": {"id": view["id"], "name": view["name"], "selfUri": view["selfUri"]},
                    "calls": {"inboundCallCount": 0, "outboundCallCount": 0},  # the lab places no calls
                    "qos": {"mismatchCount": 0},
                }
                observed = (emu.health.get(trunk_id) or {}).get("observed")
                if observed:
                    metrics["eventTime"] = observed
                out.append(metrics)
        return Reply.json(out)

    # -- trunk base settings (§1.5, §2.8, §3) -----------------------------------------------------------------
    @api("GET", EDGES + r"/trunkbasesettings")
    def list_bases(req: Request) -> Reply:
        expand = [x.strip() for x in (req.q("expand") or "").split(",") if x.strip()]
        managed = bool_q(req, "managed")
        bool_q(req, "recordingEnabled")
        bool_q(req, "ignoreHidden")
        sort_order = (req.q("sortOrder") or "ASC").upper()
        with emu.lock:
            # UNCONFIRMED whether the listing carries properties without expand=properties; stricter: it does not.
            views = [emu.base_view(b, "properties" in expand) for b in emu.bases.values()]
        total = len(views)
        views = [v for v in views if name_matches(req.q("name"), v["name"])
                 and (managed is None or v["managed"] == managed)]
        sort_by = req.q("sortBy", "name")
        views.sort(key=lambda v: str(v.get(sort_by, v["name"])).lower(), reverse=sort_order == "DESC")
        keep = {k: req.q(k) for k in ("sortBy", "sortOrder", "recordingEnabled", "ignoreHidden", "managed",
                                      "expand", "name")}
        return Reply.json(paged(req, f"{EDGES}/trunkbasesettings", views, total, keep))

    @api("GET", EDGES + r"/trunkbasesettings/(?P<base_id>[0-9a-f-]{36})")
    def get_base(req: Request, base_id: str) -> Reply:
        with emu.lock:
            base = emu.bases.get(base_id)
            if base is None:
                raise not_found()
            return Reply.json(emu.base_view(base))

    @api("PUT", EDGES + r"/trunkbasesettings/(?P<base_id>[0-9a-f-]{36})")
    def put_base(req: Request, base_id: str) -> Reply:
        body = json_body(req)
        with emu.lock:
            base = emu.bases.get(base_id)
            if base is None:
                raise not_found()
            if base.get("managed"):
                raise bad_request("Managed trunk base settings cannot be modified.", "managed")  # §3 (Terraform docs)
            if body.get("version") is None:
                raise bad_request("version is required", "version")
            if body.get("version") != base["version"]:
                raise ApiFailure(409, "general.conflict", VERSION_MISMATCH)  # §5.2
            if not body.get("name"):
                raise bad_request("name is required", "name")  # §2.8
            props = body.get("properties")
            if props is not None:
                if not isinstance(props, dict):
                    raise bad_request("properties must be an object", "properties")
                merged = json.loads(json.dumps(base["properties"]))
                for key, val in props.items():
                    # §2.8: clients commonly send only {"<prop>": {"value": {"instance": X}}}; §3: unknown keys echo.
                    if not isinstance(val, dict):
                        raise bad_request(f"property {key} must be an object", f"properties.{key}")
                    cur = merged.setdefault(key, {})
                    cur.update({k: v for k, v in val.items() if k != "value"})
                    cur.setdefault("value", {}).update(val.get("value") or {})
                base["properties"] = merged
            base.update({"name": body["name"], "version": base["version"] + 1, "dateModified": wire_time()})
            out = emu.base_view(base)
        emu.wake.set()
        return Reply.json(out)

    # -- control API: TEST-ONLY ---------------------------------------------------------------------------
    @r.route("GET", "/_control/health")
    def ctl_health(req: Request) -> Reply:
        return Reply.json({"ok": True, "rounds_completed": emu.rounds_completed})

    @r.route("GET", "/_control/state")
    def ctl_state(req: Request) -> Reply:
        with emu.lock:
            return Reply.json(state())

    def state() -> dict:
        return {
            "org": emu.org,
            "tokens_minted": emu.tokens_minted,
            "token_failures": emu.token_failures,
            "tokens_valid": sum(1 for i in emu.tokens.values() if i["expires_at"] > time.time()),
            "rounds_started": emu.rounds_started,
            "rounds_completed": emu.rounds_completed,
            "last_round_seconds": emu.last_round_seconds,
            "poll_interval": emu.poll_interval,
            "faults": emu.faults,
            "trunk_metrics_queries": list(emu.trunk_metrics_queries),
            "certificate_authorities": [
                {"id": ca["id"], "name": ca["name"], "type": ca["type"], "services": ca["services"],
                 "version": ca["version"], "fingerprints": sorted(fps(ca["certificate"]))}
                for ca in emu.cas.values()],
            "edge_sessions": emu.session_view(),
            "edges": [emu.edge_control_view(eid) for eid in emu.edges],
            "trunks": [{"id": t["id"], "name": emu.bases[t["base_id"]]["name"], "edge_id": t["edge_id"],
                        "trunk_base_id": t["base_id"], "proxies": emu.proxies(emu.bases[t["base_id"]]),
                        "connected": emu.health.get(t["id"], {}).get("connected", False),
                        "observed": emu.health.get(t["id"], {}).get("observed"),
                        "options": emu.health.get(t["id"], {}).get("options", [])}
                       for t in emu.trunks.values()],
        }

    @r.route("GET", "/_control/requests")
    def ctl_requests(req: Request) -> Reply:
        with server.log_lock:
            log = [e for e in server.request_log if not e[1].startswith("/_control/")]
        return Reply.json({"count": len(log), "requests": [{"method": m, "path": p, "status": s} for m, p, s in log]})

    @r.route("POST", "/_control/requests/reset")
    def ctl_requests_reset(req: Request) -> Reply:
        with server.log_lock:
            server.request_log.clear()
        with emu.lock:
            emu.trunk_metrics_queries.clear()
        return Reply.json({"ok": True})

    @r.route("POST", "/_control/faults")
    def ctl_faults(req: Request) -> Reply:
        """{"rate_limit": {"count": N, "retry_after": S}, "errors": {"count": N, "status": 503},
        "expire_tokens": {"after_requests": N}, "conflict": {"count": N}}; N API requests are affected.
        {"hold_health": true}: no health round runs until the faults are cleared, so every trunk keeps its last
        observation (eventTime) and state: the org reports health from before whatever changes meanwhile.
        {"withhold_remote": {"count": N}}: the next N REMOTE CAs created are answered 200 but not kept."""
        body = req.json() or {}
        with emu.lock:
            for key in ("rate_limit", "errors", "conflict", "expire_tokens", "hold_health", "withhold_remote"):
                if key in body:
                    emu.faults[key] = dict(body[key]) if isinstance(body[key], dict) else body[key]
            if "expire_tokens" in body and int(body["expire_tokens"].get("after_requests", 0)) <= 0:
                for info in emu.tokens.values():
                    info["expires_at"] = time.time()
                emu.faults.pop("expire_tokens", None)
            return Reply.json({"faults": emu.faults})

    @r.route("DELETE", "/_control/faults")
    def ctl_faults_clear(req: Request) -> Reply:
        with emu.lock:
            emu.faults = {}
        return Reply.json({"faults": {}})

    @r.route("POST", "/_control/trunks")
    def ctl_add_trunks(req: Request) -> Reply:
        """{"name": str, "proxies": ["host:port", ...], "protocol": "tls", "edges": [edge ids], "enabled": true}:
        a trunk base assigned to those Edges (all by default), hence one trunk per Edge. For SBC emulators."""
        body = req.json() or {}
        if not body.get("name") or not isinstance(body.get("proxies"), list):
            return Reply.json({"error": "name and proxies (list) are required"}, 400)
        try:
            with emu.lock:
                base, trunks = emu._add_base(body)
        except ApiFailure as exc:
            return Reply.json({"error": exc.message}, 400)
        emu.wake.set()
        return Reply.json({"trunk_base_id": base["id"], "trunks": trunks})

    @r.route("GET", "/_control/edges")
    def ctl_edges(req: Request) -> Reply:
        """TEST-ONLY: every Edge's §2.4 health fields, how often the API showed it (``reads``), its schedules."""
        with emu.lock:
            return Reply.json({"edges": [emu.edge_control_view(eid) for eid in emu.edges]})

    @r.route("POST", r"/_control/edges/(?P<key>[^/]+)")
    def ctl_edge(req: Request, key: str) -> Reply:
        """TEST-ONLY Edge faults, by Edge id or name. Body (every key optional):
        ``onlineStatus`` (ONLINE|OFFLINE), ``statusCode`` (§2.4 enum), ``state`` (active|inactive|deleted),
        ``conversationCount`` (int): set now;
        ``conversationSchedule`` ([int, ...]): each API read of the Edge (listing or GET) shows the next count, the
        last one stays;
        ``drainPerSecond`` (number): the count falls by this many per second from now, down to 0;
        ``pending`` ([{"after_reads": N, "set": {...}}]): apply ``set`` once the API has shown the Edge N more times
        (e.g. healthy for a pre-check, unhealthy for the check after a change); replaces what was pending.
        An Edge that is OFFLINE, not ACTIVE or not active stops probing: its trunks go down at the next round."""
        body = req.json() or {}
        with emu.lock:
            edge_id = emu.find_edge(key)
            if edge_id is None:
                return Reply.json({"error": f"no Edge {key}"}, 404)
            try:
                out = emu.set_edge(edge_id, body)
            except ValueError as exc:
                return Reply.json({"error": str(exc)}, 400)
        return Reply.json(out)

    @r.route("POST", "/_control/edge-sessions/drop")
    def ctl_drop_sessions(req: Request) -> Reply:
        """TEST-ONLY: the Edges close their kept SIP-TLS sessions; the next round connects (and handshakes) anew."""
        dropped = emu.drop_edge_sessions()
        emu.wake.set()
        return Reply.json({"dropped": dropped})

    @r.route("POST", "/_control/reset")
    def ctl_reset(req: Request) -> Reply:
        emu.reset()
        return Reply.json({"ok": True})

    @r.route("POST", "/_control/health/wait")
    def ctl_wait(req: Request) -> Reply:
        """Wait until ``rounds`` complete health rounds that start after this call have finished."""
        body = req.json() or {}
        ok = emu.wait_rounds(int(body.get("rounds", 1)), float(body.get("timeout", 30)))
        with emu.lock:
            return Reply.json({"ok": ok, **state()}, 200 if ok else 504)

    server = EmulatorHTTPServer(("127.0.0.1", emu.cfg["port"]), r, name="genesys",
                                certfile=emu.cfg.get("cert_file"), keyfile=emu.cfg.get("key_file"))
    r.server = server  # type: ignore[attr-defined]
    return r


def json_body(req: Request) -> dict:
    try:
        body = req.json()
    except ValueError:
        raise bad_request("The request could not be understood by the server due to malformed syntax.") from None
    if not isinstance(body, dict):
        raise bad_request("The request could not be understood by the server due to malformed syntax.")
    return body


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description="Genesys Cloud emulator (lab, test-only)")
    parser.add_argument("--config", required=True)
    args = parser.parse_args(argv)
    with open(args.config, encoding="utf-8") as fh:
        config = json.load(fh)
    emu = Emulator(config)
    router = build(emu)
    server = router.server  # type: ignore[attr-defined]
    threading.Thread(target=emu.health_loop, daemon=True, name="edge-health").start()
    print(f"genesys emulator on https://127.0.0.1:{config['port']} (poll every {emu.poll_interval}s)", flush=True)
    try:
        server.serve_forever(poll_interval=0.2)
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
