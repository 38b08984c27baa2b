"""Big downloads stream through the proxy in bounded memory (issue 13, part): a body larger than the
bundle's whole memory limit (1 GiB) arrives intact, with and without a Content-Length, and the bundle
is neither OOM-killed nor restarted. (Uploads over the scanning cap get a 413: test_redteam_proxy.)"""

from __future__ import annotations

import hashlib
import json
import shutil
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from tests.integration.dockerkit import HOST_CA, TEST_LABEL, AgentBottle, Env, connect, docker
from tests.integration.testca import make_certs
from tests.integration.upstream import _sidecars_image

pytestmark = pytest.mark.integration

HOST = "bulk.test"
# GET /big?n=BYTES[&chunked=1]: n zero bytes, in 1 MiB writes, with a Content-Length or chunked.
SERVER = r"""
import http.server, ssl, urllib.parse
CHUNK = b"\0" * (1024 * 1024)
class H(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    def do_GET(self):
        q = urllib.parse.parse_qs(urllib.parse.urlsplit(self.path).query)
        n, chunked = int(q["n"][0]), "chunked" in q
        self.send_response(200); self.send_header("Content-Type", "application/octet-stream")
        if chunked: self.send_header("Transfer-Encoding", "chunked")
        else: self.send_header("Content-Length", str(n))
        self.end_headers()
        while n > 0:
            part = CHUNK[:min(n, len(CHUNK))]; n -= len(part)
            if chunked: self.wfile.write(b"%x\r\n" % len(part) + part + b"\r\n")
            else: self.wfile.write(part)
        if chunked: self.wfile.write(b"0\r\n\r\n")
    def log_message(self, *a): pass
srv = http.server.ThreadingHTTPServer(("0.0.0.0", 443), H)
ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER); ctx.load_cert_chain("/certs/server.pem", "/certs/server.key")
srv.socket = ctx.wrap_socket(srv.socket, server_side=True)
srv.serve_forever()
"""


@pytest.fixture(scope="module")
def bulk(env: Env, images: None) -> Iterator[tuple[str, Path]]:
    name = f"cb-bulk-{uuid.uuid4().hex[:8]}"
    labels = ["--label", f"{TEST_LABEL}={env.home}"]
    certs = Path(tempfile.mkdtemp(prefix="cb-bulk-"))
    certs.chmod(0o755)
    try:
        make_certs(certs, [HOST])
        docker("network", "create", *labels, name)
        docker("run", "-d", "--name", name, *labels, "--network", name, "--network-alias", HOST,
               "--mount", f"type=bind,source={certs},target=/certs,readonly",
               "--entrypoint", "python3", _sidecars_image(), "-c", SERVER)
        yield name, certs
    finally:
        docker("rm", "-f", name, check=False)
        docker("network", "rm", name, check=False)
        shutil.rmtree(certs, ignore_errors=True)


@pytest.fixture(scope="module")
def bottle(env: Env, bulk: tuple[str, Path]) -> Iterator[AgentBottle]:
    network, certs = bulk
    (env.home / "bottles").mkdir(exist_ok=True)
    (env.home / "agents").mkdir(exist_ok=True)
    bottle_file = f"---\negress:\n  allow:\n    - {{host: {HOST}, private: true}}\n---\n"
    (env.home / "bottles" / "bulk.md").write_text(bottle_file)
    (env.home / "agents" / "bulk.md").write_text("---\nbottle: bulk\n---\n")
    host_ca = HOST_CA.read_bytes() if HOST_CA.is_file() else b""
    (env.home / "upstream-ca.pem").write_bytes(host_ca + b"\n" + (certs / "ca.pem").read_bytes())
    up = env.cli("up", "bulk", "--no-workspace", "--detach", "--yes", "--json")
    b = AgentBottle(json.loads(up.stdout)["slug"], env)
    try:
        connect(network, b.bundle, [HOST])
        yield b
    finally:
        docker("network", "disconnect", "--force", network, b.bundle, check=False)
        env.cli("down", b.slug, "--yes", "--discard", check=False)


@pytest.mark.parametrize("chunked", [False, True])
def test_a_download_bigger_than_the_bundles_memory_arrives_intact(bottle: AgentBottle, chunked: bool) -> None:
    size = 1536 * 1024 * 1024  # 1.5 GiB, past the bundle's 1 GiB memory limit
    query = f"n={size}" + ("&chunked=1" if chunked else "")
    out = bottle.sh(f"curl -sS --max-time 300 'https://{HOST}/big?{query}' | sha256sum", timeout=360)
    zeros = hashlib.sha256()
    block = b"\0" * (1024 * 1024)
    for _ in range(size // len(block)):
        zeros.update(block)
    assert out.stdout.split()[:1] == [zeros.hexdigest()], out
    state = json.loads(docker("inspect", bottle.bundle))[0]["State"]
    assert state["Running"] and not state["OOMKilled"] and state["Restarting"] is False, state
    usage = docker("stats", "--no-stream", "--format", "{{.MemUsage}}", bottle.bundle)
    print(f"bundle memory after a {size} byte download ({'chunked' if chunked else 'sized'}): {usage}")
