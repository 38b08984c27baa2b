"""Is docker usable? Each failure mode is one problem with its fix; nothing here raises for a missing tool.

:func:`require_engine` and :func:`inspect_container` are for the commands that must ask the engine
(``list``, ``cleanup``, ``exec``, ``build``...): an engine that cannot be asked is an error saying so,
never read as "nothing there".
"""

from __future__ import annotations

import re
import shutil
from typing import TYPE_CHECKING

from claude_bottle.backends.base import Problem
from claude_bottle.errors import BottleError
from claude_bottle.runner import Command
from claude_bottle_docker.docker import DOCKER, inspect_command, is_no_such, parse_inspect

if TYPE_CHECKING:
    from claude_bottle.runner import Runner

__all__ = [
    "UNREACHABLE_FIX",
    "classify",
    "docker_problems",
    "engine_error",
    "inspect_container",
    "require_engine",
    "server_version",
]

_VERSION = Command((DOCKER, "version", "--format", "{{.Server.Version}}"), check=False, timeout=20)
UNREACHABLE_FIX = ("start the docker daemon with `sudo systemctl start docker`, "
                   "or check DOCKER_HOST / docker context")
_PERMISSION_FIX = "add your user to the docker group (`sudo usermod -aG docker $USER`), then log in again"
_DAEMON_AT = re.compile(r"cannot connect to the docker daemon at (\S+?)\.?(?:\s|$)", re.IGNORECASE)
# What the docker CLI prints when it never got an answer from an engine (socket, TCP, ssh, context).
_UNREACHABLE = ("cannot connect", "is the docker daemon running", "connection refused",
                "error during connect", "unable to resolve docker endpoint", "no such host")


def _last_line(text: str) -> str:
    return (text.strip().splitlines() or ["no output"])[-1].strip()


def _unreachable(stderr: str) -> Problem | None:
    """Pure: docker's complaint when it could not ask an engine at all, as a problem; else None."""
    text = stderr.lower()
    if "permission denied" in text and "docker" in text:
        return Problem("permission denied on the docker socket", _PERMISSION_FIX)
    if not any(marker in text for marker in _UNREACHABLE):
        return None
    where = _DAEMON_AT.search(stderr)
    if where:
        return Problem(f"Docker is not reachable at {where.group(1)}", UNREACHABLE_FIX)
    return Problem(f"Docker is not reachable: {_last_line(stderr)}", UNREACHABLE_FIX)


def classify(stderr: str) -> Problem:
    """Pure: turn ``docker version``'s complaint into a problem and its fix."""
    found = _unreachable(stderr)
    if found is not None:
        return found
    return Problem(f"docker does not answer: {_last_line(stderr)}",
                   "check `docker version` and fix what it reports")


def engine_error(stderr: str) -> BottleError | None:
    """Pure: the one-line error for a docker command that failed because no engine answered (so its
    empty output means nothing), or None when the engine answered and the failure is the command's own."""
    found = _unreachable(stderr)
    return None if found is None else BottleError(found.summary, hint=found.fix)


def docker_problems(runner: Runner) -> list[Problem]:
    if shutil.which(DOCKER) is None:
        return [Problem("the docker CLI is not installed (not on PATH)",
                        "install Docker Engine: https://docs.docker.com/engine/install/")]
    try:
        result = runner.run(_VERSION)
    except BottleError as exc:  # the runner's own failure: not found after all, or a hung daemon
        return [Problem(f"docker does not answer: {exc.message}", "check `docker version`")]
    if result.ok and result.stdout.strip():
        return []
    return [classify(result.stderr or result.stdout)]


def require_engine(runner: Runner) -> None:
    """Raise :class:`BottleError` (one line with its fix) unless a docker engine answers. For a
    command whose answer would otherwise be "nothing there": only an engine that answers can say so."""
    result = runner.run(_VERSION)
    if not result.ok:
        problem = classify(result.stderr or result.stdout)
        raise BottleError(problem.summary, hint=problem.fix)


def inspect_container(runner: Runner, name: str) -> dict[str, object] | None:
    """``docker container inspect NAME``: its data, or None when no such container exists. An engine
    that cannot be asked raises: "not reachable" must not read as "no such bottle"."""
    result = runner.run(inspect_command(name))
    if not result.ok and not is_no_such(result.stderr):
        raise engine_error(result.stderr) or BottleError(
            f"cannot inspect container {name}: {_last_line(result.stderr)}")
    return parse_inspect(result.stdout)


def server_version(runner: Runner) -> str:
    try:
        result = runner.run(_VERSION)
    except BottleError:
        return ""
    return result.stdout.strip() if result.ok else ""
