"""``claude-bottle cp SLUG:PATH DEST``: copy a file or directory out of a bottle's agent."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

__all__ = ["cp"]


def cp(
    source: Annotated[str, typer.Argument(metavar="SLUG:PATH", help="PATH is absolute or under /workspace.")],
    dest: Annotated[Path, typer.Argument(help="Where to put it on this machine.")],
) -> None:
    """Copy PATH out of the bottle's agent to DEST (for bottles without git; with git, use fetch)."""
    from claude_bottle import lifecycle, ui
    from claude_bottle.cli.common import context
    from claude_bottle.errors import UsageError

    slug, sep, path = source.partition(":")
    if not sep or not slug or not path:
        raise UsageError(f"{source!r} is not SLUG:PATH", hint="e.g. claude-bottle cp coder-ab12c:notes.md .")
    settings, runner = context()
    backend = lifecycle.backend_of(slug, settings=settings, runner=runner)
    inside = path if path.startswith("/") else f"/workspace/{path}"
    backend.copy_out(slug=slug, path=inside, dest=dest)
    ui.say(f"{slug}:{inside} -> {dest}")
