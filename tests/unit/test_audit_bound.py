"""The audit log's size on the host's disk is bounded, whatever the agent makes the sidecars refuse:
the file rotates past its cap (one older file kept) and identical denials are counted, not repeated."""

from __future__ import annotations

import json
import os
import threading

import pytest

from claude_bottle import egress_log, ui
from claude_bottle.config import load_settings
from claude_bottle.errors import BottleError
from claude_bottle.sidecars.audit import AuditLog, audit_record
from claude_bottle.sidecars.config import (
    AUDIT_MAX_BYTES,
    BundleConfig,
    dump_bundle_config,
    parse_bundle_config,
)
from claude_bottle.sidecars.gitgate.hook import log_event
from claude_bottle.sidecars.logfile import RotatingFile, rotated_path


def _deny(host: str, **kw: object) -> dict[str, object]:
    return audit_record(source="dns", kind="dns", verdict="deny", rule="dns", reason="r", host=host,
                        method="A", **kw)


def _lines(path) -> list[dict[str, object]]:
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


# -- rotation --------------------------------------------------------------------------------------
def test_past_its_cap_the_log_rotates_and_keeps_one_older_file(tmp_path):
    path = tmp_path / "egress.jsonl"
    log = AuditLog(str(path), max_bytes=4096, timer=False)
    for i in range(2000):  # ~250 KB of distinct denials, ~60x the cap
        log.write(_deny(f"{i:08d}.{'a' * 63}.example"))
    log.close()
    current, older = path.stat().st_size, os.stat(rotated_path(path)).st_size
    assert current <= 4096 and older <= 4096
    names = sorted(p.name for p in tmp_path.iterdir())
    assert names == ["egress.jsonl", "egress.jsonl.1", "egress.jsonl.lock"]
    # Nothing lost at the seam: the two files hold the newest lines, in order, each whole.
    hosts = [r["host"] for r in egress_log.read_records(path)]
    assert hosts[-1].startswith("00001999.")
    numbers = [int(str(h).split(".")[0]) for h in hosts]
    assert numbers == list(range(numbers[0], 2000))


def test_writers_sharing_the_file_follow_each_others_rotation(tmp_path):
    """The proxy and the DNS responder each hold a descriptor: after one rotates, the other's lines
    must go to the new file, not keep growing the rotated one (which nobody would cap)."""
    path = tmp_path / "egress.jsonl"
    one, two = RotatingFile(str(path), max_bytes=1000), RotatingFile(str(path), max_bytes=1000)
    threads = [threading.Thread(target=lambda w=w, n=n: [w.write(f'{{"w":{n},"i":{i}}}\n'.encode())
                                                          for i in range(3000)])
               for n, w in enumerate((one, two))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    one.close()
    two.close()
    assert path.stat().st_size <= 1000 and os.stat(rotated_path(path)).st_size <= 1100
    for record in egress_log.read_records(path):
        assert set(record) == {"w", "i"}  # no torn or interleaved line


def test_git_gate_events_are_capped_too(tmp_path, monkeypatch):
    path = tmp_path / "git-gate.log"
    writer = RotatingFile(str(path), max_bytes=2048)
    monkeypatch.setattr("claude_bottle.sidecars.gitgate.hook._LOGS", {str(path): writer})
    for i in range(1000):
        log_event(str(path), event="http", line=f"GET /{i}")
    assert path.stat().st_size <= 2048 and os.stat(rotated_path(path)).st_size <= 2048


# -- collapsing ------------------------------------------------------------------------------------
def test_a_flood_of_one_denial_is_one_line_and_a_count(tmp_path):
    path = tmp_path / "egress.jsonl"
    clock = Clock()
    log = AuditLog(str(path), window=2.0, timer=False, clock=clock)
    for _ in range(10000):
        log.write(_deny("evil.example", client="10.0.0.5"))
    clock.now = 1.0
    log.write(_deny("evil.example", client="10.0.0.5"))
    log.write(_deny("other.example", client="10.0.0.5"))  # the key changes: the count is written
    log.close()
    first, summary, other = _lines(path)
    assert first["host"] == summary["host"] == "evil.example" and "repeated" not in first
    assert summary["repeated"] == 10000 and summary["client"] == "10.0.0.5"
    assert other["host"] == "other.example" and "repeated" not in other


def test_the_window_closes_on_time_and_a_new_one_opens(tmp_path):
    path = tmp_path / "egress.jsonl"
    clock = Clock()
    log = AuditLog(str(path), window=2.0, timer=False, clock=clock)
    for step in range(10):  # 5 s of one denial, 10 a second: 3 windows
        clock.now = step * 0.5
        log.write(_deny("evil.example"))
    log.close()
    assert [r.get("repeated") for r in _lines(path)] == [None, 3, None, 3, None, 1]


def test_the_summary_is_written_by_a_timer_when_the_flood_stops(tmp_path):
    path = tmp_path / "egress.jsonl"
    log = AuditLog(str(path), window=0.05)
    log.write(_deny("evil.example"))
    log.write(_deny("evil.example"))
    done = threading.Event()
    done.wait(0.5)
    assert [r.get("repeated") for r in _lines(path)] == [None, 1]
    log.close()


def test_allows_and_distinct_denials_are_each_written(tmp_path):
    path = tmp_path / "egress.jsonl"
    log = AuditLog(str(path), timer=False)
    allow = audit_record(source="egress", kind="request", verdict="allow", rule="api", reason="r",
                         host="api.example", method="GET", path="/v1")
    inject = audit_record(source="egress", kind="request", verdict="inject", rule="cred", reason="r",
                          host="api.example", secret="TOKEN")
    for record in (allow, allow, inject, inject, _deny("a.example"), _deny("b.example"),
                   _deny("a.example", client="10.0.0.6")):
        log.write(record)
    log.close()
    got = _lines(path)
    assert len(got) == 7 and not any("repeated" in r for r in got)


def test_the_table_shows_the_count(tmp_path):
    summary = {**_deny("evil.example"), "repeated": 41}
    cells = ui._egress_cells(summary)
    assert cells[-1] == "dns (repeated 41 more times)"


# -- configuration --------------------------------------------------------------------------------
def test_the_cap_travels_from_the_settings_to_the_sidecars(tmp_path, monkeypatch):
    monkeypatch.setenv("CLAUDE_BOTTLE_HOME", str(tmp_path))
    assert load_settings({}).audit_log_max_bytes is None
    assert load_settings({"CLAUDE_BOTTLE_AUDIT_LOG_MAX_BYTES": "65536"}).audit_log_max_bytes == 65536
    default = dump_bundle_config(BundleConfig(slug="s", bottle="b"))
    assert "audit_max_bytes" not in default  # configs without it stay as they were
    assert parse_bundle_config(default).audit_max_bytes == AUDIT_MAX_BYTES
    assert parse_bundle_config(dump_bundle_config(BundleConfig(slug="s", bottle="b", audit_max_bytes=65536))
                               ).audit_max_bytes == 65536


def test_a_bad_cap_is_one_clear_error(tmp_path, monkeypatch):
    monkeypatch.setenv("CLAUDE_BOTTLE_HOME", str(tmp_path))
    with pytest.raises(BottleError, match="not a positive number of bytes"):
        load_settings({"CLAUDE_BOTTLE_AUDIT_LOG_MAX_BYTES": "lots"})


# -- reading ----------------------------------------------------------------------------------------
def test_a_listing_reads_the_rotated_file_first(tmp_path):
    path = tmp_path / "egress.jsonl"
    (tmp_path / "egress.jsonl.1").write_text('{"host": "old"}\n')
    path.write_text('{"host": "new"}\n')
    assert [r["host"] for r in egress_log.read_records(path)] == ["old", "new"]


def _append(path, host: str) -> None:
    with path.open("a") as handle:
        handle.write(json.dumps({"host": host}) + "\n")


def test_follow_carries_on_across_a_rotation(tmp_path):
    path = tmp_path / "egress.jsonl"
    _append(path, "a")
    steps = iter([
        lambda: _append(path, "b"),
        lambda: (_append(path, "c"), os.replace(path, rotated_path(path)), _append(path, "d")),
        lambda: _append(path, "e"),
    ])
    rounds = iter([True, True, True, False])

    def sleep(_seconds: float) -> None:
        step = next(steps, None)
        if step is not None:
            step()

    got = list(egress_log.follow_records(path, keep_going=lambda: next(rounds), sleep=sleep))
    assert [r["host"] for r in got] == ["a", "b", "c", "d", "e"]
