"""SIP over TLS for the emulators: a listener that serves whatever certificate is installed *now*, and a probe
that does what a Genesys Edge does towards an SBC (a real TLS handshake, then SIP OPTIONS).

Listener: every accepted connection asks ``material()`` for the current (certificate chain PEM, private key PEM);
an SSL context is built per distinct material and cached by fingerprint, so a re-bound TLS context or a re-pointed
TLS profile takes effect on the next handshake. It answers ``OPTIONS`` with ``200 OK`` and anything else with
``405 Method Not Allowed`` (RFC 3261 §11 and §21.4.6). When ``material()`` returns ``None`` the listener closes
the connection before the handshake, as an SBC without a bound certificate would.
"""

from __future__ import annotations

import hashlib
import os
import socket
import ssl
import tempfile
import threading
import uuid


def _context_for(chain_pem: str, key_pem: str) -> ssl.SSLContext:
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    # ssl only loads from files; write them to a private temp dir and remove them at once.
    with tempfile.TemporaryDirectory() as tmp:
        cert_file, key_file = os.path.join(tmp, "c.pem"), os.path.join(tmp, "k.pem")
        with open(cert_file, "w", encoding="ascii") as fh:
            fh.write(chain_pem)
        fd = os.open(key_file, os.O_WRONLY | os.O_CREAT, 0o600)
        with os.fdopen(fd, "w", encoding="ascii") as fh:
            fh.write(key_pem)
        ctx.load_cert_chain(cert_file, key_file)
    return ctx


class SipTlsListener:
    def __init__(self, host: str, port: int, material, name: str = "sbc"):
        self.host, self.port, self.material, self.name = host, port, material, name
        self._contexts: dict[str, ssl.SSLContext] = {}
        self._sock: socket.socket | None = None
        self.handshakes = 0
        self.options_answered = 0

    def start(self) -> None:
        self._sock = socket.create_server((self.host, self.port))
        threading.Thread(target=self._accept_loop, daemon=True, name=f"siptls-{self.port}").start()

    def stop(self) -> None:
        if self._sock is not None:
            self._sock.close()

    def _context(self) -> ssl.SSLContext | None:
        current = self.material()
        if not current:
            return None
        chain_pem, key_pem = current
        key = hashlib.sha256((chain_pem + key_pem).encode()).hexdigest()
        if key not in self._contexts:
            self._contexts[key] = _context_for(chain_pem, key_pem)
        return self._contexts[key]

    def _accept_loop(self) -> None:
        while True:
            try:
                conn, _peer = self._sock.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, conn: socket.socket) -> None:
        conn.settimeout(10)
        try:
            ctx = self._context()
            if ctx is None:
                conn.close()
                return
            with ctx.wrap_socket(conn, server_side=True) as tls:
                self.handshakes += 1
                buf = b""
                while b"\r\n\r\n" not in buf:
                    chunk = tls.recv(4096)
                    if not chunk:
                        return
                    buf += chunk
                tls.sendall(self._answer(buf.decode("utf-8", "replace")).encode())
        except (OSError, ssl.SSLError, ValueError):
            pass
        finally:
            try:
                conn.close()
            except OSError:
                pass

    def _answer(self, request: str) -> str:
        lines = request.split("\r\n")
        method = lines[0].split(" ", 1)[0]
        # RFC 3261 §8.2.6.2: a response copies Via, From, Call-ID and CSeq, and adds a tag to To.
        copied = [ln for ln in lines[1:] if ln.split(":", 1)[0].strip().lower() in ("via", "from", "call-id", "cseq")]
        to = next((ln for ln in lines[1:] if ln.lower().startswith("to:")), "To: <sip:probe@invalid>")
        if method == "OPTIONS":
            self.options_answered += 1
            status = "200 OK"
        else:
            status = "405 Method Not Allowed"
        return "\r\n".join([f"SIP/2.0 {status}", *copied, f"{to};tag={uuid.uuid4().hex[:8]}",
                            "Allow: OPTIONS", f"Server: byoc-lab {self.name}", "Content-Length: 0", "", ""])


def sip_options_probe(host: str, port: int, *, cadata: str | None, server_name: str | None,
                      timeout: float = 5.0, client_chain_pem: str | None = None,
                      client_key_pem: str | None = None) -> dict:
    """Handshake with ``host:port`` trusting only ``cadata`` (PEM CAs), check ``server_name``, send OPTIONS.

    Returns ``{"ok": bool, "stage": "connect"|"tls"|"sip"|"done", "error": str|None, "status": str|None,
    "peer_sha256": hex|None}``.
    """
    out = {"ok": False, "stage": "connect", "error": None, "status": None, "peer_sha256": None}
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    ctx.check_hostname = bool(server_name)
    ctx.verify_mode = ssl.CERT_REQUIRED
    if cadata:
        ctx.load_verify_locations(cadata=cadata)
    if client_chain_pem and client_key_pem:
        ctx_tmp = _context_for(client_chain_pem, client_key_pem)  # validates the pair
        del ctx_tmp
        with tempfile.TemporaryDirectory() as tmp:
            c, k = os.path.join(tmp, "c.pem"), os.path.join(tmp, "k.pem")
            open(c, "w", encoding="ascii").write(client_chain_pem)
            open(k, "w", encoding="ascii").write(client_key_pem)
            ctx.load_cert_chain(c, k)
    try:
        raw = socket.create_connection((host, port), timeout=timeout)
    except OSError as exc:
        out["error"] = f"connect to {host}:{port} failed: {exc}"
        return out
    out["stage"] = "tls"
    try:
        with ctx.wrap_socket(raw, server_hostname=server_name or host) as tls:
            der = tls.getpeercert(binary_form=True)
            out["peer_sha256"] = hashlib.sha256(der).hexdigest() if der else None
            out["stage"] = "sip"
            call_id = uuid.uuid4().hex
            target = server_name or host
            req = "\r\n".join([
                f"OPTIONS sip:{target}:{port};transport=tls SIP/2.0",
                f"Via: SIP/2.0/TLS 127.0.0.1;branch=z9hG4bK{call_id[:10]}",
                "Max-Forwards: 70",
                f"From: <sip:edge@byoc-lab.invalid>;tag={call_id[:6]}",
                f"To: <sip:{target}>",
                f"Call-ID: {call_id}",
                "CSeq: 1 OPTIONS",
                "Content-Length: 0", "", ""])
            tls.sendall(req.encode())
            data = b""
            while b"\r\n\r\n" not in data:
                chunk = tls.recv(4096)
                if not chunk:
                    break
                data += chunk
            first = data.decode("utf-8", "replace").split("\r\n", 1)[0]
            out["status"] = first
            if first.startswith("SIP/2.0 200"):
                out["ok"], out["stage"] = True, "done"
            else:
                out["error"] = f"SIP OPTIONS answered {first!r}" if first else "no SIP answer"
    except ssl.SSLCertVerificationError as exc:
        out["error"] = f"TLS certificate verification failed: {exc.verify_message or exc}"
    except (ssl.SSLError, OSError) as exc:
        out["error"] = f"{out['stage']} failed: {exc}"
    return out
