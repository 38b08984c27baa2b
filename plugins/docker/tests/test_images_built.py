"""The images as built, on the real engine: what the agent and the bundle hold, and that a warm
``ensure_images`` builds nothing. Builds the images if they are missing (minutes, once)."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from claude_bottle.backends.base import NullProgress
from claude_bottle.config import Settings
from claude_bottle.runner import Command, Result, SubprocessRunner
from claude_bottle_docker.images import CLAUDE_CODE_VERSION, ImageRefs, ensure_images

pytestmark = pytest.mark.integration
HOST_CA = Path("/etc/ssl/certs/ca-certificates.crt")


class CountingRunner(SubprocessRunner):
    def __init__(self) -> None:
        super().__init__()
        self.argvs: list[tuple[str, ...]] = []

    def run(self, cmd: Command) -> Result:
        self.argvs.append(cmd.argv)
        return super().run(cmd)


@pytest.fixture(scope="module")
def refs(tmp_path_factory: pytest.TempPathFactory) -> ImageRefs:
    if subprocess.run(["docker", "version"], capture_output=True, check=False).returncode != 0:
        pytest.skip("no usable docker engine")
    ca = HOST_CA if HOST_CA.is_file() else None
    settings = Settings(home=tmp_path_factory.mktemp("home"), extra_ca_certs=ca)
    return ensure_images(runner=SubprocessRunner(), settings=settings, progress=NullProgress())


def run_in(image: str, *argv: str, entrypoint: str | None = None) -> str:
    cmd = ["docker", "run", "--rm", "--network", "none"]
    if entrypoint:
        cmd += ["--entrypoint", entrypoint]
    proc = subprocess.run([*cmd, image, *argv], capture_output=True, text=True, timeout=120, check=False)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


def test_warm_ensure_only_inspects(refs, tmp_path):
    runner = CountingRunner()
    settings = Settings(home=tmp_path, extra_ca_certs=HOST_CA if HOST_CA.is_file() else None)
    assert ensure_images(runner=runner, settings=settings, progress=NullProgress()) == refs
    assert [a[:3] for a in runner.argvs] == [("docker", "image", "inspect")] * 2


def test_agent_image(refs):
    out = run_in(refs.agent, "-c", "id; echo $HOME; stat -c '%U %a' /workspace; pwd; claude --version; "
                 "git --version; curl --version | head -1; node --version", entrypoint="bash")
    lines = out.splitlines()
    assert lines[0].startswith("uid=1000(claude) gid=1000(claude)")
    assert lines[1:4] == ["/home/claude", "claude 755", "/workspace"]
    assert lines[4] == f"{CLAUDE_CODE_VERSION} (Claude Code)"
    assert lines[5].startswith("git version") and lines[6].startswith("curl ") and lines[7].startswith("v")
    # npm and the build's CA stayed in the build stage
    leftovers = run_in(refs.agent, "-c", "command -v npm || echo none; ls /tmp", entrypoint="bash")
    assert leftovers.split() == ["none"]


def test_sidecars_image(refs):
    out = run_in(refs.sidecars, "-c",
                 "import sys, mitmproxy.version, yaml\n"
                 "import claude_bottle.sidecars.init, claude_bottle.sidecars.dns\n"
                 "print(sys.version_info[:2], mitmproxy.version.VERSION)",
                 entrypoint="python3")
    assert out.strip() == "(3, 13) 12.3.1"
    assert run_in(refs.sidecars, "--version", entrypoint="git").startswith("git version")
    # the core's host-side modules are not in the bundle; only its sidecar package is
    listing = run_in(refs.sidecars, "/opt/claude-bottle/src/claude_bottle", entrypoint="ls").split()
    assert listing == ["__init__.py", "sidecars"]
