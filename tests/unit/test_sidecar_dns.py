"""The bundle's DNS responder, served for real on a loopback port: aliases answered, the rest refused
and logged, nothing forwarded."""

from __future__ import annotations

import json
import socket
import struct
import threading
import time

import pytest

from claude_bottle.sidecars import dns
from claude_bottle.sidecars.audit import AuditLog

NAMES = ("egress", "git-gate", "supervise")


def query(name: str, qtype: int = 1, ident: int = 0x1234, flags: int = 0x0100) -> bytes:
    labels = b"".join(bytes([len(p)]) + p.encode() for p in name.split(".") if p)
    return struct.pack("!HHHHHH", ident, flags, 1, 0, 0, 0) + labels + b"\x00" + struct.pack("!HH", qtype, 1)


def rcode(packet: bytes) -> int:
    return struct.unpack("!H", packet[2:4])[0] & 0xF


def ancount(packet: bytes) -> int:
    return struct.unpack("!H", packet[6:8])[0]


def start(log, **kwargs) -> int:
    """A responder on a free loopback port, on a daemon thread; returns once it answers."""
    probe = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    probe.bind(("127.0.0.1", 0))
    port = probe.getsockname()[1]
    probe.close()
    thread = threading.Thread(target=dns.serve, args=(NAMES, port, AuditLog(str(log)), ["127.0.0.1"]),
                              kwargs=kwargs, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while True:  # wait until it listens
        try:
            ask(port, query("egress"), timeout=0.2)
            return port
        except TimeoutError:
            if time.monotonic() > deadline or not thread.is_alive():
                raise


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    log = tmp_path_factory.mktemp("dns") / "egress.jsonl"
    return start(log), log


def ask(port: int, packet: bytes, timeout: float = 5) -> bytes:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.settimeout(timeout)
        sock.sendto(packet, ("127.0.0.1", port))
        return sock.recvfrom(4096)[0]


@pytest.mark.parametrize("name", ["egress", "EGRESS", "git-gate", "supervise", "egress."])
def test_aliases_resolve_to_the_address_the_query_arrived_on(server, name):
    port, _ = server
    reply = ask(port, query(name))
    assert rcode(reply) == 0 and ancount(reply) == 1
    assert reply[:2] == b"\x12\x34"
    assert reply[-4:] == socket.inet_aton("127.0.0.1")
    assert struct.unpack("!H", reply[2:4])[0] & 0x0080 == 0  # RA clear: no recursion offered


def test_other_types_for_aliases_are_empty(server):
    port, _ = server
    reply = ask(port, query("egress", qtype=28))
    assert rcode(reply) == 0 and ancount(reply) == 0


@pytest.mark.parametrize("name", ["example.com", "egress.example.com", "api.anthropic.com", "localhost",
                                  "x" * 40 + ".exfil.attacker.net"])
def test_everything_else_is_refused_and_logged(server, name):
    port, log = server
    reply = ask(port, query(name, qtype=16))
    assert rcode(reply) == dns.RCODE_REFUSED and ancount(reply) == 0
    lines = [json.loads(line) for line in log.read_text().splitlines()]
    hit = [r for r in lines if r["host"] == name.lower()]
    assert hit and hit[-1]["verdict"] == "deny" and hit[-1]["rule"] == "dns" and hit[-1]["method"] == "TXT"
    assert hit[-1]["source"] == "dns" and hit[-1]["kind"] == "dns"


def test_malformed_and_nonstandard_queries(server):
    port, _ = server
    assert rcode(ask(port, b"\x00\x01\x01\x00garbage-here")) == dns.RCODE_FORMERR
    assert rcode(ask(port, query("egress", flags=0x2800))) == dns.RCODE_NOTIMP  # opcode UPDATE
    # a response (QR set) is never answered: no reflection loops
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.settimeout(0.5)
        sock.sendto(query("egress", flags=0x8000), ("127.0.0.1", port))
        with pytest.raises(TimeoutError):
            sock.recvfrom(4096)


def ask_tcp(port: int, packet: bytes, timeout: float = 5) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        sock.sendall(struct.pack("!H", len(packet)) + packet[:5])
        time.sleep(0.05)  # a query split across segments is reassembled
        sock.sendall(packet[5:])
        data = b""
        while len(data) < 2 or len(data) < 2 + struct.unpack("!H", data[:2])[0]:
            chunk = sock.recv(4096)
            if not chunk:
                break
            data += chunk
    return data[2:]


def test_tcp_gets_the_same_answers(server):
    port, log = server
    reply = ask_tcp(port, query("git-gate"))
    assert rcode(reply) == 0 and reply[-4:] == socket.inet_aton("127.0.0.1")
    reply = ask_tcp(port, query("tcp-exfil.example.net"))
    assert rcode(reply) == dns.RCODE_REFUSED
    assert json.loads(log.read_text().splitlines()[-1])["host"] == "tcp-exfil.example.net"


def test_a_silent_tcp_client_does_not_stop_udp_for_long(server):
    port, _ = server
    with socket.create_connection(("127.0.0.1", port), timeout=5):
        started = time.monotonic()
        assert rcode(ask(port, query("egress"))) == 0
        assert time.monotonic() - started < dns.TCP_TIMEOUT + 2


def stall(port: int, count: int) -> list[socket.socket]:
    """``count`` TCP clients that never finish a query: half send nothing, half only a length prefix."""
    clients = []
    for i in range(count):
        sock = socket.create_connection(("127.0.0.1", port), timeout=5)
        if i % 2:
            sock.sendall(b"\x00\x40")
        clients.append(sock)
    time.sleep(0.1)  # let the responder accept them all
    return clients


def test_stalled_tcp_clients_delay_neither_udp_nor_other_tcp(server):
    port, _ = server
    clients = stall(port, 6)
    try:
        started = time.monotonic()
        assert rcode(ask(port, query("egress"), timeout=1)) == 0
        reply = ask_tcp(port, query("git-gate"), timeout=1)
        assert rcode(reply) == 0 and reply[-4:] == socket.inet_aton("127.0.0.1")
        assert time.monotonic() - started < 1
    finally:
        for sock in clients:
            sock.close()


def test_a_client_trickling_bytes_is_cut_off_at_the_deadline(server, monkeypatch):
    port, _ = server
    monkeypatch.setattr(dns, "TCP_TIMEOUT", 0.3)
    packet = struct.pack("!H", 64) + query("egress")
    with socket.create_connection(("127.0.0.1", port), timeout=2) as sock:
        started = time.monotonic()
        with pytest.raises(OSError):
            for byte in packet:  # each byte well inside a per-read timeout, the whole far past 0.3s
                sock.sendall(bytes([byte]))
                time.sleep(0.05)
                if time.monotonic() - started > 2:
                    pytest.fail("the responder kept a trickling client past its deadline")
        assert time.monotonic() - started < 2


def test_tcp_clients_over_the_cap_are_closed_at_once(tmp_path):
    port = start(tmp_path / "egress.jsonl", max_tcp=2)
    clients = stall(port, 2)
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1) as extra:
            assert extra.recv(16) == b""  # refused, not queued behind the stalled two
        assert rcode(ask(port, query("egress"), timeout=1)) == 0
    finally:
        for sock in clients:
            sock.close()
    deadline = time.monotonic() + 2
    while True:  # the slots come back once the stalled clients hang up
        try:
            assert rcode(ask_tcp(port, query("egress"), timeout=0.5)) == 0
            break
        except (OSError, struct.error):  # closed unanswered: a slot is not free yet
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)


def test_parse_query_rejects_compression_and_truncation():
    packet = query("egress")
    assert dns.parse_query(packet) is not None
    assert dns.parse_query(packet[:-1]) is None
    pointer = struct.pack("!HHHHHH", 1, 0, 1, 0, 0, 0) + b"\xc0\x0c" + struct.pack("!HH", 1, 1)
    assert dns.parse_query(pointer) is None
    two = struct.pack("!HHHHHH", 1, 0, 2, 0, 0, 0) + packet[12:] * 2
    assert dns.parse_query(two) is None
