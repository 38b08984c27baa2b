"""What of the user's folder reaches the agent's ``/workspace``, decided once for every backend.

A folder outside git is copied, less the files that hold secrets: those named like credentials
(:func:`name_reason`: ``.env``, SSH private keys, ``.aws/credentials``, terraform state, ...), those
of a harmless kind whose content is not (a ``.pem`` with a private key, an ``.npmrc`` with a token),
and those whose text detect-secrets flags. ``--include-secret-file PATH`` copies a path anyway. A git
folder is cloned from git-gate instead, so only commits travel: :func:`git_changes` counts what stays
behind until ``--with-uncommitted``.

The content scan is bounded: files over :data:`MAX_FILE_BYTES`, binary files (a NUL byte in the first
8 KiB) and files in dependency and cache folders (:data:`NO_SCAN_DIRS`; their names are still checked)
are not read, and it reads :data:`SCAN_BUDGET_BYTES` at most (past a megabyte, in a few processes).
Files it did not read are copied and counted in the plan. Unlike git-gate, which scans what an agent
pushes and so switches off every filter the pushed content controls, this scan reads the user's own
files: detect-secrets' default filters stay on (lock files, ``pragma: allowlist secret``), trading
evasion the user has no reason to attempt for fewer false alarms.
"""

from __future__ import annotations

import multiprocessing
import os
import re
from collections.abc import Mapping, Sequence
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from claude_bottle.errors import BottleError
from claude_bottle.runner import Command

if TYPE_CHECKING:
    from claude_bottle.backends.base import BottleSpec
    from claude_bottle.runner import Runner

__all__ = [
    "INCLUDE_FLAG",
    "MAX_FILE_BYTES",
    "NO_SCAN_DIRS",
    "SCAN_BUDGET_BYTES",
    "Exclusion",
    "GitChanges",
    "SecretScan",
    "WorkspaceNotes",
    "exclusions_from_data",
    "git_changes",
    "left_out_note",
    "name_reason",
    "scan_workspace",
    "secret_exclusions",
    "uncommitted_note",
    "workspace_notes",
]

INCLUDE_FLAG = "--include-secret-file"
MAX_FILE_BYTES = 1 << 20
SCAN_BUDGET_BYTES = 8 << 20
PARALLEL_FROM_BYTES = 1 << 20
NO_SCAN_DIRS = frozenset({"node_modules", "__pycache__", ".venv", "venv", ".tox", ".nox", ".mypy_cache",
                          ".ruff_cache", ".pytest_cache", ".git"})
_HEAD_BYTES = 8192

_SSH_KEY = "SSH private key"
_ENV_FILE = "environment file"
_NAMES = {  # a file's whole name (lower case) -> why it stays behind
    ".env": _ENV_FILE, ".netrc": "netrc credentials", "_netrc": "netrc credentials",
    ".git-credentials": "git credentials", ".pgpass": "PostgreSQL passwords",
    "id_rsa": _SSH_KEY, "id_dsa": _SSH_KEY, "id_ecdsa": _SSH_KEY, "id_ed25519": _SSH_KEY,
    "id_ecdsa_sk": _SSH_KEY, "id_ed25519_sk": _SSH_KEY,
}
_ENV_TEMPLATES = frozenset({".env.example", ".env.sample", ".env.template"})
_SUFFIXES = (  # a file's name ending (lower case) -> why
    (".key", "private key file"),
    (".p12", "PKCS#12 key store"), (".pfx", "PKCS#12 key store"), (".ppk", "PuTTY private key"),
    (".tfstate", "terraform state"), (".tfstate.backup", "terraform state"),
)
_PATHS = {  # a file's last path parts -> why
    (".aws", "credentials"): "AWS credentials", (".kube", "config"): "kubeconfig",
    (".docker", "config.json"): "docker registry credentials",
}
_DIRS = {(".config", "gcloud"): "gcloud credentials", (".gnupg",): "GnuPG keyring"}
# Files that are harmless unless they carry a key or token (a CA bundle is a .pem too): read to decide.
_CONTENT_RULES = {  # name or ".suffix" -> (pattern, why)
    ".npmrc": (re.compile(rb"(?im)^\s*[^#;\s]*_(authToken|auth|password)\s*="), "npm auth token"),
    ".pypirc": (re.compile(rb"(?im)^\s*password\s*[=:]"), "PyPI password"),
    ".pem": (re.compile(rb"PRIVATE KEY-----"), "private key (PEM)"),
}


@dataclass(frozen=True)
class Exclusion:
    path: str    # relative to the workspace root, with ``/``
    reason: str


@dataclass(frozen=True)
class SecretScan:
    exclusions: tuple[Exclusion, ...] = ()
    included: tuple[str, ...] = ()  # the --include-secret-file paths, relative to the root
    unscanned: int = 0              # files copied without their content read (too large, past the budget)


def name_reason(rel: str, *, is_dir: bool) -> str | None:
    """Why the path ``rel`` (relative, ``/``-separated) holds secrets by its name alone, or None."""
    parts = tuple(rel.lower().split("/"))
    name = parts[-1]
    if is_dir:
        return next((why for tail, why in _DIRS.items() if parts[-len(tail):] == tail), None)
    if name in _NAMES:
        return _NAMES[name]
    if name.startswith(".env.") and name not in _ENV_TEMPLATES:
        return _ENV_FILE
    for suffix, why in _SUFFIXES:
        if name.endswith(suffix):
            return why
    return next((why for tail, why in _PATHS.items() if parts[-len(tail):] == tail), None)


def _content_rule(name: str) -> tuple[re.Pattern[bytes], str] | None:
    name = name.lower()
    return _CONTENT_RULES.get(name) or _CONTENT_RULES.get(Path(name).suffix)


def _content_reason(path: Path, rule: tuple[re.Pattern[bytes], str]) -> str | None:
    pattern, why = rule
    try:
        with path.open("rb") as fh:
            data = fh.read(MAX_FILE_BYTES + 1)
    except OSError:
        return None  # the copy reports it unreadable
    # Past the cap it is not read to the end: too large to tell, so it stays behind.
    return why if len(data) > MAX_FILE_BYTES or pattern.search(data) else None


def _normalize(root: Path, paths: Sequence[str]) -> tuple[str, ...]:
    out = []
    for given in paths:
        full = Path(os.path.normpath(root / given))
        try:
            rel = full.relative_to(root)
        except ValueError:
            raise BottleError(f"{INCLUDE_FLAG} {given}: not inside the workspace {root}") from None
        if not os.path.lexists(full):
            raise BottleError(f"{INCLUDE_FLAG} {given}: no such file in {root}")
        out.append(rel.as_posix())
    return tuple(dict.fromkeys(out))


class _Walk:
    def __init__(self, root: Path, included: tuple[str, ...]) -> None:
        self.root, self.included = root, included
        self.excluded: list[Exclusion] = []
        self.candidates: list[tuple[str, int]] = []  # (rel, size) of regular files to read
        self.unscanned = 0

    def covered(self, rel: str) -> bool:
        return any(w in (".", rel) or rel.startswith(w + "/") for w in self.included)

    def leads_to_include(self, rel: str) -> bool:
        return any(w.startswith(rel + "/") for w in self.included)

    def walk(self, path: Path, rel: str, *, inherited: str | None, scan: bool) -> None:
        try:
            with os.scandir(path) as it:
                entries = sorted(it, key=lambda e: e.name)
        except OSError:
            return  # the copy reports what it cannot read
        for entry in entries:
            child = f"{rel}/{entry.name}" if rel else entry.name
            if self.covered(child):
                continue
            is_dir = entry.is_dir(follow_symlinks=False)
            reason = inherited or name_reason(child, is_dir=is_dir)
            rule = None if reason or is_dir else _content_rule(entry.name)
            if rule is not None and entry.is_file(follow_symlinks=False):
                reason = _content_reason(Path(entry.path), rule)
            if reason and is_dir and self.leads_to_include(child):
                # Open the directory for the file asked for; everything else in it stays behind.
                self.walk(Path(entry.path), child, inherited=reason, scan=False)
            elif reason:
                self.excluded.append(Exclusion(child, reason))
            elif is_dir:
                deps = entry.name in NO_SCAN_DIRS
                self.walk(Path(entry.path), child, inherited=None, scan=scan and not deps)
            elif scan and entry.is_file(follow_symlinks=False):
                self._candidate(entry, child)

    def _candidate(self, entry: os.DirEntry[str], rel: str) -> None:
        try:
            size = entry.stat(follow_symlinks=False).st_size
        except OSError:
            return
        if size > MAX_FILE_BYTES:
            self.unscanned += 1
        elif size:
            self.candidates.append((rel, size))


def _pick(root: Path, candidates: Sequence[tuple[str, int]], *, budget: int) -> tuple[list[str], int, int]:
    """The text files to scan within ``budget`` bytes: (paths, their bytes, files left unread)."""
    chosen: list[str] = []
    used = unread = 0
    for rel, size in candidates:
        try:
            with (root / rel).open("rb") as fh:
                if b"\0" in fh.read(_HEAD_BYTES):
                    continue  # binary: neither read further nor counted
        except OSError:
            continue
        if used + size > budget:
            unread += 1
            continue
        chosen.append(rel)
        used += size
    return chosen, used, unread


def _scan_files(root: str, rels: Sequence[str]) -> list[tuple[str, str]]:
    """detect-secrets on each file, first finding only: (path, why). Runs in worker processes too."""
    # Imported here: the scan is the only user, and the import costs a tenth of a second.
    from detect_secrets.core.scan import scan_file  # noqa: PLC0415
    from detect_secrets.settings import default_settings  # noqa: PLC0415

    found = []
    with default_settings():
        for rel in rels:
            secrets = scan_file(os.path.join(root, rel))  # noqa: PTH118 - detect-secrets takes a str
            try:
                secret = next(secrets, None)
            finally:
                secrets.close()
            if secret is not None:
                found.append((rel, f"{secret.type} on line {secret.line_number}"))
    return found


def _workers() -> int:
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    return max(1, min(cpus, 8))


def _scan_contents(root: Path, rels: list[str], used: int) -> list[tuple[str, str]]:
    # detect-secrets reads about 0.4 MB a second on one core: past a megabyte, spread the files over
    # processes. Spawned, not forked: the parent may hold locks of its progress thread.
    workers = _workers()
    if used <= PARALLEL_FROM_BYTES or workers < 2 or len(rels) < 2:
        return _scan_files(str(root), rels)
    chunks = [rels[i::workers] for i in range(workers)]
    try:
        with ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn")) as pool:
            return [hit for part in pool.map(_scan_files, [str(root)] * workers, chunks) for hit in part]
    except (OSError, BrokenProcessPool):
        return _scan_files(str(root), rels)


def scan_workspace(root: Path, *, include: Sequence[str] = (), budget: int = SCAN_BUDGET_BYTES) -> SecretScan:
    """The paths under ``root`` a copy leaves out because they hold secrets, by name then by content,
    less those ``include`` asks for (paths relative to ``root``, or absolute inside it)."""
    included = _normalize(root, include)
    walk = _Walk(root, included)
    walk.walk(root, "", inherited=None, scan=True)
    rels, used, unread = _pick(root, walk.candidates, budget=budget)
    found = [Exclusion(rel, why) for rel, why in _scan_contents(root, rels, used)]
    exclusions = sorted((*walk.excluded, *found), key=lambda e: e.path)
    return SecretScan(tuple(exclusions), included, walk.unscanned + unread)


def secret_exclusions(root: Path, *, include: Sequence[str] = ()) -> tuple[Exclusion, ...]:
    return scan_workspace(root, include=include).exclusions


def left_out_note(scan: SecretScan, *, shown: int = 3) -> str:
    """The plan's line about what the copy leaves out, and how to copy it anyway."""
    parts = []
    if scan.exclusions:
        n = len(scan.exclusions)
        head = ", ".join(f"{e.path} ({e.reason})" for e in scan.exclusions[:shown])
        more = f", +{n - shown} more" if n > shown else ""
        noun = "path" if n == 1 else "paths"
        parts.append(f"{n} {noun} that may hold secrets: {head}{more}; copy one anyway with "
                     f"{INCLUDE_FLAG} PATH")
    if scan.included:
        parts.append(f"copied as asked: {', '.join(scan.included)}")
    if scan.unscanned:
        parts.append(f"{scan.unscanned} file(s) copied without a content scan (over "
                     f"{MAX_FILE_BYTES >> 20} MiB, or past the {SCAN_BUDGET_BYTES >> 20} MiB scan budget)")
    return "\n".join(parts)


@dataclass(frozen=True)
class GitChanges:
    changed: int    # tracked files with changes (staged or not)
    untracked: int  # untracked entries git does not ignore (a new folder counts once)


def git_changes(runner: Runner, repo: Path) -> GitChanges | None:
    """What ``git status`` sees in ``repo``'s working tree, without taking its index lock; None if git
    cannot say."""
    cmd = Command(("git", "--no-optional-locks", "status", "--porcelain", "-z"),
                  env={"GIT_CONFIG_NOSYSTEM": "1", "GIT_TERMINAL_PROMPT": "0"}, cwd=repo, check=False,
                  timeout=60)
    result = runner.run(cmd)
    if not result.ok:
        return None
    changed = untracked = 0
    tokens = iter(result.stdout.split("\0"))
    for token in tokens:
        if len(token) < 4:
            continue
        if token.startswith("??"):
            untracked += 1
        else:
            changed += 1
            if "R" in token[:2] or "C" in token[:2]:
                next(tokens, None)  # a rename's or copy's source path follows
    return GitChanges(changed, untracked)


def uncommitted_note(changes: GitChanges) -> str:
    """The plan's line about work a git clone leaves behind ("" when there is none)."""
    what = []
    if changes.changed:
        what.append(f"{changes.changed} uncommitted change{'' if changes.changed == 1 else 's'}")
    if changes.untracked:
        what.append(f"{changes.untracked} untracked file{'' if changes.untracked == 1 else 's'}")
    if not what:
        return ""
    return f"{' and '.join(what)} (only commits are cloned); carry them with --with-uncommitted"


@dataclass(frozen=True)
class WorkspaceNotes:
    rows: tuple[tuple[str, str], ...] = ()        # for the plan's details, after its workspace row
    exclude: Mapping[str, str] = field(default_factory=dict)  # path -> reason, for the copy to leave out


def workspace_notes(*, runner: Runner, spec: BottleSpec, repo: Path | None) -> WorkspaceNotes:
    """What the plan says about the workspace beside where it comes from, and what the copy leaves out.

    Both backends call it from ``prepare``: ``repo`` is the repository they found (None: a copy)."""
    if not spec.workspace:
        return WorkspaceNotes()
    if repo is not None:
        rows = []
        changes = None if spec.with_uncommitted else git_changes(runner, repo)
        note = uncommitted_note(changes) if changes is not None else ""
        if note:
            rows.append(("not cloned", note))
        if spec.include_secret_files:
            rows.append((INCLUDE_FLAG, "no effect: a git workspace is cloned from commits, not copied"))
        return WorkspaceNotes(rows=tuple(rows))
    scan = scan_workspace(spec.cwd, include=spec.include_secret_files)
    note = left_out_note(scan)
    return WorkspaceNotes(rows=(("not copied", note),) if note else (),
                          exclude={e.path: e.reason for e in scan.exclusions})


def exclusions_from_data(value: object) -> dict[str, str]:
    """``WorkspaceNotes.exclude`` back from a plan's JSON-able data."""
    if not isinstance(value, Mapping):
        return {}
    return {str(k): str(v) for k, v in value.items()}
