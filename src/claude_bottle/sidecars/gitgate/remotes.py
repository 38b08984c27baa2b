"""Talking to a bottle's declared git remotes with credentials only the gate holds.

The credentials sit in the gate's tmpfs directory (``creds.py`` put them there from the host's stdin);
git reads them from there and they never enter an environment or a command line:

* SSH: ``ssh -i <key>`` with ``StrictHostKeyChecking=yes`` against a known_hosts file holding only the
  pinned key. An SSH remote without a pinned host key is refused (fail closed).
* HTTPS: a credential helper (given through ``GIT_CONFIG_*`` variables) that prints the token file.
  Plain ``http://`` never gets a token.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Mapping
from pathlib import Path

from claude_bottle.sidecars.gitgate.config import GateConfig, RemoteConfig

__all__ = ["RemoteError", "fetch_into", "git_env", "push_to", "write_known_hosts"]

_HELPER = (
    '!f() { test "$1" = get || exit 0; printf "username=%s\\n" "$GITGATE_USER"; '
    'printf "password=%s\\n" "$(cat "$GITGATE_TOKEN_FILE")"; }; f'
)


_CAUSES = ("Host key verification failed", "Permission denied", "Authentication failed", "rejected",
           "Could not resolve", "Connection refused", "timed out")


class RemoteError(Exception):
    """A remote could not be reached or refused; ``str()`` is one line for the agent."""


def known_hosts_path(config: GateConfig, remote: RemoteConfig) -> Path:
    return Path(config.work_dir) / "known_hosts" / remote.name


def write_known_hosts(config: GateConfig) -> None:
    """One known_hosts file per ssh remote, holding only its pinned key (not a secret)."""
    for remote in config.remotes:
        if remote.kind == "ssh" and remote.host_key:
            path = known_hosts_path(config, remote)
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(f"* {remote.host_key.strip()}\n")


def git_env(config: GateConfig, remote: RemoteConfig, base: Mapping[str, str]) -> dict[str, str]:
    """The environment for a git process that talks to ``remote``. Raises ``RemoteError`` if unusable."""
    # Drop config handed down by the caller (the hook's own), keep the gate's global config file.
    env = {k: v for k, v in base.items() if not k.startswith(("GIT_CONFIG_KEY", "GIT_CONFIG_VALUE"))
           and k not in ("GIT_CONFIG_COUNT", "GIT_CONFIG_PARAMETERS")}
    env.update(GIT_TERMINAL_PROMPT="0", GIT_CONFIG_NOSYSTEM="1", GIT_ASKPASS="/bin/false",
               SSH_ASKPASS="/bin/false")
    if remote.kind == "ssh":
        known = known_hosts_path(config, remote)
        if not remote.host_key or not known.is_file():
            raise RemoteError(f"remote {remote.name} is ssh without a pinned host_key; refusing to connect")
        key = Path(config.secrets_dir) / f"{remote.name}.key"
        if not key.is_file():
            raise RemoteError(f"remote {remote.name}: the gate holds no ssh key for it (was it delivered?)")
        env["GIT_SSH_COMMAND"] = (
            f"ssh -F /dev/null -i {key} -o IdentitiesOnly=yes -o IdentityAgent=none -o BatchMode=yes "
            f"-o StrictHostKeyChecking=yes -o UserKnownHostsFile={known} -o GlobalKnownHostsFile=/dev/null"
        )
        env["GIT_SSH_VARIANT"] = "ssh"
        return env
    token = Path(config.secrets_dir) / f"{remote.name}.token"
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
        lines = [ln.strip() for ln in proc.stderr.decode(errors="replace").splitlines() if ln.strip()]
        # git ends with generic advice ("...and the repository exists."); the cause comes first
        telling = [ln for cause in _CAUSES for ln in lines if cause in ln] or \
            [ln for ln in lines if ln.startswith(("fatal:", "error:", "!"))] or lines
        raise RemoteError(f"{what}: {telling[0] if telling else f'exit status {proc.returncode}'}")
    return proc.stdout.decode(errors="replace")


def fetch_into(config: GateConfig, cache: Path, remote: RemoteConfig) -> None:
    """Refresh the bare ``cache`` repository from ``remote`` (branches and tags, pruned)."""
    env = git_env(config, remote, os.environ)
    _run(["git", f"--git-dir={cache}", "fetch", "--prune", "--quiet", "--no-write-fetch-head", remote.url,
          "+refs/heads/*:refs/heads/*", "+refs/tags/*:refs/tags/*"], env, f"fetch from {remote.name}")


def push_to(config: GateConfig, remote: RemoteConfig, refspecs: list[str], env: Mapping[str, str]) -> str:
    """Push ``refspecs`` (``[+]<sha>:<ref>``) to ``remote`` from the current repository."""
    full = git_env(config, remote, env)
    return _run(["git", "push", "--porcelain", "--quiet", "--no-verify", remote.url, *refspecs], full,
                f"remote {remote.name} refused")
