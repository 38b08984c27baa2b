"""The built-in ``default`` bottle and ``claude`` agent, so ``claude-bottle up`` works with no files."""

from __future__ import annotations

from claude_bottle.claude_code import QUIET_ENV, REQUIRED_HOSTS
from claude_bottle.manifest.model import (
    AgentDef,
    AllowRule,
    BottleDef,
    EgressDef,
    EnvKind,
    EnvValue,
    SecretDef,
)

__all__ = ["BUILTIN", "BUILTIN_AGENTS", "BUILTIN_BOTTLES", "default_bottle"]

BUILTIN = "<built-in>"

ANTHROPIC_API = "api.anthropic.com"


def default_bottle() -> BottleDef:
    """Only what Claude Code needs to start, authenticate and work, and nothing else.

    The hosts are :data:`claude_bottle.claude_code.REQUIRED_HOSTS`, measured on the Claude Code version
    kept beside them: ``api.anthropic.com`` carries the model API and accepts both credentials;
    ``platform.claude.com`` answers a reachability check without which the session will not start.
    Telemetry, error reports and the updater are switched off (:data:`claude_code.QUIET_ENV`) instead
    of being allowed. Add more hosts in your own bottle (``$CLAUDE_BOTTLE_HOME/bottles/default.md``
    overrides this one).
    """
    return BottleDef(
        name="default",
        source=BUILTIN,
        egress=EgressDef(allow=tuple(AllowRule(host=host) for host in REQUIRED_HOSTS)),
        env={name: EnvValue(EnvKind.LITERAL, value) for name, value in QUIET_ENV.items()},
        secrets=(
            # Either credential works; a user has one or the other set, so both are optional.
            SecretDef(
                name="ANTHROPIC_API_KEY",
                source=EnvValue(EnvKind.HOST, "ANTHROPIC_API_KEY"),
                hosts=(ANTHROPIC_API,),
                header="x-api-key",
                format="{value}",
                optional=True,
            ),
            # The long-lived token from `claude setup-token`.
            SecretDef(
                name="CLAUDE_CODE_OAUTH_TOKEN",
                source=EnvValue(EnvKind.HOST, "CLAUDE_CODE_OAUTH_TOKEN"),
                hosts=(ANTHROPIC_API,),
                header="Authorization",
                format="Bearer {value}",
                optional=True,
            ),
        ),
    )


def claude_agent() -> AgentDef:
    """Claude Code as it comes: no extra prompt, no skills, the ``default`` bottle."""
    return AgentDef(name="claude", source=BUILTIN, bottle="default")


BUILTIN_BOTTLES = {"default": default_bottle}
BUILTIN_AGENTS = {"claude": claude_agent}
