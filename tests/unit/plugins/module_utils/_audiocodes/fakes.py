# Copyright (c) 2026, byoc.certificates contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Test doubles: a tiny in-memory Mediant behind the real HttpClient (only its socket call is replaced), a fake
AnsibleModule, and a test PKI."""

from __future__ import annotations

import datetime
import json
from email import policy
from email.parser import BytesParser

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from ansible_collections.byoc.certificates.plugins.module_utils._audiocodes import ini
from ansible_collections.byoc.certificates.plugins.module_utils._http import HttpClient, Response


def cert(cn, key, issuer=None, issuer_key=None, ca=False, days=30, start_days=2):
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])
    now = datetime.datetime.now(datetime.timezone.utc)
    return (x509.CertificateBuilder().subject_name(name).issuer_name(issuer.subject if issuer else name)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(days=start_days)).not_valid_after(now + datetime.timedelta(days=days))
            .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
            .sign(issuer_key or key, hashes.SHA256()))


def pem(c) -> str:
    return c.public_bytes(serialization.Encoding.PEM).decode()


def key_pem(k) -> str:
    return k.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                           serialization.NoEncryption()).decode()


class Pki:
    def __init__(self):
        self.root_key = ec.generate_private_key(ec.SECP256R1())
        self.root = cert("Root", self.root_key, ca=True)
        self.inter_key = ec.generate_private_key(ec.SECP256R1())
        self.inter = cert("Intermediate", self.inter_key, self.root, self.root_key, ca=True)
        self.key = ec.generate_private_key(ec.SECP256R1())
        self.leaf = cert("sbc.test", self.key, self.inter, self.inter_key)
        self.key2 = ec.generate_private_key(ec.SECP256R1())
        self.leaf2 = cert("sbc.test", self.key2, self.inter, self.inter_key, start_days=1)
        self.expired_root = cert("Old Root", self.root_key, ca=True, days=-1)
        self.key3 = ec.generate_private_key(ec.SECP256R1())
        self.leaf3 = cert("sbc.test", self.key3, self.inter, self.inter_key, start_days=0)
        self.other_ca = cert("Unrelated CA", ec.generate_private_key(ec.SECP256R1()), ca=True)
        self.other_key = ec.generate_private_key(ec.SECP256R1())
        self.expired = cert("old.test", self.key, self.inter, self.inter_key, days=-1)


def _pub(obj) -> bytes:
    return obj.public_key().public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)


class FakeMediant:
    """Just enough of the API for the module logic: status, ini, files/tls/<i>/*, ini/incremental, save."""

    def __init__(self, ha="Operational"):
        self.ha = ha
        self.contexts = {0: {"name": "default", "cert": "", "key": "", "roots": []}}
        self.sip = {0: ["SIPInterface_0", ""]}
        self.proxies = {0: ["ProxySet_0", ""]}
        self.dirty = False
        self.seen: list[tuple[str, str]] = []
        self.script: list[tuple[str, int, dict]] = []  # (path suffix, status, body) answered once, in order

    def answer(self, method: str, url: str, data: bytes | None, headers: dict) -> Response:
        path = url.split("/api/v1/", 1)[1]
        self.seen.append((method, path))
        for i, (suffix, status, body) in enumerate(self.script):
            if path.endswith(suffix):
                del self.script[i]
                return Response(status, {"Content-Type": "application/json"}, json.dumps(body).encode())
        if path == "status":
            return self._json({"highAvailability": self.ha, "saveNeeded": "true" if self.dirty else "false",
                               "resetNeeded": "false"})
        if path == "alarms/active":
            return Response(204, {}, b"")
        if path == "files/ini":
            lines = ["[ TLSContexts ]", "FORMAT Index = Name, TLSVersion;"]
            lines += [f'TLSContexts {i} = "{c["name"]}", 0;' for i, c in self.contexts.items()]
            lines += ["[ \\TLSContexts ]", "[ SIPInterface ]", "FORMAT Index = InterfaceName, TLSContext;"]
            lines += [f'SIPInterface {i} = "{n}", "{c}";' for i, (n, c) in self.sip.items()]
            lines += ["[ \\SIPInterface ]", "[ ProxySet ]", "FORMAT Index = ProxyName, TLSContextName;"]
            lines += [f'ProxySet {i} = "{n}", "{c}";' for i, (n, c) in self.proxies.items()]
            lines += ["[ \\ProxySet ]"]
            return Response(200, {}, "\n".join(lines).encode())
        if path == "actions/saveConfiguration":
            assert data == b"" and headers.get("Content-Length") == "0"
            self.dirty = False
            return Response(200, {}, b"")
        body = self._file(data, headers) if method == "PUT" else None
        if path == "files/ini/incremental":
            tables = ini.parse_tables(body)
            for row in tables.get("TLSContexts", []):
                self.contexts.setdefault(int(row["Index"]), {"name": "", "cert": "", "key": "", "roots": []})
                self.contexts[int(row["Index"])]["name"] = row["Name"]
            for table, store, col in (("SIPInterface", self.sip, "TLSContext"),
                                      ("ProxySet", self.proxies, "TLSContextName")):
                for row in tables.get(table, []):
                    store[int(row["Index"])][1] = row[col]
            self.dirty = True
            return self._json({"description": "ok"})
        _files, _tls, idx, what = path.split("/", 3)
        ctx = self.contexts.get(int(idx))
        if ctx is None:
            return self._json({"description": "no such context"}, 400)
        if method == "GET":
            if what == "privateKey":
                return self._json({"size": 256 if ctx["key"] else 0, "valid": self._valid(ctx)})
            text = ctx["cert"] if what == "certificate" else "".join(ctx["roots"])
            return Response(200, {}, text.encode()) if text else self._json({"description": "empty"}, 400)
        self.dirty = True
        if what == "privateKey":
            ctx["key"] = body
        elif what == "certificate":
            ctx["cert"] = body
        elif what == "trustedRoot":
            ctx["roots"] = [body]  # one PEM string holding the whole store
        elif what == "trustedRoot/incremental":
            ctx["roots"].append(body)
        return self._json({"description": "ok"})

    @staticmethod
    def _valid(ctx) -> bool:
        if not ctx["key"] or not ctx["cert"]:
            return False
        key = serialization.load_pem_private_key(ctx["key"].encode(), None)
        return _pub(key) == _pub(x509.load_pem_x509_certificate(ctx["cert"].encode()))

    @staticmethod
    def _file(data: bytes, headers: dict) -> str:
        msg = BytesParser(policy=policy.default).parsebytes(
            b"Content-Type: " + headers["Content-Type"].encode() + b"\r\n\r\n" + data)
        parts = {p.get_param("name", header="content-disposition"): p.get_payload(decode=True)
                 for p in msg.iter_parts()}
        return parts["file"].decode()

    @staticmethod
    def _json(obj, status=200) -> Response:
        return Response(status, {"Content-Type": "application/json"}, json.dumps(obj).encode())

    def writes(self) -> list[tuple[str, str]]:
        return [s for s in self.seen if s[0] in ("PUT", "POST")]


class FakeHttp(HttpClient):
    def __init__(self, device: FakeMediant, base: str = "https://sbc.test/api/v1", **kw):
        super().__init__(base, service="AudioCodes REST API", sleep=lambda s: None, **kw)
        self.device = device

    def _once(self, method, url, data, headers):
        self.request_count += 1
        return self.device.answer(method, url, data, headers), None


class FakeModule:
    def __init__(self, params, check_mode=False, diff=False):
        self.params = params
        self.check_mode = check_mode
        self._diff = diff
        self.warnings: list[str] = []

    def warn(self, msg):
        self.warnings.append(msg)
