# Copyright (c) 2026, byoc.certificates contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

# Note that this module util is **PRIVATE** to the collection. It can have breaking changes at any time.

"""RFC 2136 dynamic update (TSIG-signed) with dnspython: BIND, PowerDNS, Knot, Windows DNS with a TSIG key.

Reads go to the update server directly (authoritative, no recursion). Writes add or delete single TXT rdatas
(RFC 2136 2.5.1 / 2.5.4), so values that other tasks put at the same name are never touched.
"""

from __future__ import annotations

import base64
import binascii
import typing as t

from ansible_collections.byoc.certificates.plugins.module_utils._errors import (
    ApiError,
    AuthenticationFailure,
    ConnectionFailure,
    InputError,
    NotFound,
)
from ansible_collections.byoc.certificates.plugins.module_utils._dns import resolve
from ansible_collections.byoc.certificates.plugins.module_utils._dns.provider import DNSProvider, register
from ansible_collections.byoc.certificates.plugins.module_utils._dns.txt import check_host, format_addr, is_subdomain, txt_chunks

try:
    import dns.exception
    import dns.message
    import dns.name
    import dns.query
    import dns.rcode
    import dns.rdata
    import dns.rdataclass
    import dns.rdatatype
    import dns.tsig
    import dns.tsigkeyring
    import dns.update
    from dns.rdtypes.ANY.TXT import TXT as _TXT
except ImportError:  # pragma: no cover - resolve.require_dnspython reports it
    pass

# Option value -> dnspython algorithm name (dns.tsig constants).
ALGORITHMS = {
    "hmac-md5": "hmac-md5.sig-alg.reg.int",
    "hmac-sha1": "hmac-sha1",
    "hmac-sha224": "hmac-sha224",
    "hmac-sha256": "hmac-sha256",
    "hmac-sha256-128": "hmac-sha256-128",
    "hmac-sha384": "hmac-sha384",
    "hmac-sha384-192": "hmac-sha384-192",
    "hmac-sha512": "hmac-sha512",
    "hmac-sha512-256": "hmac-sha512-256",
}


def decode_secret(secret: str) -> bytes:
    """The TSIG secret is base64 (as tsig-keygen writes it). Never echo it in an error."""
    try:
        return base64.b64decode(secret.strip(), validate=True)
    except (binascii.Error, ValueError):
        raise InputError("rfc2136.key_secret", "is not valid base64 (copy the secret from the key file as it is;"
                         " the value is not shown here)") from None


@register("rfc2136")
class RFC2136Provider(DNSProvider):
    name = "rfc2136"

    def __init__(self, options: dict[str, t.Any]) -> None:
        super().__init__(options)
        port = options.get("port")
        self.server = (options.get("server") or "", 53 if port is None else int(port))
        self.key_name = options.get("key_name")
        self.algorithm = options.get("key_algorithm") or "hmac-sha256"
        self.protocol = options.get("protocol") or "tcp"
        self.timeout = float(options.get("timeout") or 10)
        self._secret: bytes | None = None
        self._address: tuple[str, int] | None = None

    def describe(self) -> str:
        return f"the DNS server {format_addr(*self.server)}"

    def validate(self) -> None:
        if not self.server[0]:
            raise InputError("rfc2136.server", "is required: the address of the primary that accepts updates")
        # issue 10: a garbage name is refused here (it used to end in a UnicodeError from the IDNA codec)
        self.server = (check_host(self.server[0], "rfc2136.server"), self.server[1])
        if not 0 < self.server[1] < 65536:
            raise InputError("rfc2136.port", f"{self.server[1]} is not a port number (1-65535)")
        if self.algorithm not in ALGORITHMS:
            raise InputError("rfc2136.key_algorithm", f"{self.algorithm!r} is not one of {', '.join(ALGORITHMS)}")
        if self.timeout <= 0:
            raise InputError("rfc2136.timeout", "must be greater than 0")
        secret = self.options.get("key_secret")
        if bool(self.key_name) != bool(secret):
            raise InputError("rfc2136.key_name" if not self.key_name else "rfc2136.key_secret",
                             "key_name and key_secret go together: give both for TSIG, or neither for an unsigned"
                             " update (the secret may also come from BYOC_TSIG_KEY_SECRET)")
        if secret:
            self._secret = decode_secret(secret)
        resolve.require_dnspython("for the rfc2136 provider")

    # -- reading -------------------------------------------------------------------------------------------
    def find_zone(self, record: str, zone: str | None) -> str:
        if zone:
            if not is_subdomain(record, zone):
                raise InputError("zone", f"{record} is not inside the zone {zone}")
            return zone
        return resolve.find_zone_by_soa(self._resolved_server(), record, self.timeout)

    def get_txt(self, zone: str, record: str) -> list[str]:
        return resolve.txt_at(self._resolved_server(), record, self.timeout)

    def _resolved_server(self) -> tuple[str, int]:
        """The update server's address, resolved once (the first use is a read, before any write). A name that
        does not resolve is an input error naming rfc2136.server."""
        if self._address is not None:
            return self._address
        host, port = self.server
        if not resolve._is_ip(host):
            import socket
            try:
                host = socket.getaddrinfo(host, port, proto=socket.IPPROTO_TCP)[0][4][0]
            except (OSError, UnicodeError, ValueError) as exc:
                reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else type(exc).__name__
                raise InputError("rfc2136.server", f"the name {self.server[0]} does not resolve on the controller"
                                 f" ({reason}). Give the primary's IP address or a name the controller can"
                                 " resolve.") from None
        self._address = (host, port)
        return self._address

    # -- writing -------------------------------------------------------------------------------------------
    def build_update(self, zone: str, record: str, added: list[str], removed: list[str], ttl: int) -> "dns.update.UpdateMessage":
        kwargs: dict[str, t.Any] = {}
        if self.key_name and self._secret is not None:
            key = dns.tsig.Key(self.key_name, self._secret, ALGORITHMS[self.algorithm])
            keyring = {key.name: key}
            kwargs = {"keyring": keyring, "keyname": key.name, "keyalgorithm": key.algorithm}
        upd = dns.update.UpdateMessage(zone + ".", **kwargs)
        owner = dns.name.from_text(record + ".")
        for value in removed:
            upd.delete(owner, self._rdata(value))
        for value in added:
            upd.add(owner, ttl, self._rdata(value))
        return upd

    @staticmethod
    def _rdata(value: str) -> "dns.rdata.Rdata":
        return _TXT(dns.rdataclass.IN, dns.rdatatype.TXT, txt_chunks(value))

    def change(self, zone: str, record: str, *, before: list[str], after: list[str], added: list[str],
               removed: list[str], ttl: int) -> None:
        upd = self.build_update(zone, record, added, removed, ttl)
        host, port = self._resolved_server()
        where = format_addr(host, port)
        key_text = f"TSIG key {self.key_name!r}" if self.key_name else "no TSIG key"
        try:
            if self.protocol == "udp":
                resp = dns.query.udp(upd, host, port=port, timeout=self.timeout)
            else:
                resp = dns.query.tcp(upd, host, port=port, timeout=self.timeout)
        except dns.tsig.PeerError as exc:
            rcode = {"PeerBadKey": "BADKEY", "PeerBadSignature": "BADSIG", "PeerBadTime": "BADTIME",
                     "PeerBadTruncation": "BADTRUNC"}.get(type(exc).__name__, type(exc).__name__)
            raise AuthenticationFailure(
                f"The DNS server {where} rejected the update of {record} in zone {zone}: NOTAUTH ({rcode}) with"
                f" {key_text}. Check rfc2136.key_name, rfc2136.key_secret and rfc2136.key_algorithm"
                " (and the clocks, for BADTIME).", server=where, key_name=self.key_name, rcode=rcode) from None
        except dns.exception.Timeout:
            raise ConnectionFailure(f"The DNS server {where} did not answer the update over {self.protocol.upper()}"
                                    f" within {self.timeout:g}s. Check rfc2136.server, rfc2136.port and the"
                                    " firewall.", server=where) from None
        except (OSError, EOFError) as exc:
            raise ConnectionFailure(f"Cannot send the update to the DNS server {where} over"
                                    f" {self.protocol.upper()} (timeout {self.timeout:g}s): {exc}. Check"
                                    " rfc2136.server and rfc2136.port.", server=where) from None
        except dns.exception.DNSException as exc:
            raise ApiError(f"The DNS server {where} sent an unusable answer to the update of {record}: {exc}",
                           server=where) from None
        rcode = resp.rcode()
        if rcode == dns.rcode.NOERROR:
            return
        text = dns.rcode.to_text(rcode)
        if rcode in (dns.rcode.NOTAUTH, dns.rcode.REFUSED):
            raise AuthenticationFailure(
                f"The DNS server {where} answered {text} to the update of {record} in zone {zone} with {key_text}."
                f" The server does not accept this key for this zone (or is not the primary for {zone}). Check"
                " rfc2136.key_name, rfc2136.key_secret, the zone's update policy, and that rfc2136.server is the"
                " primary.", server=where, key_name=self.key_name, rcode=text)
        if rcode == dns.rcode.NOTZONE:
            raise NotFound(f"The DNS server {where} answered NOTZONE: {record} is not in the zone {zone}. Fix the zone"
                           " option.", server=where, rcode=text)
        raise ApiError(f"The DNS server {where} answered {text} to the update of {record} in zone {zone}.",
                       server=where, rcode=text)
