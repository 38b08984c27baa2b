"""The red team's terminal-injection finding: audit fields are the agent's choice, so the human views
of ``logs --egress`` print control characters as escapes, never raw."""

from __future__ import annotations

import io
import json

import pytest
from rich.console import Console

from claude_bottle import ui

RECORD = {"time": "2026-01-01T00:00:00.000Z", "verdict": "deny", "method": "A", "rule": "dns",
          "host": "\x1b]0;pwned\x07\x1b[2J\x1b]52;c;aGk=\x07\u202eevil\x9b31m.com", "path": "/\x1b[8m"}


def _render(renderable: object) -> str:
    buf = io.StringIO()
    Console(file=buf, width=300, color_system=None, force_terminal=False).print(renderable)
    return buf.getvalue()


def test_table_and_line_print_no_control_characters() -> None:
    for out in (_render(ui.egress_table([RECORD])), _render(ui.egress_line(RECORD))):
        assert not any(ch in out for ch in "\x1b\x07\x9b\u202e"), repr(out)
        assert "pwned" in out  # kept, only made inert


def test_ordinary_names_are_unchanged() -> None:
    record = {**RECORD, "host": "api.anthropic.com", "path": "/v1/messages"}
    out = _render(ui.egress_line(record))
    assert "api.anthropic.com /v1/messages" in out


def test_messages_print_no_control_characters(capsys: pytest.CaptureFixture[str]) -> None:
    """The same class through the one-line messages: ``cp`` warns with a link name the agent chose."""
    planted = "/workspace/\x1b]52;c;aGk=\x07link"
    ui.warn(f"removed {planted}: a link out of what was copied")
    ui.say(f"x:{planted} -> /tmp/out")
    ui.note("two\nlines\tstay")
    captured = capsys.readouterr()
    both = captured.out + captured.err
    assert "\x1b" not in both and "\x07" not in both, repr(both)
    assert "link" in both and "two\nlines" in both  # newlines stay (Rich expands the tab)


# ``info`` shows a cloned project's agent file: its prompt, skills and env values are the project's choice.
PLANTED = "\x1b]0;pwned\x07\x1b[2J\u202eevil"
IN_YAML = r'"\e]0;pwned\a\e[2J\u202Eevil"'  # PLANTED as YAML escapes: YAML refuses a raw ESC
RAW = ("\x1b", "\x07", "\u202e")


def _project_agent(project, front: str, body: str) -> None:
    agents = project / ".claude-bottle" / "agents"
    agents.mkdir(parents=True)
    (agents / "evil.md").write_text(f"---\n{front}---\n{body}\n", encoding="utf-8")


def test_info_prints_no_control_characters(cli, project) -> None:
    _project_agent(project, f"skills: [review]\nenv: {{BANNER: {IN_YAML}, X: \"a\u202eb\"}}\n",
                   f"Be careful.{PLANTED}\nSecond line.")
    table = cli("info", "evil")
    assert table.exit_code == 0, table.output
    assert not any(ch in table.stdout + table.stderr for ch in RAW), repr(table.stdout)
    assert "pwned" in table.stdout and "Second line." in table.stdout  # shown, only made inert

    as_json = cli("info", "evil", "--json")
    assert not any(ch in as_json.stdout for ch in RAW), repr(as_json.stdout)  # json.dumps escapes them
    data = json.loads(as_json.stdout)
    assert data["agent"]["env"]["BANNER"]["value"] == PLANTED and PLANTED in data["agent"]["prompt"]


def test_info_refusing_a_planted_skill_prints_no_control_characters(cli, project) -> None:
    _project_agent(project, f"skills: [ok, {IN_YAML}]\n", "Hi.")
    result = cli("info", "evil")
    assert result.exit_code != 0 and "skill" in result.stderr, result.output
    assert not any(ch in result.stdout + result.stderr for ch in RAW), repr(result.stderr)
