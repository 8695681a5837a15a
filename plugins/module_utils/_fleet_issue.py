# Copyright (c) 2026, byoc.certificates contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

# Note that this module util is **PRIVATE** to the collection. It can have breaking changes at any time.

"""Batch issuance of a rotation run: every due certificate group of a batch in one controller-side call.

Used by the ``fleet_issue`` action plugin (issue 13, "Proof at fleet scale") and by the module of the same name
when the action is bypassed. Per group it does what ``roles/certificate_issue`` does when the fleet plan drives it
(lease, store, account, key, CSR, order, DNS-01, finalize, store write, root, ARI, failure backoff), but:

- once per batch, not per group: the ACME directory and account (one client per directory, shared by the
  threads), the root CA (file or URL), the DNS provider objects;
- DNS-01 for the whole batch together: every TXT record is published, then ONE wait until every authoritative
  server serves every record, then every challenge is answered;
- groups run in a bounded thread pool (``workers``); one group's failure never stops the others.

Pure parts (unit-tested): ``failure_message``, ``renewed_elsewhere``, ``result_for``, ``outcome_line``,
``wait_line``, ``csr_common_name``, ``batches``, ``secrets_of``. The ACME protocol comes from ``_acme.client``
(imported when an order is due), so that this file is usable without it for check mode and the pure parts.
"""

from __future__ import annotations

import copy
import datetime
import threading
import time
import typing as t

from ansible_collections.byoc.certificates.plugins.module_utils import _renewal
from ansible_collections.byoc.certificates.plugins.module_utils._errors import ApiError, ByocError, InputError

# The names of the role's tasks (roles/certificate_issue/tasks/*.yml), so that a failure names the same step.
STEP_LEASE = "Take the group's lease (waits, with progress, while another run or job slice issues for this group)"
STEP_READ = "Read the group from the store"
STEP_ACCOUNT = "ACME account (created on first use, with external account binding when configured)"
STEP_KEY = "Generate a new private key (encrypted with the store passphrase)"
STEP_CSR = "Certificate signing request with the group's names"
STEP_ORDER = "Create the order (with the group's profile, and replaces when ARI is in use)"
STEP_PUBLISH = "Publish the TXT records and wait until every authoritative server serves them"
STEP_VALIDATE = "Let the CA validate the challenges"
STEP_FINALIZE = "Finalize the order and download the certificate"
STEP_STORE = "Keep the new material in the store (the old current becomes previous)"
STEP_RENEW_LEASE = "Renew the group's lease"

ANOTHER_RUN = "renewed by another run after this run planned"
DEFAULT_BACKOFF = [60, 600, 6000, 86400]

_ACME = {
    "directory": {"type": "str", "required": True},
    "ca_file": {"type": "str", "default": ""},
    "validate_certs": {"type": "bool", "default": True},
    "contact": {"type": "list", "elements": "str", "default": []},
    "terms_agreed": {"type": "bool", "default": True},
    "eab": {"type": "dict", "default": {}, "options": {
        "kid": {"type": "str", "default": ""},
        "hmac_key": {"type": "str", "default": "", "no_log": True},
        "alg": {"type": "str", "default": "HS256"},
    }},
    "profile": {"type": "str", "default": ""},
    "use_ari": {"type": "bool", "default": True},
    "root_file": {"type": "str", "default": ""},
    "root_url": {"type": "str", "default": ""},
    "key_type": {"type": "str", "default": "ecdsa", "choices": ["ecdsa", "rsa"]},
    "key_size": {"type": "int", "default": 2048},
    "key_curve": {"type": "str", "default": "secp256r1", "no_log": False},
    "key_policy": {"type": "str", "default": "rotate", "choices": ["rotate", "reuse"], "no_log": False},
    "renew_fraction": {"type": "float", "default": 0.3333},
    "short_lived_fraction": {"type": "float", "default": 0.5},
    "short_lived_days": {"type": "float", "default": 10},
    "stagger_fraction": {"type": "float", "default": 0.1},
}
_DNS = {
    "provider": {"type": "str", "required": True, "choices": ["rfc2136", "route53", "powerdns", "cloudflare", "azure"]},
    "options": {"type": "dict", "default": {}},
    "zone": {"type": "str", "default": ""},
    "follow_cname": {"type": "bool", "default": False},
    "resolver": {"type": "list", "elements": "str", "default": []},
    "nameservers": {"type": "list", "elements": "str", "default": []},
    "wait_timeout": {"type": "int", "default": 300},
    "wait_interval": {"type": "float", "default": 1.0},
    "challenge_aliases": {"type": "dict", "default": {}},
}
_STORE = {
    "backend": {"type": "str", "default": "filesystem", "choices": ["filesystem", "s3"]},
    "path": {"type": "str", "default": ""},
    "s3": {"type": "dict", "default": {}, "no_log": True},
}
ARGUMENT_SPEC = {
    "groups": {"type": "list", "elements": "dict", "required": True, "options": {
        "group": {"type": "str", "required": True},
        "names": {"type": "list", "elements": "str", "required": True},
        "decision": {"type": "dict", "default": {}},
        "planned_fingerprint": {"type": "str", "default": ""},
        "acme": {"type": "dict", "required": True, "options": _ACME},
        "dns": {"type": "dict", "required": True, "options": _DNS},
        "store": {"type": "dict", "required": True, "options": _STORE},
    }},
    "passphrase": {"type": "str", "required": True, "no_log": True},
    "holder": {"type": "str", "default": ""},
    "lease_ttl": {"type": "int", "default": 3600},
    "lease_wait": {"type": "int", "default": -1},
    "lease_poll": {"type": "float", "default": 5.0},
    "backoff_schedule": {"type": "list", "elements": "int", "default": DEFAULT_BACKOFF},
    "force": {"type": "bool", "default": False},
    "ignore_backoff": {"type": "bool", "default": False},
    "now": {"type": "str", "default": ""},
    "workers": {"type": "int", "default": 10},
    "timeout": {"type": "int", "default": 30},
}

_SECRET_WORDS = ("secret", "password", "token", "key", "credential", "hmac", "passphrase")


# ================================================================================================== pure parts ==
def secrets_of(args: dict) -> list[str]:
    """Every secret the task was given (store passphrase, EAB HMAC keys, DNS and S3 credentials), longest first,
    for scrubbing messages. DNS options are provider-specific: every string value whose name says it is secret."""
    found: set[str] = set()
    if args.get("passphrase"):
        found.add(str(args["passphrase"]))

    def walk(value: t.Any, secret: bool) -> None:
        if isinstance(value, dict):
            for k, v in value.items():
                walk(v, secret or any(w in str(k).lower() for w in _SECRET_WORDS))
        elif isinstance(value, (list, tuple)):
            for v in value:
                walk(v, secret)
        elif secret and isinstance(value, str) and len(value.strip()) >= 4:
            found.add(value)
            found.add(value.strip())

    for g in args.get("groups") or []:
        walk(((g.get("acme") or {}).get("eab") or {}), False)
        walk(((g.get("dns") or {}).get("options") or {}), False)
        walk(((g.get("store") or {}).get("s3") or {}), False)
    return sorted(found, key=len, reverse=True)


def failure_message(group: str, step: str, what: str, backoff: dict | None) -> str:
    """The role's words (issue.yml's rescue): "Group <g>: issuing failed at '<step>': <what>. Backoff: failure N;
    the CA is not contacted for this group again before <time>." (no Backoff sentence when none was recorded)."""
    text = f"Group {group}: issuing failed at '{step}': {str(what).strip().rstrip('.')}."
    if backoff:
        text += (f" Backoff: failure {backoff.get('failures')}; the CA is not contacted for this group again before"
                 f" {backoff.get('next_attempt')}.")
    return text


def renewed_elsewhere(decision: dict, planned: str, stored_fp: str | None) -> bool:
    """The fleet plan read ``planned`` ('none': no certificate); the store now holds ``stored_fp`` once the lease
    is ours. Different while the plan said renew: another run renewed meanwhile (deliver, order nothing)."""
    return bool(planned) and bool(decision.get("renew")) and (stored_fp or "none") != planned


def another_run_decision(decision: dict, group: str, holders: list[str], stored_fp: str | None) -> dict:
    """plan.yml's override when another run renewed the group after this run planned."""
    return dict(decision, renew=False, skip=False, trigger=None, reasons=[ANOTHER_RUN],
                msg=(f"Group {group}: another run ({', '.join(h for h in holders if h) or 'unknown'}) stored a new"
                     f" certificate ({stored_fp or 'none'}) after this run planned; it is delivered and nothing is"
                     " ordered."))


def csr_common_name(names: list[str]) -> str | None:
    """key.yml: the first name is the CN only when it fits (RFC 5280 ub-common-name: 64 characters)."""
    return names[0] if names and len(names[0]) <= 64 else None


def txt_record_for(record: str, aliases: dict) -> str:
    """order.yml's static alias mode: ``challenge_aliases`` maps a name to the record that holds its challenge."""
    name = record[len("_acme-challenge."):] if record.startswith("_acme-challenge.") else record
    return str((aliases or {}).get(name, record)).rstrip(".").lower()


def batches(items: list, size: int) -> list[list]:
    """``items`` cut into lists of at most ``size`` (at least one per list)."""
    size = max(1, int(size))
    return [items[i:i + size] for i in range(0, len(items), size)]


def wait_line(records: int, servers: int, seen: int, elapsed: float, timeout: float) -> str:
    return (f"waiting for {records} TXT record{'s' if records != 1 else ''} at {servers} authoritative"
            f" server{'s' if servers != 1 else ''}: {seen} seen, {elapsed:.0f} s of {timeout:.0f} s")


def result_for(*, group: str, decision: dict, check_mode: bool, use_ari: bool, stored: dict | None,
               previous_fp: str | None, renewed: bool = False, replaces_dropped: bool = False,
               order_uri: str | None = None, delivered: dict | None = None, root_pem: str | None = None,
               failed: bool = False, msg: str | None = None, dns_wait: float | None = None) -> dict:
    """The group's outcome, shaped like report.yml's ``certificate_issue_result`` (public material only), plus
    ``failed``, ``msg`` and ``dns_wait_seconds``. ``stored`` the current material after the run (summarised),
    ``delivered`` the public material to deploy (certificate, chain, fullchain, root)."""
    d = decision or {}
    out = {
        "group": group,
        "renewed": bool(renewed),
        "skipped": bool(d.get("skip")),
        "due": bool(d.get("renew") or d.get("skip")),
        "reasons": list(d.get("reasons") or []),
        "msg": msg if msg is not None else (d.get("msg") or ""),
        "trigger": d.get("trigger"),
        "renew_at": d.get("renew_at"),
        "next_attempt": d.get("next_attempt"),
        "replaces": d.get("replaces_cert_id") if (renewed and use_ari and not replaces_dropped) else None,
        "order_uri": order_uri,
        "current": stored,
        "previous_fingerprint": previous_fp,
        "check_mode": bool(check_mode),
        "certificate": (delivered or {}).get("certificate"),
        "chain": (delivered or {}).get("chain"),
        "fullchain": (delivered or {}).get("fullchain"),
        "root": (root_pem if (root_pem and check_mode) else (delivered or {}).get("root")),
        "private_key_fact": "certificate_issue_private_key" if delivered is not None else None,
        "failed": bool(failed),
        "dns_wait_seconds": None if dns_wait is None else round(float(dns_wait), 3),
    }
    return out


def outcome_line(result: dict) -> str:
    """report.yml's "Show the outcome", for one group."""
    if result.get("failed"):
        return result.get("msg") or f"Group {result.get('group')}: failed"
    if result.get("renewed"):
        cur = result.get("current") or {}
        return (f"Group {result['group']}: renewed, new certificate {cur.get('fingerprint')} valid until"
                f" {cur.get('not_after')}" + (f" (DNS wait {result['dns_wait_seconds']:.1f} s)"
                                              if result.get("dns_wait_seconds") is not None else ""))
    if result.get("check_mode") and result.get("due") and not result.get("skipped"):
        return f"renewal due (check mode, nothing ordered): {result.get('msg')}"
    return result.get("msg") or ""


# ============================================================================================ the run (I/O) ==
class GroupFailed(Exception):
    """A step of one group failed: ``step`` is the role's task name, ``what`` the safe sentence."""

    def __init__(self, step: str, what: str, retry_after: t.Any = None, record: bool = True) -> None:
        super().__init__(what)
        self.step = step
        self.what = what
        self.retry_after = retry_after
        self.record = record


def _safe(exc: BaseException, secrets: list[str]) -> str:
    from ansible_collections.byoc.certificates.plugins.module_utils._http import scrub
    from ansible_collections.byoc.certificates.plugins.module_utils._runner import failure_of

    if isinstance(exc, ByocError):
        text = exc.msg
    elif type(exc).__name__ == "AcmeProblem":
        text = str(exc)  # the contract: one safe sentence
    else:
        text = failure_of(exc, "fleet_issue")["msg"]
    return scrub(text, secrets)


class _Shared:
    """What the batch shares: the ACME clients and accounts (one per directory), the root, the DNS providers and
    the authoritative servers of each zone. Everything is made once, under a lock, by the first thread that needs it."""

    def __init__(self, args: dict, secrets: list[str], progress: t.Callable[[str], None], client_factory) -> None:
        self.args = args
        self.secrets = secrets
        self.progress = progress
        self.client_factory = client_factory
        self.lock = threading.Lock()
        self.clients: dict[tuple, t.Any] = {}
        self.accounts: dict[tuple, t.Any] = {}  # key -> (account_url, key_pem_encrypted, fingerprint) or exception
        self.account_keys: dict[str, str] = {}  # directory -> an encrypted account key found in a group's entry
        self.roots: dict[tuple, t.Any] = {}
        self.providers: dict[tuple, t.Any] = {}
        self.servers: dict[tuple, t.Any] = {}
        self.requests = {"acme": 0, "root": 0}

    # -- ACME ----------------------------------------------------------------------------------------------------
    def account(self, acme: dict) -> tuple[t.Any, str, str, str]:
        """(client, account URL, encrypted account key PEM, key fingerprint) for the group's directory."""
        key = (acme["directory"], acme.get("ca_file") or "", bool(acme.get("validate_certs", True)))
        with self.lock:
            if key not in self.accounts:
                try:
                    self.accounts[key] = self._make_account(acme)
                except Exception as exc:  # pylint: disable=broad-exception-caught  # every group sees the same error
                    self.accounts[key] = exc
            found = self.accounts[key]
        if isinstance(found, Exception):
            raise found
        return found

    def _make_account(self, acme: dict) -> tuple[t.Any, str, str, str]:
        from ansible_collections.byoc.certificates.plugins.module_utils._store import document as doc_mod

        passphrase = self.args["passphrase"]
        enc = self.account_keys.get(acme["directory"])
        if enc:
            key = doc_mod.decrypt_stored_key(enc, passphrase, f"the account key for {acme['directory']}")
        else:  # account.yml: EC P-256, encrypted with the store passphrase
            from cryptography.hazmat.primitives.asymmetric import ec

            key = ec.generate_private_key(ec.SECP256R1())
            enc = doc_mod.encrypt_key(key, passphrase)
        client = self.client_factory(acme, enc, passphrase, self.args["timeout"], self.progress)
        eab = acme.get("eab") or {}
        url = client.account(contact=list(acme.get("contact") or []) or None, terms_agreed=acme.get("terms_agreed", True),
                             eab=({"kid": eab["kid"], "hmac_key": eab["hmac_key"], "alg": eab.get("alg") or "HS256"}
                                  if eab.get("kid") else None), create=True)
        return client, url, enc, doc_mod.public_key_fingerprint(key)

    # -- the root --------------------------------------------------------------------------------------------------
    def root(self, acme: dict) -> str | None:
        """deliver.yml: the root from a file, else from the URL where the CA publishes it; None when neither."""
        key = (acme.get("root_file") or "", acme.get("root_url") or "", acme.get("ca_file") or "")
        if not key[0] and not key[1]:
            return None
        with self.lock:
            if key not in self.roots:
                try:
                    self.roots[key] = self._fetch_root(acme)
                except Exception as exc:  # pylint: disable=broad-exception-caught
                    self.roots[key] = exc
            found = self.roots[key]
        if isinstance(found, Exception):
            raise found
        return found

    def _fetch_root(self, acme: dict) -> str:
        if acme.get("root_file"):
            try:
                with open(acme["root_file"], "r", encoding="ascii") as fh:
                    return fh.read()
            except (OSError, UnicodeDecodeError) as exc:
                raise InputError("acme.root_file", f"could not read {acme['root_file']}: {exc}") from None
        from ansible_collections.byoc.certificates.plugins.module_utils._http import HttpClient

        self.requests["root"] += 1
        url = acme["root_url"]
        client = HttpClient(url, service="ACME server (root CA)", ca_path=acme.get("ca_file") or None,
                            validate_certs=bool(acme.get("validate_certs", True)), timeout=self.args["timeout"], retries=1)
        return client.request("GET", url, headers={"User-Agent": "byoc.certificates fleet_issue"}).text

    # -- DNS -------------------------------------------------------------------------------------------------------
    def provider(self, dns: dict):
        import json

        from ansible_collections.byoc.certificates.plugins.module_utils._dns.record import create_provider

        key = (dns["provider"], json.dumps(dns.get("options") or {}, sort_keys=True, default=str))
        with self.lock:
            if key not in self.providers:
                prov = create_provider(dns["provider"], dict(dns.get("options") or {}))
                prov.validate()
                self.providers[key] = (prov, threading.Lock())
            return self.providers[key]

    def nameservers(self, dns: dict, zone: str) -> list:
        from ansible_collections.byoc.certificates.plugins.module_utils._dns import resolve
        from ansible_collections.byoc.certificates.plugins.module_utils._dns.txt import check_host, parse_addr

        key = (zone, tuple(dns.get("nameservers") or []), tuple(dns.get("resolver") or []))
        with self.lock:
            if key in self.servers:
                return self.servers[key]
        resolvers = [(check_host(h, "resolver"), p) for h, p in
                     (parse_addr(r, 53, "resolver") for r in dns.get("resolver") or [])]
        res_fn = (lambda: resolvers) if resolvers else resolve.system_resolvers
        if dns.get("nameservers"):
            given = [(check_host(h, "nameservers"), p) for h, p in
                     (parse_addr(n, 53, "nameservers") for n in dns["nameservers"])]
            servers = resolve.resolve_hostport(given, res_fn, 5.0)
        else:
            servers = resolve.discover_nameservers(zone, res_fn(), 53)
        with self.lock:
            self.servers[key] = servers
        return servers


class _Group:
    """The state of one group through the batch's phases."""

    def __init__(self, spec: dict) -> None:
        self.spec = spec
        self.name = spec["group"]
        self.names = [str(n).strip().lower().rstrip(".") for n in spec["names"]]
        self.store = None
        self.lease = None
        self.waited_for: list = []
        self.doc: dict | None = None
        self.decision: dict = dict(spec.get("decision") or {})
        self.key = None
        self.key_pem_enc: str | None = None
        self.csr_der: bytes | None = None
        self.order: dict | None = None
        self.authz: list[dict] = []
        self.txt: list[dict] = []  # {record, zone, value, servers, provider, plock}
        self.replaces_dropped = False
        self.renewed = False
        self.failure: GroupFailed | None = None
        self.failed_msg: str | None = None
        self.dns_wait: float | None = None
        self.client = None
        self.account = None
        self.downloaded: dict | None = None
        self.previous_fp: str | None = None
        self.notes: list[str] = []


def default_client_factory(acme: dict, account_key_pem: str, passphrase: str, timeout: int, progress):
    from ansible_collections.byoc.certificates.plugins.module_utils._acme.client import AcmeClient

    return AcmeClient(acme["directory"], account_key_pem, passphrase=passphrase, ca_file=acme.get("ca_file") or None,
                      validate_certs=bool(acme.get("validate_certs", True)), timeout=timeout, progress=progress,
                      user_agent="byoc.certificates fleet_issue")


def _new_key(acme: dict):
    from cryptography.hazmat.primitives.asymmetric import ec, rsa

    if acme.get("key_type") == "rsa":
        if int(acme.get("key_size") or 2048) < 2048:
            raise InputError("acme.key_size", "RSA keys need at least 2048 bits")
        return rsa.generate_private_key(public_exponent=65537, key_size=int(acme.get("key_size") or 2048))
    curves = {"secp256r1": ec.SECP256R1, "secp384r1": ec.SECP384R1, "secp521r1": ec.SECP521R1,
              "prime256v1": ec.SECP256R1, "P-256": ec.SECP256R1, "P-384": ec.SECP384R1, "P-521": ec.SECP521R1}
    curve = str(acme.get("key_curve") or "secp256r1")
    if curve not in curves:
        raise InputError("acme.key_curve", f"{curve!r} is not one of {', '.join(sorted(curves))}")
    return ec.generate_private_key(curves[curve]())


def _csr_der(key, names: list[str]) -> bytes:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.x509.oid import NameOID

    cn = csr_common_name(names)
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)] if cn else [])
    builder = x509.CertificateSigningRequestBuilder().subject_name(subject).add_extension(
        x509.SubjectAlternativeName([x509.DNSName(n) for n in names]), critical=False)
    return builder.sign(key, hashes.SHA256()).public_bytes(serialization.Encoding.DER)


def _wanted_key_type(acme: dict) -> str:
    if acme.get("key_type") == "rsa":
        return f"rsa-{int(acme.get('key_size') or 2048)}"
    return f"ecdsa-{acme.get('key_curve') or 'secp256r1'}"


class Engine:
    """One batch. ``run`` drives the phases; every group's failure is kept on the group."""

    def __init__(self, args: dict, *, check_mode: bool, warn: t.Callable[[str], None],
                 progress: t.Callable[[str], None] | None = None, client_factory=None,
                 clock: t.Callable[[], float] = time.monotonic, sleep: t.Callable[[float], None] = time.sleep) -> None:
        from ansible_collections.byoc.certificates.plugins.module_utils._store import lease as lease_mod

        self.args = args
        self.check_mode = check_mode
        self.warn = warn
        self.secrets = secrets_of(args)
        self.progress_lines: list[str] = []
        self.plock = threading.Lock()
        self.user_progress = progress
        self.clock = clock
        self.sleep = sleep
        self.shared = _Shared(args, self.secrets, self._progress, client_factory or default_client_factory)
        self.holder = args.get("holder") or lease_mod.default_holder()
        self.now = _renewal.time_option(args["now"], "now") if args.get("now") else None

    def _progress(self, line: str) -> None:
        from ansible_collections.byoc.certificates.plugins.module_utils._http import scrub

        line = scrub(str(line), self.secrets)
        with self.plock:
            self.progress_lines.append(line)
        if self.user_progress:
            self.user_progress(line)

    def _now(self) -> datetime.datetime:
        return self.now or _renewal.utcnow()

    # -- the store -------------------------------------------------------------------------------------------------
    def _open(self, g: _Group):
        from ansible_collections.byoc.certificates.plugins.module_utils._store import document as doc_mod

        s = g.spec["store"]
        return doc_mod.open_store({"group": g.name, "backend": s["backend"], "path": s.get("path") or None,
                                   "s3": s.get("s3") or None})

    def _update(self, g: _Group, change: t.Callable[[dict], None]) -> dict:
        """Read, change, compare-and-swap write (again on a concurrent write); returns the written document."""
        from ansible_collections.byoc.certificates.plugins.module_utils._store import document as doc_mod
        from ansible_collections.byoc.certificates.plugins.module_utils._store.base import StaleRevision, revision_of

        for _attempt in range(5):
            stored = g.store.read(g.name)
            revision = revision_of(stored)
            doc = copy.deepcopy(stored) if stored else doc_mod.empty_document(g.name)
            change(doc)
            doc["revision"] = revision + 1
            doc["updated"] = doc_mod.utc_iso()
            try:
                g.store.write(g.name, doc, revision)
            except StaleRevision:
                continue
            g.doc = doc
            return doc
        raise ApiError(f"Group {g.name}: the store entry kept changing while this run wrote it; run again.")

    # -- phase 1: lease, read, decide (per group) ------------------------------------------------------------------
    def prepare(self, g: _Group) -> None:
        from ansible_collections.byoc.certificates.plugins.module_utils._store import document as doc_mod
        from ansible_collections.byoc.certificates.plugins.module_utils._store import lease as lease_mod

        a = self.args
        try:
            g.store = self._open(g)
        except ByocError as exc:
            raise GroupFailed(STEP_READ, exc.msg, record=False) from None
        if not self.check_mode:
            wait = a["lease_wait"] if a["lease_wait"] >= 0 else a["lease_ttl"] + 300
            try:
                got = lease_mod.wait_acquire(g.store, g.name, self.holder, lease_mod.check_ttl(a["lease_ttl"]),
                                             timeout=wait, poll=a["lease_poll"],
                                             progress=lambda line: self._progress(f"Group {g.name}: {line}"))
            except ByocError as exc:
                raise GroupFailed(STEP_LEASE, exc.msg, record=False) from None
            g.lease = got["lease"]
            g.waited_for = got.get("waited_for") or []
        g.doc = g.store.read(g.name)
        try:
            doc_mod.check_passphrase(g.doc, g.name, g.store.where(g.name), a["passphrase"])
        except InputError as exc:
            raise GroupFailed(STEP_READ, exc.msg, record=False) from None
        current = (g.doc or {}).get("current") or {}
        g.previous_fp = ((g.doc or {}).get("previous") or {}).get("fingerprint")
        acme = g.spec["acme"]
        acct = ((g.doc or {}).get("accounts") or {}).get(acme["directory"]) or {}
        if acct.get("key"):
            with self.shared.lock:
                self.shared.account_keys.setdefault(acme["directory"], acct["key"])
        if not g.decision:
            g.decision = self._decide(g)
        planned = g.spec.get("planned_fingerprint") or ""
        if renewed_elsewhere(g.decision, planned, current.get("fingerprint")):
            g.decision = another_run_decision(g.decision, g.name, [w.get("holder") for w in g.waited_for],
                                              current.get("fingerprint"))

    def _decide(self, g: _Group) -> dict:
        """No decision given (the module used on its own): the fleet plan's own decision for the group."""
        from ansible_collections.byoc.certificates.plugins.module_utils import _fleet_plan

        host = {"names": g.names, "store": g.spec["store"], "acme": g.spec["acme"]}
        out = _fleet_plan.read_group(g.name, host, self._now(), self.args["force"], self.check_mode,
                                     _fleet_plan._Ari(self.args["timeout"]),  # pylint: disable=protected-access
                                     self.warn, ignore_backoff=self.args["ignore_backoff"])
        return out["decision"]

    # -- phase 2: account, key, CSR, order, publish (per group) -----------------------------------------------------
    def order(self, g: _Group) -> None:
        from ansible_collections.byoc.certificates.plugins.module_utils._store import document as doc_mod

        acme = g.spec["acme"]
        passphrase = self.args["passphrase"]
        try:
            g.client, url, enc, fp = self.shared.account(acme)
        except Exception as exc:  # pylint: disable=broad-exception-caught
            raise GroupFailed(STEP_ACCOUNT, _safe(exc, self.secrets), getattr(exc, "retry_after", None)) from None

        def keep_account(doc: dict) -> None:  # account.yml "Keep the account in the store"
            old = (doc.get("accounts") or {}).get(acme["directory"]) or {}
            new = dict(old, uri=url)
            if old.get("key_fingerprint") != fp:
                new.update(key=enc, key_fingerprint=fp, created=doc_mod.utc_iso(self._now()))
            doc.setdefault("accounts", {})[acme["directory"]] = new
        self._update(g, keep_account)

        try:
            current = (g.doc or {}).get("current") or {}
            reuse = False
            if acme.get("key_policy") == "reuse" and current.get("privatekey") and \
                    current.get("key_type") == _wanted_key_type(acme):
                from ansible_collections.byoc.certificates.plugins.module_utils import _pem

                key = doc_mod.decrypt_stored_key(current["privatekey"], passphrase, f"the current key of {g.name}")
                cert = _pem.load_certificate(current["certificate"], f"the stored certificate of {g.name}")
                reuse = _pem.key_matches_certificate(key, cert)
                if reuse:
                    g.key = key
            if not reuse:
                g.key = _new_key(acme)
        except Exception as exc:  # pylint: disable=broad-exception-caught
            raise GroupFailed(STEP_KEY, _safe(exc, self.secrets)) from None
        try:
            g.csr_der = _csr_der(g.key, g.names)
        except Exception as exc:  # pylint: disable=broad-exception-caught
            raise GroupFailed(STEP_CSR, _safe(exc, self.secrets)) from None

        replaces = g.decision.get("replaces_cert_id") if acme.get("use_ari", True) else None
        try:
            try:
                g.order = g.client.new_order(g.names, replaces=replaces or None, profile=acme.get("profile") or None)
            except Exception as exc:  # pylint: disable=broad-exception-caught
                # acme-and-dns.md §1.5: community.crypto's default strategy orders again without replaces when an
                # order with it fails. alreadyReplaced means an earlier run got the replacement but did not keep it
                # (the stored certificate is still the old one); a CA may also refuse the replaced certificate for
                # another reason, e.g. Pebble answers 500 "could not find an order for the given certificate" when
                # the account is not the one that ordered it (a new ACME directory URL, hence a new account). A
                # refusal that is about the CA's state (rate limit, nonces, connection) is not retried here.
                if not replaces or getattr(exc, "kind", "") in ("rateLimited", "badNonce", "connection", "timeout"):
                    raise
                g.replaces_dropped = True
                g.order = g.client.new_order(g.names, replaces=None, profile=acme.get("profile") or None)
        except Exception as exc:  # pylint: disable=broad-exception-caught
            raise GroupFailed(STEP_ORDER, _safe(exc, self.secrets), getattr(exc, "retry_after", None)) from None
        order_url = g.order.get("url")
        self._update(g, lambda doc: doc.update(last_order_url=order_url))
        try:
            g.authz = [z for z in g.client.authorizations(g.order) if z.get("status") != "valid"]
        except Exception as exc:  # pylint: disable=broad-exception-caught
            raise GroupFailed(STEP_ORDER, _safe(exc, self.secrets), getattr(exc, "retry_after", None)) from None
        self.publish(g)

    def publish(self, g: _Group) -> None:
        """Every TXT record of the group, at the provider (the wait is the batch's, in ``wait``)."""
        from ansible_collections.byoc.certificates.plugins.module_utils._dns import record as rec
        from ansible_collections.byoc.certificates.plugins.module_utils._dns import resolve
        from ansible_collections.byoc.certificates.plugins.module_utils._dns.txt import is_subdomain, normalize_name

        dns = g.spec["dns"]
        try:
            prov, plock = self.shared.provider(dns)
            zone_opt = normalize_name(dns["zone"], "zone") if dns.get("zone") else None
            for z in g.authz:
                record = txt_record_for(z["record"], dns.get("challenge_aliases") or {})
                if dns.get("follow_cname"):
                    resolve.require_dnspython("for follow_cname")
                    resolvers = [rec.parse_addr(r, 53, "resolver") for r in dns.get("resolver") or []]
                    record, _chain = resolve.follow_cnames(record, resolvers or resolve.system_resolvers())
                if zone_opt and not is_subdomain(record, zone_opt):
                    raise InputError("dns.zone", f"the record {record} is not inside the zone {zone_opt}")
                with plock:
                    zone = prov.find_zone(record, zone_opt)
                    servers = self.shared.nameservers(dns, zone)
                    before = prov.get_txt(zone, record)
                    after, added, removed = rec.plan(before, [z["value"]], "present")
                    if added:
                        prov.change(zone, record, before=before, after=after, added=added, removed=removed, ttl=60)
                g.txt.append({"record": record, "zone": zone, "value": z["value"], "servers": servers,
                              "provider": prov, "plock": plock, "added": bool(added)})
        except Exception as exc:  # pylint: disable=broad-exception-caught
            raise GroupFailed(STEP_PUBLISH, _safe(exc, self.secrets)) from None

    # -- phase 3: ONE wait for every record of the batch -------------------------------------------------------------
    def wait(self, groups: list[_Group]) -> None:
        from concurrent.futures import ThreadPoolExecutor

        from ansible_collections.byoc.certificates.plugins.module_utils._dns import resolve
        from ansible_collections.byoc.certificates.plugins.module_utils._dns.record import wait_summary
        from ansible_collections.byoc.certificates.plugins.module_utils._dns.txt import format_addr

        pending = [g for g in groups if g.txt and g.failure is None]
        for g in groups:
            if g.failure is None and not g.txt:
                g.dns_wait = 0.0
        if not pending:
            return
        synced = set()
        for g in pending:  # Route 53: INSYNC once per provider that changed something
            prov = g.txt[0]["provider"]
            if id(prov) not in synced and any(x["added"] for x in g.txt):
                synced.add(id(prov))
                try:
                    prov.wait_for_sync(float(g.spec["dns"]["wait_timeout"]))
                except Exception as exc:  # pylint: disable=broad-exception-caught
                    for h in pending:
                        if h.txt and h.txt[0]["provider"] is prov:
                            h.failure = GroupFailed(STEP_PUBLISH, _safe(exc, self.secrets))
        pending = [g for g in pending if g.failure is None]
        start = self.clock()
        ok: dict[tuple, bool] = {}
        status: dict[tuple, dict] = {}
        all_servers = {s for g in pending for x in g.txt for s in x["servers"]}
        records: dict[tuple, set] = {}
        for g in pending:
            for x in g.txt:
                records.setdefault((x["record"], x["value"]), set()).update(x["servers"])
        longest = max((float(g.spec["dns"]["wait_timeout"]) for g in pending), default=0.0)
        shown = -10.0
        interval = min((float(g.spec["dns"].get("wait_interval") or 1.0) for g in pending), default=1.0)
        with ThreadPoolExecutor(max_workers=max(1, min(16, self.args["workers"] * 2))) as pool:
            while pending:
                todo = sorted({(s, x["record"], x["value"]) for g in pending for x in g.txt for s in x["servers"]
                               if not ok.get((s, x["record"], x["value"]))})

                def ask(item: tuple) -> tuple:
                    server, record, value = item
                    return item, resolve.poll_once([server], record, [value], "present", 5.0)[0]

                for item, st in pool.map(ask, todo):
                    ok[item] = bool(st["ok"])
                    status[item] = st
                elapsed = self.clock() - start
                still = []
                for g in pending:
                    items = [(s, x["record"], x["value"]) for x in g.txt for s in x["servers"]]
                    if all(ok.get(i) for i in items):
                        g.dns_wait = elapsed
                        continue
                    limit = float(g.spec["dns"]["wait_timeout"])
                    if elapsed >= limit:
                        behind = [x for x in g.txt if not all(ok.get((s, x["record"], x["value"])) for s in x["servers"])]
                        x = behind[0]
                        blank = {"ok": False, "serving": [], "error": None}
                        sts = [status.get((s, x["record"], x["value"])) or dict(blank, server=format_addr(*s))
                               for s in x["servers"]]
                        g.dns_wait = elapsed
                        g.failure = GroupFailed(STEP_PUBLISH, (
                            f"Timed out (wait_timeout {limit:g}s, {elapsed:.0f}s spent polling) waiting for all"
                            f" {len(x['servers'])} nameservers of {x['zone']} to serve the TXT values at {x['record']}:"
                            f" {wait_summary(x['record'], sts, 'present')}. Check that the secondaries receive NOTIFY"
                            " and zone transfers from the primary (or the provider has finished publishing), or raise"
                            " wait_timeout. The TXT records are removed again"))
                        continue
                    still.append(g)
                pending = still
                if not pending:
                    break
                if elapsed - shown >= 10.0:
                    shown = elapsed
                    self._progress(wait_line(len(records), len(all_servers),
                                             sum(1 for r, ss in records.items() if all(ok.get((s,) + r) for s in ss)),
                                             elapsed, longest))
                self.sleep(interval)

    # -- phase 4: challenges, finalize, store (per group) -----------------------------------------------------------
    def _renew_lease(self, g: _Group) -> None:
        from ansible_collections.byoc.certificates.plugins.module_utils._store import lease as lease_mod

        if g.lease is None:
            return
        try:
            g.lease = lease_mod.renew(g.store, g.name, self.holder, self.args["lease_ttl"])
        except ByocError as exc:  # the lease is another run's now: write nothing more for this group
            g.lease = None
            raise GroupFailed(STEP_RENEW_LEASE, exc.msg, record=False) from None

    def finish(self, g: _Group) -> None:
        from ansible_collections.byoc.certificates.plugins.module_utils._store import document as doc_mod

        acme = g.spec["acme"]
        self._renew_lease(g)
        timeout = max(60, self.args["timeout"] * 4)
        try:
            for z in g.authz:
                g.client.respond(z["challenge_url"])
        except Exception as exc:  # pylint: disable=broad-exception-caught
            raise GroupFailed(STEP_VALIDATE, _safe(exc, self.secrets), getattr(exc, "retry_after", None)) from None
        for z in g.authz:
            try:
                g.client.wait_authorization(z["url"], timeout=timeout)
            except Exception as exc:  # pylint: disable=broad-exception-caught
                how = "did not become valid in time" if getattr(exc, "kind", "") == "timeout" else "became invalid"
                raise GroupFailed(STEP_VALIDATE, f"the authorization of {z.get('identifier')} {how}: {_safe(exc, self.secrets)}",
                                  getattr(exc, "retry_after", None)) from None
        self._renew_lease(g)
        try:
            order = g.client.finalize(g.order, g.csr_der, timeout=timeout)
            g.downloaded = g.client.download(order["certificate"])
        except Exception as exc:  # pylint: disable=broad-exception-caught
            raise GroupFailed(STEP_FINALIZE, _safe(exc, self.secrets), getattr(exc, "retry_after", None)) from None
        order_url = g.order.get("url")
        passphrase = self.args["passphrase"]
        try:
            from ansible_collections.byoc.certificates.plugins.module_utils import _pem

            material, _key = doc_mod.build_material(
                certificate=g.downloaded["cert"], chain=g.downloaded.get("chain"),
                fullchain=g.downloaded.get("fullchain"), key_pem=_pem.key_to_pem(g.key), key_passphrases=[],
                passphrase=passphrase, order_uri=order_url)

            def keep(doc: dict) -> None:
                doc_mod.make_current(doc, material)
                doc["last_order_url"] = order_url
            self._update(g, keep)
        except Exception as exc:  # pylint: disable=broad-exception-caught
            raise GroupFailed(STEP_STORE, _safe(exc, self.secrets)) from None
        g.renewed = True
        g.previous_fp = (g.doc.get("previous") or {}).get("fingerprint")
        if acme.get("use_ari", True):
            self._keep_ari(g, material["certificate"])

    def _keep_ari(self, g: _Group, cert_pem: str) -> None:
        """ari.yml: read the new certificate's renewal window and keep it, so the next run finds nothing to do."""
        from ansible_collections.byoc.certificates.plugins.module_utils import _fleet_plan, _pem
        from ansible_collections.byoc.certificates.plugins.module_utils._store import document as doc_mod

        acme = g.spec["acme"]
        try:
            ari = _fleet_plan._Ari(self.args["timeout"])  # pylint: disable=protected-access
            url = ari.renewal_url(acme["directory"], acme.get("ca_file") or "")
            if not url:
                return
            cert = _pem.load_certificate(cert_pem, "certificate")
            cert_id = _fleet_plan.ari_cert_id(cert)
            body = ari._client(url, acme.get("ca_file") or "").request(  # pylint: disable=protected-access
                "GET", f"{url.rstrip('/')}/{cert_id}").json()
            win = (body or {}).get("suggestedWindow") if isinstance(body, dict) else None
            if not isinstance(win, dict) or not win.get("start"):
                return
            data = {"window_start": win.get("start"), "window_end": win.get("end"), "cert_id": cert_id,
                    "explanation_url": body.get("explanationURL")}

            def keep(doc: dict) -> None:
                old = dict(doc.get("ari") or {})
                old.pop("checked", None)
                if old != data:
                    doc["ari"] = dict(data, checked=doc_mod.utc_iso(self._now()))
            self._update(g, keep)
        except Exception as exc:  # pylint: disable=broad-exception-caught  # ARI is advice: never fails the group
            self.warn(f"Group {g.name}: the new certificate's ARI data could not be kept ({_safe(exc, self.secrets)});"
                      " the next run asks again.")

    # -- on failure, and always ------------------------------------------------------------------------------------
    def record_failure(self, g: _Group) -> dict | None:
        f = g.failure
        if f is None or not f.record or self.check_mode or g.store is None:
            return None
        now = self._now()
        order_url = (g.order or {}).get("url")
        holder: dict = {}

        def fail(doc: dict) -> None:
            holder["backoff"] = doc["backoff"] = _renewal.record_failure(
                doc.get("backoff"), now, f"{f.step}: {f.what}",
                retry_after=f.retry_after, schedule=self.args["backoff_schedule"])
            if order_url:
                doc["last_order_url"] = order_url
        try:
            self._update(g, fail)
        except Exception as exc:  # pylint: disable=broad-exception-caught
            self.warn(f"Group {g.name}: the failure could not be recorded in the store ({_safe(exc, self.secrets)}).")
            return None
        return holder.get("backoff")

    def cleanup(self, g: _Group) -> None:
        """issue.yml's ``always``: remove the challenge TXT records, then give the lease back."""
        from ansible_collections.byoc.certificates.plugins.module_utils._dns import record as rec
        from ansible_collections.byoc.certificates.plugins.module_utils._store import lease as lease_mod

        for x in g.txt:
            try:
                with x["plock"]:
                    before = x["provider"].get_txt(x["zone"], x["record"])
                    after, added, removed = rec.plan(before, [x["value"]], "absent")
                    if removed:
                        x["provider"].change(x["zone"], x["record"], before=before, after=after, added=added,
                                             removed=removed, ttl=60)
            except Exception as exc:  # pylint: disable=broad-exception-caught
                self.warn(f"Group {g.name}: the TXT record {x['record']} could not be removed"
                          f" ({_safe(exc, self.secrets)}); remove the value by hand.")
        if g.lease is not None and g.store is not None:
            try:
                released, found = lease_mod.release(g.store, g.name, self.holder)
                if not released and found:
                    self.warn(f"Group {g.name}: the lease is now held by {found.get('holder')}; it was left alone.")
            except Exception as exc:  # pylint: disable=broad-exception-caught
                self.warn(f"Group {g.name}: the lease could not be released ({_safe(exc, self.secrets)}); it expires"
                          " by itself.")
            g.lease = None

    # -- deliver ---------------------------------------------------------------------------------------------------
    def deliver(self, g: _Group) -> tuple[dict, str | None]:
        """deliver.yml + report.yml: the root kept with the current certificate, the public material, the key."""
        from ansible_collections.byoc.certificates.plugins.module_utils._store import document as doc_mod

        acme = g.spec["acme"]
        root_pem = None
        if g.store is not None and not g.decision.get("skip"):
            try:
                root_pem = self.shared.root(acme)
            except Exception as exc:  # pylint: disable=broad-exception-caught
                self.warn(f"Group {g.name}: the root CA could not be read ({_safe(exc, self.secrets)}).")
        doc = g.store.read(g.name) if g.store is not None else None
        if root_pem and doc and doc.get("current") and not self.check_mode:
            try:
                pem, fp, warnings = doc_mod.check_root(root_pem, doc["current"])
                for w in warnings:
                    self.warn(w)
                if doc["current"].get("root_fingerprint") != fp:
                    def keep(d: dict) -> None:
                        if d.get("current"):
                            d["current"]["root"], d["current"]["root_fingerprint"] = pem, fp
                    doc = self._update(g, keep)
            except Exception as exc:  # pylint: disable=broad-exception-caught
                self.warn(f"Group {g.name}: the root was not kept with the certificate ({_safe(exc, self.secrets)}).")
        cur = (doc or {}).get("current")
        delivered = None
        key_pem = None
        if cur:
            from ansible_collections.byoc.certificates.plugins.module_utils import _pem

            delivered = {k: cur.get(k) for k in ("certificate", "chain", "fullchain", "root")}
            if cur.get("privatekey"):
                key_pem = _pem.key_to_pem(doc_mod.decrypt_stored_key(cur["privatekey"], self.args["passphrase"],
                                                                     f"the current key of {g.name}"))
            else:
                self.warn(f"Group {g.name}: the store holds no private key for the current certificate.")
        if cur and not delivered.get("root") and not root_pem:
            self.warn(f"Group {g.name}: no root CA is known for this group's chain, so the result's root is empty."
                      " Genesys Cloud and the Ribbon SBC Edge need it: set byoc_acme.root_file (or root_url where"
                      " the CA publishes its root).")
        summary = doc_mod.summarize(cur, include_pem=False)
        prev = ((doc or {}).get("previous") or {}).get("fingerprint")
        result = result_for(group=g.name, decision=g.decision, check_mode=self.check_mode,
                            use_ari=acme.get("use_ari", True), stored=summary, previous_fp=prev,
                            renewed=g.renewed, replaces_dropped=g.replaces_dropped,
                            order_uri=(g.order or {}).get("url"), delivered=delivered, root_pem=root_pem,
                            dns_wait=g.dns_wait)
        if self.check_mode and g.decision.get("renew"):
            result["msg"] = (f"{g.decision.get('msg') or ''} (check mode: would order {', '.join(g.names)}"
                             f"{' replacing ' + str(g.decision.get('replaces_cert_id')) if g.decision.get('replaces_cert_id') else ''};"
                             " nothing ordered, nothing written)")
        return result, key_pem


# ================================================================================================== entry point ==
def run(args: dict, *, check_mode: bool, warn: t.Callable[[str], None], progress: t.Callable[[str], None] | None = None,
        client_factory=None, clock: t.Callable[[], float] = time.monotonic,
        sleep: t.Callable[[float], None] = time.sleep) -> dict:
    """Issue every due group of ``args['groups']`` (validated by ARGUMENT_SPEC). Returns ``groups`` (one
    result per group), ``private_keys`` (group -> PEM; register with no_log), ``failed_groups``, ``lines``,
    ``requests`` and ``progress``. A group's failure is data (``failed``, ``msg``); the task fails only on bad input."""
    from concurrent.futures import ThreadPoolExecutor

    from ansible_collections.byoc.certificates.plugins.module_utils._http import scrub

    groups_in = args["groups"]
    seen: set = set()
    for i, g in enumerate(groups_in):
        if g["group"] in seen:
            raise InputError(f"groups[{i}].group", f"{g['group']} is listed twice")
        seen.add(g["group"])
        if not g["names"]:
            raise InputError(f"groups[{i}].names", "must list at least one DNS name")
        if not str(g["acme"]["directory"]).startswith(("https://", "http://")):
            raise InputError(f"groups[{i}].acme.directory", "must be an http(s) URL")
        if g["dns"]["wait_timeout"] < 0:
            raise InputError(f"groups[{i}].dns.wait_timeout", "must be 0 or more seconds")
    from ansible_collections.byoc.certificates.plugins.module_utils._store import document as doc_mod

    doc_mod.require_passphrase(args["passphrase"], "to keep the keys of the issued certificates")
    if args["workers"] < 1:
        raise InputError("workers", "must be at least 1")
    if not args["backoff_schedule"] or any(s < 0 for s in args["backoff_schedule"]):
        raise InputError("backoff_schedule", "must be a non-empty list of seconds >= 0")
    eng = Engine(args, check_mode=check_mode, warn=warn, progress=progress, client_factory=client_factory,
                 clock=clock, sleep=sleep)
    groups = [_Group(g) for g in groups_in]

    def guarded(step: t.Callable[[_Group], None]) -> t.Callable[[_Group], None]:
        def inner(g: _Group) -> None:
            if g.failure is not None:
                return
            try:
                step(g)
            except GroupFailed as exc:
                g.failure = exc
            except Exception as exc:  # pylint: disable=broad-exception-caught
                g.failure = GroupFailed(STEP_ORDER if g.order is None else STEP_STORE, _safe(exc, eng.secrets))
        return inner

    def due(g: _Group) -> bool:
        return g.failure is None and bool(g.decision.get("renew")) and not check_mode

    results: dict[str, dict] = {}
    keys: dict[str, str] = {}
    with _ThreadLocalOpener(), ThreadPoolExecutor(max_workers=args["workers"]) as pool:
        try:
            list(pool.map(guarded(eng.prepare), groups))
            list(pool.map(guarded(eng.order), [g for g in groups if due(g)]))
            eng.wait([g for g in groups if due(g)])
            list(pool.map(guarded(eng.finish), [g for g in groups if due(g)]))
        finally:
            def close(g: _Group) -> None:
                backoff = eng.record_failure(g) if g.failure is not None else None
                eng.cleanup(g)
                if g.failure is not None:
                    g.failed_msg = scrub(failure_message(g.name, g.failure.step, g.failure.what, backoff), eng.secrets)
            list(pool.map(close, groups))

        def outcome(g: _Group) -> None:
            if g.failure is not None:
                r = result_for(group=g.name, decision=g.decision, check_mode=check_mode,
                               use_ari=g.spec["acme"].get("use_ari", True),
                               stored=None, previous_fp=g.previous_fp, failed=True, msg=g.failed_msg,
                               order_uri=(g.order or {}).get("url"), dns_wait=g.dns_wait)
                results[g.name] = r
                return
            try:
                r, key = eng.deliver(g)
            except Exception as exc:  # pylint: disable=broad-exception-caught
                r = result_for(group=g.name, decision=g.decision, check_mode=check_mode,
                               use_ari=g.spec["acme"].get("use_ari", True), stored=None, previous_fp=g.previous_fp,
                               failed=True, msg=f"Group {g.name}: delivering the material failed: {_safe(exc, eng.secrets)}",
                               dns_wait=g.dns_wait)
                key = None
            results[g.name] = r
            if key:
                keys[g.name] = key
        list(pool.map(outcome, groups))
    ordered = {g.name: results[g.name] for g in groups}
    clients = {id(v[0]): v[0] for v in eng.shared.accounts.values() if not isinstance(v, Exception)}
    return {
        "changed": any(r["renewed"] for r in ordered.values()),
        "groups": ordered,
        "private_keys": keys,
        "failed_groups": [n for n, r in ordered.items() if r["failed"]],
        "renewed_groups": [n for n, r in ordered.items() if r["renewed"]],
        "lines": [outcome_line(r) for r in ordered.values()],
        "requests": {"acme": sum(int(getattr(c, "request_count", 0) or 0) for c in clients.values()),
                     "accounts": len(clients), "orders": sum(1 for g in groups if g.order is not None),
                     "root": eng.shared.requests["root"]},
        "progress": eng.progress_lines,
        "holder": eng.holder,
    }


class _ThreadLocalOpener:
    """The same guard as the fleet plan's (``_fleet_plan._ThreadLocalOpener``): ansible-core's ``open_url`` installs
    its opener process-wide, so concurrent requests with different CA files would race."""

    def __init__(self) -> None:
        from ansible_collections.byoc.certificates.plugins.module_utils import _fleet_plan

        self.inner = _fleet_plan._ThreadLocalOpener()  # pylint: disable=protected-access

    def __enter__(self):
        self.inner.__enter__()
        return self

    def __exit__(self, *exc) -> None:
        self.inner.__exit__(*exc)


__all__ = ["ARGUMENT_SPEC", "run", "failure_message", "result_for", "outcome_line", "wait_line"]
