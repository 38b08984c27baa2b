"""Helpers shared by the integration tests: plain docker calls, the label inventory, the CLI."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from claude_bottle.identity import Names

__all__ = ["HOME_LABEL", "HOST_CA", "TEST_LABEL", "AgentBottle", "Env", "connect", "docker", "docker_works",
           "labelled", "remove"]

HOST_CA = Path("/etc/ssl/certs/ca-certificates.crt")
TEST_LABEL = "dev.claude-bottle-test.home"
HOME_LABEL = "dev.claude-bottle.home"


def docker(*args: str, check: bool = True, timeout: float = 120, input: bytes | None = None) -> str:
    proc = subprocess.run(["docker", *args], capture_output=True, timeout=timeout, input=input, check=False)
    if check and proc.returncode != 0:
        raise AssertionError(f"docker {' '.join(args)} failed: {proc.stderr.decode(errors='replace')}")
    return proc.stdout.decode(errors="replace")


def connect(network: str, container: str, names: Iterable[str], *, timeout: float = 30) -> None:
    """``docker network connect``, then wait until each of ``names`` resolves inside ``container``.

    Docker's embedded DNS learns a newly connected network's aliases asynchronously: a lookup right
    after ``connect`` returns can fail ("Could not resolve hostname"), which made the SSH-forge test
    fail now and then in full runs (issue 13)."""
    docker("network", "connect", network, container)
    deadline = time.monotonic() + timeout
    for name in names:
        while not docker("exec", container, "getent", "hosts", name, check=False).strip():
            if time.monotonic() > deadline:
                raise AssertionError(f"{name} does not resolve in {container} {timeout:.0f}s after connect")
            time.sleep(0.1)


def labelled(label: str) -> list[tuple[str, str]]:
    """(kind, name) of every container, network and volume carrying ``label``."""
    found = []
    for kind, argv in (("container", ["ps", "-a", "--format", "{{.Names}}"]),
                       ("network", ["network", "ls", "--format", "{{.Name}}"]),
                       ("volume", ["volume", "ls", "--format", "{{.Name}}"])):
        out = docker(*argv[:-2], "--filter", f"label={label}", *argv[-2:])
        found += [(kind, name) for name in out.split()]
    return found


def remove(found: list[tuple[str, str]]) -> None:
    for kind, name in sorted(found, key=lambda kn: ("container", "network", "volume").index(kn[0])):
        cmd = {"container": ["rm", "-f"], "network": ["network", "rm"],
               "volume": ["volume", "rm", "-f"]}[kind]
        docker(*cmd, name, check=False)


def docker_works() -> bool:
    try:
        proc = subprocess.run(["docker", "version"], capture_output=True, timeout=20, check=False)
        return proc.returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False


@dataclass(frozen=True)
class Env:
    home: Path
    environ: dict[str, str]
    workdir: Path

    def cli(self, *args: str, check: bool = True, timeout: float = 900, cwd: Path | None = None,
            input: str | None = None, env_extra: dict[str, str] | None = None,
            ) -> subprocess.CompletedProcess[str]:
        proc = subprocess.run([sys.executable, "-m", "claude_bottle", *args], capture_output=True, text=True,
                              env={**self.environ, **(env_extra or {})}, cwd=cwd or self.workdir,
                              timeout=timeout, input=input, check=False)
        if check and proc.returncode != 0:
            raise AssertionError(f"claude-bottle {' '.join(args)} -> {proc.returncode}\n"
                                 f"stdout: {proc.stdout}\nstderr: {proc.stderr}")
        return proc

    def popen(self, *args: str) -> subprocess.Popen[str]:
        return subprocess.Popen([sys.executable, "-m", "claude_bottle", *args], text=True,
                                env=self.environ, cwd=self.workdir,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE)

    def state_dir(self, slug: str) -> Path:
        return self.home / "state" / slug

    def audit(self, slug: str) -> list[dict[str, object]]:
        path = self.state_dir(slug) / "logs" / "egress.jsonl"
        if not path.is_file():
            return []
        return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


@dataclass(frozen=True)
class AgentBottle:
    """A bottle made by the CLI, seen from the test: run things in its agent as the agent would."""

    slug: str
    env: Env

    @property
    def agent(self) -> str:
        return Names(self.slug).agent

    @property
    def bundle(self) -> str:
        return Names(self.slug).bundle

    def sh(self, script: str, *, user: str = "claude", stdin: str | None = None,
           timeout: float = 60) -> subprocess.CompletedProcess[str]:
        """Run ``script`` with bash in the agent (as the agent user unless ``user`` says otherwise)."""
        return subprocess.run(["docker", "exec", "-i", "--user", user, self.agent, "bash", "-c", script],
                              input=stdin, capture_output=True, text=True, timeout=timeout, check=False)

    def node(self, script: str, *args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
        """Run a node program (from stdin) in the agent, with ``args`` as its arguments."""
        return subprocess.run(["docker", "exec", "-i", "--user", "claude", self.agent, "node", "-", *args],
                              input=script, capture_output=True, text=True, timeout=timeout, check=False)

    def audit(self) -> list[dict[str, object]]:
        return self.env.audit(self.slug)
