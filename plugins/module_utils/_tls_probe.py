# Copyright (c) 2026, byoc.certificates contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

# Note that this module util is **PRIVATE** to the collection. It can have breaking changes at any time.

"""Fresh TLS handshakes to many endpoints at once, as a peer that trusts exactly the given CAs would make them.

Shared by the ``tls_endpoint_info`` action plugin (in-process on the controller, the normal path) and the module of
the same name (used when the action is bypassed). Every endpoint gets its own new TCP connection and TLS handshake:
no session is ever resumed (each handshake uses a new ``SSLContext`` without a session), so what is seen is what a
new client sees now, not what an old session negotiated (DEVELOPING.md, "Old sessions").

Per endpoint:

1. resolve the name (``host`` if given; else ``nameservers`` with dnspython, or the system resolver);
2. connect over TCP;
3. handshake with SNI = the name, verifying the chain against exactly ``ca_certificates`` (never the system store),
   presenting the client certificate if one is given;
4. TLS 1.3 only: wait until the peer has judged our client certificate (or its absence). A TLS 1.3 server checks it
   after the client has finished its side of the handshake (RFC 8446 §4.4.2.4), so a refusal arrives as an alert on
   the first read; an acceptance shows as the session tickets it sends next (§4.6.1). If neither comes within
   ``POST_HANDSHAKE_WAIT`` seconds the peer is taken to have accepted;
5. check the name against the leaf's subjectAltName (RFC 6125 §6.4: DNS-ID, wildcard only as the whole left-most
   label; the subject CN is never used, the stricter reading) and the fingerprint against the expected one.

When the handshake fails after the peer sent its certificate (an untrusted chain; a TLS 1.2 refusal of our client
certificate), the leaf is read from the unverified chain the TLS library kept, so that the result still says which
certificate is served (its fingerprint, names, expiry) with the one handshake. Only on a Python without
``get_unverified_chain`` (before 3.10) does an untrusted chain cost one more handshake, without verification, to read
the leaf; it never decides ``chain_verified``.
"""

from __future__ import annotations

import concurrent.futures
import datetime
import hashlib
import ipaddress
import os
import re
import select
import socket
import ssl
import tempfile
import time
import typing as t

from ansible_collections.byoc.certificates.plugins.module_utils import _gate, _pem
from ansible_collections.byoc.certificates.plugins.module_utils._errors import InputError, MissingDependency

try:
    from cryptography import x509
except ImportError:  # pragma: no cover - _pem.require_cryptography() reports it
    pass

try:
    import dns.exception
    import dns.nameserver
    import dns.resolver

    HAS_DNSPYTHON = True
    DNSPYTHON_IMPORT_ERROR = None
except ImportError as _exc:  # pragma: no cover - reported when nameservers are used
    HAS_DNSPYTHON = False
    DNSPYTHON_IMPORT_ERROR = str(_exc)

POST_HANDSHAKE_WAIT = 2.0  # seconds, TLS 1.3 only: at most this long for the peer's verdict on our certificate
MAX_ENDPOINTS = 5000

# The one argument spec, used by the module and validated by the action plugin.
ARGUMENT_SPEC: dict[str, t.Any] = {
    "endpoints": {
        "type": "list", "elements": "dict", "required": True,
        "options": {
            "name": {"type": "str", "required": True},
            "port": {"type": "int", "default": 5061},
            "host": {"type": "str"},
            "expected_fingerprint": {"type": "str"},
            "label": {"type": "str"},
        },
    },
    "ca_certificates": {"type": "str", "required": True},
    "client_certificate": {"type": "str"},
    "client_private_key": {"type": "str", "no_log": True},
    "nameservers": {"type": "list", "elements": "str", "default": []},
    "timeout": {"type": "float", "default": 10.0},
    "concurrency": {"type": "int", "default": 16},
}
REQUIRED_TOGETHER = [["client_certificate", "client_private_key"]]

# TLS alerts (OpenSSL reason names) by which a server says it does not accept the client's certificate
# (RFC 8446 §6.2; the same list as the lab's SIP-TLS client uses).
CLIENT_CERT_ALERTS = {
    "SSLV3_ALERT_BAD_CERTIFICATE": "bad_certificate",
    "SSLV3_ALERT_UNSUPPORTED_CERTIFICATE": "unsupported_certificate",
    "SSLV3_ALERT_CERTIFICATE_REVOKED": "certificate_revoked",
    "SSLV3_ALERT_CERTIFICATE_EXPIRED": "certificate_expired",
    "SSLV3_ALERT_CERTIFICATE_UNKNOWN": "certificate_unknown",
    "TLSV1_ALERT_UNKNOWN_CA": "unknown_ca",
    "TLSV1_ALERT_ACCESS_DENIED": "access_denied",
    "TLSV13_ALERT_CERTIFICATE_REQUIRED": "certificate_required",
    # TLS 1.2: a server that requires a client certificate and gets none usually ends with handshake_failure
    "SSLV3_ALERT_HANDSHAKE_FAILURE": "handshake_failure",
}
_EKU_NAMES = {
    "1.3.6.1.5.5.7.3.1": "serverAuth",
    "1.3.6.1.5.5.7.3.2": "clientAuth",
    "1.3.6.1.5.5.7.3.3": "codeSigning",
    "1.3.6.1.5.5.7.3.4": "emailProtection",
    "1.3.6.1.5.5.7.3.8": "timeStamping",
    "1.3.6.1.5.5.7.3.9": "OCSPSigning",
}
_HEX_RE = re.compile(r"^[0-9a-f]{64}$")


# -- input ------------------------------------------------------------------------------------------------------------
class Settings:
    """Checked input: parsed CAs as PEM, the client pair (as PEM text kept in memory only), resolver settings."""

    def __init__(self, *, cadata: str, client_chain: str | None, client_key: str | None,
                 nameservers: list[tuple[str, int]], timeout: float, concurrency: int, warnings: list[str]):
        self.cadata = cadata
        self.client_chain = client_chain
        self.client_key = client_key
        self.nameservers = nameservers
        self.timeout = timeout
        self.concurrency = concurrency
        self.warnings = warnings


def normalize_fingerprint(value: t.Any, field: str) -> str:
    """A SHA-256 fingerprint as lowercase hex, from hex with or without colons or spaces, any case."""
    if not isinstance(value, str):
        raise InputError(field, f"expected a SHA-256 fingerprint (64 hex digits), got {type(value).__name__}")
    text = re.sub(r"[\s:]", "", value.strip().lower())
    if text.startswith("sha256"):
        text = text[len("sha256"):].lstrip("=")
    if not _HEX_RE.match(text):
        raise InputError(field, "is not a SHA-256 fingerprint: expected 64 hex digits (colons allowed), as returned by"
                                " the info modules and certificate_store_info")
    return text


def parse_nameserver(value: t.Any, field: str) -> tuple[str, int]:
    """``ip``, ``ip:port``, ``[ipv6]:port`` or a bare IPv6 address -> (ip, port)."""
    if not isinstance(value, str) or not value.strip():
        raise InputError(field, "expected an IP address, optionally with :port")
    text = value.strip()
    host, port = text, 53
    m = re.match(r"^\[([0-9A-Fa-f:.]+)\](?::(\d+))?$", text)
    if m:
        host, port = m.group(1), int(m.group(2) or 53)
    elif text.count(":") == 1:
        host, _sep, p = text.partition(":")
        if not p.isdigit():
            raise InputError(field, f"{text!r}: the port after ':' must be a number")
        port = int(p)
    try:
        ipaddress.ip_address(host)
    except ValueError:
        raise InputError(field, f"{text!r} is not an IP address (a nameserver is given by address, optionally"
                                " with :port, for example 192.0.2.53 or 127.0.0.1:5353)") from None
    if not 0 < port < 65536:
        raise InputError(field, f"{text!r}: port {port} is out of range")
    return host, port


def check_input(params: dict) -> tuple[list[dict], Settings]:
    """Validate everything before any connection. Returns the endpoints (normalized) and the settings."""
    endpoints = params.get("endpoints") or []
    if not endpoints:
        raise InputError("endpoints", "is empty; give at least one {name, port}")
    if len(endpoints) > MAX_ENDPOINTS:
        raise InputError("endpoints", f"has {len(endpoints)} entries; at most {MAX_ENDPOINTS} per call")
    checked = []
    for i, ep in enumerate(endpoints):
        where = f"endpoints[{i}]"
        name = (ep.get("name") or "").strip().rstrip(".")
        if not name or any(c.isspace() for c in name):
            raise InputError(f"{where}.name", "must be the DNS name (or address) the trunks use, without spaces")
        port = ep.get("port")
        port = 5061 if port is None else port
        if not isinstance(port, int) or not 0 < port < 65536:
            raise InputError(f"{where}.port", f"{port!r} is not a TCP port (1-65535)")
        host = (ep.get("host") or "").strip() or None
        expected = ep.get("expected_fingerprint")
        expected = normalize_fingerprint(expected, f"{where}.expected_fingerprint") if expected not in (None, "") else None
        checked.append({"name": name, "port": port, "host": host, "expected_fingerprint": expected,
                        "label": ep.get("label") or None})
    # sbc-side trust is what the org trusts: exactly these CAs, no system store. Expired CAs are accepted as input
    # (an org can hold one; it then anchors nothing and the handshake says so), leaves and key material are not.
    cas, warnings = _gate.ca_certificates(params.get("ca_certificates"), "ca_certificates", allow_expired=True)
    cadata = "".join(_pem.to_pem(c) for c in cas)
    client_chain = client_key = None
    if params.get("client_certificate") or params.get("client_private_key"):
        if not params.get("client_certificate") or not params.get("client_private_key"):
            raise InputError("client_certificate", "client_certificate and client_private_key go together; give both"
                                                   " or neither")
        leaf, extra = _gate.server_certificate(params["client_certificate"], "client_certificate")
        key = _gate.private_key(params["client_private_key"], "client_private_key", certificate=leaf,
                                certificate_field="client_certificate")
        ekus = extended_key_usage(leaf)
        if ekus is not None and "clientAuth" not in ekus:
            warnings.append("client_certificate: the certificate has no TLS clientAuth extended key usage"
                            f" ({', '.join(ekus)}); a device that verifies clients will refuse it")
        client_chain = "".join(_pem.to_pem(c) for c in [leaf, *extra])
        client_key = _pem.key_to_pem(key)
    nameservers = [parse_nameserver(ns, f"nameservers[{i}]") for i, ns in enumerate(params.get("nameservers") or [])]
    if nameservers and not HAS_DNSPYTHON:
        raise MissingDependency("dnspython", "to resolve names with the nameservers option", DNSPYTHON_IMPORT_ERROR)
    timeout = params.get("timeout")
    timeout = 10.0 if timeout is None else float(timeout)
    if not 0 < timeout <= 600:
        raise InputError("timeout", f"{timeout:g} is out of range; give seconds between 0 and 600")
    concurrency = params.get("concurrency")
    concurrency = 16 if concurrency is None else int(concurrency)
    if not 1 <= concurrency <= 256:
        raise InputError("concurrency", f"{concurrency} is out of range; give 1 to 256")
    return checked, Settings(cadata=cadata, client_chain=client_chain, client_key=client_key, nameservers=nameservers,
                             timeout=timeout, concurrency=concurrency, warnings=warnings)


# -- certificate facts ------------------------------------------------------------------------------------------------
def extended_key_usage(cert) -> list[str] | None:
    """The leaf's EKUs by name (``serverAuth``, ``clientAuth``, or the dotted OID); None when it has no EKU."""
    try:
        ext = cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    except x509.ExtensionNotFound:
        return None
    return [_EKU_NAMES.get(oid.dotted_string, oid.dotted_string) for oid in ext]


def _san_values(cert) -> tuple[list[str], list[str]]:
    try:
        ext = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return [], []
    return list(ext.get_values_for_type(x509.DNSName)), [str(a) for a in ext.get_values_for_type(x509.IPAddress)]


def name_matches(name: str, dns_names: list[str], ip_names: list[str]) -> bool:
    """RFC 6125 §6.4 matching of ``name`` against the subjectAltName: an IP literal against iPAddress entries; a DNS
    name against dNSName entries, case-insensitively, a wildcard only as the whole left-most label and matching
    exactly one label, and never below a single-label suffix (``*.test`` matches nothing). The subject CN is not
    used (RFC 6125 §6.4.4 allows it only without any DNS-ID; modern clients never do: the stricter reading)."""
    try:
        addr = ipaddress.ip_address(name)
    except ValueError:
        addr = None
    if addr is not None:
        return any(_same_ip(addr, ip) for ip in ip_names)
    wanted = name.lower().rstrip(".")
    for raw in dns_names:
        d = raw.lower().rstrip(".")
        if d == wanted:
            return True
        if d.startswith("*.") and "*" not in d[2:] and d.count(".") >= 2:
            suffix = d[1:]
            head = wanted[:-len(suffix)] if wanted.endswith(suffix) else ""
            if head and "." not in head:
                return True
    return False


def _same_ip(addr, text: str) -> bool:
    try:
        return ipaddress.ip_address(text) == addr
    except ValueError:
        return False


def leaf_facts(der: bytes) -> dict:
    """What the result says about a served leaf (from its DER)."""
    facts: dict[str, t.Any] = {"fingerprint": hashlib.sha256(der).hexdigest()}
    try:
        cert = x509.load_der_x509_certificate(der)
        dns_names, ip_names = _san_values(cert)
        facts.update({
            "not_after": cert.not_valid_after_utc.strftime("%Y-%m-%dT%H:%M:%SZ"),
            "not_before": cert.not_valid_before_utc.strftime("%Y-%m-%dT%H:%M:%SZ"),
            "subject": cert.subject.rfc4514_string(),
            "issuer": cert.issuer.rfc4514_string(),
            "subject_alt_names": [f"DNS:{n}" for n in dns_names] + [f"IP:{n}" for n in ip_names],
            "extended_key_usage": extended_key_usage(cert),
            "_dns": dns_names, "_ip": ip_names,
        })
    except ValueError:
        facts["_unparsable"] = True
    return facts


# -- one endpoint -----------------------------------------------------------------------------------------------------
def blank_result(ep: dict) -> dict:
    return {"name": ep["name"], "port": ep["port"], "label": ep.get("label"), "address": None,
            "fingerprint": None, "not_after": None, "not_before": None, "subject": None, "issuer": None,
            "subject_alt_names": [], "extended_key_usage": None, "tls_version": None,
            "name_matches": None, "chain_verified": None,
            "expected_fingerprint": ep.get("expected_fingerprint"), "matches_expected": None,
            "client_certificate_accepted": None, "ok": False, "stage": None, "error": None}


def resolve(name: str, settings: Settings) -> list[str]:
    """Addresses of ``name`` (A before AAAA); raises LookupError with a sentence saying why there are none."""
    try:
        ipaddress.ip_address(name)
        return [name]
    except ValueError:
        pass
    if settings.nameservers:
        res = dns.resolver.Resolver(configure=False)
        res.nameservers = [dns.nameserver.Do53Nameserver(ip, port) for ip, port in settings.nameservers]
        res.lifetime = settings.timeout
        res.timeout = min(settings.timeout, 5.0)
        where = ", ".join(f"{ip}:{port}" for ip, port in settings.nameservers)
        addresses: list[str] = []
        nxdomain = False
        for rdtype in ("A", "AAAA"):
            try:
                addresses += [r.to_text() for r in res.resolve(name, rdtype, search=False)]
            except dns.resolver.NXDOMAIN:
                nxdomain = True
                break
            except dns.resolver.NoAnswer:
                continue
            except dns.exception.Timeout:
                raise LookupError(f"no answer from the nameservers {where} within {settings.timeout:g}s") from None
            except dns.resolver.NoNameservers as exc:
                raise LookupError(f"the nameservers {where} failed to answer ({type(exc).__name__})") from None
        if not addresses:
            why = "does not exist (NXDOMAIN)" if nxdomain else "has no A or AAAA record"
            raise LookupError(f"the name {why} at the nameservers {where}")
        return addresses
    try:
        infos = socket.getaddrinfo(name, None, type=socket.SOCK_STREAM)
    except socket.gaierror as exc:
        raise LookupError(f"the system resolver has no address for it ({exc.strerror})") from None
    seen: list[str] = []
    for fam in (socket.AF_INET, socket.AF_INET6):
        for info in infos:
            if info[0] == fam and info[4][0] not in seen:
                seen.append(info[4][0])
    return seen


def _client_context(settings: Settings, verify: bool) -> ssl.SSLContext:
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    ctx.check_hostname = False  # the name is checked by name_matches, so that a mismatch is reported on its own
    if verify:
        ctx.verify_mode = ssl.CERT_REQUIRED
        ctx.load_verify_locations(cadata=settings.cadata)  # exactly these CAs; no system store is loaded
    else:
        ctx.verify_mode = ssl.CERT_NONE
    if settings.client_chain and settings.client_key:
        # ssl loads a key only from a file: a private directory, removed as soon as the context has it.
        with tempfile.TemporaryDirectory(prefix="byoc-probe-") as tmp:
            cert_file, key_file = os.path.join(tmp, "c.pem"), os.path.join(tmp, "k.pem")
            with open(cert_file, "w", encoding="ascii") as fh:
                fh.write(settings.client_chain)
            fd = os.open(key_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "w", encoding="ascii") as fh:
                fh.write(settings.client_key)
            ctx.load_cert_chain(cert_file, key_file, password=lambda: b"")
    return ctx


def _post_handshake_verdict(tls: ssl.SSLSocket, wait: float) -> str | None:
    """TLS 1.3: None if the peer accepted us (a session ticket or data came, or nothing within ``wait``), else the
    alert name (or ``closed`` when it closed the connection without an alert)."""
    if tls.version() != "TLSv1.3":
        return None  # TLS 1.2: the peer judged the client certificate inside the handshake
    tls.setblocking(False)
    deadline = time.monotonic() + wait
    while True:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            return None
        readable, _w, _x = select.select([tls], [], [], remaining)
        if not readable:
            return None
        try:
            data = tls.recv(4096)
        except ssl.SSLWantReadError:
            return None  # a post-handshake message (NewSessionTicket) was processed: the peer is done judging
        except ssl.SSLError as exc:
            reason = getattr(exc, "reason", None) or ""
            return CLIENT_CERT_ALERTS.get(reason, reason.lower() or "tls_error")
        except OSError:
            return "closed"
        return None if data else "closed"


def _handshake(address: str, ep: dict, settings: Settings, *, verify: bool) -> tuple[ssl.SSLSocket | None, dict]:
    """Connect and handshake. Returns (socket or None, facts): on failure facts has ``stage``, ``exc`` and ``leaf``
    (the DER of the leaf the peer sent before the handshake failed, when it got that far)."""
    try:
        raw = socket.create_connection((address, ep["port"]), timeout=settings.timeout)
    except OSError as exc:
        return None, {"stage": "connect", "exc": exc}
    try:
        ctx = _client_context(settings, verify)
        # SNI = the name the trunks use; a fresh context per handshake, so no session can be resumed.
        tls = ctx.wrap_socket(raw, server_hostname=ep["name"] if not _is_ip(ep["name"]) else None,
                              do_handshake_on_connect=False)
    except (ssl.SSLError, OSError) as exc:
        raw.close()
        return None, {"stage": "handshake", "exc": exc}
    try:
        tls.do_handshake()
    except (ssl.SSLError, OSError) as exc:
        leaf = unverified_leaf(tls)
        try:
            tls.close()
        except OSError:
            pass
        return None, {"stage": "handshake", "exc": exc, "leaf": leaf}
    return tls, {}


def unverified_leaf(tls: ssl.SSLSocket) -> bytes | None:
    """The DER of the leaf the peer sent, also after a failed handshake (an untrusted chain, or a TLS 1.2 refusal of
    our client certificate, which comes after the server's certificate). ``SSLSocket.get_unverified_chain`` is public
    from Python 3.13; from 3.10 the same method exists on the internal SSL object. None when neither is there."""
    getter = getattr(tls, "get_unverified_chain", None)
    if getter is None:
        getter = getattr(getattr(tls, "_sslobj", None), "get_unverified_chain", None)
    if getter is None:
        return None
    try:
        chain = getter()
    except (ValueError, ssl.SSLError, AttributeError, TypeError):
        return None
    if not chain:
        return None
    first = chain[0]
    if isinstance(first, (bytes, bytearray)):
        return bytes(first)
    try:
        return first.public_bytes(2)  # _ssl.ENCODING_DER
    except (ValueError, TypeError, AttributeError):
        return None


def _is_ip(name: str) -> bool:
    try:
        ipaddress.ip_address(name)
        return True
    except ValueError:
        return False


def _describe_exc(exc: BaseException) -> str:
    """A short, secret-free text for a socket/TLS error (these never quote our key or certificate)."""
    if isinstance(exc, ssl.SSLCertVerificationError):
        return exc.verify_message or "certificate verify failed"
    if isinstance(exc, ssl.SSLError):
        return f"TLS error {getattr(exc, 'reason', None) or type(exc).__name__}"
    if isinstance(exc, socket.timeout):
        return "timed out"
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror
    return type(exc).__name__


def probe(ep: dict, settings: Settings) -> dict:
    """One endpoint: the result dict (see the module's RETURN). Never raises for what happens on the wire."""
    out = blank_result(ep)
    where = f"{ep['name']}:{ep['port']}"
    target = ep.get("host") or ep["name"]
    try:
        addresses = resolve(target, settings)
    except LookupError as exc:
        out.update(stage="resolve", error=f"{where}: cannot resolve {target}: {exc}. Fix the DNS record the trunks"
                                          " use (or the name), or give host to connect to an address directly")
        return out
    tls, failure = None, {}
    for address in addresses:
        out["address"] = address
        tls, failure = _handshake(address, ep, settings, verify=True)
        if tls is not None or failure.get("stage") != "connect":
            break
    at = f"{where} ({out['address']})"
    client = bool(settings.client_chain)
    if tls is None:
        exc = failure["exc"]
        stage = failure["stage"]
        if stage == "connect":
            out.update(stage="connect", error=f"{at}: TCP connect failed ({_describe_exc(exc)}). Check that the device"
                                              " listens for SIP-TLS on that port and that the controller can reach it")
            return out
        if isinstance(exc, ssl.SSLCertVerificationError):
            out.update(stage="verify", chain_verified=False)
            if failure.get("leaf"):
                _add_leaf(out, failure["leaf"], ep)
            else:  # a Python without get_unverified_chain: read the leaf with a handshake that does not verify
                _diagnose(out, addresses, ep, settings)
            out["error"] = (f"{at}: the certificate chain does not verify against ca_certificates"
                            f" ({_describe_exc(exc)}). A Genesys Edge trusting the same CAs would refuse it: add the"
                            " issuing CA as a REMOTE certificate authority of the org (genesys_edge_certificate) and"
                            " make the device send the intermediates, or install a certificate from a trusted CA")
            return out
        reason = getattr(exc, "reason", None)
        # handshake_failure is also what a server says when no cipher or version is common; it only means "your
        # client certificate" when it came after the server had sent its own certificate.
        refused = reason in CLIENT_CERT_ALERTS and (reason != "SSLV3_ALERT_HANDSHAKE_FAILURE" or failure.get("leaf"))
        if isinstance(exc, ssl.SSLError) and refused:
            if failure.get("leaf"):
                # TLS 1.2: the client verified the server's chain before it sent its own certificate, so a refusal
                # that came after the server's certificate means the chain verified.
                out["chain_verified"] = True
                _add_leaf(out, failure["leaf"], ep)
            out.update(stage="handshake", client_certificate_accepted=False,
                       error=_refused(at, CLIENT_CERT_ALERTS[reason], client))
            return out
        if isinstance(exc, (ssl.SSLEOFError, ConnectionError)):
            out.update(stage="handshake", error=f"{at}: the peer closed the connection during the TLS handshake"
                                                f" ({_describe_exc(exc)}). The device may serve no certificate on this"
                                                " port (none bound), or refuse this client")
            return out
        out.update(stage="handshake", error=f"{at}: the TLS handshake failed ({_describe_exc(exc)}). Check the"
                                            " device's TLS settings (versions, ciphers) for this port")
        return out
    try:
        out["tls_version"] = tls.version()
        out["chain_verified"] = True
        _add_leaf(out, tls.getpeercert(binary_form=True), ep)
        verdict = _post_handshake_verdict(tls, min(POST_HANDSHAKE_WAIT, settings.timeout))
    finally:
        try:
            tls.close()
        except OSError:
            pass
    if verdict is not None:
        out.update(stage="handshake", client_certificate_accepted=False, error=_refused(at, verdict, client))
        return out
    out["client_certificate_accepted"] = True if client else None
    _judge(out, at, ep)
    return out


def _refused(at: str, alert: str, client: bool) -> str:
    if alert == "closed":
        what = ("closed the connection right after the handshake, without a TLS alert (devices do this when they"
                " refuse the client's certificate)")
    else:
        what = f"refused the handshake (TLS alert {alert})"
    if client:
        return (f"{at}: the peer {what}: it did not accept our client certificate. Its trusted roots must hold the CA"
                " that issued client_certificate")
    return (f"{at}: the peer {what}: it requires a client certificate (mutual TLS). Give client_certificate and"
            " client_private_key, issued by a CA in the device's trusted roots (for a Genesys-facing port, a"
            " certificate from the org's MANAGED CA), or rely on the trunks' health for this endpoint")


def _add_leaf(out: dict, der: bytes | None, ep: dict) -> None:
    if not der:
        return
    facts = leaf_facts(der)
    dns_names, ip_names = facts.pop("_dns", []), facts.pop("_ip", [])
    unparsable = facts.pop("_unparsable", False)
    out.update(facts)
    out["name_matches"] = False if unparsable else name_matches(ep["name"], dns_names, ip_names)
    if ep.get("expected_fingerprint"):
        out["matches_expected"] = out["fingerprint"] == ep["expected_fingerprint"]


def _diagnose(out: dict, addresses: list[str], ep: dict, settings: Settings) -> None:
    """After a chain failure: read the served leaf with a handshake that does not verify (never decides trust)."""
    tls, _failure = _handshake(out["address"] or addresses[0], ep, settings, verify=False)
    if tls is None:
        return
    try:
        out["tls_version"] = tls.version()
        _add_leaf(out, tls.getpeercert(binary_form=True), ep)
    finally:
        try:
            tls.close()
        except OSError:
            pass


def _judge(out: dict, at: str, ep: dict) -> None:
    problems = []
    if not out["name_matches"]:
        names = ", ".join(out["subject_alt_names"]) or "no subjectAltName"
        problems.append(f"the certificate ({out['subject']}; {names}) does not match the name {ep['name']}, which the"
                        " trunks use: a Genesys Edge would refuse it. Issue a certificate whose subjectAltName"
                        " includes that name")
        out["stage"] = "name"
    if out["matches_expected"] is False:
        problems.append(f"it serves the certificate {out['fingerprint']}, not the expected"
                        f" {ep['expected_fingerprint']}: the new certificate is not what a new client gets. Check that"
                        " it is bound to the SIP-TLS port on the active unit (and re-run the deploy)")
        out["stage"] = out["stage"] or "fingerprint"
    if problems:
        out["error"] = f"{at}: " + "; and ".join(problems)
        return
    out.update(ok=True, stage="done")


# -- many endpoints ---------------------------------------------------------------------------------------------------
def probe_all(endpoints: list[dict], settings: Settings) -> list[dict]:
    """Probe every endpoint, ``settings.concurrency`` at a time; results in the order of ``endpoints``."""
    workers = max(1, min(settings.concurrency, len(endpoints)))
    with concurrent.futures.ThreadPoolExecutor(max_workers=workers, thread_name_prefix="tls-probe") as pool:
        return list(pool.map(lambda ep: _safe_probe(ep, settings), endpoints))


def _safe_probe(ep: dict, settings: Settings) -> dict:
    try:
        return probe(ep, settings)
    except Exception as exc:  # pylint: disable=broad-exception-caught
        # One endpoint's surprise must not lose the others' results. The text is not shown (it could quote anything).
        out = blank_result(ep)
        out.update(stage="internal", error=f"{ep['name']}:{ep['port']}: unexpected {type(exc).__name__} while"
                                           " probing; this is a bug in byoc.certificates, please report it")
        return out


def summarize(results: list[dict], warnings: list[str]) -> dict:
    failed = [r["label"] or f"{r['name']}:{r['port']}" for r in results if not r["ok"]]
    # Not "failed": Ansible reads that key of a result as the task's own failure (a non-empty list would fail it).
    out: dict[str, t.Any] = {"changed": False, "endpoints": results, "all_ok": not failed, "failed_endpoints": failed,
                             "probed": len(results),
                             "checked_at": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")}
    if warnings:
        out["warnings"] = list(warnings)
    return out


def run(params: dict) -> dict:
    """The whole task: check the input, probe, summarize."""
    _pem.require_cryptography()
    endpoints, settings = check_input(params)
    return summarize(probe_all(endpoints, settings), settings.warnings)
