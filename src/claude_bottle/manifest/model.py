"""Value types for bottle and agent definitions (parsing lives in ``manifest.loader``)."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum

__all__ = [
    "AgentDef",
    "AllowRule",
    "BottleDef",
    "EgressDef",
    "EnvKind",
    "EnvValue",
    "GitDef",
    "GitRemote",
    "SecretDef",
]


class EnvKind(str, Enum):
    LITERAL = "literal"
    HOST = "host"      # "${HOST_VAR}": read from the host environment at `up`
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
    paths: tuple[str, ...] = ()    # path prefixes; empty: any path
    passthrough: bool = False      # TLS not intercepted; only the CONNECT/SNI host is checked
    dlp_exempt: bool = False       # request scanning skipped for this host


@dataclass(frozen=True)
class EgressDef:
    allow: tuple[AllowRule, ...] = ()

    @property
    def hosts(self) -> tuple[str, ...]:
        return tuple(rule.host for rule in self.allow)


@dataclass(frozen=True)
class SecretDef:
    """A credential the proxy injects: the agent only ever sees ``placeholder``-shaped text."""

    name: str                      # the env var the agent sees (holding the placeholder)
    source: EnvValue               # HOST or PROMPT; never a literal
    hosts: tuple[str, ...]         # where the real value may be sent
    header: str = "Authorization"  # which request header carries it
    format: str = "Bearer {value}" # how the header value is built


@dataclass(frozen=True)
class GitRemote:
    name: str
    url: str
    ssh_key: str | None = None        # host path of a private key
    host_key: str | None = None       # pinned known_hosts line (required for ssh)
    token_env: str | None = None      # host env var holding an HTTPS token
    branches: tuple[str, ...] = ()    # ref patterns the gate forwards


@dataclass(frozen=True)
class GitDef:
    push: tuple[str, ...] = ()        # extra ref patterns the agent may push ({slug} expands)
    remotes: tuple[GitRemote, ...] = ()


@dataclass(frozen=True)
class BottleDef:
    name: str
    source: str  # file path, or "<built-in>"
    egress: EgressDef = field(default_factory=EgressDef)
    env: dict[str, EnvValue] = field(default_factory=dict)
    secrets: tuple[SecretDef, ...] = ()
    git: GitDef = field(default_factory=GitDef)
    supervise: bool = False
    notes: str = ""


@dataclass(frozen=True)
class AgentDef:
    name: str
    source: str
    bottle: str = "default"
    skills: tuple[str, ...] = ()
    prompt: str = ""
    env: dict[str, EnvValue] = field(default_factory=dict)
