"""git-gate's HTTP server: git smart HTTP (``git http-backend`` as CGI) for the mirror and the remotes.

URLs (only the smart protocol; the dumb one and everything else is 404):

* ``/workspace.git/...``: the bottle's mirror; the agent's ``/workspace`` is a clone of it and pushes
  there pass the pre-receive hook.
* ``/remotes/<name>.git/...``: a declared remote. Fetches are served from a cache the gate refreshes
  from the real remote (with its credential) before each ref advertisement; pushes go into the mirror
  with the remote's name, so they pass the same hook and are then forwarded to that remote only.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import subprocess
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import BinaryIO

from claude_bottle.sidecars.gitgate.config import GateConfig
from claude_bottle.sidecars.gitgate.hook import CACHES_ENV, CONFIG_ENV, REMOTE_ENV, log_event
from claude_bottle.sidecars.gitgate.remotes import RemoteError, fetch_into

__all__ = ["Gate", "GateHandler", "install_hooks", "serve"]

_ROUTE = re.compile(r"^/(?:(?P<ws>workspace\.git)|remotes/(?P<remote>[A-Za-z0-9._-]+)\.git)"
                    r"(?P<rest>/info/refs|/git-upload-pack|/git-receive-pack)$")
_HOOK = """#!{python}
import sys
sys.path.insert(0, {src!r})
from claude_bottle.sidecars.gitgate.hook import main
sys.exit(main())
"""
# The gate runs as root in the bundle while the mirror lives in the user's state dir: files and dirs it
# creates must stay removable by the (non-root) user at `down`. Group/world bits are harmless there:
# the state dir above is the user's own 0700 dir.
_MIRROR_CONFIG = (
    ("core.sharedRepository", "0777"),
    ("http.receivepack", "true"),
    ("http.uploadpack", "true"),
    ("receive.fsckObjects", "true"),
    ("receive.autogc", "false"),
    ("core.logAllRefUpdates", "always"),
    ("uploadpack.allowAnySHA1InWant", "false"),
)


def _git(*args: str) -> None:
    subprocess.run(["git", *args], check=True, capture_output=True)


def install_hooks(mirror: Path) -> None:
    """Make the gate's pre-receive the mirror's only hook, with the gate's own config."""
    hooks = mirror / "hooks"
    if hooks.is_symlink() or hooks.is_file():
        hooks.unlink()
    if hooks.is_dir():
        shutil.rmtree(hooks)
    hooks.mkdir()
    hooks.chmod(0o777)
    src = str(Path(__file__).resolve().parents[3])
    hook = hooks / "pre-receive"
    hook.write_text(_HOOK.format(python=sys.executable, src=src))
    hook.chmod(0o755)
    if _has(mirror, "core.hooksPath"):
        _git(f"--git-dir={mirror}", "config", "--unset-all", "core.hooksPath")
    for key, value in _MIRROR_CONFIG:
        _git(f"--git-dir={mirror}", "config", key, value)


def _has(repo: Path, key: str) -> bool:
    return subprocess.run(["git", f"--git-dir={repo}", "config", "--get-all", key],
                          capture_output=True, check=False).returncode == 0


class Gate:
    """Everything the request handler needs: the config, the mirror, the remote caches."""

    def __init__(self, config: GateConfig) -> None:
        self.config = config
        self.mirror = Path(config.mirror)
        self.caches: dict[str, Path] = {}
        self._locks: dict[str, threading.Lock] = {}
        work = Path(config.work_dir)
        for remote in config.remotes:
            cache = work / "remotes" / f"{remote.name}.git"
            if not (cache / "HEAD").exists():
                cache.parent.mkdir(parents=True, exist_ok=True)
                _git("init", "--bare", "--quiet", "--template=", str(cache))
                _git(f"--git-dir={cache}", "config", "http.receivepack", "false")
            self.caches[remote.name] = cache
            self._locks[remote.name] = threading.Lock()

    def log(self, **event: object) -> None:
        log_event(self.config.log, **event)

    def refresh(self, name: str) -> None:
        remote = self.config.remote(name)
        assert remote is not None
        with self._locks[name]:
            fetch_into(self.config, self.caches[name], remote)

    def backend_env(self, remote: str | None) -> dict[str, str]:
        keep = ("PATH", "HOME", "LANG", "PYTHONPATH", "TMPDIR", "GIT_SSL_CAINFO", "GIT_CONFIG_GLOBAL")
        env = {k: os.environ[k] for k in keep if k in os.environ}
        env.update({
            "GIT_HTTP_EXPORT_ALL": "1",
            "REMOTE_USER": "agent",
            "GIT_CONFIG_NOSYSTEM": "1",
            CONFIG_ENV: os.environ.get(CONFIG_ENV, ""),
            CACHES_ENV: os.pathsep.join(str(p) for p in self.caches.values()),
        })
        if remote is not None:
            env[REMOTE_ENV] = remote
        return env


class GateHandler(BaseHTTPRequestHandler):
    gate: Gate  # set on the subclass the server builds
    server_version = "git-gate"

    def log_message(self, format: str, *args: object) -> None:
        self.gate.log(event="http", client=self.client_address[0], line=format % args)

    def do_GET(self) -> None:
        self._handle()

    def do_POST(self) -> None:
        self._handle()

    def _fail(self, code: int, text: str) -> None:
        body = (text + "\n").encode()
        self.send_response(code)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def _handle(self) -> None:
        path, _, query = self.path.partition("?")
        match = _ROUTE.match(path)
        if match is None:
            self._fail(404, "git-gate serves only /workspace.git and /remotes/<name>.git (smart HTTP)")
            return
        rest, remote = match.group("rest"), match.group("remote")
        pushing = rest == "/git-receive-pack" or "service=git-receive-pack" in query
        repo = self.gate.mirror
        if remote is not None:
            if self.gate.config.remote(remote) is None:
                self._fail(404, f"git-gate: no remote named {remote} in this bottle's definition")
                return
            if not pushing:
                repo = self.gate.caches[remote]
                if rest == "/info/refs":
                    try:
                        self.gate.refresh(remote)
                    except RemoteError as exc:
                        self.gate.log(event="fetch", remote=remote, verdict="failed", reason=str(exc))
                        self._fail(502, f"git-gate: fetch from {remote} failed: {exc}")
                        return
        env = self.gate.backend_env(remote if pushing else None)
        env.update({
            "REQUEST_METHOD": self.command,
            "QUERY_STRING": query,
            "PATH_INFO": rest,
            "PATH_TRANSLATED": f"{repo}{rest}",
            "CONTENT_TYPE": self.headers.get("Content-Type", ""),
            "REMOTE_ADDR": self.client_address[0],
            "GIT_PROTOCOL": self.headers.get("Git-Protocol", ""),
            "HTTP_CONTENT_ENCODING": self.headers.get("Content-Encoding", ""),
        })
        self._cgi(env)

    def _cgi(self, env: dict[str, str]) -> None:
        proc = subprocess.Popen(["git", "http-backend"], env=env, stdin=subprocess.PIPE,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        assert proc.stdin and proc.stdout and proc.stderr
        feeder = threading.Thread(target=self._feed, args=(proc.stdin,), daemon=True)
        feeder.start()
        errors: list[bytes] = []
        drain = threading.Thread(target=lambda: errors.append(proc.stderr.read()), daemon=True)  # type: ignore[union-attr]
        drain.start()
        status, headers = "200 OK", []
        while True:
            line = proc.stdout.readline().rstrip(b"\r\n")
            if not line:
                break
            name, _, value = line.decode("latin-1").partition(":")
            if name.lower() == "status":
                status = value.strip()
            else:
                headers.append((name, value.strip()))
        code, _, reason = status.partition(" ")
        self.send_response(int(code), reason or None)
        for name, value in headers:
            self.send_header(name, value)
        self.end_headers()
        shutil.copyfileobj(proc.stdout, self.wfile)
        proc.wait()
        feeder.join(timeout=5)
        drain.join(timeout=5)
        if errors and errors[0].strip():
            self.gate.log(event="http-backend", stderr=errors[0].decode(errors="replace")[-2000:])

    def _feed(self, sink: BinaryIO) -> None:
        try:
            if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
                while True:
                    size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                    if size == 0:
                        while self.rfile.readline().strip():
                            pass
                        break
                    sink.write(self.rfile.read(size))
                    self.rfile.readline()
            else:
                remaining = int(self.headers.get("Content-Length") or 0)
                while remaining > 0:
                    chunk = self.rfile.read(min(remaining, 1 << 16))
                    if not chunk:
                        break
                    sink.write(chunk)
                    remaining -= len(chunk)
        except (OSError, ValueError):
            pass
        finally:
            with contextlib.suppress(OSError):
                sink.close()


def serve(gate: Gate, host: str, port: int) -> ThreadingHTTPServer:
    handler = type("BoundGateHandler", (GateHandler,), {"gate": gate})
    server = ThreadingHTTPServer((host, port), handler)
    server.daemon_threads = True
    return server
