"""The state of one emulated AudioCodes Mediant device (a standalone unit, or an HA pair behind one floating
management address), with no HTTP in it, so that the rules can be read (and unit tested) in one place.

Every rule cites its fact in ``shared/reference/sbc-apis.md`` (section A, E, G). Where the reference marks a fact
UNCONFIRMED, the emulator takes the stricter choice and says so next to the code.

Model (sbc-apis.md G "Emulator model"): a device has one or two *units*. Each unit has a ``running`` configuration
(RAM) and a ``saved`` one (flash). A configuration is a plain dict::

    {"contexts": {index: {"name", "tls_version", "cert_pem", "key_pem", "key_size", "trusted_roots": [pem]}},
     "sip_interfaces": {index: {"name", "tls_context", "mutual_auth"}},
     "proxy_sets": {index: {"name", "tls_context"}}}
"""

from __future__ import annotations

import copy
import hashlib
import re
import threading
import typing as t

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

# sbc-apis.md A4: "Up to 100 TLS Contexts; index 0 'default' ... cannot be deleted".
MAX_CONTEXTS = 100

# The index of the TLS context that holds a seeded SIP certificate (lab fleet mode, ``sip_seed``): an operator's
# context, away from the indexes the collection stages into by default (1 and 2).
SEED_CONTEXT = 10

# sbc-apis.md A1: privilege levels of the Local Users table; minimum level per top-level directory.
LEVELS = {"monitor": 1, "admin": 2, "secadmin": 3}
DIRECTORY_LEVEL = {"actions": "admin", "alarms": "monitor", "files": "admin", "kpi": "monitor",
                   "license": "admin", "sipTestCall": "monitor", "status": "monitor"}

# sbc-apis.md A6 / G: every write during HA synchronisation gets 409 with this description.
SYNC_DESCRIPTION = "Device is currently performing HA synchronization"

_CERT_RE = re.compile(r"-----BEGIN CERTIFICATE-----[A-Za-z0-9+/=\s]+?-----END CERTIFICATE-----")
_KEY_RE = re.compile(r"-----BEGIN (?:[A-Z]+ )?PRIVATE KEY-----.+?-----END (?:[A-Z]+ )?PRIVATE KEY-----", re.S)


class DeviceError(Exception):
    """An API-level refusal: HTTP status plus the ``description`` the device puts in its JSON body."""

    def __init__(self, status: int, description: str) -> None:
        super().__init__(description)
        self.status = status
        self.description = description


def parse_certs(pem: str) -> list:
    out = []
    for block in _CERT_RE.findall(pem or ""):
        out.append(x509.load_pem_x509_certificate(block.encode("ascii")))
    return out


def fp(cert) -> str:
    return hashlib.sha256(cert.public_bytes(serialization.Encoding.DER)).hexdigest()


def to_pem(cert) -> str:
    return cert.public_bytes(serialization.Encoding.PEM).decode("ascii")


def _pub(obj) -> bytes:
    return obj.public_key().public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)


def new_context(name: str) -> dict:
    return {"name": name, "tls_version": 0, "cert_pem": "", "key_pem": "", "key_size": 0, "trusted_roots": []}


def factory_config(default_cert_pem: str, default_key_pem: str, mutual_auth: int = 0,
                   sip_seed: tuple[str, str] | None = None) -> dict:
    """sbc-apis.md A4: context 0 "default" ships with a self-signed certificate CN ``ACL_<serial>``. One SIP
    Interface and one Proxy Set, not bound to any context (A4 selection: then the default context 0 is used).
    ``mutual_auth`` is the SIP Interface's ``TLSMutualAuthentication`` column (A4); the lab turns it on for one
    device, as that device's configuration (so a factory reset keeps it)."""
    ctx0 = new_context("default")
    ctx0["cert_pem"], ctx0["key_pem"] = default_cert_pem, default_key_pem
    ctx0["key_size"] = _key_size(serialization.load_pem_private_key(default_key_pem.encode(), None))
    conf = {
        "contexts": {0: ctx0},
        "sip_interfaces": {0: {"name": "SIPInterface_0", "tls_context": "", "mutual_auth": int(mutual_auth)}},
        "proxy_sets": {0: {"name": "ProxySet_0", "tls_context": ""}},
    }
    if sip_seed:
        # Lab fleet mode: the device was configured before the lab started with a certificate of its own for SIP
        # (for example one that has expired): TLS context SEED_CONTEXT holds it and the SIP Interface and Proxy Set are bound to
        # it by name (sbc-apis.md A4: a SIP Interface / Proxy Set selects its TLS context; context 0 stays the OAMP
        # one). Part of the device's configuration, like ``mutual_auth``, so a factory reset keeps it.
        seed = new_context("lab-initial")
        seed["cert_pem"], seed["key_pem"] = sip_seed
        seed["key_size"] = _key_size(serialization.load_pem_private_key(sip_seed[1].encode(), None))
        conf["contexts"][SEED_CONTEXT] = seed
        conf["sip_interfaces"][0]["tls_context"] = "lab-initial"
        conf["proxy_sets"][0]["tls_context"] = "lab-initial"
    return conf


def _key_size(key) -> int:
    return key.key_size if isinstance(key, (rsa.RSAPrivateKey, ec.EllipticCurvePrivateKey)) else 0


def key_valid(ctx: dict) -> bool:
    """sbc-apis.md A2: ``valid`` is "as per 'Private Key' status in Web"; E2: a key/cert mismatch shows only
    here. Valid = a key is loaded and it matches the public key of the loaded certificate (G)."""
    if not ctx["key_pem"] or not ctx["cert_pem"]:
        return False
    key = serialization.load_pem_private_key(ctx["key_pem"].encode(), None)
    certs = parse_certs(ctx["cert_pem"])
    return bool(certs) and _pub(key) == _pub(certs[0])


class Device:
    """One management endpoint. ``ha`` = an HA pair (two units, the management address follows the active)."""

    def __init__(self, *, name: str, ha: bool, users: dict[str, dict], default_cert_pem: str,
                 default_key_pem: str, serial: str, mutual_auth: bool = False,
                 sip_seed: tuple[str, str] | None = None) -> None:
        self.name = name
        self.ha = ha
        self.users = users  # {username: {"password", "level"}}
        self.serial = serial
        self.lock = threading.RLock()
        # Called (no arguments) when what the SIP-TLS port serves changes: the listener drops its sessions.
        self.tls_watchers: list[t.Callable[[], t.Any]] = []
        self._tls_seen: t.Any = None
        self._factory = factory_config(default_cert_pem, default_key_pem, 1 if mutual_auth else 0, sip_seed)
        self.factory_reset()

    # -- lifecycle ------------------------------------------------------------------------------------------
    def factory_reset(self) -> None:
        with self.lock:
            n = 2 if self.ha else 1
            self.units = [{"id": "A" if i == 0 else "B", "running": copy.deepcopy(self._factory),
                           "saved": copy.deepcopy(self._factory)} for i in range(n)]
            self.active = 0
            self.redundant_up = self.ha
            self.syncing = False          # persistent sync (until cleared)
            self.sync_writes = 0          # or: this many write attempts get 409
            self.sync_refusals = 0        # 409s answered so far (for tests)
            self.faults: list[dict] = []  # injected one-shot failures
            self.alarms: list[dict] = []
            self.resets = 0
            self.switchovers = 0
            self._tls_changed()

    @property
    def unit(self) -> dict:
        return self.units[self.active]

    @property
    def running(self) -> dict:
        return self.unit["running"]

    # -- auth -----------------------------------------------------------------------------------------------
    def authorize(self, username: str | None, password: str | None, path: str) -> None:
        """sbc-apis.md A1: HTTP Basic on every request, credentials of a Local User; the directory decides the
        minimum level; denied -> 403. Wrong or missing credentials -> 401 (INFER in A1; the emulator answers
        Basic only, as A1 says Basic is enough)."""
        user = self.users.get(username or "")
        if user is None or user["password"] != password:
            raise DeviceError(401, "Unauthorized")
        top = path[len("/api/v1/"):].split("/", 1)[0] if path.startswith("/api/v1/") else ""
        need = DIRECTORY_LEVEL.get(top, "admin")
        if LEVELS[user["level"]] < LEVELS[need]:
            raise DeviceError(403, f"Forbidden: {top or path} requires the {need} privilege level")

    # -- HA -------------------------------------------------------------------------------------------------
    def ha_state(self) -> str:
        """sbc-apis.md A5: ``highAvailability`` "Operational" when paired, "Not Operational" standalone.
        While synchronising: what the device shows is UNCONFIRMED; stricter choice: nothing changes here, so a
        client learns about the sync only from the 409 answers."""
        return "Operational" if self.ha and self.redundant_up else "Not Operational"

    def check_write(self, what: str) -> None:
        """sbc-apis.md A2/A4/A5/A6, E6: every write under /files and /actions gets 409 while the pair is
        synchronising (G: JSON ``description``)."""
        if self.syncing or self.sync_writes > 0:
            if self.sync_writes > 0:
                self.sync_writes -= 1
            self.sync_refusals += 1
            raise DeviceError(409, f"{what} can't be loaded due to current device state"
                                   f" (redundant board is synchronizing). {SYNC_DESCRIPTION}")

    def replicate(self) -> None:
        """sbc-apis.md A6 [DOC]: "Non-HA configuration on the active device is automatically updated on the
        redundant device"; [INFER] certificate, key and trusted-root writes included. Only the running
        configuration: whether saveConfiguration also burns the redundant's flash is UNCONFIRMED, so the
        stricter choice is made: it does not (see ``save``)."""
        if self.ha and self.redundant_up:
            other = self.units[1 - self.active]
            other["running"] = copy.deepcopy(self.running)
        self._tls_changed()

    def switchover(self) -> None:
        """sbc-apis.md A6: the redundant becomes active with the configuration it holds (what was replicated
        to it); the old active resets -- its RAM is lost, it restarts from its own flash -- and then, as the new
        redundant, is re-synchronised from the new active (A6 "the active device sends the redundant device its
        current configuration settings")."""
        if not self.ha:
            raise DeviceError(400, "switchover needs an HA pair")
        if not self.redundant_up:
            raise DeviceError(409, "the redundant unit is down; no switchover possible")
        old = self.active
        self.active = 1 - old
        self.switchovers += 1
        # The old active's RAM is gone with its reset; as the new redundant it receives the active's configuration.
        self.units[old]["running"] = copy.deepcopy(self.running)
        # sbc-apis.md 0.10: an HA switchover forces a re-handshake (DOC for Ribbon; for AudioCodes INFER -- the TLS
        # state of the old active is gone with it). Stricter choice: every established SIP-TLS session ends.
        self._tls_seen = None
        self._tls_changed()

    # -- actions --------------------------------------------------------------------------------------------
    def save(self) -> None:
        """sbc-apis.md A5: saves the running configuration to non-volatile memory; E5: unsaved changes are lost
        on a reset or switchover. Only the active unit's flash is written (stricter choice for the UNCONFIRMED
        "does save burn the redundant's flash", A6): after a switchover the new active reports saveNeeded."""
        self.check_write("configuration")
        self.unit["saved"] = copy.deepcopy(self.running)

    def reset(self, save_first: bool) -> None:
        """sbc-apis.md A5 "Reset Device": ``saveConfiguration`` (default true) saves before the reset; a reset
        loses unsaved changes (E5). The redundant is re-synchronised from the active afterwards (A6)."""
        self.check_write("reset")
        if save_first:
            self.unit["saved"] = copy.deepcopy(self.running)
        self.unit["running"] = copy.deepcopy(self.unit["saved"])
        self.resets += 1
        self._tls_seen = None  # a reset ends every connection
        self.replicate()

    def save_needed(self) -> bool:
        """sbc-apis.md A5: ``saveNeeded`` -- the running configuration differs from the saved one."""
        return self.running != self.unit["saved"]

    # -- TLS contexts ---------------------------------------------------------------------------------------
    def context(self, index: int) -> dict:
        if not 0 <= index < MAX_CONTEXTS:
            raise DeviceError(404, f"TLS context index {index} is out of range (0-{MAX_CONTEXTS - 1})")
        ctx = self.running["contexts"].get(index)
        if ctx is None:
            # UNCONFIRMED what the device answers for a context row that does not exist; stricter choice: refuse
            # (A1: "requested resources that do not have any content" -> 400).
            raise DeviceError(400, f"TLS context {index} does not exist")
        return ctx

    def put_private_key(self, index: int, pem: str, password: str | None) -> None:
        """sbc-apis.md A2: PUT privateKey, PEM; 400 "not in PEM format or has invalid size"; 409 while syncing.
        The optional ``password`` transport is UNCONFIRMED: it is accepted only as a multipart field; an
        encrypted key without it is refused (stricter)."""
        ctx = self.context(index)
        self.check_write("private key")
        match = _KEY_RE.search(pem or "")
        if not match:
            raise DeviceError(400, "Private key is not in PEM format or has invalid size")
        try:
            key = serialization.load_pem_private_key(match.group(0).encode(), password.encode() if password else None)
        except (TypeError, ValueError):
            raise DeviceError(400, "Private key is not in PEM format or has invalid size") from None
        size = _key_size(key)
        if isinstance(key, rsa.RSAPrivateKey) and size < 1024 or not size:
            raise DeviceError(400, "Private key is not in PEM format or has invalid size")
        # The device keeps the key; it can never be read back (A2 DOC). Stored unencrypted here.
        ctx["key_pem"] = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()).decode()
        ctx["key_size"] = size
        self.replicate()

    def put_certificate(self, index: int, pem: str) -> None:
        """sbc-apis.md A2: PUT certificate; 400 when not PEM; 409 while syncing. Whether the device rejects a
        certificate that does not match the loaded key is UNCONFIRMED: accepted, and ``valid`` turns false
        (A2 note, INFER). Whether a chain in this file is accepted and sent is UNCONFIRMED: stricter choice --
        only the first certificate is kept, so intermediates must go to the trusted roots (A2 "safe approach")."""
        ctx = self.context(index)
        self.check_write("certificate")
        try:
            certs = parse_certs(pem)
        except ValueError:
            certs = []
        if not certs:
            raise DeviceError(400, "Certificate is not in PEM format")
        ctx["cert_pem"] = to_pem(certs[0])
        self.replicate()

    def put_trusted_roots(self, index: int, pem: str, incremental: bool) -> None:
        """sbc-apis.md A2: PUT trustedRoot replaces the whole store with the certificates "one after another";
        PUT trustedRoot/incremental adds one certificate (G: de-duplicated by fingerprint, INFER). A file with
        more than one certificate on /incremental: the doc shows one; stricter choice -- refused with 400."""
        ctx = self.context(index)
        self.check_write("trusted root certificate")
        try:
            certs = parse_certs(pem)
        except ValueError:
            certs = []
        if not certs:
            raise DeviceError(400, "Trusted root certificate is not in PEM format")
        if incremental:
            if len(certs) != 1:
                raise DeviceError(400, "Only one certificate can be added at a time")
            have = {fp(c) for c in parse_certs("".join(ctx["trusted_roots"]))}
            if fp(certs[0]) not in have:
                ctx["trusted_roots"].append(to_pem(certs[0]))
        else:
            seen, roots = set(), []
            for c in certs:
                if fp(c) not in seen:
                    seen.add(fp(c))
                    roots.append(to_pem(c))
            ctx["trusted_roots"] = roots
        self.replicate()

    # -- what the SIP-TLS listener serves ------------------------------------------------------------------
    def _sip_context(self) -> tuple[dict, dict | None]:
        """sbc-apis.md A4 "TLS Context selection": incoming TLS on a SIP Interface uses its ``TLSContext``, else
        the default context 0. The emulator has one SIP-TLS port, that of ``SIPInterface_0``. Returns (the SIP
        Interface row, its context or None)."""
        conf = self.running
        sip = conf["sip_interfaces"].get(0, {})
        index = 0
        if sip.get("tls_context"):
            index = next((i for i, c in conf["contexts"].items() if c["name"] == sip["tls_context"]), None)
        return sip, conf["contexts"].get(index) if index is not None else None

    def sip_material(self) -> tuple[str, str] | None:
        """Served chain: the leaf, then its issuers found in the context's trusted root store (A2 safe approach:
        intermediates go there; INFER that the device builds the chain from it), self-signed roots left out.

        A context whose key does not match its certificate serves no TLS: the listener closes the connection.
        Facts: sbc-apis.md A2/E2 -- the key/cert match is reflected only in ``privateKey.valid`` ("as per 'Private
        Key' status in Web"), i.e. the device has no usable key pair; a TLS server cannot complete a handshake
        with a certificate whose private key it does not hold. Issue 9 section 4 records the field observation:
        between the key and the certificate write into a bound context, "SIP-TLS is dead on both units" (14.8 s
        with two 409 retries, every handshake reset). Whether the device would keep serving the OLD pair until
        the certificate arrives is not documented (E3 UNCONFIRMED); stricter choice: it does not."""
        with self.lock:
            _sip, ctx = self._sip_context()
            if ctx is None or not key_valid(ctx):
                return None
            leaf = parse_certs(ctx["cert_pem"])[0]
            pool = parse_certs("".join(ctx["trusted_roots"]))
            chain, cur = [leaf], leaf
            while cur.issuer != cur.subject:
                nxt = next((c for c in pool if c.subject == cur.issuer and c not in chain), None)
                if nxt is None or nxt.issuer == nxt.subject:
                    break
                chain.append(nxt)
                cur = nxt
            return "".join(to_pem(c) for c in chain), ctx["key_pem"]

    def sip_client_roots(self) -> str | None:
        """Mutual authentication (sbc-apis.md A4: SIP Interface column ``TLSMutualAuthentication``; issue 9
        section 2). Off -> ``None``. On -> the trusted roots of the context bound to the SIP Interface *as installed
        now* (A2: the context's trusted root store; the DESIGN-BRIEF: "against their trusted roots as installed at
        that moment"). The column's values are not in the reference (UNCONFIRMED): the emulator accepts 0 (off) and
        1 (on) only, see ini.py. A context with no roots gives "" -- every client is refused (stricter)."""
        with self.lock:
            sip, ctx = self._sip_context()
            if int(sip.get("mutual_auth") or 0) != 1:
                return None
            return "".join(ctx["trusted_roots"]) if ctx is not None else ""

    def _tls_changed(self) -> None:
        """sbc-apis.md A4: "If the TLS Context used for an existing TLS connection is changed ... the device ends the
        connection"; E3: whether a certificate upload into an in-use context resets connections is UNCONFIRMED --
        stricter choice: any change of what the SIP-TLS port serves (binding, key, certificate, trusted roots,
        mutual authentication) ends the established sessions, and clients must handshake again."""
        sip, ctx = self._sip_context()
        seen = (sip.get("tls_context"), sip.get("mutual_auth"),
                (ctx["cert_pem"], ctx["key_pem"], tuple(ctx["trusted_roots"])) if ctx is not None else None)
        if seen != self._tls_seen:
            self._tls_seen = seen
            for watcher in self.tls_watchers:
                watcher()

    # -- faults ---------------------------------------------------------------------------------------------
    def take_fault(self, method: str, path: str) -> dict | None:
        """Test-only (DEVELOPING.md, lab rules): a one-shot answer injected through /_control/faults."""
        for f in self.faults:
            if f["method"] == method and re.fullmatch(f["path"], path):
                f["count"] -= 1
                if f["count"] <= 0:
                    self.faults.remove(f)
                return f
        return None

    # -- read-back for tests --------------------------------------------------------------------------------
    def describe(self) -> dict[str, t.Any]:
        def conf(c: dict) -> dict:
            out = {}
            for i, ctx in sorted(c["contexts"].items()):
                certs = parse_certs(ctx["cert_pem"])
                out[str(i)] = {
                    "name": ctx["name"],
                    "certificate_sha256": fp(certs[0]) if certs else None,
                    "certificate_subject": certs[0].subject.rfc4514_string() if certs else None,
                    "key_loaded": bool(ctx["key_pem"]),
                    "key_valid": key_valid(ctx),
                    "trusted_roots_sha256": [fp(x) for x in parse_certs("".join(ctx["trusted_roots"]))],
                    "users": [f"SIPInterface {s['name']}" for s in c["sip_interfaces"].values()
                              if (s["tls_context"] or "default") == ctx["name"]]
                    + [f"ProxySet {p['name']}" for p in c["proxy_sets"].values()
                       if p["tls_context"] and p["tls_context"] == ctx["name"]],
                }
            return {"contexts": out,
                    "sip_interfaces": {str(i): dict(s) for i, s in c["sip_interfaces"].items()},
                    "proxy_sets": {str(i): dict(p) for i, p in c["proxy_sets"].items()}}

        with self.lock:
            return {
                "name": self.name, "ha": self.ha, "active_unit": self.unit["id"],
                "high_availability": self.ha_state(), "syncing": self.syncing or self.sync_writes > 0,
                "sync_writes_left": self.sync_writes, "sync_refusals": self.sync_refusals,
                "save_needed": self.save_needed(), "resets": self.resets, "switchovers": self.switchovers,
                "units": [{"id": u["id"], "active": i == self.active, "running": conf(u["running"]),
                           "saved": conf(u["saved"]), "save_needed": u["running"] != u["saved"]}
                          for i, u in enumerate(self.units)],
                "faults": [dict(f) for f in self.faults],
            }
