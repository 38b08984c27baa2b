"""Parsing what the host uses: /proc/net/route, /proc/net/tcp{,6}, and Docker's networks."""

from __future__ import annotations

from ipaddress import IPv4Network
from pathlib import Path

import pytest

from claude_bottle.runner import SubprocessRunner
from claude_bottle_smolmachines.hoststate import (
    docker_subnets,
    host_routes,
    listening_ports,
    parse_proc_net_tcp,
    parse_proc_route,
    wildcard_holders,
)

ROUTE = """\
Iface\tDestination\tGateway \tFlags\tRefCnt\tUse\tMetric\tMask\t\tMTU\tWindow\tIRTT
eth0\t00000000\t010200C0\t0003\t0\t0\t0\t00000000\t0\t0\t0
docker0\t000011AC\t00000000\t0001\t0\t0\t0\t0000FFFF\t0\t0\t0
eth0\t000200C0\t00000000\t0001\t0\t0\t0\t00FFFFFF\t0\t0\t0
wg0\t0519D50A\t00000000\t0001\t0\t0\t0\tFFFFFFFF\t0\t0\t0
"""

_TAIL = "00:00000000 00000000     0        0 1 1 0000000000000000 100 0 0 10 0"
TCP = f"""\
  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 0100007F:0CEA 00000000:0000 0A 00000000:00000000 {_TAIL}
   1: 00000000:1F90 00000000:0000 0A 00000000:00000000 {_TAIL}
   2: 0200A8C0:D431 0100A8C0:01BB 01 00000000:00000000 {_TAIL}
"""

TCP6 = """\
  sl  local_address                         remote_address                        st tx_queue rx_queue
   0: 00000000000000000000000000000000:5208 00000000000000000000000000000000:0000 0A 00000000:00000000
"""


def test_parse_routes_skips_default() -> None:
    assert parse_proc_route(ROUTE) == [
        IPv4Network("172.17.0.0/16"), IPv4Network("192.0.2.0/24"), IPv4Network("10.213.25.5/32")]


def test_parse_listening_ports_only() -> None:
    assert parse_proc_net_tcp(TCP) == {3306, 8080}  # the established 54321 is not listening
    assert parse_proc_net_tcp(TCP6) == {21000}


def test_reads_from_a_proc_dir(tmp_path: Path) -> None:
    (tmp_path / "net").mkdir()
    (tmp_path / "net" / "route").write_text(ROUTE)
    (tmp_path / "net" / "tcp").write_text(TCP)
    (tmp_path / "net" / "tcp6").write_text(TCP6)
    assert IPv4Network("172.17.0.0/16") in host_routes(tmp_path)
    assert listening_ports(tmp_path) == {3306, 8080, 21000}


def test_missing_proc_reads_as_nothing(tmp_path: Path) -> None:
    assert host_routes(tmp_path) == [] and listening_ports(tmp_path) == set()


@pytest.mark.integration
def test_real_host() -> None:
    """This host: docker0's 172.17.0.0/16 is a route and a Docker network."""
    assert IPv4Network("172.17.0.0/16") in host_routes()
    assert IPv4Network("172.17.0.0/16") in docker_subnets(SubprocessRunner())


def _proc(tmp_path: Path, **files: str) -> Path:
    (tmp_path / "net").mkdir(parents=True, exist_ok=True)
    for name, text in files.items():
        (tmp_path / "net" / name).write_text(text)
    return tmp_path


_HEAD = "  sl  local_address rem_address   st tx_queue rx_queue\n"


def test_wildcard_holders_of_port_53(tmp_path: Path) -> None:
    """Only a socket on every address blocks a publish on the bundle address: systemd-resolved's
    127.0.0.53:53 and a connected UDP socket do not; 0.0.0.0:53 (UDP) and [::]:53 (TCP) do."""
    resolved = _HEAD + f"   0: 3500007F:0035 00000000:0000 07 00000000:00000000 {_TAIL}\n"
    listening = resolved.replace(" 07 ", " 0A ")
    assert wildcard_holders(53, _proc(tmp_path / "a", udp=resolved, tcp=listening)) == []
    connected = _HEAD + f"   0: 00000000:0035 08080808:0035 01 00000000:00000000 {_TAIL}\n"
    assert wildcard_holders(53, _proc(tmp_path / "b", udp=connected)) == []
    dnsmasq = _HEAD + f"   0: 00000000:0035 00000000:0000 07 00000000:00000000 {_TAIL}\n"
    v6 = _HEAD + "   0: 00000000000000000000000000000000:0035 00000000000000000000000000000000:0000 0A 0:0\n"
    assert wildcard_holders(53, _proc(tmp_path / "c", udp=dnsmasq, tcp6=v6)) == ["tcp", "udp"]
    assert wildcard_holders(53, _proc(tmp_path / "c")) == ["tcp", "udp"]
    assert wildcard_holders(5353, _proc(tmp_path / "c")) == []
    assert wildcard_holders(53, tmp_path / "nowhere") == []  # unreadable: nothing known
