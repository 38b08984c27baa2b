"""``list``, ``down``, ``logs``, ``build``, ``backends`` and ``info`` through the CLI runner."""

from __future__ import annotations

import json
import shutil
import threading
from importlib import metadata
from pathlib import Path

from claude_bottle import egress_log
from claude_bottle.backends import registry
from claude_bottle.backends.base import Problem
from claude_bottle.testing import fake_backend


def up(cli, backend: str = "fake") -> str:
    result = cli("up", "--backend", backend, "--detach", "--yes", "--json")
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)["slug"]


def records(home: Path, name: str = "fake") -> list[str]:
    return sorted(p.stem for p in (home / "fake-backends" / name).glob("*.json"))


# -- list ------------------------------------------------------------------------------------------
def test_list_across_backends(cli, fake, fake_b):
    a, b = up(cli, "fake"), up(cli, "fake-b")
    result = cli("list")
    assert result.exit_code == 0
    assert a in result.stdout and b in result.stdout and "fake-b" in result.stdout
    data = json.loads(cli("list", "--json").stdout)
    rows = [(d["backend"], d["slug"], d["agent"]) for d in data]
    assert rows == [("fake", a, "claude"), ("fake-b", b, "claude")]


def test_list_empty_and_without_backends(cli):
    assert cli("list").stdout == "no live bottles\n"
    assert json.loads(cli("list", "--json").stdout) == []


def test_list_survives_a_failing_backend(cli, fake_b):
    slug = up(cli, "fake-b")

    def fail(self):
        raise RuntimeError("daemon gone")

    with fake_backend("fake", enumerate_active=fail):
        result = cli("list")
    # The others' bottles are shown; the answer is incomplete, so the exit status says so.
    assert result.exit_code == 1 and slug in result.stdout
    assert "warning: backend fake could not list its bottles: daemon gone" in result.stderr


def test_list_with_nothing_found_and_a_failing_backend_is_an_error(cli):
    def fail(self):
        raise RuntimeError("daemon gone")

    with fake_backend("fake", enumerate_active=fail):
        result = cli("list")
    assert (result.exit_code, result.stdout) == (1, "")
    assert result.stderr == "error: cannot list live bottles on fake: daemon gone\n"


# -- down ------------------------------------------------------------------------------------------
def test_down_removes_resources_and_state_then_is_a_noop(cli, fake, cb_home, tty):
    slug = up(cli)
    result = cli("down", slug, input="y\n")
    assert result.exit_code == 0, result.output
    assert f"take down live bottle {slug}? [y/N]" in result.stderr
    assert result.stdout == f"removed bottle {slug} (3 resources)\n"
    assert records(cb_home) == [] and not (cb_home / "state" / slug).exists()
    again = cli("down", slug)
    assert (again.exit_code, again.stdout) == (0, f"nothing to remove for {slug}\n")


def test_down_of_a_live_bottle_needs_yes_without_a_tty(cli, fake, cb_home):
    slug = up(cli)
    assert cli("down", slug).exit_code == 1
    assert len(records(cb_home)) == 3
    assert cli("down", slug, "--yes").exit_code == 0 and records(cb_home) == []


def test_down_keeps_a_preserved_state_dir(cli, fake, cb_home):
    slug = up(cli)
    (cb_home / "state" / slug / ".preserve").touch()
    result = cli("down", slug, "--yes")
    assert result.exit_code == 0 and "state dir kept (.preserve)" in result.stdout
    assert (cb_home / "state" / slug).is_dir() and records(cb_home) == []


def test_down_failure_is_reported_and_keeps_the_state(cli, cb_home):
    with fake_backend("fake"):
        slug = up(cli)
    with fake_backend("fake", FAIL_CLEANUP=frozenset({f"claude-bottle-{slug}"})):
        result = cli("down", slug, "--yes")
    assert result.exit_code == 1
    assert f"error: bottle {slug} was not fully removed" in result.stderr
    assert (cb_home / "state" / slug).is_dir() and records(cb_home) == [f"claude-bottle-{slug}"]


def test_down_without_metadata_asks_every_backend(cli, fake, fake_b, cb_home):
    slug = up(cli, "fake-b")
    shutil.rmtree(cb_home / "state" / slug)
    result = cli("down", slug)
    assert result.exit_code == 0 and records(cb_home, "fake-b") == []


def test_down_all(cli, fake, fake_b, cb_home):
    up(cli, "fake")
    up(cli, "fake-b")
    refused = cli("down", "--all")
    assert refused.exit_code == 1 and "pass --yes" in refused.stderr
    result = cli("down", "--all", "--yes")
    assert result.exit_code == 0 and result.stdout.count("removed bottle") == 2
    assert records(cb_home) == records(cb_home, "fake-b") == [] and not any((cb_home / "state").iterdir())
    assert cli("down", "--all").stdout == "no live bottles\n"


def test_down_bad_slug_and_bad_usage(cli):
    assert cli("down", "Not A Slug").exit_code == 1
    assert cli("down", "claude-abcde", "--all").exit_code == 2


# -- logs ------------------------------------------------------------------------------------------
def write_egress(home: Path, slug: str, lines: list[str]) -> None:
    path = home / "state" / slug / "logs" / "egress.jsonl"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(line + "\n" for line in lines))


DECISIONS = [
    json.dumps({"time": "2026-11-26T18:00:00Z", "method": "CONNECT", "host": "api.anthropic.com",
                "path": "", "verdict": "allow", "rule": "api.anthropic.com"}),
    "{torn",
    json.dumps({"time": 1764180000.5, "method": "GET", "host": "evil.example", "path": "/",
                "verdict": "deny", "rule": "default deny"}),
]


def test_logs_egress_table_and_json(cli, fake, cb_home):
    slug = up(cli)
    write_egress(cb_home, slug, DECISIONS)
    table = cli("logs", slug, "--egress")
    assert table.exit_code == 0
    assert "api.anthropic.com" in table.stdout and "evil.example" in table.stdout and "deny" in table.stdout
    lines = cli("logs", slug, "--egress", "--json").stdout.splitlines()
    assert [json.loads(line)["host"] for line in lines] == ["api.anthropic.com", "evil.example"]


def test_logs_egress_without_log_or_bottle(cli, fake, cb_home):
    slug = up(cli)
    assert "no egress decisions recorded" in cli("logs", slug, "--egress").stdout
    missing = cli("logs", "claude-zzzzz", "--egress")
    assert missing.exit_code == 1 and "no bottle claude-zzzzz" in missing.stderr


def test_follow_reads_whole_lines_until_the_bottle_is_gone(tmp_path):
    path = tmp_path / "egress.jsonl"
    path.write_text('{"host": "a"}\n{"host": "b"')  # the proxy is mid-write
    rounds = iter([True, False])

    def sleep(_seconds: float) -> None:
        with path.open("a") as handle:
            handle.write('}\n{"host": "c"}\n')

    got = list(egress_log.follow_records(path, keep_going=lambda: next(rounds), sleep=sleep))
    assert [r["host"] for r in got] == ["a", "b", "c"]


def test_logs_dispatches_to_the_backend(cli, fake):
    slug = up(cli)
    result = cli("logs", slug)
    assert (result.exit_code, result.stdout) == (0, f"fake logs of {slug}\n")


# -- build -----------------------------------------------------------------------------------------
def test_build_without_a_build_method(cli, fake):
    result = cli("build", "--backend", "fake")
    assert (result.exit_code, result.stdout) == (0, "the fake backend has nothing to build\n")


def test_build_calls_the_backends_build(cli):
    calls = []

    def build(self, *, progress):
        with progress.phase("agent image"):
            calls.append("built")

    with fake_backend("fake", build=build):
        result = cli("build", "--backend", "fake")
    assert result.exit_code == 0 and calls == ["built"] and "agent image" in result.stderr


def test_build_prune_passes_the_keyword(cli):
    calls = []

    def build(self, *, progress, prune=False):
        calls.append(prune)

    with fake_backend("fake", build=build):
        plain = cli("build", "--backend", "fake")
        pruned = cli("build", "--backend", "fake", "--prune")
    assert (plain.exit_code, pruned.exit_code, calls) == (0, 0, [False, True])


def test_build_prune_with_a_hook_that_predates_it(cli):
    """A plugin whose ``build`` has no ``prune`` keyword still builds; ``--prune`` is refused in one line."""
    calls = []

    def build(self, *, progress):
        calls.append("built")

    with fake_backend("fake", build=build):
        result = cli("build", "--backend", "fake", "--prune")
    assert result.exit_code != 0 and calls == [] and "cannot prune" in result.stderr


# -- backends, info --------------------------------------------------------------------------------
def test_backends_lists_ok_problem_and_broken(cli, monkeypatch):
    eps = (metadata.EntryPoint(name="broken", group=registry.GROUP, value="claude_bottle_nope:B"),)
    monkeypatch.setattr(metadata, "entry_points", lambda *, group: eps)
    monkeypatch.delenv(registry.ENV_BACKENDS)
    monkeypatch.setenv(registry.ENV_BACKEND, "fake")
    with fake_backend("fake"), fake_backend("needy", PROBLEMS=(Problem("no smolvm", "pip install it"),)):
        table = cli("backends")
        data = json.loads(cli("backends", "--json").stdout)
        monkeypatch.setenv(registry.ENV_BACKEND, "needy")
        needy = cli("backends")
    assert table.exit_code == 0  # the default backend (the one `up` uses) is ready
    assert needy.exit_code == 1 and "error: the needy backend is not ready: no smolvm" in needy.stderr
    assert "broken: ModuleNotFoundError" in table.stdout and "fix: pip install it" in table.stdout
    assert {d["name"]: d["status"] for d in data} == {"broken": "broken", "fake": "ok", "needy": "problems"}
    assert next(d for d in data if d["name"] == "fake")["distribution"] == "claude-bottle-testing"


def test_backends_with_none_installed(cli):
    result = cli("backends")
    assert result.stdout.startswith("no backends installed") and result.exit_code == 1
    assert "backend 'docker' (the default) is not installed" in result.stderr
    assert json.loads(cli("backends", "--json").stdout) == []


def test_info_masks_secrets(cli, cb_home, monkeypatch):
    monkeypatch.setenv("MY_TOKEN", "tok-VERY-SECRET")
    (cb_home / "bottles").mkdir(parents=True)
    bottle = "---\negress: {allow: [example.com]}\nenv: {T: '${MY_TOKEN}'}\n---\n"
    (cb_home / "bottles" / "dev.md").write_text(bottle)
    (cb_home / "agents").mkdir()
    (cb_home / "agents" / "dev.md").write_text("---\nbottle: dev\n---\nBe careful.\n")
    table = cli("info", "dev")
    data = json.loads(cli("info", "dev", "--json").stdout)
    assert table.exit_code == 0 and "example.com" in table.stdout and "MY_TOKEN" in table.stdout
    assert data["bottle"]["env"]["T"]["value"] == "(hidden)"
    assert "VERY-SECRET" not in table.stdout + json.dumps(data)


def test_info_unknown_agent_is_one_line(cli):
    result = cli("info", "nobody")
    assert result.exit_code == 1 and result.stderr.count("\n") == 1
    assert "unknown agent 'nobody'" in result.stderr


def test_logs_egress_follow_stops_when_the_bottle_is_gone(cli, fake, cb_home):
    slug = up(cli)
    write_egress(cb_home, slug, DECISIONS)
    timer = threading.Timer(0.2, shutil.rmtree, args=(cb_home / "state" / slug,))
    timer.start()
    try:
        result = cli("logs", slug, "--egress", "--follow", "--json")
    finally:
        timer.join()
    assert result.exit_code == 0
    assert [json.loads(line)["verdict"] for line in result.stdout.splitlines()] == ["allow", "deny"]
