"""What Claude Code needs to start, work and end in a bottle, kept in one place with the version it was
measured on. Engine-neutral: both backends put :func:`home_files` into the agent's home at ``up``.

**Hosts** (measured by running Claude Code |version| in a bottle against stand-ins for every candidate
host, with an API key and with ``CLAUDE_CODE_OAUTH_TOKEN``; ``tests/integration/test_claude_code.py``
repeats the measurement and fails when a newer Claude Code needs a host this list lacks):

* ``api.anthropic.com``: the model API, remote settings and policy limits (both credentials).
* ``platform.claude.com``: a reachability check at start (``/v1/oauth/hello``); without it the TUI
  stops with "Unable to connect to Anthropic services".

Contacted but optional, and refused without breaking a session: ``downloads.claude.ai`` (the native
updater) and ``github.com`` (the plugin marketplace). Telemetry and error reports are switched off by
:data:`QUIET_ENV` instead of being allowed.

**First run.** A fresh bottle is a fresh home, so every session would meet the onboarding: theme,
"Detected a custom API key" (default *No*), login, and a folder-trust dialog where Enter exits.
``~/.claude.json`` is seeded so the session opens at the prompt: onboarding done, the placeholder key
approved (Claude Code remembers a key by its last 20 characters; the agent only ever holds the
placeholder), ``/workspace`` trusted.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING

from claude_bottle.errors import BottleError
from claude_bottle.runner import Command

if TYPE_CHECKING:
    from claude_bottle.runner import Runner

__all__ = [
    "CLAUDE_CODE_VERSION",
    "OPTIONAL_HOSTS",
    "QUIET_ENV",
    "REQUIRED_HOSTS",
    "carried_config",
    "claude_json",
    "find_skills",
    "git_identity",
    "home_files",
    "session_notes",
    "skill_search",
]

CLAUDE_CODE_VERSION = "2.1.332"
REQUIRED_HOSTS = ("api.anthropic.com", "platform.claude.com")
OPTIONAL_HOSTS = ("downloads.claude.ai", "github.com")
QUIET_ENV = {
    # Telemetry, error reporting, feedback and release notes: traffic to hosts a bottle does not allow.
    "CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC": "1",
    "DISABLE_AUTOUPDATER": "1",
    "DISABLE_TELEMETRY": "1",
    "DISABLE_ERROR_REPORTING": "1",
}
WORKSPACE = "/workspace"
_KEY_SUFFIX = 20  # how Claude Code remembers an approved API key


def claude_json(*, placeholders: Mapping[str, str], workspace: str = WORKSPACE) -> dict[str, object]:
    """``~/.claude.json`` for a session that opens at the prompt (see the module docstring)."""
    key = placeholders.get("ANTHROPIC_API_KEY", "")
    return {
        "hasCompletedOnboarding": True,
        "lastOnboardingVersion": CLAUDE_CODE_VERSION,
        "theme": "dark",
        "autoUpdates": False,
        "customApiKeyResponses": {"approved": [key[-_KEY_SUFFIX:]] if key else [], "rejected": []},
        "projects": {workspace: {"hasTrustDialogAccepted": True, "hasCompletedProjectOnboarding": True,
                                 "allowedTools": []}},
    }


def session_notes(*, slug: str, git: bool) -> str:
    """What the agent is told about its bottle in ``~/.claude/CLAUDE.md``: how its work leaves."""
    lines = [
        "# This session runs in a claude-bottle",
        "",
        f"You are in bottle `{slug}`: a sandbox whose network reaches only the hosts its bottle allows",
        "(through an egress proxy; a refusal is an HTTP 403 that says which rule refused and why).",
    ]
    if git:
        lines += [
            "",
            "`/workspace` is a git clone. Your work leaves only as commits pushed to the branch",
            f"`claude/{slug}` or to branches under `claude/{slug}/` (for example `claude/{slug}/fix-tests`):",
            "",
            "    git add -A && git commit -m '...' && git push",
            "",
            "The user brings those branches home with `claude-bottle fetch`. Commit and push before you",
            "finish: work that was never pushed is not brought home.",
        ]
    else:
        lines += ["", "`/workspace` is a copy of the user's folder; the user copies results out with "
                      f"`claude-bottle cp {slug}:/workspace/PATH DEST`."]
    return "\n".join(lines) + "\n"


def find_skills(names: tuple[str, ...], search: tuple[Path, ...]) -> dict[str, Path]:
    """The folder of each named skill (a directory holding ``SKILL.md``), first match in ``search``.
    An unknown name is one :class:`BottleError` naming where it was looked for."""
    found: dict[str, Path] = {}
    for name in names:
        for base in search:
            folder = base / name
            if (folder / "SKILL.md").is_file() and not folder.is_symlink():
                found[name] = folder
                break
        else:
            where = ", ".join(str(p) for p in search)
            raise BottleError(f"skill {name!r} not found (looked in {where})",
                              hint=f"create {search[0] / name}/SKILL.md or remove it from skills:")
    return found


def skill_search(*, bottle_home: Path, cwd: Path, user_home: Path | None = None) -> tuple[Path, ...]:
    """Where named skills are looked for, in order: claude-bottle's own folder, the user's Claude Code
    skills, then the project's."""
    home = user_home if user_home is not None else Path.home()
    return (bottle_home / "skills", home / ".claude" / "skills", cwd / ".claude" / "skills")


def git_identity(runner: Runner, *, cwd: Path, slug: str) -> tuple[str, str]:
    """The identity the agent's commits carry: the host's git ``user.name``/``user.email`` as seen in
    ``cwd`` (repository config first), else one naming the bottle. A bottle's ``GIT_AUTHOR_*`` and
    ``GIT_COMMITTER_*`` env entries still win inside the agent, as they do for git anywhere."""
    def get(key: str) -> str:
        try:
            result = runner.run(Command(("git", "config", "--get", key), cwd=cwd, check=False, timeout=10))
        except (BottleError, OSError):
            return ""
        return result.stdout.strip() if result.ok else ""

    return (get("user.name") or f"Claude ({slug})",
            get("user.email") or f"claude@{slug}.claude-bottle.invalid")


# Settings keys that hold, fetch or name credentials, or route the session elsewhere: never carried.
_SETTINGS_DROPPED = frozenset({
    "env", "apiKeyHelper", "awsAuthRefresh", "awsCredentialExport", "otelHeadersHelper",
    "forceLoginMethod", "forceLoginOrgUUID", "primaryApiKey",
})


def carried_config(parts: tuple[str, ...], *, user_home: Path | None = None) -> dict[str, bytes]:
    """The parts of the user's own Claude Code config an agent asks for (``claude_config:``): their
    ``~/.claude/settings.json`` without any key that holds or fetches a credential, and the markdown
    of ``~/.claude/commands`` and ``~/.claude/agents``. Never ``.credentials.json`` or anything else
    under ``~/.claude``. Missing parts are skipped."""
    base = (user_home if user_home is not None else Path.home()) / ".claude"
    files: dict[str, bytes] = {}
    settings_file = base / "settings.json"
    if "settings" in parts and settings_file.is_file() and not settings_file.is_symlink():
        try:
            settings = json.loads((base / "settings.json").read_text())
        except (OSError, ValueError) as exc:
            raise BottleError(f"cannot carry {base / 'settings.json'} into the bottle: {exc}",
                              hint="fix the file, or drop settings from claude_config:") from exc
        if isinstance(settings, dict):
            kept = {k: v for k, v in settings.items() if k not in _SETTINGS_DROPPED}
            files[".claude/settings.json"] = (json.dumps(kept, indent=2) + "\n").encode()
    for part in ("commands", "agents"):
        folder = base / part
        if part not in parts or not folder.is_dir() or folder.is_symlink():
            continue
        for path in sorted(folder.rglob("*.md")):
            if path.is_file() and not path.is_symlink() and path.stat().st_size <= 1024 * 1024:
                files[f".claude/{part}/{path.relative_to(folder).as_posix()}"] = path.read_bytes()
    return files


def _skill_files(name: str, folder: Path, limit: int = 8 * 1024 * 1024) -> dict[str, bytes]:
    out: dict[str, bytes] = {}
    total = 0
    for path in sorted(folder.rglob("*")):
        if path.is_symlink() or not path.is_file():
            continue  # a link could reach anything on the host; skills are plain files
        data = path.read_bytes()
        total += len(data)
        if total > limit:
            raise BottleError(f"skill {name!r} is larger than {limit // (1024 * 1024)} MiB",
                              hint=f"trim {folder}")
        out[f".claude/skills/{name}/{path.relative_to(folder).as_posix()}"] = data
    return out


def home_files(*, slug: str, prompt: str, placeholders: Mapping[str, str], git: bool,
               git_identity: tuple[str, str] | None = None,
               skills: Mapping[str, Path] | None = None,
               claude_config: tuple[str, ...] = ()) -> dict[str, bytes]:
    """Files for the agent user's home (paths relative to it): the user's carried config first (see
    :func:`carried_config`), then Claude Code's seeded config, the session notes and the agent's prompt
    as ``~/.claude/CLAUDE.md``, git identity, and the named skills (ours win over carried ones)."""
    notes = session_notes(slug=slug, git=git)
    body = f"{prompt.rstrip()}\n\n{notes}" if prompt.strip() else notes
    files = {
        **carried_config(claude_config),
        ".claude.json": (json.dumps(claude_json(placeholders=placeholders), indent=2) + "\n").encode(),
        ".claude/CLAUDE.md": body.encode(),
    }
    if git_identity is not None:
        name, email = git_identity
        files[".gitconfig"] = f"[user]\n\tname = {_git_value(name)}\n\temail = {_git_value(email)}\n".encode()
    for name, folder in (skills or {}).items():
        files.update(_skill_files(name, folder))
    return files


def _git_value(value: str) -> str:
    """A git config value on one line, quoted so ``#``, ``;`` and backslashes stay literal."""
    clean = "".join(ch for ch in value if ch.isprintable())
    return '"' + clean.replace("\\", "\\\\").replace('"', '\\"') + '"'
