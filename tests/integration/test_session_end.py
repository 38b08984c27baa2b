"""No work is lost when a bottle ends, unless the user says so (issue 9), on a real docker bottle.

The agent commits without pushing, leaves a modified and an untracked file, and the bottle is taken
down (``down SLUG``, ``down --all``): its commits are pushed to the gate, the rest is saved on
``claude/<slug>-wip``, the state dir stays, and ``fetch`` brings both home. A stopped agent cannot be
saved from: ``down`` keeps it and says so; ``--discard`` is the only way to drop the work.
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from tests.integration.dockerkit import AgentBottle, Env, docker, labelled

pytestmark = pytest.mark.integration


def git(*args: str, cwd: Path) -> str:
    env = {"GIT_AUTHOR_NAME": "u", "GIT_AUTHOR_EMAIL": "u@u", "GIT_COMMITTER_NAME": "u",
           "GIT_COMMITTER_EMAIL": "u@u", "PATH": "/usr/bin:/bin", "HOME": "/nonexistent"}
    return subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True, check=True, env=env).stdout


@pytest.fixture
def up_in_repo(env: Env, images: None, tmp_path: Path) -> Iterator[tuple[AgentBottle, Path]]:
    """A bottle started in a fresh git repository; taken down with --discard whatever the test did."""
    repo = tmp_path / "project"
    repo.mkdir()
    git("init", "-q", "-b", "main", str(repo), cwd=tmp_path)
    (repo / "README.md").write_text("the user's project\n")
    git("add", ".", cwd=repo)
    git("commit", "-qm", "first", cwd=repo)
    slug = json.loads(env.cli("up", "--detach", "--yes", "--json", cwd=repo).stdout)["slug"]
    try:
        yield AgentBottle(slug, env), repo
    finally:
        env.cli("down", slug, "--yes", "--discard", check=False)


def _work(bottle: AgentBottle) -> None:
    """Committed but not pushed, a tracked file changed, a file never added, one ignored."""
    out = bottle.sh("set -e; cd /workspace; echo done > done.txt; git add done.txt; "
                    "git commit -qm 'agent: done'; echo changed >> README.md; echo draft > draft.txt; "
                    "echo junk > junk.log; "
                    "echo '*.log' > .git/info/exclude; git status --porcelain")
    assert out.returncode == 0, out.stderr
    assert "?? draft.txt" in out.stdout and " M README.md" in out.stdout


def _fetched(env: Env, slug: str, repo: Path) -> None:
    fetched = env.cli("fetch", slug, cwd=repo)
    assert f"claude/{slug}" in fetched.stdout + fetched.stderr, fetched
    assert git("show", f"claude/{slug}:done.txt", cwd=repo) == "done\n"
    assert git("show", f"claude/{slug}-wip:draft.txt", cwd=repo) == "draft\n"
    assert git("show", f"claude/{slug}-wip:README.md", cwd=repo).endswith("changed\n")
    assert "junk.log" not in git("ls-tree", "-r", "--name-only", f"claude/{slug}-wip", cwd=repo)


Repo = tuple[AgentBottle, Path]


@pytest.mark.parametrize("how", ["down", "down-all"])
def test_down_saves_commits_and_uncommitted_work_for_fetch(env: Env, up_in_repo: Repo, how: str) -> None:
    bottle, repo = up_in_repo
    _work(bottle)
    args = ("down", bottle.slug, "--yes") if how == "down" else ("down", "--all", "--yes")
    out = env.cli(*args)
    said = out.stdout + out.stderr
    assert "saved to the bottle's mirror" in said and f"claude/{bottle.slug}-wip" in said, said
    assert f"claude-bottle fetch {bottle.slug}" in said, said
    assert labelled(f"dev.claude-bottle.slug={bottle.slug}") == []  # the bottle itself is gone
    assert env.state_dir(bottle.slug).is_dir()  # its work is not
    _fetched(env, bottle.slug, repo)


def test_a_stopped_bottle_is_listed_spared_by_cleanup_and_started_again(env: Env, up_in_repo: Repo) -> None:
    bottle, repo = up_in_repo
    _work(bottle)
    docker("stop", "-t", "1", bottle.agent, bottle.bundle)  # as a host reboot leaves it
    row = next(r for r in json.loads(env.cli("list", "--json").stdout) if r["slug"] == bottle.slug)
    assert row["state"] == "stopped", row
    plan = env.cli("cleanup", "--dry-run", "--json")
    assert bottle.slug not in plan.stdout, plan.stdout
    kept = env.cli("down", bottle.slug, "--yes", check=False)
    assert kept.returncode == 1 and f"claude-bottle down {bottle.slug} --discard" in kept.stderr, kept
    assert labelled(f"dev.claude-bottle.slug={bottle.slug}"), "the bottle was removed with its work"
    env.cli("start", bottle.slug)
    assert bottle.sh("cat /workspace/draft.txt").stdout == "draft\n"  # the work survived the stop
    out = env.cli("down", bottle.slug, "--yes")
    assert "saved to the bottle's mirror" in out.stdout + out.stderr
    _fetched(env, bottle.slug, repo)


def test_a_stopped_agent_is_kept_until_the_user_discards_it(env: Env, up_in_repo: Repo) -> None:
    bottle, _ = up_in_repo
    _work(bottle)
    docker("stop", "-t", "1", bottle.agent)
    kept = env.cli("down", bottle.slug, "--yes", check=False)
    assert kept.returncode == 1, kept
    assert "--discard" in kept.stderr and "kept bottle" in kept.stderr, kept.stderr
    assert labelled(f"dev.claude-bottle.slug={bottle.slug}"), "the bottle was removed with its work"
    gone = env.cli("down", bottle.slug, "--yes", "--discard")
    assert gone.returncode == 0
    assert labelled(f"dev.claude-bottle.slug={bottle.slug}") == []
    assert not env.state_dir(bottle.slug).exists()


def test_nothing_to_save_removes_everything(env: Env, up_in_repo: Repo) -> None:
    bottle, _ = up_in_repo
    out = env.cli("down", bottle.slug, "--yes")
    assert "saved" not in out.stdout + out.stderr
    assert not env.state_dir(bottle.slug).exists()


def _up_copy(env: Env, folder: Path) -> AgentBottle:
    up = env.cli("up", "--detach", "--yes", "--json", cwd=folder)
    return AgentBottle(json.loads(up.stdout)["slug"], env)


def test_a_copied_workspace_the_agent_changed_is_kept_until_discarded(env: Env, images: None,
                                                                       tmp_path: Path) -> None:
    folder = tmp_path / "notes"
    folder.mkdir()
    (folder / "plan.md").write_text("draft\n")
    bottle = _up_copy(env, folder)
    try:
        out = bottle.sh("cd /workspace && echo better >> plan.md && echo new > result.txt && "
                        "cp /bin/true suid && chmod u+s suid && ln -s /etc/passwd out-link")
        assert out.returncode == 0, out.stderr
        down = env.cli("down", bottle.slug, "--yes")
        kept = env.state_dir(bottle.slug) / "workspace"
        assert str(kept) in down.stderr and "--discard" in down.stderr, down.stderr
        assert (kept / "plan.md").read_text() == "draft\nbetter\n" and (kept / "result.txt").is_file()
        assert not (kept / "suid").stat().st_mode & 0o4000  # made safe on the way out
        assert not (kept / "out-link").exists() and not (kept / "out-link").is_symlink()
        plan = env.cli("cleanup", "--dry-run", "--json")
        assert bottle.slug not in plan.stdout
        env.cli("down", bottle.slug, "--yes", "--discard")
        assert not env.state_dir(bottle.slug).exists()
    finally:
        env.cli("down", bottle.slug, "--yes", "--discard", check=False)


def test_an_unchanged_copied_workspace_is_not_kept(env: Env, images: None, tmp_path: Path) -> None:
    folder = tmp_path / "notes"
    folder.mkdir()
    (folder / "plan.md").write_text("draft\n")
    bottle = _up_copy(env, folder)
    env.cli("down", bottle.slug, "--yes")
    assert not env.state_dir(bottle.slug).exists()
