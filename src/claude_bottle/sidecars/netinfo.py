"""The bundle's own addresses and networks, read from the kernel (stdlib only, Linux).

The proxy refuses every network the bundle sits on (the agent's network, the egress network and its
gateway, i.e. the docker host); the DNS responder answers each query with the bundle's address on the
interface the query arrived on.
"""

from __future__ import annotations

import fcntl
import ipaddress
import socket
import struct
from dataclasses import dataclass
from pathlib import Path

__all__ = ["Iface", "interfaces", "own_networks"]

_SIOCGIFADDR = 0x8915
_SIOCGIFNETMASK = 0x891B


@dataclass(frozen=True)
class Iface:
    name: str
    interface: ipaddress.IPv4Interface | ipaddress.IPv6Interface


def _ioctl_v4(sock: socket.socket, name: str, request: int) -> str | None:
    try:
        raw = fcntl.ioctl(sock.fileno(), request, struct.pack("256s", name.encode()[:15]))
    except OSError:
        return None
    return socket.inet_ntoa(raw[20:24])


def _v4() -> list[Iface]:
    out = []
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        for _, name in socket.if_nameindex():
            addr = _ioctl_v4(sock, name, _SIOCGIFADDR)
            mask = _ioctl_v4(sock, name, _SIOCGIFNETMASK)
            if addr and mask:
                out.append(Iface(name, ipaddress.IPv4Interface(f"{addr}/{mask}")))
    return out


def _v6(path: Path = Path("/proc/net/if_inet6")) -> list[Iface]:
    out: list[Iface] = []
    try:
        text = path.read_text()
    except OSError:
        return out
    for line in text.splitlines():
        parts = line.split()
        if len(parts) < 6:
            continue
        hexaddr, _, prefix, _, _, name = parts[:6]
        addr = ipaddress.IPv6Address(int(hexaddr, 16))
        out.append(Iface(name, ipaddress.IPv6Interface(f"{addr}/{int(prefix, 16)}")))
    return out


def interfaces() -> list[Iface]:
    return [*_v4(), *_v6()]


def own_networks() -> list[str]:
    """CIDRs of every non-loopback network the bundle is attached to."""
    nets = {str(i.interface.network) for i in interfaces() if not i.interface.ip.is_loopback}
    return sorted(nets)
