"""Making what is copied out of a bottle safe on this machine: the agent chose every name, mode and
link in it. Used by ``cp`` and by ``down`` when it keeps a copied workspace."""

from __future__ import annotations

import os
import stat
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from claude_bottle.backends.base import Backend

__all__ = ["defuse", "escaping_links", "keep_copy"]


def escaping_links(root: Path) -> list[Path]:
    """Symlinks under ``root`` (or ``root`` itself) that point outside it. The agent chose them: left
    in place, a later edit of ``DEST/notes.md`` could write to ``~/.bashrc``."""
    candidates = [root] if root.is_symlink() else []
    if root.is_dir() and not root.is_symlink():
        for top, dirs, files in os.walk(root):
            candidates += [Path(top) / name for name in (*dirs, *files) if (Path(top) / name).is_symlink()]
    base = root.parent.resolve() if root.is_symlink() or not root.is_dir() else root.resolve()
    return [link for link in candidates if not (link.parent / link.readlink()).resolve().is_relative_to(base)]


def defuse(root: Path) -> list[str]:
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


def keep_copy(backend: Backend, *, slug: str, path: str, dest: Path) -> list[str]:
    """Copy ``path`` out of the agent to ``dest`` (which must not exist), made safe in a private (0700)
    directory beside it first: links out of it removed, set-id bits cleared, FIFOs and sockets
    dropped. Returns what was changed, per path."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=".claude-bottle-keep-", dir=dest.parent) as tmp:
        staged = Path(tmp) / "item"
        backend.copy_out(slug=slug, path=path, dest=staged)
        done = []
        for link in escaping_links(staged):
            link.unlink()
            done.append(f"removed {link}: a link out of what was copied")
        done += defuse(staged)
        staged.replace(dest)
    return [d.replace(str(staged), str(dest), 1) for d in done]
