"""``claude-bottle cp SLUG:PATH DEST``: copy a file or directory out of a bottle's agent."""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path
from typing import Annotated

import typer

__all__ = ["cp"]


def cp(
    source: Annotated[str, typer.Argument(metavar="SLUG:PATH", help="PATH is absolute or under /workspace.")],
    dest: Annotated[Path, typer.Argument(help="Where to put it on this machine.")],
) -> None:
    """Copy PATH out of the bottle's agent to DEST (for bottles without git; with git, use fetch)."""
    from claude_bottle import lifecycle, safecopy, ui
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
        for link in safecopy.escaping_links(staged):
            link.unlink()
            ui.warn(f"removed {str(link).replace(str(staged), shown, 1)}: a link out of what was copied")
        for what in safecopy.defuse(staged):
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
