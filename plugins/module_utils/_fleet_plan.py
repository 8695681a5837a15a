# Copyright (c) 2026, byoc.certificates contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

# Note that this module util is **PRIVATE** to the collection. It can have breaking changes at any time.

"""The fleet plan of a rotation run: pure functions from what was read to what each host gets.

Used by the ``fleet_plan`` action plugin (issue 11, "Speed is part of the design"), which does the I/O (device
reads in threads, one store read per group, at most one ARI request per certificate) and hands the results here:

- ``summary_audiocodes`` / ``summary_ribbon_core`` / ``summary_ribbon_edge``: what one device serves now
  (``fleet_plan_installed``), from the vendors' own read functions;
- ``store_current``: a store entry's current material in the form ``_renewal.decide`` takes (no key needed);
- ``ari_cert_id``: the RFC 9773 certificate identifier;
- ``window_state``: whether a maintenance window is open at a given time (IANA zone, local time);
- ``pick_leader`` / ``plan_host``: the group's leader in the batch and the plan of one host
  (``fleet_plan_host``: deploy, why, wanted, leader, skipped, ...).

Nothing here does I/O or reads the clock: ``now`` is always passed in.
"""

from __future__ import annotations

import base64
import datetime
import typing as t

from ansible_collections.byoc.certificates.plugins.module_utils import _renewal
from ansible_collections.byoc.certificates.plugins.module_utils._errors import InputError

VENDORS = ("audiocodes", "ribbon_core", "ribbon_edge")
DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


def _dns_names(sans: t.Iterable[str] | None) -> list[str]:
    return [n[4:] if n.startswith("DNS:") else n for n in (sans or [])]


def _unique(values: t.Iterable[t.Any]) -> list:
    out: list = []
    for v in values:
        if v not in out:
            out.append(v)
    return out


# ================================================================================================ device summaries ==
def summary_audiocodes(status: dict, contexts: dict[int, dict], names: dict[int, str], sip: dict,
                       sip_interfaces: list[str]) -> dict:
    """What a Mediant serves on the given SIP Interfaces. ``contexts`` {index: {"certificate": details or None,
    "trusted_roots": [details]}} for the contexts bound to them; ``names`` {index: name}; ``sip`` the SIP Interface
    bindings {name: {"tls_context", "mutual_auth"}} (sbc-apis.md A4: bindings by name, no context = "default")."""
    ifs = [(n, r) for n, r in sorted(sip.items()) if n in sip_interfaces]
    ctx_names = _unique((r.get("tls_context") or "default") for _n, r in ifs)
    ctxs = [(i, contexts.get(i) or {}) for i, n in sorted(names.items()) if n in ctx_names]
    fps = _unique(((c.get("certificate") or {}).get("fingerprint_sha256")) for _i, c in ctxs)
    first_index, first = ctxs[0] if ctxs else (None, {})
    cert = first.get("certificate") or {}
    return {
        "fingerprint": fps[0] if len(fps) == 1 else None,
        "not_after": cert.get("not_after"),
        "names": _dns_names(cert.get("subject_alt_names")),
        "roots": [r.get("fingerprint_sha256") for r in first.get("trusted_roots") or []],
        "mutual_auth": any(r.get("mutual_auth") == 1 for _n, r in ifs),
        "split": len(fps) > 1,
        "split_detail": ("SIP Interfaces use different TLS contexts: " + ", ".join(ctx_names)) if len(fps) > 1 else "",
        "serving": {"index": first_index, "name": names.get(first_index) if first_index is not None else None},
        "ha": str(status.get("highAvailability", "")),
    }


def summary_ribbon_core(info: dict, name_prefix: str = "byoc") -> dict:
    """What a Ribbon SBC Core pair serves, from ``_ribbon.core.run_info`` (every node's file read over SFTP:
    sbc-apis.md B2, files are not replicated between nodes). ``versioned``: how many of our versioned certificate
    objects (``name_prefix``) the pair holds; with two or fewer (the bound one and the rollback target) a prune has
    nothing it may remove."""
    from ansible_collections.byoc.certificates.plugins.module_utils._ribbon.core import is_versioned

    b = info.get("bound") or {}
    d = b.get("details") or {}
    nodes = b.get("nodes") or {}
    node_fps = [n.get("fingerprint") for n in nodes.values()]
    prof = [p for p in info.get("profiles") or [] if p.get("name") == b.get("tls_profile")]
    ha = info.get("ha") or {}
    in_sync = ha.get("in_sync", True)
    split = (any(not n.get("present") for n in nodes.values()) or len(_unique(f for f in node_fps if f)) > 1
             or not in_sync)
    detail = "nodes hold " + " / ".join((f or "nothing readable") for f in node_fps)
    if not in_sync:
        detail += "; HA not in sync: " + "; ".join(ha.get("problems") or [])
    return {
        "fingerprint": d.get("fingerprint_sha256") or next((f for f in node_fps if f), None),
        "not_after": d.get("not_after"),
        "names": _dns_names(d.get("subject_alt_names")),
        "roots": [(c.get("details") or {}).get("fingerprint_sha256") for c in info.get("certificates") or []
                  if c.get("type") == "remote" and (c.get("details") or {}).get("fingerprint_sha256")],
        "mutual_auth": bool(prof) and str(prof[0].get("authClient", "false")).lower() == "true",
        "split": split,
        "split_detail": detail,
        "serving": {"name": b.get("name")},
        "ha": "in sync" if ha.get("in_sync", False) else "not in sync",
        "versioned": sum(1 for c in info.get("certificates") or []
                         if c.get("type", "local") == "local" and is_versioned(c.get("name") or "", name_prefix)),
    }


def summary_ribbon_edge(info: dict) -> dict:
    """What a Ribbon SBC Edge unit serves (slot 1, ``_ribbon.edge.run_info``; sbc-apis.md C6: no HA sync)."""
    b = info.get("bound") or {}
    epoch = b.get("not_after_epoch")
    not_after = None
    if epoch is not None:
        not_after = datetime.datetime.fromtimestamp(int(epoch), datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S+00:00")
    return {
        "fingerprint": b.get("fingerprint"),
        "not_after": not_after,
        "names": [b["common_name"]] if b.get("common_name") else [],
        "roots": [c.get("fingerprint") for c in info.get("certificates") or [] if c.get("role") == "ca"],
        "mutual_auth": False,
        "split": False, "split_detail": "",
        "serving": {"fingerprint": b.get("fingerprint")},
        "ha": "standalone",
    }


# =========================================================================================================== store ==
def store_current(current: dict | None) -> dict | None:
    """The store's current material (``document.summarize`` form, or the raw stored dict) as ``_renewal.decide``
    takes it. The private key is not opened: ``key_matches`` stays unknown (None), a missing key counts."""
    if not current or not current.get("not_before") or not current.get("not_after"):
        return None
    out = {
        "not_before": _renewal.parse_time(current["not_before"], "current.not_before"),
        "not_after": _renewal.parse_time(current["not_after"], "current.not_after"),
        "names": list(current.get("names") or []),
        "key_matches": None,
        "key_type": current.get("key_type"),
    }
    if "privatekey" in current or "has_privatekey" in current:
        out["key_missing"] = not (current.get("privatekey") or current.get("has_privatekey"))
    return out


def wanted_key_type(acme: dict) -> str:
    """The key type the group wants, as the store records it (``document.key_type``), from the role's settings."""
    kind = str(acme.get("key_type") or "ecdsa")
    if kind == "rsa":
        return f"rsa-{int(acme.get('key_size') or 2048)}"
    return f"ecdsa-{acme.get('key_curve') or 'secp256r1'}"


# ============================================================================================================= ARI ==
def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode("ascii").rstrip("=")


def ari_cert_id(cert) -> str:
    """RFC 9773 §4.1: base64url(authorityKeyIdentifier.keyIdentifier) "." base64url(serial number's DER content
    octets). Raises InputError when the certificate has no AKI key identifier (ARI cannot name it)."""
    from cryptography import x509  # the caller has checked cryptography (it loaded ``cert``)

    try:
        aki = cert.extensions.get_extension_for_class(x509.AuthorityKeyIdentifier).value.key_identifier
    except x509.ExtensionNotFound:
        aki = None
    if not aki:
        raise InputError("certificate", "has no authority key identifier, so ARI (RFC 9773) cannot identify it")
    serial = cert.serial_number
    length = max(1, (serial.bit_length() + 8) // 8)  # DER INTEGER: a leading 0x00 when the top bit is set
    return f"{_b64url(aki)}.{_b64url(serial.to_bytes(length, 'big', signed=False))}"


def ari_window(body: t.Any) -> dict | None:
    """The suggested window of a renewalInfo answer (RFC 9773 §4.2), or None when it has none usable."""
    if not isinstance(body, dict) or not isinstance(body.get("suggestedWindow"), dict):
        return None
    w = body["suggestedWindow"]
    try:
        start = _renewal.parse_time(w.get("start"), "suggestedWindow.start")
        end = _renewal.parse_time(w.get("end"), "suggestedWindow.end")
    except ValueError:
        return None
    if not start or not end:
        return None
    return {"window_start": start, "window_end": end, "explanation_url": body.get("explanationURL")}


# ============================================================================================ maintenance windows ==
def window_state(window: dict | None, now: datetime.datetime) -> dict:
    """Whether ``window`` ({timezone, days, start, end}; local HH:MM times, an end before the start runs over
    midnight) is open at ``now``. No window: always open. The same rule as roles/fleet_plan/tasks/window.yml."""
    if not window:
        return {"open": True, "reason": ""}
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

    zone = str(window.get("timezone") or "")
    try:
        local = now.astimezone(ZoneInfo(zone))
    except (ZoneInfoNotFoundError, ValueError):
        raise InputError("byoc_maintenance_window.timezone", f"{zone!r} is not an IANA zone name known to the"
                                                             " controller (e.g. Europe/Berlin)") from None
    days = [str(d).lower()[:3] for d in (window.get("days") or DAYS)]
    hm = local.hour * 100 + local.minute
    start = int(str(window.get("start") or "00:00").replace(":", ""))
    end = int(str(window.get("end") or "24:00").replace(":", ""))
    dow = local.weekday()
    today, yesterday = DAYS[dow] in days, DAYS[(dow + 6) % 7] in days
    if start <= end:
        is_open = today and start <= hm < end
    else:
        is_open = (today and hm >= start) or (yesterday and hm < end)
    there = f"{DAYS[dow]} {local.hour:02d}:{local.minute:02d}"
    reason = "" if is_open else (
        f"outside its maintenance window ({','.join(window.get('days') or ['every day'])} "
        f"{window.get('start') or '00:00'}-{window.get('end') or '24:00'} {zone}; it is {there} there)")
    return {"open": is_open, "local": f"{there} {zone}", "reason": reason}


# ============================================================================================================ plan ==
def pick_leader(members: list[str], windows: dict[str, dict], force: bool) -> str:
    """The group's leader in this batch: its first member whose window is open (any member when forced)."""
    for h in members:
        if force or (windows.get(h) or {}).get("open", True):
            return h
    return ""


def group_outcome(decision: dict, stored: dict | None, check_mode: bool) -> dict:
    """What the plan says about a group (the ``certificate_issue_result`` fields that plan.yml used)."""
    cur = stored or {}
    return {
        "due": bool(decision.get("renew") or decision.get("skip")),
        "renew": bool(decision.get("renew")),
        "backoff": bool(decision.get("skip")),
        "reasons": list(decision.get("reasons") or []),
        "msg": decision.get("msg") or "",
        "trigger": decision.get("trigger"),
        "renew_at": decision.get("renew_at"),
        "next_attempt": decision.get("next_attempt"),
        "current": {"fingerprint": cur.get("fingerprint"), "not_after": cur.get("not_after"),
                    "issuer": cur.get("issuer"), "extended_key_usage": cur.get("extended_key_usage")} if stored else None,
        "check_mode": check_mode,
    }


def plan_host(*, host: str, group: str, vendor: str, endpoint: str, leader: str, installed: dict, outcome: dict,
              window: dict, force: bool, managed_fingerprint: str) -> dict:
    """The plan of one host (``fleet_plan_host``), the rule of roles/fleet_plan/tasks/plan.yml.

    A group that is due renews (``deploy``; ``wanted`` is the stored certificate until the leader has issued, then
    the new one, see rotate.yml). A member that does not serve the group's stored certificate, whose HA members
    disagree, or that lacks the org's MANAGED CA gets the group's material. A closed window skips the host unless
    forced. A group in its failure backoff renews nothing, but a member that lags behind the store still gets it.
    """
    closed = not window.get("open", True) and not force
    cur = outcome.get("current") or {}
    wanted = cur.get("fingerprint")
    why: list[str] = []
    if outcome.get("renew"):
        verb = "the group would renew" if outcome.get("check_mode") else "the group renews"
        why.append(f"{verb} ({', '.join(outcome.get('reasons') or [])})")
    if wanted and installed.get("fingerprint") != wanted:
        served = installed.get("fingerprint")
        if not served:
            serving = (installed.get("serving") or {}).get("name")
            served = (f"object {serving}, whose file does not open with the PKCS#12 passphrase"
                      if vendor == "ribbon_core" and serving else "no single certificate")
        why.append(f"serves {served}, the group has {wanted}")
    if installed.get("split"):
        why.append(f"HA members disagree (split): {installed.get('split_detail')}")
    if managed_fingerprint and vendor != "ribbon_edge" and managed_fingerprint not in (installed.get("roots") or []):
        why.append("the org's MANAGED CA is not in its trusted roots")
    renews = bool(outcome.get("renew"))
    deploy = not closed and bool(why) and (wanted is not None or renews) and not installed.get("error")
    return {
        "host": host, "group": group, "leader": leader, "vendor": vendor, "endpoint": endpoint,
        "renew": renews and not closed, "renewed": False, "reasons": list(outcome.get("reasons") or []),
        "msg": outcome.get("msg") or "", "renew_at": outcome.get("renew_at"),
        "installed": installed.get("fingerprint"), "installed_not_after": installed.get("not_after"),
        "wanted": wanted, "wanted_not_after": cur.get("not_after"), "wanted_issuer": cur.get("issuer"),
        "wanted_extended_key_usage": cur.get("extended_key_usage"),
        "deploy": deploy, "skipped": closed, "skip_reason": window.get("reason", "") if closed else "",
        "why": why,
    }


def plan_line(plan: dict) -> str:
    """One line per host for the console (the same words as before: tests and users grep them)."""
    head = f"{plan['group']}/{plan['host']} ({plan['vendor']}, {plan['endpoint']}): "
    if plan.get("error"):
        body = f"FAILED to read: {plan['error']}"
    elif plan["skipped"]:
        body = f"skipped: {plan['skip_reason']}"
    elif plan["deploy"]:
        body = "deploy: " + "; ".join(plan["why"])
    else:
        body = f"nothing to do; serves {plan['installed']} until {plan['installed_not_after']}"
    return head + body + (f" | group: {plan['msg']}" if plan.get("msg") else "")


# ================================================================================================ the run (I/O) ==
# Everything below does I/O; the action plugin (and the module of the same name, when the action is bypassed) call
# ``run``. Device reads, store reads and ARI requests of the batch run concurrently in threads.

_CONNECTION = {
    "api_url": {"type": "str", "required": True},
    "username": {"type": "str", "required": True},
    "password": {"type": "str", "required": True, "no_log": True},
    "ca_path": {"type": "str", "default": ""},
    "sip_interfaces": {"type": "list", "elements": "str", "default": ["SIPInterface_0"]},
    "nodes": {"type": "list", "elements": "dict", "default": []},
    "sftp_username": {"type": "str", "default": ""},
    "sftp_password": {"type": "str", "default": "", "no_log": True},
    "pkcs12_passphrase": {"type": "str", "default": "", "no_log": True},
    "tls_profile": {"type": "str", "default": ""},
    "name_prefix": {"type": "str", "default": "byoc"},
}
_ACME = {
    "directory": {"type": "str", "required": True},
    "ca_file": {"type": "str", "default": ""},
    "use_ari": {"type": "bool", "default": True},
    "key_type": {"type": "str", "default": "ecdsa", "choices": ["ecdsa", "rsa"]},
    "key_size": {"type": "int", "default": 2048},
    "key_curve": {"type": "str", "default": "secp256r1", "no_log": False},
    "renew_fraction": {"type": "float", "default": 0.3333},
    "short_lived_fraction": {"type": "float", "default": 0.5},
    "short_lived_days": {"type": "float", "default": 10},
    "stagger_fraction": {"type": "float", "default": 0.1},
}
_STORE = {
    "backend": {"type": "str", "default": "filesystem", "choices": ["filesystem", "s3"]},
    "path": {"type": "str", "default": ""},
    "s3": {"type": "dict", "default": {}, "no_log": True},
}
ARGUMENT_SPEC = {
    "hosts": {"type": "list", "elements": "dict", "required": True, "options": {
        "host": {"type": "str", "required": True},
        "group": {"type": "str", "required": True},
        "vendor": {"type": "str", "required": True, "choices": list(VENDORS)},
        "names": {"type": "list", "elements": "str"},
        "endpoint": {"type": "str", "default": ""},
        "connection": {"type": "dict", "required": True, "options": _CONNECTION},
        "maintenance_window": {"type": "dict", "default": {}},
        "install_managed_ca": {"type": "bool", "default": True},
        "acme": {"type": "dict", "options": _ACME},
        "store": {"type": "dict", "options": _STORE},
    }},
    "force": {"type": "bool", "default": False},
    "ignore_backoff": {"type": "bool", "default": False},
    "now": {"type": "str", "default": ""},
    "managed_fingerprint": {"type": "str", "default": ""},
    "concurrency": {"type": "int", "default": 16},
    "timeout": {"type": "int", "default": 30},
    "devices_only": {"type": "bool", "default": False},
}


def _secrets_of(host: dict) -> list[str]:
    c = host["connection"]
    return [s for s in (c.get("password"), c.get("sftp_password"), c.get("pkcs12_passphrase")) if s]


def read_device(host: dict, timeout: int) -> dict:
    """One read of one device with the vendor's own read functions; returns ``installed``."""
    c = host["connection"]
    vendor = host["vendor"]
    if vendor == "audiocodes":
        from ansible_collections.byoc.certificates.plugins.module_utils import _pem
        from ansible_collections.byoc.certificates.plugins.module_utils._audiocodes import tls_context as ac
        from ansible_collections.byoc.certificates.plugins.module_utils._audiocodes.client import (
            AudioCodesClient, validate_connection)

        params = {"api_url": c["api_url"], "username": c["username"], "password": c["password"],
                  "ca_path": c.get("ca_path") or None, "validate_certs": True, "timeout": timeout}
        validate_connection(params)
        client = AudioCodesClient(params)
        state = ac.read_tables(client)  # sbc-apis.md A3/A5: GET status, GET files/ini
        wanted = {(r.get("tls_context") or ac.DEFAULT_CONTEXT) for n, r in state.sip.items()
                  if n in c["sip_interfaces"]}
        contexts = {}
        for index, name in sorted(state.names.items()):
            if name in wanted:  # only the contexts that serve the SIP Interfaces (A2: certificate, roots)
                ctx = ac.read_context(client, index, name)
                contexts[index] = {"certificate": _pem.details(ctx.cert) if ctx.cert is not None else None,
                                   "trusted_roots": [_pem.details(r) for r in ctx.roots]}
        return summary_audiocodes(state.status, contexts, state.names, state.sip, c["sip_interfaces"])
    from ansible_collections.byoc.certificates.plugins.module_utils._ribbon import core, edge
    from ansible_collections.byoc.certificates.plugins.module_utils._ribbon.common import check_url

    params = {"platform": "core" if vendor == "ribbon_core" else "edge", "api_url": c["api_url"],
              "username": c["username"], "password": c["password"], "validate_certs": True,
              "ca_path": c.get("ca_path") or None, "timeout": timeout,
              "nodes": [{"name": n.get("name"), "host": n.get("host"), "port": int(n.get("port") or 22),
                         "host_key": n.get("host_key")} for n in c.get("nodes") or []],
              "sftp_username": c.get("sftp_username") or None, "sftp_password": c.get("sftp_password") or None,
              "sftp_private_key": None, "sftp_known_hosts": None, "sftp_host_key_checking": True,
              "sftp_directory": "/opt/sonus/external", "tls_profile": c.get("tls_profile") or "defaultTlsProfile",
              "pkcs12_passphrase": c.get("pkcs12_passphrase") or None}
    check_url(params)
    if vendor == "ribbon_core":
        core.validate_common(dict(params, state="info", name_prefix=c.get("name_prefix") or "byoc", retain=0))
        return summary_ribbon_core(core.run_info(params), c.get("name_prefix") or "byoc")
    return summary_ribbon_edge(edge.run_info(params))


class _Ari:
    """ARI (RFC 9773) over plain HTTP: the directory once per ACME server, then one renewalInfo GET per
    certificate. Thread-safe; counts its requests."""

    def __init__(self, timeout: int) -> None:
        import threading

        self.timeout = timeout
        self.lock = threading.Lock()
        self.directories: dict[str, t.Any] = {}
        self.requests = 0

    def _client(self, base: str, ca_file: str):
        from ansible_collections.byoc.certificates.plugins.module_utils._http import HttpClient

        return HttpClient(base, service="ACME server (ARI)", ca_path=ca_file or None, timeout=self.timeout, retries=1)

    def renewal_url(self, directory: str, ca_file: str) -> str | None:
        with self.lock:
            if directory not in self.directories:
                try:
                    body = self._client(directory, ca_file).request("GET", directory).json()
                    self.directories[directory] = (body or {}).get("renewalInfo") if isinstance(body, dict) else None
                except Exception as exc:  # pylint: disable=broad-exception-caught
                    self.directories[directory] = exc
            found = self.directories[directory]
        if isinstance(found, Exception):
            raise found
        return found

    def window(self, directory: str, ca_file: str, cert) -> dict | None:
        url = self.renewal_url(directory, ca_file)
        if not url:
            return None  # the server does not offer ARI (no renewalInfo in its directory)
        cert_id = ari_cert_id(cert)
        with self.lock:
            self.requests += 1
        body = self._client(url, ca_file).request("GET", f"{url.rstrip('/')}/{cert_id}").json()
        found = ari_window(body)
        if found:
            found["cert_id"] = cert_id
        return found


def read_group(group: str, host: dict, now: datetime.datetime, force: bool, check_mode: bool, ari: _Ari,
               warn: t.Callable[[str], None], ignore_backoff: bool = False) -> dict:
    """One store read for the group, at most one ARI request for its current certificate, the decision."""
    from ansible_collections.byoc.certificates.plugins.module_utils import _pem
    from ansible_collections.byoc.certificates.plugins.module_utils._store import document as doc_mod

    store_opts = host["store"]
    store = doc_mod.open_store({"group": group, "backend": store_opts["backend"],
                                "path": store_opts.get("path") or None, "s3": store_opts.get("s3") or None})
    doc = store.read(group) or {}
    stored = doc_mod.summarize(doc.get("current"))
    current = store_current(stored)
    acme = host["acme"]
    backoff = doc.get("backoff")
    ari_data = None
    waiting = _renewal.in_backoff(backoff, now)[0] if backoff else False
    cert = None
    if stored and stored.get("certificate"):
        from ansible_collections.byoc.certificates.plugins.module_utils._tls_probe import extended_key_usage

        cert = _pem.load_certificate(stored["certificate"], f"the stored certificate of {group}")
        stored["extended_key_usage"] = extended_key_usage(cert)  # for the report's clientAuth finding
    if acme["use_ari"] and current is not None and cert is not None and (ignore_backoff or not waiting):
        try:
            ari_data = ari.window(acme["directory"], acme.get("ca_file") or "", cert)
        except Exception as exc:  # pylint: disable=broad-exception-caught  # any ARI error: the lifetime rule
            from ansible_collections.byoc.certificates.plugins.module_utils._runner import failure_of

            warn(f"Group {group}: ARI (RFC 9773) gave no renewal window ({failure_of(exc, 'fleet_plan')['msg']});"
                 " the lifetime rule decides instead.")
    decision = _renewal.decide(
        group=group, names=host["names"], now=now, current=current, force=force, backoff=backoff,
        ignore_backoff=ignore_backoff, ari=ari_data, use_ari=acme["use_ari"], key_type=wanted_key_type(acme),
        renew_fraction=acme["renew_fraction"], short_lived_fraction=acme["short_lived_fraction"],
        short_lived_days=acme["short_lived_days"], stagger_fraction=acme["stagger_fraction"])
    if ari_data and ari_data.get("explanation_url") and decision["trigger"] == "ari":
        decision["msg"] += f" (ARI explanation: {ari_data['explanation_url']})"
    out = group_outcome(decision, stored, check_mode)
    out["decision"] = decision
    out["store_revision"] = int(doc.get("revision") or 0)
    return out


class _ThreadLocalOpener:
    """ansible-core's ``open_url`` installs its opener (with the request's TLS context: ``ca_path``, client
    certificate) as urllib's PROCESS-WIDE opener and then opens the request through that global opener
    (module_utils/urls.py, ``Request.open``). Two threads therefore race: one thread's request can go out with another
    thread's CA file and fail with CERTIFICATE_VERIFY_FAILED (seen in the lab: an AudioCodes read verified against the
    Ribbon Edge's CA). While the plan's threads run, ``install_opener`` keeps the opener per thread and the global
    opener slot holds a proxy that opens with the calling thread's own; both are restored afterwards."""

    def __init__(self) -> None:
        import threading
        import urllib.request

        self.mod = urllib.request
        self.local = threading.local()
        self.saved_install = urllib.request.install_opener
        self.saved_opener = getattr(urllib.request, "_opener", None)

    def install(self, opener) -> None:
        self.local.opener = opener

    def open(self, *args, **kwargs):
        opener = getattr(self.local, "opener", None) or self.mod.build_opener()
        return opener.open(*args, **kwargs)

    def __enter__(self):
        self.mod.install_opener = self.install
        self.mod._opener = self  # pylint: disable=protected-access
        return self

    def __exit__(self, *exc) -> None:
        self.mod.install_opener = self.saved_install
        self.mod._opener = self.saved_opener  # pylint: disable=protected-access


def run(args: dict, *, check_mode: bool, warn: t.Callable[[str], None], now: datetime.datetime | None = None) -> dict:
    """The fleet plan of one batch: ``args`` as ARGUMENT_SPEC validated them."""
    from concurrent.futures import ThreadPoolExecutor

    from ansible_collections.byoc.certificates.plugins.module_utils._http import scrub
    from ansible_collections.byoc.certificates.plugins.module_utils._runner import failure_of

    hosts = args["hosts"]
    seen: set = set()
    for i, h in enumerate(hosts):
        if h["host"] in seen:
            raise InputError(f"hosts[{i}].host", f"{h['host']} is listed twice")
        seen.add(h["host"])
        if not args["devices_only"]:
            for field in ("names", "acme", "store"):
                if h.get(field) is None:
                    raise InputError(f"hosts[{i}].{field}", "is required (unless devices_only, which plans nothing)")
    if args["concurrency"] < 1:
        raise InputError("concurrency", "must be at least 1")
    real_now = now or _renewal.utcnow()
    decide_now = _renewal.time_option(args["now"], "now") if args["now"] else real_now
    members: dict[str, list[dict]] = {}
    for h in hosts:
        members.setdefault(h["group"], []).append(h)
    windows = {h["host"]: window_state(h["maintenance_window"], real_now) for h in hosts}  # InputError first
    ari = _Ari(args["timeout"])
    warnings: list[str] = []

    def device(h: dict) -> dict:
        try:
            return read_device(h, args["timeout"])
        except Exception as exc:  # pylint: disable=broad-exception-caught  # a per-host failure, not the batch's
            msg = scrub(failure_of(exc, "fleet_plan")["msg"], _secrets_of(h))
            return {"error": f"could not read {h['vendor']} device {h['host']} at {h['connection']['api_url']}: {msg}"
                             " Fix the device or its inventory variables (byoc_api_url, credentials), or leave the"
                             " host out with --limit, and run again."}

    def group(name: str) -> dict:
        try:
            return read_group(name, members[name][0], decide_now, args["force"], check_mode, ari, warnings.append,
                              ignore_backoff=args["ignore_backoff"])
        except Exception as exc:  # pylint: disable=broad-exception-caught
            return {"error": f"could not plan certificate group {name}: {failure_of(exc, 'fleet_plan')['msg']}"}

    with _ThreadLocalOpener(), ThreadPoolExecutor(max_workers=args["concurrency"]) as pool:
        dev_f = {h["host"]: pool.submit(device, h) for h in hosts}
        grp_f = {} if args["devices_only"] else {g: pool.submit(group, g) for g in members}
        installed = {k: f.result() for k, f in dev_f.items()}
        groups = {k: f.result() for k, f in grp_f.items()}
    for w in warnings:
        warn(w)
    if args["devices_only"]:  # a read-back (the verification's): what each device serves, no plan, no store, no ARI
        return {
            "changed": False, "hosts": {}, "groups": {}, "lines": [], "deploy_hosts": [], "deploy_groups": [],
            "installed": {k: v for k, v in installed.items() if not v.get("error")},
            "failed_hosts": {k: v["error"] for k, v in installed.items() if v.get("error")},
            "requests": {"devices": len(hosts), "store": 0, "ari": 0},
            "now": _renewal.iso(decide_now),
        }

    plans: dict[str, dict] = {}
    failed: dict[str, str] = {}
    for name, hs in members.items():
        leader = pick_leader([h["host"] for h in hs], windows, args["force"])
        outcome = groups[name]
        for h in hs:
            inst = installed[h["host"]]
            error = inst.get("error") or outcome.get("error")
            managed = args["managed_fingerprint"] if h["install_managed_ca"] else ""
            plan = plan_host(host=h["host"], group=name, vendor=h["vendor"], endpoint=h["endpoint"], leader=leader,
                             installed=inst, outcome=outcome if not outcome.get("error") else {},
                             window=windows[h["host"]], force=args["force"], managed_fingerprint=managed)
            if error:
                plan.update(deploy=False, error=error)
                failed[h["host"]] = error
            plans[h["host"]] = plan
    decisions = {g: {k: v for k, v in o.items() if k != "decision"} | {"decision": o.get("decision")}
                 for g, o in groups.items()}
    return {
        "changed": False,
        "hosts": plans,
        "installed": {k: v for k, v in installed.items() if not v.get("error")},
        "groups": decisions,
        "failed_hosts": failed,
        "lines": [plan_line(plans[h["host"]]) for h in hosts],
        "deploy_hosts": [h["host"] for h in hosts if plans[h["host"]]["deploy"]],
        "deploy_groups": sorted({plans[h["host"]]["group"] for h in hosts if plans[h["host"]]["deploy"]}),
        "requests": {"devices": len(hosts), "store": len(members), "ari": ari.requests},
        "now": _renewal.iso(decide_now),
    }
