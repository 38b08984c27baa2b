"""Allocation leases: how one ``prepare`` learns what another has just chosen.

Live bottles are visible on the host (their bundle network's subnet, their published ports), but a
``prepare`` that has not launched yet (a ``--dry-run``, or an ``up`` still building images) is not.
Each prepare therefore records its block and ports in ``$CLAUDE_BOTTLE_HOME/smolmachines/leases/
<slug>.json`` under an exclusive lock, and every later prepare avoids them. A lease lasts
:data:`LEASE_TTL` seconds, or as long as its bottle's state dir exists (a launched bottle). This is a
plain file in the plugin's own directory: no container, network, machine or state dir is created.
"""

from __future__ import annotations

import fcntl
import json
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path

__all__ = ["LEASE_TTL", "Lease", "LeaseBook"]

LEASE_TTL = 3600.0


@dataclass(frozen=True)
class Lease:
    slug: str
    block: str
    ports: dict[str, int] = field(default_factory=dict)
    created_at: float = 0.0


class LeaseBook:
    """The lease directory of one ``$CLAUDE_BOTTLE_HOME``."""

    def __init__(self, root: Path, state_root: Path) -> None:
        self.root = root
        self.state_root = state_root

    @contextmanager
    def locked(self) -> Iterator[None]:
        self.root.mkdir(parents=True, exist_ok=True, mode=0o700)
        with (self.root / ".lock").open("a") as fh:
            fcntl.flock(fh, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(fh, fcntl.LOCK_UN)

    def read(self) -> list[Lease]:
        leases: list[Lease] = []
        if not self.root.is_dir():
            return leases
        for path in sorted(self.root.glob("*.json")):
            try:
                data = json.loads(path.read_text())
                leases.append(Lease(slug=str(data["slug"]), block=str(data["block"]),
                                    ports={str(k): int(v) for k, v in data.get("ports", {}).items()},
                                    created_at=float(data.get("created_at", 0))))
            except (OSError, ValueError, KeyError, TypeError, AttributeError):
                continue
        return leases

    def held(self, lease: Lease, now: float) -> bool:
        return now - lease.created_at < LEASE_TTL or (self.state_root / lease.slug).is_dir()

    def active(self, *, exclude: str = "", now: float | None = None) -> list[Lease]:
        """Leases still held, except ``exclude``'s own (a re-prepare of one slug keeps its choice)."""
        t = time.time() if now is None else now
        return [ls for ls in self.read() if ls.slug != exclude and self.held(ls, t)]

    def write(self, lease: Lease) -> None:
        self.root.mkdir(parents=True, exist_ok=True, mode=0o700)
        path = self.root / f"{lease.slug}.json"
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(asdict(lease), sort_keys=True) + "\n")
        tmp.replace(path)

    def remove(self, slug: str) -> None:
        (self.root / f"{slug}.json").unlink(missing_ok=True)

    def prune(self, now: float | None = None) -> None:
        """Forget leases that are no longer held (expired dry-runs, bottles whose state is gone)."""
        t = time.time() if now is None else now
        for lease in self.read():
            if not self.held(lease, t):
                self.remove(lease.slug)
