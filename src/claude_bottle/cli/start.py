"""``claude-bottle start SLUG``: bring a stopped bottle back (its agent exited, the host rebooted)."""

from __future__ import annotations

from typing import Annotated

import typer

__all__ = ["start"]


def start(
    slug: Annotated[str, typer.Argument(metavar="SLUG", help="The stopped bottle (see claude-bottle list).")],
) -> None:
    """Start a stopped bottle again, with its credentials; then attach to it or take it down."""
    import os

    from claude_bottle import lifecycle, ui
    from claude_bottle.cli.common import context

    settings, runner = context()
    lifecycle.start(slug, settings=settings, runner=runner, environ=os.environ, ask=ui.ask_secret)
    ui.say(f"bottle {slug} is running again: claude-bottle attach {slug}")
