"""Reading a bottle's egress audit log: ``<state_dir>/logs/egress.jsonl``.

The proxy appends one JSON object per decision (at least ``time``, ``method``, ``host``, ``path``,
``verdict``, ``rule``). A line that is not a JSON object (a torn last write) is skipped, not fatal:
the log is evidence, and one bad line must not hide the rest. Past its cap the log is rotated to
``egress.jsonl.1`` (one older file is kept); both readers below read that one first.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO

from claude_bottle.errors import BottleError

if TYPE_CHECKING:
    from claude_bottle.config import Settings

__all__ = ["FIELDS", "follow_records", "log_path", "parse_line", "read_records"]

FIELDS = ("time", "verdict", "method", "host", "path", "rule")


def log_path(slug: str, *, settings: Settings) -> Path:
    state = settings.state_root / slug
    if not state.is_dir():
        raise BottleError(f"no bottle {slug} in {settings.state_root}", hint="see claude-bottle list")
    return state / "logs" / "egress.jsonl"


def parse_line(line: str) -> dict[str, object] | None:
    try:
        record = json.loads(line)
    except ValueError:
        return None
    return record if isinstance(record, dict) else None


def _previous(path: Path) -> Path:
    # The sidecars rotate the log past its cap (claude_bottle.sidecars.logfile): one older file.
    return path.with_name(path.name + ".1")


def _records(data: bytes) -> Iterator[dict[str, object]]:
    for line in data.split(b"\n"):
        record = parse_line(line.decode("utf-8", errors="replace"))
        if record is not None:
            yield record


def _read_file(path: Path) -> Iterator[dict[str, object]]:
    try:
        handle = path.open(encoding="utf-8", errors="replace")
    except FileNotFoundError:
        return
    with handle:
        for line in handle:
            record = parse_line(line)
            if record is not None:
                yield record


def read_records(path: Path) -> Iterator[dict[str, object]]:
    """Every record, oldest first: the rotated file, then the current one."""
    yield from _read_file(_previous(path))
    yield from _read_file(path)


def follow_records(
    path: Path,
    *,
    keep_going: Callable[[], bool],
    poll: float = 0.5,
    sleep: Callable[[float], None] = time.sleep,
) -> Iterator[dict[str, object]]:
    """Every record, then new ones as the proxy appends them, while ``keep_going()`` (the bottle's
    state dir still exists). Only whole lines are parsed: the proxy may be mid-write. When the log is
    rotated, the rest of the file being read is finished before the new one is started."""
    yield from _read_file(_previous(path))
    handle: BinaryIO | None = None
    partial = b""
    try:
        while True:
            if handle is None:
                try:
                    handle = path.open("rb")
                except FileNotFoundError:
                    handle = None
            if handle is not None:
                chunk = handle.read()
                try:
                    moved = path.stat().st_ino != os.fstat(handle.fileno()).st_ino
                except FileNotFoundError:
                    moved = True
                if moved:  # rotated: what was written before the rename is in our handle
                    chunk += handle.read()
                    handle.close()
                    handle = None
                *lines, partial = (partial + chunk).split(b"\n")
                if moved:
                    lines.append(partial)
                    partial = b""
                yield from _records(b"\n".join(lines))
                if moved:
                    continue  # open the new file straight away
            if not keep_going():
                return
            sleep(poll)
    finally:
        if handle is not None:
            handle.close()
