"""Slugs, resource names and labels: how every bottle resource is found again without memory."""

from __future__ import annotations

import re
import secrets
from dataclasses import dataclass

__all__ = [
    "LABEL_AGENT",
    "LABEL_BACKEND",
    "LABEL_HOME",
    "LABEL_PREFIX",
    "LABEL_ROLE",
    "LABEL_SLUG",
    "Names",
    "is_slug",
    "labels",
    "new_slug",
]

LABEL_PREFIX = "dev.claude-bottle"
LABEL_SLUG = f"{LABEL_PREFIX}.slug"
LABEL_BACKEND = f"{LABEL_PREFIX}.backend"
LABEL_ROLE = f"{LABEL_PREFIX}.role"
LABEL_AGENT = f"{LABEL_PREFIX}.agent"
# Which $CLAUDE_BOTTLE_HOME made the resource: cleanup run against one home never reaps bottles that
# another home (a test suite, a second user profile) still owns. Resources without it are fair game.
LABEL_HOME = f"{LABEL_PREFIX}.home"

_ALPHABET = "abcdefghijklmnopqrstuvwxyz0123456789"
_AGENT_RE = re.compile(r"^[a-z0-9](?:[a-z0-9-]{0,38}[a-z0-9])?$")
_SLUG_RE = re.compile(r"^([a-z0-9](?:[a-z0-9-]{0,38}[a-z0-9])?)-([a-z0-9]{5})$")


def is_agent_name(name: str) -> bool:
    return bool(_AGENT_RE.match(name))


def new_slug(agent: str) -> str:
    """``<agent>-<5 random base-36 chars>``, e.g. ``researcher-m3hxd``."""
    if not is_agent_name(agent):
        raise ValueError(f"invalid agent name {agent!r}")
    return f"{agent}-{''.join(secrets.choice(_ALPHABET) for _ in range(5))}"


def is_slug(text: str) -> bool:
    return bool(_SLUG_RE.match(text))


def agent_of(slug: str) -> str:
    match = _SLUG_RE.match(slug)
    if not match:
        raise ValueError(f"not a bottle slug: {slug!r}")
    return match.group(1)


@dataclass(frozen=True)
class Names:
    """Deterministic resource names for one bottle."""

    slug: str

    @property
    def agent(self) -> str:
        return f"claude-bottle-{self.slug}"

    @property
    def bundle(self) -> str:
        return f"claude-bottle-sidecars-{self.slug}"

    @property
    def internal_net(self) -> str:
        return f"claude-bottle-net-{self.slug}"

    @property
    def egress_net(self) -> str:
        return f"claude-bottle-egress-{self.slug}"

    @property
    def bundle_net(self) -> str:
        return f"claude-bottle-bundle-{self.slug}"

    @property
    def machine(self) -> str:
        return f"claude-bottle-{self.slug}"


def labels(*, slug: str, backend: str, role: str, agent: str, home: str | None = None) -> dict[str, str]:
    """The labels every container, network, volume and machine of a bottle carries from creation."""
    out = {LABEL_SLUG: slug, LABEL_BACKEND: backend, LABEL_ROLE: role, LABEL_AGENT: agent}
    if home is not None:
        out[LABEL_HOME] = home
    return out
