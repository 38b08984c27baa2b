"""DockerBackend's read-only methods with a recording runner: preflight's one-line problems, prepare
touching nothing but the stage dir, enumerate/cleanup selecting by label and home."""

from __future__ import annotations

import json

from claude_bottle import testing
from claude_bottle.config import Settings
from claude_bottle.runner import Result
from claude_bottle.sidecars.config import load_bundle_config
from claude_bottle.state import StateDir
from claude_bottle_docker import DockerBackend
from claude_bottle_docker.preflight import classify

READ_ONLY = {("image", "inspect"), ("ps", "--all"), ("network", "ls"), ("volume", "ls"),
             ("container", "inspect"), ("version", "--format"),
             ("rev-parse", "--show-toplevel")}  # git: is the workspace a repository (issue 5)?


def test_preflight_problems_say_what_to_do():
    denied = classify("permission denied while trying to connect to the Docker daemon socket")
    assert "docker group" in denied.fix
    daemon = classify("Cannot connect to the Docker daemon at unix:///var/run/docker.sock. "
                      "Is the docker daemon running?")
    assert daemon.summary == "Docker is not reachable at unix:///var/run/docker.sock"
    assert "systemctl start docker" in daemon.fix and "DOCKER_HOST / docker context" in daemon.fix
    other = classify("Error: something odd\n")
    assert "something odd" in other.summary


def _answer(cmd):
    if cmd.argv[1:3] == ("image", "inspect"):
        return Result(cmd.argv, 0, stdout="sha256:aaa\nsha256:bbb\n")
    return None


def test_prepare_renders_the_stage_and_creates_nothing(recorder, tmp_path):
    recorder.answer = _answer
    settings = Settings(home=tmp_path / "home")
    backend = DockerBackend(runner=recorder, settings=settings)
    spec = testing.builtin_spec(settings=settings, cwd=tmp_path, workspace=True)
    plan = backend.prepare(spec=spec, stage_dir=tmp_path / "stage")
    assert (tmp_path / "stage" / "bundle.yaml").is_file()
    assert not spec.state_dir.exists()
    assert all(c.argv[1:3] in READ_ONLY for c in recorder.calls), recorder.argvs()
    assert plan.networks == (f"claude-bottle-net-{spec.slug}", f"claude-bottle-egress-{spec.slug}")
    rows = dict(plan.details)
    assert rows["workspace"] == f"copy of {tmp_path} at /workspace"
    assert plan.data["env"]["HTTPS_PROXY"] == "http://egress:3128"
    json.dumps(dict(plan.data))  # the plan's private data must stay JSON-able (--dry-run --json)
    # Only what runs is listed: no repository, so no gate; no supervise service exists at all.
    assert plan.sidecars == ("egress",)
    cfg = load_bundle_config(tmp_path / "stage" / "bundle.yaml")
    assert [d.name for d in cfg.daemons] == ["egress", "dns"]
    # The built-in default bottle: a 403 names the file that would override it, under this home.
    assert cfg.bottle_file == str(tmp_path / "home" / "bottles" / "default.md")


def test_prepare_in_a_repository_lists_and_runs_the_gate(recorder, tmp_path):
    def answer(cmd):
        if cmd.argv[1:3] == ("rev-parse", "--show-toplevel"):
            return Result(cmd.argv, 0, stdout=f"{tmp_path}\n")
        return _answer(cmd)

    recorder.answer = answer
    settings = Settings(home=tmp_path / "home")
    spec = testing.builtin_spec(settings=settings, cwd=tmp_path, workspace=True)
    plan = DockerBackend(runner=recorder, settings=settings).prepare(spec=spec, stage_dir=tmp_path / "stage")
    assert plan.sidecars == ("egress", "git-gate")
    daemons = [d.name for d in load_bundle_config(tmp_path / "stage" / "bundle.yaml").daemons]
    assert daemons == ["egress", "dns", "git-gate"]
    assert dict(plan.details)["workspace"].startswith(f"clone of {tmp_path} (branch claude/{spec.slug})")


def test_enumerate_needs_live_metadata_and_tells_running_from_stopped(recorder, tmp_path):
    settings = Settings(home=tmp_path)
    live, dead, launching = "claude-aaaaa", "claude-bbbbb", "claude-ccccc"
    for slug in (live, dead, launching):
        state = StateDir(settings.state_root / slug)
        state.create(agent="claude", bottle="default", backend="docker", cwd=tmp_path)
        if slug != launching:
            state.mark_live(services=("egress",))

    def answer(cmd):
        if cmd.argv[1] == "ps":
            rows = [{"id": "1", "name": "a", "state": "running", "slug": live, "role": "agent"},
                    {"id": "2", "name": "b", "state": "running", "slug": live, "role": "sidecars"},
                    {"id": "3", "name": "c", "state": "exited", "slug": dead, "role": "agent"},
                    {"id": "4", "name": "d", "state": "running", "slug": dead, "role": "sidecars"},
                    {"id": "5", "name": "e", "state": "running", "slug": launching, "role": "agent"},
                    {"id": "6", "name": "f", "state": "running", "slug": launching, "role": "sidecars"}]
            return Result(cmd.argv, 0, stdout="\n".join(json.dumps(r) for r in rows))
        return None

    recorder.answer = answer
    active = DockerBackend(runner=recorder, settings=settings).enumerate_active()
    # a live bottle whose agent exited is stopped, not gone: listed, so cleanup spares its work
    assert [(a.slug, a.state) for a in active] == [(live, "running"), (dead, "stopped")]
    assert active[0].services == ("egress",)


def test_cleanup_plan_protects_and_keeps_to_our_home(recorder, tmp_path):
    settings = Settings(home=tmp_path)

    def answer(cmd):
        if cmd.argv[1] == "ps":
            assert "label=dev.claude-bottle.backend=docker" in cmd.argv
            home = str(tmp_path)
            rows = [{"id": "c" * 64, "name": "claude-bottle-x-aaaaa", "slug": "x-aaaaa", "home": home},
                    {"id": "d" * 64, "name": "claude-bottle-y-bbbbb", "slug": "y-bbbbb", "home": home},
                    {"id": "e" * 64, "name": "claude-bottle-z-ccccc", "slug": "z-ccccc", "home": "/else"}]
            return Result(cmd.argv, 0, stdout="\n".join(json.dumps(r) for r in rows))
        return None

    recorder.answer = answer
    backend = DockerBackend(runner=recorder, settings=settings)
    plan = backend.prepare_cleanup(protected=frozenset({"y-bbbbb"}))
    assert [(i.slug, i.ident) for i in plan.items] == [("x-aaaaa", "c" * 12)]
    report = backend.cleanup(plan=plan)
    assert [o.ok for o in report.outcomes] == [True]
    assert recorder.calls[-1].argv == ("docker", "rm", "--force", "--volumes", "c" * 12)
