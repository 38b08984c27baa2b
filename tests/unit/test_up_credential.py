"""``up``'s confirm warns when no Claude Code credential will reach the bottle: the bottle declares
neither ``ANTHROPIC_API_KEY`` nor ``CLAUDE_CODE_OAUTH_TOKEN``, or the host variables it reads them from
are unset."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from claude_bottle.backends.base import BottleSpec
from claude_bottle.cli.up import _credential_warning
from claude_bottle.manifest.model import AgentDef, BottleDef, EnvKind, EnvValue, SecretDef

SLUG = "coder-zz9yx"
CREDENTIALS = ("ANTHROPIC_API_KEY", "CLAUDE_CODE_OAUTH_TOKEN")


@pytest.fixture
def no_credentials(monkeypatch):
    for name in CREDENTIALS:
        monkeypatch.delenv(name, raising=False)


def test_confirm_table_warns_without_a_credential(cli, fake, tty, no_credentials):
    result = cli("up", "--backend", "fake", "--detach", input="n\n")
    assert result.exit_code == 1
    shown = " ".join(result.stderr.split())  # the table may fold the row
    assert ("warning no Claude Code credential will reach the bottle: ANTHROPIC_API_KEY and "
            "CLAUDE_CODE_OAUTH_TOKEN are not set on this host; export one") in shown
    assert "start this bottle? [y/N]" in result.stderr


def test_yes_still_warns_without_a_credential(cli, fake, no_credentials):
    result = cli("up", "--backend", "fake", "--detach", "--yes", "--json")
    assert result.exit_code == 0
    assert "warning: no Claude Code credential" in result.stderr
    json.loads(result.stdout)


@pytest.mark.parametrize("name", CREDENTIALS)
def test_no_warning_with_either_credential(cli, fake, tty, no_credentials, monkeypatch, name):
    monkeypatch.setenv(name, "sk-test")
    result = cli("up", "--backend", "fake", "--detach", input="n\n")
    assert "api.anthropic.com" in result.stderr and "no Claude Code credential" not in result.stderr


def test_a_bottle_without_either_credential_is_warned_about(cli, fake, tty, cb_home, monkeypatch):
    monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-test")
    (cb_home / "bottles").mkdir(parents=True)
    (cb_home / "bottles" / "default.md").write_text("---\negress: {allow: [example.com]}\n---\n")
    result = cli("up", "--backend", "fake", "--detach", input="n\n")
    shown = " ".join(result.stderr.split())
    assert "declares neither ANTHROPIC_API_KEY nor CLAUDE_CODE_OAUTH_TOKEN; add one to its secrets" in shown


def _spec(secrets=(), env=None) -> BottleSpec:
    return BottleSpec(slug=SLUG, agent=AgentDef(name="a", source="<t>"),
                      bottle=BottleDef(name="b", source="<t>", secrets=tuple(secrets), env=env or {}),
                      cwd=Path("/"), state_dir=Path("/nonexistent"))


def test_credential_warning_rules():
    key = SecretDef(name="ANTHROPIC_API_KEY", source=EnvValue(EnvKind.HOST, "MY_KEY"), hosts=("h",))
    asked = SecretDef(name="CLAUDE_CODE_OAUTH_TOKEN", source=EnvValue(EnvKind.PROMPT, "token"), hosts=("h",))
    other = SecretDef(name="GITHUB_TOKEN", source=EnvValue(EnvKind.HOST, "GITHUB_TOKEN"), hosts=("h",))
    # the source variable is what is read, not the secret's name
    assert _credential_warning(_spec([key]), {"ANTHROPIC_API_KEY": "x"}) != ""
    assert "MY_KEY is not set on this host; export it" in _credential_warning(_spec([key]), {})
    assert _credential_warning(_spec([key]), {"MY_KEY": "x"}) == ""
    assert _credential_warning(_spec([key, asked]), {}) == ""  # asked at up
    assert "declares neither" in _credential_warning(_spec([other]), {"GITHUB_TOKEN": "x"})
    literal = {"ANTHROPIC_API_KEY": EnvValue(EnvKind.LITERAL, "sk-x")}
    assert _credential_warning(_spec(env=literal), {}) == ""
