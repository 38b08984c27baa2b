"""The agent image in a form smolvm boots: a ``docker save`` archive, cached by image ID.

smolvm takes a Docker-save archive as ``image`` (a path), never a local Docker tag. Exporting takes
seconds for the agent image, so each archive is kept under ``$CLAUDE_BOTTLE_HOME/cache/smolmachines/
images/<image id>.tar`` and reused while the ID is the same: a rebuilt image gets a new ID, a new
archive. The export writes to a temporary name and renames, so a crash never leaves a truncated
archive under a real ID.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import TYPE_CHECKING

from claude_bottle.errors import BottleError
from claude_bottle.runner import Command

if TYPE_CHECKING:
    from claude_bottle.config import Settings
    from claude_bottle.runner import Runner

__all__ = ["archive_for", "cache_dir", "export_image", "image_id", "planned_archive", "prune_archives"]


def cache_dir(settings: Settings) -> Path:
    return settings.home / "cache" / "smolmachines" / "images"


def image_id(runner: Runner, ref: str) -> str | None:
    result = runner.run(Command(("docker", "image", "inspect", "--format", "{{.Id}}", ref), check=False,
                                timeout=30))
    out = result.stdout.strip()
    return out if result.ok and out else None


def archive_for(settings: Settings, ident: str) -> Path:
    return cache_dir(settings) / f"{ident.removeprefix('sha256:')}.tar"


def planned_archive(settings: Settings, ref: str, ident: str | None) -> Path:
    """Where the archive will be: by ID when the image exists, else a name derived from the tag that
    ``launch`` replaces once the image is built (and its ID known)."""
    if ident:
        return archive_for(settings, ident)
    return cache_dir(settings) / f"unbuilt-{re.sub(r'[^A-Za-z0-9_.-]', '_', ref)}.tar"


def export_image(runner: Runner, settings: Settings, ref: str) -> Path:
    ident = image_id(runner, ref)
    if ident is None:
        raise BottleError(f"agent image {ref} is not in the local Docker engine",
                          hint="run `claude-bottle build`")
    path = archive_for(settings, ident)
    if path.is_file() and path.stat().st_size > 0:
        return path
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.partial")
    try:
        runner.run(Command(("docker", "save", "--output", str(tmp), ref), timeout=900))
        tmp.replace(path)
    finally:
        tmp.unlink(missing_ok=True)
    return path


def prune_archives(settings: Settings, keep_id: str) -> tuple[tuple[Path, ...], int]:
    """Remove cached archives of any image but ``keep_id`` (``build --prune``); return them and the
    bytes freed. ``.partial`` files are skipped: they may be a concurrent ``launch``'s export."""
    directory = cache_dir(settings)
    keep = archive_for(settings, keep_id).name
    removed: list[Path] = []
    freed = 0
    for path in sorted(directory.glob("*.tar")) if directory.is_dir() else []:
        if path.name == keep or path.name.startswith(".") or not path.is_file():
            continue
        size = path.stat().st_size
        path.unlink(missing_ok=True)
        removed.append(path)
        freed += size
    return tuple(removed), freed
