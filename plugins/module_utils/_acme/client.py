# Copyright (c) 2026, byoc.certificates contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

# Note that this module util is **PRIVATE** to the collection. It can have breaking changes at any time.

"""``AcmeClient``: an in-process ACME (RFC 8555) client for DNS-01 issuance, shared by many threads.

One client per ACME server and account key. Everything it keeps between calls is guarded by a lock: the cached
directory, the nonce pool (RFC 8555 §7.2: every answer's Replay-Nonce is kept, newNonce is asked only when the pool
is empty), the account URL (``kid``) and ``request_count``.

HTTP goes through urllib with an opener built per request and an SSL context made once from ``ca_file``: the
process-wide urllib opener is never installed or used (ansible-core's ``open_url`` installs one, which races between
threads; docs/performance.md finding 6).

Retries: ``badNonce`` up to ``bad_nonce_retries`` times with a fresh nonce (RFC 8555 §6.5); 502/504 after 2 s
when no Retry-After came; 429/``rateLimited`` and 503 only when the server gave a Retry-After no longer than
``max_retry_after`` (then at most ``retries`` times),
otherwise the AcmeProblem carries ``retry_after`` so that the caller records a backoff that respects it
(acme-and-dns.md §1.5: a client that sleeps through an hours-long Retry-After only burns the limit);
connection errors a few times with a short delay. Every other problem is raised at once; ``alreadyReplaced``
(acme-and-dns.md §0 item 7, §5.3: Pebble >= 2.10) is ``kind == 'alreadyReplaced'``.
"""

from __future__ import annotations

import http.client
import json
import socket
import ssl
import threading
import time
import typing as t
import urllib.error
import urllib.request

from ansible_collections.byoc.certificates.plugins.module_utils._errors import ApiError, InputError
from ansible_collections.byoc.certificates.plugins.module_utils._http import safe_url, scrub
from ansible_collections.byoc.certificates.plugins.module_utils._acme import jws

JOSE = "application/jose+json"
PEM_CHAIN = "application/pem-certificate-chain"
PROGRESS_EVERY = 10.0  # seconds between progress reports of a poll
_DETAIL_MAX = 600

_TODO = {
    "badNonce": "the server kept rejecting fresh nonces; try again later",
    "rateLimited": "wait until the rate limit ends (see retry_after) before ordering again",
    "alreadyReplaced": "this certificate was already replaced by another order; order again without 'replaces'",
    "unauthorized": "check that the account may order these names and that the DNS TXT records are published",
    "accountDoesNotExist": "create the account first (account(create=True))",
    "externalAccountRequired": "give the CA's external account binding (eab: kid and hmac_key)",
    "userActionRequired": "a person must act on the CA's instructions (e.g. accept new terms of service)",
    "serverInternal": "the CA failed internally; try again later",
    "rejectedIdentifier": "the CA will not issue for one of the names; check the names against the CA's policy",
    "invalidProfile": "use a profile the CA's directory lists under meta.profiles",
    "unsupportedIdentifier": "order only DNS names",
    "malformed": "the CA refused the request as malformed; check what it names (names, profile, replaces, contact)",
    "badCSR": "check the CSR: its names must match the order and its key must be acceptable to the CA",
    "timeout": "raise the timeout, or check that the ACME server is reachable",
    "connection": "check the directory URL, the network and (for HTTPS) ca_file / validate_certs",
    "http": "check the directory URL and the ACME server's state",
}


class AcmeProblem(ApiError):
    """An ACME request failed. ``kind`` is the problem type's last part ('badNonce', 'rateLimited', ...) or 'http'
    (an error without a problem document), 'timeout', 'connection'. ``str(exc)`` is one sentence: what failed,
    where, the server's words, what to do."""

    def __init__(self, what: str, url: str, *, kind: str, detail: str = "", status: int | None = None,
                 retry_after: float | None = None, subproblems: list | None = None, ptype: str | None = None,
                 identifier: str | None = None) -> None:
        self.kind = kind
        self.detail = detail
        self.status = status
        self.url = safe_url(url)
        self.retry_after = retry_after
        self.subproblems = list(subproblems or [])
        self.identifier = identifier
        said = ""
        if status is not None or ptype:
            said = " answered " + " ".join(str(p) for p in (status, ptype) if p is not None)
        words = f": {detail}" if detail else ""
        subs = ""
        if self.subproblems:
            subs = " (" + "; ".join(
                f"{(s.get('identifier') or {}).get('value', '?')}: {str(s.get('detail') or s.get('type') or '')[:200]}"
                for s in self.subproblems[:5]) + ")"
        wait = f" The server asks to retry after {retry_after:.0f} s." if retry_after is not None else ""
        todo = _TODO.get(kind, "check the CA's message")
        msg = f"ACME {what} failed at {self.url}{' -' if said else ''}{said}{words}{subs}.{wait} What to do: {todo}."
        super().__init__(msg, kind=kind, status=status, url=self.url, retry_after=retry_after,
                         identifier=identifier, acme_detail=detail or None)


class _Response:
    def __init__(self, status: int, headers: dict[str, str], body: bytes, url: str) -> None:
        self.status = status
        self.headers = headers
        self.body = body
        self.url = url

    def json(self, what: str) -> dict:
        try:
            doc = json.loads(self.body.decode("utf-8"))
        except (UnicodeDecodeError, ValueError):
            doc = None
        if not isinstance(doc, dict):
            raise AcmeProblem(what, self.url, kind="http", status=self.status,
                              detail="the answer is not a JSON object")
        return doc


class _NetError(Exception):
    def __init__(self, kind: str, reason: str, retry: bool = True) -> None:
        super().__init__(reason)
        self.kind = kind
        self.reason = reason
        self.retry = retry


class AcmeClient:
    """See the module docstring. Thread-safe: one instance is shared by every thread of a batch."""

    def __init__(self, directory_url: str, account_key_pem: bytes | str, *, passphrase: str | None = None,
                 ca_file: str | None = None, validate_certs: bool = True, timeout: float = 30,
                 bad_nonce_retries: int = 5, retries: int = 4, max_retry_after: float = 60,
                 progress: t.Callable[[str], None] | None = None, sleep: t.Callable[[float], None] = time.sleep,
                 user_agent: str = "byoc.certificates") -> None:
        if not isinstance(directory_url, str) or not directory_url.startswith(("https://", "http://")):
            raise InputError("directory_url", "must be the http(s) URL of the ACME directory")
        self.directory_url = directory_url
        self._key = jws.load_account_key(account_key_pem, passphrase)
        self._secrets: list[str] = [passphrase] if isinstance(passphrase, str) and passphrase else []
        self.timeout = float(timeout)
        self.bad_nonce_retries = int(bad_nonce_retries)
        self.retries = int(retries)
        self.max_retry_after = float(max_retry_after)
        self._progress = progress
        self._sleep = sleep
        self.user_agent = user_agent
        self._ssl = self._ssl_context(ca_file, validate_certs) if directory_url.startswith("https://") else None
        self._lock = threading.Lock()
        self._directory_lock = threading.Lock()
        self._nonces: list[str] = []
        self._directory: dict | None = None
        self._kid: str | None = None
        self.request_count = 0
        self._thumbprint = jws.thumbprint(self._key.jwk)

    @staticmethod
    def _ssl_context(ca_file: str | None, validate_certs: bool) -> ssl.SSLContext:
        if not validate_certs:
            ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
            ctx.check_hostname = False
            ctx.verify_mode = ssl.CERT_NONE
            return ctx
        try:
            return ssl.create_default_context(cafile=ca_file) if ca_file else ssl.create_default_context()
        except (OSError, ssl.SSLError) as exc:
            reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else type(exc).__name__
            raise InputError("ca_file", f"{ca_file} could not be loaded as a CA bundle ({reason})") from None

    # -- small helpers -------------------------------------------------------------------------------------------
    @property
    def thumbprint(self) -> str:
        """RFC 7638 thumbprint of the account key (base64url)."""
        return self._thumbprint

    @property
    def account_url(self) -> str | None:
        return self._kid

    def _say(self, text: str) -> None:
        if self._progress is not None:
            self._progress(text)

    def _clean(self, text: str) -> str:
        text = scrub(str(text), self._secrets)
        return text if len(text) <= _DETAIL_MAX else text[:_DETAIL_MAX] + " ..."

    # -- HTTP ----------------------------------------------------------------------------------------------------
    def _send(self, method: str, url: str, data: bytes | None, headers: dict[str, str]) -> _Response:
        """One HTTP exchange. No global opener: a private opener per call, with this client's SSL context."""
        handlers: list = [urllib.request.HTTPSHandler(context=self._ssl)] if self._ssl is not None else []
        opener = urllib.request.build_opener(*handlers)
        req = urllib.request.Request(url, data=data, method=method,
                                     headers=dict(headers, **{"User-Agent": self.user_agent}))
        with self._lock:
            self.request_count += 1
        try:
            with opener.open(req, timeout=self.timeout) as resp:
                return _Response(resp.status, {k.lower(): v for k, v in resp.headers.items()}, resp.read(), url)
        except urllib.error.HTTPError as exc:
            try:
                body = exc.read()
            except (OSError, http.client.HTTPException):
                body = b""
            hdrs = {k.lower(): v for k, v in (exc.headers.items() if exc.headers else [])}
            return _Response(exc.code, hdrs, body or b"", url)
        except urllib.error.URLError as exc:
            reason = exc.reason
            if isinstance(reason, ssl.SSLCertVerificationError):
                raise _NetError("connection", f"TLS verification failed ({reason.verify_message or 'untrusted'})",
                                retry=False) from None
            if isinstance(reason, (socket.timeout, TimeoutError)):
                raise _NetError("timeout", f"no answer within {self.timeout:g} s") from None
            text = reason.strerror if isinstance(reason, OSError) and reason.strerror else type(reason).__name__
            raise _NetError("connection", f"connection failed ({text})") from None
        except (socket.timeout, TimeoutError):
            raise _NetError("timeout", f"no answer within {self.timeout:g} s") from None
        except (OSError, http.client.HTTPException) as exc:
            text = exc.strerror if isinstance(exc, OSError) and exc.strerror else type(exc).__name__
            raise _NetError("connection", f"connection failed ({text})") from None

    def _keep_nonce(self, resp: _Response) -> None:
        nonce = resp.headers.get("replay-nonce")
        if nonce:
            with self._lock:
                self._nonces.append(nonce.strip())

    def _nonce(self) -> str:
        with self._lock:
            if self._nonces:
                return self._nonces.pop()
        url = self.directory()["newNonce"]
        resp = self._exchange("newNonce", "HEAD", url, None)
        nonce = resp.headers.get("replay-nonce")
        if not nonce:
            raise AcmeProblem("newNonce", url, kind="http", status=resp.status, detail="no Replay-Nonce header")
        return nonce.strip()

    def _exchange(self, what: str, method: str, url: str, payload: t.Any, *, signed: bool = False,
                  use_jwk: bool = False, accept: str | None = None, extra: t.Callable[[str], t.Any] | None = None) -> _Response:
        """Send (signed: a JWS with a fresh nonce per attempt) with the retry rules of the module docstring;
        return a 2xx/3xx answer or raise AcmeProblem."""
        bad_nonces = 0
        attempt = 0
        nonce: str | None = None
        while True:
            headers = {"Accept": accept} if accept else {}
            data = None
            if signed:
                # a nonce is kept across a connection failure (the server never answered; if it did see the nonce,
                # the retry gets badNonce, which is retried): no newNonce round trip into a server that is down
                nonce = nonce or self._nonce()
                kid = None if use_jwk else self._kid
                if not use_jwk and not kid:
                    raise AcmeProblem(what, url, kind="accountDoesNotExist",
                                      detail="no account yet: call account() before ordering")
                body = jws.sign_jws(self._key, payload if extra is None else extra(url), url, nonce, kid)
                data = json.dumps(body).encode("utf-8")
                headers["Content-Type"] = JOSE
            try:
                resp = self._send(method, url, data, headers)
            except _NetError as exc:
                if exc.retry and attempt < self.retries:
                    attempt += 1
                    delay = min(2.0 ** (attempt - 1), 5.0)
                    self._say(f"ACME {what}: {exc.reason} at {safe_url(url)}, trying again in {delay:g} s"
                              f" (attempt {attempt} of {self.retries})")
                    self._sleep(delay)
                    continue
                raise AcmeProblem(what, url, kind=exc.kind, detail=exc.reason) from None
            nonce = None
            self._keep_nonce(resp)
            if resp.status < 400:
                return resp
            problem = jws.parse_problem(resp.body, resp.headers.get("content-type"))
            kind = problem["kind"] if problem else "http"
            retry_after = jws.parse_retry_after(resp.headers.get("retry-after"))
            detail = self._clean(problem["detail"] if problem else resp.body.decode("utf-8", "replace").strip()[:200])
            if signed and kind == "badNonce" and bad_nonces < self.bad_nonce_retries:
                bad_nonces += 1  # RFC 8555 §6.5: retry with the nonce that came with the error
                continue
            if resp.status in (429, 502, 503, 504) or kind == "rateLimited":
                # a gateway error (502/504) usually carries no Retry-After: a short pause, bounded like the others
                wait = retry_after if retry_after is not None else (2.0 if resp.status in (502, 504) else None)
                if wait is not None and wait <= self.max_retry_after and attempt < self.retries:
                    attempt += 1
                    why = "rate limited" if resp.status == 429 or kind == "rateLimited" else f"server unavailable ({resp.status})"
                    said = "as Retry-After says" if retry_after is not None else "(gateway error, no Retry-After)"
                    self._say(f"ACME {what}: {why}, waiting {wait:.0f} s {said} (attempt {attempt} of {self.retries})")
                    self._sleep(wait)
                    continue
            subs = [dict(s, detail=self._clean(s.get("detail", ""))) for s in (problem or {}).get("subproblems", [])]
            raise AcmeProblem(what, url, kind=kind, detail=detail, status=resp.status, retry_after=retry_after,
                              subproblems=subs, ptype=problem["type"] if problem else None)

    def _post(self, what: str, url: str, payload: t.Any, **kw: t.Any) -> _Response:
        return self._exchange(what, "POST", url, payload, signed=True, **kw)

    # -- the contract ----------------------------------------------------------------------------------------
    def directory(self) -> dict:
        """The directory (fetched once, cached)."""
        with self._directory_lock:  # threads that start together wait for the one fetch
            if self._directory is not None:
                return self._directory
            doc = self._exchange("directory", "GET", self.directory_url, None).json("directory")
            for field in ("newNonce", "newAccount", "newOrder"):
                if not isinstance(doc.get(field), str):
                    raise AcmeProblem("directory", self.directory_url, kind="http",
                                      detail=f"the directory has no {field} URL; is this an ACME v2 directory?")
            self._directory = doc
            return doc

    def account(self, *, contact: list[str] | None = None, terms_agreed: bool = True, eab: dict | None = None,
                create: bool = True) -> str:
        """Find the account of this key (onlyReturnExisting, RFC 8555 §7.3.1); create it when absent and
        ``create``. Sets and returns the account URL."""
        if eab is not None:
            jws.check_eab(eab)  # InputError naming the field before anything is sent
            with self._lock:
                self._secrets = sorted(set(self._secrets) | {eab["hmac_key"].strip()}, key=len, reverse=True)
        url = self.directory()["newAccount"]
        try:
            resp = self._post("newAccount (lookup)", url, {"onlyReturnExisting": True}, use_jwk=True)
        except AcmeProblem as exc:
            if exc.kind != "accountDoesNotExist":
                raise
        else:
            return self._set_kid(resp, url)
        if not create:
            raise AcmeProblem("newAccount (lookup)", url, kind="accountDoesNotExist",
                              detail="no account exists for this key and create is false")
        payload: dict[str, t.Any] = {"termsOfServiceAgreed": bool(terms_agreed)}
        if contact:
            payload["contact"] = list(contact)

        def with_eab(target: str) -> dict:
            if eab is None:
                return payload
            return dict(payload, externalAccountBinding=jws.eab_jws(self._key.jwk, eab, target))

        resp = self._post("newAccount", url, None, use_jwk=True, extra=with_eab)
        return self._set_kid(resp, url)

    def _set_kid(self, resp: _Response, url: str) -> str:
        kid = resp.headers.get("location")
        if not kid:
            raise AcmeProblem("newAccount", url, kind="http", status=resp.status, detail="no Location header")
        with self._lock:
            self._kid = kid
        return kid

    def new_order(self, names: list[str], *, replaces: str | None = None, profile: str | None = None) -> dict:
        """RFC 8555 §7.4; ``replaces`` is RFC 9773 §5, ``profile`` draft-aaron-acme-profiles (acme-and-dns.md §1.5:
        must be one of the directory's meta.profiles)."""
        if not names or not all(isinstance(n, str) and n for n in names):
            raise InputError("names", "must list at least one DNS name")
        payload: dict[str, t.Any] = {"identifiers": [{"type": "dns", "value": n} for n in names]}
        if replaces:
            payload["replaces"] = replaces
        if profile:
            payload["profile"] = profile
        url = self.directory()["newOrder"]
        resp = self._post("newOrder", url, payload)
        order = resp.json("newOrder")
        order["url"] = resp.headers.get("location") or ""
        return order

    def get_order(self, url: str) -> dict:
        order = self._post("order", url, None).json("order")
        order["url"] = url
        return order

    def authorizations(self, order: dict) -> list[dict]:
        """One entry per authorization of ``order`` with its dns-01 record and value (RFC 8555 §8.4)."""
        out = []
        for url in order.get("authorizations") or []:
            authz = self._post("authorization", url, None).json("authorization")
            ident = (authz.get("identifier") or {}).get("value", "")
            entry = {"url": url, "status": authz.get("status"), "identifier": ident,
                     "wildcard": bool(authz.get("wildcard")), "record": f"_acme-challenge.{ident}",
                     "value": None, "challenge_url": None, "challenge_status": None}
            chall = next((c for c in authz.get("challenges") or [] if c.get("type") == "dns-01"), None)
            if chall is not None:
                entry.update(value=jws.dns01_value(chall["token"], self.thumbprint), challenge_url=chall.get("url"),
                             challenge_status=chall.get("status"))
            elif authz.get("status") != "valid":
                raise AcmeProblem("authorization", url, kind="unsupportedChallenge", identifier=ident,
                                  detail=f"the CA offers no dns-01 challenge for {ident}")
            out.append(entry)
        return out

    def respond(self, challenge_url: str) -> dict:
        """RFC 8555 §7.5.1: tell the CA the challenge is ready (payload {})."""
        return self._post("challenge", challenge_url, {}).json("challenge")

    def _poll(self, what: str, url: str, timeout: float, done: t.Callable[[dict], bool], name: str) -> dict:
        start = time.monotonic()
        slept = 0.0
        last_report = 0.0
        while True:
            resp = self._post(what, url, None)
            doc = resp.json(what)
            if done(doc):
                return doc
            if not name:
                idents = [doc.get("identifier")] if isinstance(doc.get("identifier"), dict) else doc.get("identifiers")
                name = ", ".join(str(i.get("value")) for i in idents or [] if isinstance(i, dict))
            elapsed = max(time.monotonic() - start, slept)
            if elapsed >= timeout:
                raise AcmeProblem(f"{what} of {name}" if name else what, url, kind="timeout", identifier=name or None,
                                  detail=f"still {doc.get('status')} after {elapsed:.0f} s")
            delay = jws.parse_retry_after(resp.headers.get("retry-after"))
            delay = 1.0 if delay is None else min(max(delay, 0.2), self.max_retry_after)
            delay = min(delay, max(timeout - elapsed, 0.2))
            if elapsed - last_report >= PROGRESS_EVERY:
                last_report = elapsed
                self._say(f"ACME: waiting for the {what} of {name or url} ({safe_url(url)}): {elapsed:.0f} s so far,"
                          f" status {doc.get('status')}")
            self._sleep(delay)
            slept += delay

    def wait_authorization(self, url: str, *, timeout: float) -> dict:
        """Poll the authorization until valid; AcmeProblem with the challenge's error when it turns invalid."""
        def done(authz: dict) -> bool:
            status = authz.get("status")
            if status == "valid":
                return True
            if status in ("pending", "processing"):
                return False
            ident = (authz.get("identifier") or {}).get("value", "")
            err = next((c["error"] for c in authz.get("challenges") or [] if isinstance(c.get("error"), dict)), None)
            if err:
                prob = jws.parse_problem(json.dumps(err)) or {"kind": "http", "detail": "", "type": None, "subproblems": []}
                subs = [dict(s, detail=self._clean(s.get("detail", ""))) for s in prob["subproblems"]]
                raise AcmeProblem(f"authorization of {ident}", url, kind=prob["kind"], ptype=prob["type"],
                                  detail=self._clean(prob["detail"]), status=prob.get("status"),
                                  subproblems=subs, identifier=ident)
            raise AcmeProblem(f"authorization of {ident}", url, kind="unauthorized", identifier=ident,
                              detail=f"the authorization became {status} and the CA gave no reason")
        return self._poll("authorization", url, timeout, done, "")

    def finalize(self, order: dict, csr_der: bytes, *, timeout: float) -> dict:
        """RFC 8555 §7.4: send the CSR, then poll the order through 'processing' until 'valid'."""
        url = order.get("url") or ""
        fin = self._post("finalize", order["finalize"], {"csr": jws.b64url(csr_der)})
        doc = fin.json("finalize")

        def done(o: dict) -> bool:
            if o.get("status") == "valid" and o.get("certificate"):
                return True
            if o.get("status") == "invalid":
                err = o.get("error") if isinstance(o.get("error"), dict) else {}
                prob = jws.parse_problem(json.dumps(err)) if err else None
                raise AcmeProblem("order", url, kind=prob["kind"] if prob else "http",
                                  ptype=prob["type"] if prob else None,
                                  detail=self._clean(prob["detail"]) if prob else "the order became invalid")
            return False

        if not done(doc):
            doc = self._poll("order", url or fin.headers.get("location", ""), timeout, done, "")
        doc["url"] = url or fin.headers.get("location", "")
        return doc

    def download(self, certificate_url: str) -> dict:
        """RFC 8555 §7.4.2: the PEM chain; cert = first block, chain = the rest (the issuer(s))."""
        resp = self._post("certificate download", certificate_url, None, accept=PEM_CHAIN)
        text = resp.body.decode("utf-8", "replace")
        end = "-----END CERTIFICATE-----"
        blocks = [b.strip() + "\n" + end + "\n" for b in text.split(end) if "-----BEGIN CERTIFICATE-----" in b]
        blocks = [b[b.index("-----BEGIN CERTIFICATE-----"):] for b in blocks]
        if not blocks:
            raise AcmeProblem("certificate download", certificate_url, kind="http", status=resp.status,
                              detail="the answer holds no PEM certificate")
        return {"cert": blocks[0], "chain": "".join(blocks[1:]), "fullchain": "".join(blocks)}

    def deactivate_authorization(self, url: str) -> None:
        """RFC 8555 §7.5.2, best effort: errors are swallowed."""
        try:
            self._post("authorization deactivation", url, {"status": "deactivated"})
        except AcmeProblem:
            pass
