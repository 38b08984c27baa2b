"""``prepare``: allocate the bottle's block and ports, render the Smolfile and the bundle's config.

Creates no machine, container or network. What it reads: the host's routes, Docker's networks, the
listening TCP ports, and the allocation leases of other prepares (see :mod:`.leases`), which it
extends by its own lease so a second ``--dry-run`` or a concurrent ``up`` never picks the same block
or ports.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass
from ipaddress import IPv4Network
from pathlib import Path
from typing import TYPE_CHECKING

from claude_bottle.identity import Names
from claude_bottle.sidecars.gitgate.config import DEFAULT_PORT as GATE_PORT
from claude_bottle_docker.kit import active_sidecars
from claude_bottle_smolmachines import alloc, hoststate
from claude_bottle_smolmachines.leases import Lease, LeaseBook
from claude_bottle_smolmachines.render import SmolfileSpec, agent_env, render_smolfile

if TYPE_CHECKING:
    from claude_bottle.config import Settings
    from claude_bottle.runner import Runner

__all__ = [
    "SIDECAR_PORTS",
    "Allocation",
    "active_sidecars",
    "allocate",
    "details",
    "lease_book",
    "smolfile_spec",
    "write_smolfile",
]

SMOLFILE = "Smolfile"
# Ports the bundle's programs listen on inside its container.
SIDECAR_PORTS: Mapping[str, int] = {"egress": 3128, "git-gate": GATE_PORT, "supervise": 8420}


@dataclass(frozen=True)
class Allocation:
    block: IPv4Network
    guest_subnet: IPv4Network
    bundle_subnet: IPv4Network
    bundle_address: str
    ports: Mapping[str, int]  # sidecar -> host port on bundle_address

    @property
    def proxy_url(self) -> str:
        return f"http://{self.bundle_address}:{self.ports['egress']}"

    def to_data(self) -> dict[str, object]:
        return {"block": str(self.block), "guest_subnet": str(self.guest_subnet),
                "bundle_subnet": str(self.bundle_subnet), "bundle_address": self.bundle_address,
                "ports": dict(self.ports)}

    @classmethod
    def from_data(cls, data: Mapping[str, object]) -> Allocation:
        ports = data["ports"]
        if not isinstance(ports, Mapping):
            raise TypeError("ports must be a mapping")
        return cls(block=IPv4Network(str(data["block"])), guest_subnet=IPv4Network(str(data["guest_subnet"])),
                   bundle_subnet=IPv4Network(str(data["bundle_subnet"])),
                   bundle_address=str(data["bundle_address"]),
                   ports={str(k): int(v) for k, v in ports.items()})


def lease_book(settings: Settings) -> LeaseBook:
    return LeaseBook(settings.home / "smolmachines" / "leases", settings.state_root)


def allocate(*, slug: str, sidecars: tuple[str, ...], runner: Runner, settings: Settings,
             pool: IPv4Network = alloc.POOL, proc: Path = Path("/proc")) -> Allocation:
    """Gather what is in use, pick a block and ports, and record them as this slug's lease."""
    routes = hoststate.host_routes(proc)
    subnets = hoststate.docker_subnets(runner)
    ports_in_use = hoststate.listening_ports(proc)
    book = lease_book(settings)
    with book.locked():
        book.prune()
        others = book.active(exclude=slug)
        used_nets = [*routes, *subnets, *(IPv4Network(ls.block) for ls in others)]
        used_ports = ports_in_use | {p for ls in others for p in ls.ports.values()}
        block = alloc.pick_subnet(used_nets, pool, seed=slug)
        ports = alloc.pick_ports(used_ports, alloc.PORT_RANGE, slug, sidecars)
        book.write(Lease(slug=slug, block=str(block), ports=ports, created_at=time.time()))
    parts = alloc.split_block(block)
    return Allocation(block=block, guest_subnet=parts.guest_subnet, bundle_subnet=parts.bundle_subnet,
                      bundle_address=str(parts.bundle_address), ports=ports)


def smolfile_spec(*, image: str, literal_env: Mapping[str, str], allocation: Allocation) -> SmolfileSpec:
    extra = {f"CLAUDE_BOTTLE_{name.upper().replace('-', '_')}_URL":
             f"http://{allocation.bundle_address}:{port}"
             for name, port in allocation.ports.items() if name != "egress"}
    env = agent_env(literal_env=literal_env, proxy_url=allocation.proxy_url, extra=extra)
    return SmolfileSpec(image=image, env=env, allow_cidrs=(f"{allocation.bundle_address}/32",))


def write_smolfile(stage_dir: Path, spec: SmolfileSpec) -> Path:
    stage_dir.mkdir(parents=True, exist_ok=True)
    path = stage_dir / SMOLFILE
    path.write_text(render_smolfile(spec))
    return path


def details(*, names: Names, allocation: Allocation, smolfile: Path, agent_image: str,
            workspace: str) -> tuple[tuple[str, str], ...]:
    ports = ", ".join(f"{name} {port}" for name, port in allocation.ports.items())
    return (
        ("machine", names.machine),
        ("guest subnet", str(allocation.guest_subnet)),
        ("bundle network", f"{names.bundle_net} ({allocation.bundle_subnet})"),
        ("bundle address", allocation.bundle_address),
        ("ports", ports),
        ("egress allow list", f"{allocation.bundle_address}/32 only"),
        ("guest DNS", f"{allocation.bundle_address}:53, the bundle's responder (its own names only)"),
        ("agent image", agent_image),
        ("Smolfile", str(smolfile)),
        ("workspace", workspace),
    )
