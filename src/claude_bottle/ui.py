"""All terminal output: one stdout and one stderr Rich console, message levels, ``confirm``,
pure renderers for the frozen plans and results, and the ``Progress`` that times ``up``'s phases.

Strings from outside (names, paths, backend errors, manifest values) are never read as Rich markup:
the consoles have ``markup=False`` and our own styling goes through :class:`rich.text.Text`. Rich
honours ``NO_COLOR`` and ``COLUMNS``, which the tests pin.
"""

from __future__ import annotations

import getpass
import json
import os
import sys
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

from rich.console import Console, RenderableType
from rich.table import Table
from rich.text import Text

from claude_bottle.errors import BottleError

if TYPE_CHECKING:
    from rich.status import Status

    from claude_bottle.backends.base import ActiveBottle, BottlePlan, BottleSpec
    from claude_bottle.backends.registry import BackendStatus
    from claude_bottle.check import CheckReport
    from claude_bottle.gitwork import FetchedBranch, FetchResult
    from claude_bottle.lifecycle import DownResult
    from claude_bottle.plan import CleanupItem, CleanupPlan, CleanupReport

__all__ = [
    "ConsoleProgress",
    "Timing",
    "active_json",
    "active_table",
    "ask_secret",
    "backends_json",
    "backends_table",
    "build_json",
    "build_lines",
    "check_json",
    "check_table",
    "cleanup_json",
    "cleanup_table",
    "confirm",
    "down_json",
    "egress_line",
    "egress_table",
    "err",
    "error",
    "fetch_json",
    "fetched_line",
    "format_age",
    "hosts_summary",
    "is_interactive",
    "mapping_table",
    "note",
    "out",
    "plan_json",
    "plan_table",
    "print_json",
    "report_table",
    "say",
    "spec_table",
    "timings_json",
    "timings_table",
    "wants_tty",
    "warn",
]

_consoles: dict[tuple[object, ...], Console] = {}
# The width of a stream that is not a terminal (and no COLUMNS says otherwise): wide enough that no
# cell is folded or cut, so `claude-bottle list | grep`, `cut` or `awk` see each row on one line.
# Tables are only as wide as their cells, so this pads nothing.
PIPE_WIDTH = 10_000


def _console(*, stderr: bool) -> Console:
    # One console per stream; rebuilt when the stream or the pinned width/colour changes, because
    # Rich reads COLUMNS and NO_COLOR once, at construction (tests and CliRunner swap all three).
    stream = sys.stderr if stderr else sys.stdout
    columns, tty = os.environ.get("COLUMNS"), _isatty(stream)
    key = (stderr, id(stream), tty, columns, os.environ.get("NO_COLOR"))
    console = _consoles.get(key)
    if console is None:
        if len(_consoles) > 8:  # CliRunner makes new streams per call; don't hoard them
            _consoles.clear()
        piped = not columns and not tty
        console = Console(stderr=stderr, markup=False, highlight=False, emoji=False,
                          width=PIPE_WIDTH if piped else None)
        _consoles[key] = console
    return console


def _isatty(stream: object) -> bool:
    isatty = getattr(stream, "isatty", None)
    try:
        return bool(isatty()) if callable(isatty) else False
    except ValueError:  # a closed stream
        return False


def out() -> Console:
    return _console(stderr=False)


def err() -> Console:
    return _console(stderr=True)


# -- messages ----------------------------------------------------------------------------------------
def _line(console: Console, prefix: str, style: str, text: str) -> None:
    # soft_wrap: a one-line message stays one line however narrow the terminal
    console.print(Text.assemble((prefix, style), _inert(text)), soft_wrap=True)


def error(text: str) -> None:
    _line(err(), "error: ", "bold red", text)


def warn(text: str) -> None:
    _line(err(), "warning: ", "yellow", text)


def note(text: str) -> None:
    err().print(Text(_inert(text), style="dim"), soft_wrap=True)


def say(text: str) -> None:
    out().print(Text(_inert(text)), soft_wrap=True)


def print_json(data: object) -> None:
    # Plain write, not Rich: JSON must never be wrapped or styled.
    sys.stdout.write(json.dumps(data, indent=2, default=str) + "\n")
    sys.stdout.flush()


# -- asking --------------------------------------------------------------------------------------------
def is_interactive() -> bool:
    return sys.stdin.isatty()


def wants_tty() -> bool:
    """Whether ``exec`` gives its command a terminal: only when stdin and stdout both are one (as
    ``ssh`` decides). A pipe on either end would get the terminal's CR/LF line ends and escape
    sequences mixed into its data, and ``docker exec --tty`` refuses a stdin that is not a terminal."""
    return sys.stdin.isatty() and sys.stdout.isatty()


def confirm(question: str, *, yes: bool = False, context: RenderableType | None = None) -> bool:
    """Ask ``question [y/N]`` once on stderr, after showing ``context``. ``yes`` (``--yes``) answers
    for the user; without a terminal we refuse rather than guess, with one line saying how to go ahead."""
    if yes:
        return True
    if not is_interactive():
        raise BottleError(f"cannot ask {question!r} without a terminal", hint="pass --yes to go ahead")
    if context is not None:
        err().print(context)
    err().print(Text(f"{question} [y/N] "), end="")
    answer = sys.stdin.readline()
    return answer.strip().lower() in {"y", "yes"}


def ask_secret(prompt: str) -> str:
    """Ask for a secret on the terminal without echoing it (never logged, never stored)."""
    if not is_interactive():
        raise BottleError(
            f"cannot ask for {prompt!r} without a terminal",
            hint="run up from a terminal, or make the value '${HOST_VAR}' in the definition",
        )
    return getpass.getpass(f"{prompt}: ", stream=sys.stderr)


# -- renderers ---------------------------------------------------------------------------------------
def hosts_summary(hosts: Sequence[str], *, shown: int = 3) -> str:
    """``N hosts allowed (a, b, c, +M more)``."""
    if not hosts:
        return "no hosts allowed"
    noun = "host" if len(hosts) == 1 else "hosts"
    head = ", ".join(hosts[:shown])
    more = f", +{len(hosts) - shown} more" if len(hosts) > shown else ""
    return f"{len(hosts)} {noun} allowed ({head}{more})"


def _kv_table(rows: Sequence[tuple[str, str]], *, title: str | None = None) -> Table:
    table = Table(title=title, title_justify="left", show_header=False, box=None, padding=(0, 2, 0, 0))
    table.add_column("key", style="bold", no_wrap=True)
    table.add_column("value", overflow="fold")
    for key, value in rows:
        # Keys and values come from manifests (``info`` shows a cloned project's agent files verbatim).
        table.add_row(Text(_inert(key)), Text(_inert(value)))
    return table


def plan_rows(plan: BottlePlan) -> list[tuple[str, str]]:
    spec = plan.spec
    rows = [
        ("slug", spec.slug),
        ("agent", f"{spec.agent.name} ({spec.agent.source})"),
        ("bottle", f"{spec.bottle.name} ({spec.bottle.source})"),
        ("backend", plan.backend),
        ("images", "\n".join(f"{role}: {ref}" for role, ref in plan.images) or "-"),
        ("sidecars", ", ".join(plan.sidecars) or "-"),
        ("egress", hosts_summary(plan.allowed_hosts)),
        ("networks", "\n".join(plan.networks) or "-"),
        ("state dir", str(spec.state_dir)),
    ]
    return rows + [(str(k), str(v)) for k, v in plan.details]


def spec_table(spec: BottleSpec, backend: str, *, warnings: Sequence[str] = ()) -> Table:
    """What ``up`` is about to start, shown before it asks (and before any secret is asked for),
    with a row for each of ``warnings`` (such as no Claude Code credential reaching the bottle)."""
    bottle = spec.bottle
    secrets = [f"{s.name} -> {', '.join(s.hosts)}" for s in bottle.secrets]
    rows = [
        ("agent", f"{spec.agent.name} ({spec.agent.source})"),
        ("bottle", f"{bottle.name} ({bottle.source})"),
        ("backend", backend),
        ("egress", hosts_summary(bottle.egress.hosts)),
        ("secrets", "\n".join(secrets) or "-"),
        ("workspace", f"copy of {spec.cwd}" if spec.workspace else "none"),
        ("state dir", str(spec.state_dir)),
    ]
    table = _kv_table(rows, title=f"bottle {spec.slug}")
    for text in warnings:
        table.add_row(Text("warning", style="bold yellow"), Text(_inert(text), style="yellow"))
    return table


def plan_table(plan: BottlePlan) -> Table:
    return _kv_table(plan_rows(plan), title="bottle plan")


def plan_json(plan: BottlePlan) -> dict[str, object]:
    spec = plan.spec
    return {
        "slug": spec.slug,
        "agent": spec.agent.name,
        "bottle": spec.bottle.name,
        "backend": plan.backend,
        "images": [{"role": role, "image": ref} for role, ref in plan.images],
        "sidecars": list(plan.sidecars),
        "allowed_hosts": list(plan.allowed_hosts),
        "networks": list(plan.networks),
        "state_dir": str(spec.state_dir),
        "stage_dir": str(plan.stage_dir) if plan.stage_dir else None,
        "cwd": str(spec.cwd),
        "workspace": spec.workspace,
        "details": {str(k): str(v) for k, v in plan.details},
    }


def _item_row(item: CleanupItem) -> list[Text]:
    return [Text(item.backend), Text(item.kind), Text(item.ident), Text(item.detail)]


def cleanup_table(plan: CleanupPlan) -> Table:
    table = Table(title="to remove", title_justify="left")
    for column in ("backend", "kind", "name", "detail"):
        table.add_column(column, overflow="fold")
    for item in plan.items:
        table.add_row(*_item_row(item))
    return table


def report_table(report: CleanupReport) -> Table:
    table = Table(title="cleanup", title_justify="left")
    for column in ("backend", "kind", "name", "result"):
        table.add_column(column, overflow="fold")
    for outcome in report.outcomes:
        ok = Text("removed", style="green")
        result = ok if outcome.ok else Text(f"failed: {outcome.error}", style="red")
        table.add_row(*_item_row(outcome.item)[:3], result)
    return table


def _item_json(item: CleanupItem) -> dict[str, str]:
    return {
        "backend": item.backend, "kind": item.kind, "name": item.ident,
        "detail": item.detail, "slug": item.slug,
    }


def cleanup_json(plan: CleanupPlan, report: CleanupReport | None = None) -> dict[str, object]:
    data: dict[str, object] = {"plan": [_item_json(i) for i in plan.items]}
    if report is not None:
        data["status"] = report.status.value
        data["outcomes"] = [{**_item_json(o.item), "ok": o.ok, "error": o.error} for o in report.outcomes]
    return data


def backends_table(statuses: Sequence[BackendStatus]) -> Table:
    table = Table(title="backends", title_justify="left")
    for column in ("name", "distribution", "version", "status"):
        table.add_column(column, overflow="fold")
    for st in statuses:
        status = Text()
        if st.state == "broken":
            status.append(f"broken: {st.error}", style="red")
        elif st.state == "problems":
            for i, problem in enumerate(st.problems):
                status.append(("\n" if i else "") + f"{problem.summary}", style="yellow")
                status.append(f"\n  fix: {problem.fix}" if problem.fix else "")
        else:
            status.append("ok", style="green")
        for key, value in st.facts:
            status.append(f"\n{key}: {value}", style="dim")
        table.add_row(Text(st.name), Text(st.dist_name), Text(st.dist_version), status)
    return table


def backends_json(statuses: Sequence[BackendStatus]) -> list[dict[str, object]]:
    return [
        {
            "name": st.name,
            "distribution": st.dist_name,
            "version": st.dist_version,
            "status": st.state,
            "problems": [{"summary": p.summary, "fix": p.fix} for p in st.problems],
            "error": st.error or None,
            "describe": dict(st.facts),
        }
        for st in statuses
    ]


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}{'' if n == 1 else 's'}"


def fetched_line(branch: FetchedBranch) -> str:
    """A branch ``fetch`` wrote: where it points now and the commits it brought."""
    if branch.previous == branch.sha:
        what = "already up to date"
    elif branch.previous is None:
        ahead = "" if branch.commits is None else f", {_count(branch.commits, 'commit')} ahead of your HEAD"
        what = f"new branch{ahead}"
    else:
        brought = "moved" if branch.commits is None else _count(branch.commits, "new commit")
        what = f"{brought} since {branch.previous[:12]}"
    return f"{branch.branch} -> {branch.sha[:12]} ({what})"


def fetch_json(result: FetchResult) -> dict[str, object]:
    return {
        "repository": result.repo,
        "branches": [
            {"branch": b.branch, "sha": b.sha, "previous": b.previous, "commits": b.commits, "ok": b.ok,
             "detail": b.detail or None}
            for b in result.branches
        ],
    }


def down_json(result: DownResult, *, state_left: bool, discard: bool = False) -> dict[str, object]:
    """One bottle ``down`` handled. ``state_left``: its state dir still exists afterwards."""
    failed = result.report.failed
    if result.state_removed:
        state, why = "removed", "--discard" if discard else "no unfetched work in it"
    elif not state_left:
        state, why = "none", "there was no state dir"
    elif result.preserved:
        state, why = "kept", "it holds a .preserve file"
    elif result.error:
        state, why = "kept", "the bottle was not removed (see error)"
    elif failed:
        state, why = "kept", "some of the bottle's resources were not removed"
    else:
        state, why = "kept", "branches not fetched yet (see warnings)"
    return {
        "slug": result.slug,
        "ok": result.ok,
        "found": result.found,
        "removed": len(result.report.outcomes) - len(failed),
        "failed": [{"kind": o.item.kind, "name": o.item.ident, "error": o.error} for o in failed],
        "state": state,
        "state_reason": why,
        "warnings": list(result.warnings),
        "error": result.error or None,
    }


def _images(timings: Sequence[Timing], refs: Sequence[tuple[str, str]],
            ) -> list[tuple[str | None, str, Timing | None]]:
    # A backend times each image it builds as a phase named "build IMAGE"; an image it returned
    # without such a phase was already there.
    built = {t.name.removeprefix("build "): t for t in timings if t.name.startswith("build ")}
    rows: list[tuple[str | None, str, Timing | None]] = [(r, ref, built.pop(ref, None)) for r, ref in refs]
    return rows + [(None, ref, t) for ref, t in built.items()]


def build_lines(timings: Sequence[Timing], refs: Sequence[tuple[str, str]] = ()) -> list[str]:
    """One line per image ``build`` built or found (``refs``: the ``(role, image)`` the backend returned)."""
    lines = []
    for role, ref, t in _images(timings, refs):
        name = f"{role} image {ref}" if role else ref
        lines.append(f"{name}: already present" if t is None else
                     f"{name}: {'built' if t.ok else 'failed'} in {t.seconds:.1f}s")
    return lines


def build_json(backend: str, timings: Sequence[Timing], refs: Sequence[tuple[str, str]] = (), *,
               pruned: bool = False) -> dict[str, object]:
    images = [
        {"role": role, "image": ref, "status": "found" if t is None else ("built" if t.ok else "failed"),
         "seconds": None if t is None else round(t.seconds, 3)}
        for role, ref, t in _images(timings, refs)
    ]
    return {"backend": backend, "images": images, "pruned": pruned, "phases": timings_json(timings)}


def format_age(seconds: float) -> str:
    seconds = max(0, int(seconds))
    if seconds < 60:
        return f"{seconds}s"
    minutes, hours, days = seconds // 60, seconds // 3600, seconds // 86400
    if hours < 1:
        return f"{minutes}m"
    if days < 1:
        return f"{hours}h {minutes % 60}m"
    return f"{days}d {hours % 24}h"


def active_table(bottles: Sequence[ActiveBottle], *, now: float | None = None) -> Table:
    now = time.time() if now is None else now
    table = Table(title="live bottles", title_justify="left")
    for column in ("backend", "slug", "agent", "state", "age", "services"):
        table.add_column(column, overflow="fold")
    problems = any(b.problem for b in bottles)
    if problems:
        table.add_column("problem", overflow="fold")
    for b in bottles:
        age = format_age(now - b.started_at)
        state = Text(b.state, style="yellow" if b.state != "running" else "")
        row = [Text(b.backend), Text(b.slug), Text(b.agent), state, Text(age), Text(", ".join(b.services))]
        if problems:
            row.append(Text(_inert(b.problem), style="red"))
        table.add_row(*row)
    return table


def active_json(bottles: Sequence[ActiveBottle]) -> list[dict[str, object]]:
    return [
        {"backend": b.backend, "slug": b.slug, "agent": b.agent, "started_at": b.started_at,
         "services": list(b.services), "state": b.state, "problem": b.problem}
        for b in bottles
    ]


def check_table(report: CheckReport) -> Table:
    """``check``: PASS or FAIL per containment class, with what held or what got through."""
    table = Table(title=f"containment of {report.slug}", title_justify="left")
    for column in ("class", "result", "detail"):
        table.add_column(column, overflow="fold")
    for r in report.results:
        verdict = Text("PASS", style="green") if r.ok else Text("FAIL", style="bold red")
        table.add_row(Text(r.name), verdict, Text(_inert(r.detail)))
    return table


def check_json(report: CheckReport) -> dict[str, object]:
    return {
        "slug": report.slug, "ok": report.ok, "complete": report.complete,
        "classes": [{"name": r.name, "ok": r.ok, "detail": r.detail} for r in report.results],
        "probes": [{"class": o.cls, "probe": o.probe, "result": o.result, "ok": o.ok}
                   for o in report.observations],
    }


def _flatten(data: object, prefix: str = "") -> Iterator[tuple[str, str]]:
    if isinstance(data, Mapping):
        if not data and prefix:
            yield prefix, "-"
        for key, value in data.items():
            yield from _flatten(value, f"{prefix}.{key}" if prefix else str(key))
    elif isinstance(data, list | tuple):
        if all(not isinstance(v, Mapping | list | tuple) for v in data):
            yield prefix, ", ".join(str(v) for v in data) or "-"
        else:
            for i, value in enumerate(data):
                yield from _flatten(value, f"{prefix}[{i}]")
    else:
        yield prefix, "-" if data is None else str(data)


def mapping_table(data: Mapping[str, object], *, title: str | None = None) -> Table:
    """A nested JSON-able mapping as ``dotted.key  value`` rows (``info``)."""
    return _kv_table(list(_flatten(data)), title=title)


# -- progress --------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Timing:
    name: str
    seconds: float
    depth: int = 0
    ok: bool = True


class ConsoleProgress:
    """The :class:`~claude_bottle.backends.base.Progress` the CLI hands to backends.

    Shows the current phase (a spinner on a terminal, one line per phase otherwise) on stderr and
    records how long each phase took; phases may nest."""

    def __init__(self, *, clock: Callable[[], float] = time.perf_counter) -> None:
        self._clock = clock
        self._timings: list[Timing] = []  # in start order; each replaced when its phase ends
        self._depth = 0
        self._status: Status | None = None

    @property
    def timings(self) -> tuple[Timing, ...]:
        return tuple(self._timings)

    @contextmanager
    def phase(self, name: str) -> Iterator[None]:
        index = len(self._timings)
        self._timings.append(Timing(name, 0.0, self._depth))
        self._show(name)
        self._depth += 1
        start, ok = self._clock(), False
        try:
            yield
            ok = True
        finally:
            self._timings[index] = replace(self._timings[index], seconds=self._clock() - start, ok=ok)
            self._depth -= 1
            if self._depth == 0 and self._status is not None:
                self._status.stop()
                self._status = None

    def note(self, text: str) -> None:
        note(text)

    def _show(self, name: str) -> None:
        console = err()
        if not console.is_terminal:
            console.print(Text("  " * self._depth + f"… {name}", style="dim"), soft_wrap=True)
        elif self._status is None:
            # Rich allows one live display at a time, so nested phases retitle the same spinner.
            self._status = console.status(Text(name))
            self._status.start()
        else:
            self._status.update(Text(name))


def timings_table(timings: Sequence[Timing]) -> Table:
    table = Table(title="timings", title_justify="left", box=None)
    table.add_column("phase")
    table.add_column("time", justify="right")
    for t in timings:
        label = "  " * t.depth + t.name + ("" if t.ok else " (failed)")
        table.add_row(Text(label), Text(f"{t.seconds:.2f}s"))
    total = sum(t.seconds for t in timings if t.depth == 0)
    table.add_row(Text("total", style="bold"), Text(f"{total:.2f}s", style="bold"))
    return table


def timings_json(timings: Sequence[Timing]) -> list[dict[str, object]]:
    return [{"phase": t.name, "seconds": round(t.seconds, 3), "depth": t.depth, "ok": t.ok} for t in timings]


# -- egress audit log ------------------------------------------------------------------------------------
_EGRESS_COLUMNS = ("time", "verdict", "method", "host", "path", "rule")


def _egress_cells(record: Mapping[str, object]) -> list[str]:
    cells = []
    for key in _EGRESS_COLUMNS:
        value = record.get(key)
        if key == "time" and isinstance(value, int | float):
            value = time.strftime("%H:%M:%S", time.localtime(value))
        elif key == "time" and isinstance(value, str) and "T" in value:
            value = value.split("T", 1)[1][:8]  # ISO 8601: the date is noise in a bottle's log
        elif key == "rule" and isinstance(record.get("repeated"), int):
            # A flood of one denial is logged once plus this summary (claude_bottle.sidecars.audit).
            value = f"{value} (repeated {record['repeated']} more times)"
        cells.append("" if value is None else _inert(str(value)))
    return cells


def _inert(text: str) -> str:
    """``text`` with every control and format character but newline and tab (ESC, BEL, C1, bidi
    overrides) written as an escape. Hosts, paths and DNS names in the audit log, file names ``cp``
    warns about and branch names ``fetch`` reports are the agent's choice, and a raw escape sequence
    would reach the user's terminal (retitle it, clear it, write the clipboard)."""
    if text.isprintable():
        return text
    return "".join(ch if ch.isprintable() or ch in "\n\t" else ch.encode("unicode_escape").decode("ascii")
                   for ch in text)


def _verdict_style(verdict: str) -> str:
    # "inject": the proxy put a credential in an allowed request (issue 6); not a refusal.
    return "green" if verdict in {"allow", "allowed", "pass", "inject"} else "red"


def egress_table(records: Sequence[Mapping[str, object]]) -> Table:
    table = Table(title="egress decisions", title_justify="left")
    for column in _EGRESS_COLUMNS:
        table.add_column(column, overflow="fold", no_wrap=column in {"time", "verdict", "method"})
    for record in records:
        cells = _egress_cells(record)
        table.add_row(*(Text(c, style=_verdict_style(c) if i == 1 else "") for i, c in enumerate(cells)))
    return table


def egress_line(record: Mapping[str, object]) -> Text:
    """One record as one line, for ``logs --egress --follow``."""
    cells = _egress_cells(record)
    return Text.assemble(cells[0], " ", (cells[1], _verdict_style(cells[1])), " ", " ".join(cells[2:]))
