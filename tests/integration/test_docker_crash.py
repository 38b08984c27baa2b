"""Crash safety: ``up`` killed with SIGKILL at several points leaves only labelled things that
``cleanup`` finds; a clean failure half-way removes what that ``up`` made; and cleanup never touches
what is not ours, whatever its name."""

from __future__ import annotations

import json
import os
import signal
import time
import uuid
from collections.abc import Callable
from pathlib import Path

import pytest
from tests.integration.dockerkit import HOME_LABEL, TEST_LABEL, Env, docker, labelled

pytestmark = pytest.mark.integration


def _ours(env: Env) -> list[tuple[str, str]]:
    return labelled(f"{HOME_LABEL}={env.home}")


def _has(kind: str, prefix: str) -> Callable[[list[tuple[str, str]]], bool]:
    return lambda found: any(k == kind and n.startswith(prefix) for k, n in found)


def _agent_running(env: Env) -> Callable[[list[tuple[str, str]]], bool]:
    def check(found: list[tuple[str, str]]) -> bool:
        names = [n for k, n in found if k == "container" and not n.startswith("claude-bottle-sidecars-")]
        states = [docker("inspect", "-f", "{{.State.Running}}", n, check=False).strip() for n in names]
        return "true" in states
    return check


POINTS = {
    "networks": _has("network", "claude-bottle-net-"),
    "egress network": _has("network", "claude-bottle-egress-"),
    "bundle": _has("container", "claude-bottle-sidecars-"),
    "agent": lambda found: _has("container", "claude-bottle-")(
        [(k, n) for k, n in found if not n.startswith("claude-bottle-sidecars-")]),
}


@pytest.mark.parametrize("point", [*POINTS, "agent running", "+0.2s", "+0.6s", "+1.2s"])
def test_sigkill_during_up_then_cleanup_leaves_nothing(env: Env, images: None, point: str) -> None:
    assert not _ours(env), "an earlier test left something behind"
    proc = env.popen("up", "--detach", "--yes", "--json", "--no-workspace")
    condition = _agent_running(env) if point == "agent running" else POINTS.get(point)
    # "+Xs": X seconds after the first labelled object appeared (image builds before it take no part)
    delay = float(point[1:-1]) if point.startswith("+") else None
    first_seen: float | None = None
    deadline = time.monotonic() + 900
    try:
        while proc.poll() is None and time.monotonic() < deadline:
            found = _ours(env)
            if found and first_seen is None:
                first_seen = time.monotonic()
            if delay is not None and first_seen is not None and time.monotonic() - first_seen >= delay:
                break
            if condition is not None and condition(found):
                break
            time.sleep(0.01)
        assert proc.poll() is None, f"up finished before the kill point {point}: {proc.communicate()}"
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert _ours(env), f"killed at {point} but nothing was made yet"
    # the killed up is not live; a second `up` would not protect it; cleanup must find everything
    out = env.cli("cleanup", "--yes")
    assert out.returncode == 0
    assert _ours(env) == [], out.stdout
    state = env.home / "state"
    assert not state.exists() or list(state.iterdir()) == []


def test_a_failure_half_way_removes_what_that_up_made(env: Env, images: None, tmp_path: Path) -> None:
    """A real failure at the process boundary: a ``docker`` on PATH that fails the agent's
    ``docker run`` (as a vanished daemon or a refused option would) and passes everything else on."""
    real = docker_path()
    shim = tmp_path / "bin"
    shim.mkdir()
    (shim / "docker").write_text(
        "#!/bin/sh\n"
        'if [ "$1" = run ]; then\n'
        '  echo "docker: Error response from daemon: simulated failure." >&2; exit 125\n'
        "fi\n"
        f'exec {real} "$@"\n')
    (shim / "docker").chmod(0o755)
    shimmed = Env(home=env.home, environ={**env.environ, "PATH": f"{shim}:{env.environ['PATH']}"},
                  workdir=env.workdir)
    out = shimmed.cli("up", "--detach", "--yes", "--json", check=False)
    assert out.returncode == 1, out
    lines = [ln for ln in out.stderr.strip().splitlines() if ln.strip() and "simulated" in ln]
    assert lines and "removed everything" in lines[-1], out.stderr
    assert _ours(env) == []
    state = env.home / "state"
    assert not state.exists() or list(state.iterdir()) == []


def docker_path() -> str:
    for d in os.environ["PATH"].split(":"):
        candidate = Path(d) / "docker"
        if candidate.is_file() and os.access(candidate, os.X_OK):
            return str(candidate)
    raise AssertionError("docker not on PATH")


def test_cleanup_never_touches_what_is_not_ours(env: Env, images: None) -> None:
    tag = uuid.uuid4().hex[:5]
    test = ["--label", f"{TEST_LABEL}={env.home}"]
    image = json.loads(docker("image", "inspect", "debian:bookworm-slim"))[0]["Id"]
    made = {
        # our naming, no labels at all
        "container": f"claude-bottle-something-{tag}",
        # our naming and some of our labels, but no slug label
        "half": f"claude-bottle-half-{tag}",
        # fully labelled, but by another claude-bottle home (another user profile, another suite)
        "other-home": f"claude-bottle-other-{tag}",
    }
    docker("run", "-d", "--name", made["container"], *test, image, "sleep", "600")
    docker("run", "-d", "--name", made["half"], *test, "--label", "dev.claude-bottle.role=agent",
           "--label", "dev.claude-bottle.backend=docker", image, "sleep", "600")
    docker("run", "-d", "--name", made["other-home"], *test, "--label", f"dev.claude-bottle.slug=other-{tag}",
           "--label", "dev.claude-bottle.backend=docker", "--label", "dev.claude-bottle.home=/nowhere/else",
           image, "sleep", "600")
    docker("network", "create", *test, f"claude-bottle-net-foreign-{tag}")
    docker("volume", "create", *test, f"claude-bottle-vol-{tag}")
    try:
        plan = env.cli("cleanup", "--dry-run", "--json", check=False)
        for name in [*made.values(), f"claude-bottle-net-foreign-{tag}", f"claude-bottle-vol-{tag}"]:
            assert name not in plan.stdout
        env.cli("cleanup", "--yes")
        for name in made.values():
            assert docker("inspect", "-f", "{{.State.Running}}", name).strip() == "true"
        docker("network", "inspect", f"claude-bottle-net-foreign-{tag}")
        docker("volume", "inspect", f"claude-bottle-vol-{tag}")
    finally:
        docker("rm", "-f", *made.values(), check=False)
        docker("network", "rm", f"claude-bottle-net-foreign-{tag}", check=False)
        docker("volume", "rm", f"claude-bottle-vol-{tag}", check=False)
