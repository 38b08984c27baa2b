"""``claude-bottle cp SLUG:PATH DEST``: copy a file or directory out of a bottle's agent."""

from __future__ import annotations

import os
import stat
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


def _defuse(root: Path) -> list[str]:
    """Take the agent's set-id bits off what was copied (``docker cp`` keeps modes, and run as root it
    makes the files root's: an agent's set-uid program would become a set-uid-root one on this machine)
    and remove FIFOs and sockets (a FIFO hangs the first tool that reads it). What was done, per path."""
    done: list[str] = []
    paths = [root]
    if root.is_dir() and not root.is_symlink():
        for top, dirs, files in os.walk(root):
            paths += [Path(top) / name for name in (*dirs, *files)]
    for path in paths:
        try:
            mode = path.lstat().st_mode
        except FileNotFoundError:
            continue
        if stat.S_ISLNK(mode):
            continue
        if not (stat.S_ISREG(mode) or stat.S_ISDIR(mode)):
            path.unlink()
            done.append(f"removed {path}: not a regular file or directory")
        elif mode & (stat.S_ISUID | stat.S_ISGID):
            path.chmod(stat.S_IMODE(mode) & ~(stat.S_ISUID | stat.S_ISGID))
            done.append(f"cleared the set-id bits of {path}")
    return done


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
    for what in _defuse(target):
        ui.warn(what)
    ui.say(f"{slug}:{inside} -> {dest}")
