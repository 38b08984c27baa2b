"""``probe_targets`` for ``claude-bottle check``: the addresses around a bottle that its agent must not
reach and cannot discover itself (the host's gateways, other bottles, the bundle's egress side)."""

from __future__ import annotations

import ipaddress
import json
from typing import TYPE_CHECKING

from claude_bottle.backends.base import ProbeTargets
from claude_bottle.identity import Names
from claude_bottle.runner import Command
from claude_bottle_docker.docker import DOCKER, list_command, network_ips, parse_list

if TYPE_CHECKING:
    from collections.abc import Iterable

    from claude_bottle.runner import Runner

__all__ = ["parse_gateways", "parse_ips", "probe_targets"]

# docker0: where a container on the default bridge (or an engine listening on TCP) meets the host.
DEFAULT_BRIDGE = "bridge"


def _gateway(cfg: object) -> str:
    """A network's gateway; the engine leaves it out for its default bridge, which takes the first
    address of its subnet."""
    if not isinstance(cfg, dict):
        return ""
    if cfg.get("Gateway"):
        return str(cfg["Gateway"])
    try:
        subnet = ipaddress.ip_network(str(cfg.get("Subnet") or ""))
    except ValueError:
        return ""
    return str(subnet.network_address + 1) if subnet.version == 4 and subnet.num_addresses > 2 else ""


def parse_gateways(stdout: str) -> tuple[str, ...]:
    """Gateways from ``docker network inspect --format '{{json .IPAM.Config}}'`` (a line per network)."""
    found: list[str] = []
    for line in stdout.splitlines():
        try:
            configs = json.loads(line)
        except ValueError:
            continue
        found += [gw for cfg in (configs if isinstance(configs, list) else ()) if (gw := _gateway(cfg))]
    return tuple(dict.fromkeys(found))


def parse_ips(stdout: str, *, skip_networks: Iterable[str] = ()) -> tuple[str, ...]:
    """Every address of the containers in a ``docker container inspect`` array, but on ``skip_networks``."""
    try:
        infos = json.loads(stdout or "[]")
    except ValueError:
        return ()
    skip = set(skip_networks)
    ips = [ip for info in infos if isinstance(info, dict)
           for net, ip in network_ips(info).items() if ip and net not in skip]
    return tuple(dict.fromkeys(ips))


def probe_targets(runner: Runner, slug: str) -> ProbeTargets:
    """Read-only: a network inspect, a labelled container list and one container inspect."""
    names = Names(slug)
    nets = runner.run(Command((DOCKER, "network", "inspect", "--format", "{{json .IPAM.Config}}",
                               names.internal_net, names.egress_net, DEFAULT_BRIDGE), check=False))
    bundle = runner.run(Command((DOCKER, "container", "inspect", names.bundle), check=False))
    # Every bottle's containers on this engine, whichever backend or home made them.
    listed = runner.run(list_command("container"))
    others = [r.ident for r in parse_list("container", listed.stdout) if r.slug != slug and r.running]
    siblings: tuple[str, ...] = ()
    if others:
        inspected = runner.run(Command((DOCKER, "container", "inspect", *others), check=False))
        siblings = parse_ips(inspected.stdout)
    return ProbeTargets(host=parse_gateways(nets.stdout), siblings=siblings,
                        far_side=parse_ips(bundle.stdout, skip_networks=(names.internal_net,)))
