"""The bottle's audit log: one JSON object per line per decision, appended by every sidecar.

Fields: ``time`` (UTC, ISO 8601), ``source`` (egress, dns), ``kind`` (connect, request, tls, tcp,
connection, dns), ``method``, ``host``, ``port``, ``path`` (without its query string, which can carry
tokens), ``verdict`` (allow or deny), ``rule``, ``reason``. Header values and bodies are never logged.
Each line is one ``write`` on an ``O_APPEND`` descriptor, so the proxy and the DNS responder can share
the file without interleaving.

The agent chooses what gets refused, so it chooses how much is written: the file is capped on disk
(:mod:`.logfile` rotates it to ``egress.jsonl.1``), and a flood of one identical denial is one line
plus a summary (``"repeated": N``) per window instead of N lines. Allows and denials that differ in
any field but ``time`` are each written.
"""

from __future__ import annotations

import json
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from claude_bottle.sidecars.egress.inject import Scrubber
from claude_bottle.sidecars.logfile import MAX_BYTES, RotatingFile

__all__ = ["WINDOW", "AuditLog", "audit_record"]

# How long identical denials are counted before their summary line is written.
WINDOW = 2.0


def _stamp(stamp: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(stamp)) + f".{int(stamp % 1 * 1000):03d}Z"


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
        "time": _stamp(stamp),
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


@dataclass
class _Run:
    """The denial being counted: its key, its first record, repeats since, when its window opened."""

    key: str
    record: dict[str, Any]
    started: float
    repeated: int = 0


def _key(record: dict[str, Any]) -> str | None:
    if record.get("verdict") != "deny":
        return None
    return json.dumps({k: v for k, v in record.items() if k != "time"}, sort_keys=True, default=str)


class AuditLog:
    def __init__(self, path: str, *, scrub: Callable[[dict[str, Any]], dict[str, Any]] | None = None,
                 max_bytes: int = MAX_BYTES, window: float = WINDOW, timer: bool = True,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.path = path
        # Every sidecar's lines pass the bottle's secret scrubber (issue 6): a refused name or a quoted
        # header may carry a secret, and the log lands on the host's disk.
        self.scrub = scrub if scrub is not None else Scrubber()
        self.window = window
        self._file = RotatingFile(path, max_bytes=max_bytes)
        self._clock = clock
        self._timer = timer  # off in tests that drive the clock; then the next write closes a window
        self._run: _Run | None = None
        # The proxy's event loop and a window's timer thread both write.
        self._lock = threading.Lock()

    def write(self, record: dict[str, Any]) -> None:
        record = self.scrub(record)
        key = _key(record)
        with self._lock:
            now = self._clock()
            run = self._run
            if run is not None and run.key == key and now - run.started < self.window:
                run.repeated += 1
                if run.repeated == 1 and self._timer:
                    self._schedule(run, run.started + self.window - now)
                return
            self._close_run()
            if key is not None:
                self._run = _Run(key=key, record=record, started=now)
            self._append(record)

    def flush(self) -> None:
        """Write the summary of the denial being counted, if it repeated."""
        with self._lock:
            self._close_run()

    def _schedule(self, run: _Run, delay: float) -> None:
        def fire() -> None:
            with self._lock:
                if self._run is run:
                    self._close_run()
        timer = threading.Timer(max(0.0, delay), fire)
        timer.daemon = True
        timer.start()

    def _close_run(self) -> None:
        run, self._run = self._run, None
        if run is not None and run.repeated:
            summary = dict(run.record)
            summary["time"] = _stamp(time.time())
            summary["repeated"] = run.repeated
            self._append(summary)

    def _append(self, record: dict[str, Any]) -> None:
        line = (json.dumps(record, separators=(",", ":"), sort_keys=False) + "\n").encode()
        try:
            self._file.write(line)
        except OSError as exc:
            # Losing an audit line must not take the proxy down, but it must not pass silently either.
            print(f"claude-bottle audit: cannot write {self.path}: {exc}", file=sys.stderr, flush=True)

    def close(self) -> None:
        self.flush()
        self._file.close()
