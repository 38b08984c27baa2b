"""The sidecar bundle on its own, in the real image on the real engine: the egress proxy and DNS attacked
from another container on the bottle's network.

Topology: one labelled network (the bottle's), the bundle on it (aliases egress, git-gate, supervise)
with the hardening the docker backend uses, a client container from the agent image next to it, and
a local HTTPS upstream (its own network, a throw-away test CA) that the bundle joins after it started.
Every refusal is asserted where the client sees it (status, body) and where the proxy saw it (the
audit log on the host).
"""

from __future__ import annotations

import json
import socket
import struct
import subprocess
import tempfile
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from tests.integration.dockerkit import HOST_CA, TEST_LABEL, Env, docker
from tests.integration.upstream import Upstream

from claude_bottle.backends.base import NullProgress
from claude_bottle.config import Settings
from claude_bottle.identity import labels
from claude_bottle.runner import SubprocessRunner
from claude_bottle.sidecars.config import BundleConfig, Rule, dump_bundle_config
from claude_bottle_docker.images import ensure_images

BUNDLE_CAPS = ("NET_BIND_SERVICE", "DAC_OVERRIDE", "SETUID", "SETGID", "CHOWN")
BOTTLE_FILE = "/home/u/.claude-bottle/bottles/dev.md"  # the 403 names the file rendered in bundle.yaml
RULES = (
    Rule("upstream.test", private=True),           # the local upstream: a private address, allowed
    Rule("upstream-pt.test", private=True, passthrough=True),
    Rule("private.test"),                          # resolves to 10.255.0.1: refused (no private: true)
    Rule("loopback.test", private=True),           # 127.0.0.1: refused even with private: true
    Rule("meta.test", private=True),               # 169.254.169.254
    Rule("own-client.test", private=True),         # the client's own address on the bottle network
    Rule("get-only.test", private=True, methods=("GET",)),
)


@dataclass
class Bottle:
    slug: str
    bundle: str
    client: str
    network: str
    bundle_ip: str
    logs: Path
    upstream: Upstream

    def audit(self) -> list[dict[str, object]]:
        path = self.logs / "egress.jsonl"
        return [json.loads(line) for line in path.read_text().splitlines()] if path.is_file() else []

    def audit_for(self, host: str, since: int = 0) -> list[dict[str, object]]:
        return [r for r in self.audit()[since:] if r["host"] == host]

    def sh(self, script: str, *args: str, timeout: float = 60) -> subprocess.CompletedProcess[bytes]:
        return subprocess.run(["docker", "exec", self.client, "bash", "-c", script, "_", *args],
                              capture_output=True, timeout=timeout, check=False)

    def curl(self, *args: str) -> tuple[int, str, str]:
        proc = self.sh('curl -sS -m 20 -x http://egress:3128 --cacert /tmp/bottle-ca.pem "$@"', *args)
        return proc.returncode, proc.stdout.decode(errors="replace"), proc.stderr.decode(errors="replace")

    def raw(self, request: str) -> str:
        """Send ``request`` (``\\r\\n`` escapes) to the proxy over a bare socket; return its answer."""
        script = 'exec 3<>/dev/tcp/egress/3128; printf "%b" "$1" >&3; timeout 3 cat <&3'
        return self.sh(script, request).stdout.decode(errors="replace")


def wait_until(predicate, what: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


def ip_of(container: str) -> str:
    return docker("inspect", "--format", "{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}",
                  container).strip()


@pytest.fixture(scope="module")
def bottle(env: Env) -> Iterator[Bottle]:
    settings = Settings(home=env.home, extra_ca_certs=HOST_CA if HOST_CA.is_file() else None)
    refs = ensure_images(runner=SubprocessRunner(), settings=settings, progress=NullProgress())
    slug = f"bundletest-{uuid.uuid4().hex[:5]}"

    def lab(role: str) -> list[str]:
        pairs = labels(slug=slug, backend="docker", role=role, agent="bundletest", home=str(env.home))
        return [a for k, v in pairs.items() for a in ("--label", f"{k}={v}")]

    stage = Path(tempfile.mkdtemp(prefix="cb-bundle-stage-"))
    logs = Path(tempfile.mkdtemp(prefix="cb-bundle-logs-"))
    network, bundle, client = (f"claude-bottle-net-{slug}", f"claude-bottle-sidecars-{slug}",
                               f"claude-bottle-{slug}")
    with Upstream(home=str(env.home), label=TEST_LABEL, image=refs.sidecars,
                  aliases=("upstream-pt.test", "get-only.test")) as upstream:
        try:
            cfg = BundleConfig(slug=slug, bottle="dev", rules=RULES, bottle_file=BOTTLE_FILE)
            (stage / "bundle.yaml").write_text(dump_bundle_config(cfg))
            (stage / "upstream-ca.pem").write_bytes(upstream.trust_bundle.read_bytes())
            docker("network", "create", "--internal", *lab("network"), network)
            # The client first, so the bundle can be told its address (own-client.test).
            docker("run", "-d", "--name", client, *lab("agent"), "--network", network,
                   "--cap-drop", "ALL", "--security-opt", "no-new-privileges", refs.agent)
            client_ip = ip_of(client)
            docker("run", "-d", "--name", bundle, *lab("sidecars"), "--network", network,
                   *[a for alias in ("egress", "git-gate", "supervise") for a in ("--network-alias", alias)],
                   "--cap-drop", "ALL", *[a for cap in BUNDLE_CAPS for a in ("--cap-add", cap)],
                   "--security-opt", "no-new-privileges", "--tmpfs", "/run/claude-bottle",
                   "--add-host", "private.test:10.255.0.1", "--add-host", "loopback.test:127.0.0.1",
                   "--add-host", "meta.test:169.254.169.254", "--add-host", f"own-client.test:{client_ip}",
                   "--mount", f"type=bind,source={stage},target=/etc/claude-bottle,readonly",
                   "--mount", f"type=bind,source={logs},target=/var/log/claude-bottle",
                   refs.sidecars)
            bundle_ip = ip_of(bundle)

            def ready() -> bool:
                probe = ("import socket; socket.create_connection(('127.0.0.1', 3128), 1); "
                         "open('/run/claude-bottle/ca/ca.pem').read()")
                return subprocess.run(["docker", "exec", bundle, "python3", "-c", probe],
                                      capture_output=True, check=False).returncode == 0

            wait_until(ready, "the proxy to listen")
            upstream.attach(bundle)  # after start: the upstream's network is not one of the bottle's
            ca = docker("exec", bundle, "cat", "/run/claude-bottle/ca/ca.pem")
            docker("exec", "-i", client, "sh", "-c", "cat > /tmp/bottle-ca.pem", input=ca.encode())
            yield Bottle(slug, bundle, client, network, bundle_ip, logs, upstream)
        finally:
            print(docker("logs", bundle, check=False, timeout=30))
            for name in (client, bundle):
                docker("rm", "-f", name, check=False)
            docker("network", "rm", network, check=False)
            for path in (stage, logs):
                subprocess.run(["rm", "-rf", str(path)], check=False)


# -- allowed traffic -------------------------------------------------------------------------------
def test_allowed_https_host_is_reached_through_the_bottle_ca(bottle):
    start = len(bottle.audit())
    rc, out, err = bottle.curl("https://upstream.test/")
    assert (rc, out) == (0, "upstream says hello\n"), err
    lines = bottle.audit_for("upstream.test", start)
    assert [(r["kind"], r["verdict"], r["rule"]) for r in lines] == [
        ("connect", "allow", "upstream.test"), ("request", "allow", "upstream.test")]
    assert lines[1]["method"] == "GET" and lines[1]["path"] == "/"


def test_the_bottle_ca_is_what_the_client_sees(bottle):
    rc, _, err = bottle.curl("-v", "https://upstream.test/")
    assert rc == 0
    assert f"claude-bottle {bottle.slug} CA" in err  # issuer of the certificate the client got


def test_keepalive_requests_in_one_tunnel_are_each_judged(bottle):
    start = len(bottle.audit())
    rc, out, err = bottle.curl("https://upstream.test/a", "https://upstream.test/b?secret=x")
    assert rc == 0 and out == "upstream says hello\n" * 2, err
    requests = [r for r in bottle.audit_for("upstream.test", start) if r["kind"] == "request"]
    assert [r["path"] for r in requests] == ["/a", "/b"]  # query strings never logged


def test_method_rule_applies_inside_the_tunnel(bottle):
    start = len(bottle.audit())
    _rc, out, _ = bottle.curl("-X", "POST", "https://get-only.test/")
    assert "rule: method" in out and "GET" in out
    bottle.curl("https://get-only.test/")  # GET passes the policy (the upstream's cert then fails: 502)
    requests = [r for r in bottle.audit_for("get-only.test", start) if r["kind"] == "request"]
    assert [(r["method"], r["verdict"], r["rule"]) for r in requests] == [
        ("POST", "deny", "method"), ("GET", "allow", "get-only.test")]


def test_upstream_certificate_is_verified(bottle):
    # get-only.test is the upstream under another name: its certificate names upstream.test only.
    proc = bottle.sh('curl -sS -m 20 -x http://egress:3128 --cacert /tmp/bottle-ca.pem -w "%{http_code}" '
                     "https://get-only.test/")
    out = proc.stdout.decode(errors="replace")
    assert out.endswith("502") and "upstream says hello" not in out
    assert "hostname mismatch" in out or "certificate" in out.lower()


def test_passthrough_host_is_not_intercepted(bottle):
    # The certificate comes from the upstream's own test CA, not the bottle's: nothing was decrypted.
    proc = bottle.sh("curl -sS -v -k -m 20 -x http://egress:3128 https://upstream-pt.test/")
    err = proc.stderr.decode(errors="replace")
    assert proc.returncode == 0, err
    assert "claude-bottle test CA" in err and f"claude-bottle {bottle.slug} CA" not in err
    assert bottle.audit_for("upstream-pt.test")[-1]["verdict"] == "allow"


# -- refusals --------------------------------------------------------------------------------------
def test_denied_host_plain_http_is_403_naming_the_rule_and_the_fix(bottle):
    proc = bottle.sh('curl -sS -m 20 -x http://egress:3128 -o - -w "%{http_code}" http://denied.test/path?q=1')
    out = proc.stdout.decode()
    assert out.endswith("403")
    assert "rule: default-deny" in out
    assert f'add "denied.test" to egress.allow in {BOTTLE_FILE}' in out
    (line,) = bottle.audit_for("denied.test")
    assert (line["verdict"], line["rule"], line["method"], line["path"], line["port"]) == (
        "deny", "default-deny", "GET", "/path", 80)


def test_denied_host_connect_is_403(bottle):
    start = len(bottle.audit())
    rc, _, err = bottle.curl("https://denied-tls.test/")
    assert rc == 56 and "CONNECT tunnel failed, response 403" in err
    (line,) = bottle.audit_for("denied-tls.test", start)
    assert (line["kind"], line["verdict"], line["rule"]) == ("connect", "deny", "default-deny")
    answer = bottle.raw("CONNECT denied-tls.test:443 HTTP/1.1\\r\\nHost: denied-tls.test:443\\r\\n\\r\\n")
    assert answer.startswith("HTTP/1.1 403") and "rule: default-deny" in answer


@pytest.mark.parametrize(
    "target",
    ["2130706433:443", "0x7f.1:443", "0177.0.0.1:443", "127.0.0.1.:443", "[::1]:443",
     "[::ffff:127.0.0.1]:443", "169.254.169.254:80", "1.1.1.1:443", "[fd00:ec2::254]:80"],
)
def test_ip_literal_connect_is_refused(bottle, target):
    start = len(bottle.audit())
    answer = bottle.raw(f"CONNECT {target} HTTP/1.1\\r\\nHost: {target}\\r\\n\\r\\n")
    assert answer.startswith("HTTP/1.1 403"), answer
    assert "rule: ip-literal" in answer
    assert [r["rule"] for r in bottle.audit()[start:]] == ["ip-literal"]


@pytest.mark.parametrize("url", ["http://2130706433/", "http://[::1]:8080/", "http://0x7f000001/"])
def test_ip_literal_plain_http_is_refused(bottle, url):
    answer = bottle.raw(f"GET {url} HTTP/1.1\\r\\nHost: x\\r\\nConnection: close\\r\\n\\r\\n")
    assert answer.startswith("HTTP/1.1 403") and "rule: ip-literal" in answer


@pytest.mark.parametrize(
    ("host", "kind"),
    [("private.test", "private"), ("loopback.test", "loopback"), ("meta.test", "metadata"),
     ("own-client.test", "own-network")],
)
def test_names_resolving_to_forbidden_addresses_are_refused(bottle, host, kind):
    for url, expect in ((f"https://{host}/", "CONNECT tunnel failed, response 403"),
                        (f"http://{host}/", None)):
        _rc, out, err = bottle.curl(url)
        if expect:
            assert expect in err
        else:
            assert "rule: private-address" in out and kind in out
        line = bottle.audit_for(host)[-1]
        assert (line["verdict"], line["rule"]) == ("deny", "private-address")
        assert kind in str(line["reason"])


def test_sni_differing_from_connect_host_is_refused(bottle):
    start = len(bottle.audit())
    # CONNECT upstream.test:443 (allowed), then a ClientHello for denied-sni.test.
    rc, out, err = bottle.curl("--connect-to", "denied-sni.test:443:upstream.test:443", "https://denied-sni.test/")
    assert "upstream says hello" not in out
    assert "rule: sni-mismatch" in out, (rc, out, err)
    rules = [(r["kind"], r["rule"]) for r in bottle.audit()[start:]]
    assert ("connect", "upstream.test") in rules
    assert ("tls", "sni-mismatch") in rules
    assert all(r["verdict"] == "deny" for r in bottle.audit()[start:] if r["kind"] != "connect")


def test_host_header_differing_from_the_tunnel_is_refused(bottle):
    _rc, out, _ = bottle.curl("-H", "Host: denied.test", "https://upstream.test/")
    assert "rule: host-mismatch" in out and "upstream says hello" not in out
    assert bottle.audit_for("upstream.test")[-1]["rule"] == "host-mismatch"


def test_raw_tcp_inside_a_tunnel_is_cut(bottle):
    start = len(bottle.audit())
    answer = bottle.raw("CONNECT upstream.test:443 HTTP/1.1\\r\\nHost: upstream.test:443\\r\\n\\r\\n"
                        "SSH-2.0-OpenSSH_9.2\\r\\n")
    assert answer.startswith("HTTP/1.1 200")
    assert "upstream says hello" not in answer
    assert ("tcp", "non-http") in [(r["kind"], r["rule"]) for r in bottle.audit()[start:]]


# -- DNS -------------------------------------------------------------------------------------------
def dns_query(name: str, qtype: int = 1) -> bytes:
    labels_ = b"".join(bytes([len(p)]) + p.encode() for p in name.split("."))
    header = struct.pack("!HHHHHH", 0xBEEF, 0x0100, 1, 0, 0, 0)
    return header + labels_ + b"\x00" + struct.pack("!HH", qtype, 1)


def ask_dns(bottle: Bottle, name: str, qtype: int = 1) -> bytes:
    escaped = "".join(f"\\x{b:02x}" for b in dns_query(name, qtype))
    # dd reads exactly one datagram (head would buffer it until killed by the timeout)
    script = 'exec 3<>"/dev/udp/$2/53"; printf "%b" "$1" >&3; timeout 3 dd bs=512 count=1 status=none <&3'
    return bottle.sh(script, escaped, bottle.bundle_ip).stdout


@pytest.mark.parametrize("alias", ["egress", "git-gate", "supervise"])
def test_dns_answers_the_bundle_aliases_with_its_address(bottle, alias):
    reply = ask_dns(bottle, alias)
    assert reply[:2] == b"\xbe\xef" and struct.unpack("!H", reply[2:4])[0] & 0xF == 0
    assert reply[-4:] == socket.inet_aton(bottle.bundle_ip)


@pytest.mark.parametrize("name", ["example.com", "api.anthropic.com", "upstream.test"])
def test_dns_refuses_everything_else_and_logs_it(bottle, name):
    reply = ask_dns(bottle, name)
    assert struct.unpack("!H", reply[2:4])[0] & 0xF == 5  # REFUSED
    assert struct.unpack("!H", reply[6:8])[0] == 0        # no answer
    line = bottle.audit_for(name)[-1]
    assert (line["source"], line["verdict"], line["rule"]) == ("dns", "deny", "dns")


def test_dns_over_tcp_answers_the_same(bottle):
    packet = dns_query("example.com")
    framed = struct.pack("!H", len(packet)) + packet
    escaped = "".join(f"\\x{b:02x}" for b in framed)
    script = 'exec 3<>"/dev/tcp/$2/53"; printf "%b" "$1" >&3; timeout 3 cat <&3'
    reply = bottle.sh(script, escaped, bottle.bundle_ip).stdout[2:]
    assert reply[:2] == b"\xbe\xef" and struct.unpack("!H", reply[2:4])[0] & 0xF == 5


def test_http2_is_judged_like_http1(bottle):
    rc, out, err = bottle.curl("--http2", "-v", "https://upstream.test/")
    assert (rc, out) == (0, "upstream says hello\n"), err
    assert "ALPN: server accepted h2" in err or "ALPN, server accepted to use h2" in err
    rc, out, _ = bottle.curl("--http2", "-H", "Host: denied.test", "https://upstream.test/")
    assert "rule: host-mismatch" in out and "upstream says hello" not in out


def test_bundle_stops_when_a_daemon_dies(bottle):
    """Last on purpose: kills the proxy; the init must take the whole bundle down (exit 1)."""
    docker("exec", bottle.bundle, "python3", "-c",
           "import os\nfor p in os.listdir('/proc'):\n"
           "  if p.isdigit() and int(p) != os.getpid() and "
           "b'claude_bottle.sidecars.egress.run' in open(f'/proc/{p}/cmdline','rb').read():\n"
           "    os.kill(int(p), 9)")
    wait_until(lambda: docker("inspect", "--format", "{{.State.Running}}", bottle.bundle).strip() == "false",
               "the bundle to stop", timeout=30)
    assert docker("inspect", "--format", "{{.State.ExitCode}}", bottle.bundle).strip() == "1"
    logs = subprocess.run(["docker", "logs", bottle.bundle], capture_output=True, text=True, check=False)
    assert "egress killed by SIGKILL; stopping the bundle" in logs.stderr
