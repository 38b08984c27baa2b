"""The bundle's init as PID 1 of the real sidecars image: orphans re-parented to it are reaped, and
``docker stop`` (SIGTERM) ends the bundle cleanly and quickly."""

from __future__ import annotations

import subprocess
import tempfile
import time
import uuid
from pathlib import Path

import pytest
from tests.integration.dockerkit import HOST_CA, TEST_LABEL, Env, docker

from claude_bottle.backends.base import NullProgress
from claude_bottle.config import Settings
from claude_bottle.runner import SubprocessRunner
from claude_bottle.sidecars.config import BundleConfig, DaemonEntry, dump_bundle_config
from claude_bottle_docker.images import ensure_images

ZOMBIES = ("import os\n"
           "print(sum(1 for p in os.listdir('/proc') if p.isdigit() and "
           "open(f'/proc/{p}/stat').read().rsplit(')', 1)[1].split()[0] == 'Z'))")


@pytest.fixture
def container(env: Env):
    settings = Settings(home=env.home, extra_ca_certs=HOST_CA if HOST_CA.is_file() else None)
    refs = ensure_images(runner=SubprocessRunner(), settings=settings, progress=NullProgress())
    stage = Path(tempfile.mkdtemp(prefix="cb-init-stage-"))
    # Every second the daemon's subshell leaves an orphan that exits at once.
    forker = "while :; do (sleep 0.05 &); sleep 0.2; done"
    cfg = BundleConfig(slug="inittest-aaaaa", bottle="t",
                       daemons=(DaemonEntry("forker", ("sh", "-c", forker)),
                                DaemonEntry("sleeper", ("sleep", "600"))))
    (stage / "bundle.yaml").write_text(dump_bundle_config(cfg))
    name = f"cb-init-{uuid.uuid4().hex[:8]}"
    docker("run", "-d", "--name", name, "--label", f"{TEST_LABEL}={env.home}", "--network", "none",
           "--mount", f"type=bind,source={stage},target=/etc/claude-bottle,readonly", refs.sidecars)
    try:
        yield name
    finally:
        docker("rm", "-f", name, check=False)
        subprocess.run(["rm", "-rf", str(stage)], check=False)


def test_orphans_are_reaped_and_stop_is_clean(container):
    time.sleep(3)  # ~15 orphans made and exited
    assert docker("exec", container, "python3", "-c", ZOMBIES).strip() == "0"
    started = time.monotonic()
    docker("stop", container)
    assert time.monotonic() - started < 8  # not the 10 s SIGKILL fallback
    assert docker("inspect", "--format", "{{.State.ExitCode}}", container).strip() == "0"
