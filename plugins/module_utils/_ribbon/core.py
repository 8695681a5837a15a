# Copyright (c) 2026, byoc.certificates contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

# Note that this module util is **PRIVATE** to the collection. It can have breaking changes at any time.
"""Ribbon SBC Core: the ConfD REST client and the certificate workflow (sbc-apis.md B1-B6).

Deployment order (B2, B4, B5, B6): the PKCS#12 goes to /opt/sonus/external on EVERY node over SFTP first (files do
not replicate), then the CA certificates become ``remote`` PKI objects, then the leaf becomes a ``local`` PKI object
under a NEW versioned name, then ``tlsProfile.serverCertName`` is re-pointed. The previous object is kept for
rollback (re-pointing the profile back), older ones beyond ``retain`` are pruned.

The workflow is split into read (``read_device``, ``read_files``), plan (``plan_present``, ``rollback_target``: pure,
no I/O) and apply (``apply_present``). Everything the device will see (object and file names) is checked in the plan,
before the first write; a write that fails half way undoes what this run wrote, or says exactly what is left where.
"""

from __future__ import annotations

import datetime
import re
import typing as t
import xml.etree.ElementTree as ET
from urllib.parse import quote

from ansible_collections.byoc.certificates.plugins.module_utils import _gate, _pem
from ansible_collections.byoc.certificates.plugins.module_utils._errors import (
    ApiError,
    AuthenticationFailure,
    ByocError,
    InputError,
    NotFound,
)
from ansible_collections.byoc.certificates.plugins.module_utils._http import HttpClient, Response
from ansible_collections.byoc.certificates.plugins.module_utils._ribbon.common import (
    SftpNode,
    build_pkcs12,
    check_device_name,
    find_all,
    leaves,
    local,
    parse_xml,
    pkcs12_certificate,
    scrub_secrets,
)

YANG = "application/vnd.yang.data+xml"  # sbc-apis.md B1
CERT_PATH = "api/config/system/security/pki/certificate"
PROFILE_PATH = "api/config/profiles/security/tlsProfile"
SYNC_OK = "syncCompleted"  # sbc-apis.md B1
UNREADABLE = "unreadable"  # a file is on the node but does not open (other passphrase, not PKCS#12/PEM)
PREFIX_MAX = 40  # the versioned names add 18 characters (-YYYYMMDD-xxxxxxxx); 40 + 18 stays within 63


def confd_error(resp: Response) -> str | None:
    """The <error-message> (and tag) of a ConfD <errors> body (sbc-apis.md B1)."""
    try:
        root = parse_xml(resp.body, "ConfD")
    except ApiError:
        return None
    msgs = []
    for err in find_all(root, "error"):
        f = leaves(err)
        msgs.append(" ".join(x for x in (f.get("error-message"), f"[{f['error-tag']}]" if f.get("error-tag") else "")
                             if x))
    return "; ".join(m for m in msgs if m) or None


def to_xml(tag: str, fields: dict[str, t.Any]) -> bytes:
    el = ET.Element(tag)
    for k, v in fields.items():
        if v is not None:
            ET.SubElement(el, k).text = str(v)
    return ET.tostring(el)


class CoreClient:
    def __init__(self, api_url: str, username: str, password: str, *, validate_certs: bool = True,
                 ca_path: str | None = None, timeout: float = 30, http: HttpClient | None = None,
                 secrets: t.Iterable[str] = ()) -> None:
        self.api_url = api_url.rstrip("/")
        self.username = username
        self.secrets = [password, *secrets]
        self.http = http or HttpClient(
            api_url, service="Ribbon SBC Core REST API", validate_certs=validate_certs, ca_path=ca_path,
            timeout=timeout, url_username=username, url_password=password, error_message=confd_error,
            headers={"Accept": YANG})

    def request(self, method: str, path: str, **kw) -> Response | None:
        """One ConfD request. Basic auth is sent on every request (sbc-apis.md B1): a 401 means the user name and
        password were refused, a 403 that the user may not do this; no message carries a secret of the task."""
        try:
            return self.http.request(method, path, **kw)
        except AuthenticationFailure as exc:
            url = exc.details.get("url") or self.http.url(path)
            if exc.details.get("status") == 403:
                new = AuthenticationFailure(
                    f"The Ribbon SBC Core REST API at {self.api_url} accepted user '{self.username}' but refused"
                    f" {method} {url} (HTTP 403): the user lacks the permission for it. Use an account with"
                    " administrator access to the PKI and TLS profile configuration.", status=403, url=url,
                    response=exc.details.get("response"))
            else:
                new = AuthenticationFailure(
                    f"The Ribbon SBC Core REST API refused the user name and password of user '{self.username}' (HTTP"
                    f" {exc.details.get('status', 401)}, HTTP Basic) on {method} {url}. Check username and password"
                    " (or RIBBON_CORE_USERNAME / RIBBON_CORE_PASSWORD) and that the account is not locked.",
                    status=exc.details.get("status"), url=url, response=exc.details.get("response"))
            raise scrub_secrets(new, self.secrets) from None
        except ByocError as exc:
            raise scrub_secrets(exc, self.secrets)

    def _get(self, path: str, what: str) -> ET.Element | None:
        resp = self.request("GET", path, missing_ok=True, ok=(200, 204))
        if resp is None:
            return None
        if resp.status == 204 or not resp.body.strip():
            return ET.Element("collection")  # sbc-apis.md B1: operational GETs sometimes answer 204
        return parse_xml(resp.body, f"{what} ({self.http.url(path)})")

    def certificates(self) -> list[dict]:
        root = self._get(CERT_PATH, "PKI certificate list")
        return [leaves(e) for e in find_all(root, "certificate")] if root is not None else []

    def profile(self, name: str) -> dict | None:
        root = self._get(f"{PROFILE_PATH}/{quote(name, safe='')}", f"tlsProfile {name}")
        if root is None:
            return None
        el = root if local(root.tag) == "tlsProfile" else next(iter(find_all(root, "tlsProfile")), None)
        return leaves(el) if el is not None else None

    def profiles(self) -> list[dict]:
        root = self._get(PROFILE_PATH, "tlsProfile list")
        return [leaves(e) for e in find_all(root, "tlsProfile")] if root is not None else []

    def put_certificate(self, name: str, file_name: str, cert_type: str, passphrase: str | None = None) -> None:
        # sbc-apis.md B4 (leaf names from B2): name, fileName, passPhrase, type, state
        body = to_xml("certificate", {"name": name, "fileName": file_name, "passPhrase": passphrase,
                                      "type": cert_type, "state": "enabled"})
        self.request("PUT", f"{CERT_PATH}/{quote(name, safe='')}", data=body, headers={"Content-Type": YANG})

    def delete_certificate(self, name: str) -> None:
        self.request("DELETE", f"{CERT_PATH}/{quote(name, safe='')}", missing_ok=True)

    def point_profile(self, name: str, server: str | None, client: str | None) -> None:
        # sbc-apis.md B4: PATCH tlsProfile with serverCertName / clientCertName
        body = to_xml("tlsProfile", {"name": name, "serverCertName": server, "clientCertName": client})
        self.request("PATCH", f"{PROFILE_PATH}/{quote(name, safe='')}", data=body, headers={"Content-Type": YANG})

    def server_status(self) -> list[dict]:
        root = self._get("api/operational/system/serverStatus", "serverStatus")
        return [leaves(e) for e in find_all(root, "serverStatus")] if root is not None else []

    def sync_status(self) -> list[dict]:
        root = self._get("api/operational/system/syncStatus", "syncStatus")
        return [leaves(e) for e in find_all(root, "syncStatus")] if root is not None else []


def ha_state(status: list[dict], sync: list[dict]) -> dict:
    """Summarise serverStatus / syncStatus (sbc-apis.md B1, B5) and say what, if anything, is wrong."""
    nodes = [{"name": s.get("name"), "role": s.get("mgmtRedundancyRole"), "sync_status": s.get("syncStatus")}
             for s in status]
    modules = [{"module": s.get("syncModule"), "status": s.get("status")} for s in sync]
    problems = []
    roles = [n["role"] for n in nodes]
    if len(nodes) > 1:
        if roles.count("active") != 1:
            problems.append(f"expected exactly one active node, found roles {roles}")
        if "standby" not in roles:
            problems.append(f"no standby node (roles {roles}): the pair is not protected")
    bad = [n for n in nodes if n["sync_status"] and n["sync_status"] != SYNC_OK]
    if bad:
        problems.append("serverStatus syncStatus is " + ", ".join(f"{n['sync_status']} on {n['name']}" for n in bad))
    bad_mod = [m for m in modules if m["status"] != SYNC_OK]
    if bad_mod:
        problems.append("syncStatus " + ", ".join(f"{m['module']}={m['status']}" for m in bad_mod))
    return {"nodes": nodes, "sync_modules": modules, "pair": len(nodes) > 1, "in_sync": not problems,
            "problems": problems, "active": next((n["name"] for n in nodes if n["role"] == "active"), None)}


def object_name(prefix: str, cert) -> str:
    """Versioned name (sbc-apis.md B6: install under a NEW name, never overwrite the in-use object)."""
    return f"{prefix}-{cert.not_valid_after_utc:%Y%m%d}-{_pem.fingerprint(cert)[:8]}"


def ca_object_name(prefix: str, cert) -> str:
    return f"{prefix}-ca-{_pem.fingerprint(cert)[:12]}"


def is_versioned(name: str, prefix: str) -> bool:
    """A name this module made with ``object_name`` for ``prefix`` (not merely one that starts with it)."""
    return re.fullmatch(re.escape(prefix) + r"-\d{8}-[0-9a-f]{8}", name or "") is not None


def prefixed_local(objects: list[dict], prefix: str) -> list[dict]:
    """Our versioned local objects, newest first (the name sorts by notAfter, then fingerprint)."""
    ours = [o for o in objects if o.get("type", "local") == "local" and is_versioned(o.get("name", ""), prefix)]
    return sorted(ours, key=lambda o: o["name"][len(prefix) + 1:], reverse=True)


def bound_names(profiles: list[dict]) -> set[str]:
    return {p.get(k) for p in profiles for k in ("serverCertName", "clientCertName") if p.get(k)}


def rollback_target(current: str | None, objects: dict[str, dict], prefix: str) -> str | None:
    """What ``state=rollback`` without ``rollback_to`` binds, derived from the device alone (pure).

    The versioned names sort by notAfter (sbc-apis.md B6: each renewal is a new object under a new name), so the
    object in use before the newest one is the next older versioned object:

    - the bound object is our newest: the next older of ours; when there is none, the only other enabled local
      object (the certificate our first install replaced); None when there is no such single object;
    - the bound object is ours but a newer one exists: the profile was rolled back already, so a rollback changes
      nothing (the target is the bound object; use ``rollback_to`` to go further back);
    - the bound object is not ours: nothing of ours to roll back from, so the target is the bound object.

    The same function gives ``previous`` on every run, so a caller always learns what a rollback would bind.
    """
    if not current:
        return None
    mine = [o["name"] for o in prefixed_local(list(objects.values()), prefix)]
    if current not in mine:
        return current
    if mine.index(current) > 0:
        return current
    if len(mine) > 1:
        return mine[1]
    others = [n for n, o in objects.items() if n != current and n not in mine and o.get("type", "local") == "local"
              and o.get("state", "enabled") == "enabled"]
    return others[0] if len(others) == 1 else None


class Nodes:
    """SFTP sessions to every node, opened lazily, closed at the end."""

    def __init__(self, p: dict) -> None:
        self.p = p
        self.sessions: dict[str, SftpNode] = {}

    def each(self) -> list[SftpNode]:
        out = []
        for node in self.p["nodes"]:
            name = node.get("name") or node["host"]
            if name not in self.sessions:
                self.sessions[name] = SftpNode(
                    node, username=self.p["sftp_username"], password=self.p.get("sftp_password"),
                    directory=self.p["sftp_directory"], key_filename=self.p.get("sftp_private_key"),
                    known_hosts=self.p.get("sftp_known_hosts"), host_key_checking=self.p["sftp_host_key_checking"],
                    timeout=self.p["timeout"])
            out.append(self.sessions[name])
        return out

    def close(self) -> None:
        for s in self.sessions.values():
            s.close()


def validate_common(p: dict) -> None:
    if not p.get("nodes") and p["state"] == "present":
        raise InputError("nodes", "platform core needs every node of the pair (host, port, host_key) for the SFTP"
                                  " upload (sbc-apis.md: files are not replicated between nodes)")
    names = set()
    for i, node in enumerate(p.get("nodes") or []):
        if not node.get("host"):
            raise InputError("nodes", f"entry {i + 1} has no host")
        port = 22 if node.get("port") is None else node["port"]
        if not 1 <= int(port) <= 65535:
            raise InputError("nodes", f"entry {i + 1} ({node['host']}): port {port} is out of range")
        name = node.get("name") or node["host"]
        if name in names:
            raise InputError("nodes", f"node {name} is listed twice")
        names.add(name)
    if not p.get("sftp_username") and p.get("nodes"):
        raise InputError("sftp_username", "required for the SFTP upload to the nodes (or set RIBBON_SFTP_USERNAME)")
    check_device_name("name_prefix", p["name_prefix"], "the name prefix", max_len=PREFIX_MAX)
    if not 1 <= len(p["tls_profile"] or "") <= 23:
        raise InputError("tls_profile", "a tlsProfile name has 1-23 characters (sbc-apis.md B3)")
    check_device_name("tls_profile", p["tls_profile"], "the tlsProfile name", max_len=23)
    directory = p.get("sftp_directory") or "/opt/sonus/external"
    parts = directory.split("/")
    if not directory.startswith("/") or ".." in parts or not directory.isascii() or any(
            not c.isprintable() or c.isspace() for c in directory):
        raise InputError("sftp_directory", "must be an absolute ASCII path without '..' or spaces, normally"
                                           " /opt/sonus/external (sbc-apis.md B2)")
    if p.get("retain") is not None and p["retain"] < 0:
        raise InputError("retain", "must be 0 or more")
    if p["state"] == "pruned":
        if not p.get("nodes"):
            raise InputError("nodes", "state=pruned removes each pruned object's file from every node (sbc-apis.md B2:"
                                      " files are not replicated between nodes): list every node")
        if p.get("grace_period") is None or p["grace_period"] < 0:
            raise InputError("grace_period", "must be 0 or more days")
    if p.get("rollback_to") is not None and (not p["rollback_to"].strip() or not p["rollback_to"].isprintable()):
        # an existing object is named (the device accepted its name), so only an empty or unprintable one is refused
        raise InputError("rollback_to", "give the name of an existing PKI certificate object")


def desired_material(p: dict) -> dict:
    """Check everything the task gives through the shared gate, before any device is touched.

    The same bad input gets the same refusal as from every other module (issue 10): an expired or not yet valid
    leaf, a CA where the leaf belongs, a second leaf, key material in a certificate option, a leaf in
    ``ca_certificates`` (it would become a ``remote`` trust anchor), an expired CA unless ``allow_expired_ca``.
    """
    if not p.get("certificate"):
        raise InputError("certificate", "required with state=present")
    if not p.get("private_key"):
        raise InputError("private_key", "required on platform core (the PKCS#12 holds the key and the certificate)")
    allow = bool(p.get("allow_expired_ca"))
    material = _gate.server_material(certificate=p["certificate"], certificate_field="certificate",
                                     private_key=p["private_key"], private_key_field="private_key",
                                     passphrase=p.get("private_key_passphrase") or None, allow_expired_ca=allow)
    if not p.get("pkcs12_passphrase"):
        raise InputError("pkcs12_passphrase", "required on platform core: the PKCS#12 file is protected with it")
    leaf = material.leaf
    warnings = list(material.warnings)
    cas = []
    seen = {_pem.fingerprint(leaf)}
    given = []
    for i, pem in enumerate(p.get("ca_certificates") or []):
        certs, w = _gate.ca_certificates(pem, f"ca_certificates[{i}]", allow_expired=allow)
        warnings += w
        given += certs
    # chain members are installed as remote objects too (sbc-apis.md B2: "chain members"), then the trust anchors
    for c in given + material.intermediates + material.anchors:
        if _pem.fingerprint(c) not in seen:
            seen.add(_pem.fingerprint(c))
            cas.append(c)
    name = object_name(p["name_prefix"], leaf)
    return {"leaf": leaf, "chain": material.intermediates, "key": material.key, "cas": cas,
            "fingerprint": _pem.fingerprint(leaf), "name": name, "warnings": warnings}


def node_fingerprints(nodes: list[SftpNode], file_name: str, passphrase: str | None, remote: bool = False) -> dict:
    """Fingerprint of the certificate in ``file_name`` on every node: None when the file is missing, ``UNREADABLE``
    when it is there but does not open (another passphrase, not a certificate)."""
    out: dict[str, str | None] = {}
    for n in nodes:
        data = n.get(file_name)
        if data is None:
            out[n.name] = None
            continue
        if remote:
            try:
                certs = _pem.load_certificates(data.decode("ascii", "replace"), file_name)
                out[n.name] = _pem.fingerprint(certs[0])
            except InputError:
                out[n.name] = UNREADABLE
        else:
            cert = pkcs12_certificate(data, passphrase)
            out[n.name] = _pem.fingerprint(cert) if cert is not None else UNREADABLE
    return out


def gate_ha(client: CoreClient, p: dict) -> dict:
    ha = ha_state(client.server_status(), client.sync_status())
    if p["require_ha_sync"] and not ha["in_sync"]:
        raise ApiError(
            f"Ribbon SBC Core at {p['api_url']} is not in a state to change safely: {'; '.join(ha['problems'])}."
            " Nothing was changed. Wait for syncStatus syncCompleted on both nodes (or set require_ha_sync=false"
            " for a standalone node).", ha=ha)
    return ha


def client_for(p: dict) -> CoreClient:
    return CoreClient(p["api_url"], p["username"], p["password"], validate_certs=p["validate_certs"],
                      ca_path=p.get("ca_path"), timeout=p["timeout"],
                      secrets=[p.get(k) for k in ("pkcs12_passphrase", "sftp_password", "private_key_passphrase")
                               if p.get(k)])


# ------------------------------------------------------------------------------------------------------- read
def read_device(client: CoreClient, p: dict) -> dict:
    """HA gate, the TLS profile, every PKI object and every profile (for in-use checks)."""
    ha = gate_ha(client, p)
    profile = client.profile(p["tls_profile"])
    if profile is None:
        raise NotFound(f"tlsProfile {p['tls_profile']} does not exist on {p['api_url']}; check tls_profile.",
                       field="tls_profile")
    objects = {o["name"]: o for o in client.certificates() if o.get("name")}
    return {"ha": ha, "profile": profile, "objects": objects, "profiles": client.profiles()}


def read_files(sessions: list[SftpNode], want: dict, p: dict) -> dict:
    """What each node holds under the file names of the plan (fingerprints, see ``node_fingerprints``)."""
    prefix = p["name_prefix"]
    out = {"leaf": node_fingerprints(sessions, f"{want['name']}.p12", p["pkcs12_passphrase"]), "cas": {}}
    for ca in want["cas"]:
        out["cas"][ca_object_name(prefix, ca)] = node_fingerprints(
            sessions, f"{ca_object_name(prefix, ca)}.pem", None, remote=True)
    return out


# ------------------------------------------------------------------------------------------------------- plan
def plan_present(p: dict, want: dict, device: dict, files: dict) -> dict:
    """Pure: what to upload where, which objects to install, whether to re-point, and the result's before/after.

    Every object and file name the REST API and SFTP will see is checked here, before the first write."""
    prefix, name = p["name_prefix"], want["name"]
    file_name = f"{name}.p12"
    check_device_name("name_prefix", name, "the PKI object name")
    check_device_name("name_prefix", file_name, "the PKCS#12 file name")
    objects, profile = device["objects"], device["profile"]
    bound = bound_names(device["profiles"])
    ca_plan = []
    for ca in want["cas"]:
        ca_name = ca_object_name(prefix, ca)
        ca_file = f"{ca_name}.pem"
        check_device_name("name_prefix", ca_name, "the CA object name")
        check_device_name("name_prefix", ca_file, "the CA file name")
        fps = files["cas"].get(ca_name, {})
        ca_plan.append({"cert": ca, "name": ca_name, "file": ca_file,
                        "upload": [n for n, f in fps.items() if f != _pem.fingerprint(ca)],
                        "install": ca_name not in objects})
    on_nodes = files["leaf"]
    upload = [n for n, f in on_nodes.items() if f != want["fingerprint"]]
    obj = objects.get(name)
    install = obj is None or obj.get("fileName") != file_name or obj.get("state", "enabled") != "enabled"
    unreadable = [n for n, f in on_nodes.items() if f == UNREADABLE]
    if obj is not None and unreadable:
        if name in bound:
            raise InputError("pkcs12_passphrase", f"{file_name} on node(s) {', '.join(unreadable)} does not open with"
                             f" pkcs12_passphrase, and PKI object {name}, which uses it, is in use. Replacing the file"
                             " would break that object at the next switchover; nothing was changed. Give the"
                             " passphrase the object was installed with.")
        install = True  # not in use: re-install it with the passphrase of the new file
    if install and obj is not None and name in bound:
        raise ApiError(f"PKI object {name} exists with other settings and is in use; refusing to overwrite it"
                       " (sbc-apis.md B6). Remove or rename it first. Nothing was changed.")
    bound_before = profile.get("serverCertName")
    repoint = bound_before != name or (p["client_certificate"] and profile.get("clientCertName") != name)
    changed = bool(upload or install or repoint or any(c["upload"] or c["install"] for c in ca_plan))
    after_objects = dict(objects)
    after_objects[name] = {"name": name, "fileName": file_name, "type": "local", "state": "enabled"}
    for c in ca_plan:
        after_objects.setdefault(c["name"], {"name": c["name"], "fileName": c["file"], "type": "remote",
                                             "state": "enabled"})
    target = rollback_target(name, after_objects, prefix)
    return {
        "name": name, "file_name": file_name, "ca_plan": ca_plan, "upload": upload, "install": install,
        "existed": obj is not None, "repoint": repoint, "changed": changed, "bound_before": bound_before,
        "rollback_target": target,
        "before": {"tls_profile": p["tls_profile"], "server_cert_name": bound_before,
                   "client_cert_name": profile.get("clientCertName"), "files": on_nodes},
        "after": {"tls_profile": p["tls_profile"], "server_cert_name": name,
                  "client_cert_name": name if p["client_certificate"] else profile.get("clientCertName"),
                  "files": {n: want["fingerprint"] for n in on_nodes}},
    }


# ------------------------------------------------------------------------------------------------------ apply
class Journal:
    """What this run wrote, so that a failure half way can undo it (or say exactly what is left where)."""

    def __init__(self) -> None:
        self.files: list[tuple[SftpNode, str]] = []
        self.objects: list[str] = []

    def undo(self, client: CoreClient) -> tuple[list[str], list[str]]:
        done, left = [], []
        for name in reversed(self.objects):
            try:
                client.delete_certificate(name)
                done.append(f"PKI object {name}")
            except ByocError as exc:
                left.append(f"PKI object {name} (delete failed: {exc.msg})")
        for node, file_name in reversed(self.files):
            if node.remove(file_name):
                done.append(f"{node.path(file_name)} on node {node.name}")
            else:
                left.append(f"{node.path(file_name)} on node {node.name}")
        return done, left


def _undo_and_raise(exc: Exception, journal: Journal, client: CoreClient) -> t.NoReturn:
    done, left = journal.undo(client)
    if left:
        note = (f" Cleanup after the failure did NOT remove everything this run wrote; left behind: {'; '.join(left)}."
                " Remove these by hand (a .p12 file holds the private key)."
                + (f" Removed: {'; '.join(done)}." if done else ""))
    elif done:
        note = f" Everything this run wrote was removed again: {'; '.join(done)}."
    else:
        note = ""
    details = {"cleaned_up": done, "left_behind": left}
    if isinstance(exc, ByocError):
        exc.msg = exc.msg + note
        exc.args = (exc.msg,)
        exc.details.update(details)
        raise exc
    raise ApiError(f"Unexpected {type(exc).__name__} while installing the certificate.{note}", **details) from None


def apply_present(plan: dict, want: dict, client: CoreClient, sessions: list[SftpNode], p: dict) -> None:
    """Write the plan: files to every node, CA objects, the leaf object, the profile; undo on failure."""
    name, file_name = plan["name"], plan["file_name"]
    journal = Journal()
    try:
        # 1-2. the files to every node first; any failure stops here, before the configuration is touched
        data = build_pkcs12(name, want["key"], want["leaf"], want["chain"], p["pkcs12_passphrase"])
        for s in sessions:
            if s.name in plan["upload"]:
                s.put(file_name, data)  # a failed put leaves nothing behind (see SftpNode.put)
                journal.files.append((s, file_name))
            for c in plan["ca_plan"]:
                if s.name in c["upload"]:
                    s.put(c["file"], _pem.to_pem(c["cert"]).encode("ascii"))
                    journal.files.append((s, c["file"]))
        # 3. CA certificates as remote objects (sbc-apis.md B2)
        for c in plan["ca_plan"]:
            if c["install"]:
                client.put_certificate(c["name"], c["file"], "remote")
                journal.objects.append(c["name"])
        # 4. the leaf under its versioned name
        if plan["install"]:
            client.put_certificate(name, file_name, "local", p["pkcs12_passphrase"])
            if not plan["existed"]:
                journal.objects.append(name)
        # 5. re-point the profile (takes effect for new TLS connections, sbc-apis.md B6). ConfD commits each
        # request (B4 [INFER]): a refused PATCH leaves the profile as it was, so the undo above still applies.
        if plan["repoint"]:
            client.point_profile(p["tls_profile"], name, name if p["client_certificate"] else None)
    except Exception as exc:  # pylint: disable=broad-exception-caught
        _undo_and_raise(exc, journal, client)
    if plan["repoint"]:
        got = client.profile(p["tls_profile"]) or {}
        if got.get("serverCertName") != name:
            raise ApiError(f"tlsProfile {p['tls_profile']} still points at {got.get('serverCertName')}"
                           f" after re-pointing it to {name} on {p['api_url']}.")


def run_present(p: dict, check_mode: bool, want_diff: bool) -> dict:
    validate_common(p)
    want = desired_material(p)
    client = client_for(p)
    device = read_device(client, p)
    nodes = Nodes(p)
    try:
        sessions = nodes.each()
        files = read_files(sessions, want, p)
        plan = plan_present(p, want, device, files)
        pruned: list[str] = []
        keep = {plan["name"], plan["bound_before"], plan["rollback_target"]}
        if plan["changed"] and not check_mode:
            apply_present(plan, want, client, sessions, p)
        if not check_mode and p.get("retain") is not None:
            pruned = prune(client, sessions, p, keep=keep)
        result = {
            "changed": plan["changed"] or bool(pruned), "platform": "core", "certificate_name": plan["name"],
            "file_name": plan["file_name"], "fingerprint": want["fingerprint"], "previous": plan["rollback_target"],
            "bound_before": plan["bound_before"], "uploaded_to": plan["upload"],
            "ca_objects": [c["name"] for c in plan["ca_plan"]], "pruned": pruned, "ha": device["ha"],
            "certificate": _pem.details(want["leaf"]),
        }
        if want["warnings"]:
            result["warnings"] = want["warnings"]
        if want_diff:
            result["diff"] = {"before": plan["before"], "after": plan["after"]}
        return result
    finally:
        nodes.close()


def prune(client: CoreClient, sessions: list[SftpNode], p: dict, keep: set) -> list[str]:
    """Delete our versioned local objects beyond ``retain`` previous ones, never one that is bound or in ``keep``."""
    objects = client.certificates()
    bound = bound_names(client.profiles())
    ours = [o for o in prefixed_local(objects, p["name_prefix"]) if o["name"] not in bound]
    keep = {k for k in keep if k}
    others = [o for o in ours if o["name"] not in keep]
    slots = max(p["retain"] - (len(ours) - len(others)), 0)  # the just-replaced object counts as retained
    pruned = []
    for o in others[slots:]:
        client.delete_certificate(o["name"])
        for s in sessions:
            if o.get("fileName"):
                s.remove(o["fileName"])
        pruned.append(o["name"])
    return pruned


def superseded_at(sessions: list[SftpNode], obj: dict | None, passphrase: str | None) -> datetime.datetime | None:
    """When an object was superseded: the notBefore of the certificate of the object that replaced it (an ACME
    certificate is installed right after it is issued), read from that object's file on the first node where it
    opens. None when it cannot be read: then its age is unknown and nothing is pruned for it (the stricter reading)."""
    if not obj or not obj.get("fileName"):
        return None
    for s in sessions:
        data = s.get(obj["fileName"])
        cert = pkcs12_certificate(data, passphrase) if data is not None else None
        if cert is not None:
            return cert.not_valid_before_utc
    return None


def plan_prune(objects: dict[str, dict], profiles: list[dict], tls_profile: str, prefix: str, retain: int,
               grace_days: int, now: datetime.datetime, replaced_at) -> tuple[list[dict], dict]:
    """Which of our versioned local objects to remove (pure; ``replaced_at(successor) -> datetime | None``).

    Never: an object any TLS profile points at (server or client certificate), the rollback target (``previous``,
    what state=rollback binds), an object newer than those (a roll-forward target after a rollback), the ``retain``
    next older ones, or one whose replacement is younger than ``grace_days`` or cannot be dated. Objects that are
    not ours (another prefix, or not versioned) and remote (CA) objects are never considered: CA objects are the
    device's trust anchors for mutual TLS and may be shared."""
    bound = bound_names(profiles)
    current = next((pr.get("serverCertName") for pr in profiles if pr.get("name") == tls_profile), None)
    previous = rollback_target(current, objects, prefix)
    ours = prefixed_local(list(objects.values()), prefix)
    names = [o["name"] for o in ours]
    # After a rollback the bound object is not our newest and ``previous`` is the bound one itself: the object just
    # older than the bound one is what a further rollback goes back to, so it stays too.
    before_bound = names[names.index(current) + 1] if current in names and names.index(current) + 1 < len(names) else None
    kept_idx = [i for i, n in enumerate(names) if n in bound or n in (previous, before_bound)]
    floor = (max(kept_idx) if kept_idx else -1) + retain
    verdicts = []
    for i, o in enumerate(ours):
        v = {"name": o["name"], "file_name": o.get("fileName")}
        if o["name"] in bound:
            verdicts.append({**v, "verdict": "in use", "why": "a TLS profile points at it"})
        elif o["name"] in (previous, before_bound):
            verdicts.append({**v, "verdict": "in use", "why": "the rollback target (previous)"})
        elif i <= floor or not kept_idx:
            why = ("newer than the bound object (a roll-forward target)" if kept_idx and i < max(kept_idx)
                   else "kept by retain" if kept_idx else "no object of ours is bound: nothing is superseded")
            verdicts.append({**v, "verdict": "kept", "why": why})
        else:
            since = replaced_at(ours[i - 1])
            if since is None:
                verdicts.append({**v, "verdict": "kept", "why": f"when {ours[i - 1]['name']} replaced it cannot be read"
                                                                " (its file does not open on any node)"})
                continue
            due = since + datetime.timedelta(days=grace_days)
            v["superseded"] = since.strftime("%Y-%m-%dT%H:%M:%SZ")
            if now < due:
                verdicts.append({**v, "verdict": "waiting", "prune_after": due.strftime("%Y-%m-%dT%H:%M:%SZ"),
                                 "why": f"superseded since {v['superseded']}; the grace period of {grace_days} days"
                                        f" ends {due:%Y-%m-%dT%H:%M:%SZ}"})
            else:
                verdicts.append({**v, "verdict": "pruned",
                                 "why": f"superseded since {v['superseded']}, more than {grace_days} days"})
    return verdicts, {"current": current, "previous": previous}


def run_pruned(p: dict, check_mode: bool, want_diff: bool) -> dict:
    """state=pruned: remove our versioned objects older than current and previous, after the grace period, with their
    files on every node (sbc-apis.md B6: the documented renewal ends by removing the old object)."""
    validate_common(p)
    client = client_for(p)
    device = read_device(client, p)  # HA gate: configuration is changed on the active only when in sync
    nodes = Nodes(p)
    try:
        sessions = nodes.each()
        now = datetime.datetime.now(datetime.timezone.utc)
        verdicts, where = plan_prune(device["objects"], device["profiles"], p["tls_profile"], p["name_prefix"],
                                     p.get("retain") or 0, p["grace_period"], now,
                                     lambda obj: superseded_at(sessions, obj, p.get("pkcs12_passphrase")))
        doomed = [v for v in verdicts if v["verdict"] == "pruned"]
        removed: list[str] = []
        if doomed and not check_mode:
            for v in doomed:
                # The object first: a refusal (in use, 409) leaves its file, which the object still needs.
                client.delete_certificate(v["name"])
                for s in sessions:
                    if v["file_name"]:
                        s.remove(v["file_name"])
                removed.append(v["name"])
        ours = [o["name"] for o in prefixed_local(list(device["objects"].values()), p["name_prefix"])]
        gone = {v["name"] for v in doomed}
        result = {"changed": bool(doomed), "platform": "core", "pruned": [v["name"] for v in doomed],
                  "prune": verdicts, "certificate_name": where["current"], "previous": where["previous"],
                  "bound_before": where["current"], "ha": device["ha"]}
        if want_diff:
            result["diff"] = {"before": {"versioned_objects": ours},
                              "after": {"versioned_objects": [n for n in ours if n not in gone]}}
        return result
    finally:
        nodes.close()


def run_rollback(p: dict, check_mode: bool, want_diff: bool) -> dict:
    validate_common(p)
    client = client_for(p)
    ha = gate_ha(client, p)
    profile = client.profile(p["tls_profile"])
    if profile is None:
        raise NotFound(f"tlsProfile {p['tls_profile']} does not exist on {p['api_url']}; check tls_profile.",
                       field="tls_profile")
    current = profile.get("serverCertName")
    objects = {o["name"]: o for o in client.certificates() if o.get("name")}
    target = p.get("rollback_to")
    if target:
        if target not in objects:
            raise NotFound(f"rollback_to: PKI certificate {target} does not exist on {p['api_url']}",
                           field="rollback_to")
    else:
        target = rollback_target(current, objects, p["name_prefix"])
        if target is None:
            raise NotFound(f"No certificate object to roll back to from {current or '(none bound)'} on"
                           f" {p['api_url']}: no older {p['name_prefix']}-<date>-<fingerprint> object and not exactly"
                           " one other local object. Give rollback_to.", field="rollback_to")
    if objects[target].get("type", "local") != "local":
        raise InputError("rollback_to", f"{target} is a {objects[target].get('type')} certificate, not local")
    files = {}
    if p.get("nodes"):
        nodes = Nodes(p)
        try:
            for s in nodes.each():
                files[s.name] = objects[target].get("fileName") in s.listdir()
        finally:
            nodes.close()
        missing = [n for n, ok in files.items() if not ok]
        if missing:
            raise ApiError(f"Cannot roll back to {target}: its file {objects[target].get('fileName')} is missing on"
                           f" node(s) {', '.join(missing)}, so that node could not serve it after a switchover."
                           " Re-deploy it with state=present instead.", missing_on=missing)
    changed = current != target
    if changed and not check_mode:
        client.point_profile(p["tls_profile"], target, target if p["client_certificate"] else None)
        got = client.profile(p["tls_profile"]) or {}
        if got.get("serverCertName") != target:
            raise ApiError(f"tlsProfile {p['tls_profile']} still points at {got.get('serverCertName')} after"
                           f" re-pointing it to {target} on {p['api_url']}.")
    result = {"changed": changed, "platform": "core", "certificate_name": target, "previous": current,
              "bound_before": current, "ha": ha, "files_present": files}
    if want_diff:
        result["diff"] = {"before": {"tls_profile": p["tls_profile"], "server_cert_name": current},
                          "after": {"tls_profile": p["tls_profile"], "server_cert_name": target}}
    return result


def run_info(p: dict) -> dict:
    client = client_for(p)
    ha = ha_state(client.server_status(), client.sync_status())
    profiles = client.profiles()
    objects = client.certificates()
    by_profile = {}
    for prof in profiles:
        for leaf in ("serverCertName", "clientCertName"):
            if prof.get(leaf):
                by_profile.setdefault(prof[leaf], []).append(f"{prof.get('name')}.{leaf}")
    certificates = [{"name": o.get("name"), "file_name": o.get("fileName"), "type": o.get("type"),
                     "state": o.get("state"), "bound_by": by_profile.get(o.get("name"), [])} for o in objects]
    wanted = next((pr for pr in profiles if pr.get("name") == p["tls_profile"]), None)
    bound_name = (wanted or {}).get("serverCertName")
    bound = {"tls_profile": p["tls_profile"], "name": bound_name, "nodes": {}, "details": None}
    if p.get("nodes") and p.get("sftp_username"):
        nodes = Nodes(p)
        try:
            sessions = nodes.each()
            for c in certificates:
                remote = c["type"] == "remote"
                if not c["file_name"] or not (remote or c["name"] == bound_name):
                    continue
                per_node = {}
                for s in sessions:
                    data = s.get(c["file_name"])
                    cert = None
                    if data is not None:
                        if remote:
                            try:
                                cert = _pem.load_certificates(data.decode("ascii", "replace"), c["file_name"])[0]
                            except InputError:
                                cert = None
                        else:
                            cert = pkcs12_certificate(data, p.get("pkcs12_passphrase"))
                    per_node[s.name] = {"present": data is not None,
                                        "fingerprint": _pem.fingerprint(cert) if cert is not None else None}
                    if cert is not None and c.get("details") is None:
                        c["details"] = _pem.details(cert)
                c["nodes"] = per_node
                if c["name"] == bound_name:
                    bound["nodes"] = per_node
                    bound["details"] = c.get("details")
        finally:
            nodes.close()
    if wanted is None:
        raise NotFound(f"tlsProfile {p['tls_profile']} does not exist on {p['api_url']}; check tls_profile.",
                       field="tls_profile")
    return {"changed": False, "platform": "core", "certificates": certificates, "profiles": profiles,
            "bound": bound, "ha": ha}
