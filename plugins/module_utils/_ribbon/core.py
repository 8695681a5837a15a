# Copyright (c) 2026, byoc.certificates contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

# Note that this module util is **PRIVATE** to the collection. It can have breaking changes at any time.
"""Ribbon SBC Core: the ConfD REST client and the certificate workflow (sbc-apis.md B1-B6).

Deployment order (B2, B4, B5, B6): the PKCS#12 goes to /opt/sonus/external on EVERY node over SFTP first (files do
not replicate), then the CA certificates become ``remote`` PKI objects, then the leaf becomes a ``local`` PKI object
under a NEW versioned name, then ``tlsProfile.serverCertName`` is re-pointed. The previous object is kept for
rollback (re-pointing the profile back), older ones beyond ``retain`` are pruned.
"""

from __future__ import annotations

import typing as t
import xml.etree.ElementTree as ET
from urllib.parse import quote

from ansible_collections.byoc.certificates.plugins.module_utils import _pem
from ansible_collections.byoc.certificates.plugins.module_utils._errors import ApiError, InputError, NotFound
from ansible_collections.byoc.certificates.plugins.module_utils._http import HttpClient, Response
from ansible_collections.byoc.certificates.plugins.module_utils._ribbon.common import (
    SftpNode,
    build_pkcs12,
    find_all,
    leaves,
    local,
    parse_xml,
    pkcs12_certificate,
)

YANG = "application/vnd.yang.data+xml"  # sbc-apis.md B1
CERT_PATH = "api/config/system/security/pki/certificate"
PROFILE_PATH = "api/config/profiles/security/tlsProfile"
SYNC_OK = "syncCompleted"  # sbc-apis.md B1


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
                 ca_path: str | None = None, timeout: float = 30, http: HttpClient | None = None) -> None:
        self.http = http or HttpClient(
            api_url, service="Ribbon SBC Core REST API", validate_certs=validate_certs, ca_path=ca_path,
            timeout=timeout, url_username=username, url_password=password, error_message=confd_error,
            headers={"Accept": YANG})

    def _get(self, path: str, what: str) -> ET.Element | None:
        resp = self.http.request("GET", path, missing_ok=True, ok=(200, 204))
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
        self.http.request("PUT", f"{CERT_PATH}/{quote(name, safe='')}", data=body, headers={"Content-Type": YANG})

    def delete_certificate(self, name: str) -> None:
        self.http.request("DELETE", f"{CERT_PATH}/{quote(name, safe='')}", missing_ok=True)

    def point_profile(self, name: str, server: str | None, client: str | None) -> None:
        # sbc-apis.md B4: PATCH tlsProfile with serverCertName / clientCertName
        body = to_xml("tlsProfile", {"name": name, "serverCertName": server, "clientCertName": client})
        self.http.request("PATCH", f"{PROFILE_PATH}/{quote(name, safe='')}", data=body, headers={"Content-Type": YANG})

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


def prefixed_local(objects: list[dict], prefix: str) -> list[dict]:
    """Our versioned local objects, newest first (the name sorts by notAfter, then fingerprint)."""
    ours = [o for o in objects if o.get("type", "local") == "local" and o.get("name", "").startswith(prefix + "-")
            and not o["name"].startswith(prefix + "-ca-")]
    return sorted(ours, key=lambda o: o["name"][len(prefix) + 1:], reverse=True)


def bound_names(profiles: list[dict]) -> set[str]:
    return {p.get(k) for p in profiles for k in ("serverCertName", "clientCertName") if p.get(k)}


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
    prefix = p["name_prefix"]
    if not prefix or not all(c.isalnum() or c in "_.-" for c in prefix) or len(prefix) > 40:
        raise InputError("name_prefix", "use 1-40 letters, digits, '_', '.' or '-'")
    if not 1 <= len(p["tls_profile"]) <= 23:
        raise InputError("tls_profile", "a tlsProfile name has 1-23 characters (sbc-apis.md B3)")
    if p["retain"] < 0:
        raise InputError("retain", "must be 0 or more")


def desired_material(p: dict) -> dict:
    """Parse and check everything the task gives, before any device is touched."""
    if not p.get("certificate"):
        raise InputError("certificate", "required with state=present")
    certs = _pem.order_chain(_pem.load_certificates(p["certificate"], "certificate"))
    leaf, chain = certs[0], certs[1:]
    if not p.get("private_key"):
        raise InputError("private_key", "required on platform core (the PKCS#12 holds the key and the certificate)")
    key = _pem.load_private_key(p["private_key"], "private_key", p.get("private_key_passphrase"))
    if not _pem.key_matches_certificate(key, leaf):
        raise InputError("private_key", "does not match the public key of the first certificate in 'certificate'")
    if not p.get("pkcs12_passphrase"):
        raise InputError("pkcs12_passphrase", "required on platform core: the PKCS#12 file is protected with it")
    cas = []
    seen = {_pem.fingerprint(leaf)}
    for i, pem in enumerate(p.get("ca_certificates") or []):
        for c in _pem.load_certificates(pem, f"ca_certificates[{i}]"):
            if _pem.fingerprint(c) not in seen:
                seen.add(_pem.fingerprint(c))
                cas.append(c)
    for c in chain:  # chain members are installed as remote objects too (sbc-apis.md B2: "chain members")
        if _pem.fingerprint(c) not in seen and _pem.is_ca(c):
            seen.add(_pem.fingerprint(c))
            cas.append(c)
    return {"leaf": leaf, "chain": chain, "key": key, "cas": cas, "fingerprint": _pem.fingerprint(leaf),
            "name": object_name(p["name_prefix"], leaf)}


def node_fingerprints(nodes: list[SftpNode], file_name: str, passphrase: str | None, remote: bool = False) -> dict:
    """Fingerprint of the certificate in ``file_name`` on every node (None: missing or unreadable)."""
    out = {}
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
                out[n.name] = None
        else:
            cert = pkcs12_certificate(data, passphrase)
            out[n.name] = _pem.fingerprint(cert) if cert is not None else None
    return out


def gate_ha(client: CoreClient, p: dict) -> dict:
    ha = ha_state(client.server_status(), client.sync_status())
    if p["require_ha_sync"] and not ha["in_sync"]:
        raise ApiError(
            f"Ribbon SBC Core at {p['api_url']} is not in a state to change safely: {'; '.join(ha['problems'])}."
            " Nothing was changed. Wait for syncStatus syncCompleted on both nodes (or set require_ha_sync=false"
            " for a standalone node).", ha=ha)
    return ha


def run_present(p: dict, check_mode: bool, want_diff: bool) -> dict:
    validate_common(p)
    want = desired_material(p)
    prefix, name = p["name_prefix"], want["name"]
    file_name = f"{name}.p12"
    client = CoreClient(p["api_url"], p["username"], p["password"], validate_certs=p["validate_certs"],
                        ca_path=p.get("ca_path"), timeout=p["timeout"])
    ha = gate_ha(client, p)
    profile = client.profile(p["tls_profile"])
    if profile is None:
        raise NotFound(f"tlsProfile {p['tls_profile']} does not exist on {p['api_url']}; check tls_profile.",
                       field="tls_profile")
    objects = {o["name"]: o for o in client.certificates() if o.get("name")}
    nodes = Nodes(p)
    try:
        sessions = nodes.each()
        on_nodes = node_fingerprints(sessions, file_name, p["pkcs12_passphrase"])
        ca_plan = []
        for ca in want["cas"]:
            ca_name = ca_object_name(prefix, ca)
            ca_file = f"{ca_name}.pem"
            fps = node_fingerprints(sessions, ca_file, None, remote=True)
            ca_plan.append({"cert": ca, "name": ca_name, "file": ca_file,
                            "upload": [n for n, f in fps.items() if f != _pem.fingerprint(ca)],
                            "install": ca_name not in objects})
        upload = [n for n, f in on_nodes.items() if f != want["fingerprint"]]
        obj = objects.get(name)
        install = obj is None or obj.get("fileName") != file_name or obj.get("state", "enabled") != "enabled"
        previous = profile.get("serverCertName")
        repoint = previous != name or (p["client_certificate"] and profile.get("clientCertName") != name)
        changed = bool(upload or install or repoint or any(c["upload"] or c["install"] for c in ca_plan))
        before = {"tls_profile": p["tls_profile"], "server_cert_name": previous,
                  "client_cert_name": profile.get("clientCertName"), "files": on_nodes}
        after = {"tls_profile": p["tls_profile"], "server_cert_name": name,
                 "client_cert_name": name if p["client_certificate"] else profile.get("clientCertName"),
                 "files": {n: want["fingerprint"] for n in on_nodes}}
        pruned: list[str] = []
        if changed and not check_mode:
            # 1-2. the files to every node first; any failure stops here, before the configuration is touched
            data = build_pkcs12(name, want["key"], want["leaf"], want["chain"], p["pkcs12_passphrase"])
            for s in sessions:
                if s.name in upload:
                    s.put(file_name, data)
                for c in ca_plan:
                    if s.name in c["upload"]:
                        s.put(c["file"], _pem.to_pem(c["cert"]).encode("ascii"))
            # 3. CA certificates as remote objects (sbc-apis.md B2)
            for c in ca_plan:
                if c["install"]:
                    client.put_certificate(c["name"], c["file"], "remote")
            # 4. the leaf under its versioned name
            if install:
                if obj is not None and name in bound_names(client.profiles()):
                    raise ApiError(f"PKI object {name} exists with other settings and is in use; refusing to"
                                   " overwrite it (sbc-apis.md B6). Remove or rename it first.")
                client.put_certificate(name, file_name, "local", p["pkcs12_passphrase"])
            # 5. re-point the profile (takes effect for new TLS connections, sbc-apis.md B6)
            if repoint:
                client.point_profile(p["tls_profile"], name, name if p["client_certificate"] else None)
                got = client.profile(p["tls_profile"]) or {}
                if got.get("serverCertName") != name:
                    raise ApiError(f"tlsProfile {p['tls_profile']} still points at {got.get('serverCertName')}"
                                   f" after re-pointing it to {name} on {p['api_url']}.")
            pruned = prune(client, sessions, p, keep={name, previous})
        elif not check_mode:
            pruned = prune(client, sessions, p, keep={name, previous})
        result = {
            "changed": changed or bool(pruned), "platform": "core", "certificate_name": name, "file_name": file_name,
            "fingerprint": want["fingerprint"], "previous": previous if previous != name else None,
            "uploaded_to": upload, "ca_objects": [c["name"] for c in ca_plan], "pruned": pruned, "ha": ha,
            "certificate": _pem.details(want["leaf"]),
        }
        if want_diff:
            result["diff"] = {"before": before, "after": after}
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


def run_rollback(p: dict, check_mode: bool, want_diff: bool) -> dict:
    validate_common(p)
    client = CoreClient(p["api_url"], p["username"], p["password"], validate_certs=p["validate_certs"],
                        ca_path=p.get("ca_path"), timeout=p["timeout"])
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
        older = [o["name"] for o in prefixed_local(list(objects.values()), p["name_prefix"]) if o["name"] != current]
        if not older:
            raise NotFound(f"No previous certificate object named {p['name_prefix']}-* to roll back to on"
                           f" {p['api_url']}; give rollback_to.", field="rollback_to")
        target = older[0]
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
              "ha": ha, "files_present": files}
    if want_diff:
        result["diff"] = {"before": {"tls_profile": p["tls_profile"], "server_cert_name": current},
                          "after": {"tls_profile": p["tls_profile"], "server_cert_name": target}}
    return result


def run_info(p: dict) -> dict:
    client = CoreClient(p["api_url"], p["username"], p["password"], validate_certs=p["validate_certs"],
                        ca_path=p.get("ca_path"), timeout=p["timeout"])
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
