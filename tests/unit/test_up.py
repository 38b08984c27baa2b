"""``up``: dry-run creates nothing; a real up confirms, launches, marks live, runs the session and
tears down; every failure leaves nothing behind."""

from __future__ import annotations

import json
import tempfile
from contextlib import contextmanager
from importlib import metadata
from pathlib import Path

import pytest

from claude_bottle import gitwork, lifecycle
from claude_bottle.backends import registry
from claude_bottle.backends.base import NullProgress, Problem
from claude_bottle.config import load_settings
from claude_bottle.errors import BottleError
from claude_bottle.runner import SubprocessRunner
from claude_bottle.state import StateDir
from claude_bottle.testing import FakeBackend, fake_backend


@pytest.fixture
def tmpdir_(tmp_path, monkeypatch) -> Path:
    """A private temp dir, so "no stage dir left behind" is checked without other processes' noise."""
    path = tmp_path / "tmp"
    path.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(path))
    return path


def everything(root: Path) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in root.rglob("*")) if root.exists() else []


def fake_records(home: Path, name: str = "fake") -> list[str]:
    return sorted(p.stem for p in (home / "fake-backends" / name).glob("*.json"))


# -- dry run ---------------------------------------------------------------------------------------
def test_dry_run_creates_nothing(cli, fake, cb_home, tmpdir_):
    stages: list[Path] = []
    original = FakeBackend.prepare

    def prepare(self, *, spec, stage_dir):
        stages.append(stage_dir)
        return original(self, spec=spec, stage_dir=stage_dir)

    with fake_backend("fake", prepare=prepare):
        result = cli("up", "--dry-run", "--backend", "fake")
    assert result.exit_code == 0, result.output
    assert "2 hosts allowed (api.anthropic.com, platform.claude.com)" in result.stdout
    # Only the temporary stage dir exists afterwards, holding what prepare rendered, and it is named.
    assert len(stages) == 1 and stages[0].parent == tmpdir_ and stages[0].is_dir()
    assert str(stages[0]) in result.stderr.replace("\n", "")
    assert everything(cb_home) == [] and [p.name for p in tmpdir_.iterdir()] == [stages[0].name]
    assert (stages[0] / "fake.json").is_file()


def test_failed_dry_run_leaves_no_stage_dir(cli, fake, cb_home, tmpdir_):
    def prepare(self, *, spec, stage_dir):
        (stage_dir / "half.toml").write_text("x")
        raise BottleError("cannot render")

    with fake_backend("fake", prepare=prepare):
        result = cli("up", "--dry-run", "--backend", "fake")
    assert result.exit_code == 1
    assert everything(tmpdir_) == [] and everything(cb_home) == []


def test_dry_run_json_is_the_plan(cli, fake, cb_home):
    result = cli("up", "--dry-run", "--json", "--backend", "fake")
    assert result.exit_code == 0, result.output
    plan = json.loads(result.stdout)
    assert plan["backend"] == "fake" and plan["agent"] == "claude" and plan["bottle"] == "default"
    assert plan["slug"].startswith("claude-")
    assert plan["allowed_hosts"] == ["api.anthropic.com", "platform.claude.com"]
    assert plan["state_dir"] == str(cb_home / "state" / plan["slug"])
    assert not Path(plan["state_dir"]).exists()


def test_workspace_flags_reach_the_spec(cli, fake):
    specs = []
    original = FakeBackend.prepare

    def prepare(self, *, spec, stage_dir):
        specs.append(spec)
        return original(self, spec=spec, stage_dir=stage_dir)

    with fake_backend("fake", prepare=prepare):
        cli("up", "--dry-run", "--backend", "fake")
        cli("up", "--dry-run", "--backend", "fake", "--no-workspace", "--with-uncommitted",
            "--include-secret-file", ".env", "--include-secret-file", "keys/deploy.pem")
    assert [(s.workspace, s.with_uncommitted) for s in specs] == [(True, False), (False, True)]
    assert [s.include_secret_files for s in specs] == [(), (".env", "keys/deploy.pem")]


def test_default_backend_comes_from_the_environment(cli, fake, monkeypatch):
    monkeypatch.setenv("CLAUDE_BOTTLE_BACKEND", "fake")
    assert json.loads(cli("up", "--dry-run", "--json").stdout)["backend"] == "fake"


def test_unknown_backend_is_one_line_naming_installed(cli, fake):
    result = cli("up", "--dry-run", "--backend", "nope")
    assert result.exit_code == 1
    assert result.stderr.splitlines()[-1] == (
        "error: unknown backend 'nope' (from --backend) "
        "(installed: fake; CLAUDE_BOTTLE_BACKENDS='' limits which load)"
    )


def test_default_docker_missing_says_so(cli, fake):
    result = cli("up", "--dry-run")
    assert result.exit_code == 1 and "unknown backend 'docker' (from the default)" in result.stderr


def test_preflight_problem_stops_up_with_its_fix(cli, cb_home):
    problem = Problem("docker is not running", "start dockerd")
    with fake_backend("fake", PROBLEMS=(problem,)):
        result = cli("up", "--backend", "fake", "--yes", "--detach")
    assert result.exit_code == 1
    assert result.stderr.splitlines()[-1] == (
        "error: the fake backend is not ready: docker is not running (start dockerd)"
    )
    assert everything(cb_home) == []


def test_a_broken_backend_reraises_its_own_import_error(cli, monkeypatch):
    value = "claude_bottle_no_such_module:Backend"
    eps = (metadata.EntryPoint(name="broken", group=registry.GROUP, value=value),)
    monkeypatch.setattr(metadata, "entry_points", lambda *, group: eps)
    monkeypatch.delenv(registry.ENV_BACKENDS)
    result = cli("up", "--dry-run", "--backend", "broken")
    assert result.exit_code == 3
    assert "error: the broken backend (? ?) is broken: ModuleNotFoundError: No module named " in result.stderr
    assert cli("list").exit_code == 0  # unrelated commands still work, with a warning
    assert cli("cleanup", "--dry-run").exit_code == 0


def test_project_bottle_warning_is_printed(cli, fake, project):
    (project / ".claude-bottle" / "bottles").mkdir(parents=True)
    evil = project / ".claude-bottle" / "bottles" / "evil.md"
    evil.write_text("---\negress: {allow: [evil.example]}\n---\n")
    result = cli("up", "--dry-run", "--backend", "fake")
    assert result.exit_code == 0
    assert "warning: " in result.stderr and "evil.md is ignored" in result.stderr


# -- confirm ---------------------------------------------------------------------------------------
def test_no_tty_and_no_yes_refuses_and_creates_nothing(cli, fake, cb_home):
    result = cli("up", "--backend", "fake", "--detach")
    assert result.exit_code == 1
    assert result.stderr.splitlines()[-1] == (
        "error: cannot ask 'start this bottle?' without a terminal (pass --yes to go ahead)"
    )
    assert everything(cb_home) == []


def test_answer_no_creates_nothing(cli, fake, cb_home, tty):
    result = cli("up", "--backend", "fake", "--detach", input="n\n")
    assert result.exit_code == 1
    assert "start this bottle? [y/N]" in result.stderr and "api.anthropic.com" in result.stderr
    assert "error: aborted: nothing was created" in result.stderr
    assert everything(cb_home) == []


def test_answer_yes_launches(cli, fake, cb_home, tty):
    result = cli("up", "--backend", "fake", "--detach", input="y\n")
    assert result.exit_code == 0, result.output
    assert len(fake_records(cb_home)) == 3


# -- launch ----------------------------------------------------------------------------------------
def test_detached_up_is_live_with_metadata(cli, fake, cb_home, project):
    result = cli("up", "--backend", "fake", "--detach", "--yes", "--json")
    assert result.exit_code == 0, result.output
    out = json.loads(result.stdout)
    slug = out["slug"]
    assert {out["backend"], out["agent"]} == {"fake", "claude"} and out["services"] == ["egress"]
    meta = StateDir(cb_home / "state" / slug).read()
    assert meta is not None and meta.live and meta.backend == "fake" and meta.cwd == str(project)
    assert meta.pid > 0 and meta.pid_start
    assert fake_records(cb_home) == sorted(
        [f"claude-bottle-{slug}", f"claude-bottle-net-{slug}", f"claude-bottle-sidecars-{slug}"]
    )
    assert (cb_home / "state" / slug / "stage" / "fake.json").is_file()
    assert "timings" in result.stderr and "launch" in result.stderr  # timings go to stderr with --json


def test_launch_failure_leaves_nothing(cli, cb_home):
    with fake_backend("fake", FAIL_LAUNCH=True):
        result = cli("up", "--backend", "fake", "--detach", "--yes")
    assert result.exit_code == 1 and "error: simulated launch failure" in result.stderr
    assert fake_records(cb_home) == [] and everything(cb_home / "state") == []


def test_ctrl_c_during_launch_leaves_nothing(cli, cb_home):
    original = FakeBackend.launch

    def launch(self, *, plan, secrets, progress):
        @contextmanager
        def phase(name):
            yield
            raise KeyboardInterrupt  # after the first resource is made

        progress.phase = phase
        return original(self, plan=plan, secrets=secrets, progress=progress)

    with fake_backend("fake", launch=launch):
        result = cli("up", "--backend", "fake", "--detach", "--yes")
    assert result.exit_code == 130
    assert fake_records(cb_home) == [] and everything(cb_home / "state") == []


def test_failure_after_launch_takes_the_bottle_down(cli, cb_home, monkeypatch):
    def broken_mark_live(self, *, services=()):
        raise OSError("disk full")

    monkeypatch.setattr(StateDir, "mark_live", broken_mark_live)
    with fake_backend("fake"):
        result = cli("up", "--backend", "fake", "--detach", "--yes")
    assert result.exit_code == 3
    assert fake_records(cb_home) == [] and everything(cb_home / "state") == []


# -- session ---------------------------------------------------------------------------------------
def test_session_runs_claude_then_downs(cli, cb_home):
    with fake_backend("fake", EXEC_STATUS=5):
        result = cli("up", "--backend", "fake", "--yes")
    assert result.exit_code == 5  # the session's status
    # the session first; then down's look for changed workspace files (a copied workspace)
    record = json.loads((cb_home / "fake-backends" / "fake" / "exec.log").read_text().splitlines()[0])
    assert record["argv"] == ["claude"] and record["interactive"] is True
    assert fake_records(cb_home) == [] and everything(cb_home / "state") == []
    assert "timings" in result.stderr and "down" in result.stderr  # stdout: the result alone
    assert "timings" not in result.stdout
    assert "removed" in result.stderr


def test_session_end_keeps_the_state_dir_of_unfetched_work(cli, fake, cb_home, monkeypatch):
    """What counts as unfetched is gitwork's (tested there); here: up's down keeps it and says so."""
    monkeypatch.setattr(gitwork, "unfetched_branches", lambda *, runner, state_dir: ["claude/x"])
    result = cli("up", "--backend", "fake", "--yes")
    assert result.exit_code == 0
    assert "claude/x not fetched yet" in result.stderr and "its state dir is kept" in result.stderr
    assert fake_records(cb_home) == [] and len(everything(cb_home / "state")) > 0


def test_keep_keeps_the_bottle(cli, fake, cb_home):
    result = cli("up", "--backend", "fake", "--yes", "--keep")
    assert result.exit_code == 0
    assert len(fake_records(cb_home)) == 3
    assert "keeps running" in result.stderr


def test_session_failure_still_downs(cli, cb_home):
    def explode(self, *, slug, argv, interactive):
        if argv == ["claude"]:
            raise KeyboardInterrupt
        return 0

    with fake_backend("fake", exec_argv=explode):
        result = cli("up", "--backend", "fake", "--yes")
    assert result.exit_code == 130
    assert fake_records(cb_home) == [] and everything(cb_home / "state") == []


# -- secrets through the hooks ---------------------------------------------------------------------
class Hooks:
    def __init__(self, answers: dict[str, str]) -> None:
        self.progress = NullProgress()
        self.answers, self.asked, self.warnings = answers, [], []

    def warn(self, text):
        self.warnings.append(text)

    def confirm(self, spec, backend):
        return True

    def ask_secret(self, prompt):
        self.asked.append(prompt)
        return next(v for k, v in self.answers.items() if prompt.startswith(k))

    def launched(self, plan, bottle):
        self.bottle = bottle


def test_secret_values_reach_launch_and_nothing_on_disk(cb_home, project):
    (cb_home / "bottles").mkdir(parents=True)
    (cb_home / "bottles" / "dev.md").write_text(
        "---\negress: {allow: [example.com]}\nenv: {TOKEN: '?Your token', HOSTY: '${HOSTY_VAR}'}\n---\n"
    )
    (cb_home / "agents").mkdir()
    (cb_home / "agents" / "dev.md").write_text("---\nbottle: dev\n---\nBe careful.\n")
    seen = {}
    original = FakeBackend.launch

    def launch(self, *, plan, secrets, progress):
        seen.update(secrets.env)
        return original(self, plan=plan, secrets=secrets, progress=progress)

    hooks = Hooks({"Your token": "tok-SECRET-1234"})
    with fake_backend("fake", launch=launch):
        result = lifecycle.up(
            lifecycle.UpRequest(cwd=project, agent="dev", backend="fake", detach=True),
            settings=load_settings(), runner=SubprocessRunner(), hooks=hooks,
            environ={"HOSTY_VAR": "host-SECRET-5678"},
        )
    assert len(hooks.asked) == 1 and hooks.asked[0].startswith("Your token")
    assert seen == {"TOKEN": "tok-SECRET-1234", "HOSTY": "host-SECRET-5678"}
    assert result.bottle is not None and result.plan.spec.agent.name == "dev"
    for path in cb_home.rglob("*"):
        if path.is_file():
            assert "SECRET" not in path.read_text(errors="replace"), path


# -- evidence (issue 9) ----------------------------------------------------------------------------
def test_a_failed_start_keeps_its_logs_until_cleanup(cli, cb_home):
    original = FakeBackend.launch

    def launch(self, *, plan, secrets, progress):
        logs = plan.spec.state_dir / "logs"
        logs.mkdir(parents=True, exist_ok=True)
        (logs / "bundle-failed-start.log").write_text("proxy: cannot bind 3128\n")
        original(self, plan=plan, secrets=secrets, progress=progress)
        raise BottleError("simulated failure after the bundle wrote its logs")

    with fake_backend("fake", launch=launch):
        result = cli("up", "--backend", "fake", "--detach", "--yes")
    assert result.exit_code == 1 and "logs are kept in" in result.stderr
    kept = everything(cb_home / "state")
    assert any(p.endswith("logs/bundle-failed-start.log") for p in kept), kept
    assert not any("stage" in p for p in kept), kept  # only the evidence stays
    with fake_backend("fake"):
        assert cli("cleanup", "--yes").exit_code == 0
    assert everything(cb_home / "state") == []


def test_the_session_end_summarises_what_was_refused(cli, cb_home):
    original = FakeBackend.exec_argv

    def exec_argv(self, *, slug, argv, interactive):
        logs = cb_home / "state" / slug / "logs"
        logs.mkdir(parents=True, exist_ok=True)
        lines = [{"verdict": "deny", "host": "pypi.org"}] * 3 + [{"verdict": "deny", "host": "x.test",
                                                                   "repeated": 5},
                                                                  {"verdict": "allow", "host": "a.test"}]
        (logs / "egress.jsonl").write_text("".join(json.dumps(r) + "\n" for r in lines))
        return original(self, slug=slug, argv=argv, interactive=interactive)

    with fake_backend("fake", exec_argv=exec_argv):
        result = cli("up", "--backend", "fake", "--yes")
    said = " ".join(result.stderr.split())
    assert "egress refused during the session: x.test (5), pypi.org (3);" in said, said
    assert "a.test" not in said
    kept = next(iter((cb_home / "logs").glob("*-egress.jsonl")))
    assert str(kept) in said.replace(" ", "") or kept.name in said
