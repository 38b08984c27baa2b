"""Red team: lifecycle attacks the crash suite does not try.

* ``up`` on a git repository (mirror in the state dir, git-gate, clone) killed with SIGKILL at several
  moments, then ``cleanup --yes``: nothing labelled may remain, not right away and not a few seconds
  later (a ``docker`` child of the killed ``up`` that finishes afterwards would leave a container or
  network that this cleanup never saw).
* ``cleanup --yes`` run while another ``up`` is still launching must not take that bottle apart.
* Two ``up`` at once both come up, on their own networks.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from tests.integration.dockerkit import HOME_LABEL, Env, docker, labelled

pytestmark = pytest.mark.integration


def _ours(env: Env) -> list[tuple[str, str]]:
    return labelled(f"{HOME_LABEL}={env.home}")


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    path = tmp_path / "repo"
    path.mkdir()
    git = ["git", "-c", "user.email=rt@example.com", "-c", "user.name=rt", "-C", str(path)]
    subprocess.run([*git, "init", "-q", "-b", "main"], check=True)
    (path / "a.txt").write_text("a\n")
    subprocess.run([*git, "add", "a.txt"], check=True)
    subprocess.run([*git, "commit", "-qm", "init"], check=True)
    return path


@pytest.fixture
def clean(env: Env) -> Iterator[None]:
    assert not _ours(env), "an earlier test left something behind"
    yield
    if _ours(env):
        env.cli("cleanup", "--yes", check=False)


@pytest.mark.parametrize("delay", [0.0, 0.3, 0.8, 1.4])
def test_sigkill_during_a_git_up_then_cleanup_leaves_nothing_even_later(
        env: Env, images: None, clean: None, repo: Path, delay: float) -> None:
    argv = [sys.executable, "-m", "claude_bottle", "up", "--detach", "--yes", "--json"]
    proc = subprocess.Popen(argv, env=env.environ, cwd=repo,
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, start_new_session=True)
    deadline = time.monotonic() + 300
    first: float | None = None
    while proc.poll() is None and time.monotonic() < deadline:
        if first is None and _ours(env):
            first = time.monotonic()
        if first is not None and time.monotonic() - first >= delay:
            break
        time.sleep(0.01)
    if proc.poll() is not None:
        out = proc.communicate()[0].decode()
        if out.strip().startswith("{"):
            env.cli("down", json.loads(out)["slug"], "--yes", "--discard", check=False)
        pytest.skip(f"up finished before {delay}s; nothing to kill")
    os.kill(proc.pid, signal.SIGKILL)  # the CLI only: its docker children live on, as after a real kill -9
    proc.wait()
    env.cli("cleanup", "--yes")
    assert _ours(env) == []
    time.sleep(6)  # any docker command the killed up had started has finished by now
    late = _ours(env)
    assert late == [], f"created after cleanup by what the killed up had started: {late}"
    state = env.home / "state"
    assert not state.exists() or list(state.iterdir()) == []


def test_cleanup_during_an_up_in_flight_leaves_it_alone(env: Env, images: None, clean: None) -> None:
    proc = env.popen("up", "--detach", "--yes", "--json", "--no-workspace")
    try:
        deadline = time.monotonic() + 300
        while not _ours(env) and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.01)
        cleanups = []
        while proc.poll() is None and time.monotonic() < deadline:
            cleanups.append(env.cli("cleanup", "--yes", "--json", check=False))
        out, err = proc.communicate(timeout=300)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 0, err
    assert cleanups, "up finished before any cleanup ran"
    slug = json.loads(out)["slug"]
    try:
        ran = env.cli("exec", slug, "--", "sh", "-c", "echo alive", check=False)
        assert ran.stdout.strip() == "alive", (ran, [c.stdout for c in cleanups])
    finally:
        env.cli("down", slug, "--yes", "--discard", check=False)


def test_two_ups_at_once_both_come_up(env: Env, images: None, clean: None) -> None:
    procs = [env.popen("up", "--detach", "--yes", "--json", "--no-workspace") for _ in range(2)]
    results = [p.communicate(timeout=600) for p in procs]
    slugs = [json.loads(out)["slug"] for out, _ in results if out.strip().startswith("{")]
    try:
        assert [p.returncode for p in procs] == [0, 0], [err for _, err in results]
        assert len(set(slugs)) == 2
        nets = [json.loads(docker("network", "inspect", f"claude-bottle-net-{s}"))[0]["IPAM"]["Config"][0]
                ["Subnet"] for s in slugs]
        assert nets[0] != nets[1]
        for slug in slugs:
            assert env.cli("exec", slug, "--", "true").returncode == 0
    finally:
        for slug in slugs:
            env.cli("down", slug, "--yes", "--discard", check=False)

