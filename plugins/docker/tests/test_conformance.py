"""The core's conformance run (``claude_bottle.testing.check_backend``) against the real engine:
preflight, prepare without side effects, launch, enumerate, cleanup protection, cleanup twice, down
twice."""

from __future__ import annotations

import shutil
import subprocess

import pytest

from claude_bottle import testing
from claude_bottle.config import load_settings
from claude_bottle.runner import SubprocessRunner
from claude_bottle_docker import DockerBackend

pytestmark = pytest.mark.integration

CA = "/etc/ssl/certs/ca-certificates.crt"


def _docker_ok() -> bool:
    if shutil.which("docker") is None:
        return False
    return subprocess.run(["docker", "version"], capture_output=True, check=False).returncode == 0


@pytest.mark.skipif(not _docker_ok(), reason="no usable docker engine")
def test_docker_backend_conforms(tmp_path, monkeypatch):
    monkeypatch.setenv("CLAUDE_BOTTLE_HOME", str(tmp_path))
    monkeypatch.setenv("CLAUDE_BOTTLE_EXTRA_CA_CERTS", CA)
    backend = DockerBackend(runner=SubprocessRunner(), settings=load_settings())
    try:
        report = testing.check_backend(backend)
    finally:
        leftover = subprocess.run(
            ["docker", "ps", "-aq", "--filter", f"label=dev.claude-bottle.home={tmp_path}"],
            capture_output=True, text=True, check=False).stdout.split()
        nets = subprocess.run(
            ["docker", "network", "ls", "-q", "--filter", f"label=dev.claude-bottle.home={tmp_path}"],
            capture_output=True, text=True, check=False).stdout.split()
        if leftover:
            subprocess.run(["docker", "rm", "-f", *leftover], capture_output=True, check=False)
        if nets:
            subprocess.run(["docker", "network", "rm", *nets], capture_output=True, check=False)
    assert not leftover and not nets
    assert report.steps[-1] == "down again"
