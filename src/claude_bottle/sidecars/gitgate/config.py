"""git-gate's configuration: one JSON file the host renders into the stage dir and the gate reads.

Shared by the host (``claude_bottle.gitwork`` renders it on Python 3.11) and the bundle (the gate reads
it on 3.13), so this module is stdlib-only and imports nothing else from claude_bottle. It never holds a
secret: remote credentials reach the gate later, through stdin into a tmpfs (``creds.py``).
"""

from __future__ import annotations

import fnmatch
import json
import re
from dataclasses import asdict, dataclass, field
from pathlib import Path

__all__ = [
    "CONFIG_FILE",
    "DEFAULT_PORT",
    "GateConfig",
    "RemoteConfig",
    "branch_matches",
    "default_push_patterns",
    "remote_kind",
]

CONFIG_FILE = "git-gate.json"   # in the stage dir, i.e. /etc/claude-bottle/git-gate.json in the bundle
DEFAULT_PORT = 8418
GIT_MOUNT = "/var/lib/claude-bottle/git"   # where <state_dir>/git is mounted (read-write) in the bundle
WORKSPACE_REPO = "workspace.git"           # the URL path the agent clones: http://git-gate:8418/workspace.git

SECRETS_DIR = "/dev/shm/claude-bottle/git"  # noqa: S108 - a tmpfs on purpose: credentials never hit a disk
_SCP_RE = re.compile(r"^(?:[A-Za-z0-9._-]+@)?[A-Za-z0-9._-]+:(?!//)")


def remote_kind(url: str) -> str:
    """``ssh``, ``https``, ``http`` or ``file``; anything else raises ``ValueError``."""
    lower = url.lower()
    if lower.startswith(("ssh://", "git+ssh://")) or _SCP_RE.match(url):
        return "ssh"
    for kind in ("https", "http", "file"):
        if lower.startswith(f"{kind}://"):
            return kind
    raise ValueError(f"unsupported git remote URL {url!r} (use ssh://, user@host:path or https://)")


def default_push_patterns(slug: str) -> tuple[str, ...]:
    # The agent's branch, branches below it, and what is saved when it ends: the work in progress, and
    # branches that diverged from the gate's (claude_bottle.worksave).
    return (f"claude/{slug}", f"claude/{slug}/*", f"claude/{slug}-wip", f"claude/{slug}-saved/*")


def branch_matches(ref: str, patterns: tuple[str, ...] | list[str]) -> bool:
    """Does full ref name ``ref`` match one of the branch ``patterns``?

    Patterns are branch names (``claude/x``, ``feature/*``) matched against ``refs/heads/``; a pattern
    starting with ``refs/`` is matched against the full name (``refs/tags/v*`` allows tags). ``*``
    matches any run of characters including ``/``.
    """
    for pattern in patterns:
        full = pattern if pattern.startswith("refs/") else f"refs/heads/{pattern}"
        if fnmatch.fnmatchcase(ref, full):
            return True
    return False


@dataclass(frozen=True)
class RemoteConfig:
    name: str
    url: str
    kind: str                       # ssh | https | http | file
    branches: tuple[str, ...]       # branch patterns forwarded there
    host_key: str | None = None     # pinned key: "<type> <base64>" (ssh only)
    username: str | None = None     # HTTPS basic-auth user sent with the token
    credential: str | None = None   # "ssh-key" or "token": what the host delivers for it, if anything


@dataclass(frozen=True)
class GateConfig:
    slug: str
    push: tuple[str, ...]                       # branch patterns the agent may push
    remotes: tuple[RemoteConfig, ...] = ()
    mirror: str = f"{GIT_MOUNT}/mirror.git"
    baseline: str = f"{GIT_MOUNT}/baseline.json"
    work_dir: str = "/var/lib/claude-bottle/git-gate"   # remote fetch caches (bundle-local)
    log: str = "/var/log/claude-bottle/git-gate.log"
    secrets_dir: str = SECRETS_DIR
    listen: str = "0.0.0.0"  # noqa: S104 - the bundle's networks are the bottle's own
    port: int = DEFAULT_PORT
    scan: bool = True
    extra: dict[str, str] = field(default_factory=dict)

    def remote(self, name: str) -> RemoteConfig | None:
        return next((r for r in self.remotes if r.name == name), None)

    def dumps(self) -> str:
        return json.dumps(asdict(self), indent=2, sort_keys=True) + "\n"

    @classmethod
    def loads(cls, text: str) -> GateConfig:
        data = json.loads(text)
        data["push"] = tuple(data["push"])
        data["remotes"] = tuple(
            RemoteConfig(**{**r, "branches": tuple(r.get("branches", ()))}) for r in data.get("remotes", ())
        )
        return cls(**data)

    @classmethod
    def load(cls, path: str | Path) -> GateConfig:
        return cls.loads(Path(path).read_text())
