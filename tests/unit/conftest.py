"""Unit tests are hermetic: a fresh home per test, no installed backend plugin (``CLAUDE_BOTTLE_BACKENDS=""``;
tests register the fakes they want), pinned width and no colour so output compares exactly."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner, Result

from claude_bottle import testing, ui
from claude_bottle.backends import registry
from claude_bottle.config import Settings, load_settings

_UNSET = (
    "CLAUDE_BOTTLE_BACKEND",
    "CLAUDE_BOTTLE_DEBUG",
    "CLAUDE_BOTTLE_AGENT_BASE_IMAGE",
    "CLAUDE_BOTTLE_SIDECARS_BASE_IMAGE",
)


@pytest.fixture(autouse=True)
def _hermetic(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setenv("CLAUDE_BOTTLE_HOME", str(tmp_path / "cb-home"))
    monkeypatch.setenv("CLAUDE_BOTTLE_BACKENDS", "")
    monkeypatch.setenv("COLUMNS", "80")
    monkeypatch.setenv("NO_COLOR", "1")
    for name in _UNSET:
        monkeypatch.delenv(name, raising=False)
    registry.clear_cache()
    yield
    registry.clear_cache()


@pytest.fixture
def cb_home(tmp_path: Path) -> Path:
    home = tmp_path / "cb-home"
    home.mkdir(exist_ok=True)
    return home


@pytest.fixture
def cb_settings(cb_home: Path) -> Settings:
    return load_settings()


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty current directory, so no ./.claude-bottle of the checkout leaks in."""
    cwd = tmp_path / "project"
    cwd.mkdir()
    monkeypatch.chdir(cwd)
    return cwd


@pytest.fixture
def cli(project: Path) -> Callable[..., Result]:
    """Run ``claude-bottle ARGS`` through Typer's runner (and so through the CLI's error boundary)."""
    from claude_bottle.cli.app import app  # noqa: PLC0415 - only the tests that drive the CLI

    runner = CliRunner()

    def invoke(*args: str, input: str | None = None) -> Result:
        return runner.invoke(app, list(args), input=input)

    return invoke


@pytest.fixture
def tty(monkeypatch: pytest.MonkeyPatch) -> None:
    """Pretend stdin is a terminal so ``confirm`` asks (answers come from the runner's input)."""
    monkeypatch.setattr(ui, "is_interactive", lambda: True)


@pytest.fixture
def fake() -> Iterator[type[testing.FakeBackend]]:
    with testing.fake_backend("fake") as cls:
        yield cls


@pytest.fixture
def fake_b() -> Iterator[type[testing.FakeBackend]]:
    with testing.fake_backend("fake-b") as cls:
        yield cls
