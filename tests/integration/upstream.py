"""A local HTTPS upstream for allowed-traffic tests and the latency benchmark.

A throw-away test CA and a server certificate for ``upstream.test`` (made with the host's openssl), a
labelled network holding one labelled container that serves HTTPS with them, reachable by the alias
``upstream.test``. A bottle reaches it once :meth:`Upstream.attach` joins the bottle's bundle to that
network (the bundle, not the agent: the agent still has only the proxy).
"""

from __future__ import annotations

import json
import shutil
import subprocess
import tempfile
import uuid
from pathlib import Path

from tests.integration.dockerkit import HOST_CA, connect, docker

__all__ = ["Upstream"]

SERVER = r"""
import http.server, ssl, sys
class H(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    def do_GET(self):
        body = b"upstream says hello\n"
        self.send_response(200); self.send_header("Content-Length", str(len(body))); self.end_headers()
        self.wfile.write(body)
    def log_message(self, *a): pass
srv = http.server.ThreadingHTTPServer(("0.0.0.0", int(sys.argv[1])), H)
if sys.argv[2] == "tls":
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER); ctx.load_cert_chain("/certs/server.pem", "/certs/server.key")
    srv.socket = ctx.wrap_socket(srv.socket, server_side=True)
srv.serve_forever()
"""  # noqa: E501 - a program, not Python source

# node: N sequential GETs, each on a fresh connection, through the proxy env if set (via CONNECT).
TIMING_JS = r"""
const https = require('https'), http = require('http'), tls = require('tls');
const N = %(n)d, HOST = %(host)r, PROXY = process.env.HTTPS_PROXY;
function once() {
  return new Promise((resolve, reject) => {
    const t0 = process.hrtime.bigint();
    const done = (res) => { res.resume(); res.on('end', () => resolve(Number(process.hrtime.bigint() - t0) / 1e6)); };
    if (!PROXY) { https.get({host: HOST, path: '/', agent: false}, done).on('error', reject); return; }
    const p = new URL(PROXY);
    http.request({host: p.hostname, port: p.port, method: 'CONNECT', path: HOST + ':443', agent: false})
      .on('connect', (res, socket) => {
        if (res.statusCode !== 200) return reject(new Error('CONNECT ' + res.statusCode));
        https.get({host: HOST, path: '/', socket, agent: false, servername: HOST,
                   createConnection: () => tls.connect({socket, servername: HOST})}, done).on('error', reject);
      }).on('error', reject).end();
  });
}
(async () => { const out = []; for (let i = 0; i < N; i++) out.push(await once()); console.log(JSON.stringify(out)); })()
  .catch(e => { console.error(String(e)); process.exit(1); });
"""  # noqa: E501 - a program, not Python source


class Upstream:
    host = "upstream.test"

    def __init__(self, *, home: str, label: str, image: str | None = None,
                 aliases: tuple[str, ...] = ()) -> None:
        self.aliases = aliases
        self.id = uuid.uuid4().hex[:8]
        self.labels = ["--label", f"{label}={home}"]
        self.network = f"cb-upstream-{self.id}"
        self.name = f"cb-upstream-{self.id}"
        self.dir = Path(tempfile.mkdtemp(prefix="cb-upstream-"))
        self.dir.chmod(0o755)  # read by non-root containers (the direct-request client)
        self.image = image or _sidecars_image()
        self.attached: list[str] = []

    @property
    def ca(self) -> Path:
        return self.dir / "ca.pem"

    @property
    def trust_bundle(self) -> Path:
        """The host's CA bundle plus the test CA: what the proxy needs to trust upstream."""
        return self.dir / "trust.pem"

    def __enter__(self) -> Upstream:
        try:
            self._start()
        except BaseException:
            self.__exit__(None, None, None)
            raise
        return self

    def _start(self) -> None:
        self._certs()
        docker("network", "create", *self.labels, self.network)
        docker("run", "-d", "--name", self.name, *self.labels, "--network", self.network,
               *[a for alias in (self.host, *self.aliases) for a in ("--network-alias", alias)],
               "--mount", f"type=bind,source={self.dir},target=/certs,readonly",
               "--entrypoint", "python3", self.image, "-c", SERVER, "443", "tls")

    def __exit__(self, *exc: object) -> None:
        for container in self.attached:
            docker("network", "disconnect", "--force", self.network, container, check=False)
        docker("rm", "-f", self.name, check=False)
        docker("network", "rm", self.network, check=False)
        shutil.rmtree(self.dir, ignore_errors=True)

    def attach(self, container: str) -> None:
        connect(self.network, container, (self.host, *self.aliases))
        self.attached.append(container)

    def timing_script(self, n: int) -> str:
        return TIMING_JS % {"n": n, "host": self.host}

    def direct_timings(self, n: int, image: str | None = None) -> list[float]:
        """The same GETs from a plain container on the upstream's own network, no proxy."""
        out = docker("run", "--rm", "-i", *self.labels, "--network", self.network,
                     "--mount", f"type=bind,source={self.dir},target=/certs,readonly",
                     "--env", "NODE_EXTRA_CA_CERTS=/certs/ca.pem", "--env", "HTTPS_PROXY=",
                     "--entrypoint", "node", image or _agent_image(), "-",
                     input=self.timing_script(n).encode(), timeout=600)
        return json.loads(out)

    def _certs(self) -> None:
        d = str(self.dir)

        def ssl(*args: str) -> None:
            subprocess.run(["openssl", *args], cwd=d, check=True, capture_output=True)

        ssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
            "-subj", "/CN=claude-bottle test CA",
            "-keyout", "ca.key", "-out", "ca.pem", "-addext", "basicConstraints=critical,CA:TRUE",
            "-addext", "keyUsage=critical,keyCertSign,cRLSign")
        ssl("req", "-newkey", "rsa:2048", "-nodes", "-subj", f"/CN={self.host}", "-keyout", "server.key",
            "-out", "server.csr")
        (self.dir / "ext.cnf").write_text(f"subjectAltName=DNS:{self.host}\nextendedKeyUsage=serverAuth\n")
        ssl("x509", "-req", "-in", "server.csr", "-CA", "ca.pem", "-CAkey", "ca.key", "-CAcreateserial",
            "-days", "2", "-out", "server.pem", "-extfile", "ext.cnf")
        for name in ("server.key", "server.pem", "ca.pem"):
            (self.dir / name).chmod(0o644)
        host = HOST_CA.read_bytes() if HOST_CA.is_file() else b""
        self.trust_bundle.write_bytes(host + b"\n" + self.ca.read_bytes())


def _newest(repository: str) -> str:
    """Any built image of ``repository`` will do (it only has to hold python3 / node), so take the
    newest one that exists rather than the tag the current sources would produce."""
    out = docker("images", repository, "--format", "{{.Repository}}:{{.Tag}}")  # newest first
    tags = [t for t in out.split() if not t.endswith(":<none>")]
    if not tags:
        raise AssertionError(f"no {repository} image: run `claude-bottle build` first")
    return tags[0]


def _sidecars_image() -> str:
    return _newest("claude-bottle-sidecars")


def _agent_image() -> str:
    return _newest("claude-bottle-agent")
