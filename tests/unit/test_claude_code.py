"""Claude Code's seeded home (issue 9): no first-run dialog, the placeholder key approved, the agent
told how its work leaves, git identity, skills copied (and an unknown one refused)."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from claude_bottle import claude_code
from claude_bottle.errors import BottleError
from claude_bottle.manifest.builtins import default_bottle
from claude_bottle.runner import SubprocessRunner


def test_the_default_bottle_allows_what_claude_code_needs_and_quiets_the_rest() -> None:
    bottle = default_bottle()
    assert bottle.egress.hosts == claude_code.REQUIRED_HOSTS
    assert {k: v.raw for k, v in bottle.env.items()} == claude_code.QUIET_ENV
    assert not set(claude_code.OPTIONAL_HOSTS) & set(bottle.egress.hosts)


def test_claude_json_approves_the_placeholder_and_trusts_the_workspace() -> None:
    placeholder = "sk-ant-api03-" + "x" * 80 + "QWERTYUIOPASDFGHJKLZ"
    cfg = claude_code.claude_json(placeholders={"ANTHROPIC_API_KEY": placeholder})
    assert cfg["hasCompletedOnboarding"] is True
    assert cfg["customApiKeyResponses"] == {"approved": ["QWERTYUIOPASDFGHJKLZ"], "rejected": []}
    assert cfg["projects"]["/workspace"]["hasTrustDialogAccepted"] is True  # type: ignore[index]
    bare = claude_code.claude_json(placeholders={})
    assert bare["customApiKeyResponses"] == {"approved": [], "rejected": []}


def test_home_files_carry_prompt_notes_identity_and_skills(tmp_path: Path) -> None:
    skill = tmp_path / "skills" / "web-research"
    (skill / "scripts").mkdir(parents=True)
    (skill / "SKILL.md").write_text("---\nname: web-research\n---\nSearch well.\n")
    (skill / "scripts" / "run.sh").write_text("echo hi\n")
    (skill / "escape").symlink_to("/etc/passwd")
    files = claude_code.home_files(slug="dev-abcde", prompt="Be careful.", placeholders={}, git=True,
                                   git_identity=('Ada "the" Lovelace', "ada@example.org"),
                                   skills={"web-research": skill})
    notes = files[".claude/CLAUDE.md"].decode()
    assert notes.startswith("Be careful.") and "claude/dev-abcde" in notes and "git push" in notes
    assert files[".gitconfig"].decode() == (
        '[user]\n\tname = "Ada \\"the\\" Lovelace"\n\temail = "ada@example.org"\n')
    assert files[".claude/skills/web-research/SKILL.md"].startswith(b"---")
    assert ".claude/skills/web-research/scripts/run.sh" in files
    assert ".claude/skills/web-research/escape" not in files  # links could reach anything on the host
    json.loads(files[".claude.json"])


def test_a_copy_workspace_is_told_how_to_copy_out() -> None:
    notes = claude_code.session_notes(slug="dev-abcde", git=False)
    assert "claude-bottle cp dev-abcde:/workspace/" in notes and "git push" not in notes


def test_an_unknown_skill_is_one_line_naming_where_it_was_looked_for(tmp_path: Path) -> None:
    search = claude_code.skill_search(bottle_home=tmp_path / "cb", cwd=tmp_path / "proj", user_home=tmp_path)
    with pytest.raises(BottleError, match="skill 'nope' not found") as info:
        claude_code.find_skills(("nope",), search)
    assert str(tmp_path / "cb" / "skills") in str(info.value)
    (tmp_path / "proj" / ".claude" / "skills" / "ok").mkdir(parents=True)
    (tmp_path / "proj" / ".claude" / "skills" / "ok" / "SKILL.md").write_text("x")
    assert claude_code.find_skills(("ok",), search) == {"ok": tmp_path / "proj" / ".claude" / "skills" / "ok"}


def test_git_identity_comes_from_the_host_repository_or_names_the_bottle(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GIT_CONFIG_GLOBAL", str(tmp_path / "none"))
    monkeypatch.setenv("GIT_CONFIG_NOSYSTEM", "1")
    runner = SubprocessRunner()
    assert claude_code.git_identity(runner, cwd=tmp_path, slug="dev-abcde") == (
        "Claude (dev-abcde)", "claude@dev-abcde.claude-bottle.invalid")
    subprocess.run(["git", "init", "-q", str(tmp_path)], check=True)
    subprocess.run(["git", "-C", str(tmp_path), "config", "user.name", "Ada"], check=True)
    subprocess.run(["git", "-C", str(tmp_path), "config", "user.email", "ada@example.org"], check=True)
    assert claude_code.git_identity(runner, cwd=tmp_path, slug="dev-abcde") == ("Ada", "ada@example.org")


def test_the_users_own_config_is_carried_in_only_when_asked_and_never_credentials(tmp_path: Path) -> None:
    claude = tmp_path / ".claude"
    (claude / "commands" / "sub").mkdir(parents=True)
    (claude / "agents").mkdir()
    (claude / "settings.json").write_text(json.dumps({
        "model": "opus", "permissions": {"allow": ["Bash(ls:*)"]},
        "env": {"ANTHROPIC_API_KEY": "sk-ant-REAL"}, "apiKeyHelper": "/bin/get-key"}))
    (claude / ".credentials.json").write_text('{"token": "sk-ant-oat01-REAL"}')
    (claude / "commands" / "review.md").write_text("Review the diff.\n")
    (claude / "commands" / "sub" / "deep.md").write_text("Deeper.\n")
    (claude / "agents" / "tester.md").write_text("---\nname: tester\n---\nTest.\n")
    (claude / "agents" / "leak.md").symlink_to(claude / ".credentials.json")
    assert claude_code.carried_config((), user_home=tmp_path) == {}
    got = claude_code.carried_config(("settings", "commands", "agents"), user_home=tmp_path)
    settings = json.loads(got[".claude/settings.json"])
    assert settings == {"model": "opus", "permissions": {"allow": ["Bash(ls:*)"]}}
    assert set(got) == {".claude/settings.json", ".claude/commands/review.md", ".claude/commands/sub/deep.md",
                        ".claude/agents/tester.md"}
    assert all(b"REAL" not in data for data in got.values())
    only = claude_code.carried_config(("commands",), user_home=tmp_path)
    assert set(only) == {".claude/commands/review.md", ".claude/commands/sub/deep.md"}


def test_claude_config_in_an_agent_file_is_checked(tmp_path: Path) -> None:
    from claude_bottle.manifest.parse import parse_agent  # noqa: PLC0415

    text = "---\nclaude_config: [settings, commands]\n---\n"
    ok = parse_agent(name="a", path="a.md", text=text, project=False)
    assert ok.agent.claude_config == ("settings", "commands")
    with pytest.raises(BottleError, match="did you mean 'settings'"):
        parse_agent(name="a", path="a.md", text="---\nclaude_config: [setings]\n---\n", project=False)
