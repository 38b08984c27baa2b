"""The bottle's audit log: one JSON object per line per decision, appended by every sidecar.

Fields: ``time`` (UTC, ISO 8601), ``source`` (egress, dns), ``kind`` (connect, request, tls, tcp,
connection, dns), ``method``, ``host``, ``port``, ``path`` (without its query string, which can carry
tokens), ``verdict`` (allow or deny), ``rule``, ``reason``. Header values and bodies are never logged.
Each line is one ``write`` on an ``O_APPEND`` descriptor, so the proxy and the DNS responder can share
the file without interleaving.
"""

from __future__ import annotations

import json
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from claude_bottle.sidecars.egress.inject import Scrubber

__all__ = ["AuditLog", "audit_record"]


def audit_record(
    *,
    source: str,
    kind: str,
    verdict: str,
    rule: str,
    reason: str,
    host: str | None = None,
    port: int | None = None,
    method: str | None = None,
    path: str | None = None,
    now: float | None = None,
    **extra: Any,
) -> dict[str, Any]:
    stamp = time.time() if now is None else now
    record: dict[str, Any] = {
        "time": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(stamp)) + f".{int(stamp % 1 * 1000):03d}Z",
        "source": source,
        "kind": kind,
        "method": method,
        "host": host,
        "port": port,
        "path": path.split("?", 1)[0] if path is not None else None,
        "verdict": verdict,
        "rule": rule,
        "reason": reason,
    }
    record.update(extra)
    return record


class AuditLog:
    def __init__(self, path: str, *, scrub: Callable[[dict[str, Any]], dict[str, Any]] | None = None) -> None:
        self.path = path
        # Every sidecar's lines pass the bottle's secret scrubber (issue 6): a refused name or a quoted
        # header may carry a secret, and the log lands on the host's disk.
        self.scrub = scrub if scrub is not None else Scrubber()
        self._fd: int | None = None

    def _open(self) -> int:
        if self._fd is None:
            Path(self.path).parent.mkdir(parents=True, exist_ok=True)
            self._fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        return self._fd

    def write(self, record: dict[str, Any]) -> None:
        record = self.scrub(record)
        line = (json.dumps(record, separators=(",", ":"), sort_keys=False) + "\n").encode()
        try:
            os.write(self._open(), line)
        except OSError as exc:
            # Losing an audit line must not take the proxy down, but it must not pass silently either.
            print(f"claude-bottle audit: cannot write {self.path}: {exc}", file=sys.stderr, flush=True)

    def close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None
