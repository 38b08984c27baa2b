"""The host side of git-gate: the bottle's bare mirror, the agent's clone commands, ``fetch`` home.

At ``up`` inside a git repository, :func:`prepare_workspace` makes ``<state_dir>/git/mirror.git``: a
fresh bare repository (no hooks or config copied from the user's repository, no hard links or
alternates into it) holding the user's branches and tags plus a start branch
``claude-bottle-start/<slug>`` at the user's HEAD, from which the agent's ``claude/<slug>`` begins.
``--with-uncommitted`` adds the working tree's changes (tracked and untracked, not ignored) as a first
commit on that branch, built with a temporary index and written into the mirror's object
store, so the user's index, working tree and ``.git`` are not touched.

The bundle mounts ``<state_dir>/git`` and git-gate serves the mirror; from then on the host never runs
git inside the mirror (its config and hooks are the gate's). :func:`fetch_home` copies the accepted
``claude/<slug>`` branches into the user's repository through a scratch repository of our own whose
only link to the mirror is an object alternate, so nothing from the mirror's config or hooks runs here.
"""

from __future__ import annotations

import json
import os
import re
import tempfile
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from claude_bottle.errors import BottleError
from claude_bottle.identity import is_slug
from claude_bottle.runner import Command
from claude_bottle.sidecars.gitgate.config import (
    CONFIG_FILE,
    DEFAULT_PORT,
    GIT_MOUNT,
    WORKSPACE_REPO,
    GateConfig,
    RemoteConfig,
    default_push_patterns,
    remote_kind,
)

if TYPE_CHECKING:
    from claude_bottle.backends.base import BottleSpec
    from claude_bottle.config import Settings
    from claude_bottle.manifest.model import BottleDef
    from claude_bottle.runner import Runner

__all__ = [
    "GATE_HOST",
    "GIT_MOUNT",
    "FetchResult",
    "FetchedBranch",
    "GitWorkspace",
    "agent_clone_commands",
    "credentials_command",
    "fetch_home",
    "fetch_slug",
    "find_repo",
    "gate_config",
    "gate_credentials",
    "gate_url",
    "load_workspace",
    "prepare_workspace",
    "start_branch",
    "unfetched_branches",
    "wip_branch_of",
    "write_gate_config",
]

GATE_HOST = "git-gate"
_SHA = re.compile(r"^[0-9a-f]{40}$")
_WORKSPACE_JSON = "workspace.json"
_BASELINE_JSON = "baseline.json"
# Every host-side git call: no system config, no prompts, no automatic gc in someone's repository.
_GIT_ENV = {"GIT_CONFIG_NOSYSTEM": "1", "GIT_TERMINAL_PROMPT": "0"}
_IDENT = {"GIT_AUTHOR_NAME": "claude-bottle", "GIT_AUTHOR_EMAIL": "claude-bottle@localhost",
          "GIT_COMMITTER_NAME": "claude-bottle", "GIT_COMMITTER_EMAIL": "claude-bottle@localhost"}
_SAFE = ("-c", "gc.auto=0", "-c", "core.hooksPath=/dev/null", "-c", "maintenance.auto=false")


@dataclass(frozen=True)
class GitWorkspace:
    """What ``prepare_workspace`` made; also saved as ``<state_dir>/git/workspace.json`` for ``fetch``."""

    repo: str              # the user's repository (top level of its working tree)
    mirror: str            # <state_dir>/git/mirror.git
    branch: str            # claude/<slug>
    base: str              # the commit the branch starts at
    head: str | None       # the user's HEAD commit (None: no commit yet)
    uncommitted: bool      # base is a commit of the user's uncommitted changes on top of head


def _git(runner: Runner, *args: str, cwd: Path | None = None, env: Mapping[str, str] | None = None,
         check: bool = True, input: bytes | None = None) -> str:
    cmd = Command(("git", *_SAFE, *args), env={**_GIT_ENV, **(env or {})}, cwd=cwd, check=check, input=input)
    result = runner.run(cmd)
    return result.stdout.strip() if result.ok else ""


def _ok(runner: Runner, *args: str, cwd: Path | None = None) -> bool:
    return runner.run(Command(("git", *_SAFE, *args), env=_GIT_ENV, cwd=cwd, check=False)).ok


def find_repo(runner: Runner, cwd: Path) -> Path | None:
    """The top level of the working tree containing ``cwd``, or None outside git (or in a bare repo)."""
    res = runner.run(Command(("git", "rev-parse", "--show-toplevel"), env=_GIT_ENV, cwd=cwd, check=False))
    if not res.ok or not res.stdout.strip():
        if "dubious ownership" in res.stderr:
            raise BottleError(f"git refuses the repository at {cwd} (dubious ownership)",
                              hint="run `git config --global --add safe.directory <path>` or use another dir")
        return None
    return Path(res.stdout.strip())


def _uncommitted_commit(runner: Runner, repo: Path, mirror: Path, head: str | None, slug: str) -> str | None:
    """A commit of the working tree (untracked included, ignored excluded) on ``head``, or None if clean.

    A temporary index keeps the user's index untouched; ``GIT_OBJECT_DIRECTORY`` makes the mirror (which
    already holds HEAD) the only object store git sees, so every blob the commit needs is written there
    and nothing is written to the user's ``.git``."""
    with tempfile.TemporaryDirectory(prefix="claude-bottle-index-") as tmp:
        env = {"GIT_INDEX_FILE": str(Path(tmp) / "index"), "GIT_OBJECT_DIRECTORY": str(mirror / "objects")}
        _git(runner, "read-tree", head or "--empty", cwd=repo, env=env)
        _git(runner, "add", "--all", "--", ".", cwd=repo, env=env)
        tree = _git(runner, "write-tree", cwd=repo, env=env)
        if head is not None and tree == _git(runner, "rev-parse", f"{head}^{{tree}}", cwd=repo, env=env):
            return None
        if head is None and tree == _git(runner, "mktree", cwd=repo, env=env, input=b""):
            return None
        ident = {} if _ok(runner, "var", "GIT_AUTHOR_IDENT", cwd=repo) else _IDENT
        parents = ("-p", head) if head else ()
        message = f"Uncommitted changes carried into bottle {slug}"
        return _git(runner, "commit-tree", tree, *parents, "-m", message, cwd=repo, env={**env, **ident})


def prepare_workspace(*, runner: Runner, spec: BottleSpec, state_dir: Path) -> GitWorkspace | None:
    """Build the bottle's mirror if ``spec.cwd`` is in a git repository; None otherwise.

    Called by the backend's ``launch`` after the core created ``state_dir``; everything it makes is
    under ``state_dir/git`` (removed with the state dir)."""
    if not spec.workspace:
        return None
    repo = find_repo(runner, spec.cwd)
    if repo is None:
        return None
    git_dir = state_dir / "git"
    mirror = git_dir / "mirror.git"
    branch = f"claude/{spec.slug}"
    git_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    _git(runner, "init", "--bare", "--quiet", "--template=", str(mirror))
    head = _git(runner, "rev-parse", "--verify", "--quiet", "HEAD^{commit}", cwd=repo, check=False) or None
    # A local fetch runs upload-pack in the user's repository (theirs, trusted) and copies objects:
    # no hard links, no alternates, so nothing in the bundle can reach the user's object store.
    refspecs = ["+refs/heads/*:refs/heads/*", "+refs/tags/*:refs/tags/*"]
    if head:
        refspecs.append(f"+{head}:refs/claude-bottle/head")
    _git(runner, f"--git-dir={mirror}", "fetch", "--quiet", "--no-tags", "--no-write-fetch-head",
         "--no-recurse-submodules", str(repo), *refspecs)
    base = head
    uncommitted = None
    if spec.with_uncommitted:
        uncommitted = _uncommitted_commit(runner, repo, mirror, head, spec.slug)
        base = uncommitted or head
    if base is None:
        empty = _git(runner, f"--git-dir={mirror}", "mktree", input=b"")
        base = _git(runner, f"--git-dir={mirror}", "commit-tree", empty, "-m", f"Start of bottle {spec.slug}",
                    env=_IDENT)
    # The agent clones a start branch outside its own namespace, so `claude/<slug>` and
    # `claude/<slug>/*` are both free for it to push (git cannot hold a branch and branches below it).
    _git(runner, f"--git-dir={mirror}", "update-ref", f"refs/heads/{start_branch(spec.slug)}", base)
    if head:
        _git(runner, f"--git-dir={mirror}", "update-ref", "-d", "refs/claude-bottle/head")
    _git(runner, f"--git-dir={mirror}", "symbolic-ref", "HEAD", f"refs/heads/{start_branch(spec.slug)}")
    refs = _git(runner, f"--git-dir={mirror}", "for-each-ref", "--format=%(refname) %(objectname)")
    baseline = dict(line.split(" ", 1) for line in refs.splitlines() if line)
    (git_dir / _BASELINE_JSON).write_text(json.dumps(baseline, indent=2, sort_keys=True) + "\n")
    ws = GitWorkspace(repo=str(repo), mirror=str(mirror), branch=branch, base=base, head=head,
                      uncommitted=uncommitted is not None)
    (git_dir / _WORKSPACE_JSON).write_text(json.dumps(asdict(ws), indent=2) + "\n")
    return ws


def load_workspace(state_dir: Path) -> GitWorkspace | None:
    try:
        return GitWorkspace(**json.loads((state_dir / "git" / _WORKSPACE_JSON).read_text()))
    except (OSError, ValueError, TypeError):
        return None


# -- what the backend hands the bundle and the agent ---------------------------------------------------

def gate_config(*, slug: str, bottle: BottleDef, port: int = DEFAULT_PORT) -> GateConfig:
    """The gate's configuration for this bottle (no secret in it). Raises ``BottleError`` on a remote
    the gate would refuse, so ``up`` fails before anything is created."""
    widened = (p.replace("{slug}", slug) for p in bottle.git.push)
    push = tuple(dict.fromkeys((*default_push_patterns(slug), *widened)))
    remotes: list[RemoteConfig] = []
    for remote in bottle.git.remotes:
        where = f"{bottle.source}: git.remotes[{remote.name}]"
        try:
            kind = remote_kind(remote.url)
        except ValueError as exc:
            raise BottleError(f"{where}: {exc}") from exc
        if kind == "ssh" and not (remote.host_key and len(remote.host_key.split()) >= 2):
            raise BottleError(
                f"{where}: an ssh remote needs host_key, a pinned key line ('ssh-ed25519 AAAA...')",
                hint="get it with `ssh-keyscan HOST` and check it out of band; unpinned is refused")
        if kind == "ssh" and not remote.ssh_key:
            raise BottleError(f"{where}: an ssh remote needs ssh_key (a private key's path on this host)")
        if remote.token_env and kind != "https":
            raise BottleError(f"{where}: a token is only sent over https://")
        host_key = " ".join(remote.host_key.split()[-2:]) if remote.host_key else None
        user = re.match(r"^https://([^@/:]+)@", remote.url)
        remotes.append(RemoteConfig(
            name=remote.name, url=remote.url, kind=kind,
            branches=tuple(b.replace("{slug}", slug) for b in remote.branches),
            host_key=host_key, username=user.group(1) if user else None,
            credential="ssh-key" if remote.ssh_key else ("token" if remote.token_env else None),
        ))
    return GateConfig(slug=slug, push=push, remotes=tuple(remotes), port=port)


def write_gate_config(*, slug: str, bottle: BottleDef, stage_dir: Path, port: int = DEFAULT_PORT) -> Path:
    """Render ``git-gate.json`` into the stage dir (the bundle sees it at /etc/claude-bottle/)."""
    path = stage_dir / CONFIG_FILE
    path.write_text(gate_config(slug=slug, bottle=bottle, port=port).dumps())
    return path


def gate_credentials(*, bottle: BottleDef, environ: Mapping[str, str] | None = None,
                     ) -> dict[str, dict[str, str]]:
    """Each remote's credential, read on the host at ``up``: ``{name: {"kind", "value"}}``. Raises
    ``BottleError`` (one line) for an unreadable key or an unset token variable."""
    env = os.environ if environ is None else environ
    out: dict[str, dict[str, str]] = {}
    for remote in bottle.git.remotes:
        where = f"{bottle.source}: git.remotes[{remote.name}]"
        if remote.ssh_key:
            key = Path(remote.ssh_key).expanduser()
            try:
                out[remote.name] = {"kind": "ssh-key", "value": key.read_text()}
            except OSError as exc:
                raise BottleError(f"{where}: cannot read ssh_key {key}: {exc.strerror}") from exc
        elif remote.token_env:
            value = env.get(remote.token_env)
            if not value:
                raise BottleError(f"{where}: host variable {remote.token_env} is not set",
                                  hint=f"export {remote.token_env}=<token> before `claude-bottle up`")
            out[remote.name] = {"kind": "token", "value": value}
    return out


def credentials_command(*, container: str, bottle: BottleDef, environ: Mapping[str, str] | None = None,
                        ) -> Command | None:
    """``docker exec -i`` handing the remotes' credentials to git-gate through stdin, or None if the
    bottle declares none. Same path as the proxy's credentials (decision 0007): never argv, never an
    environment, never ``docker inspect``, never a disk; the gate stores them on the bundle's tmpfs."""
    creds = gate_credentials(bottle=bottle, environ=environ)
    if not creds:
        return None
    argv = ("docker", "exec", "-i", container, "python3", "-m", "claude_bottle.sidecars.gitgate.creds")
    return Command(argv, input=json.dumps(creds).encode(), timeout=30)


def start_branch(slug: str) -> str:
    """The mirror's branch the agent's clone starts from (the user's HEAD, or the uncommitted commit)."""
    return f"claude-bottle-start/{slug}"


def gate_url(host: str = GATE_HOST, port: int = DEFAULT_PORT) -> str:
    return f"http://{host}:{port}"


def agent_clone_commands(*, slug: str, bottle: BottleDef | None = None, host: str = GATE_HOST,
                         port: int = DEFAULT_PORT, workspace: str = "/workspace") -> list[list[str]]:
    """argv lists to run, in order, as the agent user inside the agent, once the bundle is up.

    They bypass the egress proxy for the gate only, clone the mirror's ``claude/<slug>`` into the
    (empty) ``workspace``, and point every declared remote's URL at the gate with ``insteadOf``."""
    base = gate_url(host, port)
    cmds = [
        ["git", "config", "--global", f"http.{base}/.proxy", ""],
        ["git", "config", "--global", "--add", "safe.directory", workspace],
    ]
    remotes = bottle.git.remotes if bottle is not None else ()
    for remote in remotes:
        rewrite = f"url.{base}/remotes/{remote.name}.git.insteadOf"
        cmds.append(["git", "config", "--global", rewrite, remote.url])
    # The gate starts with the bundle; give it a few seconds rather than racing it.
    cmds.append(["sh", "-c", 'for i in 1 2 3 4 5 6 7 8 9 10; do git clone --quiet "$@" && exit 0; '
                 'sleep 1; done; exit 1', "clone", "--branch", start_branch(slug), f"{base}/{WORKSPACE_REPO}",
                 workspace])
    gate = "origin"
    for remote in remotes:
        if remote.name == "origin":
            # The declared origin takes the name; the mirror stays reachable as `bottle`, and the
            # branch keeps pushing there (both land in the mirror; origin pushes are forwarded).
            cmds.append(["git", "-C", workspace, "remote", "rename", "origin", "bottle"])
            gate = "bottle"
        cmds.append(["git", "-C", workspace, "remote", "add", remote.name, remote.url])
    # The agent works on `claude/<slug>`; a plain `git push` sends it to the same name on the gate.
    branch = f"claude/{slug}"
    cmds += [
        ["git", "-C", workspace, "checkout", "--quiet", "-b", branch],
        ["git", "-C", workspace, "config", f"branch.{branch}.remote", gate],
        ["git", "-C", workspace, "config", f"branch.{branch}.merge", f"refs/heads/{branch}"],
        ["git", "-C", workspace, "config", "push.default", "upstream"],
    ]
    return cmds


def _read_mirror_refs(mirror: Path, branch: str) -> dict[str, str]:
    """``refs/heads/<branch>``, ``refs/heads/<branch>/*`` and the work-in-progress branch
    ``refs/heads/<branch>-wip`` in the mirror, read as plain files.

    No git runs in the mirror; symlinks are not followed and anything not a 40-hex id is ignored."""
    refs: dict[str, str] = {}
    packed = mirror / "packed-refs"
    if packed.is_file() and not packed.is_symlink():
        for line in packed.read_text(errors="replace").splitlines():
            parts = line.split(" ", 1)
            if len(parts) == 2 and _SHA.match(parts[0]):
                refs[parts[1].strip()] = parts[0]
    heads = mirror / "refs" / "heads"
    saved = heads / f"{branch}-saved"
    for path in (heads / branch, *_walk(heads / branch), heads / wip_branch_of(branch), *_walk(saved)):
        if path.is_file() and not path.is_symlink():
            sha = path.read_text(errors="replace").strip()
            if _SHA.match(sha):
                refs[f"refs/{path.relative_to(mirror / 'refs').as_posix()}"] = sha
    prefix = f"refs/heads/{branch}"
    wip = f"refs/heads/{wip_branch_of(branch)}"
    return {ref: sha for ref, sha in refs.items()
            if ref in (prefix, wip) or ref.startswith((prefix + "/", prefix + "-saved/"))}


def wip_branch_of(branch: str) -> str:
    """Where uncommitted work is saved when a bottle ends: ``claude/<slug>-wip``."""
    return f"{branch}-wip"


def _walk(root: Path) -> list[Path]:
    out: list[Path] = []
    if root.is_dir() and not root.is_symlink():
        for child in sorted(root.iterdir()):
            out.extend(_walk(child) if child.is_dir() and not child.is_symlink() else [child])
    return out


@dataclass(frozen=True)
class FetchedBranch:
    """One of the bottle's branches as ``fetch`` left it in the user's repository."""

    branch: str
    sha: str
    ok: bool
    detail: str = ""                # why it was refused, and the fix (one line)
    previous: str | None = None     # what the user's repository had under that name before (None: new)
    commits: int | None = None      # commits it brought: since ``previous``, or since the user's HEAD


@dataclass(frozen=True)
class FetchResult:
    repo: str                       # the user's repository (where the branches were written)
    branches: tuple[FetchedBranch, ...]


def _rev(runner: Runner, repo: Path, ref: str) -> str | None:
    found = _git(runner, "rev-parse", "--verify", "--quiet", f"{ref}^{{commit}}", cwd=repo, check=False)
    return found or None


def _count(runner: Runner, repo: Path, sha: str, since: str | None) -> int | None:
    """Commits reachable from ``sha`` and not from ``since`` (all of them when ``since`` is None)."""
    spec = (sha, "--not", since) if since else (sha,)
    out = _git(runner, "rev-list", "--count", *spec, "--", cwd=repo, check=False)
    return int(out) if out.isdigit() else None


def _refusal(stderr: str, *, branch: str, slug: str, repo: Path) -> str:
    """git's refusal of one branch as one line with the fix (git's own last line when it is none
    we know)."""
    again = f"then run `claude-bottle fetch {slug}` again"
    if "non-fast-forward" in stderr:
        return (f"your {branch} has commits the bottle's lacks (a non-fast-forward: git will not drop them); "
                f"keep yours under another name (`git -C {repo} branch -m {branch} {branch}-mine`), {again}")
    checked_out = re.search(r"checked out at '([^']*)'", stderr)
    if checked_out:
        where = checked_out.group(1)
        return (f"{branch} is checked out in {where} and git will not move it under a working tree; switch "
                f"that tree to another branch (e.g. `git -C {where} switch -`), {again}")
    if ".lock" in stderr and "exists" in stderr.lower():
        return f"another git command holds a lock in {repo}; when it has finished, {again}"
    lines = [ln.strip() for ln in stderr.splitlines() if ln.strip()]
    why = [ln for ln in lines if "rejected" in ln or "refusing" in ln or ln.startswith(("fatal", "error"))]
    return (why or lines or ["git fetch failed"])[-1]


def fetch_home(*, runner: Runner, state_dir: Path) -> FetchResult:
    """Copy the mirror's ``claude/<slug>`` branches into the user's repository (refs and objects only).

    A branch is only ever moved forward: git's refusals (a branch the user moved or checked out) come
    back per branch as ``FetchedBranch.detail``, one line with the fix."""
    slug = state_dir.name
    ws = load_workspace(state_dir)
    if ws is None:
        raise BottleError(
            f"bottle {slug} has no git workspace",
            hint=f"without git, copy files out with `claude-bottle cp {slug}:PATH DEST`")
    repo, mirror = Path(ws.repo), state_dir / "git" / "mirror.git"
    # is_dir first: git run in a directory that is gone fails as if git itself were missing.
    if not repo.is_dir() or (not (repo / ".git").exists() and find_repo(runner, repo) is None):
        raise BottleError(
            f"the repository {repo} the bottle started from is gone",
            hint=f"put it back there (or `git init {repo}`), then run `claude-bottle fetch {slug}` again; "
                 f"the work is kept in {mirror}")
    refs = _read_mirror_refs(mirror, ws.branch)
    head = _rev(runner, repo, "HEAD")
    results: list[FetchedBranch] = []
    with tempfile.TemporaryDirectory(prefix="claude-bottle-fetch-") as tmp:
        scratch = Path(tmp) / "scratch.git"
        _git(runner, "init", "--bare", "--quiet", "--template=", str(scratch))
        # Our own repository, our own config: the mirror contributes objects only (read, never run).
        (scratch / "objects" / "info" / "alternates").write_text(f"{mirror / 'objects'}\n")
        for ref, sha in sorted(refs.items()):
            branch = ref.removeprefix("refs/heads/")
            if not _ok(runner, "check-ref-format", "--branch", branch):
                results.append(FetchedBranch(branch, sha, False, "not a valid branch name; not fetched"))
                continue
            if not _ok(runner, f"--git-dir={scratch}", "update-ref", ref, sha):
                results.append(FetchedBranch(
                    branch, sha, False, f"the bottle's mirror lacks commit {sha[:12]}; it cannot be fetched"))
                continue
            previous = _rev(runner, repo, ref)
            if previous == sha:  # git refuses even a no-op fetch into a checked-out branch
                results.append(FetchedBranch(branch, sha, True, previous=previous, commits=0))
                continue
            # LC_ALL=C: the refusals are read from git's messages, which are translated otherwise.
            res = runner.run(Command(
                ("git", *_SAFE, "-c", "transfer.fsckObjects=true", "fetch", "--no-tags",
                 "--no-write-fetch-head", "--no-recurse-submodules", str(scratch), f"{ref}:{ref}"),
                env={**_GIT_ENV, "LC_ALL": "C"}, cwd=repo, check=False))
            if not res.ok:
                detail = _refusal(res.stderr, branch=branch, slug=slug, repo=repo)
                results.append(FetchedBranch(branch, sha, False, detail, previous=previous))
                continue
            commits = _count(runner, repo, sha, previous or head)
            results.append(FetchedBranch(branch, sha, True, previous=previous, commits=commits))
    return FetchResult(str(repo), tuple(results))


def fetch_slug(slug: str, *, settings: Settings, runner: Runner) -> FetchResult:
    """``claude-bottle fetch SLUG``: :func:`fetch_home` on the bottle's state dir, with the checks."""
    if not is_slug(slug):
        raise BottleError(f"{slug!r} is not a bottle slug", hint="see claude-bottle list")
    state_dir = settings.state_root / slug
    if not state_dir.is_dir():
        raise BottleError(f"bottle {slug} has no state dir (removed by down or cleanup)",
                          hint="nothing left to fetch; next time fetch before down")
    return fetch_home(runner=runner, state_dir=state_dir)


def unfetched_branches(*, runner: Runner, state_dir: Path) -> list[str]:
    """The bottle's branches holding commits the user's repository does not have under that branch
    name yet (``down`` keeps the state dir for ``fetch`` while this is not empty)."""
    ws = load_workspace(state_dir)
    if ws is None or not Path(ws.repo).is_dir():
        return []
    baseline_path = state_dir / "git" / _BASELINE_JSON
    try:
        baseline = json.loads(baseline_path.read_text())
    except (OSError, ValueError):
        baseline = {}
    out = []
    for ref, sha in sorted(_read_mirror_refs(state_dir / "git" / "mirror.git", ws.branch).items()):
        if baseline.get(ref) == sha:
            continue  # the agent never pushed to it
        if not _ok(runner, "merge-base", "--is-ancestor", sha, ref, cwd=Path(ws.repo)):
            out.append(ref.removeprefix("refs/heads/"))
    return out
