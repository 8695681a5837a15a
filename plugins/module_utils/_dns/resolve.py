# Copyright (c) 2026, byoc.certificates contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

# Note that this module util is **PRIVATE** to the collection. It can have breaking changes at any time.

"""DNS lookups with dnspython: CNAME following, SOA zone detection, NS discovery, and the propagation wait.

Every query goes to an explicit ``(host, port)``: the resolvers the user named (or the system's), or each
authoritative server directly (TCP, recursion not desired), so that split horizon and non-53 ports work and
NS host names are resolved through the same resolvers, never behind the user's back.
"""

from __future__ import annotations

import ipaddress
import time
import typing as t

from ansible_collections.byoc.certificates.plugins.module_utils._errors import (
    ApiError,
    ConnectionFailure,
    InputError,
    MissingDependency,
    NotFound,
)
from ansible_collections.byoc.certificates.plugins.module_utils._dns.txt import format_addr, join_strings

try:
    import dns.exception
    import dns.flags
    import dns.message
    import dns.name
    import dns.query
    import dns.rcode
    import dns.rdatatype
    import dns.resolver
    HAS_DNSPYTHON = True
    DNSPYTHON_IMPORT_ERROR = None
except ImportError as _exc:  # pragma: no cover - exercised only where dnspython is missing
    HAS_DNSPYTHON = False
    DNSPYTHON_IMPORT_ERROR = str(_exc)

Server = t.Tuple[str, int]
MAX_CNAME_HOPS = 8


def require_dnspython(purpose: str) -> None:
    if not HAS_DNSPYTHON:
        raise MissingDependency("dnspython", purpose, DNSPYTHON_IMPORT_ERROR)


def system_resolvers() -> list[Server]:
    """The nameservers of the controller's resolver configuration (/etc/resolv.conf), port 53."""
    require_dnspython("to use the system resolver")
    try:
        res = dns.resolver.Resolver(configure=True)
    except dns.exception.DNSException as exc:
        raise ConnectionFailure(f"Cannot read the system resolver configuration: {exc}. Set the resolver option.") from None
    return [(str(ns), 53) for ns in res.nameservers]


def exchange(server: Server, qname: str, rdtype: str, *, timeout: float, recursion: bool = False,
             tcp: bool = True) -> "dns.message.Message":
    """Send one query to ``server``; raise ConnectionFailure naming ``addr:port`` and the timeout."""
    require_dnspython("for DNS queries")
    host, port = server
    query = dns.message.make_query(qname if qname.endswith(".") else qname + ".", rdtype)
    if not recursion:
        query.flags &= ~dns.flags.RD
    try:
        if tcp:
            return dns.query.tcp(query, host, port=port, timeout=timeout)
        resp = dns.query.udp(query, host, port=port, timeout=timeout)
        if resp.flags & dns.flags.TC:
            return dns.query.tcp(query, host, port=port, timeout=timeout)
        return resp
    except dns.exception.Timeout:
        raise ConnectionFailure(
            f"The DNS server {format_addr(host, port)} did not answer a {rdtype} query for {qname} over"
            f" {'TCP' if tcp else 'UDP'} within {timeout:g}s. Check the address and port and that it is reachable.",
            server=format_addr(host, port)) from None
    except (OSError, EOFError, dns.exception.DNSException) as exc:
        raise ConnectionFailure(
            f"Cannot query the DNS server {format_addr(host, port)} ({'TCP' if tcp else 'UDP'}, timeout"
            f" {timeout:g}s) for {qname} {rdtype}: {exc or type(exc).__name__}. Check the address and port and that"
            " it is reachable from the controller.", server=format_addr(host, port)) from None


def ask_resolvers(resolvers: list[Server], qname: str, rdtype: str, timeout: float) -> "dns.message.Message":
    """Ask each resolver in turn (recursion desired) until one gives NOERROR or NXDOMAIN."""
    problems = []
    for server in resolvers:
        try:
            resp = exchange(server, qname, rdtype, timeout=timeout, recursion=True, tcp=False)
        except ConnectionFailure as exc:
            problems.append(exc.msg)
            continue
        if resp.rcode() in (dns.rcode.NOERROR, dns.rcode.NXDOMAIN):
            return resp
        problems.append(f"{format_addr(*server)} answered {dns.rcode.to_text(resp.rcode())}")
    where = ", ".join(format_addr(*s) for s in resolvers) or "(no resolver configured)"
    raise ConnectionFailure(
        f"No resolver answered the {rdtype} query for {qname} (tried {where}): {'; '.join(problems)}."
        " Set the resolver option to a DNS server that can answer it.", resolvers=[format_addr(*s) for s in resolvers])


def _rrset(resp: "dns.message.Message", name: str, rdtype: str):
    want = dns.name.from_text(name if name.endswith(".") else name + ".")
    for rrset in resp.answer:
        if rrset.name == want and rrset.rdtype == dns.rdatatype.from_text(rdtype):
            return rrset
    return None


def follow_cnames(record: str, resolvers: list[Server], timeout: float = 5.0) -> tuple[str, list[str]]:
    """Follow CNAMEs from ``record``; return ``(final_name, chain)`` where chain lists every name visited,
    starting with ``record``. Raises InputError (field follow_cname) on a loop or a chain that is too long."""
    chain = [record]
    current = record
    for _hop in range(MAX_CNAME_HOPS + 1):
        resp = ask_resolvers(resolvers, current, "CNAME", timeout)
        rrset = _rrset(resp, current, "CNAME")
        if rrset is None:
            return current, chain
        target = str(rrset[0].target).rstrip(".").lower()
        if target in chain:
            raise InputError("follow_cname", f"CNAME loop: {' -> '.join(chain + [target])}. Fix the delegation in DNS.",
                             cname_chain=chain + [target])
        chain.append(target)
        current = target
    raise InputError("follow_cname", f"more than {MAX_CNAME_HOPS} CNAMEs from {record}: {' -> '.join(chain)}."
                     " Shorten the delegation chain.", cname_chain=chain)


def find_zone_by_soa(server: Server, record: str, timeout: float) -> str:
    """The zone of ``record`` as served by ``server``: walk up from the name and take the first name that has
    an SOA in the answer section (authoritative, TCP, no recursion)."""
    labels = record.split(".")
    tried = []
    for i in range(len(labels)):
        candidate = ".".join(labels[i:])
        resp = exchange(server, candidate, "SOA", timeout=timeout)
        tried.append(f"{candidate} ({dns.rcode.to_text(resp.rcode())})")
        if resp.rcode() == dns.rcode.NOERROR and _rrset(resp, candidate, "SOA") is not None:
            return candidate
    raise NotFound(
        f"No zone for {record} on the DNS server {format_addr(*server)}: SOA queries for {', '.join(tried)} found no"
        " zone apex. Check the record name and the server, or set the zone option.", record=record,
        server=format_addr(*server))


def _is_ip(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
        return True
    except ValueError:
        return False


def addresses_of(host: str, resolvers: list[Server], timeout: float) -> list[str]:
    """IPv4 and IPv6 addresses of a host name, asked from ``resolvers`` (not the system resolver)."""
    if _is_ip(host):
        return [host]
    found: list[str] = []
    for rdtype in ("A", "AAAA"):
        resp = ask_resolvers(resolvers, host, rdtype, timeout)
        for rrset in resp.answer:
            if rrset.rdtype == dns.rdatatype.from_text(rdtype):
                found.extend(rd.address for rd in rrset)
    return found


def discover_nameservers(zone: str, resolvers: list[Server], port: int, timeout: float = 5.0) -> list[Server]:
    """Addresses of every NS of ``zone``: NS names from the resolvers, then their A/AAAA from the same."""
    resp = ask_resolvers(resolvers, zone, "NS", timeout)
    rrset = _rrset(resp, zone, "NS")
    if rrset is None:
        raise NotFound(f"The resolvers ({', '.join(format_addr(*s) for s in resolvers)}) return no NS records for"
                       f" the zone {zone}. Set the nameservers option to the addresses to poll.", zone=zone)
    servers: list[Server] = []
    missing = []
    for rd in rrset:
        ns_name = str(rd.target).rstrip(".")
        try:
            addrs = addresses_of(ns_name, resolvers, timeout)
        except ConnectionFailure:
            addrs = []
        if not addrs:
            missing.append(ns_name)
        servers.extend((a, port) for a in addrs if (a, port) not in servers)
    if missing:
        raise NotFound(f"Cannot resolve the address of the nameserver(s) {', '.join(missing)} of {zone} through the"
                       f" resolvers {', '.join(format_addr(*s) for s in resolvers)}. Set the nameservers option.",
                       zone=zone)
    return servers


def txt_at(server: Server, name: str, timeout: float) -> list[str]:
    """TXT values that ``server`` itself serves for ``name`` (TCP, no recursion); [] for NXDOMAIN/NODATA.
    Raises ConnectionFailure or ApiError (an error rcode)."""
    resp = exchange(server, name, "TXT", timeout=timeout)
    if resp.rcode() == dns.rcode.NXDOMAIN:
        return []
    if resp.rcode() != dns.rcode.NOERROR:
        raise ApiError(f"{format_addr(*server)} answered {dns.rcode.to_text(resp.rcode())} for {name} TXT",
                       server=format_addr(*server))
    rrset = _rrset(resp, name, "TXT")
    return [join_strings(rd.strings) for rd in rrset] if rrset is not None else []


# -- propagation wait -----------------------------------------------------------------------------------------

def server_ok(serving: list[str] | None, values: list[str], state: str) -> bool:
    """Does one server's answer satisfy the wait? ``None`` means the server could not be asked."""
    if serving is None:
        return False
    if state == "present":
        return all(v in serving for v in values)
    return not any(v in serving for v in values)


def poll_once(servers: list[Server], name: str, values: list[str], state: str, timeout: float) -> list[dict]:
    """Ask every server once; one status dict per server: server, serving, ok, error."""
    statuses = []
    for server in servers:
        serving: list[str] | None
        error = None
        try:
            serving = txt_at(server, name, timeout)
        except (ConnectionFailure, ApiError) as exc:
            serving, error = None, exc.msg
        statuses.append({"server": format_addr(*server), "serving": serving or [],
                         "ok": server_ok(serving, values, state), "error": error})
    return statuses


def wait_for_values(servers: list[Server], name: str, values: list[str], state: str, *, timeout: float,
                    interval: float, query_timeout: float = 5.0,
                    clock: t.Callable[[], float] = time.monotonic,
                    sleep: t.Callable[[float], None] = time.sleep) -> tuple[bool, float, list[dict]]:
    """Poll until every server passes or ``timeout`` runs out; returns (propagated, seconds, last statuses)."""
    start = clock()
    deadline = start + timeout
    while True:
        # at least 1 s per query, so that the last round at the deadline still gets real answers
        statuses = poll_once(servers, name, values, state, min(query_timeout, max(deadline - clock(), 1.0)))
        if all(s["ok"] for s in statuses):
            return True, clock() - start, statuses
        left = deadline - clock()
        if left <= 0:
            return False, clock() - start, statuses
        sleep(min(interval, left))


def resolve_hostport(servers: list[Server], resolvers_fn: t.Callable[[], list[Server]], timeout: float) -> list[Server]:
    """Turn host names in ``servers`` into addresses (asked from the resolvers), keeping ports."""
    out: list[Server] = []
    for host, port in servers:
        if _is_ip(host):
            out.append((host, port))
            continue
        addrs = addresses_of(host, resolvers_fn(), timeout)
        if not addrs:
            raise NotFound(f"Cannot resolve the nameserver {host} through the resolvers. Give its address instead.")
        out.extend((a, port) for a in addrs)
    return out
