"""The built-in ``default`` bottle and ``claude`` agent, so ``claude-bottle up`` works with no files."""

from __future__ import annotations

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
    """Only what Claude Code needs to talk to its model, and nothing else.

    One host: ``api.anthropic.com`` carries the model API and accepts both credentials. Claude Code
    also calls telemetry (statsig), error reporting (sentry) and its auto-updater; those are not
    needed to work, so the bottle turns them off instead of allowing their hosts. Add more hosts in
    your own bottle (``$CLAUDE_BOTTLE_HOME/bottles/default.md`` overrides this one).
    """
    return BottleDef(
        name="default",
        source=BUILTIN,
        egress=EgressDef(allow=(AllowRule(host=ANTHROPIC_API),)),
        env={
            # Telemetry, error reporting, auto-update and /bug: traffic to hosts we do not allow.
            "CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC": EnvValue(EnvKind.LITERAL, "1"),
        },
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
