"""Ribbon SBC Core emulator: one HA pair (two nodes) behind one logical management address.

What it speaks (facts in shared/reference/sbc-apis.md, cited inline):
- ConfD-style REST under /api/config/... and /api/operational/..., HTTP Basic on every request, XML bodies of type
  application/vnd.yang.data+xml, the <errors> envelope on failures (B1).
- system/security/pki/certificate/<name> with fileName, passPhrase, type local|remote, state (B2, B4);
  profiles/security/tlsProfile/<name> with serverCertName/clientCertName (B3, B4).
- operational system/serverStatus (one row per node: mgmtRedundancyRole, syncStatus) and system/syncStatus (B1).
- one SFTP server per node for /opt/sonus/external (B2, B5; see sftp.py).
- HA: configuration replicates to both nodes, files do not (B2 quote "upload ... to active and standby nodes", B5);
  after a switchover the new active loads every enabled certificate object from ITS OWN disk, so an object whose
  file is missing there fails (E6).
- a SIP-TLS listener on the pair's signalling address serving the certificate of the TLS profile bound to the SIP
  port (B3: defaultTlsProfile is used by each SIP signalling port); a re-pointed profile is used for the next new
  connection (B6).
- mutual authentication: ``authClient true`` on that TLS profile (B3: ``authClient <false|true>``) makes the listener
  require a client certificate and verify it against the ``remote`` PKI objects loaded on the active node at the
  moment of the handshake (B2: remote = CA certificates / trust anchors). The reference does not say which remote
  objects a profile trusts; the stricter reading used here: only enabled, loaded remote objects, and nothing else
  (no system store). Empty -> every client is refused.
- sessions: a SIP-TLS session keeps the certificate of its handshake after the profile is re-pointed (B6 "the
  existing active TLS sessions will still use the old certificate", §0.10, E3); a switchover closes them (B6: a
  manual node switchover is the means to disconnect them). NOT modelled: certExpiryCheck (B2) ending sessions whose
  peer is no longer trusted or expired.

Test-only control API under /_control/ (never called by the product): state, switchover, sync status, SFTP faults,
``POST /_control/sessions/drop`` (close every established SIP-TLS session, like bouncing the sipSigPort, B6).
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import json
import re
import threading
import xml.etree.ElementTree as ET
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.serialization import pkcs12

from emulators.common.httpserver import EmulatorHTTPServer, Reply, Request, Router
from emulators.common.siptls import SipTlsListener
from emulators.ribbon_core.sftp import SftpNodeServer, load_or_create_host_key, public_line

YANG = "application/vnd.yang.data+xml"  # sbc-apis.md B1
NS_REST = "http://tail-f.com/ns/rest"  # sbc-apis.md B1 (collection xmlns:y)
NS_SYSTEM = "http://sonusnet.com/ns/mibs/SONUS-SYSTEM/1.0"  # namespace style of B1's example; exact URI [INFER]
NS_PROFILES = "http://sonusnet.com/ns/mibs/SONUS-PROFILES/1.0"  # [INFER], see above
NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$")  # exact limits UNCONFIRMED (B2); stricter: a safe subset


class LoadError(Exception):
    pass


class Node:
    def __init__(self, name: str, root: Path, role: str) -> None:
        self.name, self.root, self.role = name, root, role
        self.root.mkdir(parents=True, exist_ok=True)
        self.sftp_down = False
        self.sftp_readonly = False
        self.events: list[str] = []

    def log(self, msg: str) -> None:
        self.events.append(msg)
        print(f"node {self.name}: {msg}", flush=True)


def _spki(obj) -> bytes:
    return obj.public_key().public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)


def load_object(node: Node, obj: dict) -> dict:
    """Load a certificate object from the node's /opt/sonus/external, as the node would when it installs it."""
    path = node.root / obj["fileName"]
    if not path.is_file():
        # sbc-apis.md B2: files must be in /opt/sonus/external before the object is installed
        raise LoadError(f"file {obj['fileName']} not found in /opt/sonus/external on node {node.name}")
    data = path.read_bytes()
    if obj["type"] == "local":
        # sbc-apis.md B2: local = PKCS#12 with certificate and key (+ passphrase). PEM/DER local pairs exist in
        # 12.1 only; the stricter choice here accepts PKCS#12 only.
        try:
            key, cert, extra = pkcs12.load_key_and_certificates(data, (obj.get("passPhrase") or "").encode() or None)
        except (ValueError, TypeError) as exc:
            raise LoadError(f"cannot open PKCS#12 {obj['fileName']} (wrong passPhrase or not PKCS#12): {exc}") from None
        if key is None or cert is None:
            raise LoadError(f"PKCS#12 {obj['fileName']} must hold a certificate and its private key")
        if _spki(key) != _spki(cert):
            raise LoadError(f"the private key in {obj['fileName']} does not match its certificate")
        chain = "".join(c.public_bytes(serialization.Encoding.PEM).decode() for c in [cert, *extra])
        key_pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                    serialization.NoEncryption()).decode()
        return {"cert": cert, "chain_pem": chain, "key_pem": key_pem}
    # remote: PEM or DER (sbc-apis.md B2)
    try:
        cert = x509.load_pem_x509_certificate(data) if b"-----BEGIN" in data else x509.load_der_x509_certificate(data)
    except ValueError as exc:
        raise LoadError(f"{obj['fileName']} is not a PEM or DER certificate: {exc}") from None
    return {"cert": cert, "chain_pem": None, "key_pem": None}


class CoreState:
    def __init__(self, cfg: dict) -> None:
        self.lock = threading.RLock()
        self.cfg = cfg
        self.nodes = [Node(n["name"], Path(n["root"]), "active" if i == 0 else "standby")
                      for i, n in enumerate(cfg["nodes"])]
        self.sync = "syncCompleted"
        self.certs: dict[str, dict] = {}
        self.profiles: dict[str, dict] = {}
        self.loaded: dict[str, dict] = {}  # name -> loaded material or {"error": ...} on the ACTIVE node
        self.sip_profile = cfg.get("sip_profile", "defaultTlsProfile")
        self.switchovers = 0
        self.listener: SipTlsListener | None = None

    @property
    def active(self) -> Node:
        return next(n for n in self.nodes if n.role == "active")

    def reload_active(self) -> None:
        self.loaded = {}
        for name, obj in self.certs.items():
            if obj.get("state") != "enabled":
                continue
            try:
                self.loaded[name] = load_object(self.active, obj)
            except LoadError as exc:
                # sbc-apis.md E6: a standby lacking the file -> the object fails after the switchover
                self.loaded[name] = {"error": str(exc)}
                self.active.log(f"certificate {name} failed to load: {exc}")

    def material(self):
        with self.lock:
            prof = self.profiles.get(self.sip_profile) or {}
            name = prof.get("serverCertName")
            got = self.loaded.get(name) if name else None
            if not got or "error" in got:
                return None  # nothing valid bound: the listener refuses the handshake
            return got["chain_pem"], got["key_pem"]

    def client_roots(self) -> str | None:
        """None when the SIP port's profile has authClient false (B3, the default); else the PEM of every remote
        PKI object loaded on the active node now (maybe empty: then no client is accepted)."""
        with self.lock:
            prof = self.profiles.get(self.sip_profile) or {}
            if str(prof.get("authClient", "false")).lower() != "true":
                return None
            return "".join(got["cert"].public_bytes(serialization.Encoding.PEM).decode()
                           for name, got in self.loaded.items()
                           if "error" not in got and self.certs.get(name, {}).get("type") == "remote")


# ---------------------------------------------------------------------------------------------- XML helpers
def local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]


def parse_xml(body: bytes) -> ET.Element:
    if b"<!DOCTYPE" in body or b"<!ENTITY" in body:
        raise ValueError("DTDs are not accepted")
    return ET.fromstring(body)


def leaves(elem: ET.Element) -> dict[str, str]:
    return {local(c.tag): (c.text or "").strip() for c in elem if len(c) == 0}


def errors(status: int, tag: str, path: str, message: str) -> Reply:
    """sbc-apis.md B1: <errors><error><error-tag/><error-urlpath/><error-message/></error></errors>."""
    root = ET.Element("errors", xmlns=NS_REST)
    err = ET.SubElement(root, "error")
    ET.SubElement(err, "error-tag").text = tag
    ET.SubElement(err, "error-urlpath").text = path
    ET.SubElement(err, "error-message").text = message
    return Reply(status, ET.tostring(root), YANG)


def element(tag: str, ns: str, self_path: str, fields: dict) -> ET.Element:
    el = ET.Element(tag, {"xmlns": ns, "y:self": self_path})
    for k, v in fields.items():
        if v is not None:
            ET.SubElement(el, k).text = str(v)
    return el


def collection(children: list[ET.Element]) -> Reply:
    root = ET.Element("collection", {"xmlns:y": NS_REST})  # sbc-apis.md B1 list shape
    root.extend(children)
    return Reply(200, ET.tostring(root), YANG)


def single(el: ET.Element) -> Reply:
    el.set("xmlns:y", NS_REST)
    return Reply(200, ET.tostring(el), YANG)


CERT_BASE = "/api/config/system/security/pki/certificate"
PROF_BASE = "/api/config/profiles/security/tlsProfile"


def build(state: CoreState, cfg: dict) -> tuple[Router, callable]:
    r = Router()
    user, password = cfg["username"], cfg["password"]

    def before(req: Request) -> Reply | None:
        # sbc-apis.md B1: stateless, HTTP Basic on every request
        auth = req.headers.get("Authorization") or ""
        ok = False
        if auth.startswith("Basic "):
            try:
                u, sep, p = base64.b64decode(auth[6:]).decode().partition(":")
                ok = bool(sep) and (u, p) == (user, password)
            except ValueError:
                ok = False
        if not ok:
            rep = errors(401, "access-denied", req.path, "access denied")
            rep.headers["WWW-Authenticate"] = 'Basic realm="restconf"'
            return rep
        if req.method in ("PUT", "PATCH", "POST") and req.path.startswith("/api/"):
            ctype = (req.headers.get("Content-Type") or "").split(";")[0].strip()
            if ctype != YANG:  # sbc-apis.md B1: XML bodies of type application/vnd.yang.data+xml
                return errors(415, "malformed-message", req.path, f"unsupported Content-Type {ctype or '(none)'}")
        with state.lock:
            for f in list(faults):  # test-only (POST /_control/fault): a ConfD <errors> answer, sbc-apis.md B1
                if f["method"] == req.method and re.search(f["path"], req.path):
                    f["times"] -= 1
                    if f["times"] <= 0:
                        faults.remove(f)
                    return errors(f["status"], "invalid-value", req.path, f["message"])
        return None

    faults: list[dict] = []

    @r.route("POST", "/_control/fault")
    def c_fault(req):
        body = req.json() or {}
        with state.lock:
            faults.append({"method": body.get("method", "PUT"), "path": body["path"], "times": int(body.get("times", 1)),
                           "status": int(body.get("status", 400)), "message": body.get("message", "injected fault")})
            return Reply.json({"faults": faults})

    def cert_el(obj: dict) -> ET.Element:
        # passPhrase is write-only here (a secret is never echoed back; stricter, UNCONFIRMED)
        return element("certificate", NS_SYSTEM, f"{CERT_BASE}/{obj['name']}",
                       {"name": obj["name"], "fileName": obj["fileName"], "type": obj["type"], "state": obj["state"]})

    def prof_el(p: dict) -> ET.Element:
        return element("tlsProfile", NS_PROFILES, f"{PROF_BASE}/{p['name']}", p)

    @r.route("GET", CERT_BASE)
    def list_certs(req):
        with state.lock:
            return collection([cert_el(o) for o in state.certs.values()])

    @r.route("GET", CERT_BASE + r"/(?P<name>[^/]+)")
    def get_cert(req, name):
        with state.lock:
            obj = state.certs.get(name)
            if obj is None:
                return errors(404, "invalid-value", req.path, f"certificate {name} not found")
            return single(cert_el(obj))

    @r.route("PUT", CERT_BASE + r"/(?P<name>[^/]+)")
    def put_cert(req, name):
        try:
            el = parse_xml(req.body)
        except (ValueError, ET.ParseError) as exc:
            return errors(400, "malformed-message", req.path, f"bad XML: {exc}")
        if local(el.tag) != "certificate":
            return errors(400, "malformed-message", req.path, "expected a <certificate> element")
        f = leaves(el)
        if f.get("name", name) != name or not NAME_RE.match(name):
            return errors(400, "invalid-value", req.path, "name must match the URL and be 1-63 safe characters")
        obj = {"name": name, "fileName": f.get("fileName", ""), "passPhrase": f.get("passPhrase", ""),
               "type": f.get("type", "local"), "state": f.get("state", "disabled")}
        if obj["type"] not in ("local", "remote"):  # B2 types (local-internal not emulated)
            return errors(400, "invalid-value", req.path, f"type {obj['type']} not supported")
        if obj["state"] not in ("enabled", "disabled"):
            return errors(400, "invalid-value", req.path, f"state {obj['state']} invalid")
        if not obj["fileName"] or "/" in obj["fileName"]:
            return errors(400, "invalid-value", req.path, "fileName is required (a file in /opt/sonus/external)")
        with state.lock:
            exists = name in state.certs
            in_use = [p["name"] for p in state.profiles.values()
                      if name in (p.get("serverCertName"), p.get("clientCertName"))]
            if exists and in_use:
                # B6: the procedure never overwrites an in-use object; stricter (UNCONFIRMED): refuse it
                return errors(409, "in-use", req.path, f"certificate {name} is used by tlsProfile {', '.join(in_use)}")
            loaded = None
            if obj["state"] == "enabled":
                try:
                    loaded = load_object(state.active, obj)  # sbc-apis.md G: reject when file/passphrase/key bad
                except LoadError as exc:
                    return errors(400, "invalid-value", req.path, str(exc))
            state.certs[name] = obj  # config replicates to the standby (B5 [INFER])
            if loaded:
                state.loaded[name] = loaded
            else:
                state.loaded.pop(name, None)
        return Reply(204 if exists else 201, b"", YANG)  # B4 [INFER] 201 new / 204 replaced

    @r.route("DELETE", CERT_BASE + r"/(?P<name>[^/]+)")
    def del_cert(req, name):
        with state.lock:
            if name not in state.certs:
                return errors(404, "invalid-value", req.path, f"certificate {name} not found")
            in_use = [p["name"] for p in state.profiles.values()
                      if name in (p.get("serverCertName"), p.get("clientCertName"))]
            if in_use:  # stricter (UNCONFIRMED): a referenced object cannot be deleted
                return errors(409, "in-use", req.path, f"certificate {name} is used by tlsProfile {', '.join(in_use)}")
            del state.certs[name]
            state.loaded.pop(name, None)
        return Reply(204, b"", YANG)

    @r.route("GET", PROF_BASE)
    def list_profiles(req):
        with state.lock:
            return collection([prof_el(p) for p in state.profiles.values()])

    @r.route("GET", PROF_BASE + r"/(?P<name>[^/]+)")
    def get_profile(req, name):
        with state.lock:
            p = state.profiles.get(name)
            if p is None:
                return errors(404, "invalid-value", req.path, f"tlsProfile {name} not found")
            return single(prof_el(p))

    def write_profile(req, name, replace: bool):
        try:
            el = parse_xml(req.body)
        except (ValueError, ET.ParseError) as exc:
            return errors(400, "malformed-message", req.path, f"bad XML: {exc}")
        if local(el.tag) != "tlsProfile":
            return errors(400, "malformed-message", req.path, "expected a <tlsProfile> element")
        f = leaves(el)
        if f.get("name", name) != name or not (1 <= len(name) <= 23):  # B3: 1-23 characters
            return errors(400, "invalid-value", req.path, "name must match the URL (1-23 characters)")
        with state.lock:
            if not replace and name not in state.profiles:
                return errors(404, "invalid-value", req.path, f"tlsProfile {name} not found")
            if "authClient" in f and f["authClient"] not in ("true", "false"):  # B3: authClient <false|true>
                return errors(400, "invalid-value", req.path, f"authClient {f['authClient']}: must be true or false")
            for leaf in ("serverCertName", "clientCertName"):
                ref = f.get(leaf)
                if not ref:
                    continue
                obj = state.certs.get(ref)
                if obj is None or obj["type"] != "local":
                    return errors(400, "invalid-value", req.path, f"{leaf} {ref}: no local certificate of that name")
                got = state.loaded.get(ref)
                if not got or "error" in got:
                    # [INFER] a profile cannot point at a certificate the active node has not loaded (stricter)
                    why = got["error"] if got else "state is not enabled"
                    return errors(400, "invalid-value", req.path, f"{leaf} {ref}: certificate not usable: {why}")
            base = {} if replace else dict(state.profiles[name])
            existed = name in state.profiles
            base.update(f)
            base["name"] = name
            state.profiles[name] = base
        return Reply(204 if existed else 201, b"", YANG)

    r.add("PATCH", PROF_BASE + r"/(?P<name>[^/]+)", lambda req, name: write_profile(req, name, False))
    r.add("PUT", PROF_BASE + r"/(?P<name>[^/]+)", lambda req, name: write_profile(req, name, True))

    @r.route("GET", r"/api/operational/system/serverStatus")
    def server_status(req):
        # sbc-apis.md B1: serverStatus fields name, hwType, applicationVersion, mgmtRedundancyRole, syncStatus, ...
        with state.lock:
            return collection([
                element("serverStatus", NS_SYSTEM, f"/api/operational/system/serverStatus/{n.name}", {
                    "name": n.name, "hwType": "SBC SWe", "applicationVersion": "V12.01.00R000",
                    "mgmtRedundancyRole": n.role, "syncStatus": state.sync,
                    "upTime": "0 Days 01:00:00", "lastRestartReason": "switchover" if state.switchovers else "normal"})
                for n in state.nodes])

    @r.route("GET", r"/api/operational/system/syncStatus")
    def sync_status(req):
        # sbc-apis.md B1: rows <syncModule>Policy Data</syncModule><status>syncCompleted</status>
        with state.lock:
            return collection([
                element("syncStatus", NS_SYSTEM, f"/api/operational/system/syncStatus/{i}",
                        {"syncModule": mod, "status": state.sync})
                for i, mod in enumerate(["Policy Data", "Disk Mirroring", "Configuration Data"])])

    # ------------------------------------------------------------------------ test-only control API
    def snapshot() -> dict:
        nodes = []
        for n in state.nodes:
            files = {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(n.root.iterdir()) if p.is_file()}
            nodes.append({"name": n.name, "role": n.role, "files": files, "sftp_down": n.sftp_down,
                          "sftp_readonly": n.sftp_readonly})
        loaded = {}
        for name, got in state.loaded.items():
            loaded[name] = ({"error": got["error"]} if "error" in got else {
                "fingerprint": hashlib.sha256(got["cert"].public_bytes(serialization.Encoding.DER)).hexdigest()})
        return {"nodes": nodes, "sync": state.sync, "switchovers": state.switchovers,
                "sip": state.listener.stats() if state.listener else None,
                "certificates": {k: {kk: vv for kk, vv in v.items() if kk != "passPhrase"} for k, v in state.certs.items()},
                "profiles": state.profiles, "loaded": loaded, "sip_profile": state.sip_profile}

    @r.route("GET", "/_control/state")
    def c_state(req):
        with state.lock:
            return Reply.json(snapshot())

    @r.route("POST", "/_control/switchover")
    def c_switch(req):
        with state.lock:
            for n in state.nodes:
                n.role = "standby" if n.role == "active" else "active"
            state.switchovers += 1
            state.reload_active()  # the new active loads the replicated config from its own files
            if state.listener:
                state.listener.drop_sessions()  # B6: a node switchover disconnects the existing TLS sessions
            return Reply.json(snapshot())

    @r.route("POST", "/_control/sessions/drop")
    def c_drop(req):
        # TEST-ONLY fault: what bouncing the sipSigPort does (B6): every established SIP-TLS session is closed.
        dropped = state.listener.drop_sessions() if state.listener else 0
        with state.lock:
            return Reply.json({"dropped": dropped, **snapshot()})

    @r.route("POST", "/_control/sync")
    def c_sync(req):
        body = req.json() or {}
        with state.lock:
            state.sync = body.get("status", "syncCompleted")
            return Reply.json(snapshot())

    @r.route("POST", "/_control/sftp")
    def c_sftp(req):
        body = req.json() or {}
        with state.lock:
            node = next((n for n in state.nodes if n.name == body.get("node") or n.role == body.get("role")), None)
            if node is None:
                return Reply.json({"error": "no such node"}, 400)
            node.sftp_down = bool(body.get("down", False))
            node.sftp_readonly = bool(body.get("readonly", False))
            return Reply.json(snapshot())

    @r.route("GET", "/_control/requests")
    def c_requests(req):
        return Reply.json([list(x) for x in server.request_log])

    server = None

    def bind(srv):
        nonlocal server
        server = srv

    return r, before, bind


def seed(state: CoreState, cfg: dict) -> None:
    """Initial configuration: one local certificate (the lab CA's) bound to the SIP port's profile, on both nodes."""
    s = cfg.get("seed")
    if not s:
        state.profiles[state.sip_profile] = {"name": state.sip_profile}
        return
    cert = x509.load_pem_x509_certificate(Path(s["cert_file"]).read_bytes())
    key = serialization.load_pem_private_key(Path(s["key_file"]).read_bytes(), None)
    data = pkcs12.serialize_key_and_certificates(
        s["name"].encode(), key, cert, None, serialization.BestAvailableEncryption(s["passphrase"].encode()))
    for n in state.nodes:
        (n.root / f"{s['name']}.p12").write_bytes(data)
    state.certs[s["name"]] = {"name": s["name"], "fileName": f"{s['name']}.p12", "passPhrase": s["passphrase"],
                              "type": "local", "state": "enabled"}
    state.profiles[state.sip_profile] = {"name": state.sip_profile, "serverCertName": s["name"]}
    if cfg.get("auth_client"):
        state.profiles[state.sip_profile]["authClient"] = "true"  # B3: mutual authentication on the SIP port
    state.reload_active()


def serve(cfg: dict) -> EmulatorHTTPServer:
    """Build one HA pair (SFTP servers, SIP-TLS listener, REST server, all listening); the caller runs
    ``serve_forever``. One process may host many pairs this way (``--fleet``), each with its own ports, state and
    request log, so each pair answers exactly as a single-pair process does."""
    state = CoreState(cfg)
    seed(state, cfg)
    host = cfg.get("host", "127.0.0.1")
    for ncfg, node in zip(cfg["nodes"], state.nodes):
        key = load_or_create_host_key(Path(ncfg["host_key_file"]))
        Path(ncfg["host_key_file"] + ".pub").write_text(public_line(key) + "\n")
        SftpNodeServer(host, ncfg["sftp_port"], node, key, cfg["sftp_username"], cfg["sftp_password"]).start()
    state.listener = SipTlsListener(host, cfg["sip_port"], state.material, name="ribbon-core",
                                    client_roots=state.client_roots,
                                    recheck_client_trust=True)  # B2 certExpiryCheck: sessions whose client is no longer trusted end
    state.listener.start()
    router, before, bind = build(state, cfg)
    srv = EmulatorHTTPServer((host, cfg["api_port"]), router, name="ribbon-core",
                             certfile=cfg["tls_cert"], keyfile=cfg["tls_key"], before=before)
    bind(srv)
    print(f"ribbon-core: api https://{host}:{cfg['api_port']} sip-tls {cfg['sip_port']}", flush=True)
    return srv


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description="Ribbon SBC Core emulator (lab, test-only)")
    group = ap.add_mutually_exclusive_group(required=True)
    group.add_argument("--config", help="JSON file written by the lab component")
    group.add_argument("--fleet", help="a JSON list of such configurations: many pairs in one process (lab fleet)")
    args = ap.parse_args(argv)
    loaded = json.loads(Path(args.config or args.fleet).read_text())
    servers = [serve(cfg) for cfg in (loaded if args.fleet else [loaded])]
    for srv in servers[1:]:
        threading.Thread(target=srv.serve_forever, daemon=True).start()
    servers[0].serve_forever()
    return 0
