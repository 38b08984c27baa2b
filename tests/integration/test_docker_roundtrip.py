"""The whole life of a docker bottle through the CLI: up --detach, exec, list, down, down again."""

from __future__ import annotations

import json

import pytest
from tests.integration.dockerkit import HOME_LABEL, Env, docker, labelled

pytestmark = pytest.mark.integration


def test_round_trip(env: Env, images: None) -> None:
    up = env.cli("up", "--detach", "--yes", "--json")
    info = json.loads(up.stdout)
    slug = info["slug"]
    try:
        assert info["backend"] == "docker" and info["agent"] == "claude"
        assert info["state_dir"] == str(env.state_dir(slug))
        meta = json.loads((env.state_dir(slug) / "metadata.json").read_text())
        assert meta["live"] is True

        # every object of the bottle is labelled from birth, with our home
        mine = labelled(f"dev.claude-bottle.slug={slug}")
        assert {k for k, _ in mine} == {"container", "network"}
        assert sorted(n for k, n in mine if k == "container") == [f"claude-bottle-{slug}",
                                                                 f"claude-bottle-sidecars-{slug}"]
        assert set(mine) <= set(labelled(f"{HOME_LABEL}={env.home}"))

        # exec: output, exit status, the agent user, the workspace copy, the prompt
        out = env.cli("exec", slug, "--", "sh", "-c", "id -un; pwd; cat hello.txt; exit 7", check=False)
        assert out.returncode == 7, out.stderr
        assert out.stdout.splitlines() == ["claude", "/workspace", "hello from the host"]
        # the built-in agent has no prompt of its own: CLAUDE.md holds only the session notes
        notes = env.cli("exec", slug, "--", "cat", "/home/claude/.claude/CLAUDE.md").stdout
        assert notes.startswith("# This session runs in a claude-bottle"), notes

        logs = env.cli("logs", slug)
        assert "claude-bottle-init: started egress" in logs.stdout + logs.stderr

        listed = env.cli("list", "--json")
        assert slug in [b["slug"] for b in json.loads(listed.stdout)]
    finally:
        down = env.cli("down", slug, "--yes", check=False)
    assert down.returncode == 0, down.stderr
    assert labelled(f"dev.claude-bottle.slug={slug}") == []
    assert not env.state_dir(slug).exists()
    again = env.cli("down", slug, "--yes", check=False)
    assert again.returncode == 0, again.stderr


def test_no_workspace_leaves_workspace_empty(env: Env, images: None) -> None:
    slug = json.loads(env.cli("up", "--detach", "--yes", "--json", "--no-workspace").stdout)["slug"]
    try:
        out = env.cli("exec", slug, "--", "ls", "-A", "/workspace")
        assert out.stdout.strip() == ""
    finally:
        env.cli("down", slug, "--yes", "--discard", check=False)
    assert labelled(f"dev.claude-bottle.slug={slug}") == []


def test_exec_into_a_missing_bottle_is_one_line(env: Env) -> None:
    out = env.cli("exec", "claude-zzzzz", "--", "true", check=False)
    assert out.returncode == 1
    assert len(out.stderr.strip().splitlines()) == 1, out.stderr


def test_docker_reports_its_version(env: Env) -> None:
    version = docker("version", "--format", "{{.Server.Version}}").strip()
    out = env.cli("backends")
    assert "docker" in out.stdout
    assert version
