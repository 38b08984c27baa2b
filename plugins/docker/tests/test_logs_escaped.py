"""``claude-bottle logs SLUG``: the bundle's output is printed line by line as it arrives, with control
and bidi characters escaped (the agent chooses host names and paths that end up in it)."""

from __future__ import annotations

import subprocess
import time
import uuid

import pytest

from claude_bottle.runner import Command, Result, SubprocessRunner
from claude_bottle_docker.bundle import show_logs

HOSTILE = "denied \x1b]0;pwned\x07evil.test \u202egnp.exe\r\n"


class StreamingRunner:
    """Hands scripted lines to ``on_line`` as :meth:`SubprocessRunner.stream` would."""

    def __init__(self) -> None:
        self.calls: list[tuple[tuple[str, ...], bool]] = []

    def run(self, cmd: Command) -> Result:
        raise AssertionError("logs must stream")

    def interactive(self, cmd: Command) -> int:
        raise AssertionError("logs must not reach the terminal raw")

    def stream(self, cmd: Command, on_line, *, keep_output: bool = True) -> Result:
        self.calls.append((cmd.argv, keep_output))
        for line in HOSTILE.rstrip("\n").split("\n"):
            on_line(line)
        return Result(cmd.argv, 0)


def test_logs_are_escaped_and_not_kept(capsys: pytest.CaptureFixture[str]) -> None:
    runner = StreamingRunner()
    assert show_logs(runner, "claude-bottle-sidecars-claude-abcde", follow=True) == 0
    out = capsys.readouterr().out
    assert "\x1b" not in out and "\x07" not in out and "\u202e" not in out and "\r" not in out
    assert out == "denied \\x1b]0;pwned\\x07evil.test \\u202egnp.exe\\r\n"
    assert runner.calls == [(("docker", "logs", "--follow", "claude-bottle-sidecars-claude-abcde"), False)]


def test_stream_hands_lines_over_as_they_come() -> None:
    """A real process: the first line arrives while the process is still running (``--follow``)."""
    seen: list[float] = []
    start = time.monotonic()
    cmd = Command(("sh", "-c", "echo first; sleep 1; echo second"), check=False)
    result = SubprocessRunner().stream(cmd, lambda _line: seen.append(time.monotonic() - start),
                                       keep_output=False)
    assert result.ok and result.stdout == "" and len(seen) == 2
    assert seen[0] < 0.9 <= seen[1]


@pytest.mark.integration
def test_real_bundle_logs_are_escaped(capsys: pytest.CaptureFixture[str]) -> None:
    if subprocess.run(["docker", "image", "inspect", "debian:bookworm-slim"], capture_output=True,
                      check=False).returncode != 0:
        pytest.skip("no usable docker engine or no local debian:bookworm-slim")
    name = f"claude-bottle-logtest-{uuid.uuid4().hex[:10]}"
    subprocess.run(["docker", "run", "--name", name, "--network", "none", "--label",
                    "dev.claude-bottle.test=logs", "debian:bookworm-slim", "printf", "%s", HOSTILE],
                   capture_output=True, check=True)
    try:
        assert show_logs(SubprocessRunner(), name, follow=False) == 0
    finally:
        subprocess.run(["docker", "rm", "--force", name], capture_output=True, check=False)
    out = capsys.readouterr().out
    assert out == "denied \\x1b]0;pwned\\x07evil.test \\u202egnp.exe\\r\n"
