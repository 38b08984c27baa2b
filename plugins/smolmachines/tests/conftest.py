"""Fixtures for the smolmachines suite.

Every test runs with a temporary ``CLAUDE_BOTTLE_HOME`` and a temporary smolvm state directory
(``CLAUDE_BOTTLE_SMOLVM_STATE_DIR`` -> ``smolvm --state-dir``), so neither the user's bottles nor their
smolvm machines are ever seen, let alone removed.
"""

from __future__ import annotations

import json
import os
import shutil
import stat
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from claude_bottle.runner import Command, SubprocessRunner
from claude_bottle_smolmachines.engine import Smolvm, find_engine

HERE = Path(__file__).parent


@pytest.fixture(scope="session", autouse=True)
def _isolated(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    home = tmp_path_factory.mktemp("claude-bottle-home")
    state = tmp_path_factory.mktemp("smolvm-state")
    saved = {k: os.environ.get(k) for k in ("CLAUDE_BOTTLE_HOME", "CLAUDE_BOTTLE_SMOLVM_STATE_DIR",
                                            "CLAUDE_BOTTLE_EXTRA_CA_CERTS")}
    os.environ["CLAUDE_BOTTLE_HOME"] = str(home)
    os.environ["CLAUDE_BOTTLE_SMOLVM_STATE_DIR"] = str(state)
    if Path("/etc/ssl/certs/ca-certificates.crt").is_file():
        os.environ["CLAUDE_BOTTLE_EXTRA_CA_CERTS"] = "/etc/ssl/certs/ca-certificates.crt"
    try:
        yield home
        _leak_check(home)
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def _leak_check(home: Path) -> None:
    """Nothing this session made may outlive it: no machine in its smolvm state dir, no Docker object
    labelled with its home. Leftovers are removed, then reported as an error."""
    runner = SubprocessRunner()
    leaks: list[str] = []
    engine = find_engine()
    if engine is not None and engine.source != "PATH":  # the real smolvm with this session's state
        smolvm = Smolvm(engine=engine, runner=runner)
        for machine in smolvm.ls():
            leaks.append(f"machine {machine['name']}")
            smolvm.delete(name=str(machine["name"]))
    label = f"label=dev.claude-bottle.home={home}"
    kinds = (("container", ("ps", "-a", "-q"), ("rm", "-f")),
             ("network", ("network", "ls", "-q"), ("network", "rm")))
    for kind, ls, rm in kinds if shutil.which("docker") else ():
        out = runner.run(Command(("docker", *ls, "--filter", label), check=False)).stdout.split()
        for ident in out:
            leaks.append(f"{kind} {ident}")
            runner.run(Command(("docker", *rm, ident), check=False))
    if leaks:
        raise AssertionError(f"the smolmachines suite left {len(leaks)} object(s) behind: {', '.join(leaks)}")


@dataclass
class FakeSmolvm:
    """The fake ``smolvm`` on PATH (see fake_smolvm.py for why it exists) and its records."""

    bin_dir: Path
    state: Path

    def calls(self) -> list[list[str]]:
        path = self.state / "calls.jsonl"
        return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []

    def verbs(self) -> list[str]:
        out = []
        for argv in self.calls():
            args = list(argv)
            while args and args[0] in ("--error-format", "--state-dir"):
                args = args[2:]
            out.append(" ".join(args[:2]))
        return out


@pytest.fixture
def fake_smolvm(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> FakeSmolvm:
    bin_dir = tmp_path / "fake-bin"
    bin_dir.mkdir()
    exe = bin_dir / "smolvm"
    exe.write_text(f"#!/bin/sh\nexec {sys.executable} {HERE / 'fake_smolvm.py'} \"$@\"\n")
    exe.chmod(exe.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
    state = tmp_path / "fake-smolvm-state"
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}")
    monkeypatch.setenv("FAKE_SMOLVM_DIR", str(state))
    return FakeSmolvm(bin_dir=bin_dir, state=state)
