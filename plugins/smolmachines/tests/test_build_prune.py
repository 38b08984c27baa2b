"""``claude-bottle build --prune`` for smolmachines: archives of superseded agent images are removed.

The image build itself is docker's (tested in the docker plugin); here ``ensure_images`` is replaced
by the refs it would return, and a recording runner answers ``docker image inspect`` / ``docker save``."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import pytest

from claude_bottle.backends.base import NullProgress
from claude_bottle.config import load_settings
from claude_bottle.runner import Command, Result
from claude_bottle_docker import images as docker_images
from claude_bottle_docker.images import ImageRefs
from claude_bottle_smolmachines import SmolmachinesBackend, images

CURRENT = "sha256:" + "c" * 64


@dataclass
class Recorder:
    calls: list[Command] = field(default_factory=list)

    def run(self, cmd: Command) -> Result:
        self.calls.append(cmd)
        if cmd.argv[:2] == ("docker", "version"):
            return Result(cmd.argv, 0, "24.0.0\n")
        if cmd.argv[:3] == ("docker", "image", "inspect"):
            return Result(cmd.argv, 0, CURRENT + "\n")
        if cmd.argv[:2] == ("docker", "save"):
            Path(cmd.argv[cmd.argv.index("--output") + 1]).write_bytes(b"archive")
            return Result(cmd.argv, 0)
        raise AssertionError(f"unexpected {cmd.argv}")

    def interactive(self, cmd: Command) -> int:
        raise AssertionError("not used")


class Notes(NullProgress):
    def __init__(self) -> None:
        self.lines: list[str] = []

    def note(self, text: str) -> None:
        self.lines.append(text)


@pytest.fixture
def cache(monkeypatch: pytest.MonkeyPatch) -> Path:
    refs = ImageRefs(agent="claude-bottle-agent:cur", sidecars="claude-bottle-sidecars:cur")
    monkeypatch.setattr(docker_images, "ensure_images", lambda **kw: refs)
    directory = images.cache_dir(load_settings())
    directory.mkdir(parents=True, exist_ok=True)
    yield directory
    for path in directory.iterdir():
        path.unlink()


def test_build_prune_removes_other_archives(cache: Path) -> None:
    old = cache / f"{'a' * 64}.tar"
    old.write_bytes(b"x" * 1500)
    partial = cache / f".{'b' * 64}.tar.partial"  # a concurrent launch's export in progress
    partial.write_bytes(b"y")
    notes = Notes()
    SmolmachinesBackend(runner=Recorder(), settings=load_settings()).build(progress=notes, prune=True)
    assert sorted(p.name for p in cache.iterdir()) == sorted([partial.name, f"{'c' * 64}.tar"])
    assert notes.lines == [f"removed {old}", "pruned 1 archive(s), reclaimed 1.5 KB"]


def test_build_without_prune_keeps_archives(cache: Path) -> None:
    old = cache / f"{'a' * 64}.tar"
    old.write_bytes(b"x")
    SmolmachinesBackend(runner=Recorder(), settings=load_settings()).build(progress=Notes())
    assert old.exists() and (cache / f"{'c' * 64}.tar").exists()
