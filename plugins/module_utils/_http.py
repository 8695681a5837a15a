# Copyright (c) 2026, byoc.certificates contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

# Note that this module util is **PRIVATE** to the collection. It can have breaking changes at any time.

"""A small JSON-over-HTTPS client on ansible's ``open_url``, shared by every REST adapter.

It owns, once for the whole collection: TLS verification (on by default, with an optional CA file), timeouts,
bounded retries of transient failures (connection errors, 429, 502, 503, 504) honouring a capped ``Retry-After``,
and the mapping of HTTP failures onto the collection's exception classes with a message that says which
service, which URL, what the server said, and what to check.

No error raised here carries a request header or body. A request that cannot be built (``http.client`` refuses a
header value with a line break with a ValueError that holds the whole header, credential included, in repr form;
a header value outside Latin-1 gives a UnicodeEncodeError) is reported by the exception's type only, before
anything is sent. Credentials in URLs are cut, and what the server answers is scrubbed of the header values and
password that were sent, in case the server echoes them. Options are checked by the modules themselves (an
``InputError`` naming the field); this is the safety net below them.
"""

from __future__ import annotations

import http.client
import json as _json
import re
import socket
import ssl
import time
import typing as t
from urllib.error import HTTPError, URLError

from ansible.module_utils.urls import open_url

from ansible_collections.byoc.certificates.plugins.module_utils._errors import (
    ApiError,
    AuthenticationFailure,
    ConnectionFailure,
    NotFound,
)

RETRY_STATUSES = (429, 502, 503, 504)

_USERINFO = re.compile(r"(?<=://)[^/@\s]*@")
_KEY_BLOCK = re.compile(r"-----BEGIN [A-Z0-9 ]*PRIVATE KEY-----.*?(?:-----END [A-Z0-9 ]*PRIVATE KEY-----|\Z)", re.S)
MASK = "********"
# Values shorter than this are not scrubbed from server answers (masking "1" or "json" everywhere would garble them).
_MIN_SCRUB = 6


def safe_url(url: str) -> str:
    """``url`` without any ``user:password@`` part, for messages."""
    return _USERINFO.sub("", url) if isinstance(url, str) else url


def sent_secrets(headers: t.Mapping[str, str], password: str | None = None) -> list[str]:
    """The strings of a request that must not come back in a message: every header value (and the credential
    part of an ``Authorization`` value), and the password; longest first, so that a longer one is masked whole."""
    found = set()
    for name, value in headers.items():
        if not isinstance(value, str) or name.lower() in ("accept", "content-type", "content-length"):
            continue
        found.add(value.strip())
        parts = value.split(None, 1)
        if name.lower() in ("authorization", "proxy-authorization") and len(parts) == 2:
            found.add(parts[1].strip())
    if password:
        found.add(password)
    return sorted((s for s in found if len(s) >= _MIN_SCRUB), key=len, reverse=True)


def scrub(text: str, secrets: t.Iterable[str]) -> str:
    """``text`` with every one of ``secrets`` and every private key block masked."""
    for secret in secrets:
        text = text.replace(secret, MASK)
    return _KEY_BLOCK.sub(MASK, text)


class Response:
    """``headers`` keeps one value per name (lower-cased); ``set_cookies`` keeps every Set-Cookie line, which a
    server may repeat (a session cookie and a CSRF cookie, for example)."""

    def __init__(self, status: int, headers: t.Mapping[str, str], body: bytes,
                 set_cookies: list[str] | None = None) -> None:
        self.status = status
        self.headers = {k.lower(): v for k, v in headers.items()}
        self.body = body
        self.set_cookies = list(set_cookies or [])

    def json(self) -> t.Any:
        if not self.body:
            return None
        try:
            return _json.loads(self.body.decode("utf-8"))
        except ValueError:
            return None

    @property
    def text(self) -> str:
        return self.body.decode("utf-8", errors="replace")


def parse_retry_after(value: str | None, default: float, cap: float) -> float:
    """Seconds to wait from a Retry-After header (delta-seconds only; HTTP dates fall back to ``default``)."""
    try:
        seconds = float(value) if value is not None else default
    except ValueError:
        seconds = default
    return max(0.0, min(seconds, cap))


class HttpClient:
    """``service`` names the remote side in every error ("PowerDNS API", "Cloudflare API", ...)."""

    def __init__(
        self,
        base_url: str,
        *,
        service: str,
        headers: dict[str, str] | None = None,
        validate_certs: bool = True,
        ca_path: str | None = None,
        timeout: float = 30,
        retries: int = 4,
        max_retry_after: float = 60,
        error_message: t.Callable[[Response], str | None] | None = None,
        sleep: t.Callable[[float], None] = time.sleep,
        url_username: str | None = None,
        url_password: str | None = None,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.service = service
        self.headers = headers or {}
        self.validate_certs = validate_certs
        self.ca_path = ca_path
        self.timeout = timeout
        self.retries = retries
        self.max_retry_after = max_retry_after
        self.error_message = error_message or (lambda resp: None)
        self.sleep = sleep
        self.url_username = url_username
        self.url_password = url_password
        self.request_count = 0

    def url(self, path: str) -> str:
        return path if path.startswith(("http://", "https://")) else f"{self.base_url}/{path.lstrip('/')}"

    def request(
        self,
        method: str,
        path: str,
        *,
        json: t.Any = None,
        data: bytes | None = None,
        headers: dict[str, str] | None = None,
        ok: t.Iterable[int] = (200, 201, 202, 204),
        missing_ok: bool = False,
    ) -> Response | None:
        """Send a request. Returns the response for statuses in ``ok``; ``None`` for 404 when ``missing_ok``;
        raises a ``ByocError`` subclass otherwise."""
        url = self.url(path)
        hdrs = dict(self.headers)
        hdrs.update(headers or {})
        if json is not None:
            data = _json.dumps(json).encode("utf-8")
            hdrs.setdefault("Content-Type", "application/json")
        hdrs.setdefault("Accept", "application/json")
        attempt = 0
        while True:
            attempt += 1
            resp, failure = self._once(method, url, data, hdrs)
            if resp is None:
                if attempt <= self.retries and "CERTIFICATE_VERIFY_FAILED" not in failure \
                        and "certificate verify failed" not in failure:
                    self.sleep(min(2 ** (attempt - 1), self.max_retry_after))
                    continue
                raise ConnectionFailure(
                    f"Cannot reach the {self.service} at {safe_url(url)}: {failure}. Check the URL, that the service is"
                    " running and reachable from the controller, and (for HTTPS) its certificate or the CA file option.",
                    url=safe_url(url),
                )
            if resp.status in RETRY_STATUSES and attempt <= self.retries:
                self.sleep(parse_retry_after(resp.headers.get("retry-after"), 2 ** (attempt - 1), self.max_retry_after))
                continue
            if resp.status in ok:
                return resp
            if resp.status == 404 and missing_ok:
                return None
            raise self._error(method, url, resp, attempt, sent_secrets(hdrs, self.url_password))

    def _once(self, method: str, url: str, data: bytes | None, headers: dict[str, str]) -> tuple[Response | None, str | None]:
        self.request_count += 1
        try:
            handle = open_url(
                url, data=data, headers=headers, method=method, validate_certs=self.validate_certs,
                ca_path=self.ca_path, timeout=self.timeout, follow_redirects="safe",
                url_username=self.url_username, url_password=self.url_password, force_basic_auth=bool(self.url_username),
            )
            with handle:
                return Response(handle.getcode(), dict(handle.headers.items()), handle.read(),
                                handle.headers.get_all("Set-Cookie")), None
        except HTTPError as exc:
            body = exc.read() if exc.fp is not None else b""
            hdrs = exc.headers
            return Response(exc.code, dict(hdrs.items()) if hdrs else {}, body,
                            hdrs.get_all("Set-Cookie") if hdrs else None), None
        except (URLError, socket.timeout, ssl.SSLError, ConnectionError, OSError) as exc:
            reason = getattr(exc, "reason", exc)
            return None, scrub(str(reason), sent_secrets(headers, self.url_password))
        except http.client.HTTPException as exc:
            # The server's side (a bad status line, a header line too long): its text is the server's, scrubbed
            # in case it echoes what was sent.
            return None, f"{type(exc).__name__}: " + scrub(str(exc), sent_secrets(headers, self.url_password))[:200]
        except (ValueError, TypeError) as exc:
            # Building the request failed on our side. The text of these errors quotes the header or body that
            # could not be sent (credentials included), so only the type is reported, never the text.
            raise ApiError(
                f"The request to the {self.service} ({method} {safe_url(url)}) could not be built"
                f" ({type(exc).__name__}; the details are not shown because they would quote the request's headers or"
                " body, credentials included). Check that every credential and value of the task is plain text on a"
                " single line.", url=safe_url(url)) from None

    def _error(self, method: str, url: str, resp: Response, attempts: int, secrets: list[str]) -> Exception:
        said = scrub(self.error_message(resp) or resp.text.strip()[:300] or "(empty body)", secrets)
        url = safe_url(url)
        where = f"{method} {url}"
        details = {"status": resp.status, "url": url, "response": said}
        if resp.status in (401, 403):
            what = ("the username and password, and the account's permissions" if self.url_username
                    else "the API key or token and its permissions")
            return AuthenticationFailure(
                f"The {self.service} rejected the credentials (HTTP {resp.status}) on {where}: {said}."
                f" Check {what}.", **details)
        if resp.status == 404:
            return NotFound(f"The {self.service} has no such resource (HTTP 404) on {where}: {said}.", **details)
        if resp.status in RETRY_STATUSES:
            return ApiError(
                f"The {self.service} kept answering HTTP {resp.status} on {where} after {attempts} attempts: {said}."
                " It is overloaded or rate limiting; try again later.", **details)
        return ApiError(f"The {self.service} answered HTTP {resp.status} on {where}: {said}.", **details)
