"""The one error type users see.

Core and plugin code raise :class:`BottleError` with text meant for people: what went wrong, where the
bad value came from (a flag, an env var, a file and line) and what to do. The CLI turns it into one
line on stderr and exit status 1. Any other exception is a bug and exits 3 with a saved traceback.
"""

from __future__ import annotations

__all__ = ["BottleError", "UsageError"]


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
