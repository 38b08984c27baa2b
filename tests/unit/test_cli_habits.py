"""CLI habits people expect: ``exec`` gives a terminal only to a terminal (``-t``/``-T`` force it),
``--version``, ``up``'s timings on stderr, tables unwrapped in a pipe, "did you mean" for a mistyped
slug, and shell completion that leaves ``--help`` fast."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import time
from dataclasses import replace
from importlib import metadata
from pathlib import Path

import pytest

from claude_bottle import ui
from claude_bottle.plan import CleanupItem, CleanupPlan
from claude_bottle.state import StateDir
from claude_bottle.testing import fake_backend

LONG = "claude-bottle-" + "very-long-name-" * 8 + "abcde"


def launch(cli) -> str:
    result = cli("up", "--backend", "fake", "--detach", "--yes", "--json")
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)["slug"]


def exec_log(home: Path) -> list[bool]:
    lines = (home / "fake-backends" / "fake" / "exec.log").read_text().splitlines()
    return [json.loads(line)["interactive"] for line in lines]


def typo(slug: str) -> str:
    return slug[:-1] + ("a" if slug[-1] != "a" else "b")


# -- exec: a terminal only for a terminal --------------------------------------------------------------
class _Stream(io.StringIO):
    def __init__(self, tty: bool) -> None:
        super().__init__()
        self._tty = tty

    def isatty(self) -> bool:
        return self._tty


@pytest.mark.parametrize(("stdin", "stdout", "expected"),
                         [(True, True, True), (True, False, False), (False, True, False),
                          (False, False, False)])
def test_a_tty_only_when_stdin_and_stdout_both_are_terminals(monkeypatch, stdin, stdout, expected):
    monkeypatch.setattr(sys, "stdin", _Stream(stdin))
    monkeypatch.setattr(sys, "stdout", _Stream(stdout))
    assert ui.wants_tty() is expected


def test_exec_tty_follows_the_terminal_unless_forced(cli, fake, cb_home, monkeypatch):
    slug = launch(cli)
    monkeypatch.setattr(ui, "wants_tty", lambda: True)
    runs = [cli("exec", slug, "--", "true"), cli("exec", "-T", slug, "--", "true"),
            cli("exec", "--no-tty", slug, "--", "true")]
    monkeypatch.setattr(ui, "wants_tty", lambda: False)
    runs += [cli("exec", slug, "--", "true"), cli("exec", "-t", slug, "--", "true"),
             cli("exec", "--tty", slug, "--", "true")]
    assert [r.exit_code for r in runs] == [0] * 6
    assert exec_log(cb_home) == [True, False, False, False, True, True]


def test_exec_options_after_slug_belong_to_the_command(cli, fake, cb_home):
    slug = launch(cli)
    assert cli("exec", slug, "-t", "ls").exit_code == 0
    record = json.loads((cb_home / "fake-backends" / "fake" / "exec.log").read_text())
    assert record["argv"] == ["-t", "ls"] and record["interactive"] is False


def test_docker_exec_asks_for_a_tty_only_when_told():
    pytest.importorskip("claude_bottle_docker")
    from claude_bottle.config import load_settings  # noqa: PLC0415
    from claude_bottle.runner import Result  # noqa: PLC0415
    from claude_bottle_docker import DockerBackend  # noqa: PLC0415

    class Runner:
        def __init__(self) -> None:
            self.interactive_calls: list[tuple[str, ...]] = []

        def run(self, cmd):
            return Result(cmd.argv, 0, '[{"State": {"Running": true}}]')

        def interactive(self, cmd) -> int:
            self.interactive_calls.append(cmd.argv)
            return 0

    runner = Runner()
    backend = DockerBackend(runner=runner, settings=load_settings())
    backend.exec_argv(slug="claude-abcde", argv=["true"], interactive=False)
    backend.exec_argv(slug="claude-abcde", argv=["true"], interactive=True)
    piped, tty = runner.interactive_calls
    assert "--interactive" in piped and "--tty" not in piped
    assert "--interactive" in tty and "--tty" in tty


# -- --version -----------------------------------------------------------------------------------------
def test_version(cli):
    result = cli("--version")
    assert (result.exit_code, result.stdout) == (0, f"claude-bottle {metadata.version('claude-bottle')}\n")


def test_version_is_fast_and_light():
    code = ("import sys\n"
            "from claude_bottle.cli.app import main\n"
            "sys.argv = ['claude-bottle', '--version']\n"
            "try:\n    main()\nexcept SystemExit:\n    pass\n"
            "heavy = ('rich', 'yaml', 'claude_bottle.backends.registry')\n"
            "print(sorted(m for m in heavy if m in sys.modules))\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.splitlines() == [f"claude-bottle {metadata.version('claude-bottle')}", "[]"]


# -- up: stdout carries the result alone -----------------------------------------------------------------
def test_up_timings_go_to_stderr(cli, fake):
    detached = cli("up", "--backend", "fake", "--detach", "--yes")
    assert detached.exit_code == 0 and "timings" in detached.stderr
    assert detached.stdout.startswith("bottle ") and detached.stdout.count("\n") == 1
    session = cli("up", "--backend", "fake", "--yes")
    assert session.exit_code == 0 and "timings" in session.stderr and "timings" not in session.stdout
    as_json = cli("up", "--backend", "fake", "--detach", "--yes", "--json")
    assert json.loads(as_json.stdout)["backend"] == "fake" and "timings" in as_json.stderr


# -- tables in a pipe ----------------------------------------------------------------------------------
def _plan() -> CleanupPlan:
    item = CleanupItem("docker", "container", "0123456789ab", f"{LONG} (sidecars)", slug="x-abcde")
    return CleanupPlan((item,))


def test_a_table_in_a_pipe_keeps_each_row_on_one_line(monkeypatch):
    monkeypatch.delenv("COLUMNS")
    monkeypatch.setattr(sys, "stdout", _Stream(False))
    ui.out().print(ui.cleanup_table(_plan()))
    rows = [line for line in sys.stdout.getvalue().splitlines() if "0123456789ab" in line]
    assert len(rows) == 1 and f"{LONG} (sidecars)" in rows[0]


def test_columns_still_pins_the_width(monkeypatch):
    monkeypatch.setenv("COLUMNS", "80")
    monkeypatch.setattr(sys, "stdout", _Stream(False))
    ui.out().print(ui.cleanup_table(_plan()))
    lines = sys.stdout.getvalue().splitlines()
    assert max(len(line) for line in lines) <= 80 and LONG not in sys.stdout.getvalue()


def test_a_terminal_keeps_its_own_width(monkeypatch):
    monkeypatch.delenv("COLUMNS")
    monkeypatch.setattr(sys, "stdout", _Stream(True))
    assert ui.out().width < ui.PIPE_WIDTH


def test_list_and_backends_in_a_pipe_do_not_fold(cli, monkeypatch, cb_home):
    monkeypatch.delenv("COLUMNS")
    long_agent = "agent-" + "x" * 90
    with fake_backend("fake"):
        state = StateDir(cb_home / "state" / launch(cli))
        meta = state.read()
        assert meta is not None
        state.write(replace(meta, agent=long_agent))
        listing = cli("list")
        monkeypatch.setenv("CLAUDE_BOTTLE_BACKEND", "fake")
        shown = cli("backends")
    assert listing.exit_code == 0 and any(long_agent in line and state.slug in line
                                          for line in listing.stdout.splitlines())
    root = str(cb_home / "fake-backends" / "fake")
    assert shown.exit_code == 0 and any(f"root: {root}" in line for line in shown.stdout.splitlines())


# -- did you mean --------------------------------------------------------------------------------------
@pytest.mark.parametrize("command", [("exec", "{}", "--", "true"), ("down", "{}", "--yes"), ("logs", "{}"),
                                     ("logs", "--egress", "{}"), ("fetch", "{}")])
def test_a_mistyped_slug_gets_a_suggestion(cli, fake, command):
    slug = launch(cli)
    result = cli(*(part.format(typo(slug)) for part in command))
    assert result.exit_code == 1
    assert result.stderr == f"error: no bottle {typo(slug)}; did you mean {slug}?\n"


def test_no_suggestion_when_nothing_is_close(cli, fake):
    launch(cli)
    result = cli("exec", "zzzzzzzz-qqqqq", "--", "true")
    assert result.stderr == "error: no bottle zzzzzzzz-qqqqq (see claude-bottle list)\n"
    again = cli("down", "zzzzzzzz-qqqqq")  # down stays idempotent: nothing there, nothing to do
    assert (again.exit_code, again.stdout) == (0, "nothing to remove for zzzzzzzz-qqqqq\n")


# -- shell completion ----------------------------------------------------------------------------------
def _run(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "claude_bottle", *args], capture_output=True, text=True,
                          check=False, env={**os.environ, **env}, timeout=60)


def test_completion_is_offered_and_completes_commands():
    shown = _run("--help")
    assert "--install-completion" in shown.stdout and "--show-completion" in shown.stdout
    done = _run(_CLAUDE_BOTTLE_COMPLETE="complete_bash", COMP_WORDS="claude-bottle ex", COMP_CWORD="1")
    assert done.returncode == 0 and done.stdout.split() == ["exec"]
    script = _run("--show-completion", "bash")
    assert script.returncode == 0 and "_claude_bottle_completion" in script.stdout


def test_help_stays_fast():
    _run("--help")  # warm the bytecode cache
    start = time.perf_counter()
    for _ in range(3):
        assert _run("--help").returncode == 0
    assert (time.perf_counter() - start) / 3 < 1.0  # ~0.05 s here; generous for a loaded CI machine
