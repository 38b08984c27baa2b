"""git-gate end to end with real git: the gate runs as a local process (as it does in the bundle, minus
the container) on a mirror built from a temporary repository; an "agent" clone pushes to it."""

from __future__ import annotations

import base64
import contextlib
import hashlib
import json
import os
import shutil
import socket
import ssl
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, replace
from http.server import ThreadingHTTPServer
from pathlib import Path

import pytest

from claude_bottle import gitwork
from claude_bottle.backends.base import BottleSpec
from claude_bottle.errors import BottleError
from claude_bottle.manifest.model import AgentDef, BottleDef, GitDef, GitRemote
from claude_bottle.runner import SubprocessRunner
from claude_bottle.sidecars.gitgate import creds
from claude_bottle.sidecars.gitgate.server import GateHandler

SLUG = "coder-ab12c"
SRC = Path(__file__).resolve().parents[2] / "src"
AWS_LINE = 'aws_access_key_id = "AKIAQWERTYUIOPASDFGH"\n'


def git(*args: str, cwd: Path | None = None, check: bool = True, env: dict[str, str] | None = None,
        ) -> subprocess.CompletedProcess[str]:
    full = {**os.environ, "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@t", "GIT_COMMITTER_NAME": "t",
            "GIT_COMMITTER_EMAIL": "t@t", "GIT_CONFIG_NOSYSTEM": "1", **(env or {})}
    return subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True, check=check, env=full)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def make_user_repo(path: Path) -> Path:
    git("init", "-q", "-b", "main", str(path))
    (path / "README.md").write_text("hello\n")
    git("add", "README.md", cwd=path)
    git("commit", "-qm", "first", cwd=path)
    git("branch", "feature/x", cwd=path)
    return path


def snapshot(repo: Path) -> dict[str, str]:
    """Hashes of every file under .git/hooks plus .git/config: must not change during a session."""
    out = {}
    for p in sorted((repo / ".git" / "hooks").rglob("*")):
        if p.is_file():
            out[str(p)] = hashlib.sha256(p.read_bytes()).hexdigest()
    out["config"] = hashlib.sha256((repo / ".git" / "config").read_bytes()).hexdigest()
    return out


def whole_git_dir(repo: Path) -> dict[str, str]:
    return {str(p.relative_to(repo)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted((repo / ".git").rglob("*")) if p.is_file()}


def spec_for(repo: Path, state: Path, bottle: BottleDef, *, uncommitted: bool = False) -> BottleSpec:
    return BottleSpec(slug=SLUG, agent=AgentDef(name="coder", source="<test>"), bottle=bottle, cwd=repo,
                      state_dir=state, with_uncommitted=uncommitted)


@dataclass
class Session:
    user: Path
    state: Path
    agent: Path
    port: int
    proc: subprocess.Popen[bytes]
    home: Path

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def agent_git(self, *args: str, check: bool = False) -> subprocess.CompletedProcess[str]:
        return git(*args, cwd=self.agent, check=check, env={"HOME": str(self.home)})

    def commit(self, name: str, text: str, message: str = "change") -> None:
        (self.agent / name).parent.mkdir(parents=True, exist_ok=True)
        (self.agent / name).write_text(text)
        self.agent_git("add", name, check=True)
        self.agent_git("commit", "-qm", message, check=True)


def start_gate(tmp: Path, state: Path, bottle: BottleDef, env: dict[str, str] | None = None,
               secrets_dir: Path | None = None) -> tuple[subprocess.Popen[bytes], int]:
    port = free_port()
    config = gitwork.gate_config(slug=SLUG, bottle=bottle, port=port)
    config = replace(config, mirror=str(state / "git" / "mirror.git"),
                     baseline=str(state / "git" / "baseline.json"),
                     work_dir=str(tmp / "gate-work"), log=str(tmp / "gate.log"), listen="127.0.0.1",
                     secrets_dir=str(secrets_dir or tmp / "no-secrets"))
    path = tmp / "git-gate.json"
    path.write_text(config.dumps())
    proc = subprocess.Popen([sys.executable, "-m", "claude_bottle.sidecars.gitgate", str(path)],
                            env={**os.environ, "PYTHONPATH": str(SRC), **(env or {})},
                            stderr=subprocess.PIPE)
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return proc, port
        except OSError:
            if proc.poll() is not None:
                raise RuntimeError(proc.stderr.read().decode() if proc.stderr else "gate died") from None
            time.sleep(0.05)
    proc.kill()
    raise RuntimeError("gate did not start")


@pytest.fixture
def make_session(tmp_path: Path) -> Iterator:
    procs: list[subprocess.Popen[bytes]] = []

    def make(bottle: BottleDef | None = None, *, uncommitted: bool = False, env: dict[str, str] | None = None,
             prepare_user=None, secrets_dir: Path | None = None, state_base: Path | None = None) -> Session:
        bottle = bottle or BottleDef(name="default", source="<test>")
        user = make_user_repo(tmp_path / "user")
        if prepare_user:
            prepare_user(user)
        state = (state_base or tmp_path) / "state" / SLUG
        state.mkdir(parents=True)
        ws = gitwork.prepare_workspace(runner=SubprocessRunner(), spec=spec_for(user, state, bottle,
                                       uncommitted=uncommitted), state_dir=state)
        assert ws is not None
        proc, port = start_gate(tmp_path, state, bottle, env, secrets_dir)
        procs.append(proc)
        agent = tmp_path / "agent"
        home = tmp_path / "agent-home"
        home.mkdir()
        session = Session(user, state, agent, port, proc, home)
        # exactly what the backend runs in the agent container, with the gate on 127.0.0.1
        for argv in gitwork.agent_clone_commands(slug=SLUG, bottle=bottle, host="127.0.0.1", port=port,
                                                 workspace=str(agent)):
            subprocess.run(argv, check=True, capture_output=True, env={**os.environ, "HOME": str(home)})
        return session

    yield make
    for proc in procs:
        proc.terminate()
        proc.wait(timeout=10)


def test_push_to_own_branch_arrives_home_after_fetch(make_session) -> None:
    s = make_session()
    before = snapshot(s.user)
    s.commit("work.txt", "agent work\n")
    assert s.agent_git("push", "-q", "origin", f"claude/{SLUG}").returncode == 0
    results = gitwork.fetch_home(runner=SubprocessRunner(), state_dir=s.state).branches
    assert [(r.branch, r.ok) for r in results] == [(f"claude/{SLUG}", True)]
    shown = git("show", f"claude/{SLUG}:work.txt", cwd=s.user).stdout
    assert shown == "agent work\n"
    assert git("status", "--porcelain", cwd=s.user).stdout == ""
    assert git("rev-parse", "--abbrev-ref", "HEAD", cwd=s.user).stdout.strip() == "main"
    assert snapshot(s.user) == before


def test_push_to_main_is_refused_naming_the_rule(make_session) -> None:
    s = make_session()
    s.commit("x.txt", "x\n")
    res = s.agent_git("push", "origin", "HEAD:main")
    assert res.returncode != 0
    assert "rule scope" in res.stderr and "refs/heads/main" in res.stderr
    assert git("rev-parse", "main", cwd=s.user).stdout == git("rev-parse", "HEAD~1", cwd=s.agent).stdout


def test_a_plain_push_and_branches_below_the_agents_own_arrive_home(make_session) -> None:
    """Issue 9: `git push` with no arguments works, and `claude/<slug>/feature` can be pushed (the
    gate used to hold `claude/<slug>` itself, so git refused every branch below it)."""
    s = make_session()
    s.commit("a.txt", "a\n")
    plain = s.agent_git("push", "-q")
    assert plain.returncode == 0, plain.stderr
    s.agent_git("checkout", "-q", "-b", "feature")
    s.commit("b.txt", "b\n")
    below = s.agent_git("push", "-q", "origin", f"HEAD:claude/{SLUG}-wip")
    assert below.returncode == 0, below.stderr
    results = gitwork.fetch_home(runner=SubprocessRunner(), state_dir=s.state).branches
    assert sorted(r.branch for r in results if r.ok) == [f"claude/{SLUG}", f"claude/{SLUG}-wip"]


def test_branches_below_the_agents_own_can_be_pushed_when_it_has_none(make_session) -> None:
    s = make_session()
    s.agent_git("checkout", "-q", "-b", "topic")
    s.agent_git("branch", "-D", f"claude/{SLUG}")
    s.commit("c.txt", "c\n")
    res = s.agent_git("push", "-q", "origin", f"HEAD:claude/{SLUG}/fix-tests")
    assert res.returncode == 0, res.stderr
    results = gitwork.fetch_home(runner=SubprocessRunner(), state_dir=s.state).branches
    assert [(r.branch, r.ok) for r in results] == [(f"claude/{SLUG}/fix-tests", True)]


def test_other_bottles_branch_and_tags_are_out_of_scope(make_session) -> None:
    s = make_session()
    s.commit("x.txt", "x\n")
    res = s.agent_git("push", "origin", "HEAD:claude/other-zzzzz")
    assert res.returncode != 0 and "rule scope" in res.stderr
    res = s.agent_git("push", "origin", f"HEAD:claude/{SLUG}-evil")
    assert res.returncode != 0 and "rule scope" in res.stderr
    s.agent_git("tag", "v1")
    res = s.agent_git("push", "origin", "v1")
    assert res.returncode != 0 and "rule scope" in res.stderr


def test_rewriting_history_the_user_had_is_refused(make_session) -> None:
    bottle = BottleDef(name="wide", source="<test>", git=GitDef(push=("feature/*",)))
    s = make_session(bottle)
    # force-push over a ref the agent did not create (the user's feature/x)
    s.agent_git("checkout", "-q", "--orphan", "rewrite")
    s.commit("evil.txt", "rewritten\n")
    res = s.agent_git("push", "--force", "origin", "HEAD:feature/x")
    assert res.returncode != 0 and "rule no-rewrite" in res.stderr
    # ... nor move the branch its clone started from (the user's HEAD): it is outside its scope
    res = s.agent_git("push", "--force", "origin", f"HEAD:{gitwork.start_branch(SLUG)}")
    assert res.returncode != 0 and "rule scope" in res.stderr
    res = s.agent_git("push", "origin", "--delete", "feature/x")
    assert res.returncode != 0 and "rule no-delete" in res.stderr
    # a fast-forward of the widened branch is fine
    s.agent_git("checkout", "-q", "feature/x")
    s.commit("ok.txt", "ok\n")
    assert s.agent_git("push", "-q", "origin", "feature/x").returncode == 0


def test_agent_may_rewrite_and_delete_what_it_created(make_session) -> None:
    # claude/<slug>/* cannot sit beside claude/<slug> in one repository (refs are paths), so the
    # agent's own extra branches here come from a widened pattern.
    s = make_session(BottleDef(name="wide", source="<test>", git=GitDef(push=("claude/{slug}-*",))))
    s.agent_git("checkout", "-qb", f"claude/{SLUG}-tmp")
    s.commit("a.txt", "a\n")
    assert s.agent_git("push", "-q", "origin", f"claude/{SLUG}-tmp").returncode == 0
    s.agent_git("commit", "-q", "--amend", "-m", "amended")
    assert s.agent_git("push", "-q", "--force", "origin", f"claude/{SLUG}-tmp").returncode == 0
    assert s.agent_git("push", "-q", "origin", "--delete", f"claude/{SLUG}-tmp").returncode == 0
    # its own branch claude/<slug> may be rewritten on top of the user's HEAD
    s.agent_git("checkout", "-q", f"claude/{SLUG}")
    s.commit("b.txt", "b\n")
    assert s.agent_git("push", "-q", "origin", f"claude/{SLUG}").returncode == 0
    s.agent_git("commit", "-q", "--amend", "-m", "amended")
    assert s.agent_git("push", "-q", "--force", "origin", f"claude/{SLUG}").returncode == 0


def test_aws_key_is_refused_with_the_finding(make_session) -> None:
    s = make_session()
    s.commit("config/settings.py", "x = 1\n" + AWS_LINE)
    s.commit("config/settings.py", "x = 1\n", message="remove it again (still in history)")
    res = s.agent_git("push", "origin", f"claude/{SLUG}")
    assert res.returncode != 0
    assert "rule secret-scan" in res.stderr
    assert "config/settings.py:2: AWS Access Key" in res.stderr
    assert "internal-error" not in res.stderr
    log = [json.loads(line) for line in (s.state.parents[1] / "gate.log").read_text().splitlines()]
    assert {"verdict": "refused", "rule": "secret-scan", "path": "config/settings.py", "line": 2}.items() <= \
        next(e for e in log if e.get("rule") == "secret-scan").items()
    assert "AKIAQWERTYUIOPASDFGH" not in res.stderr


def test_allowlist_pragma_does_not_hide_a_secret(make_session) -> None:
    s = make_session()
    s.commit("yarn.lock", 'k = "AKIAQWERTYUIOPASDFGH"  # pragma: allowlist secret\n')
    res = s.agent_git("push", "origin", f"claude/{SLUG}")
    assert res.returncode != 0 and "yarn.lock:1: AWS Access Key" in res.stderr


def test_secrets_in_history_the_user_already_had_are_not_rescanned(make_session) -> None:
    def add_secret(user: Path) -> None:
        (user / "old.py").write_text(AWS_LINE)
        git("add", "old.py", cwd=user)
        git("commit", "-qm", "user's own old mistake", cwd=user)

    s = make_session(prepare_user=add_secret)
    s.commit("new.txt", "fine\n")
    res = s.agent_git("push", "origin", f"claude/{SLUG}")
    assert res.returncode == 0, res.stderr


def test_with_uncommitted_carries_changes_without_touching_index(make_session, tmp_path: Path) -> None:
    def dirty(user: Path) -> None:
        (user / "README.md").write_text("edited\n")
        (user / "new.txt").write_text("untracked\n")
        (user / ".gitignore").write_text("ignored.txt\n")
        (user / "ignored.txt").write_text("secret stuff\n")
        (user / "staged.txt").write_text("staged\n")
        git("add", "staged.txt", cwd=user)

    user_index_before: list[bytes] = []

    def dirty_and_record(user: Path) -> None:
        dirty(user)
        user_index_before.append((user / ".git" / "index").read_bytes())
        user_index_before.append(whole_git_dir(user))

    s = make_session(uncommitted=True, prepare_user=dirty_and_record)
    assert (s.user / ".git" / "index").read_bytes() == user_index_before[0]
    assert whole_git_dir(s.user) == user_index_before[1]  # not one object written to the user's .git
    assert (s.agent / "README.md").read_text() == "edited\n"
    assert (s.agent / "new.txt").read_text() == "untracked\n"
    assert (s.agent / "staged.txt").read_text() == "staged\n"
    assert not (s.agent / "ignored.txt").exists()
    assert git("log", "-1", "--format=%s", cwd=s.agent).stdout.startswith("Uncommitted changes")
    status = git("status", "--porcelain", cwd=s.user).stdout
    assert "?? new.txt" in status and "A  staged.txt" in status and " M README.md" in status


def test_agent_cannot_touch_hooks_or_config_of_user_or_mirror(make_session) -> None:
    s = make_session()
    before = snapshot(s.user)
    hook_before = (s.state / "git" / "mirror.git" / "hooks" / "pre-receive").read_bytes()
    # whatever the agent does to its own clone stays in its clone
    (s.agent / ".git" / "hooks" / "post-checkout").write_text("#!/bin/sh\ntouch /tmp/pwned\n")
    s.agent_git("config", "core.hooksPath", "/tmp")
    # refs outside refs/heads (config-looking names, hooks paths) are refused by the scope rule
    for ref in ("refs/hooks/pre-receive", "refs/config", "HEAD"):
        res = s.agent_git("push", "origin", f"HEAD:{ref}")
        assert res.returncode != 0
    # the dumb protocol and arbitrary paths are not served
    for path in ("/workspace.git/config", "/workspace.git/hooks/pre-receive", "/workspace.git/HEAD"):
        with pytest.raises(urllib.error.HTTPError):
            urllib.request.urlopen(s.url + path, timeout=5)
    gitwork.fetch_home(runner=SubprocessRunner(), state_dir=s.state)
    assert snapshot(s.user) == before
    assert (s.state / "git" / "mirror.git" / "hooks" / "pre-receive").read_bytes() == hook_before


# -- declared remotes: a TLS git server that wants a token, standing in for a forge ---------------------

TOKEN = "tok-3f9a8b7c6d5e4f3a2b1c"


@dataclass
class Upstream:
    url: str
    repo: Path
    cafile: Path


def _upstream_handler(repo: Path, expected: str) -> type[GateHandler]:
    class Handler(GateHandler):
        gate = type("Log", (), {"log": staticmethod(lambda **_: None)})()  # type: ignore[assignment]

        def finish(self) -> None:
            super().finish()
            with contextlib.suppress(OSError, ValueError):
                self.connection.unwrap()  # close_notify: git's GnuTLS reads to the end of the body

        def _handle(self) -> None:
            if self.headers.get("Authorization") != expected:
                self.send_response(401)
                self.send_header("WWW-Authenticate", 'Basic realm="upstream"')
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            path, _, query = self.path.partition("?")
            rest = path.removeprefix("/repo.git")
            self._cgi({"PATH": os.environ["PATH"], "GIT_HTTP_EXPORT_ALL": "1", "REMOTE_USER": "u",
                       "REQUEST_METHOD": self.command, "QUERY_STRING": query, "PATH_INFO": rest,
                       "PATH_TRANSLATED": f"{repo}{rest}",
                       "GIT_PROTOCOL": self.headers.get("Git-Protocol", ""),
                       "CONTENT_TYPE": self.headers.get("Content-Type", "")})
    return Handler


@pytest.fixture
def upstream(tmp_path: Path) -> Iterator[Upstream]:
    repo = tmp_path / "upstream" / "repo.git"
    git("init", "-q", "--bare", "-b", "main", str(repo))
    seed = tmp_path / "upstream" / "seed"
    git("init", "-q", "-b", "main", str(seed))
    (seed / "UPSTREAM.md").write_text("upstream\n")
    git("add", ".", cwd=seed)
    git("commit", "-qm", "upstream first", cwd=seed)
    git("push", "-q", str(repo), "main", "main:upstream-only", cwd=seed)
    cert, key = tmp_path / "upstream" / "cert.pem", tmp_path / "upstream" / "key.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(key), "-out",
                    str(cert), "-days", "1", "-subj", "/CN=127.0.0.1",
                    "-addext", "subjectAltName=IP:127.0.0.1"],
                   check=True, capture_output=True)
    expected = "Basic " + base64.b64encode(f"x-access-token:{TOKEN}".encode()).decode()
    server = ThreadingHTTPServer(("127.0.0.1", 0), _upstream_handler(repo, expected))
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(cert, key)
    server.socket = ctx.wrap_socket(server.socket, server_side=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield Upstream(f"https://127.0.0.1:{server.server_address[1]}/repo.git", repo, cert)
    server.shutdown()
    server.server_close()


@pytest.fixture
def shm_dir() -> Iterator[Path]:
    path = Path(tempfile.mkdtemp(prefix="claude-bottle-test-git-", dir="/dev/shm"))
    yield path / "git"
    shutil.rmtree(path, ignore_errors=True)


def remote_session(make_session, upstream: Upstream, shm_dir: Path, token: str = TOKEN, **remote: object):
    bottle = BottleDef(name="forge", source="<test>", git=GitDef(remotes=(
        GitRemote(name="origin", url=upstream.url, token_env="UP_TOKEN", **remote),)))
    creds.store(gitwork.gate_credentials(bottle=bottle, environ={"UP_TOKEN": token}), shm_dir)
    return make_session(bottle, env={"GIT_SSL_CAINFO": str(upstream.cafile)}, secrets_dir=shm_dir)


def upstream_ref(upstream: Upstream, ref: str) -> str:
    res = git("--git-dir", str(upstream.repo), "rev-parse", "--verify", "--quiet", ref, check=False)
    return res.stdout.strip()


def test_push_is_forwarded_to_a_declared_remote_and_fetch_comes_through_the_gate(
        make_session, upstream, shm_dir) -> None:
    s = remote_session(make_session, upstream, shm_dir)
    s.commit("w.txt", "agent work\n")
    # `origin` is the forge's URL; insteadOf sends it to the gate, which holds the token
    res = s.agent_git("push", "origin", f"claude/{SLUG}")
    assert res.returncode == 0, res.stderr
    assert f"forwarded refs/heads/claude/{SLUG} to origin" in res.stderr
    head = s.agent_git("rev-parse", "HEAD").stdout.strip()
    assert upstream_ref(upstream, f"claude/{SLUG}") == head
    # the plain `git push` goes to the mirror (the branch's upstream) and is forwarded too
    s.commit("w2.txt", "more\n")
    res = s.agent_git("push")
    assert res.returncode == 0, res.stderr
    assert upstream_ref(upstream, f"claude/{SLUG}") == s.agent_git("rev-parse", "HEAD").stdout.strip()
    res = s.agent_git("fetch", "origin")
    assert res.returncode == 0, res.stderr
    assert s.agent_git("rev-parse", "origin/upstream-only").stdout.strip() == upstream_ref(upstream, "main")
    # the token is nowhere on the agent's side
    for path in (s.home / ".gitconfig", s.agent / ".git" / "config"):
        assert TOKEN not in path.read_text()


def test_remote_policy_refuses_main_and_a_bad_token_refuses_the_push(make_session, upstream, shm_dir) -> None:
    s = remote_session(make_session, upstream, shm_dir, token="tok-wrong-0000000000000")
    s.commit("w.txt", "agent work\n")
    res = s.agent_git("push", "origin", "HEAD:main")
    assert res.returncode != 0 and "rule scope" in res.stderr
    res = s.agent_git("push", "origin", f"claude/{SLUG}")
    assert res.returncode != 0 and "rule forward" in res.stderr
    assert "tok-wrong" not in res.stderr
    assert upstream_ref(upstream, f"claude/{SLUG}") == ""
    # a refused forward leaves the mirror unchanged too
    mirror = s.state / "git" / "mirror.git"
    assert git("--git-dir", str(mirror), "rev-parse", "--verify", "-q", f"claude/{SLUG}",
               check=False).returncode != 0


def test_remote_branches_narrow_what_is_forwarded(make_session, upstream, shm_dir) -> None:
    s = remote_session(make_session, upstream, shm_dir, branches=("claude/{slug}/release",))
    s.commit("w.txt", "agent work\n")
    res = s.agent_git("push", "origin", f"claude/{SLUG}")
    assert res.returncode != 0 and "rule remote-branches" in res.stderr


def test_ssh_remote_without_pinned_host_key_is_refused() -> None:
    bottle = BottleDef(name="forge", source="bottles/forge.md", git=GitDef(remotes=(
        GitRemote(name="origin", url="git@example.com:me/repo.git", ssh_key="/nonexistent"),)))
    with pytest.raises(BottleError, match="host_key"):
        gitwork.gate_config(slug=SLUG, bottle=bottle)
    bottle = BottleDef(name="forge", source="bottles/forge.md", git=GitDef(remotes=(
        GitRemote(name="origin", url="http://example.com/repo.git", token_env="T"),)))
    with pytest.raises(BottleError, match="only sent over https"):
        gitwork.gate_config(slug=SLUG, bottle=bottle)


def test_a_tree_that_would_write_into_dot_git_is_refused(make_session) -> None:
    """A commit whose tree holds `.git/hooks/...` would plant a hook when checked out: fsck refuses it."""
    s = make_session()

    def mk(*args: str, stdin: str) -> str:
        return subprocess.run(["git", *args], cwd=s.agent, input=stdin, capture_output=True, text=True,
                              check=True).stdout.strip()

    blob = mk("hash-object", "-w", "--stdin", stdin="#!/bin/sh\ntouch /tmp/pwned\n")
    hooks = mk("mktree", stdin=f"100755 blob {blob}\tpost-checkout\n")
    dotgit = mk("mktree", stdin=f"040000 tree {hooks}\thooks\n")
    for name in (".git", ".GIT", ".git."):
        root = mk("mktree", stdin=f"040000 tree {dotgit}\t{name}\n")
        commit = s.agent_git("commit-tree", root, "-p", "HEAD", "-m", "evil").stdout.strip()
        res = s.agent_git("push", "origin", f"{commit}:refs/heads/claude/{SLUG}")
        assert res.returncode != 0, name
        assert "dotgit" in res.stderr.lower() or "fsck" in res.stderr.lower(), res.stderr


def test_a_key_in_a_commit_message_or_a_file_name_is_refused(make_session) -> None:
    s = make_session()
    s.commit("ok.txt", "fine\n", message="deploy with key AKIAQWERTYUIOPASDFGH")
    res = s.agent_git("push", "origin", f"claude/{SLUG}")
    assert res.returncode != 0 and "(commit message):1: AWS Access Key" in res.stderr, res.stderr
    s.agent_git("reset", "-q", "--hard", "HEAD~1")
    s.commit("keys/AKIAQWERTYUIOPASDFGH.txt", "nothing here\n")
    res = s.agent_git("push", "origin", f"claude/{SLUG}")
    assert res.returncode != 0 and "(file names):1: AWS Access Key" in res.stderr, res.stderr


def test_annotated_tag_messages_are_scanned_when_tags_are_allowed(make_session) -> None:
    s = make_session(BottleDef(name="tags", source="<test>", git=GitDef(push=("refs/tags/claude-*",))))
    s.agent_git("tag", "-a", "claude-v1", "-m", "AKIAQWERTYUIOPASDFGH", check=True)
    res = s.agent_git("push", "origin", "claude-v1")
    assert res.returncode != 0, res.stderr
    assert "(tag message)" in res.stderr and "AWS Access Key" in res.stderr, res.stderr
    s.agent_git("tag", "-a", "claude-v2", "-m", "release", check=True)
    res = s.agent_git("push", "origin", "claude-v2")
    assert res.returncode == 0, res.stderr


def test_a_nul_byte_does_not_hide_a_key_as_binary(make_session) -> None:
    s = make_session()
    (s.agent / "blob.bin").write_bytes(b"\x00\x01\x02" + AWS_LINE.encode() + b"\x00")
    s.agent_git("add", "blob.bin", check=True)
    s.agent_git("commit", "-qm", "binary", check=True)
    res = s.agent_git("push", "origin", f"claude/{SLUG}")
    assert res.returncode != 0 and "blob.bin:1: AWS Access Key" in res.stderr, res.stderr


def test_what_the_root_gate_writes_stays_removable_by_the_user(make_session) -> None:
    """The bundle's gate runs as root; the state dir belongs to the (non-root) user, who must be able
    to remove it at `down` after the agent pushed. Here the user is `nobody`."""
    base = Path(tempfile.mkdtemp(prefix="claude-bottle-owner-"))
    try:
        base.chmod(0o755)
        s = make_session(state_base=base)
        subprocess.run(["chown", "-R", "nobody:nogroup", str(base / "state")], check=True)
        s.commit("w.txt", "work\n")
        assert s.agent_git("push", "-q", "origin", f"claude/{SLUG}").returncode == 0
        s.agent_git("checkout", "-qb", "side")
        s.commit("v.txt", "more\n")
        assert s.agent_git("push", "-q", "origin", f"side:claude/{SLUG}").returncode == 0
        res = subprocess.run(["setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups",
                              "rm", "-rf", str(s.state)], capture_output=True, text=True, check=False)
        assert res.returncode == 0 and not s.state.exists(), res.stderr
    finally:
        shutil.rmtree(base, ignore_errors=True)
