"""Which resolved addresses the proxy may dial. Pure standard library.

Every address a name resolves to is classified; one refused address refuses the name (a name that
mixes a public and a private address is either misconfigured or an attack, and picking "the good one"
would let the attacker choose when to stop being good). IPv6 forms that carry an IPv4 address
(``::ffff:a.b.c.d``, ``::a.b.c.d``, NAT64 ``64:ff9b::/96``, 6to4 ``2002::/16``, Teredo) are judged by
the IPv4 address inside as well.

Always refused: loopback, link-local, cloud metadata endpoints, unspecified, multicast, reserved and
broadcast, and the bottle's own networks. Refused unless the rule says ``private: true``: every other
address that is not globally routable (RFC 1918, CGNAT ``100.64.0.0/10``, ULA ``fc00::/7``,
benchmarking, documentation, ...).
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Sequence

__all__ = ["METADATA", "Address", "Network", "classify", "embedded_v4", "parse_networks", "refusal"]

Address = ipaddress.IPv4Address | ipaddress.IPv6Address
Network = ipaddress.IPv4Network | ipaddress.IPv6Network

# Instance-metadata endpoints (AWS, GCP, Azure: 169.254.169.254; AWS ECS task metadata; AWS IPv6;
# Alibaba, which sits in CGNAT space and so would pass a "private: true" rule without this list).
METADATA = frozenset(
    ipaddress.ip_address(a)
    for a in ("169.254.169.254", "169.254.170.2", "fd00:ec2::254", "100.100.100.200", "fd20:ce::254")
)
_NAT64 = (ipaddress.ip_network("64:ff9b::/96"), ipaddress.ip_network("64:ff9b:1::/48"))
_V4_COMPAT = ipaddress.ip_network("::/96")


def parse_networks(cidrs: Iterable[str]) -> tuple[Network, ...]:
    return tuple(ipaddress.ip_network(c, strict=False) for c in cidrs)


def embedded_v4(addr: Address) -> ipaddress.IPv4Address | None:
    """The IPv4 address an IPv6 address carries, if any (mapped, compatible, NAT64, 6to4, Teredo)."""
    if isinstance(addr, ipaddress.IPv4Address):
        return None
    if addr.ipv4_mapped is not None:
        return addr.ipv4_mapped
    if addr.sixtofour is not None:
        return addr.sixtofour
    if addr.teredo is not None:
        return addr.teredo[1]
    if any(addr in net for net in _NAT64) or (addr in _V4_COMPAT and int(addr) > 1):
        return ipaddress.IPv4Address(int(addr) & 0xFFFFFFFF)
    return None


def classify(addr: Address, own: Sequence[Network] = ()) -> str:  # noqa: PLR0911 - one return per kind
    """One word for what ``addr`` is: ``metadata``, ``own-network``, ``loopback``, ``link-local``,
    ``unspecified``, ``multicast``, ``reserved``, ``private`` or ``global``."""
    if addr in METADATA:
        return "metadata"
    if any(addr.version == net.version and addr in net for net in own):
        return "own-network"
    if addr.is_loopback:
        return "loopback"
    if addr.is_link_local:
        return "link-local"
    if addr.is_unspecified or (isinstance(addr, ipaddress.IPv4Address) and addr.packed[0] == 0):
        return "unspecified"  # 0.0.0.0/8 means "this host" to most stacks
    if addr.is_multicast:
        return "multicast"
    if addr.is_reserved or addr == ipaddress.IPv4Address("255.255.255.255"):
        return "reserved"
    if not addr.is_global:
        return "private"
    return "global"


_PRIVATE_OK = frozenset({"global", "private"})


def refusal(addr: Address, *, private_ok: bool, own: Sequence[Network] = ()) -> str | None:
    """Why ``addr`` may not be dialled (``"loopback"``...), or ``None`` when it may."""
    inner = embedded_v4(addr)
    if inner is None:
        kinds = [classify(addr, own)]
    elif addr in _V4_COMPAT or addr.ipv4_mapped is not None:  # type: ignore[union-attr]
        kinds = [classify(inner, own)]  # only a spelling of the IPv4 address: judge that alone
    else:
        kinds = [classify(inner, own), classify(addr, own)]  # a translator in between: judge both
    for kind in kinds:
        if kind == "global":
            continue
        if kind == "private" and private_ok:
            continue
        return kind
    return None
