"""The one error type users see.

Core and plugin code raise :class:`BottleError` with text meant for people: what went wrong, where the
bad value came from (a flag, an env var, a file and line) and what to do. The CLI turns it into one
line on stderr and exit status 1. Any other exception is a bug and exits 3 with a saved traceback.
"""

from __future__ import annotations

from collections.abc import Mapping

__all__ = ["BottleError", "UsageError", "backend_failure"]


class BottleError(Exception):
    """A failure the user can fix. ``str(err)`` is the whole one-line message."""

    exit_code = 1

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        self.message = message
        self.hint = hint
        super().__init__(f"{message} ({hint})" if hint else message)


class UsageError(BottleError):
    """A bad command line (exit status 2)."""

    exit_code = 2


def backend_failure(doing: str, failures: Mapping[str, BaseException]) -> BottleError:
    """One line for an answer the backends could not give: what could not be done, on which
    backends, and why, each distinct reason once (docker and smolmachines both need the Docker
    engine, so an engine that is away is one reason, not two)."""
    by_reason: dict[str, list[str]] = {}
    for name, exc in failures.items():
        by_reason.setdefault(str(exc) or type(exc).__name__, []).append(name)
    parts = [f"on {', '.join(names)}: {reason}" for reason, names in by_reason.items()]
    return BottleError(f"{doing} {parts[0]}" if len(parts) == 1 else f"{doing}: {'; '.join(parts)}")
