"""SIP over TLS for the emulators: a listener that serves whatever certificate is installed *now*, and a client
that does what a Genesys Edge does towards an SBC (a real TLS handshake, then SIP OPTIONS, on a connection that it
keeps open and reuses).

Listener (``SipTlsListener(host, port, material, name, client_roots=None)``):

- every accepted connection asks ``material()`` for the current (certificate chain PEM, private key PEM); an SSL
  context is built per distinct material (and trusted-roots set) and cached by fingerprint, so a re-bound TLS context
  or a re-pointed TLS profile takes effect on the next handshake. When ``material()`` returns ``None`` the listener
  closes the connection before the handshake, as an SBC without a bound certificate would.
- ``client_roots`` (optional) is called per handshake. ``None`` = mutual authentication off. A PEM string (maybe
  empty) = mutual authentication on: the client must present a certificate that verifies against exactly those
  roots, as installed at that moment; an empty string refuses every client. A refused client gets the TLS alert
  OpenSSL sends for the failure (unknown_ca, certificate_required, ...), which is all a TLS client can see.
- connections are persistent: it answers ``OPTIONS`` with ``200 OK`` and anything else with ``405 Method Not
  Allowed`` (RFC 3261 §11 and §21.4.6), request after request on the same connection, until the client closes it,
  it is idle for ``idle_timeout`` seconds, or :meth:`SipTlsListener.drop_sessions` closes it. An established
  session keeps the certificate (and the client verification) of its handshake: sbc-apis.md §0.10 and B6 ("the
  existing active TLS sessions will still use the old certificate"), E3.
- ``recheck_client_trust=True`` (keyword): before answering each request on a mutually authenticated session, the
  client's certificate is checked again against the roots installed now; a session whose client is no longer
  issued by one of them is closed (Ribbon's certExpiryCheck, sbc-apis.md B2: "terminates any ongoing sessions if
  the corresponding certificates are ... no longer trusted, or expired"; checked on every request, the stricter
  reading of "periodically"). Only a client certificate issued directly by a root can be re-checked (the peer's
  intermediates are not available after the handshake); such sessions are closed too (stricter).

Client: :class:`SipTlsSession` keeps one connection open and sends OPTIONS on it; when the connection has gone it
reconnects once (a new handshake, with the trust and client certificate given now). :func:`sip_options_probe` is
the one-shot form (connect, handshake, one OPTIONS, close), used by tests as the independent TLS client.
"""

from __future__ import annotations

import hashlib
import os
import socket
import ssl
import tempfile
import threading
import uuid

IDLE_TIMEOUT = 120.0  # seconds a kept-alive session may stay silent (the Edge polls far more often)

# TLS alerts (OpenSSL reason names) that a server sends when it does not accept the client's certificate
# (RFC 8446 §6.2: bad_certificate, unsupported_certificate, certificate_revoked, certificate_expired,
# certificate_unknown, unknown_ca, access_denied, certificate_required).
CLIENT_CERT_ALERTS = {
    "SSLV3_ALERT_BAD_CERTIFICATE": "bad_certificate",
    "SSLV3_ALERT_UNSUPPORTED_CERTIFICATE": "unsupported_certificate",
    "SSLV3_ALERT_CERTIFICATE_REVOKED": "certificate_revoked",
    "SSLV3_ALERT_CERTIFICATE_EXPIRED": "certificate_expired",
    "SSLV3_ALERT_CERTIFICATE_UNKNOWN": "certificate_unknown",
    "TLSV1_ALERT_UNKNOWN_CA": "unknown_ca",
    "TLSV1_ALERT_ACCESS_DENIED": "access_denied",
    "TLSV13_ALERT_CERTIFICATE_REQUIRED": "certificate_required",
}


def _write_pair(tmp: str, chain_pem: str, key_pem: str) -> tuple[str, str]:
    cert_file, key_file = os.path.join(tmp, "c.pem"), os.path.join(tmp, "k.pem")
    with open(cert_file, "w", encoding="ascii") as fh:
        fh.write(chain_pem)
    fd = os.open(key_file, os.O_WRONLY | os.O_CREAT, 0o600)
    with os.fdopen(fd, "w", encoding="ascii") as fh:
        fh.write(key_pem)
    return cert_file, key_file


def _context_for(chain_pem: str, key_pem: str, client_roots: str | None = None) -> ssl.SSLContext:
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    # ssl only loads from files; write them to a private temp dir and remove them at once.
    with tempfile.TemporaryDirectory() as tmp:
        ctx.load_cert_chain(*_write_pair(tmp, chain_pem, key_pem))
    if client_roots is not None:
        # Mutual authentication: a client certificate is required and verified against exactly these roots (no
        # system store is ever loaded). No roots at all -> nothing verifies -> every client is refused.
        ctx.verify_mode = ssl.CERT_REQUIRED
        if client_roots.strip():
            ctx.load_verify_locations(cadata=client_roots)
    return ctx


class SipTlsListener:
    def __init__(self, host: str, port: int, material, name: str = "sbc", client_roots=None, *,
                 idle_timeout: float = IDLE_TIMEOUT, recheck_client_trust: bool = False):
        self.recheck_client_trust = recheck_client_trust
        self.host, self.port, self.material, self.name = host, port, material, name
        self.client_roots = client_roots
        self.idle_timeout = idle_timeout
        self._contexts: dict[str, ssl.SSLContext] = {}
        self._sock: socket.socket | None = None
        self._lock = threading.Lock()
        self._sessions: dict[int, socket.socket] = {}
        self.handshakes = 0
        self.options_answered = 0
        self.clients_refused = 0
        self.sessions_dropped = 0
        self.sessions_untrusted = 0
        self.last_refusal: str | None = None

    def start(self) -> None:
        self._sock = socket.create_server((self.host, self.port))
        threading.Thread(target=self._accept_loop, daemon=True, name=f"siptls-{self.port}").start()

    def stop(self) -> None:
        if self._sock is not None:
            self._sock.close()
        self.drop_sessions()

    def drop_sessions(self) -> int:
        """Close every established session (test-only fault; on a real SBC: a switchover or bouncing the SIP
        port, sbc-apis.md B6). Returns how many were closed."""
        with self._lock:
            conns = list(self._sessions.values())
            self._sessions.clear()
            self.sessions_dropped += len(conns)
        for conn in conns:
            try:
                conn.shutdown(socket.SHUT_RDWR)  # wakes the serving thread's recv with EOF
            except OSError:
                pass
        return len(conns)

    def stats(self) -> dict:
        with self._lock:
            return {"handshakes": self.handshakes, "options_answered": self.options_answered,
                    "sessions_open": len(self._sessions), "sessions_dropped": self.sessions_dropped,
                    "clients_refused": self.clients_refused, "last_refusal": self.last_refusal,
                    "sessions_untrusted": self.sessions_untrusted,
                    "mutual_auth": self.client_roots is not None and self.client_roots() is not None}

    def _context(self) -> ssl.SSLContext | None:
        current = self.material()
        if not current:
            return None
        chain_pem, key_pem = current
        roots = self.client_roots() if self.client_roots is not None else None
        key = hashlib.sha256("\0".join([chain_pem, key_pem, "-" if roots is None else "+" + roots]).encode()).hexdigest()
        with self._lock:
            ctx = self._contexts.get(key)
        if ctx is None:
            ctx = _context_for(chain_pem, key_pem, roots)
            with self._lock:
                self._contexts[key] = ctx
        return ctx

    def _accept_loop(self) -> None:
        while True:
            try:
                conn, _peer = self._sock.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, conn: socket.socket) -> None:
        conn.settimeout(10)  # for the handshake
        tls = None
        try:
            ctx = self._context()
            if ctx is None:
                conn.close()
                return
            tls = ctx.wrap_socket(conn, server_side=True, do_handshake_on_connect=False)
            try:
                tls.do_handshake()
            except ssl.SSLError as exc:
                self._lingering_close(tls)
                if ctx.verify_mode == ssl.CERT_REQUIRED and getattr(exc, "reason", None) in (
                        "CERTIFICATE_VERIFY_FAILED", "PEER_DID_NOT_RETURN_A_CERTIFICATE"):
                    with self._lock:
                        self.clients_refused += 1
                        self.last_refusal = str(getattr(exc, "verify_message", None) or exc.reason)
                    print(f"{self.name}: refused a client certificate: {self.last_refusal}", flush=True)
                return
            tls.settimeout(self.idle_timeout)
            with self._lock:
                self.handshakes += 1
                self._sessions[id(tls)] = tls
            buf = b""
            while True:  # one persistent session: request after request
                while b"\r\n\r\n" not in buf:
                    chunk = tls.recv(4096)
                    if not chunk:
                        return
                    buf += chunk
                head, _sep, buf = buf.partition(b"\r\n\r\n")
                if self.recheck_client_trust and not self._still_trusted(tls):
                    with self._lock:
                        self.sessions_untrusted += 1
                    print(f"{self.name}: closed a session whose client certificate is no longer trusted", flush=True)
                    return
                tls.sendall(self._answer(head.decode("utf-8", "replace")).encode())
        except (OSError, ssl.SSLError, ValueError):
            pass
        finally:
            if tls is not None:
                with self._lock:
                    self._sessions.pop(id(tls), None)
            try:
                (tls or conn).close()
            except OSError:
                pass

    @staticmethod
    def _lingering_close(tls: ssl.SSLSocket) -> None:
        """After a failed handshake: stop sending, read what the client still sends, then close. Closing with unread
        data would send a TCP RST, which can destroy the TLS alert in the client's receive queue before it reads it
        (then the client would only see a reset, not why)."""
        try:
            tls.shutdown(socket.SHUT_WR)  # SSLSocket.shutdown drops the TLS object and shuts the TCP socket down
            tls.settimeout(1.0)
            while tls.recv(4096):
                pass
        except (OSError, ValueError):
            pass

    def _still_trusted(self, tls: ssl.SSLSocket) -> bool:
        if self.client_roots is None:
            return True
        roots_pem = self.client_roots()
        der = tls.getpeercert(binary_form=True)
        if roots_pem is None or der is None:
            return True  # mutual authentication is off now, or was off at the handshake: nothing to re-check
        from cryptography import x509  # the emulators' dependency; imported here so the client side needs none

        peer = x509.load_der_x509_certificate(der)
        for root in x509.load_pem_x509_certificates(roots_pem.encode()) if roots_pem.strip() else []:
            try:
                peer.verify_directly_issued_by(root)
            except Exception:  # noqa: BLE001 - any failure means "not issued by this root"
                continue
            return True
        return False

    def _answer(self, request: str) -> str:
        lines = request.split("\r\n")
        method = lines[0].split(" ", 1)[0]
        # RFC 3261 §8.2.6.2: a response copies Via, From, Call-ID and CSeq, and adds a tag to To.
        copied = [ln for ln in lines[1:] if ln.split(":", 1)[0].strip().lower() in ("via", "from", "call-id", "cseq")]
        to = next((ln for ln in lines[1:] if ln.lower().startswith("to:")), "To: <sip:probe@invalid>")
        if method == "OPTIONS":
            with self._lock:
                self.options_answered += 1
            status = "200 OK"
        else:
            status = "405 Method Not Allowed"
        return "\r\n".join([f"SIP/2.0 {status}", *copied, f"{to};tag={uuid.uuid4().hex[:8]}",
                            "Allow: OPTIONS", f"Server: byoc-lab {self.name}", "Content-Length: 0", "", ""])


def _client_context(cadata: str | None, server_name: str | None, client_chain_pem: str | None,
                    client_key_pem: str | None) -> ssl.SSLContext:
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    ctx.check_hostname = bool(server_name)
    ctx.verify_mode = ssl.CERT_REQUIRED
    if cadata:
        ctx.load_verify_locations(cadata=cadata)
    if client_chain_pem and client_key_pem:
        with tempfile.TemporaryDirectory() as tmp:
            ctx.load_cert_chain(*_write_pair(tmp, client_chain_pem, client_key_pem))
    return ctx


def _tls_failure(exc: Exception, stage: str, *, fresh: bool, client_cert: bool) -> str:
    if isinstance(exc, ssl.SSLCertVerificationError):
        return f"TLS certificate verification failed: {exc.verify_message or exc}"
    reason = getattr(exc, "reason", None)
    if isinstance(exc, ssl.SSLError) and reason in CLIENT_CERT_ALERTS and fresh:
        # TLS 1.3: the server checks the client certificate after the client has finished its side of the
        # handshake, so its alert arrives on the first read; in TLS 1.2 it ends the handshake itself.
        who = "the Edge's client certificate" if client_cert else "the connection: no client certificate was sent"
        return f"the SBC refused {who} (TLS alert {CLIENT_CERT_ALERTS[reason]})"
    if isinstance(exc, ssl.SSLEOFError) or (isinstance(exc, ConnectionError) and stage == "tls"):
        return "tls failed: the SBC closed the connection during the TLS handshake"
    if isinstance(exc, ConnectionError) and fresh and client_cert:
        return ("the SBC closed the connection right after the handshake, before answering (no TLS alert was "
                "received; an SBC does this when it refuses the client's certificate)")
    return f"{stage} failed: {exc}"


class SipTlsSession:
    """One kept-alive SIP-TLS connection from a client (an Edge) to ``host:port``.

    ``options()`` sends OPTIONS on the open connection; if there is none, or the SBC has closed it, it connects
    again (a new handshake) with the trust and client certificate given to it at that moment (``configure``).
    Returns ``{"ok", "stage": "connect"|"tls"|"sip"|"done", "error", "status", "peer_sha256", "reused"}``;
    ``reused`` says the answer came over a session established before this call (so ``peer_sha256`` is the
    certificate of that older handshake)."""

    def __init__(self, host: str, port: int, *, server_name: str | None, cadata: str | None,
                 client_chain_pem: str | None = None, client_key_pem: str | None = None, timeout: float = 5.0):
        self.host, self.port, self.server_name, self.timeout = host, port, server_name, timeout
        self.cadata, self.client_chain_pem, self.client_key_pem = cadata, client_chain_pem, client_key_pem
        self._tls: ssl.SSLSocket | None = None
        self.peer_sha256: str | None = None
        self.handshakes = 0
        self.requests = 0
        self._cseq = 0

    @property
    def open(self) -> bool:
        return self._tls is not None

    def close(self) -> None:
        if self._tls is not None:
            try:
                self._tls.close()
            except OSError:
                pass
        self._tls = None

    def _connect(self, out: dict) -> bool:
        out.update(stage="connect", peer_sha256=None)
        try:
            raw = socket.create_connection((self.host, self.port), timeout=self.timeout)
        except OSError as exc:
            out["error"] = f"connect to {self.host}:{self.port} failed: {exc}"
            return False
        out["stage"] = "tls"
        try:
            ctx = _client_context(self.cadata, self.server_name, self.client_chain_pem, self.client_key_pem)
            self._tls = ctx.wrap_socket(raw, server_hostname=self.server_name or self.host)
        except (ssl.SSLError, OSError) as exc:
            raw.close()
            out["error"] = _tls_failure(exc, "tls", fresh=True, client_cert=bool(self.client_chain_pem))
            return False
        der = self._tls.getpeercert(binary_form=True)
        self.peer_sha256 = hashlib.sha256(der).hexdigest() if der else None
        self.handshakes += 1
        out["peer_sha256"] = self.peer_sha256
        return True

    def _exchange(self) -> str:
        self._cseq += 1
        call_id = uuid.uuid4().hex
        target = self.server_name or self.host
        req = "\r\n".join([
            f"OPTIONS sip:{target}:{self.port};transport=tls SIP/2.0",
            f"Via: SIP/2.0/TLS 127.0.0.1;branch=z9hG4bK{call_id[:10]}",
            "Max-Forwards: 70",
            f"From: <sip:edge@byoc-lab.invalid>;tag={call_id[:6]}",
            f"To: <sip:{target}>",
            f"Call-ID: {call_id}",
            f"CSeq: {self._cseq} OPTIONS",
            "Content-Length: 0", "", ""])
        self._tls.sendall(req.encode())
        data = b""
        while b"\r\n\r\n" not in data:
            chunk = self._tls.recv(4096)
            if not chunk:
                raise ConnectionResetError("the SBC closed the connection")
            data += chunk
        return data.decode("utf-8", "replace").split("\r\n", 1)[0]

    def options(self) -> dict:
        out = {"ok": False, "stage": "connect", "error": None, "status": None, "peer_sha256": self.peer_sha256,
               "reused": False}
        for attempt in (0, 1):
            fresh = self._tls is None
            if fresh and not self._connect(out):
                return out
            out.update(stage="sip", reused=not fresh, peer_sha256=self.peer_sha256)
            try:
                first = self._exchange()
            except (ssl.SSLError, OSError) as exc:
                self.close()
                if not fresh and attempt == 0:
                    continue  # the kept session has gone (closed by the SBC): connect again once
                out["error"] = _tls_failure(exc, "sip", fresh=fresh, client_cert=bool(self.client_chain_pem))
                if "refused" in out["error"]:
                    out["stage"] = "tls"
                return out
            self.requests += 1
            out["status"] = first
            if first.startswith("SIP/2.0 200"):
                out["ok"], out["stage"] = True, "done"
            else:
                out["error"] = f"SIP OPTIONS answered {first!r}" if first else "no SIP answer"
            return out
        return out


def sip_options_probe(host: str, port: int, *, cadata: str | None, server_name: str | None,
                      timeout: float = 5.0, client_chain_pem: str | None = None,
                      client_key_pem: str | None = None) -> dict:
    """Connect to ``host:port``, handshake trusting only ``cadata`` (PEM CAs) and checking ``server_name``,
    send one OPTIONS, close. ``host`` is the address connected to; ``server_name`` is what the certificate must
    match (and the SNI).

    Returns ``{"ok": bool, "stage": "connect"|"tls"|"sip"|"done", "error": str|None, "status": str|None,
    "peer_sha256": hex|None}``.
    """
    session = SipTlsSession(host, port, server_name=server_name, cadata=cadata, client_chain_pem=client_chain_pem,
                            client_key_pem=client_key_pem, timeout=timeout)
    try:
        out = session.options()
    finally:
        session.close()
    out.pop("reused", None)
    return out
