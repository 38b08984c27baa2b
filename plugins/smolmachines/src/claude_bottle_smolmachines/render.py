"""Pure renderers: the agent's Smolfile (TOML, via tomli-w) and its environment.

Keys are the ones smolvm 1.32 accepts (it refuses unknown keys at ``machine create``). The guest
link's subnet and the guest's resolver are not Smolfile keys in 1.32 (``dns`` is refused at top level
and under ``[network]``), so they travel as ``--guest-subnet`` and ``--dns`` on the command line.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import tomli_w

from claude_bottle_docker.kit import CA_PATH_IN_AGENT, SYSTEM_CA_BUNDLE
from claude_bottle_docker.kit import agent_env as docker_agent_env

__all__ = ["CA_PATH_IN_AGENT", "SYSTEM_CA_BUNDLE", "SmolfileSpec", "agent_env", "network_flags",
           "render_smolfile"]


@dataclass(frozen=True)
class SmolfileSpec:
    image: str
    env: Mapping[str, str]
    allow_cidrs: tuple[str, ...]
    cpus: int = 2
    memory_mib: int = 4096
    workdir: str = "/workspace"
    user: str = "claude"
    cmd: tuple[str, ...] = field(default=("sleep", "infinity"))


def render_smolfile(spec: SmolfileSpec) -> str:
    """The Smolfile for the agent machine. Egress: smolvm's own virtio-net stack with an allow list
    (deny by default), never TSI, which would hand the guest the host's sockets."""
    doc: dict[str, object] = {
        "image": spec.image,
        "cmd": list(spec.cmd),
        "workdir": spec.workdir,
        "user": spec.user,
        "env": [f"{k}={v}" for k, v in sorted(spec.env.items())],
        "cpus": spec.cpus,
        "memory": spec.memory_mib,
        "net": True,
        "net_backend": "virtio-net",
        "network": {"allow_cidrs": list(spec.allow_cidrs)},
    }
    return tomli_w.dumps(doc)


def network_flags(*, guest_subnet: str, bundle_address: str) -> list[str]:
    """``machine create`` flags for the guest link. ``--dns``: the guest's resolver (the gateway's DNS
    relay, whose upstream is otherwise the host's own resolver) asks the bundle's DNS responder at the
    bundle address instead, which answers the bundle's names and refuses the rest, forwarding nothing
    (docs/decisions/0005-smolmachines-networking.md)."""
    return ["--guest-subnet", guest_subnet, "--dns", bundle_address]


def agent_env(*, literal_env: Mapping[str, str], proxy_url: str, no_proxy: str = "localhost,127.0.0.1",
              extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """The docker backend's agent environment (the user's literals, then the bottle's CA paths and
    proxy, which win), with the proxy at the bundle address instead of the ``egress`` alias: a microVM
    has no Docker DNS to resolve that alias."""
    env = docker_agent_env(literal_env={**literal_env, **(extra or {})})
    env.update({"HTTP_PROXY": proxy_url, "HTTPS_PROXY": proxy_url, "http_proxy": proxy_url,
                "https_proxy": proxy_url, "NO_PROXY": no_proxy, "no_proxy": no_proxy})
    return env
