"""``ui``: renderers of the frozen plans and results (golden text at 80 columns, no colour),
``confirm``'s refusal without a terminal, markup never read from user data, and phase timings."""

from __future__ import annotations

import io
import json
import sys
from pathlib import Path

import pytest
from rich.console import Console

from claude_bottle import ui
from claude_bottle.backends.base import ActiveBottle, BottlePlan, BottleSpec, Problem
from claude_bottle.backends.registry import BackendStatus
from claude_bottle.errors import BottleError
from claude_bottle.manifest.model import AgentDef, AllowRule, BottleDef, EgressDef
from claude_bottle.plan import CleanupItem, CleanupOutcome, CleanupPlan, CleanupReport


def render(renderable) -> str:
    console = Console(file=io.StringIO(), width=80, color_system=None, markup=False)
    console.print(renderable)
    return "\n".join(line.rstrip() for line in console.file.getvalue().splitlines())


def make_plan(hosts: tuple[str, ...]) -> BottlePlan:
    egress = EgressDef(tuple(AllowRule(h) for h in hosts))
    bottle = BottleDef(name="dev", source="/h/bottles/dev.md", egress=egress)
    agent = AgentDef(name="researcher", source="<built-in>", bottle="dev")
    spec = BottleSpec(slug="researcher-m3hxd", agent=agent, bottle=bottle, cwd=Path("/p"),
                      state_dir=Path("/h/state/researcher-m3hxd"))
    return BottlePlan(
        spec=spec, backend="docker", images=(("agent", "cb-agent:1"), ("sidecars", "cb-sidecars:2")),
        sidecars=("egress", "git-gate"), allowed_hosts=hosts,
        networks=("claude-bottle-net-researcher-m3hxd", "claude-bottle-egress-researcher-m3hxd"),
        details=(("subnet", "10.213.7.0/24"),),
    )


def test_hosts_summary():
    assert ui.hosts_summary(()) == "no hosts allowed"
    assert ui.hosts_summary(("a",)) == "1 host allowed (a)"
    assert ui.hosts_summary(("a", "b", "c")) == "3 hosts allowed (a, b, c)"
    assert ui.hosts_summary(("a", "b", "c", "d", "e")) == "5 hosts allowed (a, b, c, +2 more)"


def test_plan_table_golden():
    plan = make_plan(("api.anthropic.com", "*.pypi.org", "github.com", "[bold]x[/bold].example"))
    assert render(ui.plan_table(plan)) == "\n".join([
        "bottle plan",
        "slug       researcher-m3hxd",
        "agent      researcher (<built-in>)",
        "bottle     dev (/h/bottles/dev.md)",
        "backend    docker",
        "images     agent: cb-agent:1",
        "           sidecars: cb-sidecars:2",
        "sidecars   egress, git-gate",
        "egress     4 hosts allowed (api.anthropic.com, *.pypi.org, github.com, +1",
        "           more)",
        "networks   claude-bottle-net-researcher-m3hxd",
        "           claude-bottle-egress-researcher-m3hxd",
        "state dir  /h/state/researcher-m3hxd",
        "subnet     10.213.7.0/24",
    ])


def test_plan_json_reuses_the_plan():
    data = ui.plan_json(make_plan(("a.example",)))
    assert json.loads(json.dumps(data)) == data
    assert data["slug"] == "researcher-m3hxd" and data["details"] == {"subnet": "10.213.7.0/24"}
    assert data["images"] == [
        {"role": "agent", "image": "cb-agent:1"}, {"role": "sidecars", "image": "cb-sidecars:2"}
    ]


def test_cleanup_table_golden_and_markup_is_not_interpreted():
    plan = CleanupPlan((
        CleanupItem("docker", "container", "claude-bottle-x-abcde", "bottle x-abcde", slug="x-abcde"),
        CleanupItem("core", "state dir", "/h/state/[red]x[/red]-abcde", "up did not finish"),
    ))
    assert render(ui.cleanup_table(plan)) == "\n".join([
        "to remove",
        "┏━━━━━━━━━┳━━━━━━━━━━━┳━━━━━━━━━━━━━━━━━━━━━━━━━━━━━┳━━━━━━━━━━━━━━━━━━━┓",
        "┃ backend ┃ kind      ┃ name                        ┃ detail            ┃",
        "┡━━━━━━━━━╇━━━━━━━━━━━╇━━━━━━━━━━━━━━━━━━━━━━━━━━━━━╇━━━━━━━━━━━━━━━━━━━┩",
        "│ docker  │ container │ claude-bottle-x-abcde       │ bottle x-abcde    │",
        "│ core    │ state dir │ /h/state/[red]x[/red]-abcde │ up did not finish │",
        "└─────────┴───────────┴─────────────────────────────┴───────────────────┘",
    ])


def test_report_table_and_json():
    ok = CleanupItem("docker", "network", "n1", slug="s")
    bad = CleanupItem("docker", "container", "c1", slug="s")
    report = CleanupReport((CleanupOutcome(ok, True), CleanupOutcome(bad, False, "in use")))
    text = render(ui.report_table(report))
    assert "removed" in text and "failed: in use" in text
    data = ui.cleanup_json(CleanupPlan((ok, bad)), report)
    assert data["status"] == "partial" and [o["ok"] for o in data["outcomes"]] == [True, False]


def test_backends_table_shows_problems_fixes_and_broken():
    statuses = (
        BackendStatus("docker", "claude-bottle-docker", "0.1.0", facts=(("server", "20.10"),)),
        BackendStatus("smol", "claude-bottle-smol", "0.1", problems=(Problem("no smolvm", "pip install x"),)),
        BackendStatus("bad", "claude-bottle-bad", "1", error="ImportError: nope"),
    )
    text = render(ui.backends_table(statuses))
    assert "ok" in text and "server: 20.10" in text
    assert "no smolvm" in text and "fix: pip install x" in text and "broken: ImportError: nope" in text
    data = ui.backends_json(statuses)
    assert [d["status"] for d in data] == ["ok", "problems", "broken"]
    assert data[1]["problems"] == [{"summary": "no smolvm", "fix": "pip install x"}]


def test_active_table_and_age():
    bottles = [ActiveBottle("researcher-m3hxd", "docker", "researcher", 1000.0, ("egress", "git-gate"))]
    text = render(ui.active_table(bottles, now=1000.0 + 2 * 3600 + 5 * 60))
    assert "researcher-m3hxd" in text and "2h 5m" in text and "egress, git-gate" in text
    assert [ui.format_age(s) for s in (5, 300, 90000)] == ["5s", "5m", "1d 1h"]


def test_mapping_table_flattens():
    text = render(ui.mapping_table({"a": {"b": [1, 2], "c": None}, "d": [{"e": "f"}], "g": {}}))
    assert text.splitlines() == ["a.b     1, 2", "a.c     -", "d[0].e  f", "g       -"]


def test_egress_renderers():
    record = {"time": 0, "method": "GET", "host": "evil.example", "path": "/x", "verdict": "deny",
              "rule": "not in allowlist"}
    assert "evil.example" in render(ui.egress_table([record]))
    assert ui.egress_line(record).plain.endswith("deny GET evil.example /x not in allowlist")


def test_confirm(monkeypatch):
    assert ui.confirm("go?", yes=True) is True
    monkeypatch.setattr(ui, "is_interactive", lambda: False)
    with pytest.raises(BottleError, match=r"pass --yes to go ahead"):
        ui.confirm("go?")
    monkeypatch.setattr(ui, "is_interactive", lambda: True)
    for answer, expected in (("y\n", True), ("YES\n", True), ("\n", False), ("n\n", False), ("", False)):
        monkeypatch.setattr(sys, "stdin", io.StringIO(answer))
        assert ui.confirm("go?") is expected


def test_error_line_is_plain_with_markup_in_the_text(capsys):
    ui.error("bad [bold]name[/bold]")
    assert capsys.readouterr().err == "error: bad [bold]name[/bold]\n"


def test_progress_records_nested_phases_and_failures():
    ticks = iter([0.0, 1.0, 3.0, 4.0, 10.0, 10.5])
    progress = ui.ConsoleProgress(clock=lambda: next(ticks))
    with progress.phase("prepare"), progress.phase("render"):
        pass
    with pytest.raises(RuntimeError), progress.phase("launch"):
        raise RuntimeError
    assert [(t.name, t.seconds, t.depth, t.ok) for t in progress.timings] == [
        ("prepare", 4.0, 0, True), ("render", 2.0, 1, True), ("launch", 0.5, 0, False),
    ]
    text = render(ui.timings_table(progress.timings))
    assert "  render" in text and "launch (failed)" in text and "total" in text and "4.50s" in text


def test_secrets_are_never_asked_without_a_terminal(monkeypatch):
    monkeypatch.setattr(ui, "is_interactive", lambda: False)
    with pytest.raises(BottleError, match=r"cannot ask for 'API token' without a terminal"):
        ui.ask_secret("API token")
