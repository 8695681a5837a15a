"""AudioCodes Mediant SBC emulator: the REST API ``/api/v1`` over HTTPS, and a SIP-TLS listener.

    python -m emulators.audiocodes --config device.json     (from tests/lab)

``device.json``: ``{"name", "ha": bool, "port", "sip_port", "serial", "users": {name: {"password", "level"}},
"default_cert_file", "default_key_file"}``; levels are ``monitor``, ``admin``, ``secadmin`` (sbc-apis.md A1).

One process is one management endpoint: a standalone unit, or an HA pair whose management address floats to the
active unit (sbc-apis.md A6: "management is done only through the active device"; G: "no second management
endpoint for the redundant"). The state model and its rules are in ``device.py``; the INI file in ``ini.py``.

``/_control/...`` is the lab's fault-injection API (DEVELOPING.md): TEST-ONLY, never called by the product, no
authentication. ``GET /_control/state``; ``POST /_control/factory-reset``; ``POST /_control/ha`` with any of
``{"syncing": bool, "sync_writes": n, "redundant": "up"|"down"}``; ``POST /_control/switchover``;
``POST /_control/faults`` ``{"method", "path" (regex), "status", "description", "count"}``;
``POST /_control/alarms`` ``{"description"}``; ``DELETE /_control/alarms``; ``GET /_control/requests`` (every
request: method, path, status) and ``DELETE /_control/requests``; ``GET /_control/sip`` (the SIP-TLS listener's
counters: handshakes, clients refused by mutual authentication, sessions); ``POST /_control/sessions/drop``.

``device.json`` may also set ``"mutual_auth": true``: ``SIPInterface_0`` then has ``TLSMutualAuthentication`` 1 in
its factory configuration (sbc-apis.md A4), and SIP-TLS clients must present a certificate that verifies against
the bound context's trusted roots.
"""

from __future__ import annotations

import argparse
import base64
import binascii
import copy
import datetime
import json
import os
import ssl
import sys
import tempfile
import threading
from email import policy
from email.parser import BytesParser

from ..common.httpserver import EmulatorHTTPServer, Reply, Request, Router
from ..common.siptls import SipTlsListener
from . import ini
from .device import Device, DeviceError, key_valid


def _json_error(exc: DeviceError) -> Reply:
    headers = {"WWW-Authenticate": 'Basic realm="Mediant"'} if exc.status == 401 else {}
    # sbc-apis.md 0.2 / A2 / G: errors carry a JSON body {"description": ...}.
    return Reply.json({"description": exc.description}, exc.status, headers)


def multipart_fields(req: Request) -> dict[str, bytes]:
    """sbc-apis.md A2: uploads are multipart/form-data, PEM in the form field ``file``. A raw text/plain body
    (seen in one third-party script, A2 notes) is refused with 400. One library sends the part with an empty
    name (A2 notes): whether the device accepts that is unverified -- stricter choice: refused (the field must be
    ``file``)."""
    ctype = req.headers.get("Content-Type", "")
    if not ctype.lower().startswith("multipart/form-data"):
        raise DeviceError(400, "Request must be multipart/form-data with the file in a part named 'file'")
    msg = BytesParser(policy=policy.default).parsebytes(
        b"Content-Type: " + ctype.encode("latin-1") + b"\r\nMIME-Version: 1.0\r\n\r\n" + req.body)
    fields: dict[str, bytes] = {}
    if not msg.is_multipart():
        raise DeviceError(400, "Malformed multipart body")
    for part in msg.iter_parts():
        name = part.get_param("name", header="content-disposition")
        if name:
            fields[name] = part.get_payload(decode=True) or b""
    if "file" not in fields:
        raise DeviceError(400, "No form field named 'file' in the request")
    return fields


class MediantServer(EmulatorHTTPServer):
    """sbc-apis.md A4: OAMP Web/REST always uses TLS context 0, so the management certificate is the one in
    context 0 *now* (self-signed ``ACL_<serial>`` from the factory, issue text "self-signed by default"). Each
    accepted connection is wrapped with the current context 0 material."""

    def __init__(self, address, router, *, device: Device, **kw) -> None:
        self.device = device
        self._mgmt_ctx: dict[str, ssl.SSLContext] = {}
        super().__init__(address, router, **kw)

    def _management_context(self) -> ssl.SSLContext:
        with self.device.lock:
            ctx0 = self.device.running["contexts"][0]
            if key_valid(ctx0):
                cert_pem, key_pem = ctx0["cert_pem"], ctx0["key_pem"]
            else:
                cert_pem, key_pem = self.device._factory["contexts"][0]["cert_pem"], \
                    self.device._factory["contexts"][0]["key_pem"]
        cache_key = cert_pem + key_pem
        if cache_key not in self._mgmt_ctx:
            ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            with tempfile.TemporaryDirectory() as tmp:
                cf, kf = os.path.join(tmp, "c.pem"), os.path.join(tmp, "k.pem")
                with open(cf, "w", encoding="ascii") as fh:
                    fh.write(cert_pem)
                with open(os.open(kf, os.O_WRONLY | os.O_CREAT, 0o600), "w", encoding="ascii") as fh:
                    fh.write(key_pem)
                ctx.load_cert_chain(cf, kf)
            self._mgmt_ctx[cache_key] = ctx
        return self._mgmt_ctx[cache_key]

    def get_request(self):
        sock, addr = self.socket.accept()
        # The handshake runs on first read, in the request's own thread.
        return self._management_context().wrap_socket(sock, server_side=True, do_handshake_on_connect=False), addr


def build(device: Device) -> tuple[Router, callable]:
    r = Router()
    dev = device

    def before(req: Request) -> Reply | None:
        # sbc-apis.md A1 / 0.1: HTTP Basic on every request; no session or login call.
        user = password = None
        auth = req.headers.get("Authorization", "")
        if auth.lower().startswith("basic "):
            try:
                user, _sep, password = base64.b64decode(auth[6:]).decode("utf-8").partition(":")
            except (binascii.Error, UnicodeDecodeError):
                user = None
        try:
            with dev.lock:
                dev.authorize(user, password, req.path)
                fault = dev.take_fault(req.method, req.path)
        except DeviceError as exc:
            return _json_error(exc)
        if fault:
            return Reply.json({"description": fault.get("description", "Internal error")}, int(fault["status"]))
        return None

    def guarded(fn):
        def wrapper(req: Request, **kw) -> Reply:
            try:
                with dev.lock:
                    return fn(req, **kw)
            except DeviceError as exc:
                return _json_error(exc)
        return wrapper

    def status_doc() -> dict:
        # sbc-apis.md A5 "Status": field names; saveNeeded/resetNeeded are the strings "true"/"false".
        return {
            "localTimeStamp": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S"),
            "ipAddress": "127.0.0.1", "subnetMask": "255.0.0.0", "defaultGateway": "127.0.0.1",
            "productType": "Mediant SW", "versionID": "7.40A.250.001", "protocolType": "SIP",
            "operationalState": "UNLOCKED", "highAvailability": dev.ha_state(),
            "serialNumber": dev.serial, "macAddress": "00:90:8f:00:00:01", "systemUpTime": 1000,
            "saveNeeded": "true" if dev.save_needed() else "false", "resetNeeded": "false",
            "upgradeStatus": "None",
        }

    @r.route("GET", "/api/v1/status")
    @guarded
    def status(req):
        return Reply.json(status_doc())

    @r.route("GET", "/api/v1/alarms/active")
    @guarded
    def alarms(req):
        # sbc-apis.md A5 "Active Alarms": 204 No Content when there are none; else alarms + cursor.
        if not dev.alarms:
            return Reply(204, b"")
        items = [{"id": str(i + 1), "description": a["description"], "url": f"/api/v1/alarms/active/{i + 1}"}
                 for i, a in enumerate(dev.alarms)]
        return Reply.json({"alarms": items, "cursor": {"after": "-1", "before": "-1"}})

    @r.route("POST", "/api/v1/actions/saveConfiguration")
    @guarded
    def save(req):
        # sbc-apis.md A5: the request "must include the Content-Length header with a zero value". Missing or
        # non-zero: the doc does not say what happens (UNCONFIRMED) -- stricter choice: 400.
        if req.headers.get("Content-Length") != "0" or req.body:
            raise DeviceError(400, "saveConfiguration needs an empty body with Content-Length: 0")
        dev.save()
        return Reply(200, b"", "text/plain")  # A5: 200 OK, no body shown

    @r.route("POST", "/api/v1/actions/reset")
    @guarded
    def reset(req):
        # sbc-apis.md A5 "Reset Device": JSON {"saveConfiguration": bool (default true), "gracefulTimeout": int}.
        try:
            body = req.json() or {}
        except ValueError:
            raise DeviceError(400, "Request body is not valid JSON") from None
        if not isinstance(body, dict) or set(body) - {"saveConfiguration", "gracefulTimeout"} or \
                not isinstance(body.get("saveConfiguration", True), bool) or \
                not isinstance(body.get("gracefulTimeout", 0), int):
            raise DeviceError(400, "Invalid attributes; allowed: saveConfiguration (bool), gracefulTimeout (int)")
        dev.reset(body.get("saveConfiguration", True))
        return Reply.json({"description": "Device will reset now"})

    @r.route("GET", "/api/v1/files/ini")
    @guarded
    def get_ini(req):
        # sbc-apis.md A3: full INI, application/octet-stream, with the [ TLSContexts ] table (A4).
        return Reply(200, ini.render(dev.running, status_doc()).encode(), "application/octet-stream")

    @r.route("PUT", "/api/v1/files/ini/incremental")
    @guarded
    def put_ini_incremental(req):
        # sbc-apis.md A4: partial INI without a reset (answer shape UNCONFIRMED; see ini.py).
        text = multipart_fields(req)["file"].decode("utf-8", "replace")
        dev.check_write("INI file")
        conf = copy.deepcopy(dev.running)
        done = ini.apply_incremental(conf, text)
        dev.unit["running"] = conf
        dev.replicate()
        return Reply.json({"description": "Incremental INI file was loaded.", "output": "\n".join(done)})

    tls = r"/api/v1/files/tls/(?P<index>\d+)"

    @r.route("GET", tls + "/privateKey")
    @guarded
    def get_key(req, index):
        # sbc-apis.md A2 "Private Key": {"size", "valid"}; the key itself can never be read back.
        ctx = dev.context(int(index))
        return Reply.json({"size": ctx["key_size"], "valid": key_valid(ctx)})

    @r.route("PUT", tls + "/privateKey")
    @guarded
    def put_key(req, index):
        fields = multipart_fields(req)
        password = fields.get("password", b"").decode() or None
        dev.put_private_key(int(index), fields["file"].decode("ascii", "replace"), password)
        return Reply.json({"description": "Private key was successfully changed"})

    @r.route("GET", tls + "/certificate")
    @guarded
    def get_cert(req, index):
        # sbc-apis.md A2 "Device Certificate": PEM as application/octet-stream. No certificate: A1 "requested
        # resources that do not have any content" -> 400.
        ctx = dev.context(int(index))
        if not ctx["cert_pem"]:
            raise DeviceError(400, "No certificate is loaded in this TLS context")
        return Reply(200, ctx["cert_pem"].encode(), "application/octet-stream")

    @r.route("PUT", tls + "/certificate")
    @guarded
    def put_cert(req, index):
        dev.put_certificate(int(index), multipart_fields(req)["file"].decode("ascii", "replace"))
        return Reply.json({"description": "Certificate was successfully changed"})

    @r.route("GET", tls + "/trustedRoot")
    @guarded
    def get_roots(req, index):
        # sbc-apis.md A2 "Trusted Root Certificates": the whole store, concatenated PEM; empty -> 400 (A1).
        ctx = dev.context(int(index))
        if not ctx["trusted_roots"]:
            raise DeviceError(400, "The trusted root store of this TLS context is empty")
        return Reply(200, "".join(ctx["trusted_roots"]).encode(), "application/octet-stream")

    @r.route("PUT", tls + "/trustedRoot")
    @guarded
    def put_roots(req, index):
        dev.put_trusted_roots(int(index), multipart_fields(req)["file"].decode("ascii", "replace"), False)
        return Reply.json({"description": "Trusted root certificates were successfully changed"})

    @r.route("PUT", tls + "/trustedRoot/incremental")
    @guarded
    def put_root_incremental(req, index):
        dev.put_trusted_roots(int(index), multipart_fields(req)["file"].decode("ascii", "replace"), True)
        return Reply.json({"description": "Trusted root certificate was successfully added"})

    # ---- /_control: TEST-ONLY fault injection and state read-back (DEVELOPING.md lab rules) ----------------
    @r.route("GET", "/_control/state")
    def c_state(req):
        return Reply.json(dev.describe())

    @r.route("POST", "/_control/factory-reset")
    def c_factory(req):
        dev.factory_reset()
        return Reply.json(dev.describe())

    @r.route("POST", "/_control/ha")
    @guarded
    def c_ha(req):
        body = req.json() or {}
        if "syncing" in body:
            dev.syncing = bool(body["syncing"])
        if "sync_writes" in body:
            dev.sync_writes = int(body["sync_writes"])
        if body.get("redundant") in ("up", "down"):
            if not dev.ha:
                raise DeviceError(400, "not an HA pair")
            dev.redundant_up = body["redundant"] == "up"
            dev.replicate()  # a returning redundant is re-synchronised from the active (A6)
        return Reply.json(dev.describe())

    @r.route("POST", "/_control/switchover")
    @guarded
    def c_switchover(req):
        dev.switchover()
        return Reply.json(dev.describe())

    @r.route("POST", "/_control/faults")
    @guarded
    def c_faults(req):
        body = req.json() or {}
        dev.faults.append({"method": body.get("method", "PUT").upper(), "path": body["path"],
                           "status": int(body.get("status", 500)), "count": int(body.get("count", 1)),
                           "description": body.get("description", "Internal error (injected by the lab)")})
        return Reply.json(dev.describe())

    @r.route("POST", "/_control/alarms")
    @guarded
    def c_alarm(req):
        dev.alarms.append({"description": (req.json() or {}).get("description", "lab alarm")})
        return Reply.json({"alarms": dev.alarms})

    @r.route("DELETE", "/_control/alarms")
    @guarded
    def c_alarms_clear(req):
        dev.alarms.clear()
        return Reply.json({"alarms": []})

    return r, before


def serve(cfg: dict) -> tuple[MediantServer, SipTlsListener]:
    """Build one device (its REST server and SIP-TLS listener, both bound and listening); the caller runs
    ``serve_forever``. One process may host many devices this way (``--fleet``), each on its own ports and with its
    own state, lock and request log, so every device answers exactly as a single-device process does."""
    with open(cfg["default_cert_file"], encoding="ascii") as fh:
        cert_pem = fh.read()
    with open(cfg["default_key_file"], encoding="ascii") as fh:
        key_pem = fh.read()
    device = Device(name=cfg["name"], ha=bool(cfg["ha"]), users=cfg["users"], default_cert_pem=cert_pem,
                    default_key_pem=key_pem, serial=str(cfg["serial"]), mutual_auth=bool(cfg.get("mutual_auth")),
                    sip_seed=_seed_material(cfg.get("sip_seed")))
    router, before = build(device)

    @router.route("GET", "/_control/requests")
    def c_requests(req):
        with server.log_lock:
            return Reply.json([{"method": m, "path": p, "status": s} for m, p, s in server.request_log])

    @router.route("DELETE", "/_control/requests")
    def c_requests_clear(req):
        with server.log_lock:
            server.request_log.clear()
        return Reply.json([])

    # sbc-apis.md G: SIP-TLS serves whatever context is bound to the SIP Interface now (see Device.sip_material);
    # with TLSMutualAuthentication on, clients are verified against that context's trusted roots as installed now
    # (Device.sip_client_roots); a change of what is served ends the established sessions (Device._tls_changed).
    sip = SipTlsListener("127.0.0.1", int(cfg["sip_port"]), device.sip_material, name=f"mediant {cfg['name']}",
                         client_roots=device.sip_client_roots)
    device.tls_watchers.append(sip.drop_sessions)
    sip.start()

    @router.route("GET", "/_control/sip")
    def c_sip(req):
        # TEST-ONLY: the SIP-TLS listener's counters (handshakes, refused clients, sessions). The device lock is
        # taken first, as on every write path (device -> listener), so the two locks are always taken in one order.
        with device.lock:
            return Reply.json(sip.stats())

    @router.route("POST", "/_control/sessions/drop")
    def c_sip_drop(req):
        # TEST-ONLY, as on the Ribbon emulators: end every established SIP-TLS session (a bounced SIP port).
        return Reply.json({"dropped": sip.drop_sessions()})
    server = MediantServer(("127.0.0.1", int(cfg["port"])), router, device=device, name=f"mediant-{cfg['name']}",
                           before=before)
    print(f"mediant {cfg['name']}: REST on https://127.0.0.1:{cfg['port']}/api/v1, SIP-TLS on {cfg['sip_port']},"
          f" ha={cfg['ha']}", flush=True)
    return server, sip


def _seed_material(seed: dict | None) -> tuple[str, str] | None:
    """``sip_seed: {"cert_file", "key_file"}`` (lab fleet mode): the certificate the SIP Interface serves at start
    (for example an expired one), as a configured TLS context of the device; see ``Device``."""
    if not seed:
        return None
    with open(seed["cert_file"], encoding="ascii") as fh:
        cert_pem = fh.read()
    with open(seed["key_file"], encoding="ascii") as fh:
        return cert_pem, fh.read()


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description="AudioCodes Mediant emulator (lab)")
    group = parser.add_mutually_exclusive_group(required=True)
    group.add_argument("--config", help="one device (device.json)")
    group.add_argument("--fleet", help="a JSON list of device.json objects: many devices in one process (lab fleet)")
    args = parser.parse_args(argv)
    with open(args.config or args.fleet, encoding="utf-8") as fh:
        loaded = json.load(fh)
    started = [serve(cfg) for cfg in (loaded if args.fleet else [loaded])]
    for server, _sip in started[1:]:
        threading.Thread(target=server.serve_forever, daemon=True, name=f"rest-{server.name}").start()
    try:
        started[0][0].serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        for _server, sip in started:
            sip.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
