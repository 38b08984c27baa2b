"""Red team (fixed): the bottle's own secret leaving through git-gate's forwarding to a declared remote.

The request scanner refuses this bottle's own secret values on every HTTP request, in many encodings,
whatever their shape. A declared git remote is an egress path too: the gate forwards accepted pushes
there. Here the agent holds the real value of a secret that has no token shape (a database password a
careless user left in the environment of a tool, found by the agent), commits it and pushes it to the
declared remote.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from tests.integration.dockerkit import TEST_LABEL, Env
from tests.integration.test_git_gate import TOKEN, Forge, git, make_repo

pytestmark = pytest.mark.integration

DB_PASSWORD = "correct-horse-battery-staple-9731-purple"  # no token shape: only the value itself tells


@pytest.fixture
def forge(env: Env, images: None) -> Iterator[Forge]:
    with Forge(home=str(env.home), label=TEST_LABEL) as up:
        (env.home / "upstream-ca.pem").write_bytes(up.trust_bundle.read_bytes())
        yield up


def test_own_secret_value_pushed_to_a_declared_remote_is_refused(env: Env, forge: Forge,
                                                                 tmp_path: Path) -> None:
    (env.home / "bottles").mkdir(exist_ok=True)
    (env.home / "agents").mkdir(exist_ok=True)
    (env.home / "bottles" / "rt-forge.md").write_text(
        "---\negress:\n  allow: [db-api.test]\ngit:\n  remotes:\n    - name: origin\n      url: https://forge.test/repo.git\n"
        '      token: "${CB_TEST_FORGE_TOKEN}"\n'
        "secrets:\n  DB_PASSWORD:\n    from: ${CB_RT_DB_PASSWORD}\n    hosts: [db-api.test]\n---\n")
    (env.home / "agents" / "rt-forger.md").write_text("---\nbottle: rt-forge\n---\n")
    repo = make_repo(tmp_path / "project")
    environ = {**env.environ, "CB_TEST_FORGE_TOKEN": TOKEN, "CB_RT_DB_PASSWORD": DB_PASSWORD}
    argv = [sys.executable, "-m", "claude_bottle", "up", "rt-forger", "--detach", "--yes", "--json"]
    up = subprocess.run(argv, env=environ, cwd=repo, capture_output=True, text=True, timeout=900, check=False)
    assert up.returncode == 0, up.stderr
    slug = json.loads(up.stdout)["slug"]
    try:
        forge.attach(f"claude-bottle-sidecars-{slug}")
        # the value reaches the agent through stdin (as a file it found would), never a command line
        out = subprocess.run(["docker", "exec", "-i", "--user", "claude", "-w", "/workspace",
                              f"claude-bottle-{slug}", "sh", "-c",
                              "exec 2>&1; cat > notes.txt; git add notes.txt; "
                              "git -c user.name=a -c user.email=a@b commit -qm notes; "
                              f"git push origin claude/{slug}; echo rc=$?"],
                             input=f"db password: {DB_PASSWORD}\n", capture_output=True, text=True,
                             timeout=300, check=False)
        arrived = git("--git-dir", str(forge.repo), "for-each-ref", "--format=%(refname)")
        leaked = f"refs/heads/claude/{slug}" in arrived and DB_PASSWORD in git(
            "--git-dir", str(forge.repo), "show", f"claude/{slug}:notes.txt")
        assert not leaked, f"the bottle's own secret reached the remote: {out.stdout}"
        assert "rule own-secret" in out.stdout and "DB_PASSWORD" in out.stdout, out.stdout
        assert DB_PASSWORD not in out.stdout
    finally:
        env.cli("down", slug, "--yes", "--discard", check=False)
