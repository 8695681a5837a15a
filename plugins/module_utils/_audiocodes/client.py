# Copyright (c) 2026, byoc.certificates contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

# Note that this module util is **PRIVATE** to the collection. It can have breaking changes at any time.

"""AudioCodes Mediant REST client on the shared ``HttpClient``.

Facts (shared/reference/sbc-apis.md): HTTP Basic on every request, no session (A1); uploads are
``multipart/form-data`` with the PEM in the form field ``file`` (A2); errors carry ``{"description": ...}``;
a write answered 409 means the HA pair is synchronising and must be retried later (A2, A5, A6, E6); 403 means the
user's privilege level is too low (A1: ``/files`` and ``/actions`` need Administrator).
"""

from __future__ import annotations

import time
import typing as t
import uuid

from ansible.module_utils.basic import env_fallback

from ansible_collections.byoc.certificates.plugins.module_utils._errors import (
    ApiError,
    AuthenticationFailure,
    ConnectionFailure,
    InputError,
    WaitTimeout,
)
from ansible_collections.byoc.certificates.plugins.module_utils._http import HttpClient, Response

SERVICE = "AudioCodes REST API"


def connection_argument_spec() -> dict[str, dict]:
    """The connection options documented by the ``byoc.certificates._audiocodes`` doc fragment."""
    return {
        "api_url": {"type": "str"},
        "host": {"type": "str"},
        "port": {"type": "int", "default": 443},
        "username": {"type": "str", "fallback": (env_fallback, ["AUDIOCODES_USERNAME"])},
        "password": {"type": "str", "no_log": True, "fallback": (env_fallback, ["AUDIOCODES_PASSWORD"])},
        "validate_certs": {"type": "bool", "default": True},
        "ca_path": {"type": "path"},
        "timeout": {"type": "int", "default": 30},
    }


CONNECTION_MUTUALLY_EXCLUSIVE = [("api_url", "host")]
CONNECTION_REQUIRED_ONE_OF = [("api_url", "host")]


def base_url(params: dict) -> str:
    """``api_url`` as given, or ``https://<host>:<port>/api/v1`` (sbc-apis.md A1, prefix ``/api/v1``)."""
    if params.get("api_url"):
        url = params["api_url"].strip().rstrip("/")
        if not url.startswith(("https://", "http://")):
            raise InputError("api_url", f"{url!r} is not an http(s) URL; expected e.g. https://sbc.example.com/api/v1")
        if not url.endswith("/api/v1"):
            raise InputError("api_url", f"{url!r} must end with /api/v1 (the Mediant REST API prefix)")
        return url
    host = (params.get("host") or "").strip()
    if not host or "/" in host or " " in host:
        raise InputError("host", f"{host!r} is not a host name or IP address")
    port = params.get("port") or 443
    if not 0 < port < 65536:
        raise InputError("port", f"{port} is not a TCP port (1-65535)")
    if ":" in host and not host.startswith("["):
        host = f"[{host}]"
    return f"https://{host}:{port}/api/v1"


def validate_connection(params: dict) -> None:
    base_url(params)
    if not params.get("username"):
        raise InputError("username", "is required (or set the AUDIOCODES_USERNAME environment variable)")
    if not params.get("password"):
        raise InputError("password", "is required (or set the AUDIOCODES_PASSWORD environment variable)")
    if params.get("timeout") is not None and params["timeout"] <= 0:
        raise InputError("timeout", "must be a positive number of seconds")


def multipart(fields: dict[str, tuple[str, bytes]]) -> tuple[bytes, str]:
    """Encode ``{name: (filename, content)}`` as multipart/form-data (RFC 7578); the parts are sent as
    ``application/octet-stream`` like the examples of sbc-apis.md A2."""
    boundary = f"byoc{uuid.uuid4().hex}"
    out = b""
    for name, (filename, content) in fields.items():
        out += (f"--{boundary}\r\nContent-Disposition: form-data; name=\"{name}\"; filename=\"{filename}\"\r\n"
                "Content-Type: application/octet-stream\r\n\r\n").encode("ascii") + content + b"\r\n"
    out += f"--{boundary}--\r\n".encode("ascii")
    return out, f"multipart/form-data; boundary={boundary}"


def _description(resp: Response) -> str | None:
    body = resp.json()
    if isinstance(body, dict) and body.get("description"):
        return str(body["description"])
    return None


class AudioCodesClient:
    """``sync_retries``/``sync_delay``: how often and how patiently a write answered 409 (HA synchronisation)
    is retried; the delay doubles each time, capped at 60 s. Every wait is recorded in ``sync_waits`` and
    reported through ``warn`` so the user sees it in the task result."""

    def __init__(self, params: dict, *, sync_retries: int = 10, sync_delay: float = 5.0,
                 warn: t.Callable[[str], None] | None = None, sleep: t.Callable[[float], None] = time.sleep,
                 http: HttpClient | None = None) -> None:
        self.base = base_url(params)
        self.username = params.get("username")
        self.sync_retries = sync_retries
        self.sync_delay = sync_delay
        self.warn = warn or (lambda msg: None)
        self.sleep = sleep
        self.sync_waits: list[dict] = []
        self.http = http or HttpClient(
            self.base, service=SERVICE, validate_certs=params.get("validate_certs", True),
            ca_path=params.get("ca_path"), timeout=params.get("timeout") or 30, error_message=_description,
            url_username=params.get("username"), url_password=params.get("password"), sleep=sleep,
        )

    # -- transport ------------------------------------------------------------------------------------------
    def call(self, method: str, path: str, *, data: bytes | None = None, headers: dict | None = None,
             write: bool = False, empty_ok: bool = False) -> Response | None:
        """One API call. ``write``: retry 409 with backoff. ``empty_ok``: a 400 on a GET means "no content"
        (sbc-apis.md A1: "requested resources that do not have any content" -> 400) and returns ``None``."""
        attempt = 0
        ok = (200, 201, 204) + ((400,) if empty_ok else ())
        while True:
            try:
                resp = self.http.request(method, path, data=data, headers=headers, ok=ok)
            except AuthenticationFailure as exc:
                raise self._auth_error(method, path, exc) from None
            except ConnectionFailure as exc:
                exc.msg += (" A Mediant's management certificate is self-signed by default: point ca_path at that"
                            " certificate (or at the CA that signed it) rather than turning validate_certs off.")
                raise
            except ApiError as exc:
                if exc.details.get("status") != 409 or not write:
                    raise
                attempt += 1
                said = exc.details.get("response", "")
                if attempt > self.sync_retries:
                    waited = sum(w["waited_seconds"] for w in self.sync_waits)
                    raise WaitTimeout(
                        f"The AudioCodes device at {self.base} still answered 409 (HA synchronisation in progress:"
                        f" {said}) to {method} {path} after {self.sync_retries} retries over {waited:.0f} s."
                        " Wait until the redundant unit has finished synchronising (Web: HA status), then re-run;"
                        " or raise sync_retries / sync_delay.",
                        status=409, url=self.http.url(path), sync_retries=self.sync_waits) from None
                delay = min(self.sync_delay * 2 ** (attempt - 1), 60.0)
                wait = {"request": f"{method} {path}", "attempt": attempt, "waited_seconds": delay,
                        "device_said": said}
                self.sync_waits.append(wait)
                self.warn(f"{method} {path}: the device answered 409 (HA synchronisation in progress: {said});"
                          f" retry {attempt}/{self.sync_retries} after {delay:g} s")
                self.sleep(delay)
                continue
            if empty_ok and resp is not None and resp.status == 400:
                return None
            return resp

    def _auth_error(self, method: str, path: str, exc: AuthenticationFailure) -> AuthenticationFailure:
        status = exc.details.get("status")
        said = exc.details.get("response", "")
        where = f"{method} {self.http.url(path)}"
        if status == 403:
            return AuthenticationFailure(
                f"The AudioCodes device refused {where} for user {self.username!r} (HTTP 403: {said}): its privilege"
                " level is too low. Writing and reading TLS contexts (/files) and saving (/actions) need a Local User"
                " with the Administrator (or Security Administrator) level; Monitor can only read /status and"
                " /alarms.", **exc.details)
        return AuthenticationFailure(
            f"The AudioCodes device rejected the credentials of user {self.username!r} (HTTP {status}) on {where}:"
            f" {said}. Check username and password (or AUDIOCODES_USERNAME / AUDIOCODES_PASSWORD); the REST API"
            " uses HTTP Basic with a Local User of the device.", **exc.details)

    # -- API ------------------------------------------------------------------------------------------------
    def status(self) -> dict:
        resp = self.call("GET", "status")
        body = resp.json() if resp else None
        if not isinstance(body, dict):
            raise ApiError(f"GET {self.http.url('status')} did not return a JSON object; is {self.base} a Mediant"
                           " REST API?", url=self.http.url("status"))
        return body

    def alarms(self) -> list[dict]:
        resp = self.call("GET", "alarms/active")  # sbc-apis.md A5: 204 when there are none
        if resp is None or resp.status == 204 or not resp.body:
            return []
        body = resp.json() or {}
        return [{"id": a.get("id"), "description": a.get("description")} for a in body.get("alarms", [])]

    def ini(self) -> str:
        return self.call("GET", "files/ini").text

    def certificate(self, index: int) -> str | None:
        resp = self.call("GET", f"files/tls/{index}/certificate", empty_ok=True)
        return resp.text if resp is not None else None

    def private_key_status(self, index: int) -> dict:
        resp = self.call("GET", f"files/tls/{index}/privateKey", empty_ok=True)
        body = resp.json() if resp is not None else None
        if not isinstance(body, dict):
            return {"size": 0, "valid": False}
        valid = body.get("valid")
        if isinstance(valid, str):
            valid = valid.lower() == "true"
        return {"size": int(body.get("size") or 0), "valid": bool(valid)}

    def trusted_roots(self, index: int) -> str:
        resp = self.call("GET", f"files/tls/{index}/trustedRoot", empty_ok=True)
        return resp.text if resp is not None else ""

    def upload(self, path: str, filename: str, content: str) -> None:
        body, ctype = multipart({"file": (filename, content.encode("ascii"))})
        self.call("PUT", path, data=body, headers={"Content-Type": ctype}, write=True)

    def save_configuration(self) -> None:
        # sbc-apis.md A5: empty body with Content-Length: 0.
        self.call("POST", "actions/saveConfiguration", data=b"", headers={"Content-Length": "0"}, write=True)
