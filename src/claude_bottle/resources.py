"""A bottle's resource caps: what its ``resources:`` block asks, else defaults drawn from the host, so a
handful of bottles cannot take all of this machine (issue 13). Pure but for reading the host's size.

* ``memory``: the agent's memory (and swap) limit; a process past it is OOM-killed inside the bottle,
  the host and other bottles unharmed. Default: a quarter of the host's memory, between 1 GiB and 8 GiB.
* ``cpus``: the agent's CPU share. Default: the host's CPUs less half a core (at least half a core).
* ``pids``: processes and threads in the agent. Default: 2048.

A disk cap is not offered yet: the engines here (overlay2 without project quotas) cannot enforce one,
and a cap that is not enforced would be a promise the bottle does not keep.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from claude_bottle.manifest.model import BottleDef

__all__ = ["DEFAULT_PIDS", "Caps", "bottle_caps", "default_caps", "format_bytes", "parse_memory"]

DEFAULT_PIDS = 2048
GIB = 1024 ** 3
_MEMORY = re.compile(r"^(\d+(?:\.\d+)?)([kmg]?)b?$", re.IGNORECASE)
_UNITS = {"": 1, "k": 1024, "m": 1024 ** 2, "g": GIB}
MIN_MEMORY = 64 * 1024 ** 2
CPU_HEADROOM = 0.5
MIN_CPUS = 0.5


@dataclass(frozen=True)
class Caps:
    memory: int   # bytes
    cpus: float
    pids: int

    def describe(self) -> str:
        return f"{format_bytes(self.memory)} memory, {self.cpus:g} CPUs, {self.pids} pids"


def parse_memory(text: str) -> int | None:
    """``4g``, ``512m``, ``1.5g`` (binary units) in bytes; ``None`` when it is not a size or below 64 MiB."""
    match = _MEMORY.match(text.strip())
    if not match:
        return None
    size = int(float(match.group(1)) * _UNITS[match.group(2).lower()])
    return size if size >= MIN_MEMORY else None


def format_bytes(size: int) -> str:
    for unit, scale in (("GiB", GIB), ("MiB", 1024 ** 2)):
        if size >= scale:
            return f"{size / scale:.3g} {unit}"
    return f"{size} B"


def _host_memory() -> int:
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError):
        return 8 * GIB


def default_caps(*, host_memory: int | None = None, host_cpus: int | None = None) -> Caps:
    memory = host_memory if host_memory is not None else _host_memory()
    cpus = host_cpus if host_cpus is not None else (os.cpu_count() or 1)
    return Caps(memory=max(GIB, min(8 * GIB, memory // 4)), cpus=max(MIN_CPUS, cpus - CPU_HEADROOM),
                pids=DEFAULT_PIDS)


def bottle_caps(bottle: BottleDef, *, defaults: Caps | None = None) -> Caps:
    """The caps a bottle runs with: its ``resources:`` where given, the host-derived default elsewhere."""
    base = defaults or default_caps()
    asked = bottle.resources
    return Caps(memory=asked.memory or base.memory, cpus=asked.cpus or base.cpus,
                pids=asked.pids or base.pids)
