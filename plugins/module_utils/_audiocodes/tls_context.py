# Copyright (c) 2026, byoc.certificates contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

# Note that this module util is **PRIVATE** to the collection. It can have breaking changes at any time.

"""The desired state of one Mediant TLS context, how it differs from the device, and how to converge it.

Order of work (DEVELOPING.md, module rules; sbc-apis.md G "Module logic"):

1. validate every option (PEM parses, key matches certificate, index in range) -- nothing touched yet;
2. read the device: status (HA gate), INI (contexts and bindings), certificate, key status, trusted roots;
3. compare by SHA-256 fingerprint of the DER (the key cannot be read back, A2: it is "the same" when the
   installed certificate is the desired one and ``privateKey.valid`` is true);
4. write only what differs, in the order key -> certificate -> trusted roots (A2 recommended order), then verify
   (``valid`` and the certificate read back, E2), then bind, then ``saveConfiguration`` (A5, E5).
"""

from __future__ import annotations

import datetime
import typing as t
from dataclasses import dataclass, field

from ansible_collections.byoc.certificates.plugins.module_utils import _pem
from ansible_collections.byoc.certificates.plugins.module_utils._audiocodes import ini as _ini
from ansible_collections.byoc.certificates.plugins.module_utils._audiocodes.client import (
    AudioCodesClient,
    validate_connection,
)
from ansible_collections.byoc.certificates.plugins.module_utils._errors import (
    ApiError,
    ByocError,
    InputError,
    NotFound,
)

MAX_CONTEXTS = 100  # sbc-apis.md A4: up to 100 TLS contexts, index 0 = "default"


def check_index(index: t.Any, field_name: str = "context_index") -> int:
    if index is None or isinstance(index, bool) or not isinstance(index, int) or not 0 <= index < MAX_CONTEXTS:
        raise InputError(field_name, f"{index!r} is out of range: a Mediant has TLS contexts 0 to {MAX_CONTEXTS - 1}"
                                     " (0 is the 'default' context used by the management interface)")
    return index


def _summary(cert) -> dict:
    return {"fingerprint_sha256": _pem.fingerprint(cert), "subject": cert.subject.rfc4514_string(),
            "not_after": cert.not_valid_after_utc.isoformat()}


def _short(cert) -> str:
    return f"{_pem.fingerprint(cert)} {cert.subject.rfc4514_string()}"


@dataclass
class Desired:
    index: int
    name: str | None
    key: t.Any = None
    key_pem: str | None = None
    leaf: t.Any = None
    trusted: list = field(default_factory=list)  # intermediates, chain roots and extra trusted roots, deduped
    roots_mode: str = "present"
    sip_interfaces: list = field(default_factory=list)
    proxy_sets: list = field(default_factory=list)
    save: bool = True
    require_ha: bool = False
    warnings: list = field(default_factory=list)


def desired_from_params(params: dict) -> Desired:
    """Validate every option; raise InputError naming the option. No device is contacted."""
    validate_connection(params)
    d = Desired(index=check_index(params.get("context_index")),
                name=_ini.check_name(params["context_name"], "context_name") if params.get("context_name") else None,
                roots_mode=params.get("trusted_roots_mode") or "present",
                save=params.get("save", True), require_ha=bool(params.get("require_ha")))
    if d.index == 0:
        d.warnings.append("context_index 0 is the 'default' TLS context, which the management interface (Web/REST)"
                          " uses too: a new certificate there also changes the certificate this API presents.")
    for opt in ("sync_retries",):
        if params.get(opt) is not None and params[opt] < 0:
            raise InputError(opt, "must be 0 or more")
    if params.get("sync_delay") is not None and params["sync_delay"] < 0:
        raise InputError("sync_delay", "must be 0 or more seconds")

    chain_certs: list = []
    if params.get("certificate"):
        bundle = _pem.load_certificates(params["certificate"], "certificate")
        d.key = _pem.load_private_key(params["private_key"], "private_key", params.get("private_key_passphrase"))
        matching = [c for c in bundle if _pem.key_matches_certificate(d.key, c)]
        if not matching:
            leaf = bundle[0]
            raise InputError(
                "private_key",
                f"does not match the certificate (subject {leaf.subject.rfc4514_string()}, SHA-256"
                f" {_pem.fingerprint(leaf)}): the key's public key ({_pem.key_description(d.key)}) is not the"
                f" certificate's ({_pem.key_description(leaf)}). Nothing was uploaded. Pass the key that the"
                " certificate was issued for.")
        d.leaf = matching[0]
        chain_certs = [c for c in bundle if c is not d.leaf]
        d.key_pem = _pem.key_to_pem(d.key)
        now = datetime.datetime.now(datetime.timezone.utc)
        if d.leaf.not_valid_after_utc <= now:
            raise InputError("certificate", f"expired on {d.leaf.not_valid_after_utc.isoformat()} (subject"
                                            f" {d.leaf.subject.rfc4514_string()}); refusing to install it")
        if _pem.is_ca(d.leaf):
            d.warnings.append("certificate: the certificate that matches the key is a CA certificate; SIP peers"
                              " usually refuse a CA certificate as a server certificate.")
    if params.get("chain"):
        chain_certs += _pem.load_certificates(params["chain"], "chain")
    extra: list = []
    for i, pem in enumerate(params.get("trusted_roots") or []):
        extra += _pem.load_certificates(pem, f"trusted_roots[{i}]")
    seen: set = set()
    for c in _pem.order_chain(chain_certs) + extra:
        f = _pem.fingerprint(c)
        if f not in seen and (d.leaf is None or f != _pem.fingerprint(d.leaf)):
            seen.add(f)
            d.trusted.append(c)
    if d.leaf is not None and not d.leaf.issuer == d.leaf.subject and \
            not any(c.subject == d.leaf.issuer for c in d.trusted):
        d.warnings.append(f"the issuer of the certificate ({d.leaf.issuer.rfc4514_string()}) is in neither chain"
                          " nor trusted_roots: the device cannot send it, so SIP peers must already have it.")
    for opt in ("sip_interfaces", "proxy_sets"):
        for name in params.get(opt) or []:
            _ini.check_name(name, opt)
        getattr(d, opt).extend(params.get(opt) or [])
    if d.roots_mode == "exact" and not d.trusted:
        d.warnings.append("trusted_roots_mode=exact with no chain and no trusted_roots: the REST API cannot empty a"
                          " trusted root store, so the store is left as it is.")
    return d


@dataclass
class Installed:
    status: dict
    contexts: dict  # {index: name}
    sip: dict
    proxies: dict
    exists: bool
    name: str | None = None
    cert: t.Any = None
    key_status: dict = field(default_factory=lambda: {"size": 0, "valid": False})
    roots: list = field(default_factory=list)


def read_device(client: AudioCodesClient, index: int) -> Installed:
    status = client.status()
    tables = _ini.parse_tables(client.ini())
    contexts = _ini.tls_contexts(tables)
    inst = Installed(status=status, contexts=contexts, sip=_ini.bindings(tables, "SIPInterface"),
                     proxies=_ini.bindings(tables, "ProxySet"), exists=index in contexts, name=contexts.get(index))
    if inst.exists:
        inst.cert = _device_certs(client.certificate(index), client, index, "certificate")
        inst.cert = inst.cert[0] if inst.cert else None
        inst.key_status = client.private_key_status(index)
        inst.roots = _device_certs(client.trusted_roots(index), client, index, "trustedRoot")
    return inst


def _device_certs(pem: str | None, client: AudioCodesClient, index: int, what: str) -> list:
    if not pem or not pem.strip():
        return []
    try:
        return _pem.load_certificates(pem, what)
    except InputError as exc:
        raise ApiError(f"The AudioCodes device at {client.base} returned an unreadable files/tls/{index}/{what}:"
                       f" {exc.msg}") from None


def view(inst_name: str | None, exists: bool, cert, key_valid: bool, roots: list, sip: dict, proxies: dict,
         save_needed: bool, index: int) -> dict:
    """What diff shows: identities only, never key material."""
    return {
        "context": {"index": index, "name": inst_name, "exists": exists},
        "certificate": _summary(cert) if cert is not None else None,
        "private_key_valid": key_valid,
        "trusted_roots": sorted(_short(c) for c in roots),
        "sip_interfaces": {k: v["tls_context"] for k, v in sorted(sip.items())},
        "proxy_sets": {k: v["tls_context"] for k, v in sorted(proxies.items())},
        "save_needed": save_needed,
    }


def ensure(module: t.Any, *, sleep=None) -> dict:
    """The whole ``audiocodes_tls_context`` run. Returns the module result."""
    p = module.params
    d = desired_from_params(p)
    for w in d.warnings:
        module.warn(w)
    kw = {"sleep": sleep} if sleep else {}
    client = AudioCodesClient(p, sync_retries=p.get("sync_retries", 10), sync_delay=p.get("sync_delay", 5.0),
                              warn=module.warn, **kw)
    inst = read_device(client, d.index)

    # HA gate (sbc-apis.md A5 highAvailability; A6; G "Gate on HA healthy").
    ha = str(inst.status.get("highAvailability", ""))
    if d.require_ha and ha != "Operational":
        raise ApiError(f"The AudioCodes device at {client.base} reports highAvailability {ha!r}, not 'Operational',"
                       " and require_ha is true: nothing was changed. Bring the redundant unit back (or set"
                       " require_ha to false to write to the active unit alone; the redundant unit then gets the"
                       " configuration when it re-synchronises).", high_availability=ha)

    # Context identity.
    name = inst.name if inst.exists else d.name
    if inst.exists and d.name and inst.name != d.name:
        raise InputError("context_name", f"TLS context {d.index} on {client.base} is named {inst.name!r}, not"
                                         f" {d.name!r}; nothing was changed. Fix context_index or context_name so"
                                         " that they name the same context.")
    if not inst.exists:
        if not d.name:
            raise NotFound(f"TLS context {d.index} does not exist on {client.base} (existing:"
                           f" {', '.join(f'{i}={n}' for i, n in sorted(inst.contexts.items())) or 'none'});"
                           " set context_name to create it.", context_index=d.index)
        clash = [i for i, n in inst.contexts.items() if n == d.name]
        if clash:
            raise InputError("context_name", f"{d.name!r} is already the name of TLS context {clash[0]} on"
                                             f" {client.base}; use context_index {clash[0]} or another name.")

    # Bindings must name existing rows; checked before any write.
    for opt, table in (("sip_interfaces", inst.sip), ("proxy_sets", inst.proxies)):
        missing = [n for n in getattr(d, opt) if n not in table]
        if missing:
            raise NotFound(f"{opt}: {', '.join(missing)} not found on {client.base} (existing:"
                           f" {', '.join(sorted(table)) or 'none'}); nothing was changed.", missing=missing)

    # Compare by fingerprint.
    installed_fps = {_pem.fingerprint(c) for c in inst.roots}
    want_fps = {_pem.fingerprint(c) for c in d.trusted}
    upload_material = d.leaf is not None and (
        inst.cert is None or _pem.fingerprint(inst.cert) != _pem.fingerprint(d.leaf) or not inst.key_status["valid"])
    if d.roots_mode == "exact":
        roots_to_add = d.trusted if installed_fps != want_fps else []
        roots_after = list(d.trusted) if installed_fps != want_fps else list(inst.roots)
        replace_roots = bool(roots_to_add)
    else:
        roots_to_add = [c for c in d.trusted if _pem.fingerprint(c) not in installed_fps]
        roots_after = list(inst.roots) + roots_to_add
        replace_roots = False
    bind = {opt: {n: getattr(inst, "sip" if opt == "sip_interfaces" else "proxies")[n]["index"]
                  for n in getattr(d, opt)
                  if getattr(inst, "sip" if opt == "sip_interfaces" else "proxies")[n]["tls_context"] != name}
            for opt in ("sip_interfaces", "proxy_sets")}
    save_needed_before = str(inst.status.get("saveNeeded", "false")).lower() == "true"

    actions: list[str] = []
    if not inst.exists:
        actions.append(f"create TLS context {d.index} {name!r}")
    if upload_material:
        actions += [f"upload private key to context {d.index}", f"upload certificate {_pem.fingerprint(d.leaf)}"]
    if roots_to_add:
        actions.append(("replace trusted roots with " if replace_roots else "add trusted roots ")
                       + ", ".join(_short(c) for c in roots_to_add))
    for opt, table_name in (("sip_interfaces", "SIP Interface"), ("proxy_sets", "Proxy Set")):
        for n in bind[opt]:
            actions.append(f"bind {table_name} {n!r} to TLS context {name!r}")
    config_changed = bool(actions)
    do_save = d.save and (config_changed or save_needed_before)
    if do_save:
        actions.append("save the configuration (saveConfiguration)")

    result: dict[str, t.Any] = {"changed": bool(actions), "actions": actions, "high_availability": ha,
                                "context": {"index": d.index, "name": name, "created": not inst.exists}}
    done: list[str] = []
    if actions and not module.check_mode:
        try:
            _apply(client, d, inst, name, upload_material, roots_to_add, replace_roots, bind, do_save, done)
        except ByocError as exc:
            if done:
                exc.msg += (f" Already applied to the device's running configuration: {'; '.join(done)}. The"
                            " configuration was not saved; re-run the task to finish (it compares by fingerprint"
                            " and redoes only what is missing).")
                exc.details["completed_steps"] = done
            exc.details.setdefault("sync_retries", client.sync_waits)
            raise

    key_valid_after = inst.key_status["valid"] if d.leaf is None else True
    cert_after = d.leaf if d.leaf is not None else inst.cert
    if module.check_mode or not actions:
        save_needed_after = (save_needed_before or config_changed) and not do_save
        reset_needed = str(inst.status.get("resetNeeded", "false")).lower() == "true"
    else:
        status_after = client.status()
        save_needed_after = str(status_after.get("saveNeeded", "false")).lower() == "true"
        reset_needed = str(status_after.get("resetNeeded", "false")).lower() == "true"
        if do_save and save_needed_after:
            module.warn("saveConfiguration succeeded but the device still reports saveNeeded: true")
    if reset_needed:
        module.warn("The device reports resetNeeded: true; some changes take effect only after a reset"
                    " (sbc-apis.md E4).")
    result.update({
        "certificate": _pem.details(cert_after) if cert_after is not None else None,
        "private_key_valid": key_valid_after,
        "trusted_roots": [_summary(c) for c in roots_after],
        "saved": bool(do_save and not module.check_mode),
        "save_needed": save_needed_after,
        "reset_needed": reset_needed,
        "sync_retries": client.sync_waits,
    })
    if module._diff:
        sip_after = {k: dict(v) for k, v in inst.sip.items()}
        proxies_after = {k: dict(v) for k, v in inst.proxies.items()}
        for n in bind["sip_interfaces"]:
            sip_after[n]["tls_context"] = name
        for n in bind["proxy_sets"]:
            proxies_after[n]["tls_context"] = name
        result["diff"] = {
            "before": view(inst.name, inst.exists, inst.cert, inst.key_status["valid"], inst.roots, inst.sip,
                           inst.proxies, save_needed_before, d.index),
            "after": view(name, True, cert_after, key_valid_after, roots_after, sip_after, proxies_after,
                          save_needed_after, d.index),
        }
    return result


def _apply(client: AudioCodesClient, d: Desired, inst: Installed, name: str, upload_material: bool,
           roots_to_add: list, replace_roots: bool, bind: dict, do_save: bool, done: list) -> None:
    base = f"files/tls/{d.index}"
    if not inst.exists:
        # sbc-apis.md A4: no per-table CRUD; a context is created with an incremental INI (no reset).
        client.upload("files/ini/incremental", "tls-context.ini", _ini.incremental("TLSContexts", "Name", {d.index: name}))
        done.append(f"created TLS context {d.index} {name!r}")
    if upload_material:
        # sbc-apis.md A2: key first, then certificate (the order every public script uses).
        client.upload(f"{base}/privateKey", "key.pem", d.key_pem)
        done.append("uploaded the private key")
        client.upload(f"{base}/certificate", "cert.pem", _pem.to_pem(d.leaf))
        done.append("uploaded the certificate")
    if roots_to_add:
        if replace_roots:
            # A2: PUT trustedRoot replaces the whole store with the certificates one after another.
            client.upload(f"{base}/trustedRoot", "trust.pem", "".join(_pem.to_pem(c) for c in roots_to_add))
        else:
            for c in roots_to_add:  # A2: /incremental adds one certificate per call
                client.upload(f"{base}/trustedRoot/incremental", "trust.pem", _pem.to_pem(c))
        done.append(f"{'replaced' if replace_roots else 'added'} {len(roots_to_add)} trusted root(s)")
    if upload_material or roots_to_add:
        _verify(client, d)
    for table, opt, column in (("SIPInterface", "sip_interfaces", "TLSContext"),
                               ("ProxySet", "proxy_sets", "TLSContextName")):
        if bind[opt]:
            client.upload("files/ini/incremental", "bind.ini",
                          _ini.incremental(table, column, {i: name for i in bind[opt].values()}))
            done.append(f"bound {', '.join(bind[opt])} to {name!r}")
    if do_save:
        client.save_configuration()
        done.append("saved the configuration")


def _verify(client: AudioCodesClient, d: Desired) -> None:
    """sbc-apis.md E2 / G: after uploading, ``privateKey.valid`` must be true and the certificate must read back
    as the one sent (by fingerprint); the trusted roots must contain what was added."""
    if d.leaf is not None:
        key_status = client.private_key_status(d.index)
        certs = _device_certs(client.certificate(d.index), client, d.index, "certificate")
        got = _pem.fingerprint(certs[0]) if certs else None
        if got != _pem.fingerprint(d.leaf) or not key_status["valid"]:
            raise ApiError(
                f"After the upload, TLS context {d.index} on {client.base} does not hold the new material: certificate"
                f" read back {got or 'none'} (expected {_pem.fingerprint(d.leaf)}), privateKey.valid"
                f" {key_status['valid']}. The configuration was not saved; a device reset returns to the saved one.",
                certificate_read_back=got, private_key_valid=key_status["valid"])
    if d.trusted:
        installed = _device_certs(client.trusted_roots(d.index), client, d.index, "trustedRoot")
        have = {_pem.fingerprint(c) for c in installed}
        missing = [_short(c) for c in d.trusted if _pem.fingerprint(c) not in have]
        if missing:
            raise ApiError(f"After the upload, the trusted roots of TLS context {d.index} on {client.base} lack:"
                           f" {', '.join(missing)}.", missing_trusted_roots=missing)


def info(module: t.Any) -> dict:
    """The whole ``audiocodes_tls_context_info`` run."""
    p = module.params
    validate_connection(p)
    index = check_index(p["context_index"]) if p.get("context_index") is not None else None
    client = AudioCodesClient(p)
    status = client.status()
    alarms = client.alarms()
    tables = _ini.parse_tables(client.ini())
    contexts = _ini.tls_contexts(tables)
    sip, proxies = _ini.bindings(tables, "SIPInterface"), _ini.bindings(tables, "ProxySet")
    out = []
    for i, name in sorted(contexts.items()):
        if index is not None and i != index:
            continue
        certs = _device_certs(client.certificate(i), client, i, "certificate")
        roots = _device_certs(client.trusted_roots(i), client, i, "trustedRoot")
        key = client.private_key_status(i)
        out.append({
            "index": i, "name": name,
            "certificate": _pem.details(certs[0]) if certs else None,
            "private_key": {"size": key["size"], "valid": key["valid"]},
            "trusted_roots": [_pem.details(c) for c in roots],
            "sip_interfaces": sorted(n for n, v in sip.items() if v["tls_context"] == name
                                     or (i == 0 and not v["tls_context"])),
            "proxy_sets": sorted(n for n, v in proxies.items() if v["tls_context"] == name),
        })
    ha = str(status.get("highAvailability", ""))
    return {
        "changed": False,
        "contexts": out,
        "status": {
            "high_availability": ha, "ha_operational": ha == "Operational",
            "save_needed": str(status.get("saveNeeded", "false")).lower() == "true",
            "reset_needed": str(status.get("resetNeeded", "false")).lower() == "true",
            "product_type": status.get("productType"), "version": status.get("versionID"),
            "serial_number": status.get("serialNumber"), "operational_state": status.get("operationalState"),
        },
        "alarms": alarms,
    }
