"""git-gate in real bottles: the agent works on a clone of the user's repository and attacks the gate.

Each test runs ``claude-bottle up`` inside a fresh git repository, then acts as the agent through
``claude-bottle exec`` (the agent user, inside the hardened container)."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from tests.integration.dockerkit import TEST_LABEL, Env, docker, labelled
from tests.integration.upstream import Upstream

pytestmark = pytest.mark.integration

AWS_KEY = "AKIAQWERTYUIOPASDFGH"
TOKEN = "cbtest-git-token-7d1e9c3b5a2f4e6d"  # the forge's token: must never be visible to the agent
OCTAL = "".join(f"\\{ord(c):03o}" for c in TOKEN)
ID = ("-c", "user.name=agent", "-c", "user.email=agent@bottle")


def git(*args: str, cwd: Path | None = None) -> str:
    env = {
        "GIT_AUTHOR_NAME": "u",
        "GIT_AUTHOR_EMAIL": "u@u",
        "GIT_COMMITTER_NAME": "u",
        "GIT_COMMITTER_EMAIL": "u@u",
        "PATH": "/usr/bin:/bin",
        "HOME": "/nonexistent",
    }
    return subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True, check=True, env=env).stdout


def make_repo(path: Path) -> Path:
    git("init", "-q", "-b", "main", str(path))
    (path / "README.md").write_text("the user's project\n")
    (path / ".git" / "hooks" / "pre-commit").write_text("#!/bin/sh\nexit 0\n")
    git("add", ".", cwd=path)
    git("commit", "-qm", "first", cwd=path)
    return path


def hooks_and_config(repo: Path) -> dict[str, str]:
    files = [p for p in sorted((repo / ".git" / "hooks").rglob("*")) if p.is_file()] + [
        repo / ".git" / "config"
    ]
    return {str(p.relative_to(repo)): hashlib.sha256(p.read_bytes()).hexdigest() for p in files}


def agent_sh(env: Env, slug: str, script: str) -> subprocess.CompletedProcess[str]:
    return env.cli("exec", slug, "--", "sh", "-c", script, check=False, timeout=300)


@pytest.fixture
def bottle(env: Env, images: None, tmp_path: Path) -> Iterator[tuple[str, Path]]:
    repo = make_repo(tmp_path / "project")
    slug = json.loads(env.cli("up", "--detach", "--yes", "--json", cwd=repo).stdout)["slug"]
    try:
        yield slug, repo
    finally:
        env.cli("down", slug, "--yes", "--discard", check=False)
    assert labelled(f"dev.claude-bottle.slug={slug}") == []


def test_agent_pushes_its_branch_and_it_comes_home(env: Env, bottle: tuple[str, Path]) -> None:
    slug, repo = bottle
    before = hooks_and_config(repo)
    out = agent_sh(
        env,
        slug,
        f"git rev-parse --abbrev-ref HEAD && cat README.md && echo work > work.txt && "
        f"git add work.txt && git {' '.join(ID)} commit -qm 'agent work' && git push 2>&1",
    )
    assert out.returncode == 0, out.stdout + out.stderr
    assert out.stdout.splitlines()[:2] == [f"claude/{slug}", "the user's project"]
    fetched = env.cli("fetch", slug, cwd=repo)
    assert f"claude/{slug}" in fetched.stdout
    assert git("show", f"claude/{slug}:work.txt", cwd=repo) == "work\n"
    assert git("status", "--porcelain", cwd=repo) == ""
    assert git("rev-parse", "--abbrev-ref", "HEAD", cwd=repo).strip() == "main"
    assert hooks_and_config(repo) == before


def test_fetch_after_down_while_the_state_dir_is_kept(env: Env, images: None, tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "project")
    slug = json.loads(env.cli("up", "--detach", "--yes", "--json", cwd=repo).stdout)["slug"]
    try:
        out = agent_sh(
            env, slug, f"echo w > w.txt && git add w.txt && git {' '.join(ID)} commit -qm w && git push -q"
        )
        assert out.returncode == 0, out.stdout + out.stderr
    finally:
        down = env.cli("down", slug, "--yes", check=False)
    assert down.returncode == 0 and f"claude/{slug} not fetched yet" in down.stderr, down.stderr
    assert labelled(f"dev.claude-bottle.slug={slug}") == []
    env.cli("fetch", slug, cwd=repo)
    assert git("show", f"claude/{slug}:w.txt", cwd=repo) == "w\n"
    env.cli("down", slug, "--yes")  # everything fetched: now the state dir goes
    assert not env.state_dir(slug).exists()


def test_with_uncommitted_the_agent_starts_from_the_working_tree(
    env: Env, images: None, tmp_path: Path
) -> None:
    repo = make_repo(tmp_path / "project")
    (repo / "README.md").write_text("edited, not committed\n")
    (repo / "new.txt").write_text("untracked\n")
    (repo / ".gitignore").write_text("local.env\n")
    (repo / "local.env").write_text("IGNORED=1\n")
    index = (repo / ".git" / "index").read_bytes()
    up = env.cli("up", "--detach", "--yes", "--json", "--with-uncommitted", cwd=repo)
    slug = json.loads(up.stdout)["slug"]
    try:
        out = agent_sh(
            env,
            slug,
            "cat README.md new.txt; test -e local.env && echo LEAKED; git status --porcelain; "
            "git log --format=%s",
        )
        assert out.stdout.splitlines() == [
            "edited, not committed",
            "untracked",
            f"Uncommitted changes carried into bottle {slug}",
            "first",
        ], out.stdout
    finally:
        env.cli("down", slug, "--yes", "--discard", check=False)
    assert (repo / ".git" / "index").read_bytes() == index
    assert git("status", "--porcelain", cwd=repo).split("\n")[:3] == [
        " M README.md",
        "?? .gitignore",
        "?? new.txt",
    ]


def test_agent_attacks_on_the_gate_fail_with_the_rule(env: Env, bottle: tuple[str, Path]) -> None:
    slug, repo = bottle
    before = hooks_and_config(repo)
    main_before = git("rev-parse", "main", cwd=repo)
    commit = f"git {' '.join(ID)} commit -qm"
    script = "\n".join(
        [
            "exec 2>&1",
            f"echo x > x.txt && git add x.txt && {commit} x",
            "echo '== main'; git push origin HEAD:main",
            "echo '== rewrite'; git checkout -q --orphan evil && git rm -rqf . && echo evil > e.txt && "
            f"git add e.txt && {commit} evil && git push --force origin HEAD:main",
            "echo '== delete'; git push origin --delete main",
            "echo '== tag'; git tag v9 && git push origin v9",
            f"echo '== secret'; git checkout -q claude/{slug} && echo 'key = \"{AWS_KEY}\"' > cfg.py && "
            f"git add cfg.py && {commit} key && git push origin HEAD",
            # the agent's own hooks and config stay in its clone; the gate's are out of reach
            "echo '== hooks'; printf '#!/bin/sh\\ntouch /tmp/pwned\\n' > .git/hooks/post-update; "
            "chmod +x .git/hooks/post-update; git config core.hooksPath /tmp",
            "for p in config hooks/pre-receive HEAD objects/info/packs; do "
            'curl -s -o /dev/null -w "$p %{http_code}\\n" --noproxy git-gate '
            "http://git-gate:8418/workspace.git/$p; done",
            "curl -s -o /dev/null -w 'PUT %{http_code}\\n' --noproxy git-gate -X PUT --data x "
            "http://git-gate:8418/workspace.git/hooks/pre-receive",
            f"echo '== host repo'; test -e {repo} && echo VISIBLE || echo absent",
        ]
    )
    out = agent_sh(env, slug, script)
    text = out.stdout
    sections = dict(part.split("\n", 1) for part in text.split("== ")[1:])
    assert "rule scope" in sections["main"] and "refs/heads/main" in sections["main"]
    # an orphan history over the user's branch (claude/<slug> is the agent's own since issue 9)
    assert "rule scope" in sections["rewrite"] or "rule no-rewrite" in sections["rewrite"]
    assert "rule scope" in sections["delete"]
    assert "rule scope" in sections["tag"] and "refs/tags/v9" in sections["tag"]
    assert "rule secret-scan" in sections["secret"] and "cfg.py:1: AWS Access Key" in sections["secret"]
    assert AWS_KEY not in sections["secret"]
    for line in ("config 404", "hooks/pre-receive 404", "HEAD 404", "objects/info/packs 404", "PUT 501"):
        assert line in sections["hooks"], sections["hooks"]
    assert sections["host repo"].strip() == "absent"
    env.cli("fetch", slug, cwd=repo)
    assert git("rev-parse", "main", cwd=repo) == main_before
    assert git("tag", cwd=repo) == ""
    assert hooks_and_config(repo) == before
    mirror_hooks = sorted(p.name for p in (env.state_dir(slug) / "git" / "mirror.git" / "hooks").iterdir())
    assert mirror_hooks == ["pre-receive"]


# -- a declared remote: an HTTPS git server that wants a token, on a network only the bundle joins ------

GIT_SERVER = r"""
import base64, contextlib, os, ssl
from http.server import ThreadingHTTPServer
from claude_bottle.sidecars.gitgate.server import GateHandler
WANT = "Basic " + base64.b64encode(("x-access-token:" + os.environ["TOKEN"]).encode()).decode()
class H(GateHandler):
    gate = type("L", (), {"log": staticmethod(lambda **_: None)})()
    def finish(self):
        super().finish()
        with contextlib.suppress(OSError, ValueError):
            self.connection.unwrap()
    def _handle(self):
        if self.headers.get("Authorization") != WANT:
            self.send_response(401); self.send_header("WWW-Authenticate", 'Basic realm="forge"')
            self.send_header("Content-Length", "0"); self.end_headers(); return
        path, _, query = self.path.partition("?")
        rest = path.removeprefix("/repo.git")
        self._cgi({"PATH": os.environ["PATH"], "GIT_HTTP_EXPORT_ALL": "1", "REMOTE_USER": "u",
                   "REQUEST_METHOD": self.command, "QUERY_STRING": query, "PATH_INFO": rest,
                   "PATH_TRANSLATED": "/srv/repo.git" + rest,
                   "GIT_PROTOCOL": self.headers.get("Git-Protocol", ""),
                   "CONTENT_TYPE": self.headers.get("Content-Type", "")})
srv = ThreadingHTTPServer(("0.0.0.0", 443), H)
ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER); ctx.load_cert_chain("/certs/server.pem", "/certs/server.key")
srv.socket = ctx.wrap_socket(srv.socket, server_side=True)
srv.serve_forever()
"""


class Forge(Upstream):
    host = "forge.test"

    @property
    def repo(self) -> Path:
        return self.dir / "repo.git"

    def _start(self) -> None:
        self._certs()
        git("init", "-q", "--bare", "-b", "main", str(self.repo))
        seed = self.dir / "seed"
        git("init", "-q", "-b", "main", str(seed))
        (seed / "FORGE.md").write_text("on the forge\n")
        git("add", ".", cwd=seed)
        git("commit", "-qm", "forge first", cwd=seed)
        git("push", "-q", str(self.repo), "main", "main:forge-only", cwd=seed)
        docker("network", "create", *self.labels, self.network)
        docker(
            "run",
            "-d",
            "--name",
            self.name,
            *self.labels,
            "--network",
            self.network,
            "--network-alias",
            self.host,
            "--env",
            f"TOKEN={TOKEN}",
            "--mount",
            f"type=bind,source={self.dir},target=/certs,readonly",
            "--mount",
            f"type=bind,source={self.repo},target=/srv/repo.git",
            "--entrypoint",
            "python3",
            self.image,
            "-c",
            GIT_SERVER,
        )


@pytest.fixture
def forge(env: Env, images: None) -> Iterator[Forge]:
    with Forge(home=str(env.home), label=TEST_LABEL) as up:
        (env.home / "upstream-ca.pem").write_bytes(up.trust_bundle.read_bytes())
        yield up


def test_forwarded_push_arrives_and_the_agent_never_holds_the_token(
    env: Env, forge: Forge, tmp_path: Path
) -> None:
    (env.home / "bottles").mkdir(exist_ok=True)
    (env.home / "agents").mkdir(exist_ok=True)
    (env.home / "bottles" / "forge.md").write_text(
        "---\ngit:\n  remotes:\n    - name: origin\n      url: https://forge.test/repo.git\n"
        '      token: "${CB_TEST_FORGE_TOKEN}"\n---\n'
    )
    (env.home / "agents" / "forger.md").write_text("---\nbottle: forge\n---\n")
    repo = make_repo(tmp_path / "project")
    environ = {**env.environ, "CB_TEST_FORGE_TOKEN": TOKEN}  # only `up` sees it, in its host environment
    up = subprocess.run(
        [sys.executable, "-m", "claude_bottle", "up", "forger", "--detach", "--yes", "--json"],
        env=environ,
        cwd=repo,
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )
    assert up.returncode == 0, up.stderr
    slug = json.loads(up.stdout)["slug"]
    try:
        forge.attach(f"claude-bottle-sidecars-{slug}")
        commit = f"git {' '.join(ID)} commit -qm"
        out = agent_sh(
            env,
            slug,
            "\n".join(
                [
                    "exec 2>&1",
                    f"echo w > w.txt && git add w.txt && {commit} w",
                    f"echo '== push'; git push origin claude/{slug}",
                    "echo '== fetch'; git fetch origin && git rev-parse origin/forge-only",
                    "echo '== main'; git push origin HEAD:main",
                    # reach the forge without the gate: through the proxy, and around it
                    "echo '== direct'; "
                    "GIT_CONFIG_GLOBAL=/dev/null git ls-remote https://forge.test/repo.git; "
                    "echo rc=$?; curl -sS --max-time 5 https://forge.test/ ; echo rc=$?; "
                    "curl -sS --max-time 5 --noproxy '*' https://forge.test/ ; echo rc=$?",
                    # look for the token everywhere the agent can read; the pattern is written with octal
                    # escapes so that no command line of the search itself holds the token
                    f"echo '== search'; printf '{OCTAL}' > /tmp/.pat; env | grep -c -F -f /tmp/.pat; "
                    "grep -rIl -F -f /tmp/.pat --exclude-dir=proc --exclude-dir=sys --exclude-dir=dev / "
                    "2>/dev/null "
                    "| grep -v '^/tmp/.pat$' | head; "
                    "cat /proc/*/environ /proc/*/cmdline 2>/dev/null | tr '\\0' '\\n' "
                    "| grep -c -F -f /tmp/.pat; "
                    "echo searched",
                ]
            ),
        )
        text = out.stdout
        sections = dict(part.split("\n", 1) for part in text.split("== ")[1:])
        assert f"forwarded refs/heads/claude/{slug} to origin" in sections["push"], text
        head = agent_sh(env, slug, "git rev-parse HEAD").stdout.strip()
        assert git("--git-dir", str(forge.repo), "rev-parse", f"claude/{slug}").strip() == head
        assert git("--git-dir", str(forge.repo), "rev-parse", "forge-only").strip() in sections["fetch"]
        assert "rule scope" in sections["main"]
        assert git("--git-dir", str(forge.repo), "rev-parse", "main").strip() != head
        direct = sections["direct"]
        assert direct.count("rc=0") == 0, direct
        assert sections["search"].split() == ["0", "0", "searched"], sections["search"]
        assert TOKEN not in text
    finally:
        env.cli("down", slug, "--yes", "--discard", check=False)
    assert labelled(f"dev.claude-bottle.slug={slug}") == []


def test_without_git_the_workspace_is_a_copy_and_cp_brings_files_out(
    env: Env, images: None, tmp_path: Path
) -> None:
    plain = tmp_path / "plain"
    plain.mkdir()
    (plain / "notes.txt").write_text("not a repository\n")
    slug = json.loads(env.cli("up", "--detach", "--yes", "--json", cwd=plain).stdout)["slug"]
    try:
        assert not (env.state_dir(slug) / "git").exists()
        out = agent_sh(
            env,
            slug,
            "cat notes.txt && test ! -e .git && mkdir -p out && echo made > out/result.txt && "
            "ln -s /etc/passwd out/escape && ln -s result.txt out/ok && "
            "mkdir out2 && ln -s ../../../../root/.bashrc out2/up",
        )
        assert out.returncode == 0 and out.stdout == "not a repository\n", out.stderr
        env.cli("cp", f"{slug}:out/result.txt", str(tmp_path / "result.txt"))
        assert (tmp_path / "result.txt").read_text() == "made\n"
        env.cli("cp", f"{slug}:/workspace/out", str(tmp_path / "outdir"))
        assert (tmp_path / "outdir" / "result.txt").read_text() == "made\n"
        # links the agent planted that lead out of the copy are removed; inner ones stay
        assert not (tmp_path / "outdir" / "escape").is_symlink()
        assert (tmp_path / "outdir" / "ok").read_text() == "made\n"
        # a relative link climbing out: docker cp itself refuses, in one line
        bad = env.cli("cp", f"{slug}:out2", str(tmp_path / "out2"), check=False)
        assert bad.returncode == 1 and "invalid symlink" in bad.stderr, bad.stderr
        assert len(bad.stderr.strip().splitlines()) == 1
        missing = env.cli("cp", f"{slug}:nope.txt", str(tmp_path / "x"), check=False)
        assert missing.returncode == 1 and len(missing.stderr.strip().splitlines()) == 1, missing.stderr
        fetch = env.cli("fetch", slug, check=False)
        assert fetch.returncode == 1 and "no git workspace" in fetch.stderr
    finally:
        env.cli("down", slug, "--yes", "--discard", check=False)
    assert labelled(f"dev.claude-bottle.slug={slug}") == []


# -- an SSH forge: the gate holds the key and pins the host key; a wrong pin refuses (fail closed) ------

SSHD_IMAGE = "claude-bottle-test-sshd:1"
SSHD_DOCKERFILE = """FROM debian:bookworm-slim
RUN apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \\
        openssh-server git && rm -rf /var/lib/apt/lists/* && mkdir -p /run/sshd \\
 && useradd --create-home --shell /usr/bin/git-shell git
"""


class SshForge(Forge):
    host = "ssh-forge.test"

    def keygen(self, name: str) -> Path:
        path = self.dir / name
        subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(path)], check=True)
        return path

    def _start(self) -> None:
        if not docker("images", "-q", SSHD_IMAGE).strip():
            docker("build", "-t", SSHD_IMAGE, "-", input=SSHD_DOCKERFILE.encode(), timeout=600)
        self.host_key, self.client_key, self.other_key = (self.keygen(n) for n in ("host", "client", "other"))
        (self.dir / "authorized_keys").write_text(Path(f"{self.client_key}.pub").read_text())
        git("init", "-q", "--bare", "-b", "main", str(self.repo))
        for path in self.dir.iterdir():
            path.chmod(0o755 if path.is_dir() else 0o644)
        docker("network", "create", *self.labels, self.network)
        sshd = (
            "chown -R git /srv/repo.git && exec /usr/sbin/sshd -D -e -h /keys/host "
            "-o AuthorizedKeysFile=/keys/authorized_keys -o StrictModes=no -o PasswordAuthentication=no"
        )
        docker(
            "run",
            "-d",
            "--name",
            self.name,
            *self.labels,
            "--network",
            self.network,
            "--network-alias",
            self.host,
            "--mount",
            f"type=bind,source={self.dir},target=/keys,readonly",
            "--mount",
            f"type=bind,source={self.repo},target=/srv/repo.git",
            SSHD_IMAGE,
            "sh",
            "-c",
            sshd,
        )
        (self.dir / "host").chmod(0o600)  # sshd reads it as root; the mount keeps the mode

    def pin(self, key: Path) -> str:
        return " ".join(Path(f"{key}.pub").read_text().split()[:2])


@pytest.fixture
def ssh_forge(env: Env, images: None) -> Iterator[SshForge]:
    with SshForge(home=str(env.home), label=TEST_LABEL) as up:
        yield up


def _ssh_bottle(env: Env, forge: SshForge, name: str, pin: str, repo: Path) -> str:
    (env.home / "bottles").mkdir(exist_ok=True)
    (env.home / "agents").mkdir(exist_ok=True)
    (env.home / "bottles" / f"{name}.md").write_text(
        f"---\ngit:\n  remotes:\n    - name: forge\n      url: ssh://git@{forge.host}/srv/repo.git\n"
        f'      ssh_key: {forge.client_key}\n      host_key: "{pin}"\n---\n'
    )
    (env.home / "agents" / f"{name}.md").write_text(f"---\nbottle: {name}\n---\n")
    slug = json.loads(env.cli("up", name, "--detach", "--yes", "--json", cwd=repo).stdout)["slug"]
    forge.attach(f"claude-bottle-sidecars-{slug}")
    return slug


def test_ssh_remote_with_pinned_key_forwards_and_a_wrong_pin_refuses(
    env: Env, ssh_forge: SshForge, tmp_path: Path
) -> None:
    private = ssh_forge.client_key.read_text().strip().splitlines()[1]  # a line of the private key
    for name, pin, works in (
        ("sshok", ssh_forge.pin(ssh_forge.host_key), True),
        ("sshmitm", ssh_forge.pin(ssh_forge.other_key), False),
    ):
        repo = make_repo(tmp_path / name)
        slug = _ssh_bottle(env, ssh_forge, name, pin, repo)
        try:
            out = agent_sh(
                env,
                slug,
                "\n".join(
                    [
                        "exec 2>&1",
                        f"echo s > s.txt && git add s.txt && git {' '.join(ID)} commit -qm s",
                        f"git push forge claude/{slug}; echo rc=$?",
                        f"printf '%s' '{private[:20]}' > /tmp/.pat; "
                        "grep -rIl -F -f /tmp/.pat --exclude-dir=proc --exclude-dir=sys --exclude-dir=dev / "
                        "2>/dev/null "
                        "| grep -v '^/tmp/.pat$' | head; echo searched",
                    ]
                ),
            )
            text = out.stdout
            if works:
                assert f"forwarded refs/heads/claude/{slug} to forge" in text and "rc=0" in text, text
                assert (
                    git("--git-dir", str(ssh_forge.repo), "rev-parse", f"claude/{slug}").strip()
                    == agent_sh(env, slug, "git rev-parse HEAD").stdout.strip()
                )
            else:
                assert "rule forward" in text and "Host key verification failed" in text, text
                assert "rc=1" in text
            assert (
                text.rstrip().endswith("searched")
                and text.split("rc=")[1].split("\n", 1)[1].strip() == "searched"
            ), text
        finally:
            env.cli("down", slug, "--yes", "--discard", check=False)
        assert labelled(f"dev.claude-bottle.slug={slug}") == []
