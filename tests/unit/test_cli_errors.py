"""The CLI's error boundary: exit codes 1 / 2 / 3 / 130, one line each, crash logs with the traceback."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from claude_bottle.testing import FakeBackend, fake_backend


def launch(cli) -> str:
    result = cli("up", "--backend", "fake", "--detach", "--yes", "--json")
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)["slug"]


def test_known_error_is_one_red_line_exit_1(cli):
    result = cli("exec", "claude-abcde", "--", "true")
    assert result.exit_code == 1
    assert result.stderr == "error: no bottle claude-abcde (see claude-bottle list)\n"
    assert result.stdout == ""


def test_long_error_stays_one_line_at_80_columns(cli):
    result = cli("down", "x" * 120)
    assert result.exit_code == 1
    assert result.stderr.count("\n") == 1 and result.stderr.startswith("error: ")


def test_usage_errors_exit_2(cli):
    assert cli("down").exit_code == 2  # neither SLUG nor --all: our UsageError
    result = cli("list", "--no-such-option")
    assert result.exit_code == 2 and "No such option" in result.stderr


class Crashing(FakeBackend):
    NAME = "fake"

    def exec_argv(self, *, slug: str, argv: list[str], interactive: bool) -> int:
        token = "hunter2-local"  # noqa: F841 - a local that must not reach the log without DEBUG
        raise RuntimeError("boom\nsecond line")


def test_unexpected_error_saves_traceback_exit_3(cli, cb_home):
    with fake_backend("fake", exec_argv=Crashing.exec_argv):
        slug = launch(cli)
        result = cli("exec", slug, "--", "true")
    assert result.exit_code == 3
    line = result.stderr.strip()
    assert line.startswith("error: unexpected RuntimeError: boom; traceback saved to ")
    log = Path(line.rsplit(" ", 1)[1])
    assert log.parent == cb_home / "logs" and log.name.startswith("crash-")
    text = log.read_text()
    assert "Traceback" in text and "RuntimeError: boom" in text and "hunter2-local" not in text


def test_debug_puts_locals_in_the_crash_log(cli, monkeypatch):
    with fake_backend("fake", exec_argv=Crashing.exec_argv):
        slug = launch(cli)
        monkeypatch.setenv("CLAUDE_BOTTLE_DEBUG", "1")
        result = cli("exec", slug, "--", "true")
    log = Path(result.stderr.strip().rsplit(" ", 1)[1])
    assert "hunter2-local" in log.read_text()


def test_ctrl_c_exits_130(cli):
    def interrupted(self, *, slug, argv, interactive):
        raise KeyboardInterrupt

    with fake_backend("fake", exec_argv=interrupted):
        slug = launch(cli)
        assert cli("exec", slug, "--", "true").exit_code == 130


def test_exec_passes_the_exit_status_through(cli, cb_home):
    with fake_backend("fake", EXEC_STATUS=7):
        slug = launch(cli)
        result = cli("exec", slug, "--", "ls", "-la")
    assert result.exit_code == 7
    record = json.loads((cb_home / "fake-backends" / "fake" / "exec.log").read_text())
    assert record == {"slug": slug, "argv": ["ls", "-la"], "interactive": False}


@pytest.mark.parametrize("argv", [["--help"], ["-h"]])
def test_help_does_not_import_rich_yaml_or_the_registry(argv):
    """--help must start fast: the heavy modules load only inside the commands that need them."""
    code = (
        "import sys\n"
        "from claude_bottle.cli.app import app\n"
        "print(sorted(m for m in ('rich', 'yaml', 'claude_bottle.backends.registry', 'importlib.metadata')"
        " if m in sys.modules))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
    shown = subprocess.run(
        [sys.executable, "-m", "claude_bottle", *argv], capture_output=True, text=True, check=False
    )
    assert shown.returncode == 0 and "cleanup" in shown.stdout
