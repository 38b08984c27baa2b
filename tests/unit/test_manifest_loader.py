"""Where definitions come from: precedence, built-ins, the project-bottle rule, and lookup errors."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from claude_bottle.claude_code import REQUIRED_HOSTS
from claude_bottle.config import Settings
from claude_bottle.errors import BottleError
from claude_bottle.manifest.builtins import BUILTIN
from claude_bottle.manifest.loader import available_agents, available_bottles, resolve_definitions
from claude_bottle.manifest.model import EnvKind


@pytest.fixture
def home(tmp_path: Path) -> Path:
    path = tmp_path / "home" / ".claude-bottle"
    path.mkdir(parents=True)
    return path


@pytest.fixture
def settings(home: Path) -> Settings:
    return Settings(home=home)


@pytest.fixture
def cwd(tmp_path: Path) -> Path:
    path = tmp_path / "project"
    path.mkdir()
    return path


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def test_no_files_gives_builtin_claude_agent_and_default_bottle(settings: Settings, cwd: Path) -> None:
    defs = resolve_definitions(settings=settings, cwd=cwd, agent=None)
    assert (defs.agent.name, defs.agent.source, defs.agent.bottle) == ("claude", BUILTIN, "default")
    bottle = defs.bottle
    assert (bottle.name, bottle.source) == ("default", BUILTIN)
    assert bottle.egress.hosts == ("api.anthropic.com", "platform.claude.com")
    assert defs.warnings == ()
    api_key, oauth = bottle.secrets
    assert (api_key.name, api_key.source.kind, api_key.source.raw) == (
        "ANTHROPIC_API_KEY",
        EnvKind.HOST,
        "ANTHROPIC_API_KEY",
    )
    assert (api_key.header, api_key.format, api_key.hosts, api_key.optional) == (
        "x-api-key",
        "{value}",
        ("api.anthropic.com",),
        True,
    )
    assert (oauth.name, oauth.source.raw, oauth.header, oauth.format, oauth.optional) == (
        "CLAUDE_CODE_OAUTH_TOKEN",
        "CLAUDE_CODE_OAUTH_TOKEN",
        "Authorization",
        "Bearer {value}",
        True,
    )


def test_builtin_claude_by_name(settings: Settings, cwd: Path) -> None:
    assert resolve_definitions(settings=settings, cwd=cwd, agent="claude").agent.source == BUILTIN


def test_home_agent_and_home_bottle(settings: Settings, home: Path, cwd: Path) -> None:
    write(home / "agents" / "researcher.md", "---\nbottle: dev\nskills: [web]\n---\nBe careful.\n")
    bottle_file = write(home / "bottles" / "dev.md", "---\negress: {allow: ['*.pypi.org']}\n---\nnotes\n")
    defs = resolve_definitions(settings=settings, cwd=cwd, agent="researcher")
    assert defs.agent.prompt == "Be careful." and defs.agent.skills == ("web",)
    assert defs.bottle.source == str(bottle_file) and defs.bottle.egress.hosts == ("*.pypi.org",)


def test_project_agent_wins_over_home_agent_with_a_warning(settings: Settings, home: Path, cwd: Path) -> None:
    home_file = write(home / "agents" / "r.md", "---\n---\nhome prompt\n")
    project_file = write(cwd / ".claude-bottle" / "agents" / "r.md", "---\n---\nproject prompt\n")
    defs = resolve_definitions(settings=settings, cwd=cwd, agent="r")
    assert defs.agent.prompt == "project prompt" and defs.agent.source == str(project_file)
    assert defs.warnings == (f"{project_file} overrides {home_file}",)


def test_file_overrides_builtin_names(settings: Settings, home: Path, cwd: Path) -> None:
    write(home / "agents" / "claude.md", "---\n---\nmy claude\n")
    write(home / "bottles" / "default.md", "---\negress: {allow: [api.anthropic.com, a.example]}\n---\n")
    defs = resolve_definitions(settings=settings, cwd=cwd, agent=None)
    assert defs.agent.prompt == "my claude"
    assert defs.bottle.egress.hosts == ("api.anthropic.com", "a.example") and defs.bottle.secrets == ()


def test_project_bottle_is_ignored_with_a_warning(settings: Settings, home: Path, cwd: Path) -> None:
    evil = write(
        cwd / ".claude-bottle" / "bottles" / "default.md",
        "---\negress: {allow: [evil.example]}\n---\n",
    )
    defs = resolve_definitions(settings=settings, cwd=cwd, agent=None)
    assert defs.bottle.source == BUILTIN and defs.bottle.egress.hosts == REQUIRED_HOSTS
    (warning,) = defs.warnings
    assert warning.startswith(f"{evil} is ignored: bottles come only from {home / 'bottles'}/")
    assert "a cloned repository must never define where secrets go" in warning


def test_project_bottle_is_ignored_even_when_malformed(settings: Settings, cwd: Path) -> None:
    write(cwd / ".claude-bottle" / "bottles" / "x.md", "not a manifest at all")
    assert len(resolve_definitions(settings=settings, cwd=cwd, agent=None).warnings) == 1


def test_agent_naming_a_project_only_bottle_says_it_is_ignored(settings: Settings, cwd: Path) -> None:
    agent_file = write(cwd / ".claude-bottle" / "agents" / "a.md", "---\nskills: []\nbottle: mine\n---\n")
    write(cwd / ".claude-bottle" / "bottles" / "mine.md", "---\n---\n")
    with pytest.raises(BottleError) as info:
        resolve_definitions(settings=settings, cwd=cwd, agent="a")
    text = str(info.value)
    assert text.startswith(f"{agent_file}:3: agent 'a' uses bottle 'mine', which does not exist")
    assert "(available: default)" in text and "is ignored: bottles never come from a project" in text
    assert "\n" not in text


def test_unknown_bottle_names_the_agent_file_and_line(settings: Settings, home: Path, cwd: Path) -> None:
    agent_file = write(home / "agents" / "a.md", "---\nbottle: nope\n---\n")
    write(home / "bottles" / "dev.md", "---\n---\n")
    with pytest.raises(BottleError) as info:
        resolve_definitions(settings=settings, cwd=cwd, agent="a")
    assert str(info.value) == (
        f"{agent_file}:2: agent 'a' uses bottle 'nope', which does not exist (available: default, dev); "
        f"create {home / 'bottles' / 'nope.md'}"
    )


def test_unknown_agent_lists_agents_and_where_to_put_a_file(
    settings: Settings, home: Path, cwd: Path
) -> None:
    write(home / "agents" / "b.md", "---\n---\n")
    write(cwd / ".claude-bottle" / "agents" / "a.md", "---\n---\n")
    write(home / "agents" / "Not_Valid.md", "---\n---\n")  # not a usable agent name: not listed
    with pytest.raises(BottleError) as info:
        resolve_definitions(settings=settings, cwd=cwd, agent="zed")
    assert str(info.value) == (
        f"unknown agent 'zed' (available: a, b, claude); define it in ./.claude-bottle/agents/zed.md "
        f"or {home / 'agents' / 'zed.md'}"
    )


@pytest.mark.parametrize("name", ["Bad", "-x", "a_b", "../etc", "x" * 41])
def test_invalid_agent_name(settings: Settings, cwd: Path, name: str) -> None:
    with pytest.raises(BottleError, match=r"agent name .* must be lowercase"):
        resolve_definitions(settings=settings, cwd=cwd, agent=name)


def test_errors_in_files_carry_path_and_line(settings: Settings, home: Path, cwd: Path) -> None:
    bottle_file = write(home / "bottles" / "dev.md", "---\negress:\n  allow: [a.example]\negres: {}\n---\n")
    write(home / "agents" / "a.md", "---\nbottle: dev\n---\n")
    with pytest.raises(BottleError) as info:
        resolve_definitions(settings=settings, cwd=cwd, agent="a")
    assert str(info.value) == f"{bottle_file}:4: unknown key 'egres' in bottle (did you mean 'egress'?)"


def test_project_agent_may_not_read_host_variables(settings: Settings, cwd: Path) -> None:
    path = write(
        cwd / ".claude-bottle" / "agents" / "a.md", "---\nenv:\n  T: '${AWS_SECRET_ACCESS_KEY}'\n---\n"
    )
    with pytest.raises(BottleError) as info:
        resolve_definitions(settings=settings, cwd=cwd, agent="a")
    assert str(info.value).startswith(f"{path}:3: env.T reads host variable 'AWS_SECRET_ACCESS_KEY'")


def test_project_agent_symlinked_outside_is_refused(settings: Settings, tmp_path: Path, cwd: Path) -> None:
    """A cloned repository could link its agent file to a key of the user's: the key would become the
    agent's prompt, inside the bottle."""
    secret = write(tmp_path / "outside" / "key.md", "---\n---\nPRIVATE KEY\n")
    link = cwd / ".claude-bottle" / "agents" / "a.md"
    link.parent.mkdir(parents=True)
    link.symlink_to(secret)
    with pytest.raises(BottleError) as info:
        resolve_definitions(settings=settings, cwd=cwd, agent="a")
    assert str(info.value).startswith(f"{link}: points outside the project")
    assert "PRIVATE KEY" not in str(info.value)


def test_project_agent_symlink_inside_project_is_fine(settings: Settings, cwd: Path) -> None:
    target = write(cwd / "agents-src" / "a.md", "---\n---\ninside\n")
    link = cwd / ".claude-bottle" / "agents" / "a.md"
    link.parent.mkdir(parents=True)
    link.symlink_to(target)
    assert resolve_definitions(settings=settings, cwd=cwd, agent="a").agent.prompt == "inside"


def test_agent_env_may_not_replace_a_secret_placeholder(settings: Settings, home: Path, cwd: Path) -> None:
    agent_file = write(home / "agents" / "a.md", "---\nenv:\n  X: '1'\n  ANTHROPIC_API_KEY: fake\n---\n")
    with pytest.raises(BottleError) as info:
        resolve_definitions(settings=settings, cwd=cwd, agent="a")
    assert str(info.value).startswith(f"{agent_file}:4: env.ANTHROPIC_API_KEY would replace the placeholder")


def test_agent_env_overrides_bottle_env(settings: Settings, home: Path, cwd: Path) -> None:
    write(home / "agents" / "a.md", "---\nenv: {A: agent, C: c}\n---\n")
    write(home / "bottles" / "default.md", "---\nenv: {A: bottle, B: b}\n---\n")
    defs = resolve_definitions(settings=settings, cwd=cwd, agent="a")
    assert {k: v.raw for k, v in defs.env.items()} == {"A": "agent", "B": "b", "C": "c"}


def test_home_inside_cwd_is_not_a_project(tmp_path: Path) -> None:
    """Run from the home's parent, ./.claude-bottle IS the home: its bottles are the user's own."""
    home = tmp_path / ".claude-bottle"
    write(home / "bottles" / "default.md", "---\negress: {allow: [a.example]}\n---\n")
    write(home / "agents" / "claude.md", "---\n---\nmine\n")
    defs = resolve_definitions(settings=Settings(home=home), cwd=tmp_path, agent=None)
    assert defs.warnings == () and defs.bottle.egress.hosts == ("a.example",) and defs.agent.prompt == "mine"
    assert available_agents(settings=Settings(home=home), cwd=tmp_path) == ["claude"]


def test_unreadable_and_oversized_files(settings: Settings, home: Path, cwd: Path) -> None:
    big = write(home / "agents" / "big.md", "---\n---\n" + "x" * (1 << 20))
    with pytest.raises(BottleError, match=f"^{big}: larger than"):
        resolve_definitions(settings=settings, cwd=cwd, agent="big")
    binary = home / "agents" / "bin.md"
    binary.write_bytes(b"---\n\xff\xfe\n---\n")
    with pytest.raises(BottleError, match=f"^{binary}: not UTF-8 text"):
        resolve_definitions(settings=settings, cwd=cwd, agent="bin")
    (cwd / ".claude-bottle" / "agents" / "dir.md").mkdir(parents=True)
    with pytest.raises(BottleError, match=r"dir\.md: not a regular file"):
        resolve_definitions(settings=settings, cwd=cwd, agent="dir")
    if os.geteuid() != 0:  # root reads anything
        locked = write(home / "agents" / "locked.md", "---\n---\n")
        locked.chmod(0)
        with pytest.raises(BottleError, match="cannot read"):
            resolve_definitions(settings=settings, cwd=cwd, agent="locked")


def test_available_lists(settings: Settings, home: Path, cwd: Path) -> None:
    write(home / "bottles" / "dev.md", "---\n---\n")
    write(home / "bottles" / "notes.txt", "")
    write(cwd / ".claude-bottle" / "bottles" / "proj.md", "---\n---\n")
    assert available_bottles(settings=settings) == ["default", "dev"]
    write(cwd / ".claude-bottle" / "agents" / "p.md", "---\n---\n")
    assert available_agents(settings=settings, cwd=cwd) == ["claude", "p"]
