"""Attacks from inside a real docker bottle. Each asserts the failure where the agent sees it, and,
where the traffic reaches the bundle, the refusal in the bottle's audit log.

The bottle allows ``upstream.test`` (a local HTTPS server with a test CA, marked ``private: true``),
``private.test`` (resolves to a private address, *not* marked private), ``localhost`` (marked private:
loopback must still be refused) and ``own.test`` (marked private, but resolves into the bottle's own
egress network). A second, default bottle is live next to it for the cross-bottle attacks.
"""

from __future__ import annotations

import json
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path

import pytest
from tests.integration.dockerkit import TEST_LABEL, AgentBottle, Env, docker
from tests.integration.upstream import Upstream

pytestmark = pytest.mark.integration

OUTSIDE_NAME = "deb.debian.org"  # resolves on this host, so a leak would show as an answer
OUTSIDE_IP = "203.0.113.80"


@dataclass(frozen=True)
class Bottle(AgentBottle):
    def refusal(self, host: str, *, rule: str | None = None, source: str | None = None,
                wait: float = 5.0) -> dict[str, object]:
        """The audit line refusing ``host`` (waits briefly: the proxy writes after it answers)."""
        deadline = time.monotonic() + wait
        while True:
            for rec in self.audit():
                same_host = str(rec.get("host") or "").strip("[]") == host.strip("[]")
                if (same_host and rec.get("verdict") == "deny"
                        and (rule is None or rec.get("rule") == rule)
                        and (source is None or rec.get("source") == source)):
                    return rec
            if time.monotonic() > deadline:
                raise AssertionError(f"no deny of {host} (rule {rule}) in the audit log: "
                                     f"{json.dumps(self.audit()[-10:], indent=1)}")
            time.sleep(0.2)

    def never_allowed(self, host: str) -> None:
        allowed = [r for r in self.audit() if r.get("host") == host and r.get("verdict") == "allow"]
        assert not allowed, allowed

    def ips(self, container: str) -> dict[str, str]:
        nets = json.loads(docker("inspect", container))[0]["NetworkSettings"]["Networks"]
        return {name: net["IPAddress"] for name, net in nets.items()}

def _up(env: Env, *args: str) -> str:
    return json.loads(env.cli("up", *args, "--detach", "--yes", "--json").stdout)["slug"]


@pytest.fixture(scope="module")
def upstream(env: Env, images: None) -> Iterator[Upstream]:
    with Upstream(home=str(env.home), label=TEST_LABEL, aliases=("private.test",)) as up:
        # the proxy trusts the test CA for upstream TLS (the extra-CA setting, as a user behind
        # TLS inspection would configure it)
        (env.home / "upstream-ca.pem").write_bytes(up.trust_bundle.read_bytes())
        yield up


@pytest.fixture(scope="module")
def bottle(env: Env, upstream: Upstream) -> Iterator[Bottle]:
    (env.home / "bottles").mkdir(exist_ok=True)
    (env.home / "agents").mkdir(exist_ok=True)
    (env.home / "bottles" / "contain.md").write_text(
        "---\negress:\n  allow:\n"
        "    - host: upstream.test\n      private: true\n"
        "    - private.test\n"
        "    - host: localhost\n      private: true\n"
        "    - host: own.test\n      private: true\n"
        "---\n")
    (env.home / "agents" / "prober.md").write_text("---\nbottle: contain\n---\nYou probe the walls.\n")
    slug = _up(env, "prober")
    b = Bottle(slug, env)
    own = f"cb-own-{slug}"
    try:
        upstream.attach(b.bundle)
        # a container inside the bottle's own egress network, reachable by an allowlisted name
        docker("run", "-d", "--name", own, "--label", f"{TEST_LABEL}={env.home}",
               "--network", f"claude-bottle-egress-{slug}", "--network-alias", "own.test",
               "--entrypoint", "sleep", upstream.image, "infinity")
        yield b
    finally:
        docker("rm", "-f", own, check=False)
        docker("network", "disconnect", "--force", upstream.network, b.bundle, check=False)
        env.cli("down", slug, "--yes", "--discard", check=False)


@pytest.fixture(scope="module")
def neighbour(env: Env, images: None) -> Iterator[Bottle]:
    slug = _up(env, "--no-workspace")
    try:
        yield Bottle(slug, env)
    finally:
        env.cli("down", slug, "--yes", "--discard", check=False)


# -- allowed traffic ------------------------------------------------------------------------------
def test_allowed_https_to_an_allowlisted_host_works(bottle: Bottle) -> None:
    out = bottle.sh("curl -sS --max-time 20 https://upstream.test/")
    assert out.returncode == 0, out.stderr
    assert out.stdout == "upstream says hello\n"
    allowed = [r for r in bottle.audit() if r.get("host") == "upstream.test" and r.get("verdict") == "allow"]
    assert allowed


def test_the_agent_prompt_and_the_bottle_ca_are_provisioned(bottle: Bottle) -> None:
    out = bottle.sh("cat ~/.claude/CLAUDE.md; stat -c '%U' ~/.claude/CLAUDE.md ~/.claude.json /workspace")
    lines = out.stdout.splitlines()
    # the agent's prompt, then how its work leaves the bottle (claude_code.session_notes)
    assert lines[0] == "You probe the walls." and "This session runs in a claude-bottle" in out.stdout, out
    assert lines[-3:] == ["claude", "claude", "claude"], out
    ca = bottle.sh("grep -c 'BEGIN CERTIFICATE' \"$NODE_EXTRA_CA_CERTS\"; "
                   "echo $SSL_CERT_FILE $REQUESTS_CA_BUNDLE")
    system = "/etc/ssl/certs/ca-certificates.crt"
    assert ca.stdout.split() == ["1", system, system]


# -- the proxy refuses ----------------------------------------------------------------------------
def test_plain_http_to_an_unlisted_host_is_403_naming_the_rule(bottle: Bottle) -> None:
    out = bottle.sh(f"curl -sS --max-time 20 -w '\\n%{{http_code}}' http://{OUTSIDE_NAME}/")
    body, _, status = out.stdout.rpartition("\n")
    assert status == "403", out
    assert "default-deny" in body and "egress.allow" in body
    assert bottle.refusal(OUTSIDE_NAME, rule="default-deny")["source"] == "egress"


def test_https_to_an_unlisted_host_is_refused_at_connect(bottle: Bottle) -> None:
    out = bottle.sh(f"curl -sS --max-time 20 https://{OUTSIDE_NAME}/")
    assert out.returncode != 0 and "403" in out.stderr, out
    bottle.refusal(OUTSIDE_NAME, rule="default-deny")
    bottle.never_allowed(OUTSIDE_NAME)


@pytest.mark.parametrize("target", [OUTSIDE_IP, "3405803856", "0xcb007150", "[::ffff:203.0.113.80]",
                                    "[2001:db8::1]", "127.0.0.1"])
def test_ip_literals_are_refused(bottle: Bottle, target: str) -> None:
    plain = bottle.sh(f"curl -sS --max-time 20 -o /dev/null -w '%{{http_code}}' http://{target}/")
    assert plain.stdout == "403", plain
    tls = bottle.sh(f"curl -sS --max-time 20 https://{target}/")
    assert tls.returncode != 0 and "403" in tls.stderr, tls
    assert any(r.get("verdict") == "deny" and r.get("rule") in ("ip-literal", "bad-host")
               for r in bottle.audit()[-6:]), bottle.audit()[-6:]


def test_connect_with_raw_ip_forms_is_refused(bottle: Bottle) -> None:
    # CONNECT lines curl would never send: decimal, octal and hex forms of an outside address
    script = r"""
const http = require('http');
const targets = ['3405803856:443', '0313.0.0161.0120:443', '0xcb.0.0x71.0x50:443', '203.0.113.80:443'];
(async () => { for (const t of targets) { await new Promise(res => {
  http.request({host: 'egress', port: 3128, method: 'CONNECT', path: t})
    .on('connect', r => { console.log(t, r.statusCode); res(); })
    .on('error', e => { console.log(t, 'error', e.code); res(); }).end(); }); } })();
"""
    out = bottle.node(script)
    lines = out.stdout.split("\n")
    assert len([ln for ln in lines if ln.strip()]) == 4, out
    for line in filter(None, lines):
        assert line.split()[-1] in ("403", "400"), line


def test_allowlisted_name_resolving_to_a_private_address_is_refused(bottle: Bottle) -> None:
    out = bottle.sh("curl -sS --max-time 20 -o /dev/null -w '%{http_code}' http://private.test/")
    assert out.stdout == "403", out
    assert "private" in str(bottle.refusal("private.test", rule="private-address")["reason"])


def test_loopback_is_refused_even_when_marked_private(bottle: Bottle) -> None:
    out = bottle.sh("curl -sS --max-time 20 -o /dev/null -w '%{http_code}' http://localhost:3128/")
    assert out.stdout == "403", out
    bottle.refusal("localhost")


def test_a_name_inside_the_bottles_own_network_is_refused(bottle: Bottle) -> None:
    out = bottle.sh("curl -sS --max-time 20 -o /dev/null -w '%{http_code}' http://own.test/")
    assert out.stdout == "403", out
    bottle.refusal("own.test", rule="private-address")


def test_sni_different_from_the_connect_host_is_refused(bottle: Bottle) -> None:
    script = r"""
const http = require('http'), tls = require('tls');
http.request({host: 'egress', port: 3128, method: 'CONNECT', path: 'upstream.test:443'})
  .on('connect', (res, socket) => {
    console.log('connect', res.statusCode);
    const s = tls.connect({socket, servername: '%s', rejectUnauthorized: false}, () => {
      s.write('GET / HTTP/1.1\r\nHost: %s\r\nConnection: close\r\n\r\n');
    });
    let data = '';
    s.on('data', d => data += d);
    s.on('close', () => { console.log('reply', JSON.stringify(data.split('\r\n')[0] || '')); });
    s.on('error', e => { console.log('tls-error', e.code || e.message); });
  }).on('error', e => console.log('error', e.code)).end();
""".replace("%s", OUTSIDE_NAME)
    out = bottle.node(script)
    assert "connect 200" in out.stdout, out  # the CONNECT host itself is allowed
    assert "upstream says hello" not in out.stdout
    assert "reply \"HTTP/1.1 200" not in out.stdout, out
    bottle.refusal(OUTSIDE_NAME)
    bottle.never_allowed(OUTSIDE_NAME)


def test_host_header_different_from_the_tunnel_host_is_refused(bottle: Bottle) -> None:
    out = bottle.sh(f"curl -sS --max-time 20 -o /dev/null -w '%{{http_code}}' -H 'Host: {OUTSIDE_NAME}' "
                    "https://upstream.test/")
    assert out.stdout in ("403", "400"), out
    bottle.never_allowed(OUTSIDE_NAME)


# -- around the proxy -----------------------------------------------------------------------------
def test_without_proxy_variables_nothing_leaves(bottle: Bottle) -> None:
    before = len(bottle.audit())
    for url in ("https://upstream.test/", f"http://{OUTSIDE_NAME}/", f"http://{OUTSIDE_IP}/"):
        out = bottle.sh(f"env -u HTTP_PROXY -u HTTPS_PROXY -u http_proxy -u https_proxy "
                        f"curl -sS --max-time 8 --noproxy '*' {url}")
        assert out.returncode != 0, (url, out)
    # nothing went through the proxy, so it allowed nothing
    new = bottle.audit()[before:]
    assert not [r for r in new if r.get("verdict") == "allow" and r.get("source") == "egress"]


def _tcp_probe(targets: list[tuple[str, int]]) -> str:
    checks = " ".join(f"{h}:{p}" for h, p in targets)
    return (f"for t in {checks}; do h=${{t%:*}}; p=${{t##*:}}; "
            "if timeout 4 bash -c \"exec 3<>/dev/tcp/$h/$p\" 2>/dev/null; then echo OPEN $t; "
            "else echo closed $t; fi; done")


@pytest.fixture
def host_listener() -> Iterator[int]:
    class Quiet(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200)
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    server = HTTPServer(("0.0.0.0", 0), Quiet)  # every host address, like a careless dev server
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server.server_address[1]
    server.shutdown()
    server.server_close()


def _gateways(slug: str) -> list[str]:
    out = []
    for net in (f"claude-bottle-net-{slug}", f"claude-bottle-egress-{slug}", "bridge"):
        cfg = json.loads(docker("network", "inspect", net))[0]["IPAM"]["Config"]
        out += [c["Gateway"] for c in cfg if c.get("Gateway")]
    return out


def _host_addresses() -> list[str]:
    hostname = socket.gethostname()
    found = {ai[4][0] for ai in socket.getaddrinfo(hostname, None, socket.AF_INET)}
    route = subprocess.run(["ip", "-4", "-o", "addr"], capture_output=True, text=True, check=False).stdout
    found |= {ln.split()[3].split("/")[0] for ln in route.splitlines() if " inet " in ln}
    return sorted(a for a in found if not a.startswith("127."))


def test_direct_tcp_to_the_egress_side_and_the_host_fails(bottle: Bottle, upstream: Upstream,
                                                        host_listener: int) -> None:
    bundle_ips = bottle.ips(bottle.bundle)
    targets = [(bundle_ips[f"claude-bottle-egress-{bottle.slug}"], 3128),
               (bottle.ips(upstream.name)[upstream.network], 443),
               (OUTSIDE_IP, 80), ("1.1.1.1", 443)]
    targets += [(gw, host_listener) for gw in _gateways(bottle.slug)]
    targets += [(addr, host_listener) for addr in _host_addresses()]
    # the control: the host really listens there, and the same probe from a container on docker's
    # default bridge reaches it
    control = docker("run", "--rm", "--label", f"{TEST_LABEL}={bottle.env.home}", "--network", "bridge",
                     "--entrypoint", "bash", upstream.image,
                     "-c", _tcp_probe([("172.17.0.1", host_listener)]))
    assert "OPEN" in control, control
    out = bottle.sh(_tcp_probe(targets), timeout=120)
    assert "OPEN" not in out.stdout, out.stdout
    assert out.stdout.count("closed") == len(targets), out


def test_the_docker_host_gateway_is_refused_by_the_proxy_too(bottle: Bottle, host_listener: int) -> None:
    for gw in _gateways(bottle.slug):
        out = bottle.sh(f"curl -sS --max-time 10 -o /dev/null -w '%{{http_code}}' http://{gw}:{host_listener}/")
        assert out.stdout == "403", out
        bottle.refusal(gw)
    out = bottle.sh("getent hosts host.docker.internal")
    assert out.returncode != 0


def test_ipv6_is_off_in_the_agent(bottle: Bottle) -> None:
    out = bottle.sh("cat /proc/net/if_inet6; cat /proc/sys/net/ipv6/conf/all/disable_ipv6")
    assert out.stdout.strip() == "1", out  # no IPv6 address at all, not even link-local
    probe = bottle.node("""
const net = require('net');
const s = net.connect({host: 'fe80::1%eth0', port: 3128});
s.on('connect', () => { console.log('OPEN'); s.destroy(); });
s.on('error', e => console.log('error', e.code));
setTimeout(() => { console.log('timeout'); process.exit(0); }, 5000);
""")
    assert "OPEN" not in probe.stdout and "error" in probe.stdout, probe


# -- DNS ------------------------------------------------------------------------------------------
DNS_JS = r"""
const dns = require('dns');
const servers = %s, name = %r;
(async () => {
  for (const s of servers) {
    const r = new dns.promises.Resolver({timeout: 3000, tries: 1});
    if (s) r.setServers([s]);
    for (const type of ['A', 'AAAA', 'TXT']) {
      try { const a = await r.resolve(name, type); console.log(s || 'default', type, 'ANSWER', JSON.stringify(a)); }
      catch (e) { console.log(s || 'default', type, 'fail', e.code); }
    }
  }
})();
"""  # noqa: E501 - a program, not Python source


def test_outside_names_do_not_resolve_by_any_resolver(bottle: Bottle) -> None:
    resolv = Path("/etc/resolv.conf").read_text().splitlines()
    host_dns = [ln.split()[1] for ln in resolv if ln.startswith("nameserver")]
    assert socket.gethostbyname(OUTSIDE_NAME)  # the control: the host's resolver answers for it
    servers = ["", "127.0.0.11", "8.8.8.8", "1.1.1.1", *host_dns, *_gateways(bottle.slug)]
    out = bottle.node(DNS_JS % (json.dumps(servers), OUTSIDE_NAME), timeout=180)
    assert "ANSWER" not in out.stdout, out.stdout
    assert out.stdout.count("fail") == 3 * len(servers), out
    getent = bottle.sh(f"getent hosts {OUTSIDE_NAME}")
    assert getent.returncode != 0 and not getent.stdout
    # the query the agent's own resolver chain sent ended at the bundle's responder, which refused it
    bottle.refusal(OUTSIDE_NAME, source="dns")


DNS_TCP_JS = r"""
const net = require('net');
function query(name) {
  const labels = name.split('.').map(l => Buffer.concat([Buffer.from([l.length]), Buffer.from(l)]));
  const q = Buffer.concat([Buffer.from([0x12, 0x34, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0]), ...labels,
                           Buffer.from([0, 0, 1, 0, 1])]);
  const len = Buffer.alloc(2); len.writeUInt16BE(q.length);
  return Buffer.concat([len, q]);
}
const servers = %s, name = %r;
(async () => { for (const host of servers) { await new Promise(resolve => {
  let over = false;
  const done = () => { if (!over) { over = true; resolve(); } };
  const s = net.connect({host, port: 53});
  let got = Buffer.alloc(0);
  const t = setTimeout(() => { if (!over) console.log(host, 'timeout'); done(); s.destroy(); }, 4000);
  s.on('connect', () => s.write(query(name)));
  s.on('data', d => { got = Buffer.concat([got, d]); });
  s.on('end', () => {});
  s.on('close', () => { clearTimeout(t);
    if (over) return;
    if (got.length < 14) { console.log(host, 'no-answer'); return done(); }
    const rcode = got[5] & 15, answers = got.readUInt16BE(8);
    console.log(host, answers > 0 && rcode === 0 ? 'ANSWER' : 'refused rcode=' + rcode); done(); });
  s.on('error', e => { clearTimeout(t); if (!over) console.log(host, 'error', e.code); done(); });
}); } })();
"""


def test_dns_over_tcp_gets_no_outside_answer(bottle: Bottle) -> None:
    internal = bottle.ips(bottle.bundle)[f"claude-bottle-net-{bottle.slug}"]
    servers = ["127.0.0.11", internal, "8.8.8.8"]
    out = bottle.node(DNS_TCP_JS % (json.dumps(servers), OUTSIDE_NAME), timeout=60)
    assert "ANSWER" not in out.stdout and len(out.stdout.splitlines()) == len(servers), out.stdout


def test_the_bundle_names_do_resolve(bottle: Bottle) -> None:
    out = bottle.sh("getent hosts egress git-gate supervise")
    assert out.returncode == 0 and len(out.stdout.splitlines()) == 3, out


# -- the container itself -------------------------------------------------------------------------
def test_no_docker_socket_and_no_host_mounts(bottle: Bottle) -> None:
    out = bottle.sh("ls -la /var/run/docker.sock /run/docker.sock 2>&1; "
                    "find / -xdev -name '*.sock' -type s 2>/dev/null; "
                    "curl -sS --max-time 3 --unix-socket /var/run/docker.sock http://x/version")
    assert "No such file" in out.stdout and out.returncode != 0, out
    info = json.loads(docker("inspect", bottle.agent))[0]
    assert info["Mounts"] == []
    assert info["HostConfig"]["NetworkMode"] == f"claude-bottle-net-{bottle.slug}"
    assert list(info["NetworkSettings"]["Networks"]) == [f"claude-bottle-net-{bottle.slug}"]
    assert not info["HostConfig"]["Privileged"]


def test_privileges_cannot_be_raised(bottle: Bottle) -> None:
    status = bottle.sh("grep -E '^(CapInh|CapPrm|CapEff|CapBnd|CapAmb|NoNewPrivs):' /proc/self/status").stdout
    fields = dict(line.split(":\t") for line in status.strip().splitlines())
    assert {k: v.strip() for k, v in fields.items()} == {
        "CapInh": "0000000000000000", "CapPrm": "0000000000000000", "CapEff": "0000000000000000",
        "CapBnd": "0000000000000000", "CapAmb": "0000000000000000", "NoNewPrivs": "1"}
    for attempt in ("iptables -L", "ip link set lo down", "unshare -r true", "unshare -n true",
                    "su -c true root </dev/null", "sudo -n true",
                    "echo 1 > /proc/sys/net/ipv4/ip_forward", "mount -t tmpfs none /mnt"):
        out = bottle.sh(attempt)
        assert out.returncode != 0, (attempt, out)
    whoami = bottle.sh("id -u; id -g")
    assert whoami.stdout.split() == ["1000", "1000"]
    # Even uid 0 in this container (which the agent cannot become: no setuid under no-new-privileges,
    # no sudo, no root password) holds no capability: the network stays as it is.
    for attempt in ("echo 1 > /proc/sys/net/ipv4/ip_forward", "unshare -n true", "mount -t tmpfs none /mnt",
                    "echo 0 > /proc/sys/net/ipv6/conf/all/disable_ipv6", "chown claude /etc/passwd"):
        out = subprocess.run(["docker", "exec", "--user", "root", bottle.agent, "sh", "-c", attempt],
                             capture_output=True, text=True, check=False)
        assert out.returncode != 0, (attempt, out)


def test_the_bundle_keeps_only_the_two_capabilities_it_needs(bottle: Bottle) -> None:
    status = docker("exec", bottle.bundle, "cat", "/proc/1/status")
    fields = dict(line.split(":\t") for line in status.strip().splitlines() if ":\t" in line)
    # NET_BIND_SERVICE (bit 10: DNS on 53) and DAC_OVERRIDE (bit 1: the user's state dir)
    assert int(fields["CapEff"], 16) == (1 << 10) | (1 << 1)
    assert fields["NoNewPrivs"].strip() == "1"


def test_the_bundle_never_routes_between_its_networks(bottle: Bottle) -> None:
    info = json.loads(docker("inspect", bottle.bundle))[0]
    sysctls = info["HostConfig"]["Sysctls"]
    assert sysctls["net.ipv4.ip_forward"] == "0" and sysctls["net.ipv6.conf.all.forwarding"] == "0"
    live = docker("exec", bottle.bundle, "cat", "/proc/sys/net/ipv4/ip_forward",
                  "/proc/sys/net/ipv6/conf/all/forwarding")
    assert live.split() == ["0", "0"]


# -- another bottle -------------------------------------------------------------------------------
def test_another_bottles_bundle_is_unreachable(bottle: Bottle, neighbour: Bottle) -> None:
    ips = neighbour.ips(neighbour.bundle)
    targets = [(ip, port) for ip in ips.values() for port in (3128, 53)]
    out = bottle.sh(_tcp_probe(targets), timeout=60)
    assert "OPEN" not in out.stdout and out.stdout.count("closed") == len(targets), out
    for ip in ips.values():
        via = bottle.sh(f"curl -sS --max-time 10 -o /dev/null -w '%{{http_code}}' http://{ip}:3128/")
        assert via.stdout == "403", via
        bottle.refusal(ip)
    by_name = bottle.sh(f"curl -sS --max-time 10 -o /dev/null -w '%{{http_code}}' http://{neighbour.bundle}:3128/")
    assert by_name.stdout == "403", by_name
    bottle.refusal(neighbour.bundle)
