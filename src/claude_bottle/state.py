"""Per-bottle state dirs: ``$CLAUDE_BOTTLE_HOME/state/<slug>/``.

``metadata.json`` records who made the bottle (agent, backend, cwd, started_at, the CLI's pid and its
process start time) and whether ``up`` finished launching it (``live``). A bottle whose ``up`` died
before that is an orphan. A ``.preserve`` file keeps a dir through cleanup.
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path

__all__ = ["Metadata", "StateDir", "list_state_dirs", "process_start_time"]

METADATA = "metadata.json"
PRESERVE = ".preserve"


def process_start_time(pid: int) -> str | None:
    """The kernel's start time of ``pid`` (guards against pid reuse), or None if it is gone."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # comm may contain spaces and parentheses: split after the last ')'
    fields = stat.rsplit(")", 1)[1].split()
    return fields[19] if len(fields) > 19 else None


@dataclass(frozen=True)
class Metadata:
    slug: str
    agent: str
    bottle: str
    backend: str
    cwd: str
    started_at: float
    pid: int
    pid_start: str | None
    live: bool = False
    live_at: float | None = None
    services: tuple[str, ...] = ()

    @property
    def launching(self) -> bool:
        """``up`` is still running (not live yet, its CLI process alive)."""
        return not self.live and self.pid_start is not None and process_start_time(self.pid) == self.pid_start


@dataclass(frozen=True)
class StateDir:
    path: Path

    @property
    def slug(self) -> str:
        return self.path.name

    @property
    def metadata_path(self) -> Path:
        return self.path / METADATA

    @property
    def preserved(self) -> bool:
        return (self.path / PRESERVE).exists()

    def create(self, *, agent: str, bottle: str, backend: str, cwd: Path) -> Metadata:
        self.path.mkdir(parents=True, exist_ok=False, mode=0o700)
        pid = os.getpid()
        meta = Metadata(
            slug=self.slug, agent=agent, bottle=bottle, backend=backend, cwd=str(cwd),
            started_at=time.time(), pid=pid, pid_start=process_start_time(pid),
        )
        self.write(meta)
        return meta

    def read(self) -> Metadata | None:
        try:
            data = json.loads(self.metadata_path.read_text())
            data["services"] = tuple(data.get("services", ()))
            return Metadata(**data)
        except (OSError, ValueError, TypeError):
            return None

    def write(self, meta: Metadata) -> None:
        tmp = self.metadata_path.with_suffix(".tmp")
        tmp.write_text(json.dumps(asdict(meta), indent=2) + "\n")
        tmp.replace(self.metadata_path)

    def mark_live(self, *, services: tuple[str, ...] = ()) -> Metadata:
        meta = self.read()
        if meta is None:
            raise FileNotFoundError(self.metadata_path)
        meta = replace(meta, live=True, live_at=time.time(), services=services)
        self.write(meta)
        return meta


def list_state_dirs(state_root: Path) -> list[StateDir]:
    if not state_root.is_dir():
        return []
    return [StateDir(p) for p in sorted(state_root.iterdir()) if p.is_dir()]
