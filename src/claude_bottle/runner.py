"""The only place the core and its plugins start processes.

Backends build commands as data (:class:`Command`) and hand them to the :class:`Runner` the core gives
them. That keeps every process call recordable in tests and keeps secrets off command lines and out of
logs: a secret travels in ``Command.secret_env`` (merged into the child's environment, never shown),
and ``argv`` refers to it by name only (``docker run -e NAME``).
"""

from __future__ import annotations

import logging
import os
import subprocess
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from claude_bottle.errors import BottleError

__all__ = ["Command", "Result", "Runner", "SubprocessRunner", "redact"]

log = logging.getLogger("claude_bottle.runner")


@dataclass(frozen=True)
class Command:
    """A process to run. ``env`` adds to (not replaces) the parent's environment."""

    argv: tuple[str, ...]
    env: Mapping[str, str] = field(default_factory=dict)
    secret_env: Mapping[str, str] = field(default_factory=dict, repr=False)
    cwd: Path | None = None
    input: bytes | None = field(default=None, repr=False)
    timeout: float | None = None
    check: bool = True

    def __post_init__(self) -> None:
        object.__setattr__(self, "argv", tuple(self.argv))
        for value in self.secret_env.values():
            if value and any(value in arg for arg in self.argv):
                raise ValueError("a secret value must never be put on a command line")

    def display(self) -> str:
        return " ".join(self.argv)


@dataclass(frozen=True)
class Result:
    argv: tuple[str, ...]
    returncode: int
    stdout: str = ""
    stderr: str = ""

    @property
    def ok(self) -> bool:
        return self.returncode == 0


class Runner(Protocol):
    def run(self, cmd: Command) -> Result: ...

    def interactive(self, cmd: Command) -> int:
        """Run with the terminal attached (stdin/stdout/stderr inherited); return the exit status."""
        ...


def redact(text: str, secrets: Sequence[str]) -> str:
    for value in secrets:
        if value and len(value) >= 4:
            text = text.replace(value, "***")
    return text


def _first_line(text: str) -> str:
    lines = [ln.strip() for ln in text.strip().splitlines() if ln.strip()]
    return lines[-1] if lines else ""


class SubprocessRunner:
    """Runs commands with :mod:`subprocess`, capturing output as text."""

    def __init__(self, *, extra_secrets: Sequence[str] = ()) -> None:
        self._secrets = list(extra_secrets)

    def _env(self, cmd: Command) -> dict[str, str] | None:
        if not cmd.env and not cmd.secret_env:
            return None
        return {**os.environ, **cmd.env, **cmd.secret_env}

    def run(self, cmd: Command) -> Result:
        secrets = [*self._secrets, *cmd.secret_env.values()]
        log.debug("run: %s", redact(cmd.display(), secrets))
        try:
            proc = subprocess.run(
                cmd.argv,
                input=cmd.input,
                capture_output=True,
                env=self._env(cmd),
                cwd=cmd.cwd,
                timeout=cmd.timeout,
                check=False,
            )
        except FileNotFoundError as exc:
            raise BottleError(f"{cmd.argv[0]} not found on PATH", hint="install it, then retry") from exc
        except subprocess.TimeoutExpired as exc:
            what = " ".join(cmd.argv[:2])
            raise BottleError(f"{what} timed out after {cmd.timeout}s") from exc
        result = Result(
            argv=cmd.argv,
            returncode=proc.returncode,
            stdout=redact(proc.stdout.decode(errors="replace"), secrets),
            stderr=redact(proc.stderr.decode(errors="replace"), secrets),
        )
        if cmd.check and not result.ok:
            detail = (
                _first_line(result.stderr) or _first_line(result.stdout) or f"exit status {result.returncode}"
            )
            raise BottleError(f"`{' '.join(cmd.argv[:3])}` failed: {detail}")
        return result

    def interactive(self, cmd: Command) -> int:
        try:
            return subprocess.call(cmd.argv, env=self._env(cmd), cwd=cmd.cwd)
        except FileNotFoundError as exc:
            raise BottleError(f"{cmd.argv[0]} not found on PATH", hint="install it, then retry") from exc

    def stream(self, cmd: Command, on_line: Callable[[str], None], *, keep_output: bool = True) -> Result:
        """Like :meth:`run`, but hands each output line (stdout and stderr merged, redacted) to
        ``on_line`` as it arrives; ``Result.stdout`` holds all of it (nothing with ``keep_output=False``,
        for output that may never end: ``logs --follow``). An optional capability (not part of
        :class:`Runner`): callers probe for it and fall back to ``run``. ``cmd.timeout`` is ignored."""
        secrets = [*self._secrets, *cmd.secret_env.values()]
        log.debug("stream: %s", redact(cmd.display(), secrets))
        lines: list[str] = []
        try:
            with subprocess.Popen(
                cmd.argv, stdin=subprocess.PIPE if cmd.input is not None else subprocess.DEVNULL,
                stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=self._env(cmd), cwd=cmd.cwd,
            ) as proc:
                if cmd.input is not None and proc.stdin is not None:
                    proc.stdin.write(cmd.input)
                    proc.stdin.close()
                assert proc.stdout is not None
                for raw in proc.stdout:
                    line = redact(raw.decode(errors="replace"), secrets)
                    if keep_output:
                        lines.append(line)
                    on_line(line.rstrip("\n"))
                returncode = proc.wait()
        except FileNotFoundError as exc:
            raise BottleError(f"{cmd.argv[0]} not found on PATH", hint="install it, then retry") from exc
        result = Result(argv=cmd.argv, returncode=returncode, stdout="".join(lines))
        if cmd.check and not result.ok:
            detail = _first_line(result.stdout) or f"exit status {result.returncode}"
            raise BottleError(f"`{' '.join(cmd.argv[:3])}` failed: {detail}")
        return result
