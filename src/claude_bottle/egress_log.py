"""Reading a bottle's egress audit log: ``<state_dir>/logs/egress.jsonl``.

The proxy appends one JSON object per decision (at least ``time``, ``method``, ``host``, ``path``,
``verdict``, ``rule``). A line that is not a JSON object (a torn last write) is skipped, not fatal:
the log is evidence, and one bad line must not hide the rest.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING

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


def read_records(path: Path) -> Iterator[dict[str, object]]:
    if not path.is_file():
        return
    with path.open(encoding="utf-8", errors="replace") as handle:
        for line in handle:
            record = parse_line(line)
            if record is not None:
                yield record


def follow_records(
    path: Path,
    *,
    keep_going: Callable[[], bool],
    poll: float = 0.5,
    sleep: Callable[[float], None] = time.sleep,
) -> Iterator[dict[str, object]]:
    """Every record, then new ones as the proxy appends them, while ``keep_going()`` (the bottle's
    state dir still exists). Only whole lines are parsed: the proxy may be mid-write."""
    offset, partial = 0, b""
    while True:
        if path.is_file():
            with path.open("rb") as handle:
                handle.seek(offset)
                chunk = handle.read()
                offset = handle.tell()
            lines = (partial + chunk).split(b"\n")
            partial = lines.pop()
            for line in lines:
                record = parse_line(line.decode("utf-8", errors="replace"))
                if record is not None:
                    yield record
        if not keep_going():
            return
        sleep(poll)
