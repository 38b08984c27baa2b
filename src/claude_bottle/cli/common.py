"""What every command needs: settings, the runner, and exit codes. Kept import-light for ``--help``."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from claude_bottle.config import Settings
    from claude_bottle.runner import SubprocessRunner

__all__ = ["context"]


def context() -> tuple[Settings, SubprocessRunner]:
    """Settings from ``$CLAUDE_BOTTLE_HOME`` and the environment, and the process runner."""
    from claude_bottle.config import load_settings
    from claude_bottle.runner import SubprocessRunner

    return load_settings(), SubprocessRunner()
