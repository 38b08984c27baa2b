"""Value types for bottle and agent definitions (parsing lives in ``manifest.loader``)."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum

__all__ = [
    "AgentDef",
    "AllowRule",
    "BottleDef",
    "Definitions",
    "EgressDef",
    "EnvKind",
    "EnvValue",
    "GitDef",
    "GitRemote",
    "SecretDef",
]


class EnvKind(StrEnum):
    LITERAL = "literal"
    HOST = "host"  # "${HOST_VAR}": read from the host environment at `up`
    PROMPT = "prompt"  # "?prompt text": asked on the TTY at `up`, never echoed

    @property
    def is_secret(self) -> bool:
        return self is not EnvKind.LITERAL


@dataclass(frozen=True)
class EnvValue:
    kind: EnvKind
    raw: str  # the literal, the host variable's name, or the prompt text

    def masked(self) -> str:
        if self.kind is EnvKind.HOST:
            return f"${{{self.raw}}} (from host, hidden)"
        if self.kind is EnvKind.PROMPT:
            return f"?{self.raw} (asked at up, hidden)"
        return self.raw


@dataclass(frozen=True)
class AllowRule:
    """One egress allowlist entry: an exact host or ``*.domain``, optional methods/path prefixes."""

    host: str
    methods: tuple[str, ...] = ()  # empty: any method
    paths: tuple[str, ...] = ()  # path prefixes; empty: any path
    passthrough: bool = False  # TLS not intercepted; only the CONNECT/SNI host is checked
    dlp_exempt: bool = False  # request scanning skipped for this host
    # The name may resolve to a private address (intranet hosts, local test upstreams). Loopback,
    # link-local, metadata and the bottle's own networks are still refused.
    private: bool = False
    # Ports the entry opens; empty: 80 and 443 only. An allowed name is not every service on it.
    ports: tuple[int, ...] = ()


@dataclass(frozen=True)
class EgressDef:
    allow: tuple[AllowRule, ...] = ()

    @property
    def hosts(self) -> tuple[str, ...]:
        return tuple(rule.host for rule in self.allow)


@dataclass(frozen=True)
class SecretDef:
    """A credential the proxy injects: the agent only ever sees ``placeholder``-shaped text."""

    name: str  # the env var the agent sees (holding the placeholder)
    source: EnvValue  # HOST or PROMPT; never a literal
    hosts: tuple[str, ...]  # where the real value may be sent
    header: str = "Authorization"  # which request header carries it
    format: str = "Bearer {value}"  # how the header value is built: ``format.replace("{value}", v)``
    optional: bool = False  # a missing host variable / empty answer skips the secret silently


@dataclass(frozen=True)
class GitRemote:
    name: str
    url: str
    ssh_key: str | None = None  # host path of a private key
    host_key: str | None = None  # pinned known_hosts line (required for ssh)
    token_env: str | None = None  # host env var holding an HTTPS token (``token: "${VAR}"``)
    branches: tuple[str, ...] = ()  # branch patterns the gate forwards; empty: the push patterns


@dataclass(frozen=True)
class GitDef:
    # Extra branch patterns the agent may push ({slug} expands), on top of the gate's default
    # ``claude/{slug}`` and ``claude/{slug}/*``. Branch names, without ``refs/heads/``.
    push: tuple[str, ...] = ()
    remotes: tuple[GitRemote, ...] = ()


@dataclass(frozen=True)
class ResourcesDef:
    """``resources:``: caps asked for by the bottle; ``None`` takes the host-derived default."""

    memory: int | None = None  # bytes
    cpus: float | None = None
    pids: int | None = None


@dataclass(frozen=True)
class BottleDef:
    name: str
    source: str  # file path, or "<built-in>"
    egress: EgressDef = field(default_factory=EgressDef)
    env: dict[str, EnvValue] = field(default_factory=dict)
    secrets: tuple[SecretDef, ...] = ()
    git: GitDef = field(default_factory=GitDef)
    supervise: bool = False
    resources: ResourcesDef = field(default_factory=ResourcesDef)
    notes: str = ""


@dataclass(frozen=True)
class AgentDef:
    name: str
    source: str
    bottle: str = "default"
    skills: tuple[str, ...] = ()
    prompt: str = ""
    env: dict[str, EnvValue] = field(default_factory=dict)
    # Parts of the user's own Claude Code config carried into the bottle (opt-in): "settings",
    # "commands", "agents" from ~/.claude; never credentials (claude_code.carried_config).
    claude_config: tuple[str, ...] = ()


@dataclass(frozen=True)
class Definitions:
    """What ``up`` runs: the agent, the bottle it asked for, and warnings found on the way."""

    agent: AgentDef
    bottle: BottleDef
    warnings: tuple[str, ...] = ()

    @property
    def env(self) -> dict[str, EnvValue]:
        """The agent's environment as declared: the bottle's env, then the agent's on top."""
        return {**self.bottle.env, **self.agent.env}
