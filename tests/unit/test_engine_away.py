"""Correct answers when the Docker engine is away: ``list``, ``down``, ``exec``, ``cleanup``, ``build``
and ``backends`` say "Docker is not reachable" and what to do, in one line, and exit non-zero; never
"no live bottles" or "nothing to clean up", never a wrong cause, and nothing is created or removed.

These run the installed docker (and smolmachines) backends and the real ``docker`` CLI pointed at a
socket nobody listens on (``DOCKER_HOST``), so the shared engine is never touched.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from claude_bottle.backends import registry
from claude_bottle.config import load_settings
from claude_bottle.errors import BottleError, backend_failure
from claude_bottle.runner import Result
from claude_bottle.state import StateDir

pytestmark = [
    pytest.mark.skipif(shutil.which("docker") is None, reason="needs the docker CLI (not an engine)"),
    pytest.mark.skipif(importlib.util.find_spec("claude_bottle_docker") is None,
                       reason="needs the docker backend installed"),
]

SLUG = "coder-ab12c"
COMMANDS = [
    ("list",),
    ("list", "--json"),
    ("down", "--all", "--yes"),
    ("down", SLUG, "--yes"),
    ("exec", SLUG, "--", "true"),
    ("cleanup", "--yes"),
    ("cleanup", "--dry-run"),
    ("build",),
    ("backends",),
]
BACKEND_SETS = ["docker", "docker,smolmachines"]


def _sets() -> list[str]:
    have_smol = importlib.util.find_spec("claude_bottle_smolmachines") is not None
    return [s for s in BACKEND_SETS if have_smol or "smolmachines" not in s]


@pytest.fixture
def dead_engine(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """Every docker CLI call of this test goes to a socket nobody listens on."""
    host = f"unix://{tmp_path}/no-engine.sock"
    monkeypatch.setenv("DOCKER_HOST", host)
    monkeypatch.delenv("DOCKER_CONTEXT", raising=False)
    return host


def _live_docker_bottle() -> Path:
    """The state dir of a bottle that `up` finished on the docker backend (its engine now gone)."""
    state = StateDir(load_settings().state_root / SLUG)
    state.path.parent.mkdir(parents=True, exist_ok=True)
    state.create(agent="coder", bottle="default", backend="docker", cwd=Path("/tmp"))
    state.mark_live(services=("egress",))
    return state.path


def _tree(root: Path) -> set[str]:
    return {str(p.relative_to(root)) for p in root.rglob("*")} if root.exists() else set()


def _assert_one_clear_line(result, host: str) -> None:
    lines = [ln for ln in result.stderr.strip().splitlines() if not ln.startswith("…")]  # up's progress
    assert result.exit_code == 1, result.output
    assert len(lines) == 1, result.stderr
    line = lines[0]
    assert line.startswith("error: ") and "Docker is not reachable" in line, line
    assert f"at {host}" in line and "DOCKER_HOST / docker context" in line, line
    assert "Traceback" not in result.output


@pytest.mark.parametrize("backends", _sets())
@pytest.mark.parametrize("with_bottle", [False, True], ids=["empty-home", "live-bottle"])
@pytest.mark.parametrize("args", COMMANDS, ids=[" ".join(a) for a in COMMANDS])
def test_engine_away_is_one_line_and_exit_1(cli, cb_home, dead_engine, monkeypatch, backends, with_bottle,
                                            args):
    monkeypatch.setenv(registry.ENV_BACKENDS, backends)
    if with_bottle:
        _live_docker_bottle()
    before = _tree(cb_home)
    result = cli(*args)
    _assert_one_clear_line(result, dead_engine)
    if args[0] != "backends":  # its table on stdout still shows every backend's status
        assert result.stdout == ""
    else:
        assert "Docker is not reachable" in result.stdout
    assert _tree(cb_home) == before  # nothing created (no crash log either), nothing removed


def test_the_console_script_says_it_too(tmp_path, dead_engine):
    """The real entry point, with the environment reaching the docker CLI it runs."""
    env = {**os.environ, "CLAUDE_BOTTLE_HOME": str(tmp_path / "home"), "CLAUDE_BOTTLE_BACKENDS": "docker",
           "NO_COLOR": "1", "COLUMNS": "80"}
    proc = subprocess.run([sys.executable, "-m", "claude_bottle", "list"], capture_output=True, text=True,
                          env=env, check=False, timeout=60)
    assert proc.returncode == 1 and proc.stdout == ""
    assert proc.stderr.startswith(f"error: cannot list live bottles on docker: Docker is not reachable at "
                                  f"{dead_engine} (start the docker daemon")
    assert len(proc.stderr.splitlines()) == 1 and not (tmp_path / "home").exists()


def test_up_says_it_before_asking_anything(cli, cb_home, dead_engine, monkeypatch):
    monkeypatch.setenv(registry.ENV_BACKENDS, "docker")
    result = cli("up", "--yes", "--detach")
    _assert_one_clear_line(result, dead_engine)
    assert "the docker backend is not ready" in result.stderr and _tree(cb_home) <= {"state"}


# -- the pieces, without a CLI -------------------------------------------------------------------------
@pytest.mark.parametrize(("stderr", "summary"), [
    ("Cannot connect to the Docker daemon at unix:///x.sock. Is the docker daemon running?\n",
     "Docker is not reachable at unix:///x.sock"),
    ("Cannot connect to the Docker daemon at tcp://127.0.0.1:1. Is the docker daemon running?",
     "Docker is not reachable at tcp://127.0.0.1:1"),
    ('Failed to initialize: unable to resolve docker endpoint: context "nope": context not found',
     'Docker is not reachable: Failed to initialize: unable to resolve docker endpoint: context "nope": '
     'context not found'),
    ("error during connect: Get \"http://host/v1.41/version\": dial tcp: lookup host: no such host",
     'Docker is not reachable: error during connect: Get "http://host/v1.41/version": dial tcp: lookup host: '
     "no such host"),
])
def test_engine_errors_name_the_engine_and_the_fix(stderr, summary):
    from claude_bottle_docker.preflight import engine_error  # noqa: PLC0415 - skipped without the plugin

    err = engine_error(stderr)
    assert err is not None and err.message == summary
    assert err.hint == ("start the docker daemon with `sudo systemctl start docker`, "
                        "or check DOCKER_HOST / docker context")


def test_a_command_of_its_own_failing_is_not_an_engine_error():
    from claude_bottle_docker.preflight import engine_error  # noqa: PLC0415

    assert engine_error("Error: No such container: claude-bottle-x-aaaaa") is None
    assert engine_error("Error response from daemon: invalid filter 'x'") is None
    denied = engine_error("permission denied while trying to connect to the Docker daemon socket at unix://")
    assert denied is not None and "docker group" in str(denied)


def test_inspect_tells_a_dead_engine_from_a_missing_container(recorder_factory):
    from claude_bottle_docker.preflight import inspect_container  # noqa: PLC0415

    gone = recorder_factory(Result((), 1, "[]\n", "Error: No such container: c\n"))
    assert inspect_container(gone, "c") is None
    away = recorder_factory(Result((), 1, "[]\n", "Cannot connect to the Docker daemon at unix:///s. Is the "
                                                  "docker daemon running?\n"))
    with pytest.raises(BottleError, match="Docker is not reachable at unix:///s"):
        inspect_container(away, "c")


def test_backend_failure_names_each_reason_once():
    same = BottleError("Docker is not reachable at unix:///s", hint="start it")
    err = backend_failure("cannot list live bottles", {"docker": same, "smolmachines": same})
    assert str(err) == ("cannot list live bottles on docker, smolmachines: "
                        "Docker is not reachable at unix:///s (start it)")
    two = backend_failure("cannot list live bottles", {"a": RuntimeError("x"), "b": RuntimeError("y")})
    assert str(two) == "cannot list live bottles: on a: x; on b: y"


@pytest.fixture
def recorder_factory():
    class Answer:
        def __init__(self, result: Result) -> None:
            self.result = result

        def run(self, cmd):
            return Result(cmd.argv, self.result.returncode, self.result.stdout, self.result.stderr)

        def interactive(self, cmd) -> int:
            raise AssertionError("not used")

    return Answer
