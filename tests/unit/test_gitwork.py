"""The host side of git-gate with real git: the mirror, and `fetch` against a mirror the bundle could
have tampered with (the bundle mounts it read-write, so the host must treat it as hostile)."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from claude_bottle import gitwork
from claude_bottle.backends.base import BottleSpec
from claude_bottle.errors import BottleError
from claude_bottle.manifest.model import AgentDef, BottleDef, GitDef, GitRemote
from claude_bottle.runner import SubprocessRunner
from claude_bottle.sidecars.gitgate.policy import ZERO, Update, check_updates

SLUG = "coder-zz9yx"
BRANCH = f"refs/heads/claude/{SLUG}"
RUNNER = SubprocessRunner()


def git(*args: str, cwd: Path | None = None, check: bool = True) -> str:
    env = {
        **os.environ,
        "GIT_AUTHOR_NAME": "t",
        "GIT_AUTHOR_EMAIL": "t@t",
        "GIT_COMMITTER_NAME": "t",
        "GIT_COMMITTER_EMAIL": "t@t",
    }
    return subprocess.run(
        ["git", *args], cwd=cwd, capture_output=True, text=True, check=check, env=env
    ).stdout


def spec(cwd: Path, state: Path, *, workspace: bool = True) -> BottleSpec:
    return BottleSpec(
        slug=SLUG,
        agent=AgentDef(name="coder", source="<t>"),
        bottle=BottleDef(name="default", source="<t>"),
        cwd=cwd,
        state_dir=state,
        workspace=workspace,
    )


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    path = tmp_path / "user"
    git("init", "-q", "-b", "main", str(path))
    (path / "a.txt").write_text("a\n")
    git("add", ".", cwd=path)
    git("commit", "-qm", "one", cwd=path)
    return path


def mirror_commit(mirror: Path, parent: str, text: str) -> str:
    """A commit made "by the agent" straight into the mirror (what an accepted push leaves there)."""
    blob = subprocess.run(
        ["git", f"--git-dir={mirror}", "hash-object", "-w", "--stdin"],
        input=text,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    tree = subprocess.run(
        ["git", f"--git-dir={mirror}", "mktree"],
        input=f"100644 blob {blob}\tnew.txt\n",
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    return git(f"--git-dir={mirror}", "commit-tree", tree, "-p", parent, "-m", "agent").strip()


def test_outside_git_and_without_workspace_there_is_no_mirror(tmp_path: Path, repo: Path) -> None:
    plain = tmp_path / "plain"
    plain.mkdir()
    assert (
        gitwork.prepare_workspace(runner=RUNNER, spec=spec(plain, tmp_path / "s1"), state_dir=tmp_path / "s1")
        is None
    )
    assert (
        gitwork.prepare_workspace(
            runner=RUNNER, spec=spec(repo, tmp_path / "s2", workspace=False), state_dir=tmp_path / "s2"
        )
        is None
    )


def test_mirror_has_the_users_refs_a_new_branch_and_nothing_of_theirs(tmp_path: Path, repo: Path) -> None:
    (repo / ".git" / "hooks" / "post-checkout").write_text("#!/bin/sh\n")
    git("config", "core.sshCommand", "evil", cwd=repo)
    git("tag", "v1", cwd=repo)
    ws = gitwork.prepare_workspace(
        runner=RUNNER, spec=spec(repo / ".", tmp_path / "s"), state_dir=tmp_path / "s"
    )
    assert ws is not None and ws.branch == f"claude/{SLUG}" and not ws.uncommitted
    mirror = Path(ws.mirror)
    refs = git(f"--git-dir={mirror}", "for-each-ref", "--format=%(refname)").split()
    start = f"refs/heads/{gitwork.start_branch(SLUG)}"
    # the agent's own namespace is free: claude/<slug> and claude/<slug>/* are both its to create
    assert refs == [start, "refs/heads/main", "refs/tags/v1"]
    assert git(f"--git-dir={mirror}", "rev-parse", start) == git("rev-parse", "HEAD", cwd=repo)
    assert not (mirror / "hooks").exists() or not any((mirror / "hooks").iterdir())
    assert "evil" not in (mirror / "config").read_text()
    assert not (mirror / "objects" / "info" / "alternates").exists()
    assert git(f"--git-dir={mirror}", "symbolic-ref", "HEAD").strip() == start


def test_fetch_runs_nothing_from_a_tampered_mirror(tmp_path: Path, repo: Path) -> None:
    state = tmp_path / "s"
    ws = gitwork.prepare_workspace(runner=RUNNER, spec=spec(repo, state), state_dir=state)
    assert ws is not None
    mirror = Path(ws.mirror)
    new = mirror_commit(mirror, ws.base, "agent work\n")
    git(f"--git-dir={mirror}", "update-ref", BRANCH, new)
    # everything a hostile bundle could plant in the mirror to run code on the host
    marker = tmp_path / "pwned"
    evil = f"#!/bin/sh\ntouch {marker}\n"
    for hook in (
        "pre-upload-pack",
        "post-update",
        "reference-transaction",
        "pre-receive",
        "fsmonitor-watchman",
    ):
        (mirror / "hooks").mkdir(exist_ok=True)
        (mirror / "hooks" / hook).write_text(evil)
        (mirror / "hooks" / hook).chmod(0o755)
    with (mirror / "config").open("a") as cfg:
        cfg.write(
            f"[core]\n\tfsmonitor = touch {marker}\n\tsshCommand = touch {marker}\n"
            f"[uploadpack]\n\tpackObjectsHook = touch {marker}\n"
            f"[core]\n\thooksPath = {mirror / 'hooks'}\n"
        )
    # a ref that is a symlink to a host file, and a ref outside the bottle's branch
    (mirror / "refs" / "heads" / "claude" / f"{SLUG}-x").symlink_to("/etc/hostname")
    results = gitwork.fetch_home(runner=RUNNER, state_dir=state).branches
    assert [(r.branch, r.ok) for r in results] == [(f"claude/{SLUG}", True)]
    assert not marker.exists()
    assert git("rev-parse", f"claude/{SLUG}", cwd=repo).strip() == new
    assert git("branch", "--list", "--format=%(refname:short)", cwd=repo).split() == [
        f"claude/{SLUG}",
        "main",
    ]


def test_fetch_refuses_a_checked_out_branch_and_a_rewrite(tmp_path: Path, repo: Path) -> None:
    state = tmp_path / "s"
    ws = gitwork.prepare_workspace(runner=RUNNER, spec=spec(repo, state), state_dir=state)
    assert ws is not None
    mirror = Path(ws.mirror)
    first = mirror_commit(mirror, ws.base, "one\n")
    git(f"--git-dir={mirror}", "update-ref", BRANCH, first)
    assert all(r.ok for r in gitwork.fetch_home(runner=RUNNER, state_dir=state).branches)
    # the user now works on that branch: fetch must not move it under their working tree
    git("checkout", "-q", f"claude/{SLUG}", cwd=repo)
    second = mirror_commit(mirror, first, "two\n")
    git(f"--git-dir={mirror}", "update-ref", BRANCH, second)
    (result,) = gitwork.fetch_home(runner=RUNNER, state_dir=state).branches
    assert not result.ok and "checked out" in result.detail
    git("checkout", "-q", "main", cwd=repo)
    # a branch rewritten in the mirror is not forced over the user's copy
    other = mirror_commit(mirror, ws.base, "rewritten\n")
    git(f"--git-dir={mirror}", "update-ref", BRANCH, other)
    (result,) = gitwork.fetch_home(runner=RUNNER, state_dir=state).branches
    assert not result.ok and "non-fast-forward" in result.detail
    assert git("rev-parse", f"claude/{SLUG}", cwd=repo).strip() == first


def test_fetch_without_a_state_dir_is_one_line(tmp_path: Path) -> None:
    from claude_bottle.config import Settings  # noqa: PLC0415

    with pytest.raises(BottleError, match="no state dir"):
        gitwork.fetch_slug(SLUG, settings=Settings(home=tmp_path), runner=RUNNER)
    with pytest.raises(BottleError, match="not a bottle slug"):
        gitwork.fetch_slug("../etc", settings=Settings(home=tmp_path), runner=RUNNER)


def test_agent_commands_bypass_the_proxy_for_the_gate_and_rewrite_remote_urls() -> None:
    bottle = BottleDef(
        name="b",
        source="<t>",
        git=GitDef(
            remotes=(GitRemote(name="origin", url="https://forge.example/me/repo.git", token_env="T"),)
        ),
    )
    cmds = gitwork.agent_clone_commands(slug=SLUG, bottle=bottle)
    assert ["git", "config", "--global", "http.http://git-gate:8418/.proxy", ""] in cmds
    assert [
        "git",
        "config",
        "--global",
        "url.http://git-gate:8418/remotes/origin.git.insteadOf",
        "https://forge.example/me/repo.git",
    ] in cmds
    assert any("http://git-gate:8418/workspace.git" in argv for argv in cmds)
    assert cmds[-6:] == [
        ["git", "-C", "/workspace", "remote", "rename", "origin", "bottle"],
        ["git", "-C", "/workspace", "remote", "add", "origin", "https://forge.example/me/repo.git"],
        # the agent's own branch, pushing to the same name on the gate (renamed `bottle` here)
        ["git", "-C", "/workspace", "checkout", "--quiet", "-b", f"claude/{SLUG}"],
        ["git", "-C", "/workspace", "config", f"branch.claude/{SLUG}.remote", "bottle"],
        ["git", "-C", "/workspace", "config", f"branch.claude/{SLUG}.merge", f"refs/heads/claude/{SLUG}"],
        ["git", "-C", "/workspace", "config", "push.default", "upstream"],
    ]
    assert not any(arg == "T" or "token" in arg for argv in cmds for arg in argv)


def test_gate_config_expands_slug_patterns_and_holds_no_secret() -> None:
    bottle = BottleDef(
        name="b",
        source="<t>",
        git=GitDef(
            push=("feature/{slug}-*",),
            remotes=(
                GitRemote(
                    name="gh", url="https://forge.example/r.git", token_env="GH_TOKEN", branches=("claude/*",)
                ),
            ),
        ),
    )
    config = gitwork.gate_config(slug=SLUG, bottle=bottle)
    assert config.push == (f"claude/{SLUG}", f"claude/{SLUG}/*", f"claude/{SLUG}-wip",
                           f"claude/{SLUG}-saved/*", f"feature/{SLUG}-*")
    assert config.remotes[0].credential == "token" and "GH_TOKEN" not in config.dumps()
    creds = gitwork.gate_credentials(bottle=bottle, environ={"GH_TOKEN": "ghp_secretvalue123"})
    assert creds == {"gh": {"kind": "token", "value": "ghp_secretvalue123"}}
    cmd = gitwork.credentials_command(
        container="bundle", bottle=bottle, environ={"GH_TOKEN": "ghp_secretvalue123"}
    )
    assert cmd is not None and "ghp_secretvalue123" not in " ".join(cmd.argv)
    with pytest.raises(BottleError, match="GH_TOKEN is not set"):
        gitwork.gate_credentials(bottle=bottle, environ={})


def _check(
    *updates: Update,
    baseline: dict[str, str] | None = None,
    ancestors: set[tuple[str, str]] = frozenset(),
    push: tuple[str, ...] = (f"claude/{SLUG}", f"claude/{SLUG}/*"),
) -> list[str]:
    refusals = check_updates(
        list(updates),
        push=push,
        baseline=baseline or {},
        is_ancestor=lambda a, b: a == b or (a, b) in ancestors,
    )
    return [r.rule for r in refusals]


def test_policy_rules() -> None:
    a, b, c = "a" * 40, "b" * 40, "c" * 40
    assert _check(Update(ZERO, a, BRANCH)) == []
    assert _check(Update(ZERO, a, f"{BRANCH}/sub/topic")) == []
    assert _check(Update(ZERO, a, "refs/heads/main")) == ["scope"]
    assert _check(Update(ZERO, a, f"{BRANCH}-evil")) == ["scope"]
    assert _check(Update(ZERO, a, "refs/tags/v1")) == ["scope"]
    assert _check(Update(ZERO, a, "refs/tags/v1"), push=("refs/tags/v*",)) == []
    assert _check(Update(a, b, "refs/tags/v1"), push=("refs/tags/v*",)) == ["tag-immutable"]
    base = {BRANCH: a}
    assert _check(Update(a, ZERO, BRANCH), baseline=base) == ["no-delete"]
    assert _check(Update(b, ZERO, f"{BRANCH}/mine"), baseline=base) == []
    assert _check(Update(a, b, BRANCH), baseline=base) == ["no-rewrite"]
    assert _check(Update(b, c, BRANCH), baseline=base, ancestors={(a, c)}) == []  # keeps the user's commit
    assert _check(Update(a, b, BRANCH), baseline=base, ancestors={(a, b)}) == []


def test_unfetched_branches_until_fetch(tmp_path: Path, repo: Path) -> None:
    state = tmp_path / "s"
    ws = gitwork.prepare_workspace(runner=RUNNER, spec=spec(repo, state), state_dir=state)
    assert ws is not None
    assert gitwork.unfetched_branches(runner=RUNNER, state_dir=state) == []  # nothing pushed yet
    mirror = Path(ws.mirror)
    git(f"--git-dir={mirror}", "update-ref", BRANCH, mirror_commit(mirror, ws.base, "w\n"))
    assert gitwork.unfetched_branches(runner=RUNNER, state_dir=state) == [f"claude/{SLUG}"]
    gitwork.fetch_home(runner=RUNNER, state_dir=state)
    assert gitwork.unfetched_branches(runner=RUNNER, state_dir=state) == []


def test_gate_credentials_are_stored_only_on_a_tmpfs(tmp_path: Path) -> None:
    from claude_bottle.sidecars.gitgate import creds  # noqa: PLC0415

    payload = {"origin": {"kind": "token", "value": "tok-abcdef123456"}}
    if not creds.is_tmpfs(tmp_path):
        with pytest.raises(SystemExit, match="not a tmpfs"):
            creds.store(payload, tmp_path / "git")
    shm = Path("/dev/shm") / f"claude-bottle-test-{os.getpid()}"
    try:
        (written,) = creds.store(payload, shm / "git")
        assert written.read_text() == "tok-abcdef123456"
        assert oct(written.stat().st_mode & 0o777) == "0o600"
        assert oct((shm / "git").stat().st_mode & 0o777) == "0o700"
        with pytest.raises(SystemExit, match="bad credential"):
            creds.store({"../x": {"kind": "token", "value": "v"}}, shm / "git")
    finally:
        shutil.rmtree(shm, ignore_errors=True)


# -- what fetch says: the repository, each branch's new commits, git's refusals with their fix ---------
def test_fetch_names_the_repository_and_counts_new_commits(tmp_path: Path, repo: Path) -> None:
    state = tmp_path / SLUG
    ws = gitwork.prepare_workspace(runner=RUNNER, spec=spec(repo, state), state_dir=state)
    assert ws is not None
    mirror = Path(ws.mirror)
    # the user moves on meanwhile: a new branch counts against their HEAD, not against where it began
    (repo / "b.txt").write_text("b\n")
    git("add", ".", cwd=repo)
    git("commit", "-qm", "user", cwd=repo)
    one = mirror_commit(mirror, ws.base, "one\n")
    two = mirror_commit(mirror, one, "two\n")
    git(f"--git-dir={mirror}", "update-ref", BRANCH, two)
    result = gitwork.fetch_home(runner=RUNNER, state_dir=state)
    assert result.repo == str(repo)
    assert result.branches == (gitwork.FetchedBranch(f"claude/{SLUG}", two, True, commits=2),)
    three = mirror_commit(mirror, two, "three\n")
    git(f"--git-dir={mirror}", "update-ref", BRANCH, three)
    (branch,) = gitwork.fetch_home(runner=RUNNER, state_dir=state).branches
    assert (branch.ok, branch.previous, branch.commits) == (True, two, 1)
    # nothing new, with the branch checked out: git would refuse even this no-op, fetch does not ask it
    git("checkout", "-q", f"claude/{SLUG}", cwd=repo)
    (branch,) = gitwork.fetch_home(runner=RUNNER, state_dir=state).branches
    assert (branch.ok, branch.previous, branch.commits, branch.detail) == (True, three, 0, "")


def test_fetch_turns_refusals_into_one_line_with_the_fix(tmp_path: Path, repo: Path) -> None:
    state = tmp_path / SLUG
    ws = gitwork.prepare_workspace(runner=RUNNER, spec=spec(repo, state), state_dir=state)
    assert ws is not None
    mirror = Path(ws.mirror)
    first = mirror_commit(mirror, ws.base, "one\n")
    git(f"--git-dir={mirror}", "update-ref", BRANCH, first)
    gitwork.fetch_home(runner=RUNNER, state_dir=state)
    # the user commits on their copy of the branch; then the agent pushes more to its own
    git("checkout", "-q", f"claude/{SLUG}", cwd=repo)
    (repo / "mine.txt").write_text("mine\n")
    git("add", ".", cwd=repo)
    git("commit", "-qm", "mine", cwd=repo)
    mine = git("rev-parse", "HEAD", cwd=repo).strip()
    git(f"--git-dir={mirror}", "update-ref", BRANCH, mirror_commit(mirror, first, "two\n"))
    (branch,) = gitwork.fetch_home(runner=RUNNER, state_dir=state).branches
    assert not branch.ok and branch.previous == mine and branch.commits is None
    assert "checked out in" in branch.detail and f"git -C {repo} switch -" in branch.detail
    assert branch.detail.endswith(f"then run `claude-bottle fetch {SLUG}` again")
    git("checkout", "-q", "main", cwd=repo)
    (branch,) = gitwork.fetch_home(runner=RUNNER, state_dir=state).branches
    assert not branch.ok and "non-fast-forward" in branch.detail
    assert f"git -C {repo} branch -m claude/{SLUG} claude/{SLUG}-mine" in branch.detail
    assert "\n" not in branch.detail and git("rev-parse", f"claude/{SLUG}", cwd=repo).strip() == mine


def test_fetch_into_a_repository_that_is_gone(tmp_path: Path, repo: Path) -> None:
    state = tmp_path / SLUG
    assert gitwork.prepare_workspace(runner=RUNNER, spec=spec(repo, state), state_dir=state) is not None
    shutil.rmtree(repo)
    with pytest.raises(BottleError) as caught:
        gitwork.fetch_home(runner=RUNNER, state_dir=state)
    assert f"the repository {repo} the bottle started from is gone" in caught.value.message
    assert f"claude-bottle fetch {SLUG}" in str(caught.value.hint)
    assert str(state / "git" / "mirror.git") in str(caught.value.hint)
