"""Cross-backend cleanup: one combined plan, one prompt, nothing-to-do short-circuit, abort on N,
best-effort removal, and live bottles protected across backends (the seed's cleanup bug)."""

from __future__ import annotations

import json
import os
import time
from dataclasses import replace
from importlib import metadata
from pathlib import Path

import pytest

from claude_bottle import cleanup, gitwork
from claude_bottle.backends import registry
from claude_bottle.backends.base import NullProgress, SecretValues
from claude_bottle.config import load_settings
from claude_bottle.errors import BottleError
from claude_bottle.runner import SubprocessRunner
from claude_bottle.state import StateDir, process_start_time
from claude_bottle.testing import builtin_spec, fake_backend

PROMPT = "remove all of the above? [y/N]"


def up(cli, backend: str = "fake") -> str:
    result = cli("up", "--backend", backend, "--detach", "--yes", "--json")
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)["slug"]


def orphan(cli, backend: str = "fake") -> str:
    """A bottle whose `up` died before it went live: resources exist, metadata not live, pid gone."""
    slug = up(cli, backend)
    state = StateDir(load_settings().state_root / slug)
    meta = state.read()
    state.write(replace(meta, live=False, live_at=None, pid_start="not-this-process"))
    return slug


def records(home: Path, name: str = "fake") -> list[str]:
    return sorted(p.stem for p in (home / "fake-backends" / name).glob("*.json"))


def state_dirs(home: Path) -> list[str]:
    root = home / "state"
    return sorted(p.name for p in root.iterdir()) if root.is_dir() else []


def survey() -> cleanup.CleanupSurvey:
    return cleanup.survey(settings=load_settings(), runner=SubprocessRunner())


def test_nothing_to_clean_says_so_exit_0(cli, fake, fake_b):
    result = cli("cleanup")
    assert (result.exit_code, result.stdout, result.stderr) == (0, "nothing to clean up\n", "")
    result = cli("cleanup", "--json")
    assert result.exit_code == 0 and json.loads(result.stdout) == {"plan": []}


def test_one_combined_plan_from_every_backend(cli, fake, fake_b, cb_home):
    a, b = orphan(cli, "fake"), orphan(cli, "fake-b")
    plan = survey().plan
    by_backend = {(i.backend, i.kind) for i in plan.items}
    assert by_backend == {("fake", "container"), ("fake", "network"), ("fake-b", "container"),
                          ("fake-b", "network"), ("core", "state dir")}
    assert {i.slug for i in plan.items} == {a, b}
    assert [i.backend for i in plan.items][-2:] == ["core", "core"]  # state dirs last
    result = cli("cleanup", "--dry-run")
    assert result.exit_code == 0
    lines = result.stdout.splitlines()
    assert lines[0].strip() == "to remove"
    assert "backend" in lines[2] and "kind" in lines[2] and "name" in lines[2] and "detail" in lines[2]
    assert sum("claude-bottle-net-" in line for line in lines) == 2
    assert records(cb_home) and records(cb_home, "fake-b") and len(state_dirs(cb_home)) == 2  # dry run


def test_one_prompt_then_everything_removed(cli, fake, fake_b, cb_home, tty):
    orphan(cli, "fake")
    orphan(cli, "fake-b")
    result = cli("cleanup", input="y\n")
    assert result.exit_code == 0, result.output
    assert result.stderr.count(PROMPT) == 1
    assert records(cb_home) == records(cb_home, "fake-b") == state_dirs(cb_home) == []
    assert result.stdout.count("removed") == 8  # 3 + 3 resources, 2 state dirs


def test_answer_no_removes_nothing(cli, fake, cb_home, tty):
    slug = orphan(cli)
    result = cli("cleanup", input="n\n")
    assert result.exit_code == 1 and "aborted: nothing was removed" in result.stdout
    assert len(records(cb_home)) == 3 and state_dirs(cb_home) == [slug]


def test_no_tty_without_yes_refuses(cli, fake, cb_home):
    orphan(cli)
    result = cli("cleanup")
    assert result.exit_code == 1
    assert result.stderr == (
        "error: cannot ask 'remove all of the above?' without a terminal (pass --yes to go ahead)\n"
    )
    assert len(records(cb_home)) == 3


def test_yes_skips_the_prompt(cli, fake, cb_home):
    orphan(cli)
    result = cli("cleanup", "--yes", "--json")
    assert result.exit_code == 0 and PROMPT not in result.stderr
    data = json.loads(result.stdout)
    assert data["status"] == "success" and len(data["outcomes"]) == 4
    assert records(cb_home) == [] and state_dirs(cb_home) == []


def test_a_failing_item_does_not_stop_the_others(cli, cb_home):
    with fake_backend("fake"):
        slug = orphan(cli)
    with fake_backend("fake", FAIL_CLEANUP=frozenset({f"claude-bottle-{slug}"})), fake_backend("fake-b"):
        other = orphan(cli, "fake-b")
        result = cli("cleanup", "--yes")
    assert result.exit_code == 1
    # 2 + 3 resources and the other bottle's state dir go; the failed one and its state dir stay
    assert result.stdout.count("failed:") == 2 and result.stdout.count("removed") == 6
    assert records(cb_home) == [f"claude-bottle-{slug}"]
    assert records(cb_home, "fake-b") == [] and state_dirs(cb_home) == [slug]
    assert other != slug


def test_a_backend_that_raises_fails_only_its_own_items(cli, cb_home):
    def explode(self, *, plan):
        raise RuntimeError("backend exploded")

    with fake_backend("fake", cleanup=explode), fake_backend("fake-b"):
        orphan(cli, "fake")
        orphan(cli, "fake-b")
        result = cli("cleanup", "--yes", "--json")
    assert result.exit_code == 1
    data = json.loads(result.stdout)
    assert data["status"] == "partial"
    failed = [o for o in data["outcomes"] if not o["ok"]]
    assert [o["backend"] for o in failed] == ["fake", "fake", "fake", "core"]
    assert "backend exploded" in failed[0]["error"]
    assert records(cb_home, "fake-b") == [] and state_dirs(cb_home) == [failed[0]["slug"]]


def test_live_bottle_on_one_backend_is_protected_on_all(cli, fake, fake_b, cb_home, tmp_path):
    live = up(cli, "fake")
    # fake-b holds resources labelled with the same slug (say a bundle of a smolmachines bottle):
    # it must not list them, and the core must not reap the live bottle's state dir.
    settings = load_settings()
    spec = replace(builtin_spec(settings=settings), slug=live, state_dir=settings.state_root / live)
    backend_b = fake_b(runner=SubprocessRunner(), settings=settings)
    plan_b = backend_b.prepare(spec=spec, stage_dir=tmp_path)
    backend_b.launch(plan=plan_b, secrets=SecretValues(), progress=NullProgress())
    assert len(records(cb_home, "fake-b")) == 3
    found = survey()
    assert live in found.protected and not found.plan
    assert cli("cleanup").stdout == "nothing to clean up\n"


def test_launching_bottle_is_protected(cli, fake, cb_home):
    slug = orphan(cli)
    state = StateDir(cb_home / "state" / slug)
    # an `up` still running in this very process: pid alive, same start time, not live yet
    state.write(replace(state.read(), pid=os.getpid(), pid_start=process_start_time(os.getpid())))
    found = survey()
    assert slug in found.protected and not found.plan


def test_live_bottle_of_a_missing_backend_is_protected_with_a_warning(cli, cb_home):
    with fake_backend("gone"):
        slug = up(cli, "gone")
    with fake_backend("fake"):
        found = survey()
        result = cli("cleanup", "--dry-run")
    assert slug in found.protected and not found.plan
    assert f"bottle {slug} is live on backend gone, not available; kept" in result.stderr


def test_enumerate_failure_protects_that_backends_live_bottles(cli, cb_home):
    with fake_backend("fake"):
        slug = up(cli)

    def fail(self):
        raise RuntimeError("daemon unreachable")

    with (fake_backend("fake", enumerate_active=fail),
          pytest.raises(BottleError, match="cannot plan the cleanup on fake: daemon unreachable")):
        survey()  # nothing planned at all: the failure is the answer, never "nothing to clean up"
    with fake_backend("fake-b"):
        other = orphan(cli, "fake-b")
    with fake_backend("fake", enumerate_active=fail), fake_backend("fake-b"):
        found = survey()
    assert slug in found.protected and found.failed == {"fake"}
    assert any("could not list its live bottles (daemon unreachable)" in w for w in found.warnings)
    assert {i.slug for i in found.plan.items} == {other}


def test_prepare_cleanup_failure_keeps_that_backends_state_dirs(cli, cb_home):
    with fake_backend("fake"):
        kept = orphan(cli)

    def fail(self, *, protected):
        raise RuntimeError("cannot list")

    with fake_backend("fake", prepare_cleanup=fail):
        with pytest.raises(BottleError, match="cannot plan the cleanup on fake: cannot list"):
            survey()
        result = cli("cleanup", "--yes")
    assert result.exit_code == 1 and result.stdout == "" and (cb_home / "state" / kept).is_dir()
    with fake_backend("fake-b"):
        other = orphan(cli, "fake-b")
    with fake_backend("fake", prepare_cleanup=fail), fake_backend("fake-b"):
        found = survey()
        dry = cli("cleanup", "--dry-run")
    assert {i.slug for i in found.plan.items} == {other} and found.failed == {"fake"}
    assert any("could not plan its cleanup (cannot list)" in w for w in found.warnings)
    assert dry.exit_code == 1 and other in dry.stdout  # the plan of the rest, but incomplete


def test_preserved_state_dir_is_kept(cli, fake, cb_home):
    slug = orphan(cli)
    (cb_home / "state" / slug / ".preserve").touch()
    found = survey()
    assert {i.kind for i in found.plan.items} == {"container", "network"}


def test_state_dir_without_metadata_is_reaped_only_when_old(fake, cb_home):
    fresh = cb_home / "state" / "claude-fresh"
    old = cb_home / "state" / "claude-oldie"
    not_ours = cb_home / "state" / "My Notes"
    for path in (fresh, old, not_ours):
        path.mkdir(parents=True)
    past = time.time() - 3600
    os.utime(old, (past, past))
    os.utime(not_ours, (past, past))
    items = survey().plan.items
    assert [(i.backend, i.kind, i.slug, i.detail) for i in items] == [
        ("core", "state dir", "claude-oldie", "claude-oldie: no metadata")
    ]


def test_cleanup_works_with_no_backends_at_all(cli, cb_home):
    (cb_home / "state" / "claude-oldie").mkdir(parents=True)
    os.utime(cb_home / "state" / "claude-oldie", (0, 0))
    result = cli("cleanup", "--yes")
    assert result.exit_code == 0 and state_dirs(cb_home) == []


@pytest.mark.parametrize("flag", ["--dry-run", "--json"])
def test_broken_backend_does_not_break_cleanup(cli, monkeypatch, flag):
    value = "claude_bottle_no_such_module:Backend"
    eps = (metadata.EntryPoint(name="broken", group=registry.GROUP, value=value),)
    monkeypatch.setattr(metadata, "entry_points", lambda *, group: eps)
    monkeypatch.delenv(registry.ENV_BACKENDS)
    result = cli("cleanup", flag)
    assert result.exit_code == 0
    assert "warning: backend broken (?) is broken and was skipped: ModuleNotFoundError" in result.stderr


def test_unfetched_work_is_never_cleaned_up_and_says_how_to_get_it(cli, fake, cb_home, monkeypatch):
    """The git side (what counts as unfetched) is tested in test_gitwork; here: cleanup keeps the state
    dir holding it (issue 9: only `down --discard` drops the agent's work) and says what to do."""
    slug = orphan(cli)
    monkeypatch.setattr(gitwork, "unfetched_branches", lambda *, runner, state_dir: [f"claude/{slug}"])
    found = survey()
    assert found.plan.for_backend("core").items == ()
    assert any(f"unfetched claude/{slug} (claude-bottle fetch {slug})" in w
               and f"claude-bottle down {slug} --discard" in w for w in found.warnings), found.warnings
