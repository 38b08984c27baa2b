"""``claude-bottle cp SLUG:PATH DEST``: copy a file or directory out of a bottle's agent."""

from __future__ import annotations

import os
import shutil
import stat
import tempfile
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
    parent = dest if dest.is_dir() else dest.parent
    # Copied first into a private (0700) directory next to DEST and made safe there, so no moment
    # exists where another local user could run an agent's set-uid program or follow its link.
    with tempfile.TemporaryDirectory(prefix=".claude-bottle-cp-", dir=parent) as tmp:
        staged = Path(tmp) / "item"
        backend.copy_out(slug=slug, path=inside, dest=staged)
        shown = f"{slug}:{inside.rstrip('/.') or '/'}"  # what the user asked for, not the staging dir
        for link in _escaping_links(staged):
            link.unlink()
            ui.warn(f"removed {str(link).replace(str(staged), shown, 1)}: a link out of what was copied")
        for what in _defuse(staged):
            ui.warn(what.replace(str(staged), shown, 1))
        _deliver(staged, dest, name=Path(inside).name, contents=inside.endswith("/."))
    ui.say(f"{slug}:{inside} -> {dest}")


def _deliver(staged: Path, dest: Path, *, name: str, contents: bool) -> None:
    """Put ``staged`` where ``docker cp`` would have put it: into DEST when DEST is a directory (its
    contents only for ``PATH/.``), else as DEST. Links stay links; modes are already made safe."""
    if not staged.exists() and not staged.is_symlink():
        return  # it was a link out of the bottle's files, removed above
    if not staged.is_dir() or staged.is_symlink():
        final = dest / name if dest.is_dir() else dest
        if final.is_symlink():
            final.unlink()  # replace a link, never write through it
        try:
            staged.replace(final)
        except OSError as exc:
            from claude_bottle.errors import BottleError  # the CLI imports lazily

            raise BottleError(f"cannot put {name} at {final}: {exc.strerror}") from exc
        return
    final = dest if contents or not dest.is_dir() else dest / name
    shutil.copytree(staged, final, symlinks=True, dirs_exist_ok=True)
