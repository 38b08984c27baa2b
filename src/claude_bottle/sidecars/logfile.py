"""An append-only log file whose size on disk is bounded: past ``max_bytes`` it is renamed to
``<path>.1`` (replacing the previous one) and a new file is started, so the log never takes more than
about twice its cap on the host's disk, whatever the agent makes the sidecars log.

Several processes in the bundle append to the same file (the proxy, the DNS responder), each through
its own ``O_APPEND`` descriptor. After one of them rotates, the others' descriptors still point at
``<path>.1``; each writer notices (the path's inode changed) and reopens before its next line. The
rename itself is taken under an ``flock`` on ``<path>.lock`` and re-checked there, so two writers
crossing the cap together rotate once, not twice (which would throw the older file away).
"""

from __future__ import annotations

import fcntl
import os
from pathlib import Path

__all__ = ["MAX_BYTES", "RotatingFile", "rotated_path"]

# Tens of thousands of decisions: plenty for an audit trail, negligible on any host's disk.
MAX_BYTES = 32 * 1024 * 1024


def rotated_path(path: str | Path) -> str:
    return f"{path}.1"


class RotatingFile:
    def __init__(self, path: str, *, max_bytes: int = MAX_BYTES) -> None:
        self.path = path
        self.max_bytes = max(1, max_bytes)
        self._fd: int | None = None

    def _reopen(self) -> int:
        self.close()
        Path(self.path).parent.mkdir(parents=True, exist_ok=True)
        self._fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        return self._fd

    def _current(self) -> int:
        """Our descriptor, reopened if another writer rotated (or someone removed) the file."""
        if self._fd is None:
            return self._reopen()
        try:
            same = Path(self.path).stat().st_ino == os.fstat(self._fd).st_ino
        except FileNotFoundError:
            same = False
        return self._fd if same else self._reopen()

    def _rotate(self, incoming: int) -> int:
        with Path(f"{self.path}.lock").open("a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            try:
                size = Path(self.path).stat().st_size
            except FileNotFoundError:
                size = 0
            # Re-checked under the lock: another writer may have rotated since we looked.
            if size and size + incoming > self.max_bytes:
                Path(self.path).replace(rotated_path(self.path))
            return self._reopen()

    def write(self, data: bytes) -> None:
        """Append ``data`` in one ``write``; raises OSError like ``os.write``."""
        fd = self._current()
        if os.fstat(fd).st_size + len(data) > self.max_bytes:
            fd = self._rotate(len(data))
        os.write(fd, data)

    def close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None
