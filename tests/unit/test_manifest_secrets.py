"""Collecting secret values at ``up``, and showing definitions without them (``info``)."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest

from claude_bottle.config import Settings
from claude_bottle.errors import BottleError
from claude_bottle.manifest.builtins import claude_agent, default_bottle
from claude_bottle.manifest.describe import describe
from claude_bottle.manifest.loader import resolve_definitions
from claude_bottle.manifest.model import Definitions
from claude_bottle.manifest.parse import parse_agent, parse_bottle
from claude_bottle.manifest.secrets import collect_secret_values

REAL = "sk-ant-api03-REAL-VALUE-0123456789"
BOTTLE = "/h/bottles/dev.md"
AGENT = "/h/agents/a.md"


def defs(bottle_front: str, agent_front: str = "") -> Definitions:
    bottle = parse_bottle(name="dev", path=BOTTLE, text=f"---\n{bottle_front}---\n")
    agent = parse_agent(
        name="a", path=AGENT, text=f"---\nbottle: dev\n{agent_front}---\n", project=False
    ).agent
    return Definitions(agent=agent, bottle=bottle)


class Asker:
    """Stands in for the TTY prompt: records what was asked, answers from a script."""

    def __init__(self, *answers: str) -> None:
        self.answers = list(answers)
        self.asked: list[str] = []

    def __call__(self, text: str) -> str:
        self.asked.append(text)
        return self.answers.pop(0)


def no_ask(text: str) -> str:
    raise AssertionError(f"nothing should be asked, got {text!r}")


def test_default_bottle_with_api_key_only() -> None:
    d = Definitions(agent=claude_agent(), bottle=default_bottle())
    values = collect_secret_values(d, environ={"ANTHROPIC_API_KEY": REAL, "PATH": "/bin"}, ask=no_ask)
    assert dict(values.credentials) == {"ANTHROPIC_API_KEY": REAL}
    assert dict(values.env) == {}


def test_default_bottle_with_oauth_token_only() -> None:
    d = Definitions(agent=claude_agent(), bottle=default_bottle())
    values = collect_secret_values(
        d, environ={"CLAUDE_CODE_OAUTH_TOKEN": "sk-ant-oat01-xyz0123456"}, ask=no_ask
    )
    assert dict(values.credentials) == {"CLAUDE_CODE_OAUTH_TOKEN": "sk-ant-oat01-xyz0123456"}


def test_optional_secrets_missing_or_empty_are_skipped_silently(caplog: pytest.LogCaptureFixture) -> None:
    d = Definitions(agent=claude_agent(), bottle=default_bottle())
    with caplog.at_level(logging.DEBUG):
        values = collect_secret_values(d, environ={"ANTHROPIC_API_KEY": ""}, ask=no_ask)
    assert dict(values.credentials) == {} and caplog.records == []


def test_env_modes_resolve() -> None:
    d = defs(
        "env: {LIT: plain, HOST: '${H}', ASK: '?your pin'}\n",
        "env: {AGENT_HOST: '${AH}', AGENT_ASK: '?'}\n",
    )
    asker = Asker("1234", "answer")
    values = collect_secret_values(d, environ={"H": "host-value", "AH": "agent-host"}, ask=asker)
    # literals are not secrets: they travel in the plan, not here
    assert dict(values.env) == {
        "HOST": "host-value",
        "ASK": "1234",
        "AGENT_HOST": "agent-host",
        "AGENT_ASK": "answer",
    }
    assert asker.asked == [
        f"your pin (env.ASK, asked by {BOTTLE})",
        f"env.AGENT_ASK (asked by {AGENT})",
    ]


def test_env_host_variable_set_but_empty_is_an_empty_value() -> None:
    values = collect_secret_values(defs("env: {E: '${H}'}\n"), environ={"H": ""}, ask=no_ask)
    assert dict(values.env) == {"E": ""}


def test_missing_env_host_variable_names_variable_and_file() -> None:
    with pytest.raises(BottleError) as info:
        collect_secret_values(defs("", "env: {T: '${MY_TOKEN}'}\n"), environ={}, ask=no_ask)
    assert str(info.value) == (
        f"host variable MY_TOKEN is not set or empty ({AGENT} wants it for env.T) "
        "(export MY_TOKEN=... before 'claude-bottle up')"
    )


def test_missing_required_secret_names_variable_and_bottle_file() -> None:
    d = defs("egress: {allow: [a.example]}\nsecrets:\n  GH: {from: '${GH_TOKEN}', hosts: [a.example]}\n")
    with pytest.raises(BottleError) as info:
        collect_secret_values(d, environ={"GH_TOKEN": ""}, ask=no_ask)
    assert str(info.value).startswith(
        f"host variable GH_TOKEN is not set or empty ({BOTTLE} wants it for secret GH)"
    )


def test_prompted_secret_and_empty_answer() -> None:
    front = "egress: {allow: [a.example]}\nsecrets:\n  GH: {from: '?GitHub token', hosts: [a.example]}\n"
    values = collect_secret_values(defs(front), environ={}, ask=Asker(REAL))
    assert dict(values.credentials) == {"GH": REAL}
    with pytest.raises(BottleError, match=f"^no value given for secret GH \\({BOTTLE} asks for it\\)$"):
        collect_secret_values(defs(front), environ={}, ask=Asker(""))
    optional = front.replace("hosts: [a.example]", "hosts: [a.example], optional: true")
    assert dict(collect_secret_values(defs(optional), environ={}, ask=Asker("")).credentials) == {}


@pytest.mark.parametrize("bad", [REAL + "\r\nX-Evil: 1", REAL + "\n", "a\x00b"])
def test_credential_with_line_break_is_refused_without_showing_it(bad: str) -> None:
    d = defs("egress: {allow: [a.example]}\nsecrets:\n  GH: {from: '${GH}', hosts: [a.example]}\n")
    with pytest.raises(BottleError) as info:
        collect_secret_values(d, environ={"GH": bad}, ask=no_ask)
    assert "line break" in str(info.value) and REAL not in str(info.value)


def test_secret_values_repr_hides_values() -> None:
    d = defs(
        "env: {E: '${H}'}\negress: {allow: [a.example]}\nsecrets:\n  S: {from: '${H}', hosts: [a.example]}\n"
    )
    values = collect_secret_values(d, environ={"H": REAL}, ask=no_ask)
    assert REAL not in repr(values) and REAL not in str(values)
    assert values.all_values() == (REAL, REAL)


def test_describe_masks_every_secret_value(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    home = tmp_path / "home"
    (home / "bottles").mkdir(parents=True)
    (home / "agents").mkdir()
    (home / "bottles" / "dev.md").write_text(
        "---\n"
        "egress: {allow: [api.anthropic.com, a.example, {host: h.example, private: true}]}\n"
        "env: {LIT: visible, FROM_HOST: '${REAL_ENV}', ASKED: '?pin please'}\n"
        "secrets:\n"
        "  GH: {from: '${REAL_SECRET}', hosts: [a.example], header: X-Key, format: '{value}'}\n"
        "git:\n"
        "  remotes:\n"
        "    - {name: up, url: 'https://h.example/r.git', token: '${REAL_TOKEN}', branches: [main]}\n"
        "---\n"
    )
    (home / "agents" / "a.md").write_text(
        "---\nbottle: dev\nenv: {AGENT_SECRET: '${REAL_ENV}'}\n---\nprompt\n"
    )
    for var in ("REAL_ENV", "REAL_SECRET", "REAL_TOKEN", "ANTHROPIC_API_KEY"):
        monkeypatch.setenv(var, REAL)
    d = resolve_definitions(settings=Settings(home=home), cwd=tmp_path, agent="a")
    collect_secret_values(d, environ={"REAL_ENV": REAL, "REAL_SECRET": REAL}, ask=lambda _: REAL)
    out = describe(d)
    text = json.dumps(out)
    assert REAL not in text
    assert out["agent"]["source"] == str(home / "agents" / "a.md")
    assert out["bottle"]["source"] == str(home / "bottles" / "dev.md")
    assert out["bottle"]["env"] == {
        "LIT": {"from": "literal", "value": "visible"},
        "FROM_HOST": {"from": "host", "variable": "REAL_ENV", "value": "(hidden)"},
        "ASKED": {"from": "prompt", "prompt": "pin please", "value": "(asked at up, hidden)"},
    }
    assert out["bottle"]["secrets"]["GH"] == {
        "from": "host",
        "variable": "REAL_SECRET",
        "value": "(hidden)",
        "hosts": ["a.example"],
        "header": "X-Key",
        "format": "{value}",
        "optional": False,
    }
    assert out["bottle"]["git"]["remotes"][0]["token"] == "${REAL_TOKEN} (hidden)"
    assert out["bottle"]["egress"]["allow"][2]["private"] is True
    assert out["agent"]["env"]["AGENT_SECRET"]["variable"] == "REAL_ENV"
    assert out["agent"]["prompt"] == "prompt" and out["warnings"] == []


def test_describe_builtins_is_json() -> None:
    out = describe(Definitions(agent=claude_agent(), bottle=default_bottle(), warnings=("w",)))
    assert json.loads(json.dumps(out)) == out
    assert out["bottle"]["source"] == "<built-in>" and out["warnings"] == ["w"]
    assert set(out["bottle"]["secrets"]) == {"ANTHROPIC_API_KEY", "CLAUDE_CODE_OAUTH_TOKEN"}
