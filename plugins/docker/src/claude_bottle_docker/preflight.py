"""Is docker usable? Each failure mode is one problem with its fix; nothing here raises for a missing tool."""

from __future__ import annotations

import shutil
from typing import TYPE_CHECKING

from claude_bottle.backends.base import Problem
from claude_bottle.errors import BottleError
from claude_bottle.runner import Command
from claude_bottle_docker.docker import DOCKER

if TYPE_CHECKING:
    from claude_bottle.runner import Runner

__all__ = ["classify", "docker_problems", "server_version"]

_VERSION = Command((DOCKER, "version", "--format", "{{.Server.Version}}"), check=False, timeout=20)


def classify(stderr: str) -> Problem:
    """Pure: turn ``docker version``'s complaint into a problem and its fix."""
    text = stderr.lower()
    if "permission denied" in text:
        return Problem("permission denied on the docker socket",
                       "add your user to the docker group (`sudo usermod -aG docker $USER`), "
                       "then log in again")
    if "cannot connect" in text or "is the docker daemon running" in text or "connection refused" in text:
        return Problem("the docker daemon is not reachable",
                       "start it (`sudo systemctl start docker`) or fix DOCKER_HOST / the docker context")
    line = (stderr.strip().splitlines() or ["no output"])[-1]
    return Problem(f"docker does not answer: {line}", "check `docker version` and fix what it reports")


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


def server_version(runner: Runner) -> str:
    try:
        result = runner.run(_VERSION)
    except BottleError:
        return ""
    return result.stdout.strip() if result.ok else ""
