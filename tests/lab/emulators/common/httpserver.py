"""A small routing HTTP(S) server for the vendor emulators (standard library only).

Routes are ``(method, regex) -> handler(request, **groups)``; a handler returns ``Reply``. Paths under
``/_control/`` are the lab's fault-injection API: test-only, never called by the product. Each emulator keeps its
state in one object guarded by one lock, and logs one line per request (method, path, status) so a test or a
benchmark can count requests from the log or from ``/_control/requests``.
"""

from __future__ import annotations

import json
import re
import ssl
import threading
import typing as t
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit


@dataclass
class Request:
    method: str
    path: str
    query: dict[str, list[str]]
    headers: t.Any
    body: bytes

    def json(self) -> t.Any:
        return json.loads(self.body.decode("utf-8")) if self.body else None

    def q(self, name: str, default: str | None = None) -> str | None:
        vals = self.query.get(name)
        return vals[0] if vals else default


@dataclass
class Reply:
    status: int = 200
    body: bytes | str | t.Any = b""
    content_type: str = "application/json"
    headers: dict[str, str] = field(default_factory=dict)

    @classmethod
    def json(cls, obj: t.Any, status: int = 200, headers: dict | None = None) -> "Reply":
        return cls(status, json.dumps(obj).encode(), "application/json", headers or {})


Handler = t.Callable[..., Reply]


class Router:
    def __init__(self) -> None:
        self.routes: list[tuple[str, re.Pattern, Handler]] = []

    def add(self, method: str, pattern: str, handler: Handler) -> None:
        self.routes.append((method.upper(), re.compile(f"^{pattern}$"), handler))

    def route(self, method: str, pattern: str):
        def deco(fn: Handler) -> Handler:
            self.add(method, pattern, fn)
            return fn
        return deco

    def dispatch(self, req: Request) -> Reply:
        allowed = []
        for method, rx, handler in self.routes:
            m = rx.match(req.path)
            if not m:
                continue
            if method != req.method:
                allowed.append(method)
                continue
            return handler(req, **m.groupdict())
        if allowed:
            return Reply(405, b"", "text/plain", {"Allow": ", ".join(sorted(set(allowed)))})
        return Reply(404, b"not found", "text/plain")


class EmulatorHTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, address: tuple[str, int], router: Router, *, name: str,
                 certfile: str | None = None, keyfile: str | None = None,
                 before: t.Callable[[Request], Reply | None] | None = None) -> None:
        self.router = router
        self.name = name
        self.before = before
        self.request_log: list[tuple[str, str, int]] = []
        self.log_lock = threading.Lock()
        super().__init__(address, _RequestHandler)
        if certfile:
            ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            ctx.load_cert_chain(certfile, keyfile)
            self.socket = ctx.wrap_socket(self.socket, server_side=True)


class _RequestHandler(BaseHTTPRequestHandler):
    server: EmulatorHTTPServer
    protocol_version = "HTTP/1.1"

    def _handle(self) -> None:
        parts = urlsplit(self.path)
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        req = Request(self.command, parts.path, parse_qs(parts.query), self.headers, body)
        reply = None
        if self.server.before is not None and not req.path.startswith("/_control/"):
            reply = self.server.before(req)
        if reply is None:
            try:
                reply = self.server.router.dispatch(req)
            except Exception as exc:  # noqa: BLE001 - an emulator bug must show as a 500, not a dead socket
                reply = Reply(500, f"emulator error: {exc!r}".encode(), "text/plain")
        data = reply.body if isinstance(reply.body, bytes) else str(reply.body).encode()
        with self.server.log_lock:
            self.server.request_log.append((req.method, req.path, reply.status))
        self.send_response(reply.status)
        if data or reply.status not in (204, 304):
            self.send_header("Content-Type", reply.content_type)
        for k, v in reply.headers.items():
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = _handle

    def log_message(self, fmt: str, *args: t.Any) -> None:  # one line per request, to the part's log
        print(f"{self.server.name}: {self.address_string()} {fmt % args}", flush=True)
