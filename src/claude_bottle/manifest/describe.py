"""The resolved definition as plain data for ``claude-bottle info`` (table or ``--json``).

It is built from the definitions alone, which hold no secret values: a secret shows where its value
comes from (``${VAR}`` or the prompt), never the value.
"""

from __future__ import annotations

from typing import Any

from claude_bottle.manifest.model import AgentDef, AllowRule, BottleDef, Definitions, EnvKind, EnvValue

__all__ = ["describe", "describe_env_value"]


def describe_env_value(value: EnvValue) -> dict[str, str]:
    if value.kind is EnvKind.HOST:
        return {"from": "host", "variable": value.raw, "value": "(hidden)"}
    if value.kind is EnvKind.PROMPT:
        return {"from": "prompt", "prompt": value.raw, "value": "(asked at up, hidden)"}
    return {"from": "literal", "value": value.raw}


def _rule(rule: AllowRule) -> dict[str, Any]:
    out: dict[str, Any] = {
        "host": rule.host,
        "methods": list(rule.methods),
        "paths": list(rule.paths),
        "passthrough": rule.passthrough,
        "dlp_exempt": rule.dlp_exempt,
        "private": rule.private,
    }
    if rule.ports:
        out["ports"] = list(rule.ports)
    return out


def _bottle(bottle: BottleDef) -> dict[str, Any]:
    return {
        "name": bottle.name,
        "source": bottle.source,
        "egress": {"allow": [_rule(r) for r in bottle.egress.allow]},
        "env": {k: describe_env_value(v) for k, v in bottle.env.items()},
        "secrets": {
            s.name: {
                **describe_env_value(s.source),
                "hosts": list(s.hosts),
                "header": s.header,
                "format": s.format,
                "optional": s.optional,
            }
            for s in bottle.secrets
        },
        "git": {
            "push": list(bottle.git.push),
            "remotes": [
                {
                    "name": r.name,
                    "url": r.url,
                    "ssh_key": r.ssh_key,  # a path on the host, not the key
                    "host_key": r.host_key,  # a public key
                    "token": f"${{{r.token_env}}} (hidden)" if r.token_env else None,
                    "branches": list(r.branches),
                }
                for r in bottle.git.remotes
            ],
        },
        "supervise": bottle.supervise,
    }


def _agent(agent: AgentDef) -> dict[str, Any]:
    return {
        "name": agent.name,
        "source": agent.source,
        "bottle": agent.bottle,
        "skills": list(agent.skills),
        "claude_config": list(agent.claude_config),
        "env": {k: describe_env_value(v) for k, v in agent.env.items()},
        "prompt": agent.prompt,
    }


def describe(defs: Definitions) -> dict[str, Any]:
    """JSON-able: ``agent``, ``bottle`` (each with its ``source`` file), ``warnings``."""
    return {"agent": _agent(defs.agent), "bottle": _bottle(defs.bottle), "warnings": list(defs.warnings)}
