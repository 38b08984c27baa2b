"""Talking to a bottle's declared git remotes with credentials only the gate holds.

The host passes each remote's credential (an HTTPS token or an SSH private key) to the bundle as an
environment variable. At start the gate moves it into a private 0700 directory on a tmpfs
(``/dev/shm``: never on a disk, never in the agent's container) and drops it from its environment, so
no child process inherits it. git then reads it from there:

* SSH: ``ssh -i <key>`` with ``StrictHostKeyChecking=yes`` against a known_hosts file holding only the
  pinned key. An SSH remote without a pinned host key is refused (fail closed).
* HTTPS: a credential helper (given through ``GIT_CONFIG_*`` variables, so nothing on a command line)
  that prints the token file. Plain ``http://`` never gets a token.
"""

from __future__ import annotations

import os
import subprocess
import tempfile
from collections.abc import Mapping, MutableMapping
from pathlib import Path

from claude_bottle.sidecars.gitgate.config import RemoteConfig

__all__ = ["RemoteError", "fetch_into", "git_env", "push_to", "stash_secrets"]

SECRETS_ENV = "CLAUDE_BOTTLE_GITGATE_SECRETS"
_HELPER = (
    '!f() { test "$1" = get || exit 0; printf "username=%s\\n" "$GITGATE_USER"; '
    'printf "password=%s\\n" "$(cat "$GITGATE_TOKEN_FILE")"; }; f'
)


class RemoteError(Exception):
    """A remote could not be reached or refused; ``str()`` is one line for the agent."""


def stash_secrets(remotes: tuple[RemoteConfig, ...], environ: MutableMapping[str, str]) -> Path:
    """Move each remote's credential from ``environ`` into a fresh private dir; return the dir."""
    base = "/dev/shm" if Path("/dev/shm").is_dir() else None  # noqa: S108 - tmpfs on purpose
    secrets_dir = Path(tempfile.mkdtemp(prefix="git-gate-", dir=base))
    secrets_dir.chmod(0o700)
    for remote in remotes:
        value = environ.pop(remote.secret_env, None) if remote.secret_env else None
        if value is None:
            continue
        if remote.kind == "ssh":
            _write_private(secrets_dir / f"{remote.name}.key", value.rstrip("\n") + "\n")
        else:
            _write_private(secrets_dir / f"{remote.name}.token", value.strip())
    for remote in remotes:
        if remote.kind == "ssh" and remote.host_key:
            _write_private(secrets_dir / f"{remote.name}.known_hosts", f"* {remote.host_key.strip()}\n")
    return secrets_dir


def _write_private(path: Path, text: str) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(text)


def git_env(remote: RemoteConfig, secrets_dir: Path, base: Mapping[str, str]) -> dict[str, str]:
    """The environment for a git process that talks to ``remote``. Raises ``RemoteError`` if unusable."""
    env = {k: v for k, v in base.items() if not k.startswith("GIT_CONFIG")}
    env.update(GIT_TERMINAL_PROMPT="0", GIT_CONFIG_NOSYSTEM="1", GIT_ASKPASS="/bin/false",
               SSH_ASKPASS="/bin/false")
    if remote.kind == "ssh":
        known = secrets_dir / f"{remote.name}.known_hosts"
        if not remote.host_key or not known.is_file():
            raise RemoteError(f"remote {remote.name} is ssh without a pinned host_key; refusing to connect")
        key = secrets_dir / f"{remote.name}.key"
        if not key.is_file():
            raise RemoteError(f"remote {remote.name} has no ssh key in the gate")
        env["GIT_SSH_COMMAND"] = (
            f"ssh -F /dev/null -i {key} -o IdentitiesOnly=yes -o IdentityAgent=none -o BatchMode=yes "
            f"-o StrictHostKeyChecking=yes -o UserKnownHostsFile={known} -o GlobalKnownHostsFile=/dev/null"
        )
        env["GIT_SSH_VARIANT"] = "ssh"
        return env
    token = secrets_dir / f"{remote.name}.token"
    pairs = [("credential.helper", "")]
    if remote.kind == "https" and token.is_file():
        pairs.append(("credential.helper", _HELPER))
        env["GITGATE_TOKEN_FILE"] = str(token)
        env["GITGATE_USER"] = remote.username or "x-access-token"
    env["GIT_CONFIG_COUNT"] = str(len(pairs))
    for i, (key_name, value) in enumerate(pairs):
        env[f"GIT_CONFIG_KEY_{i}"] = key_name
        env[f"GIT_CONFIG_VALUE_{i}"] = value
    return env


def _run(argv: list[str], env: Mapping[str, str], what: str, timeout: float = 300) -> str:
    try:
        proc = subprocess.run(argv, env=dict(env), capture_output=True, timeout=timeout, check=False)
    except subprocess.TimeoutExpired as exc:
        raise RemoteError(f"{what}: timed out after {timeout:.0f}s") from exc
    if proc.returncode != 0:
        lines = [ln for ln in proc.stderr.decode(errors="replace").splitlines() if ln.strip()]
        raise RemoteError(f"{what}: {lines[-1].strip() if lines else f'exit status {proc.returncode}'}")
    return proc.stdout.decode(errors="replace")


def fetch_into(cache: Path, remote: RemoteConfig, secrets_dir: Path) -> None:
    """Refresh the bare ``cache`` repository from ``remote`` (branches and tags, pruned)."""
    env = git_env(remote, secrets_dir, os.environ)
    _run(["git", f"--git-dir={cache}", "fetch", "--prune", "--quiet", "--no-write-fetch-head", remote.url,
          "+refs/heads/*:refs/heads/*", "+refs/tags/*:refs/tags/*"], env, f"fetch from {remote.name}")


def push_to(remote: RemoteConfig, secrets_dir: Path, refspecs: list[str], env: Mapping[str, str]) -> str:
    """Push ``refspecs`` (``[+]<sha>:<ref>``) to ``remote`` from the current repository."""
    full = git_env(remote, secrets_dir, env)
    return _run(["git", "push", "--porcelain", "--quiet", "--no-verify", remote.url, *refspecs], full,
                f"remote {remote.name} refused")
