"""Shared fixtures for the docker backend's unit tests: a runner that records commands and answers
from a script, so command building and output parsing are tested without an engine."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import pytest

from claude_bottle.errors import BottleError
from claude_bottle.runner import Command, Result


@dataclass
class RecordingRunner:
    """Records every command; ``answer`` maps a command to a result (default: success, no output)."""

    answer: Callable[[Command], Result | None] = lambda cmd: None
    calls: list[Command] = field(default_factory=list)
    interactive_calls: list[Command] = field(default_factory=list)

    def run(self, cmd: Command) -> Result:
        self.calls.append(cmd)
        result = self.answer(cmd) or Result(argv=cmd.argv, returncode=0)
        if cmd.check and not result.ok:
            raise BottleError(f"`{' '.join(cmd.argv[:3])}` failed: {result.stderr.strip()}")
        return result

    def interactive(self, cmd: Command) -> int:
        self.interactive_calls.append(cmd)
        return 0

    def argvs(self) -> list[tuple[str, ...]]:
        return [c.argv for c in self.calls]


@pytest.fixture
def recorder() -> RecordingRunner:
    return RecordingRunner()
