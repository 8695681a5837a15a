"""DNS helpers for tests and lab parts (dnspython): NOTIFY, TXT and SOA look-ups, and signed dynamic updates.

These are test tools, not product code: they talk to one server at an explicit host and port and never
recurse. ``wait_serial`` polls; use it only to wait for a state, never to assert on timing.
"""

from __future__ import annotations

import socket
import struct
import time
from dataclasses import dataclass

import dns.exception
import dns.flags
import dns.message
import dns.name
import dns.opcode
import dns.query
import dns.rcode
import dns.rdatatype
import dns.tsig
import dns.update

TIMEOUT = 3.0


def _ask(host: str, port: int, query: dns.message.Message, tcp: bool) -> dns.message.Message:
    if tcp:
        return dns.query.tcp(query, host, port=port, timeout=TIMEOUT)
    return dns.query.udp(query, host, port=port, timeout=TIMEOUT, ignore_trailing=True)


def notify(host: str, port: int, zone: str) -> int:
    """Send a DNS NOTIFY for ``zone`` (RFC 1996) so a secondary checks its primary now. Returns the rcode
    of the answer (0 = NOERROR); raises ``RuntimeError`` when the server answers with an error."""
    msg = dns.message.make_query(zone, dns.rdatatype.SOA)
    msg.flags = dns.flags.AA  # the opcode lives in the flags word: set it after the flags, not before
    msg.set_opcode(dns.opcode.NOTIFY)
    resp = dns.query.udp(msg, host, port=port, timeout=TIMEOUT)
    rcode = resp.rcode()
    if rcode != dns.rcode.NOERROR or resp.opcode() != dns.opcode.NOTIFY:
        raise RuntimeError(f"NOTIFY for {zone} to {host}:{port} answered {dns.rcode.to_text(rcode)} "
                           f"(opcode {dns.opcode.to_text(resp.opcode())})")
    return rcode


def query_txt(host: str, port: int, name: str, tcp: bool = True) -> list[str]:
    """The TXT values of ``name`` as served by host:port (each record's strings joined and decoded);
    [] for NXDOMAIN or NODATA. A CNAME is not followed (authoritative servers answer with the CNAME only)."""
    query = dns.message.make_query(name, dns.rdatatype.TXT)
    resp = _ask(host, port, query, tcp)
    rcode = resp.rcode()
    if rcode == dns.rcode.NXDOMAIN:
        return []
    if rcode != dns.rcode.NOERROR:
        raise RuntimeError(f"TXT query for {name} to {host}:{port} answered {dns.rcode.to_text(rcode)}")
    qname = dns.name.from_text(name)
    values: list[str] = []
    for rrset in resp.answer:
        if rrset.rdtype == dns.rdatatype.TXT and rrset.name == qname:
            values.extend(b"".join(rdata.strings).decode("utf-8", "replace") for rdata in rrset)
    return values


def query_rrset(host: str, port: int, name: str, rdtype: str, tcp: bool = True) -> list[str]:
    """The answer records of ``name``/``rdtype`` in text form ([] for NXDOMAIN/NODATA)."""
    resp = _ask(host, port, dns.message.make_query(name, rdtype), tcp)
    if resp.rcode() not in (dns.rcode.NOERROR, dns.rcode.NXDOMAIN):
        raise RuntimeError(f"{rdtype} query for {name} to {host}:{port} answered {dns.rcode.to_text(resp.rcode())}")
    want = dns.rdatatype.from_text(rdtype)
    return [rdata.to_text() for rrset in resp.answer if rrset.rdtype == want for rdata in rrset]


def soa_serial(host: str, port: int, zone: str) -> int:
    """The SOA serial of ``zone`` as served by host:port (raises if the server is not authoritative)."""
    resp = dns.query.tcp(dns.message.make_query(zone, dns.rdatatype.SOA), host, port=port, timeout=TIMEOUT)
    for rrset in resp.answer:
        if rrset.rdtype == dns.rdatatype.SOA:
            return rrset[0].serial
    raise RuntimeError(f"{host}:{port} has no SOA for {zone} (rcode {dns.rcode.to_text(resp.rcode())})")


def _serial_ge(a: int, b: int) -> bool:
    """RFC 1982 serial number arithmetic: a >= b."""
    return a == b or 0 < ((a - b) % 2**32) < 2**31


def wait_serial(host: str, port: int, zone: str, serial: int, timeout: float = 10.0) -> int:
    """Poll until host:port serves ``zone`` with a serial at or after ``serial``; return it. For tests only
    (waits for a state, asserts nothing about how long it took)."""
    deadline = time.monotonic() + timeout
    last: object = None
    while True:
        try:
            last = soa_serial(host, port, zone)
            if _serial_ge(last, serial):
                return last
        except Exception as exc:  # noqa: BLE001 - remembered for the timeout message
            last = exc
        if time.monotonic() > deadline:
            raise TimeoutError(f"{host}:{port} did not reach serial {serial} for {zone} in {timeout}s (last: {last})")
        time.sleep(0.05)


def keyring(name: str, secret: str, algorithm: str = "hmac-sha256") -> dict:
    """A dnspython keyring with one TSIG key."""
    return {dns.name.from_text(name): dns.tsig.Key(name, secret, algorithm)}


@dataclass
class UpdateResult:
    """The answer to a dynamic update: the header rcode, the TSIG error of the reply (``None`` when unsigned
    or NOERROR), and whether the reply's signature verified with the key that signed the request."""

    rcode: int
    tsig_error: int | None
    reply_verified: bool

    @property
    def rcode_text(self) -> str:
        return dns.rcode.to_text(self.rcode)

    @property
    def tsig_error_text(self) -> str | None:
        return None if self.tsig_error is None else dns.rcode.to_text(self.tsig_error, tsig=True)


def tsig_update(host: str, port: int, zone: str, name: str, value: str, *, key_name: str, secret: str,
                algorithm: str = "hmac-sha256", action: str = "add", ttl: int = 60) -> UpdateResult:
    """Send one TSIG-signed RFC 2136 update of a TXT record (``action`` add, replace or delete) over TCP and
    return what the server said. A server that rejects the signature answers NOTAUTH with a TSIG error
    (BADSIG/BADKEY) in an unsigned reply, which dnspython cannot verify, so the reply is read unverified first."""
    ring = keyring(key_name, secret, algorithm)
    upd = dns.update.UpdateMessage(zone, keyring=ring, keyname=key_name)
    owner = dns.name.from_text(name)  # absolute: a plain string would be taken relative to the zone
    if action == "add":
        upd.add(owner, ttl, "TXT", f'"{value}"')
    elif action == "replace":
        upd.replace(owner, ttl, "TXT", f'"{value}"')
    elif action == "delete":
        upd.delete(owner, "TXT", f'"{value}"')
    else:
        raise ValueError(f"action must be add, replace or delete, not {action!r}")
    wire = upd.to_wire()
    with socket.create_connection((host, port), timeout=TIMEOUT) as sock:
        sock.sendall(struct.pack("!H", len(wire)) + wire)
        size = struct.unpack("!H", _recv_exact(sock, 2))[0]
        reply = _recv_exact(sock, size)
    raw = dns.message.from_wire(reply, keyring=False)
    tsig_error = raw.tsig[0].error if raw.tsig else None
    try:
        dns.message.from_wire(reply, keyring=ring, request_mac=upd.mac)
        verified = True
    except (dns.exception.DNSException, ValueError):
        verified = False
    return UpdateResult(raw.rcode(), tsig_error or None, verified)


def _recv_exact(sock: socket.socket, n: int) -> bytes:
    buf = b""
    while len(buf) < n:
        chunk = sock.recv(n - len(buf))
        if not chunk:
            raise ConnectionError("connection closed while reading a DNS reply")
        buf += chunk
    return buf
