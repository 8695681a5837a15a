"""The delayed primary behind the lab's lagging secondary (``lab.py up --lag-secondary SECONDS``).

Real zones have secondaries that receive a change a while after the primary: NOTIFY, then a zone transfer, both
subject to queues, rate limits and network delays. A certificate authority asks any authoritative server of the
zone, so a client that publishes a DNS-01 record at the primary and answers the challenge at once can fail.

This process sits between the ``bind`` primary and the (real BIND) secondary and makes the secondary serve every
zone exactly as it was ``delay`` seconds earlier:

1. the primary NOTIFYs this process (``notify explicit; also-notify { 127.0.0.1 port P; }``) after each change;
2. on each NOTIFY this process takes a snapshot of the zone at once (AXFR from the primary) and answers the NOTIFY;
3. ``delay`` seconds after that NOTIFY it publishes the snapshot (its SOA and AXFR answers switch to it) and sends
   a NOTIFY to the secondary, which asks for the SOA and transfers the zone from here (``request-ixfr no``).

So a record added at time t appears at the secondary no earlier than t + delay (the first snapshot that holds it was
taken after t), and a deleted record stays there as long. Only SOA queries, NOTIFY and AXFR/IXFR (answered with the
full zone, RFC 1995 §4) are served; anything else is REFUSED. Test tool, not product code.

    python -m byoclab.delayed_primary CONFIG.json
    CONFIG: {"port": P, "primary": [host, port], "secondary": [host, port], "delay": seconds, "zones": [...]}
"""

from __future__ import annotations

import json
import socket
import socketserver
import struct
import sys
import threading
import time

import dns.exception
import dns.flags
import dns.message
import dns.name
import dns.opcode
import dns.query
import dns.rcode
import dns.rdatatype
import dns.rrset
import dns.zone

LOOPBACK = "127.0.0.1"
RRSETS_PER_MESSAGE = 400


def log(text: str) -> None:
    print(f"{time.strftime('%H:%M:%S')} {text}", flush=True)


def _newer(serial: int, than: int) -> bool:
    """RFC 1982 serial number arithmetic."""
    diff = (serial - than) % (1 << 32)
    return 0 < diff < (1 << 31)


class Snapshot:
    def __init__(self, zone: str, soa: dns.rrset.RRset, rrsets: list[dns.rrset.RRset]):
        self.zone = zone
        self.soa = soa
        self.rrsets = rrsets

    @property
    def serial(self) -> int:
        return self.soa[0].serial


class State:
    def __init__(self, config: dict):
        self.config = config
        self.delay = float(config["delay"])
        self.primary = (config["primary"][0], int(config["primary"][1]))
        self.secondary = (config["secondary"][0], int(config["secondary"][1]))
        self.zones = {dns.name.from_text(z): z for z in config["zones"]}
        self.current: dict[str, Snapshot] = {}
        self.lock = threading.Lock()

    def zone_of(self, qname: dns.name.Name) -> str | None:
        return self.zones.get(qname)

    def snapshot(self, zone: str) -> Snapshot:
        origin = dns.name.from_text(zone)
        copy = dns.zone.Zone(origin, relativize=False)
        dns.query.inbound_xfr(self.primary[0], copy, port=self.primary[1], timeout=10, lifetime=30)
        soa = None
        rrsets = []
        for name, rdataset in copy.iterate_rdatasets():
            rrset = dns.rrset.RRset(name, rdataset.rdclass, rdataset.rdtype)
            rrset.update(rdataset)
            if rdataset.rdtype == dns.rdatatype.SOA and name == origin:
                soa = rrset
            else:
                rrsets.append(rrset)
        if soa is None:
            raise RuntimeError(f"the transfer of {zone} from the primary has no SOA")
        return Snapshot(zone, soa, rrsets)

    def publish(self, snap: Snapshot) -> bool:
        with self.lock:
            old = self.current.get(snap.zone)
            if old is not None and not _newer(snap.serial, old.serial):
                return False
            self.current[snap.zone] = snap
            return True

    def on_notify(self, zone: str) -> None:
        """Snapshot now, publish ``delay`` seconds after the NOTIFY arrived, then NOTIFY the secondary."""
        received = time.monotonic()
        try:
            snap = self.snapshot(zone)
        except (OSError, dns.exception.DNSException, RuntimeError) as exc:
            log(f"{zone}: snapshot failed: {exc}")
            return
        log(f"{zone}: NOTIFY from the primary, snapshot serial {snap.serial}, published in {self.delay:g}s")
        time.sleep(max(0.0, received + self.delay - time.monotonic()))
        if self.publish(snap):
            log(f"{zone}: serial {snap.serial} published; NOTIFY to the secondary")
            self.notify_secondary(zone)

    def notify_secondary(self, zone: str) -> None:
        msg = dns.message.make_query(zone, dns.rdatatype.SOA)
        msg.flags = dns.flags.AA
        msg.set_opcode(dns.opcode.NOTIFY)
        for _attempt in range(5):
            try:
                dns.query.udp(msg, self.secondary[0], port=self.secondary[1], timeout=2)
                return
            except (OSError, dns.exception.DNSException):
                continue
        log(f"{zone}: the secondary did not answer the NOTIFY")

    def answer(self, query: dns.message.Message, tcp: bool) -> list[dns.message.Message]:
        """The response message(s) to ``query``; several only for a zone transfer."""
        resp = dns.message.make_response(query)
        resp.flags |= dns.flags.AA
        if not query.question:
            resp.set_rcode(dns.rcode.FORMERR)
            return [resp]
        q = query.question[0]
        zone = self.zone_of(q.name)
        if query.opcode() == dns.opcode.NOTIFY:
            if zone is not None:
                threading.Thread(target=self.on_notify, args=(zone,), daemon=True).start()
            else:
                resp.set_rcode(dns.rcode.NOTAUTH)
            return [resp]
        with self.lock:
            snap = self.current.get(zone) if zone else None
        if query.opcode() != dns.opcode.QUERY or snap is None:
            resp.set_rcode(dns.rcode.REFUSED)
            return [resp]
        if q.rdtype == dns.rdatatype.SOA:
            resp.answer.append(snap.soa)
            return [resp]
        if q.rdtype in (dns.rdatatype.AXFR, dns.rdatatype.IXFR) and tcp:
            # RFC 5936 §2.2: SOA first and last; RFC 1995 §4: an IXFR may be answered with the whole zone.
            body = [snap.soa] + snap.rrsets + [snap.soa]
            out = []
            for i in range(0, len(body), RRSETS_PER_MESSAGE):
                part = dns.message.make_response(query)
                part.flags |= dns.flags.AA
                part.answer.extend(body[i:i + RRSETS_PER_MESSAGE])
                out.append(part)
            return out
        resp.set_rcode(dns.rcode.REFUSED)
        return [resp]


def serve(config: dict) -> None:
    state = State(config)
    for zone in config["zones"]:
        state.publish(state.snapshot(zone))  # the starting state is served at once (the initial transfer)
        log(f"{zone}: initial serial {state.current[zone].serial}")

    class Udp(socketserver.BaseRequestHandler):
        def handle(self):
            data, sock = self.request
            try:
                query = dns.message.from_wire(data)
            except dns.exception.DNSException:
                return
            for resp in state.answer(query, tcp=False):
                sock.sendto(resp.to_wire(), self.client_address)

    class Tcp(socketserver.BaseRequestHandler):
        def handle(self):
            conn = self.request
            conn.settimeout(10)
            while True:
                head = _read(conn, 2)
                if not head:
                    return
                data = _read(conn, struct.unpack("!H", head)[0])
                if data is None:
                    return
                try:
                    query = dns.message.from_wire(data)
                except dns.exception.DNSException:
                    return
                for resp in state.answer(query, tcp=True):
                    wire = resp.to_wire(max_size=65535)
                    conn.sendall(struct.pack("!H", len(wire)) + wire)

    class UdpServer(socketserver.ThreadingMixIn, socketserver.UDPServer):
        daemon_threads = True
        allow_reuse_address = True

    class TcpServer(socketserver.ThreadingMixIn, socketserver.TCPServer):
        daemon_threads = True
        allow_reuse_address = True

    port = int(config["port"])
    udp = UdpServer((LOOPBACK, port), Udp)
    tcp = TcpServer((LOOPBACK, port), Tcp)
    threading.Thread(target=udp.serve_forever, daemon=True).start()
    log(f"delayed primary on {LOOPBACK}:{port}, delay {state.delay:g}s, primary {state.primary}, "
        f"secondary {state.secondary}, zones {', '.join(config['zones'])}")
    tcp.serve_forever()


def _read(conn: socket.socket, size: int) -> bytes | None:
    buf = b""
    while len(buf) < size:
        try:
            chunk = conn.recv(size - len(buf))
        except OSError:
            return None
        if not chunk:
            return None
        buf += chunk
    return buf


if __name__ == "__main__":
    with open(sys.argv[1], encoding="utf-8") as fh:
        serve(json.load(fh))
