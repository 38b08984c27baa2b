"""``claude-bottle cp SLUG:PATH DEST``: copy a file or directory out of a bottle's agent."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated

import typer

__all__ = ["cp"]


def _escaping_links(root: Path) -> list[Path]:
    """Symlinks under ``root`` (or ``root`` itself) that point outside it. The agent chose them: left
    in place, a later edit of ``DEST/notes.md`` could write to ``~/.bashrc``."""
    candidates = [root] if root.is_symlink() else []
    if root.is_dir() and not root.is_symlink():
        for top, dirs, files in os.walk(root):
            candidates += [Path(top) / name for name in (*dirs, *files) if (Path(top) / name).is_symlink()]
    base = root.parent.resolve() if root.is_symlink() or not root.is_dir() else root.resolve()
    return [link for link in candidates if not (link.parent / link.readlink()).resolve().is_relative_to(base)]


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
    target = dest / Path(inside).name if dest.is_dir() else dest
    backend.copy_out(slug=slug, path=inside, dest=dest)
    for link in _escaping_links(target):
        link.unlink()
        ui.warn(f"removed {link}: a link out of what was copied")
    ui.say(f"{slug}:{inside} -> {dest}")
