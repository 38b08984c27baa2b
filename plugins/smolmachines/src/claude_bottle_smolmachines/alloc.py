"""Pure allocators: a per-bottle address block and the bundle's published ports.

Each bottle gets one /28 *block* from :data:`POOL`, split in two:

* the first /30 is the guest link smolvm's virtio-net stack builds (``--guest-subnet``: gateway .1,
  guest .2). It exists only inside smolvm, but it must not cover a host address the guest has to
  reach, and a host route inside it would become unreachable from the guest;
* the upper /29 is the bottle's Docker bundle network. Its gateway (.9 of the block) is an address
  on the host's side of that bridge: the *bundle address*, where the bundle's ports are published and
  the only destination the guest's allow list admits. A loopback address cannot serve, because inside
  a microVM 127/8 is the guest's own loopback (see docs/decisions/0005-smolmachines-networking.md).

The choice is seeded by the slug (the same slug gets the same block while it is free) and walks the
pool from there past every block that overlaps something in use. The caller gathers ``used``.
"""

from __future__ import annotations

import bisect
import hashlib
from collections.abc import Iterable, Set
from dataclasses import dataclass
from ipaddress import IPv4Address, IPv4Network

from claude_bottle.errors import BottleError

__all__ = [
    "BLOCK_PREFIX",
    "DOCKER_DEFAULT",
    "POOL",
    "PORT_RANGE",
    "Block",
    "pick_port",
    "pick_ports",
    "pick_subnet",
    "split_block",
]

POOL = IPv4Network("10.213.0.0/16")
BLOCK_PREFIX = 28
# Docker's default bridge: a bottle must never sit on top of it, whatever pool is configured.
DOCKER_DEFAULT = IPv4Network("172.17.0.0/16")
# Below the Linux ephemeral range (32768-60999), so an outgoing connection never holds one of ours.
PORT_RANGE = range(21000, 32000)


def _start(seed: str, count: int) -> int:
    return int.from_bytes(hashlib.sha256(seed.encode()).digest()[:8], "big") % count


def _intervals(nets: Iterable[IPv4Network]) -> tuple[list[int], list[int]]:
    """Merged, sorted [first, last] address ranges, as two parallel lists for bisect."""
    spans = sorted((int(n.network_address), int(n.broadcast_address)) for n in nets)
    starts: list[int] = []
    ends: list[int] = []
    for lo, hi in spans:
        if ends and lo <= ends[-1] + 1:
            ends[-1] = max(ends[-1], hi)
        else:
            starts.append(lo)
            ends.append(hi)
    return starts, ends


def _hits(taken: tuple[list[int], list[int]], lo: int, hi: int) -> bool:
    starts, ends = taken
    i = bisect.bisect_right(starts, hi) - 1  # the last range starting at or before hi
    return i >= 0 and ends[i] >= lo


def pick_subnet(used: Iterable[IPv4Network], pool: IPv4Network, seed: str,
                prefixlen: int = BLOCK_PREFIX) -> IPv4Network:
    """The first /``prefixlen`` of ``pool``, starting at a slot derived from ``seed``, that overlaps
    nothing in ``used`` and not Docker's default bridge. Raises :class:`BottleError` when none is left."""
    if prefixlen < pool.prefixlen:
        raise ValueError(f"/{prefixlen} blocks do not fit in {pool}")
    taken = _intervals([*(u for u in used if u.overlaps(pool)), DOCKER_DEFAULT])
    count = 1 << (prefixlen - pool.prefixlen)
    size = 1 << (32 - prefixlen)
    base = int(pool.network_address)
    start = _start(seed, count)
    for step in range(count):
        first = base + ((start + step) % count) * size
        if not _hits(taken, first, first + size - 1):
            return IPv4Network((first, prefixlen))
    raise BottleError(
        f"no free /{prefixlen} left in the smolmachines address pool {pool} "
        f"({count} blocks, all used by bottles or host routes)",
        hint="remove old bottles with `claude-bottle down`/`claude-bottle cleanup`",
    )


def pick_port(used: Set[int], port_range: range, seed: str = "") -> int:
    """The first port of ``port_range`` not in ``used``, starting at a slot derived from ``seed``."""
    count = len(port_range)
    start = _start(seed, count) if count else 0
    for step in range(count):
        port = port_range[(start + step) % count]
        if port not in used:
            return port
    raise BottleError(f"no free TCP port left in {port_range.start}-{port_range.stop - 1}",
                      hint="stop some bottles or other services listening there")


def pick_ports(used: Set[int], port_range: range, seed: str, names: Iterable[str]) -> dict[str, int]:
    """One distinct free port per name, each seeded by ``seed`` and the name."""
    taken = set(used)
    out: dict[str, int] = {}
    for name in names:
        port = pick_port(taken, port_range, f"{seed}/{name}")
        taken.add(port)
        out[name] = port
    return out


@dataclass(frozen=True)
class Block:
    block: IPv4Network
    guest_subnet: IPv4Network
    bundle_subnet: IPv4Network
    bundle_address: IPv4Address


def split_block(block: IPv4Network) -> Block:
    """Guest link = first /30; bundle network = upper half; bundle address = its first host."""
    if block.prefixlen > 28:
        raise ValueError(f"{block} is too small: a bottle needs a /28")
    guest = next(block.subnets(new_prefix=30))
    bundle = list(block.subnets(prefixlen_diff=1))[1]
    return Block(block=block, guest_subnet=guest, bundle_subnet=bundle,
                 bundle_address=bundle.network_address + 1)
