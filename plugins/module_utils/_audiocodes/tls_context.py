# Copyright (c) 2026, byoc.certificates contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

# Note that this module util is **PRIVATE** to the collection. It can have breaking changes at any time.

"""Mediant TLS contexts: what the user wants, what the device has, the plan between them, and applying it.

The work is split in three so that a fleet planner can reuse the comparison:

- **read** (``read_tables``, ``read_device``): the device's state, no decisions;
- **plan** (``plan_in_place``, ``plan_staged``, ``plan_rollback``): pure functions of ``Wanted`` and
  ``DeviceState`` that return a ``Plan`` (steps, the predicted state after, what a rollback would go back to);
- **apply** (``apply``): runs the steps and says what is left where if one fails.

Modes (issue 9 section 4; DESIGN-BRIEF vendor table):

- ``staged``: the material goes into the context of an A/B pair that nothing is bound to; it is verified
  (``privateKey.valid``, the certificate read back by fingerprint, the trusted roots, HA still Operational); then
  the SIP Interfaces and Proxy Sets are re-bound to it in ONE incremental INI write, then saved. The context
  that served before is kept, so a rollback is a re-bind. A context that serves traffic is never written to.
- ``in_place``: the material is written into one given context, in the order key -> certificate -> roots.
  Between the key and the certificate write, a context that serves traffic has a key that does not match its
  certificate and serves no TLS (sbc-apis.md A2/E2: the key/cert match shows only in ``privateKey.valid``).
- ``state: rollback``: re-bind to the previous context of the pair; writes no material.

Facts: sbc-apis.md A2 (file endpoints, key -> certificate order, ``valid``), A3 (the INI is the reliable
listing), A4 (context table, bindings by name, context 0 also serves the management interface, incremental
INI), A5 (save, status), A6 (HA: write to the active only, 409 while synchronising), E2, E5, E6, G.
"""

from __future__ import annotations

import typing as t
from dataclasses import dataclass, field

from ansible_collections.byoc.certificates.plugins.module_utils import _gate, _pem
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
DEFAULT_CONTEXT = "default"  # A4: index 0 is named "default" and cannot be deleted
PAIR_SUFFIXES = ("-A", "-B")
TABLES = (("sip_interfaces", "SIPInterface", "TLSContext", "SIP Interface"),
          ("proxy_sets", "ProxySet", "TLSContextName", "Proxy Set"))


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


def _fps(certs: list) -> set:
    return {_pem.fingerprint(c) for c in certs}


def _dedupe(certs: list, skip: set | None = None) -> list:
    seen, out = set(skip or ()), []
    for c in certs:
        f = _pem.fingerprint(c)
        if f not in seen:
            seen.add(f)
            out.append(c)
    return out


# ===================================================================================================== wanted ==
@dataclass
class Wanted:
    state: str = "present"
    mode: str = "in_place"
    index: int | None = None              # in_place
    pair: tuple | None = None             # staged / rollback: (a, b)
    name: str | None = None               # in_place: the context's name; staged: the pair's base name
    key: t.Any = None
    key_pem: str | None = None
    leaf: t.Any = None
    trusted: list = field(default_factory=list)  # intermediates, chain roots and trusted_roots, deduped
    roots_mode: str = "present"
    sip_interfaces: list = field(default_factory=list)
    proxy_sets: list = field(default_factory=list)
    save: bool = True
    require_ha: bool = False
    allow_management_context: bool = False
    rollback_to: int | None = None
    warnings: list = field(default_factory=list)

    def pair_name(self, i: int) -> str:
        return f"{self.name}{PAIR_SUFFIXES[self.pair.index(i)]}"


def wanted_from_params(params: dict) -> Wanted:
    """Validate every option; raise InputError naming the option. No device is contacted.

    Certificate material goes through the one gate (``_gate``, issue 10): the same bad input gets the same
    refusal as from every other module of the collection."""
    validate_connection(params)
    for opt in ("sync_retries",):
        if params.get(opt) is not None and params[opt] < 0:
            raise InputError(opt, "must be 0 or more")
    if params.get("sync_delay") is not None and params["sync_delay"] < 0:
        raise InputError("sync_delay", "must be 0 or more seconds")
    state = params.get("state") or "present"
    mode = params.get("mode") or ("staged" if params.get("staging_contexts") or state == "rollback" else "in_place")
    if state == "rollback" and mode != "staged":
        raise InputError("state", "rollback re-binds to the other context of the staging_contexts pair; it needs"
                                  " mode=staged (the default when staging_contexts is given)")
    w = Wanted(state=state, mode=mode, roots_mode=params.get("trusted_roots_mode") or "present",
               save=params.get("save", True), require_ha=bool(params.get("require_ha")),
               allow_management_context=bool(params.get("allow_management_context")))
    for opt in ("sip_interfaces", "proxy_sets"):
        names = params.get(opt) or []
        for name in names:
            _ini.check_name(name, opt)
        if len(set(names)) != len(names):
            raise InputError(opt, "lists a name twice")
        getattr(w, opt).extend(names)

    if mode == "staged":
        _staged_options(params, w)
    else:
        if params.get("staging_contexts"):
            raise InputError("staging_contexts", "is for mode=staged; mode=in_place writes into context_index")
        if params.get("context_index") is None:
            raise InputError("context_index", "is required with mode=in_place (or give staging_contexts for the"
                                              " recommended mode=staged)")
        w.index = check_index(params.get("context_index"))
        if params.get("context_name"):
            w.name = _ini.check_context_name(params["context_name"], "context_name")
        if w.index == 0 and not w.allow_management_context:
            # sbc-apis.md A4: "OAMP Web/REST on the default management interface always uses context 0".
            raise InputError("context_index", "0 is the 'default' TLS context, which also serves the device's"
                                              " management interface (Web and this REST API): writing to it changes"
                                              " the management certificate too. Set allow_management_context=true"
                                              " to do that deliberately, or use another context.")
    if state == "rollback":
        if params.get("rollback_to") is not None:
            w.rollback_to = check_index(params["rollback_to"], "rollback_to")
        if not w.sip_interfaces and not w.proxy_sets:
            raise InputError("sip_interfaces", "state=rollback re-binds SIP Interfaces and Proxy Sets: give at least"
                                               " one in sip_interfaces or proxy_sets")
        return w  # a rollback writes no material: certificate options are not used
    elif params.get("rollback_to") is not None:
        raise InputError("rollback_to", "is only used with state=rollback")

    _material(params, w)
    if mode == "staged":
        if w.leaf is None:
            raise InputError("certificate", "mode=staged installs a complete context: certificate and private_key are"
                                            " required")
        if not w.sip_interfaces and not w.proxy_sets:
            raise InputError("sip_interfaces", "mode=staged binds the staged context to the SIP Interfaces and Proxy"
                                               " Sets given: name at least one in sip_interfaces or proxy_sets")
    if w.roots_mode == "exact" and not w.trusted:
        w.warnings.append("trusted_roots_mode=exact with no chain and no trusted_roots: the REST API cannot empty a"
                          " trusted root store, so the store is left as it is.")
    return w


def _staged_options(params: dict, w: Wanted) -> None:
    pair = params.get("staging_contexts") or []
    if params.get("context_index") is not None:
        raise InputError("context_index", "is for mode=in_place; mode=staged uses the two staging_contexts")
    if len(pair) != 2:
        raise InputError("staging_contexts", f"needs exactly two TLS context indexes (an A/B pair), got {len(pair)}")
    for i in pair:
        check_index(i, "staging_contexts")
    if pair[0] == pair[1]:
        raise InputError("staging_contexts", "the two indexes must differ")
    if 0 in pair:
        # sbc-apis.md A4: context 0 always serves the management interface (and every SIP Interface without a
        # context), so it is never a context that "nothing is bound to".
        raise InputError("staging_contexts", "cannot hold 0: context 0 ('default') always serves the management"
                                             " interface, so it can never be staged into without affecting traffic."
                                             " Pick two other indexes (1-99).")
    w.pair = (pair[0], pair[1])
    if not params.get("context_name"):
        raise InputError("context_name", "is required with mode=staged: the pair is named <context_name>-A and"
                                         " <context_name>-B")
    base = params["context_name"]
    _ini.check_context_name(base, "context_name")
    _ini.check_context_name(base + PAIR_SUFFIXES[0], "context_name")
    w.name = base


def _material(params: dict, w: Wanted) -> None:
    allow_expired_ca = bool(params.get("allow_expired_ca"))
    chain_certs: list = []
    if params.get("certificate"):
        m = _gate.server_material(certificate=params["certificate"], private_key=params.get("private_key"),
                                  passphrase=params.get("private_key_passphrase"), chain=params.get("chain"),
                                  allow_expired_ca=allow_expired_ca)
        w.warnings += m.warnings
        if m.key is None:
            raise InputError("private_key", "is required together with certificate")
        w.leaf, w.key = m.leaf, m.key
        w.key_pem = _pem.key_to_pem(m.key)
        # The intermediates plus any self-signed root given in chain (an anchor the peers may need).
        chain_certs = list(m.intermediates) + list(m.anchors)
        if _pem.is_ca(w.leaf):  # the gate refuses a CA as the leaf; kept as a belt-and-braces check
            raise InputError("certificate", "is a CA certificate")
    elif params.get("chain"):
        certs, warnings = _gate.ca_certificates(params["chain"], "chain", allow_expired=allow_expired_ca)
        chain_certs, w.warnings = certs, w.warnings + warnings
    extra: list = []
    for i, pem in enumerate(params.get("trusted_roots") or []):
        certs, warnings = _gate.ca_certificates(pem, f"trusted_roots[{i}]", allow_expired=allow_expired_ca)
        extra += certs
        w.warnings += warnings
    w.trusted = _dedupe(chain_certs + extra, {_pem.fingerprint(w.leaf)} if w.leaf is not None else None)
    if w.leaf is not None and w.leaf.issuer != w.leaf.subject and not any(c.subject == w.leaf.issuer for c in w.trusted):
        w.warnings.append(f"the issuer of the certificate ({w.leaf.issuer.rfc4514_string()}) is in neither chain"
                          " nor trusted_roots: the device cannot send it, so SIP peers must already have it.")


# ======================================================================================================= read ==
@dataclass
class Ctx:
    index: int
    name: str
    cert: t.Any = None
    key_valid: bool = False
    key_size: int = 0
    roots: list = field(default_factory=list)

    @property
    def usable(self) -> bool:
        """Holds a certificate and a key that matches it (sbc-apis.md A2 ``valid``): it can serve TLS."""
        return self.cert is not None and self.key_valid


@dataclass
class DeviceState:
    status: dict
    names: dict            # {index: name} of every context (from the INI)
    sip: dict              # {name: {"index", "tls_context", "mutual_auth"}}
    proxies: dict          # {name: {"index", "tls_context", ...}}
    contexts: dict = field(default_factory=dict)  # {index: Ctx} for the contexts read in detail

    @property
    def ha(self) -> str:
        return str(self.status.get("highAvailability", ""))

    @property
    def save_needed(self) -> bool:
        return str(self.status.get("saveNeeded", "false")).lower() == "true"

    @property
    def reset_needed(self) -> bool:
        return str(self.status.get("resetNeeded", "false")).lower() == "true"

    def index_of(self, name: str) -> int | None:
        return next((i for i, n in self.names.items() if n == name), None)

    def table(self, opt: str) -> dict:
        return self.sip if opt == "sip_interfaces" else self.proxies

    def users_of(self, index: int) -> list[str]:
        """Every SIP Interface and Proxy Set bound to context ``index`` by name (A4: bindings are by name). A SIP
        Interface without a context uses context 0 (A4 selection: "else default")."""
        name = self.names.get(index)
        out = [f"SIP Interface {n!r}" for n, r in sorted(self.sip.items())
               if (r["tls_context"] or (DEFAULT_CONTEXT if index == 0 else None)) == name]
        out += [f"Proxy Set {n!r}" for n, r in sorted(self.proxies.items()) if r["tls_context"] and
                r["tls_context"] == name]
        return out


def read_tables(client: AudioCodesClient) -> DeviceState:
    """``GET status`` and ``GET files/ini`` (A3: the INI is the dependable listing of contexts and bindings)."""
    status = client.status()
    tables = _ini.parse_tables(client.ini())
    return DeviceState(status=status, names=_ini.tls_contexts(tables), sip=_ini.bindings(tables, "SIPInterface"),
                       proxies=_ini.bindings(tables, "ProxySet"))


def read_context(client: AudioCodesClient, index: int, name: str) -> Ctx:
    certs = _device_certs(client.certificate(index), client, index, "certificate")
    key = client.private_key_status(index)
    roots = _device_certs(client.trusted_roots(index), client, index, "trustedRoot")
    return Ctx(index=index, name=name, cert=certs[0] if certs else None, key_valid=key["valid"],
               key_size=key["size"], roots=roots)


def contexts_to_read(w: Wanted, s: DeviceState) -> list[int]:
    """Which contexts the plan needs in detail: the target(s), and the ones now serving the given bindings (their
    trusted roots are carried over in staged mode, and they are what a rollback would go back to)."""
    want = set()
    if w.index is not None:
        want.add(w.index)
    want.update(w.pair or ())
    if w.rollback_to is not None:
        want.add(w.rollback_to)
    if w.mode == "staged":
        want.update(_serving_given(w, s))
    return sorted(i for i in want if i in s.names)


def read_device(client: AudioCodesClient, w: Wanted) -> DeviceState:
    s = read_tables(client)
    for i in contexts_to_read(w, s):
        s.contexts[i] = read_context(client, i, s.names[i])
    return s


def _device_certs(pem: str | None, client: AudioCodesClient, index: int, what: str) -> list:
    if not pem or not pem.strip():
        return []
    try:
        return _pem.load_certificates(pem, what)
    except InputError as exc:
        raise ApiError(f"The AudioCodes device at {client.base} returned an unreadable files/tls/{index}/{what}:"
                       f" {exc.msg}") from None


# ======================================================================================================= plan ==
@dataclass
class Step:
    kind: str          # create | key | cert | roots | root | verify | ha | bind | save
    text: str          # what will be done (the ``actions`` list)
    done: str          # what was done (``completed_steps``)
    index: int | None = None
    data: t.Any = None


@dataclass
class Plan:
    steps: list = field(default_factory=list)
    target: int | None = None              # the context that holds the material / serves after the run
    target_name: str | None = None
    created: bool = False
    after: dict = field(default_factory=dict)  # {index: Ctx} predicted
    sip_after: dict = field(default_factory=dict)
    proxies_after: dict = field(default_factory=dict)
    serving_before: list = field(default_factory=list)  # indexes serving the given bindings before the run
    previous: int | None = None           # what a rollback would re-bind to after the run
    warnings: list = field(default_factory=list)
    writes_serving_context: bool = False

    @property
    def actions(self) -> list[str]:
        return [s.text for s in self.steps if s.kind not in ("verify", "ha")]

    @property
    def changes(self) -> bool:
        return any(s.kind not in ("verify", "ha", "save") for s in self.steps)


def _check_bindings_exist(w: Wanted, s: DeviceState, base: str) -> None:
    for opt, _table, _col, _label in TABLES:
        table = s.table(opt)
        missing = [n for n in getattr(w, opt) if n not in table]
        if missing:
            raise NotFound(f"{opt}: {', '.join(missing)} not found on {base} (existing:"
                           f" {', '.join(sorted(table)) or 'none'}); nothing was changed.", missing=missing)


def _serving_given(w: Wanted, s: DeviceState) -> list[int]:
    """The contexts the given SIP Interfaces / Proxy Sets use now (A4: a SIP Interface without a context uses 0;
    a Proxy Set without one uses its SIP Interface's, so it adds nothing here)."""
    out = set()
    for n in w.sip_interfaces:
        row = s.sip.get(n)
        if row is not None:
            idx = s.index_of(row["tls_context"]) if row["tls_context"] else 0
            if idx is not None:
                out.add(idx)
    for n in w.proxy_sets:
        row = s.proxies.get(n)
        if row is not None and row["tls_context"]:
            idx = s.index_of(row["tls_context"])
            if idx is not None:
                out.add(idx)
    return sorted(out)


def _roots_ok(have: list, need: list, mode: str) -> bool:
    if mode == "exact" and need:
        return _fps(have) == _fps(need)
    return _fps(need) <= _fps(have)


def _holds(ctx: Ctx | None, w: Wanted, roots: list) -> bool:
    return (ctx is not None and ctx.usable and _pem.fingerprint(ctx.cert) == _pem.fingerprint(w.leaf)
            and _roots_ok(ctx.roots, roots, w.roots_mode))


def _bind_step(w: Wanted, s: DeviceState, name: str, plan: Plan) -> None:
    rows = {}
    plan.sip_after = {k: dict(v) for k, v in s.sip.items()}
    plan.proxies_after = {k: dict(v) for k, v in s.proxies.items()}
    names = []
    for opt, table, column, label in TABLES:
        current, after = s.table(opt), (plan.sip_after if opt == "sip_interfaces" else plan.proxies_after)
        todo = {current[n]["index"]: name for n in getattr(w, opt) if current[n]["tls_context"] != name}
        for n in getattr(w, opt):
            after[n]["tls_context"] = name
            if current[n]["tls_context"] != name:
                names.append(f"{label} {n!r}")
        rows[table] = (column, todo)
    if names:
        plan.steps.append(Step("bind", f"bind {', '.join(names)} to TLS context {name!r} (one write)",
                               f"bound {', '.join(names)} to {name!r}", data=rows))


def _save_step(w: Wanted, s: DeviceState, plan: Plan) -> None:
    if w.save and (plan.changes or s.save_needed):
        plan.steps.append(Step("save", "save the configuration (saveConfiguration)", "saved the configuration"))


def _material_steps(w: Wanted, s: DeviceState, plan: Plan, index: int, name: str, roots: list, *,
                    replace_roots: bool) -> Ctx:
    """Steps that make context ``index`` hold the wanted key, certificate and ``roots``; returns it as predicted."""
    ctx = s.contexts.get(index)
    if index not in s.names:
        plan.steps.append(Step("create", f"create TLS context {index} {name!r}", f"created TLS context {index} {name!r}",
                               index=index, data=name))
        plan.created = True
        ctx = None
    after = Ctx(index=index, name=name, cert=ctx.cert if ctx else None, key_valid=ctx.key_valid if ctx else False,
                key_size=ctx.key_size if ctx else 0, roots=list(ctx.roots) if ctx else [])
    if w.leaf is not None and (after.cert is None or _pem.fingerprint(after.cert) != _pem.fingerprint(w.leaf)
                               or not after.key_valid):
        plan.steps.append(Step("key", f"upload private key to context {index}", f"uploaded the private key to context"
                                                                                f" {index}", index=index))
        plan.steps.append(Step("cert", f"upload certificate {_pem.fingerprint(w.leaf)} to context {index}",
                               f"uploaded the certificate to context {index}", index=index))
        after.cert, after.key_valid = w.leaf, True
    if roots and not _roots_ok(after.roots, roots, "exact" if replace_roots else "present"):
        if replace_roots:
            plan.steps.append(Step("roots", f"replace trusted roots of context {index} with "
                                   + ", ".join(_short(c) for c in roots),
                                   f"replaced the trusted roots of context {index} ({len(roots)})", index=index,
                                   data=list(roots)))
            after.roots = list(roots)
        else:
            add = [c for c in roots if _pem.fingerprint(c) not in _fps(after.roots)]
            plan.steps.append(Step("root", f"add trusted roots to context {index}: "
                                   + ", ".join(_short(c) for c in add),
                                   f"added {len(add)} trusted root(s) to context {index}", index=index, data=add))
            after.roots = after.roots + add
    if any(st.kind in ("key", "cert", "roots", "root") for st in plan.steps if st.index == index):
        plan.steps.append(Step("verify", f"verify context {index}", f"verified context {index}", index=index,
                               data={"leaf": w.leaf, "roots": roots}))
    plan.after[index] = after
    return after


def plan_in_place(w: Wanted, s: DeviceState, base: str = "the device") -> Plan:
    """Write into ``w.index`` (creating it if missing), then bind and save. The original behaviour."""
    plan = Plan()
    index = w.index
    exists = index in s.names
    if exists and w.name and s.names[index] != w.name:
        raise InputError("context_name", f"TLS context {index} on {base} is named {s.names[index]!r}, not"
                                         f" {w.name!r}; nothing was changed. Fix context_index or context_name so"
                                         " that they name the same context.")
    if not exists:
        if not w.name:
            raise NotFound(f"TLS context {index} does not exist on {base} (existing:"
                           f" {', '.join(f'{i}={n}' for i, n in sorted(s.names.items())) or 'none'});"
                           " set context_name to create it.", context_index=index)
        clash = s.index_of(w.name)
        if clash is not None:
            raise InputError("context_name", f"{w.name!r} is already the name of TLS context {clash} on"
                                             f" {base}; use context_index {clash} or another name.")
    _check_bindings_exist(w, s, base)
    name = s.names.get(index, w.name)
    plan.target, plan.target_name = index, name
    plan.serving_before = [index] if exists else []
    replace = w.roots_mode == "exact"
    _material_steps(w, s, plan, index, name, w.trusted, replace_roots=replace)
    writes_material = any(st.kind in ("key", "cert", "roots", "root") for st in plan.steps)
    users = s.users_of(index) if exists else []
    if any(st.kind == "key" for st in plan.steps) and (users or index == 0):
        plan.writes_serving_context = True
        plan.warnings.append(
            f"mode=in_place writes a new key and certificate into TLS context {index} {name!r}, which serves"
            f" {', '.join(users) or 'the management interface'}: between the key and the certificate write it"
            " serves no TLS (sbc-apis.md A2/E2). Use mode=staged with staging_contexts to install without an outage.")
    if index == 0 and writes_material:
        plan.warnings.append("TLS context 0 ('default') also serves the management interface (Web and REST API):"
                             " the management certificate changes with it (allow_management_context=true). The"
                             " requests after the certificate write already meet the new certificate, so ca_path"
                             " must trust its issuer and it must carry the management host name.")
    _bind_step(w, s, name, plan)
    _save_step(w, s, plan)
    return plan


def plan_staged(w: Wanted, s: DeviceState, base: str = "the device") -> Plan:
    """Stage into the member of the pair that nothing is bound to, verify, re-bind in one write, save."""
    plan = Plan()
    a, b = w.pair
    for i in (a, b):
        if i in s.names and s.names[i] != w.pair_name(i):
            raise InputError("staging_contexts", f"TLS context {i} on {base} is named {s.names[i]!r}, but with"
                                                 f" context_name {w.name!r} mode=staged expects {w.pair_name(i)!r}."
                                                 " Nothing was changed: staged mode writes only into the two contexts"
                                                 " of its own pair. Pick free indexes or the matching context_name.")
        clash = s.index_of(w.pair_name(i))
        if clash is not None and clash != i:
            raise InputError("context_name", f"{w.pair_name(i)!r} is already the name of TLS context {clash} on"
                                             f" {base}, not of {i}; nothing was changed.")
    _check_bindings_exist(w, s, base)
    serving = _serving_given(w, s)
    plan.serving_before = serving
    # The roots the staged context needs: present keeps whatever the serving context(s) trust now (other peers
    # may need them), plus the wanted ones; exact is exactly the wanted ones.
    carried: list = []
    if w.roots_mode == "present":
        for i in serving:
            if i in s.contexts:
                carried += s.contexts[i].roots
    roots = _dedupe(carried + w.trusted)

    holding = [i for i in (a, b) if _holds(s.contexts.get(i), w, roots)]
    if holding:
        target = next((i for i in holding if i in serving), holding[0])
        plan.after[target] = s.contexts[target]
    else:
        free = [i for i in (a, b) if i not in s.names or not s.users_of(i)]
        if not free:
            raise InputError("staging_contexts", f"both TLS contexts of the pair serve traffic ({a}"
                                                 f" {s.names[a]!r}: {', '.join(s.users_of(a))}; {b} {s.names[b]!r}:"
                                                 f" {', '.join(s.users_of(b))}), and mode=staged never writes into a"
                                                 " context that serves traffic. Nothing was changed. Bind everything"
                                                 " to one of them (or roll back), then re-run.")

        def age(i):  # an empty or broken context first, then the one with the older certificate
            c = s.contexts.get(i)
            return (1 if c is not None and c.usable else 0,
                    c.cert.not_valid_before_utc.timestamp() if c is not None and c.usable else 0, i)

        target = sorted(free, key=age)[0]
        # The target is bound to nothing, so nothing it serves: A/B staging never writes to a serving context.
        _material_steps(w, s, plan, target, w.pair_name(target), roots, replace_roots=True)
        plan.steps.append(Step("ha", "check that the HA pair is still in sync", "HA in sync", index=target))
    plan.target, plan.target_name = target, w.pair_name(target)
    _bind_step(w, s, plan.target_name, plan)
    _save_step(w, s, plan)
    plan.previous = rollback_target(w, s, plan.after, plan.target)
    return plan


def rollback_target(w: Wanted, s: DeviceState, after: dict | None = None, serving: int | None = None) -> int | None:
    """What ``state=rollback`` (without ``rollback_to``) re-binds to: of the pair's contexts that hold a usable
    key and certificate, the one whose certificate is older (earlier notBefore; index breaks a tie). It does not
    depend on the current bindings, so a rollback run twice does not flip back. ``None`` when that is the one
    ``serving`` (nothing to go back to) or when no context qualifies."""
    ctxs = {i: c for i, c in s.contexts.items() if w.pair and i in w.pair}
    ctxs.update({i: c for i, c in (after or {}).items() if w.pair and i in w.pair})
    usable = [c for c in ctxs.values() if c.usable]
    if not usable:
        return None
    pick = sorted(usable, key=lambda c: (c.cert.not_valid_before_utc.timestamp(), c.index))[0].index
    return None if pick == serving else pick


def plan_rollback(w: Wanted, s: DeviceState, base: str = "the device") -> Plan:
    """Re-bind the given SIP Interfaces and Proxy Sets to the previous context. Writes no material."""
    plan = Plan()
    _check_bindings_exist(w, s, base)
    plan.serving_before = _serving_given(w, s)
    if w.rollback_to is not None:
        target = w.rollback_to
        if target not in s.names:
            raise NotFound(f"rollback_to: TLS context {target} does not exist on {base}; nothing was changed.")
    else:
        for i in w.pair:
            if i in s.names and s.names[i] != w.pair_name(i):
                raise InputError("staging_contexts", f"TLS context {i} on {base} is named {s.names[i]!r}, not"
                                                     f" {w.pair_name(i)!r}; nothing was changed.")
        target = rollback_target(w, s)
        if target is None:
            raise NotFound(f"Nothing to roll back to on {base}: neither TLS context of the pair"
                           f" {w.pair[0]}/{w.pair[1]} holds a usable key and certificate; nothing was changed.")
    ctx = s.contexts.get(target)
    if ctx is None or not ctx.usable:
        raise ApiError(f"TLS context {target} on {base} holds no usable key and certificate (privateKey.valid"
                       f" {ctx.key_valid if ctx else False}); re-binding to it would stop TLS. Nothing was changed.")
    plan.target, plan.target_name = target, s.names[target]
    plan.after[target] = ctx
    _bind_step(w, s, plan.target_name, plan)
    _save_step(w, s, plan)
    plan.previous = None
    return plan


def make_plan(w: Wanted, s: DeviceState, base: str = "the device") -> Plan:
    if w.state == "rollback":
        return plan_rollback(w, s, base)
    if w.mode == "staged":
        return plan_staged(w, s, base)
    return plan_in_place(w, s, base)


# ====================================================================================================== apply ==
def apply(client: AudioCodesClient, w: Wanted, s: DeviceState, plan: Plan, done: list[str]) -> None:
    """Run the steps in order; ``done`` collects what was completed (for the error message). A step that fails is
    named in the message (``Step 'upload private key to context 2' failed: ...``, detail ``failed_step``), so that
    a pipeline can say which deploy step failed without parsing request paths."""
    for st in plan.steps:
        try:
            _apply_step(client, w, s, st)
        except ByocError as exc:
            exc.msg = f"Step '{st.text}' failed: {exc.msg}"
            exc.args = (exc.msg,)
            exc.details["failed_step"] = st.text
            raise
        done.append(st.done)


def _apply_step(client: AudioCodesClient, w: Wanted, s: DeviceState, st: Step) -> None:
    """One step of a plan: the I/O of its kind."""
    base = f"files/tls/{st.index}"
    if st.kind == "create":
        # sbc-apis.md A4: no per-table CRUD; a context is created with an incremental INI (no reset).
        client.upload("files/ini/incremental", "tls-context.ini",
                      _ini.incremental("TLSContexts", "Name", {st.index: st.data}))
    elif st.kind == "key":
        # sbc-apis.md A2: key first, then certificate (the order every public script uses).
        client.upload(f"{base}/privateKey", "key.pem", w.key_pem)
    elif st.kind == "cert":
        client.upload(f"{base}/certificate", "cert.pem", _pem.to_pem(w.leaf))
    elif st.kind == "roots":
        # A2: PUT trustedRoot replaces the whole store with the certificates one after another.
        client.upload(f"{base}/trustedRoot", "trust.pem", "".join(_pem.to_pem(c) for c in st.data))
    elif st.kind == "root":
        for c in st.data:  # A2: /incremental adds one certificate per call
            client.upload(f"{base}/trustedRoot/incremental", "trust.pem", _pem.to_pem(c))
    elif st.kind == "verify":
        _verify(client, st.index, st.data["leaf"], st.data["roots"])
    elif st.kind == "ha":
        _verify_ha(client, s)
    elif st.kind == "bind":
        # ONE write for every SIP Interface and Proxy Set (issue 9 section 4; A4 incremental INI).
        client.upload("files/ini/incremental", "bind.ini", _ini.incremental_tables(st.data))
    elif st.kind == "save":
        client.save_configuration()


def _verify(client: AudioCodesClient, index: int, leaf, roots: list) -> None:
    """sbc-apis.md E2 / G: after uploading, ``privateKey.valid`` must be true and the certificate must read back
    as the one sent (by fingerprint); the trusted roots must contain what was written."""
    if leaf is not None:
        key_status = client.private_key_status(index)
        certs = _device_certs(client.certificate(index), client, index, "certificate")
        got = _pem.fingerprint(certs[0]) if certs else None
        if got != _pem.fingerprint(leaf) or not key_status["valid"]:
            raise ApiError(
                f"After the upload, TLS context {index} on {client.base} does not hold the new material: certificate"
                f" read back {got or 'none'} (expected {_pem.fingerprint(leaf)}), privateKey.valid"
                f" {key_status['valid']}.", certificate_read_back=got, private_key_valid=key_status["valid"])
    if roots:
        installed = _device_certs(client.trusted_roots(index), client, index, "trustedRoot")
        have = _fps(installed)
        missing = [_short(c) for c in roots if _pem.fingerprint(c) not in have]
        if missing:
            raise ApiError(f"After the upload, the trusted roots of TLS context {index} on {client.base} lack:"
                           f" {', '.join(missing)}.", missing_trusted_roots=missing)


def _verify_ha(client: AudioCodesClient, s: DeviceState) -> None:
    """sbc-apis.md A5/A6: the change reaches the redundant unit only while the pair is ``Operational``. A pair that
    was Operational when the run started must still be before anything is re-bound to the staged context."""
    if s.ha != "Operational":
        return
    now = str(client.status().get("highAvailability", ""))
    if now != "Operational":
        raise ApiError(f"The HA pair at {client.base} reported highAvailability {now!r} after staging (it was"
                       " 'Operational' when the run started): the redundant unit may not hold the staged material,"
                       " so nothing was re-bound.", high_availability=now)


# ===================================================================================================== module ==
def _ctx_view(ctx: Ctx | None, index: int, name: str | None) -> dict:
    return {
        "name": name,
        "certificate": _summary(ctx.cert) if ctx is not None and ctx.cert is not None else None,
        "private_key_valid": bool(ctx.key_valid) if ctx is not None else False,
        "trusted_roots": sorted(_short(c) for c in ctx.roots) if ctx is not None else [],
    }


def view(contexts: dict, names: dict, sip: dict, proxies: dict, save_needed: bool) -> dict:
    """What diff shows: identities only, never key material. ``contexts`` {index: Ctx}."""
    return {
        "contexts": {str(i): _ctx_view(contexts.get(i), i, names.get(i)) for i in sorted(set(contexts) | set(names))},
        "sip_interfaces": {k: v["tls_context"] for k, v in sorted(sip.items())},
        "proxy_sets": {k: v["tls_context"] for k, v in sorted(proxies.items())},
        "save_needed": save_needed,
    }


def _ctx_ref(s: DeviceState, ctxs: dict, index: int | None) -> dict | None:
    if index is None:
        return None
    ctx = ctxs.get(index) or s.contexts.get(index)
    return {"index": index, "name": ctx.name if ctx else s.names.get(index),
            "certificate": _summary(ctx.cert) if ctx is not None and ctx.cert is not None else None}


def _left_where(w: Wanted, s: DeviceState, plan: Plan, done: list[str]) -> str:
    serving = ", ".join(f"{i} {s.names.get(i)!r}" for i in plan.serving_before) or "none"
    binding = {st.kind for st in plan.steps if st.done in done}
    if w.state == "rollback":
        return (" Nothing was re-bound: the SIP Interfaces and Proxy Sets still use TLS context(s) " + serving + "."
                if "bind" not in binding else " The re-bind was applied but not saved; re-run to save it.")
    if w.mode == "staged" and "bind" not in binding:
        return (f" Nothing that serves traffic was changed: the SIP Interfaces and Proxy Sets still use TLS"
                f" context(s) {serving}. The staging context {plan.target} {plan.target_name!r}, which nothing is"
                f" bound to, holds what was done so far ({'; '.join(done) or 'nothing'}). Re-run the task to finish;"
                " it continues from what is there.")
    if done:
        return (f" Already applied to the device's running configuration: {'; '.join(done)}. The configuration was"
                " not saved; re-run the task to finish (it compares by fingerprint and redoes only what is"
                " missing).")
    return ""


def ensure(module: t.Any, *, sleep=None) -> dict:
    """The whole ``audiocodes_tls_context`` run. Returns the module result."""
    p = module.params
    w = wanted_from_params(p)
    for msg in w.warnings:
        module.warn(msg)
    kw = {"sleep": sleep} if sleep else {}
    client = AudioCodesClient(p, sync_retries=p.get("sync_retries", 10), sync_delay=p.get("sync_delay", 5.0),
                              warn=module.warn, **kw)
    s = read_device(client, w)

    # HA gate (sbc-apis.md A5 highAvailability; A6; G "Gate on HA healthy").
    if w.require_ha and s.ha != "Operational":
        raise ApiError(f"The AudioCodes device at {client.base} reports highAvailability {s.ha!r}, not 'Operational',"
                       " and require_ha is true: nothing was changed. Bring the redundant unit back (or set"
                       " require_ha to false to write to the active unit alone; the redundant unit then gets the"
                       " configuration when it re-synchronises).", high_availability=s.ha)

    plan = make_plan(w, s, client.base)
    for msg in plan.warnings:
        module.warn(msg)
    done: list[str] = []
    if plan.steps and not module.check_mode:
        try:
            apply(client, w, s, plan, done)
        except ByocError as exc:
            exc.msg += _left_where(w, s, plan, done)
            exc.details["completed_steps"] = done
            exc.details.setdefault("sync_retries", client.sync_waits)
            exc.details.setdefault("previous", _ctx_ref(s, {}, _rollback_now(w, s, plan)))
            raise

    actions = plan.actions
    do_save = any(st.kind == "save" for st in plan.steps)
    if module.check_mode or not actions:
        save_needed_after = (s.save_needed or plan.changes) and not do_save
        reset_needed = s.reset_needed
    else:
        status_after = client.status()
        save_needed_after = str(status_after.get("saveNeeded", "false")).lower() == "true"
        reset_needed = str(status_after.get("resetNeeded", "false")).lower() == "true"
        if do_save and save_needed_after:
            module.warn("saveConfiguration succeeded but the device still reports saveNeeded: true")
    if reset_needed:
        module.warn("The device reports resetNeeded: true; some changes take effect only after a reset"
                    " (sbc-apis.md E4).")

    target = plan.after.get(plan.target) or s.contexts.get(plan.target)
    names_after = dict(s.names)
    if plan.target is not None:
        names_after[plan.target] = plan.target_name
    ctxs_after = {**s.contexts, **plan.after}
    result: dict[str, t.Any] = {
        "changed": bool(actions), "actions": actions, "mode": "rollback" if w.state == "rollback" else w.mode,
        "high_availability": s.ha,
        "context": {"index": plan.target, "name": plan.target_name, "created": plan.created},
        "certificate": _pem.details(target.cert) if target is not None and target.cert is not None else None,
        "private_key_valid": bool(target.key_valid) if target is not None else False,
        "trusted_roots": [_summary(c) for c in (target.roots if target is not None else [])],
        "serving_before": [_ctx_ref(s, s.contexts, i) for i in plan.serving_before],
        "previous": _ctx_ref(s, ctxs_after, plan.previous),
        "saved": bool(do_save and not module.check_mode),
        "save_needed": save_needed_after,
        "reset_needed": reset_needed,
        "sync_retries": client.sync_waits,
    }
    if module._diff:
        shown = sorted(set(contexts_to_read(w, s)) | ({plan.target} if plan.target is not None else set()))
        result["diff"] = {
            "before": view({i: s.contexts[i] for i in shown if i in s.contexts},
                           {i: s.names[i] for i in shown if i in s.names}, s.sip, s.proxies, s.save_needed),
            "after": view({i: ctxs_after[i] for i in shown if i in ctxs_after},
                          {i: names_after[i] for i in shown if i in names_after},
                          plan.sip_after or s.sip, plan.proxies_after or s.proxies, save_needed_after),
        }
    return result


def _rollback_now(w: Wanted, s: DeviceState, plan: Plan) -> int | None:
    """After a failure: what a rollback would go back to given what is known (the run did not re-bind)."""
    if w.pair is None or w.state == "rollback":
        return None
    serving = plan.serving_before[0] if len(plan.serving_before) == 1 else None
    return rollback_target(w, s, None, serving)


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
        "sip_interfaces": [{"name": n, "tls_context": v["tls_context"] or DEFAULT_CONTEXT,
                            "mutual_authentication": v.get("mutual_auth")} for n, v in sorted(sip.items())],
        "status": {
            "high_availability": ha, "ha_operational": ha == "Operational",
            "save_needed": str(status.get("saveNeeded", "false")).lower() == "true",
            "reset_needed": str(status.get("resetNeeded", "false")).lower() == "true",
            "product_type": status.get("productType"), "version": status.get("versionID"),
            "serial_number": status.get("serialNumber"), "operational_state": status.get("operationalState"),
        },
        "alarms": alarms,
    }
