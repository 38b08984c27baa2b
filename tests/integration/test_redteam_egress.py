"""Red team: ways off the box that the containment suite does not try, from inside a real docker bottle.

The bottle allows only ``upstream.test`` (a local server, ``private: true``), which serves HTTPS on 443
and, for these attacks, plain HTTP on port 2222 too: a service on a port the user never meant to open.
``deb.debian.org`` resolves and answers from the bundle on this machine, so a request that reached it
would show; it is not on the allowlist. A hole that is not fixed yet is ``xfail(strict=True)`` with the
reason. The bottle's audit log is capped at 1 MiB here (``AUDIT_CAP``) so that a flood proves the bound.
"""

from __future__ import annotations

import dataclasses
import json
import time
from collections.abc import Iterator
from dataclasses import dataclass

import pytest
from tests.integration.dockerkit import TEST_LABEL, AgentBottle, Env, docker
from tests.integration.upstream import Upstream

from claude_bottle.sidecars.audit import WINDOW

pytestmark = pytest.mark.integration

OTHER_PORT = 2222
AUDIT_CAP = 1024 * 1024
FORBIDDEN = "deb.debian.org"
PLAIN_SERVER = (
    "import http.server as h\n"
    "class H(h.BaseHTTPRequestHandler):\n"
    "    def do_GET(self):\n"
    "        b = b'other port says hello\\n'\n"
    "        self.send_response(200); self.send_header('Content-Length', str(len(b))); self.end_headers()\n"
    "        self.wfile.write(b)\n"
    "    def log_message(self, *a): pass\n"
    f"h.ThreadingHTTPServer(('0.0.0.0', {OTHER_PORT}), H).serve_forever()\n"
)


@dataclass(frozen=True)
class Bottle(AgentBottle):
    def allowed_hosts(self) -> set[str]:
        return {str(r.get("host")) for r in self.env.audit(self.slug) if r.get("verdict") == "allow"}

@pytest.fixture(scope="module")
def upstream(env: Env, images: None) -> Iterator[Upstream]:
    with Upstream(home=str(env.home), label=TEST_LABEL, aliases=("ported.test",)) as up:
        (env.home / "upstream-ca.pem").write_bytes(up.trust_bundle.read_bytes())
        docker("exec", "-d", up.name, "python3", "-c", PLAIN_SERVER)
        yield up


@pytest.fixture(scope="module")
def bottle(env: Env, upstream: Upstream) -> Iterator[Bottle]:
    (env.home / "bottles").mkdir(exist_ok=True)
    (env.home / "agents").mkdir(exist_ok=True)
    (env.home / "bottles" / "redteam-egress.md").write_text(
        "---\negress:\n  allow:\n    - {host: upstream.test, private: true}\n"
        f"    - {{host: ported.test, private: true, ports: [{OTHER_PORT}]}}\n---\n")
    (env.home / "agents" / "rt-egress.md").write_text("---\nbottle: redteam-egress\n---\nAttack.\n")
    # A small audit cap, so the flood below proves the bound in seconds (the default is 32 MiB).
    capped = dataclasses.replace(env, environ={**env.environ,
                                               "CLAUDE_BOTTLE_AUDIT_LOG_MAX_BYTES": str(AUDIT_CAP)})
    up = capped.cli("up", "rt-egress", "--no-workspace", "--detach", "--yes", "--json")
    slug = json.loads(up.stdout)["slug"]
    b = Bottle(slug, env)
    try:
        upstream.attach(b.bundle)
        yield b
    finally:
        docker("network", "disconnect", "--force", upstream.network, b.bundle, check=False)
        env.cli("down", slug, "--yes", "--discard", check=False)


def test_control_the_allowed_host_answers_on_443(bottle: Bottle) -> None:
    out = bottle.sh("curl -sS --max-time 20 https://upstream.test/")
    assert out.stdout == "upstream says hello\n", out


def _port_refusal(bottle: Bottle, host: str, port: int) -> None:
    lines = [r for r in bottle.env.audit(bottle.slug)
             if r.get("host") == host and r.get("port") == port and r.get("rule") == "port"]
    assert lines and all(r["verdict"] == "deny" for r in lines), bottle.env.audit(bottle.slug)[-5:]


def test_plain_http_to_another_port_of_an_allowed_host_is_refused(bottle: Bottle) -> None:
    """An allowed name is not every service on it: without ``ports:`` an entry opens 80 and 443."""
    out = bottle.sh(f"curl -sS --max-time 20 -w '\\n%{{http_code}}' http://upstream.test:{OTHER_PORT}/")
    assert "other port says hello" not in out.stdout, out
    body, _, status = out.stdout.rpartition("\n")
    assert status == "403" and "rule: port" in body and "ports of 'upstream.test'" in body, out
    _port_refusal(bottle, "upstream.test", OTHER_PORT)


def test_connect_to_another_port_of_an_allowed_host_is_refused(bottle: Bottle) -> None:
    for port in (OTHER_PORT, 22):
        out = bottle.sh(f"curl -sS --max-time 20 -p -x http://egress:3128 http://upstream.test:{port}/")
        assert "other port says hello" not in out.stdout and "403" in out.stderr, out
        _port_refusal(bottle, "upstream.test", port)


def test_an_entry_listing_ports_opens_those_and_only_those(bottle: Bottle) -> None:
    out = bottle.sh(f"curl -sS --max-time 20 http://ported.test:{OTHER_PORT}/")
    assert out.stdout == "other port says hello\n", out
    tls = bottle.sh("curl -sS --max-time 20 -o /dev/null https://ported.test/")
    assert tls.returncode != 0 and "403" in tls.stderr, tls
    _port_refusal(bottle, "ported.test", 443)


RAW_REQUESTS = {
    "userinfo": f"GET http://upstream.test@{FORBIDDEN}/ HTTP/1.1\r\nHost: {FORBIDDEN}\r\n",
    "userinfo-reverse": f"GET http://{FORBIDDEN}@upstream.test/ HTTP/1.1\r\nHost: upstream.test\r\n",
    "fragment": f"GET http://{FORBIDDEN}#@upstream.test/ HTTP/1.1\r\nHost: upstream.test\r\n",
    "backslash": f"GET http://{FORBIDDEN}\\@upstream.test/ HTTP/1.1\r\nHost: upstream.test\r\n",
    "two-hosts": f"GET http://upstream.test/ HTTP/1.1\r\nHost: upstream.test\r\nHost: {FORBIDDEN}\r\n",
    "origin-form": f"GET /debian/ HTTP/1.1\r\nHost: {FORBIDDEN}\r\n",
    "http10-no-host": f"GET http://{FORBIDDEN}/ HTTP/1.0\r\n",
    "connect-userinfo": f"CONNECT upstream.test@{FORBIDDEN}:80 HTTP/1.1\r\nHost: {FORBIDDEN}:80\r\n",
    "connect-space": f"CONNECT {FORBIDDEN} upstream.test:443 HTTP/1.1\r\nHost: upstream.test\r\n",
    "te-cl-smuggle": ("POST http://upstream.test/ HTTP/1.1\r\nHost: upstream.test\r\nContent-Length: 4\r\n"
                      "Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n"
                      f"GET http://{FORBIDDEN}/debian/ HTTP/1.1\r\nHost: {FORBIDDEN}\r\n"),
    "absolute-https-no-connect": f"GET https://{FORBIDDEN}/ HTTP/1.1\r\nHost: {FORBIDDEN}\r\n",
    "trailing-dots": f"GET http://{FORBIDDEN}../ HTTP/1.1\r\nHost: {FORBIDDEN}..\r\n",
}


@pytest.mark.parametrize("name", sorted(RAW_REQUESTS))
def test_request_line_tricks_never_reach_an_unlisted_host(bottle: Bottle, name: str) -> None:
    request = RAW_REQUESTS[name] + "Connection: close\r\n\r\n"
    script = ("const net = require('net'); const s = net.connect(3128, 'egress', () => s.write(REQ));"
              "let d = ''; s.on('data', x => d += x); s.on('close', () => console.log(d));"
              "s.on('error', e => console.log('error ' + e.code));"
              "setTimeout(() => { console.log(d); process.exit(0); }, 8000);")
    script = script.replace("REQ", json.dumps(request))
    out = bottle.node(script)
    status = out.stdout.split("\r\n", 1)[0]
    # refused by the proxy (403), unparsable to it (400), or nothing; never an answer from upstream
    assert status.split()[1:2] in (["400"], ["403"], ["502"]) or not status.strip(), out.stdout
    assert FORBIDDEN not in bottle.allowed_hosts()


def test_the_bundle_offers_the_agent_only_its_services(bottle: Bottle) -> None:
    """Every TCP port of the bundle, from the agent: only DNS, the proxy and git-gate answer (no
    mitmproxy web UI, no debug or admin port to use as a relay)."""
    scan = r"""
const net = require('net');
const open = [];
let next = 1, live = 0;
function one() {
  if (next > 65535) { if (live === 0) { console.log(JSON.stringify(open)); process.exit(0); } return; }
  const port = next++; live++;
  const s = net.connect({host: 'egress', port});
  const done = () => { s.destroy(); live--; one(); };
  s.setTimeout(1500, done);
  s.on('connect', () => { open.push(port); done(); });
  s.on('error', done);
}
for (let i = 0; i < 400; i++) one();
"""
    out = bottle.node(scan, timeout=600)
    # git-gate listens only when the bottle has a git workspace (this one has none)
    assert json.loads(out.stdout.strip().splitlines()[-1]) in ([53, 3128], [53, 3128, 8418]), out


def test_the_bundle_dns_answers_only_its_exact_names(bottle: Bottle) -> None:
    names = ["x.egress", "egress.deb.debian.org", "egress.", "EGRESS", "git-gate.local", "supervise.egress",
             "a" * 63 + ".egress"]
    script = """
const dns = require('dns');
const r = new dns.promises.Resolver({timeout: 3000, tries: 1});
r.setServers([%s]);
(async () => { for (const n of %s) { for (const t of ['A', 'TXT', 'ANY', 'SRV']) {
  try { const a = await r.resolve(n, t); console.log(n, t, 'ANSWER', JSON.stringify(a)); }
  catch (e) { console.log(n, t, 'fail', e.code); } } } })();
"""
    bundle_ip = json.loads(docker("inspect", bottle.bundle))[0]["NetworkSettings"]["Networks"][
        f"claude-bottle-net-{bottle.slug}"]["IPAddress"]
    for server in (bundle_ip, "127.0.0.11"):
        out = bottle.node(script % (json.dumps(server), json.dumps(names)))
        answered = [ln for ln in out.stdout.splitlines() if "ANSWER" in ln]
        # the exact alias, in any case and with a trailing dot, is the bundle; nothing below it is
        assert all(ln.split()[0].lower().rstrip(".") == "egress" and ln.split()[1] in ("A", "ANY")
                   for ln in answered), (server, answered)


def test_escape_sequences_the_agent_plants_in_the_audit_log_do_not_reach_the_users_terminal(
        bottle: Bottle) -> None:
    """A DNS name is the agent's choice, byte for byte, and the refusal is logged: ``logs --egress``
    must not replay an escape sequence (retitle, clear screen, clipboard write) on the user's terminal."""
    bottle.node(r"""
const dgram = require('dgram');
const label = Buffer.from('\x1b]0;pwned\x07\x1b[2J\x1b]52;c;aGk=\x07');
const q = Buffer.concat([Buffer.from([0x12, 0x34, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0]), Buffer.from([label.length]),
                         label, Buffer.from([3]), Buffer.from('com'), Buffer.from([0, 0, 1, 0, 1])]);
const s = dgram.createSocket('udp4');
s.send(q, 53, '127.0.0.11');
s.on('message', () => process.exit(0));
setTimeout(() => process.exit(0), 3000);
""")
    logged = [r for r in bottle.env.audit(bottle.slug) if "pwned" in str(r.get("host"))]
    assert logged, "the planted name was not logged"
    shown = bottle.env.cli("logs", bottle.slug, "--egress")
    assert "pwned" in shown.stdout
    assert "\x1b" not in shown.stdout and "\x07" not in shown.stdout, repr(shown.stdout[-400:])


def _log_sizes(bottle: Bottle) -> tuple[int, int]:
    logs = bottle.env.state_dir(bottle.slug) / "logs"
    return tuple((logs / name).stat().st_size if (logs / name).exists() else 0  # type: ignore[return-value]
                 for name in ("egress.jsonl", "egress.jsonl.1"))


def _dns_flood(bottle: Bottle, *, distinct: bool, count: int = 20000) -> None:
    """``count`` refused queries from the agent, as fast as node sends them (three 63-byte labels
    each: ~250 bytes per audit line when each is logged)."""
    number = "String(i).padStart(8, '0')" if distinct else "'00000000'"
    bottle.node(r"""
const dgram = require('dgram'), s = dgram.createSocket('udp4'), label = Buffer.from('a'.repeat(63));
function q(i) { return Buffer.concat([Buffer.from([i >> 8 & 255, i & 255, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0]),
  Buffer.from([63]), label, Buffer.from([63]), label, Buffer.from([63]), label,
  Buffer.from([8]), Buffer.from(NUMBER), Buffer.from([0, 0, 1, 0, 1])]); }
(async () => { for (let i = 0; i < COUNT; i++) { s.send(q(i), 53, 'egress');
  if (i % 200 === 0) await new Promise(r => setTimeout(r, 5)); }
  setTimeout(() => process.exit(0), 2000); })();
""".replace("NUMBER", number).replace("COUNT", str(count)), timeout=180)


def test_a_flood_of_one_refused_name_is_counted_not_logged_line_by_line(bottle: Bottle) -> None:
    before = sum(_log_sizes(bottle))
    _dns_flood(bottle, distinct=False)
    time.sleep(WINDOW + 1)  # the window closes: its summary line is written
    grown = sum(_log_sizes(bottle)) - before
    flood = [r for r in bottle.env.audit(bottle.slug) if str(r.get("host", "")).startswith("a" * 63)
             and str(r.get("host", "")).endswith(".00000000")]
    repeated = sum(int(r.get("repeated", 0)) for r in flood)  # type: ignore[call-overload]
    print(f"identical flood: 20000 queries, log grew {grown} bytes, {len(flood)} lines, {repeated} counted")
    assert grown < 64 * 1024, f"the audit log grew by {grown} bytes from one repeated refused name"
    assert repeated > 1000, "the refusals were neither logged nor counted"


def test_an_agent_cannot_grow_the_audit_log_on_the_host_without_bound(bottle: Bottle) -> None:
    """Distinct refused names (~5 MB of audit lines, five times the bottle's 1 MiB cap here) leave at
    most twice the cap on the host's disk: the log rotates, keeping one older file."""
    _dns_flood(bottle, distinct=True)
    current, older = _log_sizes(bottle)
    print(f"distinct flood: 20000 queries, egress.jsonl {current} bytes + egress.jsonl.1 {older} bytes "
          f"(cap {AUDIT_CAP})")
    assert older > 0, "the log never rotated: the flood was not logged"
    assert current <= AUDIT_CAP and older <= AUDIT_CAP + 4096, (current, older)
    # The newest refusals are still there: the log keeps recording through the flood.
    newest = [r for r in bottle.env.audit(bottle.slug) if str(r.get("host", "")).startswith("a" * 63)]
    assert newest and int(str(newest[-1]["host"]).rsplit(".", 1)[1]) >= 15000, newest[-1:]
