"""Ribbon SBC Edge emulator: one unit (sbc-apis.md C6: no HA config sync; each unit is its own host).

Facts (shared/reference/sbc-apis.md), cited inline:
- C1: POST /rest/login (form Username, Password) -> session cookie (PHPSESSID + csrfp_token); every call returns
  the cookie; no/expired cookie -> HTTP 401; the session expires after 10 minutes of inactivity; POST /rest/logout.
- C2: every answer is <root><status><http_code>..</http_code>[<app_status>..]</status>[resource]</root> with
  HTTP 200, application errors included; list GETs return <x_list><x_pk href=.../>.
- C3: POST /rest/certificate/{id}?action=import, id 1 = server certificate, others = trusted CAs; form
  CertFileOperation / CertFileContent / CertFileName; one PEM block per call (bundles silently truncated); the chain
  is verified on import (CA first, else code 15020); no two certificates with the same CN (15017);
  POST /rest/csr?action=generate -> <csr><csrContent>PEM</csrContent></csr> (the key stays on the box).
- C5: GET /rest/system.
- C4: TLS profiles with a "Mutual Authentication" setting. Its REST resource and field names are UNCONFIRMED; this
  emulator picks ``/rest/tlsprofile/{id}`` (GET; POST with form fields to modify, the UX API's verb for updating an
  existing resource [INFER from D: RibbonEdgePsRest uses PUT to create]) with ``MutualAuth`` 0|1 (also
  ``Description``, ``TLSVersion``, ``ValidateClientFQDN`` read-only here). Profile 1 is the one the SIP signalling
  group uses [INFER C4: "the SIP Signaling Group references a TLS profile"]. With ``MutualAuth`` 1 the SIP-TLS
  listener requires a client certificate and verifies it against the trusted CA slots (ids >= 2) as installed at
  that moment; which CAs a real unit uses for client verification is UNCONFIRMED, the stricter reading: those slots
  and nothing else.
- Sessions: an established SIP-TLS session keeps the certificate of its handshake after certificate 1 changes
  (sbc-apis.md §0.10 "AudioCodes [INFER] similar" / E3; UNCONFIRMED for the Edge, the stricter (less optimistic)
  reading is taken: old sessions stay on the old certificate).

Test-only control API under /_control/ (never called by the product): state, session expiry, faults,
``POST /_control/sessions/drop`` (close every established SIP-TLS session).
"""

from __future__ import annotations

import argparse
import base64
import datetime
import hashlib
import json
import re
import secrets
import threading
import time
import xml.etree.ElementTree as ET
from pathlib import Path
from urllib.parse import parse_qs

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.serialization import pkcs12
from cryptography.x509.oid import NameOID

from emulators.common.httpserver import EmulatorHTTPServer, Reply, Request, Router
from emulators.common.siptls import SipTlsListener

IDLE_SECONDS = 600  # sbc-apis.md C1: "session expires after 10 minutes of inactivity"
PEM_RE = re.compile(rb"-----BEGIN CERTIFICATE-----.+?-----END CERTIFICATE-----", re.S)

# Application status codes. 15017 and 15020 come from sbc-apis.md C2/C3 [CODE]; the others are UNCONFIRMED
# placeholders, chosen in the same number range.
APP_DUPLICATE = 15017          # C2: duplicate serial / unsupported; C3: no two certificates with the same CN
APP_CHAIN = 15020              # C2/C3: chain verification failed
APP_BAD_CERT = 15010           # UNCONFIRMED: content is not a certificate
APP_KEY_MISMATCH = 15021       # UNCONFIRMED: server certificate does not match the key on the box
APP_NOT_CA = 15022             # UNCONFIRMED: a CA slot needs a CA certificate
APP_BAD_LOGIN = 10002          # UNCONFIRMED: login refused
APP_NOT_FOUND = 10004          # UNCONFIRMED: no such resource
APP_BAD_PARAM = 10005          # UNCONFIRMED: missing or invalid parameter


def fp(cert) -> str:
    return hashlib.sha256(cert.public_bytes(serialization.Encoding.DER)).hexdigest()


def pub_der(obj) -> bytes:
    return obj.public_key().public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)


def signed_by(cert, issuer) -> bool:
    if cert.issuer != issuer.subject:
        return False
    try:
        key = issuer.public_key()
        if isinstance(key, rsa.RSAPublicKey):
            key.verify(cert.signature, cert.tbs_certificate_bytes, padding.PKCS1v15(), cert.signature_hash_algorithm)
        elif isinstance(key, ec.EllipticCurvePublicKey):
            key.verify(cert.signature, cert.tbs_certificate_bytes, ec.ECDSA(cert.signature_hash_algorithm))
        else:
            return False
        return True
    except Exception:  # noqa: BLE001 - any failure means "not signed by"
        return False


def is_ca(cert) -> bool:
    try:
        return bool(cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca)
    except x509.ExtensionNotFound:
        return False


class EdgeState:
    def __init__(self, cfg: dict) -> None:
        self.lock = threading.RLock()
        self.cfg = cfg
        self.sessions: dict[str, dict] = {}
        self.logins = 0
        self.expire_after: int | None = None  # test hook: expire all sessions after N more authenticated calls
        self.faults: list[dict] = []
        self.certs: dict[int, dict] = {}  # id -> {"cert", "pem", "name"}
        self.server_key = None  # the key of certificate 1; it never leaves the box
        self.pending_key = None  # key of the last CSR generated on the box
        self.csr_count = 0
        self.imports: list[dict] = []  # every import attempt: id, result code
        # C4 TLS profiles (REST names UNCONFIRMED, see the module docstring); 1 = the SIP signalling group's
        self.tls_profiles: dict[int, dict] = {1: {"Description": "SIP signalling (lab)", "TLSVersion": "1.2-1.3",
                                                  "MutualAuth": "1" if cfg.get("mutual_auth") else "0",
                                                  "ValidateClientFQDN": "0"}}
        self.listener = None

    def chain_ok(self, cert, exclude: int | None = None) -> bool:
        """C3: the chain is validated on import: cert must lead, through installed CAs, to a self-signed CA."""
        cas = [c["cert"] for i, c in self.certs.items() if i != 1 and i != exclude]
        current, seen = cert, 0
        while seen < 10:
            seen += 1
            issuer = next((c for c in cas if signed_by(current, c)), None)
            if issuer is None:
                return False
            if issuer.subject == issuer.issuer:
                return True
            current = issuer
        return False

    def client_roots(self) -> str | None:
        """None with Mutual Authentication off on profile 1; else the PEM of every trusted CA slot now."""
        with self.lock:
            if self.tls_profiles.get(1, {}).get("MutualAuth") != "1":
                return None
            return "".join(c["cert"].public_bytes(serialization.Encoding.PEM).decode()
                           for i, c in sorted(self.certs.items()) if i != 1)

    def material(self):
        with self.lock:
            one = self.certs.get(1)
            if not one or self.server_key is None:
                return None
            chain = [one["cert"]]
            cas = [c["cert"] for i, c in sorted(self.certs.items()) if i != 1]
            while True:  # send the intermediates the box holds (never the self-signed root)
                nxt = next((c for c in cas if signed_by(chain[-1], c) and c.subject != c.issuer and c not in chain), None)
                if nxt is None:
                    break
                chain.append(nxt)
            key_pem = self.server_key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                                    serialization.NoEncryption()).decode()
            return "".join(c.public_bytes(serialization.Encoding.PEM).decode() for c in chain), key_pem


# ---------------------------------------------------------------------------------------------- envelope
def envelope(http_code: int = 200, app_code: int | None = None, params: str = "", resource: ET.Element | None = None,
             href: str = "", cookies: list[str] | None = None) -> Reply:
    """sbc-apis.md C2: HTTP 200 always; <http_code> and <app_status> carry the outcome."""
    root = ET.Element("root")
    status = ET.SubElement(root, "status")
    ET.SubElement(status, "http_code").text = str(http_code)
    if app_code is not None:
        app = ET.SubElement(status, "app_status", href=href)
        ET.SubElement(app, "app_status_entry", code=str(app_code), params=params)
    if resource is not None:
        root.append(resource)
    rep = Reply(200, b'<?xml version="1.0"?>\n' + ET.tostring(root), "application/xml")
    for i, cookie in enumerate(cookies or []):
        # one Set-Cookie header per cookie; the shared server keeps headers in a dict, so vary the name's case
        # (header names are case-insensitive, RFC 9110 5.1)
        rep.headers[["Set-Cookie", "set-cookie", "SET-COOKIE"][i]] = cookie
    return rep


def form(req: Request) -> dict[str, str]:
    ctype = (req.headers.get("Content-Type") or "").split(";")[0].strip()
    if ctype not in ("application/x-www-form-urlencoded", ""):
        return {}
    return {k: v[0] for k, v in parse_qs(req.body.decode("utf-8", "replace"), keep_blank_values=True).items()}


def cert_resource(base: str, cid: int, entry: dict) -> ET.Element:
    c = entry["cert"]
    el = ET.Element("certificate", href=f"{base}/rest/certificate/{cid}")
    cn = c.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
    pub = c.public_key()
    fields = {
        # sbc-apis.md C3 resource schema
        "CertSerialNumber": format(c.serial_number, "X"),
        "CertCommonName": cn[0].value if cn else "",
        "CertIssuerName": c.issuer.rfc4514_string(),
        "CertSubjectName": c.subject.rfc4514_string(),
        "CertStartDateEpoch": int(c.not_valid_before_utc.timestamp()),
        "CertEndDateEpoch": int(c.not_valid_after_utc.timestamp()),
        "CertKeyLength": getattr(pub, "key_size", ""),
        "CertSignatureAlgorithm": c.signature_algorithm_oid._name,
        # C3: "(+ the import fields)": CertFileName and CertFileContent come back with the resource [INFER]
        "CertFileName": entry.get("name", ""),
        "CertFileContent": c.public_bytes(serialization.Encoding.PEM).decode(),
    }
    for k, v in fields.items():
        ET.SubElement(el, k).text = str(v)
    return el


def build(state: EdgeState, cfg: dict):
    r = Router()
    base = f"https://{cfg.get('host', '127.0.0.1')}:{cfg['api_port']}"

    def session_of(req: Request) -> str | None:
        cookie = req.headers.get("Cookie") or ""
        jar = dict(p.strip().split("=", 1) for p in cookie.split(";") if "=" in p)
        return jar.get("PHPSESSID")

    def before(req: Request) -> Reply | None:
        if req.path in ("/rest/login",) or not req.path.startswith("/rest/"):
            return None
        with state.lock:
            for f in list(state.faults):  # test-only: an application error inside HTTP 200 (C2, E8)
                if re.search(f["path"], req.path) and f.get("method", req.method) == req.method:
                    f["times"] -= 1
                    if f["times"] <= 0:
                        state.faults.remove(f)
                    return envelope(f.get("http_code", 500), f["code"], f.get("params", ""), href=base + req.path)
            sid = session_of(req)
            sess = state.sessions.get(sid or "")
            now = time.monotonic()
            if sess is None or now - sess["last"] > state.cfg.get("idle_seconds", IDLE_SECONDS):
                state.sessions.pop(sid or "", None)
                # C1: no/expired cookie -> HTTP 401
                rep = envelope(401, None)
                rep.status = 401
                return rep
            if state.cfg.get("require_csrf") and req.method != "GET":
                # C1 [CODE]: newer firmware wants csrfp_token echoed in X-CSRF-Token (strictness configurable)
                if req.headers.get("X-CSRF-Token") != sess["csrf"]:
                    rep = envelope(403, None)
                    rep.status = 403
                    return rep
            sess["last"] = now
            if state.expire_after is not None:
                state.expire_after -= 1
                if state.expire_after <= 0:
                    state.expire_after = None
                    sess["last"] = -1e12  # the NEXT call on this session finds it expired (idle)
        return None

    @r.route("POST", "/rest/login")
    def login(req):
        f = form(req)
        with state.lock:
            if f.get("Username") != cfg["username"] or f.get("Password") != cfg["password"]:
                return envelope(401, APP_BAD_LOGIN, href=base + req.path)  # error inside HTTP 200 (C2)
            sid, csrf = secrets.token_hex(16), secrets.token_hex(16)
            state.sessions[sid] = {"last": time.monotonic(), "csrf": csrf}
            state.logins += 1
        return envelope(200, cookies=[f"PHPSESSID={sid}; Path=/; Secure; HttpOnly", f"csrfp_token={csrf}; Path=/"])

    @r.route("POST", "/rest/logout")
    def logout(req):
        with state.lock:
            state.sessions.pop(session_of(req) or "", None)
        return envelope(200)

    @r.route("GET", "/rest/system")
    def system(req):
        el = ET.Element("system", href=f"{base}/rest/system")
        ET.SubElement(el, "rt_Software_Base_Version").text = "12.1.1"  # C5 field names
        ET.SubElement(el, "rt_Software_Base_BuildNumber").text = "42"
        return envelope(200, resource=el)

    @r.route("GET", "/rest/certificate")
    def list_certs(req):
        el = ET.Element("certificate_list")  # C2: <x_list><x_pk href=...>
        with state.lock:
            for cid in sorted(state.certs):
                ET.SubElement(el, "certificate_pk", href=f"{base}/rest/certificate/{cid}")
        return envelope(200, resource=el)

    @r.route("GET", r"/rest/certificate/(?P<cid>\d+)")
    def get_cert(req, cid):
        with state.lock:
            entry = state.certs.get(int(cid))
            if entry is None:
                return envelope(404, APP_NOT_FOUND, cid, href=base + req.path)
            return envelope(200, resource=cert_resource(base, int(cid), entry))

    def result(cid: int, code: int | None, http: int, params: str, href: str) -> Reply:
        state.imports.append({"id": cid, "code": code})
        return envelope(http, code, params, href=href)

    @r.route("POST", r"/rest/certificate/(?P<cid>\d+)")
    def import_cert(req, cid):
        cid = int(cid)
        href = base + req.path
        if req.q("action") != "import":
            return envelope(500, APP_BAD_PARAM, "action", href=href)
        f = form(req)
        op, content, name = f.get("CertFileOperation", ""), f.get("CertFileContent", ""), f.get("CertFileName", "")
        if op not in ("1", "2") or not content or len(name) > 80:  # C3 parameter rules
            return result(cid, APP_BAD_PARAM, 500, "CertFileOperation|CertFileContent|CertFileName", href)
        with state.lock:
            new_key = None
            if name.lower().endswith((".p12", ".pfx")):
                # PKCS#12 import over REST: parameter names UNCONFIRMED (C3). Modelled as CertFileContent = base64
                # of the PKCS#12 and PKCS12Password; accepted for the server certificate (id 1) only.
                if cid != 1:
                    return result(cid, APP_BAD_PARAM, 500, "PKCS12 only for certificate 1", href)
                try:
                    key, cert, _extra = pkcs12.load_key_and_certificates(
                        base64.b64decode(content), (f.get("PKCS12Password") or "").encode() or None)
                except (ValueError, TypeError) as exc:
                    return result(cid, APP_BAD_CERT, 500, f"PKCS12: {exc}", href)
                if key is None or cert is None or pub_der(key) != pub_der(cert):
                    return result(cid, APP_KEY_MISMATCH, 500, "PKCS12 key/certificate", href)
                if getattr(key, "key_size", 0) > 2048 and cfg.get("model", "SWe Lite") != "SWe Lite":
                    return result(cid, APP_BAD_CERT, 500, "4096-bit keys not supported", href)  # C3
                new_key = key
            else:
                blocks = PEM_RE.findall(content.encode())
                if not blocks:
                    return result(cid, APP_BAD_CERT, 500, "no PEM certificate", href)
                # C3: one PEM block per import call; a bundle is silently truncated to its first block
                try:
                    cert = x509.load_pem_x509_certificate(blocks[0])
                except ValueError as exc:
                    return result(cid, APP_BAD_CERT, 500, str(exc), href)
            cn = cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
            for other_id, other in state.certs.items():
                if other_id == cid:
                    continue
                ocn = other["cert"].subject.get_attributes_for_oid(NameOID.COMMON_NAME)
                if cn and ocn and cn[0].value == ocn[0].value:
                    return result(cid, APP_DUPLICATE, 500, f"duplicate CN {cn[0].value}", href)  # C3, code from C2
            if cid == 1:
                if not state.chain_ok(cert):
                    return result(cid, APP_CHAIN, 500, "chain verification failed", href)  # C3: CA first
                if new_key is None:
                    # A signed certificate for the box's own key: the pending CSR key or the current one.
                    for candidate in (state.pending_key, state.server_key):
                        if candidate is not None and pub_der(candidate) == pub_der(cert):
                            new_key = candidate
                            break
                    else:
                        return result(cid, APP_KEY_MISMATCH, 500, "certificate does not match the key on the box", href)
                if new_key is state.pending_key:
                    state.pending_key = None
                state.server_key = new_key
            else:
                if not is_ca(cert):  # stricter (UNCONFIRMED): trusted CA slots hold CA certificates
                    return result(cid, APP_NOT_CA, 500, "not a CA certificate", href)
                if cert.subject != cert.issuer and not state.chain_ok(cert, exclude=cid):
                    # [INFER] an intermediate is verified like the server certificate: its issuer comes first
                    return result(cid, APP_CHAIN, 500, "chain verification failed", href)
            state.certs[cid] = {"cert": cert, "name": name}
            return result(cid, None, 200, "", href)

    @r.route("DELETE", r"/rest/certificate/(?P<cid>\d+)")
    def delete_cert(req, cid):
        cid = int(cid)
        with state.lock:
            if cid == 1 or cid not in state.certs:
                return envelope(500, APP_BAD_PARAM if cid == 1 else APP_NOT_FOUND, str(cid), href=base + req.path)
            del state.certs[cid]
        return envelope(200)

    @r.route("POST", "/rest/csr")
    def csr(req):
        # C3 [CODE]: POST /rest/csr?action=generate with commonName, keyBitLength 1024|2048, sanDNS
        href = base + req.path
        if req.q("action") != "generate":
            return envelope(500, APP_BAD_PARAM, "action", href=href)
        f = form(req)
        cn = f.get("commonName", "")
        bits = f.get("keyBitLength", "2048")
        if not cn or bits not in ("1024", "2048"):
            return envelope(500, APP_BAD_PARAM, "commonName|keyBitLength", href=href)
        sans = [s.strip() for s in re.split(r"[,\s]+", f.get("sanDNS", "")) if s.strip()]
        key = rsa.generate_private_key(public_exponent=65537, key_size=int(bits))
        builder = x509.CertificateSigningRequestBuilder().subject_name(
            x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)]))
        names = list(dict.fromkeys([cn, *sans]))
        builder = builder.add_extension(x509.SubjectAlternativeName([x509.DNSName(n) for n in names]), critical=False)
        request = builder.sign(key, hashes.SHA256())
        with state.lock:
            state.pending_key = key
            state.csr_count += 1
        el = ET.Element("csr")
        ET.SubElement(el, "csrContent").text = request.public_bytes(serialization.Encoding.PEM).decode()
        return envelope(200, resource=el)

    def profile_resource(pid: int, prof: dict) -> ET.Element:
        el = ET.Element("tlsprofile", href=f"{base}/rest/tlsprofile/{pid}")
        for k, v in prof.items():
            ET.SubElement(el, k).text = str(v)
        return el

    @r.route("GET", "/rest/tlsprofile")
    def list_profiles(req):
        el = ET.Element("tlsprofile_list")  # C2 list shape
        with state.lock:
            for pid in sorted(state.tls_profiles):
                ET.SubElement(el, "tlsprofile_pk", href=f"{base}/rest/tlsprofile/{pid}")
        return envelope(200, resource=el)

    @r.route("GET", r"/rest/tlsprofile/(?P<pid>\d+)")
    def get_profile(req, pid):
        with state.lock:
            prof = state.tls_profiles.get(int(pid))
            if prof is None:
                return envelope(404, APP_NOT_FOUND, pid, href=base + req.path)
            return envelope(200, resource=profile_resource(int(pid), prof))

    @r.route("POST", r"/rest/tlsprofile/(?P<pid>\d+)")
    def set_profile(req, pid):
        f = form(req)
        href = base + req.path
        with state.lock:
            prof = state.tls_profiles.get(int(pid))
            if prof is None:
                return envelope(404, APP_NOT_FOUND, pid, href=href)
            unknown = [k for k in f if k not in ("MutualAuth", "Description")]
            if unknown or ("MutualAuth" in f and f["MutualAuth"] not in ("0", "1")):
                # stricter (UNCONFIRMED): only the fields the lab models are writable; MutualAuth is 0 or 1
                return envelope(500, APP_BAD_PARAM, ",".join(unknown) or "MutualAuth", href=href)
            prof.update(f)
            return envelope(200, resource=profile_resource(int(pid), prof))

    # ------------------------------------------------------------------------ test-only control API
    def snapshot() -> dict:
        return {
            "certificates": {str(i): {"fingerprint": fp(e["cert"]), "subject": e["cert"].subject.rfc4514_string(),
                                      "name": e["name"]} for i, e in sorted(state.certs.items())},
            "server_key_sha256": hashlib.sha256(pub_der(state.server_key)).hexdigest() if state.server_key else None,
            "pending_key_sha256": hashlib.sha256(pub_der(state.pending_key)).hexdigest() if state.pending_key else None,
            "logins": state.logins, "sessions": len(state.sessions), "csr_count": state.csr_count,
            "imports": state.imports, "faults": state.faults,
            "tls_profiles": {str(k): dict(v) for k, v in state.tls_profiles.items()},
            "sip": state.listener.stats() if state.listener else None,
        }

    @r.route("GET", "/_control/state")
    def c_state(req):
        with state.lock:
            return Reply.json(snapshot())

    @r.route("POST", "/_control/expire")
    def c_expire(req):
        body = req.json() or {}
        with state.lock:
            if body.get("after_requests"):
                state.expire_after = int(body["after_requests"])
            else:
                for s in state.sessions.values():
                    s["last"] = -1e12
            return Reply.json(snapshot())

    @r.route("POST", "/_control/sessions/drop")
    def c_drop(req):
        # TEST-ONLY fault: every established SIP-TLS session is closed (the next client connects anew).
        dropped = state.listener.drop_sessions() if state.listener else 0
        with state.lock:
            return Reply.json({"dropped": dropped, **snapshot()})

    @r.route("POST", "/_control/fault")
    def c_fault(req):
        body = req.json() or {}
        with state.lock:
            state.faults.append({"path": body["path"], "code": int(body["code"]), "times": int(body.get("times", 1)),
                                 "http_code": int(body.get("http_code", 500)), "params": body.get("params", ""),
                                 **({"method": body["method"]} if body.get("method") else {})})
            return Reply.json(snapshot())

    @r.route("GET", "/_control/requests")
    def c_requests(req):
        return Reply.json([list(x) for x in server_ref[0].request_log])

    server_ref: list = [None]
    return r, before, server_ref


def seed(state: EdgeState, cfg: dict) -> None:
    s = cfg.get("seed")
    if not s:
        return
    ca = x509.load_pem_x509_certificate(Path(s["ca_file"]).read_bytes())
    cert = x509.load_pem_x509_certificate(Path(s["cert_file"]).read_bytes())
    state.certs[2] = {"cert": ca, "name": "lab-ca.pem"}
    state.certs[1] = {"cert": cert, "name": "lab-initial.pem"}
    state.server_key = serialization.load_pem_private_key(Path(s["key_file"]).read_bytes(), None)


def serve(cfg: dict) -> EmulatorHTTPServer:
    """Build one unit (SIP-TLS listener and REST server, listening); the caller runs ``serve_forever``. One process
    may host many units this way (``--fleet``), each with its own ports, state and request log, so each unit answers
    exactly as a single-unit process does."""
    state = EdgeState(cfg)
    seed(state, cfg)
    host = cfg.get("host", "127.0.0.1")
    state.listener = SipTlsListener(host, cfg["sip_port"], state.material, name="ribbon-edge",
                                    client_roots=state.client_roots,
                                    recheck_client_trust=True)  # UNCONFIRMED for the Edge; stricter: like Core's certExpiryCheck (B2)
    state.listener.start()
    router, before, ref = build(state, cfg)
    srv = EmulatorHTTPServer((host, cfg["api_port"]), router, name="ribbon-edge", certfile=cfg["tls_cert"],
                             keyfile=cfg["tls_key"], before=before)
    ref[0] = srv
    print(f"ribbon-edge: api https://{host}:{cfg['api_port']} sip-tls {cfg['sip_port']} "
          f"(started {datetime.datetime.now(datetime.timezone.utc).isoformat(timespec='seconds')})", flush=True)
    return srv


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description="Ribbon SBC Edge emulator (lab, test-only)")
    group = ap.add_mutually_exclusive_group(required=True)
    group.add_argument("--config")
    group.add_argument("--fleet", help="a JSON list of configurations: many units in one process (lab fleet)")
    args = ap.parse_args(argv)
    loaded = json.loads(Path(args.config or args.fleet).read_text())
    servers = [serve(cfg) for cfg in (loaded if args.fleet else [loaded])]
    for srv in servers[1:]:
        threading.Thread(target=srv.serve_forever, daemon=True).start()
    servers[0].serve_forever()
    return 0
