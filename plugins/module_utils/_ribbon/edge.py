# Copyright (c) 2026, byoc.certificates contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

# Note that this module util is **PRIVATE** to the collection. It can have breaking changes at any time.
"""Ribbon SBC Edge (1000/2000/SWe Lite): the /rest client and the certificate workflow (sbc-apis.md C1-C6).

The session is a cookie from ``POST /rest/login`` that expires after 10 minutes idle (C1): on HTTP 401 the client
logs in again once and repeats the call. Every answer is an XML ``<root><status>`` envelope and application errors
arrive inside HTTP 200 (C2): each answer is parsed and a non-200 ``http_code`` or an ``app_status_entry`` becomes
an error that says so. CA certificates go in before the server certificate (C3: the chain is verified on import),
one PEM per call; the order is checked on the controller before anything is imported.
"""

from __future__ import annotations

import base64
import re
import secrets
import typing as t
from urllib.parse import urlencode

from ansible_collections.byoc.certificates.plugins.module_utils import _gate, _pem
from ansible_collections.byoc.certificates.plugins.module_utils._errors import (
    ApiError,
    AuthenticationFailure,
    ByocError,
    InputError,
)
from ansible_collections.byoc.certificates.plugins.module_utils._http import HttpClient, Response
from ansible_collections.byoc.certificates.plugins.module_utils._ribbon.common import (
    build_pkcs12,
    find_all,
    leaves,
    local,
    parse_xml,
    scrub_secrets,
)

FORM = "application/x-www-form-urlencoded"
SERVER_ID = 1  # sbc-apis.md C3: "Certificate ID 1 is the server certificate, any other ID is a trusted CA"
APP_CODES = {  # sbc-apis.md C2/C3 [CODE]
    "15017": "duplicate certificate (same serial or common name) or unsupported key type",
    "15020": "certificate chain verification failed: import the issuing CA first",
}


def envelope_error(resp: Response) -> str | None:
    try:
        root = parse_xml(resp.body, "SBC Edge")
    except ApiError:
        return None
    return describe_status(root)


def describe_status(root) -> str | None:
    """None when the envelope says success; else a sentence with http_code and the app_status entries."""
    status = next(iter(find_all(root, "status")), None)
    if status is None:
        return "the answer has no <status> element"
    code = (next(iter(find_all(status, "http_code")), None))
    code_text = (code.text or "").strip() if code is not None else ""
    entries = [e.attrib for e in find_all(status, "app_status_entry")]
    if code_text == "200" and not entries:
        return None
    parts = [f"http_code {code_text or '(none)'}"]
    for e in entries:
        c = e.get("code", "?")
        hint = APP_CODES.get(c)
        parts.append(f"app_status_entry code {c}" + (f" ({hint})" if hint else "")
                     + (f" params '{e.get('params')}'" if e.get("params") else ""))
    return ", ".join(parts)


class EdgeClient:
    def __init__(self, api_url: str, username: str, password: str, *, validate_certs: bool = True,
                 ca_path: str | None = None, timeout: float = 30, http: HttpClient | None = None) -> None:
        self.api_url = api_url.rstrip("/")
        self.username, self.password = username, password
        self.http = http or HttpClient(api_url, service="Ribbon SBC Edge REST API", validate_certs=validate_certs,
                                       ca_path=ca_path, timeout=timeout, error_message=envelope_error,
                                       headers={"Accept": "application/xml"})
        self.cookies: dict[str, str] = {}
        self.logins = 0

    # -- session (sbc-apis.md C1) ----------------------------------------------------------------------
    def login(self) -> None:
        try:
            self._login()
        except ByocError as exc:
            raise scrub_secrets(exc, [self.password])

    def _login(self) -> None:
        resp = self.http.request("POST", "rest/login", data=urlencode(
            {"Username": self.username, "Password": self.password}).encode(), headers={"Content-Type": FORM})
        root = parse_xml(resp.body, f"POST {self.http.url('rest/login')}")
        problem = describe_status(root)
        if problem:
            raise AuthenticationFailure(
                f"The Ribbon SBC Edge at {self.api_url} refused the login for user '{self.username}' (HTTP"
                f" {resp.status}, but the body says {problem}). Check username/password and that the user has the"
                " REST access level.", url=self.http.url("rest/login"))
        jar = {}
        for raw in resp.set_cookies or [resp.headers.get("set-cookie", "")]:
            first = (raw or "").split(";", 1)[0]
            if "=" in first:
                k, v = first.split("=", 1)
                jar[k.strip()] = v.strip()
        if not jar:
            raise ApiError(f"The Ribbon SBC Edge at {self.api_url} accepted the login but set no session cookie.")
        self.cookies = jar
        self.logins += 1

    def logout(self) -> None:
        if self.cookies:
            try:
                self.call("POST", "rest/logout", relogin=False)
            except Exception:  # pylint: disable=broad-exception-caught
                pass
            self.cookies = {}

    def _headers(self, extra: dict | None = None) -> dict:
        h = {"Cookie": "; ".join(f"{k}={v}" for k, v in self.cookies.items())}
        if "csrfp_token" in self.cookies:  # sbc-apis.md C1 [CODE]: echo the CSRF cookie as a header
            h["X-CSRF-Token"] = self.cookies["csrfp_token"]
        h.update(extra or {})
        return h

    def call(self, method: str, path: str, form: dict | None = None, *, relogin: bool = True):
        """One request; returns the parsed <root>. Application errors inside HTTP 200 raise ApiError. No message
        carries the password (a device may echo request values in its error text)."""
        try:
            return self._call(method, path, form, relogin=relogin)
        except ByocError as exc:
            raise scrub_secrets(exc, [self.password])

    def _call(self, method: str, path: str, form: dict | None = None, *, relogin: bool = True):
        if not self.cookies:
            self.login()
        data = urlencode(form).encode() if form is not None else None
        extra = {"Content-Type": FORM} if form is not None else None
        where = f"{method} {self.http.url(path)}"
        try:
            resp = self.http.request(method, path, data=data, headers=self._headers(extra))
        except AuthenticationFailure as exc:
            if not relogin:
                raise self._session_refused(method, path, exc) from None
            # C1: no/expired cookie -> HTTP 401 (10 minutes idle): log in again once and repeat the call
            self.cookies = {}
            self.login()
            try:
                resp = self.http.request(method, path, data=data, headers=self._headers(extra))
            except AuthenticationFailure as again:
                raise self._session_refused(method, path, again) from None
        root = parse_xml(resp.body, where)
        if local(root.tag) != "root":
            raise ApiError(f"{where} answered with <{local(root.tag)}>, not the <root> envelope.", url=where)
        problem = describe_status(root)
        if problem:
            code = next((e.text for e in find_all(root, "http_code")), "")
            if relogin and (code or "").strip() == "401":
                self.cookies = {}
                return self._call(method, path, form, relogin=False)
            # C2: HTTP 200 with the error inside the body
            raise ApiError(f"The Ribbon SBC Edge rejected {where}: HTTP {resp.status}, but the body says {problem}.",
                           url=self.http.url(path), response=problem)
        return root

    def _session_refused(self, method: str, path: str, exc: AuthenticationFailure) -> AuthenticationFailure:
        """C1: the session is a cookie, not an API key: say that the fresh session was refused, and where."""
        url = self.http.url(path)
        return AuthenticationFailure(
            f"The Ribbon SBC Edge at {self.api_url} refused {method} {url} (HTTP {exc.details.get('status')}) with the"
            f" session cookie of a fresh login as user '{self.username}'. The user needs the REST access level (and"
            " the permission for this resource); check it in the WebUI.", status=exc.details.get("status"), url=url)

    # -- resources ---------------------------------------------------------------------------------------------
    def certificate_ids(self) -> list[int]:
        root = self.call("GET", "rest/certificate")
        ids = []
        for el in root.iter():
            m = re.search(r"/certificate/(\d+)$", el.attrib.get("href", ""))
            if m and local(el.tag) != "certificate_list":
                ids.append(int(m.group(1)))
        return sorted(set(ids))

    def certificate(self, cid: int) -> dict:
        root = self.call("GET", f"rest/certificate/{cid}")
        el = next(iter(find_all(root, "certificate")), None)
        return leaves(el) if el is not None else {}

    def certificates(self) -> dict[int, dict]:
        out = {}
        for cid in self.certificate_ids():
            info = self.certificate(cid)
            info["fingerprint"] = fingerprint_of(info)
            out[cid] = info
        return out

    def import_pem(self, cid: int, pem: str, file_name: str) -> None:
        # sbc-apis.md C3: CertFileOperation 1 = copy and paste; one PEM block per call
        self.call("POST", f"rest/certificate/{cid}?action=import",
                  {"CertFileOperation": "1", "CertFileContent": pem, "CertFileName": file_name[:80]})

    def import_pkcs12(self, data: bytes, password: str, file_name: str) -> None:
        # sbc-apis.md C3: REST parameter names for a PKCS#12 import are UNCONFIRMED (modelled: base64 content,
        # CertFileName *.p12, PKCS12Password); server certificate only.
        self.call("POST", f"rest/certificate/{SERVER_ID}?action=import",
                  {"CertFileOperation": "2", "CertFileContent": base64.b64encode(data).decode(),
                   "CertFileName": file_name[:80], "PKCS12Password": password})

    def delete_certificate(self, cid: int) -> None:
        # sbc-apis.md C2: DELETE removes a resource (200 OK or 500) [CODE]; only CA slots are ever deleted here
        if cid == SERVER_ID:
            raise ApiError("refusing to delete the server certificate (slot 1)")
        self.call("DELETE", f"rest/certificate/{cid}")

    def generate_csr(self, common_name: str, sans: list[str], key_bits: int) -> str:
        # sbc-apis.md C3 [CODE]: POST /rest/csr?action=generate -> <csr><csrContent>PEM</csrContent>
        root = self.call("POST", "rest/csr?action=generate",
                         {"commonName": common_name, "keyBitLength": str(key_bits), "sanDNS": ",".join(sans)})
        el = next(iter(find_all(root, "csrContent")), None)
        if el is None or "BEGIN CERTIFICATE REQUEST" not in (el.text or ""):
            raise ApiError(f"The Ribbon SBC Edge at {self.api_url} generated no CSR (no <csrContent> in the answer).")
        return el.text.strip() + "\n"

    def system(self) -> dict:
        root = self.call("GET", "rest/system")
        el = next(iter(find_all(root, "system")), None)
        return leaves(el) if el is not None else {}


def fingerprint_of(info: dict) -> str | None:
    """SHA-256 of the DER, from CertFileContent when the device returns it (sbc-apis.md C3 [INFER])."""
    content = info.get("CertFileContent") or ""
    if "BEGIN CERTIFICATE" not in content:
        return None
    try:
        return _pem.fingerprint(_pem.load_certificates(content, "CertFileContent")[0])
    except InputError:
        return None


def _signed_by(cert, issuer) -> bool:
    if cert.issuer != issuer.subject:
        return False
    try:
        cert.verify_directly_issued_by(issuer)
        return True
    except Exception:  # pylint: disable=broad-exception-caught
        return False


def plan_cas(leaf, wanted: list, installed: list) -> list:
    """The CA certificates to import, in an order the device accepts (issuer before subject), after checking
    that the leaf will chain to a self-signed CA. Raises InputError(ca_certificates) otherwise."""
    have = list(installed)
    todo = [c for c in wanted if _pem.fingerprint(c) not in {_pem.fingerprint(h) for h in have}]
    ordered = []
    progress = True
    while todo and progress:
        progress = False
        for c in list(todo):
            if _pem.is_self_signed(c) or any(_signed_by(c, h) for h in have):
                ordered.append(c)
                have.append(c)
                todo.remove(c)
                progress = True
    if todo:
        names = ", ".join(c.subject.rfc4514_string() for c in todo)
        raise InputError("ca_certificates", f"cannot place {names}: its issuer is neither installed on the SBC nor"
                         " given; the device would refuse it with a chain verification error (15020).")
    cur, hops = leaf, 0
    while hops < 10:
        hops += 1
        issuer = next((h for h in have if _signed_by(cur, h)), None)
        if issuer is None:
            raise InputError("ca_certificates", f"the issuer '{cur.issuer.rfc4514_string()}' of"
                             f" '{cur.subject.rfc4514_string()}' is neither installed on the SBC nor given in"
                             " ca_certificates (or the certificate chain). Importing the server certificate first"
                             " would fail with chain verification error 15020; add the issuing CA. Nothing was"
                             " imported.")
        if _pem.is_self_signed(issuer):
            return ordered
        cur = issuer
    raise InputError("ca_certificates", "the CA chain is longer than 10 certificates or loops")


def _login(p: dict) -> EdgeClient:
    return EdgeClient(p["api_url"], p["username"], p["password"], validate_certs=p["validate_certs"],
                      ca_path=p.get("ca_path"), timeout=p["timeout"])


def _installed_certs(certs: dict[int, dict]) -> list:
    out = []
    for cid, info in certs.items():
        if cid == SERVER_ID:
            continue
        content = info.get("CertFileContent") or ""
        if "BEGIN CERTIFICATE" in content:
            try:
                out.append(_pem.load_certificates(content, "CertFileContent")[0])
            except InputError:
                pass
    return out


def run_csr(p: dict, check_mode: bool) -> dict:
    """key_custody=device, step 1: the SBC makes the key pair and the CSR; only the CSR leaves the box."""
    if p["key_custody"] != "device":
        raise InputError("state", "state=csr needs key_custody=device (the SBC generates the key)")
    csr_opts = p.get("csr") or {}
    if not csr_opts.get("common_name"):
        raise InputError("csr", "csr.common_name is required with state=csr")
    bits = csr_opts.get("key_bits") or 2048
    if bits not in (1024, 2048):
        raise InputError("csr", f"csr.key_bits must be 1024 or 2048 (sbc-apis.md C3), not {bits}")
    if p.get("private_key"):
        raise InputError("private_key", "must not be given with key_custody=device: the key stays on the SBC")
    if check_mode:
        return {"changed": True, "platform": "edge", "csr": None,
                "msg": "check mode: a new key pair and CSR would be generated on the SBC"}
    client = _login(p)
    try:
        csr = client.generate_csr(csr_opts["common_name"], csr_opts.get("subject_alt_names") or [], bits)
    finally:
        client.logout()
    return {"changed": True, "platform": "edge", "csr": csr}


PREVIOUS_RE = re.compile(r"^byoc-prev-([0-9a-f]{64})\.(?:p12|pem)$")


def server_file_name(want_fp: str, previous_fp: str | None, ext: str) -> str:
    """The CertFileName of a server certificate import. It records the fingerprint of the certificate it replaces,
    so that every later run can still say what a rollback would go back to: the device keeps one server certificate
    (slot 1, sbc-apis.md C3) and no history, but returns the import fields with the resource (C3 "(+ the import
    fields)" [INFER]). ``byoc-prev-<64 hex>.p12`` is 78 characters, within C3's 80."""
    if previous_fp and re.fullmatch(r"[0-9a-f]{64}", previous_fp):
        return f"byoc-prev-{previous_fp}.{ext}"
    return f"byoc-server-{want_fp[:16]}.{ext}"


def recorded_previous(info: dict | None) -> str | None:
    """The fingerprint that ``server_file_name`` recorded in slot 1's CertFileName, if the device returns it."""
    m = PREVIOUS_RE.match((info or {}).get("CertFileName") or "")
    return m.group(1) if m else None


def desired_material(p: dict) -> dict:
    """Check everything the task gives through the shared gate, before the device is contacted (issue 10: the same
    verdict as every other module for the same input)."""
    if not p.get("certificate"):
        raise InputError("certificate", "required with state=present (for key_custody=device, run state=csr first"
                                        " and pass the signed certificate here)")
    if p["key_custody"] == "external":
        if not p.get("private_key"):
            raise InputError("private_key", "required with key_custody=external")
    elif p.get("private_key"):
        raise InputError("private_key", "must not be given with key_custody=device: the key stays on the SBC")
    allow = bool(p.get("allow_expired_ca"))
    material = _gate.server_material(
        certificate=p["certificate"], certificate_field="certificate",
        private_key=p.get("private_key") if p["key_custody"] == "external" else None, private_key_field="private_key",
        passphrase=p.get("private_key_passphrase") or None, allow_expired_ca=allow)
    warnings = list(material.warnings)
    wanted_cas, seen = [], set()
    given = []
    for i, pem in enumerate(p.get("ca_certificates") or []):
        certs, w = _gate.ca_certificates(pem, f"ca_certificates[{i}]", allow_expired=allow)
        warnings += w
        given += certs
    # the intermediates given with the leaf (and a root after them) are imported as CAs too
    for c in given + material.intermediates + material.anchors:
        if _pem.fingerprint(c) not in seen:
            seen.add(_pem.fingerprint(c))
            wanted_cas.append(c)
    return {"leaf": material.leaf, "chain": material.intermediates, "key": material.key, "cas": wanted_cas,
            "fingerprint": _pem.fingerprint(material.leaf), "warnings": warnings}


def plan_present(want: dict, current: dict[int, dict], key_custody: str) -> dict:
    """Pure: the CA imports in an order the device accepts, their slot ids, whether slot 1 changes, the result's
    before/after, and ``previous`` (what the server certificate was before, as recorded on the device)."""
    leaf, want_fp = want["leaf"], want["fingerprint"]
    to_import = plan_cas(leaf, want["cas"], _installed_certs(current))  # raises before anything is imported
    server_fp = (current.get(SERVER_ID) or {}).get("fingerprint")
    if server_fp is None and current.get(SERVER_ID):
        # no content returned: compare issuer + serial (unique per CA, RFC 5280 4.1.2.2)
        info = current[SERVER_ID]
        same = (info.get("CertSerialNumber", "").lstrip("0").upper() == format(leaf.serial_number, "X")
                and info.get("CertIssuerName") == leaf.issuer.rfc4514_string())
        server_fp = want_fp if same else None
    replace_server = server_fp != want_fp
    used = set(current)
    ca_ids = []
    next_id = 2
    for c in to_import:
        while next_id in used:
            next_id += 1
        ca_ids.append((next_id, c))
        used.add(next_id)
    previous = server_fp if replace_server else recorded_previous(current.get(SERVER_ID))
    ext = "p12" if key_custody == "external" else "pem"
    before = {"server_certificate": server_fp,
              "ca_certificates": sorted(i.get("fingerprint") or "" for cid, i in current.items() if cid != SERVER_ID)}
    after = {"server_certificate": want_fp,
             "ca_certificates": sorted(before["ca_certificates"] + [_pem.fingerprint(c) for c in to_import])}
    return {"ca_ids": ca_ids, "replace_server": replace_server, "changed": bool(to_import) or replace_server,
            "previous": previous, "server_file_name": server_file_name(want_fp, server_fp, ext),
            "before": before, "after": after}


def _undo_imports(exc: Exception, imported: list, client: EdgeClient) -> t.NoReturn:
    """A later import failed: remove the CA slots this run filled (C2: DELETE removes a resource [CODE]), or say
    exactly which slots are left."""
    done, left = [], []
    for cid, c in reversed(imported):
        what = f"CA slot {cid} ({c.subject.rfc4514_string()})"
        try:
            client.delete_certificate(cid)
            done.append(what)
        except ByocError as err:
            left.append(f"{what}: delete failed: {err.msg}")
    note = ""
    if left:
        note = f" The CA certificates this run imported could NOT all be removed; left: {'; '.join(left)}."
    elif done:
        note = f" The CA certificates this run imported were removed again: {'; '.join(done)}."
    if isinstance(exc, ByocError):
        exc.msg += note
        exc.args = (exc.msg,)
        exc.details.update({"cleaned_up": done, "left_behind": left})
        raise exc
    raise ApiError(f"Unexpected {type(exc).__name__} while importing certificates.{note}", cleaned_up=done,
                   left_behind=left) from None


def apply_present(plan: dict, want: dict, client: EdgeClient, p: dict) -> None:
    """CA certificates first, then slot 1; when an import fails before slot 1 was replaced, the CA slots this run
    filled are emptied again."""
    imported: list = []
    try:
        for cid, c in plan["ca_ids"]:  # CA first (sbc-apis.md C3), one PEM per call
            client.import_pem(cid, _pem.to_pem(c), f"ca-{_pem.fingerprint(c)[:12]}.pem")
            imported.append((cid, c))
        if plan["replace_server"]:
            file_name = plan["server_file_name"]
            if p["key_custody"] == "external":
                password = secrets.token_urlsafe(24)  # transport only; never returned
                client.import_pkcs12(build_pkcs12(f"byoc-{want['fingerprint'][:12]}", want["key"], want["leaf"],
                                                  want["chain"], password), password, file_name)
            else:
                client.import_pem(SERVER_ID, _pem.to_pem(want["leaf"]), file_name)
    except Exception as exc:  # pylint: disable=broad-exception-caught
        _undo_imports(exc, imported, client)
    if plan["replace_server"]:
        got = client.certificate(SERVER_ID)
        got_fp = fingerprint_of(got)
        if got_fp is not None and got_fp != want["fingerprint"]:
            raise ApiError(f"After the import the Ribbon SBC Edge at {p['api_url']} reports certificate 1 with"
                           f" fingerprint {got_fp}, not {want['fingerprint']}.")


def run_present(p: dict, check_mode: bool, want_diff: bool) -> dict:
    want = desired_material(p)
    client = _login(p)
    try:
        plan = plan_present(want, client.certificates(), p["key_custody"])
        if plan["changed"] and not check_mode:
            apply_present(plan, want, client, p)
        result = {"changed": plan["changed"], "platform": "edge", "fingerprint": want["fingerprint"],
                  "ca_imported": [{"id": cid, "fingerprint": _pem.fingerprint(c), "subject": c.subject.rfc4514_string()}
                                  for cid, c in plan["ca_ids"]],
                  "server_replaced": plan["replace_server"], "certificate": _pem.details(want["leaf"]),
                  "previous": plan["previous"]}
        if want["warnings"]:
            result["warnings"] = want["warnings"]
        if want_diff:
            result["diff"] = {"before": plan["before"], "after": plan["after"]}
        return result
    finally:
        client.logout()


def run_info(p: dict) -> dict:
    client = _login(p)
    try:
        system = client.system()
        certs = client.certificates()
    finally:
        client.logout()
    rows = []
    for cid, info in sorted(certs.items()):
        rows.append({"id": cid, "role": "server" if cid == SERVER_ID else "ca", "fingerprint": info.get("fingerprint"),
                     "common_name": info.get("CertCommonName"), "subject": info.get("CertSubjectName"),
                     "issuer": info.get("CertIssuerName"), "serial_number": info.get("CertSerialNumber"),
                     "not_before_epoch": _int(info.get("CertStartDateEpoch")),
                     "not_after_epoch": _int(info.get("CertEndDateEpoch"))})
    bound = next((r for r in rows if r["id"] == SERVER_ID), None)
    return {"changed": False, "platform": "edge", "certificates": rows, "bound": bound,
            "system": {k: v for k, v in system.items() if k.startswith("rt_")},
            # sbc-apis.md C6: no HA configuration sync on SBC Edge; each unit is its own host
            "ha": {"pair": False, "in_sync": True, "nodes": [], "problems": [], "mode": "standalone"}}


def _int(v):
    try:
        return int(v)
    except (TypeError, ValueError):
        return None
