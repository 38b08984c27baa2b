"""The agent's only resolver: answers A queries for the bundle's own names, refuses everything else.

Nothing is ever forwarded, so a DNS query cannot carry data out of the bottle (no tunnel through a
recursive resolver). Each ``egress``/``git-gate``/``supervise`` query is answered with the bundle's
address on the interface the query arrived on (one socket per local IPv4 address), so the agent reaches
the bundle on its own network. AAAA and other types for those names get an empty NOERROR (the client
falls back to A); any other name gets REFUSED and a deny line in the audit log (rule ``dns``). UDP and
TCP are both answered, so a resolver that retries over TCP gets the same REFUSED. Each TCP client is
served on its own thread with a deadline, and only ``MAX_TCP_CLIENTS`` at once, so a client that
connects and stalls delays neither UDP nor other TCP queries.

Stdlib only. Run as ``python3 -m claude_bottle.sidecars.dns [CONFIG]`` (the bundle's init does).
"""

from __future__ import annotations

import selectors
import socket
import struct
import sys
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass

from claude_bottle.sidecars import netinfo
from claude_bottle.sidecars.audit import AuditLog, audit_record
from claude_bottle.sidecars.config import CONFIG_PATH, load_bundle_config

__all__ = ["Query", "answer", "parse_query", "serve"]

TYPE_A = 1
CLASS_IN = 1
RCODE_FORMERR, RCODE_SERVFAIL, RCODE_NOTIMP, RCODE_REFUSED = 1, 2, 4, 5
_TYPES = {1: "A", 2: "NS", 5: "CNAME", 6: "SOA", 12: "PTR", 15: "MX", 16: "TXT", 28: "AAAA", 33: "SRV",
          65: "HTTPS", 255: "ANY"}
TTL = 60
TCP_TIMEOUT = 2.0  # for a whole TCP exchange, so trickling a byte at a time does not extend it
MAX_TCP_CLIENTS = 32


@dataclass(frozen=True)
class Query:
    ident: int
    flags: int
    name: str       # lowercase, no trailing dot
    qtype: int
    qclass: int
    question: bytes  # the raw question section, echoed in the answer


def parse_query(packet: bytes) -> Query | None:
    """The single question of a standard query, or ``None`` for anything malformed."""
    if len(packet) < 12:
        return None
    ident, flags, qdcount = struct.unpack("!HHH", packet[:6])
    if flags & 0x8000 or qdcount != 1:
        return None
    pos, labels = 12, []
    while True:
        if pos >= len(packet):
            return None
        length = packet[pos]
        if length == 0:
            pos += 1
            break
        if length > 63 or pos + 1 + length > len(packet):
            return None  # also rejects compression pointers, which a question never needs
        labels.append(packet[pos + 1:pos + 1 + length])
        pos += 1 + length
    if pos + 4 > len(packet):
        return None
    qtype, qclass = struct.unpack("!HH", packet[pos:pos + 4])
    name = b".".join(labels).decode("ascii", errors="replace").lower()
    return Query(ident, flags, name, qtype, qclass, packet[12:pos + 4])


def _header(query: Query, rcode: int, ancount: int) -> bytes:
    opcode = query.flags & 0x7800
    rd = query.flags & 0x0100
    flags = 0x8000 | opcode | 0x0400 | rd | rcode  # QR, AA, echo RD; RA stays 0: we never recurse
    return struct.pack("!HHHHHH", query.ident, flags, 1, ancount, 0, 0)


def answer(query: Query, names: Iterable[str], address: str) -> tuple[bytes, bool]:
    """The response packet, and whether the query was for one of ``names`` (refusals are logged)."""
    if query.flags & 0x7800:
        return _header(query, RCODE_NOTIMP, 0) + query.question, False
    if query.name not in set(names) or query.qclass != CLASS_IN:
        return _header(query, RCODE_REFUSED, 0) + query.question, False
    if query.qtype != TYPE_A:
        return _header(query, 0, 0) + query.question, True  # NODATA: the name exists, has only A
    record = b"\xc0\x0c" + struct.pack("!HHIH", TYPE_A, CLASS_IN, TTL, 4) + socket.inet_aton(address)
    return _header(query, 0, 1) + query.question + record, True


def _refused_packet(packet: bytes) -> bytes | None:
    if len(packet) < 12:
        return None
    ident, flags = struct.unpack("!HH", packet[:4])
    if flags & 0x8000:
        return None  # never answer a response (reflection loops)
    return struct.pack("!HHHHHH", ident, 0x8000 | (flags & 0x7900) | RCODE_FORMERR, 0, 0, 0, 0)


def _respond(packet: bytes, names: tuple[str, ...], address: str, peer: str, audit: AuditLog) -> bytes | None:
    query = parse_query(packet)
    if query is None:
        return _refused_packet(packet)
    reply, known = answer(query, names, address)
    if not known:
        audit.write(audit_record(
            source="dns", kind="dns", method=_TYPES.get(query.qtype, str(query.qtype)),
            host=query.name, port=None, verdict="deny", rule="dns",
            reason="the bottle's resolver answers only the bundle's own names", client=peer,
        ))
    return reply


def _serve_tcp(conn: socket.socket, names: tuple[str, ...], address: str, audit: AuditLog,
               slots: threading.BoundedSemaphore) -> None:
    """One query over TCP (two-byte length prefix), then close, all within ``TCP_TIMEOUT``. Runs on
    its own thread and frees its slot when done."""
    deadline = time.monotonic() + TCP_TIMEOUT
    try:
        with conn:
            data = b""
            while len(data) < 2 or len(data) < 2 + struct.unpack("!H", data[:2])[0]:
                left = deadline - time.monotonic()
                if left <= 0:
                    return
                conn.settimeout(left)
                chunk = conn.recv(65537)
                if not chunk:
                    return
                data += chunk
            reply = _respond(data[2:2 + struct.unpack("!H", data[:2])[0]], names, address,
                             conn.getpeername()[0], audit)
            if reply is not None:
                conn.settimeout(max(deadline - time.monotonic(), 0.1))
                conn.sendall(struct.pack("!H", len(reply)) + reply)
    except OSError:
        return
    finally:
        slots.release()


def _accept_tcp(sock: socket.socket, names: tuple[str, ...], address: str, audit: AuditLog,
                slots: threading.BoundedSemaphore) -> None:
    conn, _ = sock.accept()
    if not slots.acquire(blocking=False):
        conn.close()  # over the cap: this client is refused at once rather than queued behind the rest
        return
    try:
        threading.Thread(target=_serve_tcp, args=(conn, names, address, audit, slots), daemon=True).start()
    except RuntimeError:  # no thread to be had: drop this client, keep serving
        conn.close()
        slots.release()


def serve(names: tuple[str, ...], port: int, audit: AuditLog, addresses: list[str] | None = None,
          max_tcp: int = MAX_TCP_CLIENTS) -> None:
    addrs = addresses if addresses is not None else [
        str(i.interface.ip) for i in netinfo.interfaces() if i.interface.version == 4
    ]
    slots = threading.BoundedSemaphore(max_tcp)
    sel = selectors.DefaultSelector()
    for addr in addrs:
        udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        udp.bind((addr, port))
        sel.register(udp, selectors.EVENT_READ, addr)
        tcp = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        tcp.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        tcp.bind((addr, port))
        tcp.listen(16)
        sel.register(tcp, selectors.EVENT_READ, addr)
    print(f"claude-bottle dns: answering {', '.join(names)} on {', '.join(addrs)} port {port} (udp, tcp)",
          file=sys.stderr, flush=True)
    while True:
        for key, _ in sel.select():
            sock = key.fileobj
            assert isinstance(sock, socket.socket)
            try:
                if sock.type == socket.SOCK_STREAM:
                    _accept_tcp(sock, names, key.data, audit, slots)
                    continue
                packet, peer = sock.recvfrom(4096)
                reply = _respond(packet, names, key.data, peer[0], audit)
                if reply is not None:
                    sock.sendto(reply, peer)
            except OSError:
                continue


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    cfg = load_bundle_config(args[0] if args else CONFIG_PATH)
    serve(cfg.dns_names, cfg.dns_port, AuditLog(cfg.audit_log, max_bytes=cfg.audit_max_bytes))
    return 0


if __name__ == "__main__":
    sys.exit(main())
