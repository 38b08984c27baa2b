"""``claude-bottle fetch SLUG`` through the CLI: the repository it wrote to, each branch with the commits
it brought, git's refusals as one line with the fix, and ``--json``."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from claude_bottle import gitwork
from claude_bottle.backends.base import BottleSpec
from claude_bottle.manifest.model import AgentDef, BottleDef
from claude_bottle.runner import SubprocessRunner

SLUG = "coder-zz9yx"


def git(*args: str, cwd: Path | None = None, text: str | None = None) -> str:
    env = {"GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@t", "GIT_COMMITTER_NAME": "t",
           "GIT_COMMITTER_EMAIL": "t@t", "PATH": "/usr/bin:/bin:/usr/local/bin"}
    return subprocess.run(["git", *args], cwd=cwd, input=text, capture_output=True, text=True, check=True,
                          env=env).stdout.strip()


# -- fetch -----------------------------------------------------------------------------------------
@pytest.fixture
def pushed(tmp_path: Path, cb_home: Path) -> tuple[Path, Path, list[str]]:
    """A user's repository and bottle SLUG's mirror, where the agent pushed two commits."""
    repo = tmp_path / "user"
    git("init", "-q", "-b", "main", str(repo))
    git("commit", "-q", "--allow-empty", "-m", "one", cwd=repo)
    state = cb_home / "state" / SLUG
    spec = BottleSpec(slug=SLUG, agent=AgentDef(name="coder", source="<t>"),
                      bottle=BottleDef(name="default", source="<t>"), cwd=repo, state_dir=state)
    ws = gitwork.prepare_workspace(runner=SubprocessRunner(), spec=spec, state_dir=state)
    assert ws is not None
    mirror, shas = ws.mirror, [ws.base]
    for text in ("a\n", "b\n"):
        blob = git(f"--git-dir={mirror}", "hash-object", "-w", "--stdin", text=text)
        tree = git(f"--git-dir={mirror}", "mktree", text=f"100644 blob {blob}\tf.txt\n")
        shas.append(git(f"--git-dir={mirror}", "commit-tree", tree, "-p", shas[-1], "-m", text))
    git(f"--git-dir={mirror}", "update-ref", f"refs/heads/claude/{SLUG}", shas[-1])
    return repo, Path(mirror), shas


def test_fetch_says_where_and_what_it_brought(cli, pushed):
    repo, _, shas = pushed
    result = cli("fetch", SLUG)
    assert result.exit_code == 0, result.output
    line = f"  claude/{SLUG} -> {shas[-1][:12]} (new branch, 2 commits ahead of your HEAD)"
    assert result.stdout == f"fetched into {repo}:\n{line}\n"
    again = cli("fetch", SLUG)
    assert again.stdout.splitlines()[1] == f"  claude/{SLUG} -> {shas[-1][:12]} (already up to date)"


def test_fetch_json_and_a_refusal_with_its_fix(cli, pushed):
    repo, _, shas = pushed
    # the user made a branch of that name on their own: fetch must not move it
    mine = git("commit-tree", "HEAD^{tree}", "-p", "HEAD", "-m", "mine", cwd=repo)
    git("branch", f"claude/{SLUG}", mine, cwd=repo)
    result = cli("fetch", SLUG, "--json")
    assert result.exit_code == 1
    data = json.loads(result.stdout)
    assert data["repository"] == str(repo)
    (branch,) = data["branches"]
    assert {k: branch[k] for k in ("branch", "sha", "previous", "commits", "ok")} == {
        "branch": f"claude/{SLUG}", "sha": shas[-1], "previous": mine, "commits": None, "ok": False}
    assert "non-fast-forward" in branch["detail"] and f"claude-bottle fetch {SLUG}" in branch["detail"]
    # the refusal is one line on stderr too, naming the branch
    (line,) = result.stderr.splitlines()
    assert line.startswith(f"error: claude/{SLUG} not fetched: your claude/{SLUG} has commits")


def test_fetch_json_of_a_bottle_that_pushed_nothing(cli, pushed):
    repo, mirror, _ = pushed
    git(f"--git-dir={mirror}", "update-ref", "-d", f"refs/heads/claude/{SLUG}")
    result = cli("fetch", SLUG, "--json")
    assert result.exit_code == 0
    assert json.loads(result.stdout) == {"repository": str(repo), "branches": []}
    assert "has not pushed any" in result.stderr
