"""Reading what the host already uses, for the allocators: routes, Docker networks, listening ports.

Read-only. Files under ``/proc`` are read directly (cheap, no process); Docker is asked through the
runner. Anything unreadable counts as "nothing known", never as an error: the allocators still avoid
what the other sources report, and ``docker network create`` refuses a real overlap at launch.
"""

from __future__ import annotations

import json
import socket
import struct
from collections.abc import Iterable
from ipaddress import IPv4Network, ip_network
from pathlib import Path
from typing import TYPE_CHECKING

from claude_bottle.errors import BottleError
from claude_bottle.runner import Command

if TYPE_CHECKING:
    from claude_bottle.runner import Runner

__all__ = [
    "docker_subnets",
    "host_routes",
    "listening_ports",
    "parse_proc_net_tcp",
    "parse_proc_route",
    "wildcard_holders",
]

_LISTEN = "0A"
_UDP_UNCONNECTED = "07"


def parse_proc_route(text: str) -> list[IPv4Network]:
    """Destinations of ``/proc/net/route`` (the default route left out: it covers everything)."""
    nets: list[IPv4Network] = []
    for line in text.splitlines()[1:]:
        fields = line.split()
        if len(fields) < 8:
            continue
        try:
            dest = socket.inet_ntoa(struct.pack("<I", int(fields[1], 16)))
            mask = socket.inet_ntoa(struct.pack("<I", int(fields[7], 16)))
            net = IPv4Network(f"{dest}/{mask}", strict=False)
        except ValueError:
            continue
        if net.prefixlen:
            nets.append(net)
    return nets


def host_routes(proc: Path = Path("/proc")) -> list[IPv4Network]:
    try:
        return parse_proc_route((proc / "net" / "route").read_text())
    except OSError:
        return []


def parse_proc_net_tcp(text: str) -> set[int]:
    """Local ports of listening sockets in ``/proc/net/tcp`` or ``tcp6``."""
    ports: set[int] = set()
    for line in text.splitlines()[1:]:
        fields = line.split()
        if len(fields) > 3 and fields[3] == _LISTEN and ":" in fields[1]:
            try:
                ports.add(int(fields[1].rsplit(":", 1)[1], 16))
            except ValueError:
                continue
    return ports


def listening_ports(proc: Path = Path("/proc")) -> set[int]:
    ports: set[int] = set()
    for name in ("tcp", "tcp6"):
        try:
            ports |= parse_proc_net_tcp((proc / "net" / name).read_text())
        except OSError:
            continue
    return ports


def wildcard_holders(port: int, proc: Path = Path("/proc")) -> list[str]:
    """The protocols (``tcp``, ``udp``) in which a socket holds ``port`` on every address (``0.0.0.0``
    or ``::``): a bind of that port to one address, as Docker's publish does, then fails."""
    wanted = f":{port:04X}"
    held: list[str] = []
    for proto, state in (("tcp", _LISTEN), ("udp", _UDP_UNCONNECTED)):
        for name in (proto, f"{proto}6"):
            try:
                lines = (proc / "net" / name).read_text().splitlines()[1:]
            except OSError:
                continue
            for line in lines:
                fields = line.split()
                local = fields[1] if len(fields) > 3 else ""
                if fields and local.endswith(wanted) and fields[3] == state and not local[:-5].strip("0"):
                    held.append(proto)
                    break
            if proto in held:
                break
    return held


def _subnets_of(inspect_json: str) -> Iterable[IPv4Network]:
    try:
        networks = json.loads(inspect_json or "[]")
    except ValueError:
        return
    for net in networks if isinstance(networks, list) else ():
        for cfg in ((net.get("IPAM") or {}).get("Config") or ()):
            try:
                subnet = ip_network(cfg.get("Subnet", ""), strict=False)
            except ValueError:
                continue
            if isinstance(subnet, IPv4Network):
                yield subnet


def docker_subnets(runner: Runner) -> list[IPv4Network]:
    """IPv4 subnets of every Docker network, including ones whose bridge is down."""
    try:
        ids = runner.run(Command(("docker", "network", "ls", "--quiet"), check=False, timeout=30))
        if not ids.ok or not ids.stdout.split():
            return []
        inspect = ("docker", "network", "inspect", *ids.stdout.split())
        out = runner.run(Command(inspect, check=False, timeout=30))
    except BottleError:
        return []
    return list(_subnets_of(out.stdout))
