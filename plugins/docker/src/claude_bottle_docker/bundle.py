"""The sidecar bundle container: created, attached, started and waited for.

Both backends run the same bundle in Docker: the docker backend on the bottle's internal and egress
networks (aliases on the internal one), the smolmachines backend on its own network with ports
published on a per-bottle loopback address. So everything here takes the networks, aliases, published
ports and mounts as values; nothing assumes one topology.
"""

from __future__ import annotations

import inspect
import socket
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from claude_bottle.errors import BottleError
from claude_bottle.runner import Command
from claude_bottle_docker.docker import (
    DOCKER,
    inspect_command,
    is_running,
    label_args,
    logs_command,
    parse_inspect,
)
from claude_bottle_docker.docker import network_ips as _network_ips

if TYPE_CHECKING:
    from claude_bottle.runner import Runner

__all__ = [
    "BundleInfo",
    "BundleSpec",
    "Mount",
    "NetworkAttach",
    "Publish",
    "create_commands",
    "logs_tail",
    "show_logs",
    "start_bundle",
    "wait_ready",
]

# The bundle's own hardening. It runs as root in its namespace only to bind port 53 (DNS) and to write
# into the user's state dir (audit log, git mirror), which that user, not root, owns; every other
# capability is dropped (nothing in the bundle changes user or owner).
BUNDLE_CAPS = ("NET_BIND_SERVICE", "DAC_OVERRIDE")
BUNDLE_PIDS_LIMIT = 512
BUNDLE_MEMORY_LIMIT = "1g"
# The bundle sits on the agent's internal network and on the network out: it must never route a packet
# from one to the other, only relay what its proxy allows (docker leaves ip_forward on otherwise).
BUNDLE_SYSCTLS = ("net.ipv4.ip_forward=0", "net.ipv6.conf.all.forwarding=0")


@dataclass(frozen=True)
class NetworkAttach:
    """A network the bundle joins, with the names other containers on it reach the bundle by."""

    name: str
    aliases: tuple[str, ...] = ()


@dataclass(frozen=True)
class Publish:
    """A published port: ``host_ip:host_port`` on the host -> ``container_port`` in the bundle."""

    host_ip: str
    host_port: int
    container_port: int
    protocol: str = "tcp"

    def arg(self) -> str:
        suffix = "" if self.protocol == "tcp" else f"/{self.protocol}"
        return f"{self.host_ip}:{self.host_port}:{self.container_port}{suffix}"


@dataclass(frozen=True)
class Mount:
    """A bind mount from the host (config read-only, logs read-write)."""

    source: Path
    target: str
    read_only: bool = True

    def arg(self) -> str:
        spec = f"type=bind,source={self.source},target={self.target}"
        return f"{spec},readonly" if self.read_only else spec


@dataclass(frozen=True)
class BundleSpec:
    """One bundle container. ``networks[0]`` is joined at creation and gives the bundle its route out;
    the rest are connected before it starts, so its programs never see a half-wired network."""

    name: str
    image: str
    labels: Mapping[str, str]
    networks: tuple[NetworkAttach, ...]
    publish: tuple[Publish, ...] = ()
    mounts: tuple[Mount, ...] = ()
    env: Mapping[str, str] = field(default_factory=dict)
    secret_env_names: tuple[str, ...] = ()


@dataclass(frozen=True)
class BundleInfo:
    name: str
    ips: Mapping[str, str]  # network name -> the bundle's IPv4 address on it


def create_commands(spec: BundleSpec, secret_env: Mapping[str, str]) -> list[Command]:
    """``docker create`` on the first network, then ``docker network connect`` for the others."""
    if not spec.networks:
        raise ValueError("a bundle needs at least one network")
    first, *rest = spec.networks
    argv = [DOCKER, "create", "--name", spec.name, "--hostname", "bundle", *label_args(spec.labels),
            "--network", first.name]
    for alias in first.aliases:
        argv += ["--network-alias", alias]
    argv += ["--cap-drop", "ALL"]
    for cap in BUNDLE_CAPS:
        argv += ["--cap-add", cap]
    argv += ["--security-opt", "no-new-privileges", "--pids-limit", str(BUNDLE_PIDS_LIMIT),
             "--memory", BUNDLE_MEMORY_LIMIT]
    for sysctl in BUNDLE_SYSCTLS:
        argv += ["--sysctl", sysctl]
    for pub in spec.publish:
        argv += ["--publish", pub.arg()]
    for mount in spec.mounts:
        argv += ["--mount", mount.arg()]
    for key, value in sorted(spec.env.items()):
        argv += ["--env", f"{key}={value}"]
    for key in spec.secret_env_names:
        argv += ["--env", key]
    argv.append(spec.image)
    cmds = [Command(tuple(argv), secret_env=dict(secret_env), timeout=120)]
    for net in rest:
        connect = [DOCKER, "network", "connect"]
        for alias in net.aliases:
            connect += ["--alias", alias]
        cmds.append(Command((*connect, net.name, spec.name), timeout=60))
    return cmds


def start_bundle(runner: Runner, spec: BundleSpec, secret_env: Mapping[str, str] | None = None) -> BundleInfo:
    """Create, wire and start the bundle; return its addresses. Raises :class:`BottleError` (the
    caller removes what was made, found again by its labels)."""
    for cmd in create_commands(spec, secret_env or {}):
        runner.run(cmd)
    runner.run(Command((DOCKER, "start", spec.name), timeout=60))
    return inspect_bundle(runner, spec.name)


def inspect_bundle(runner: Runner, name: str) -> BundleInfo:
    info = parse_inspect(runner.run(inspect_command(name)).stdout)
    if info is None:
        raise BottleError(f"the sidecar bundle {name} disappeared right after it started")
    return BundleInfo(name=name, ips=_network_ips(info))


def show_logs(runner: Runner, name: str, *, follow: bool) -> int:
    """``claude-bottle logs``: the bundle's output, line by line as it comes, each printed with control
    and bidi characters escaped: the agent chooses some of it (host names, paths), and a raw escape
    sequence would reach the user's terminal. Returns docker's exit status."""
    from claude_bottle import ui  # noqa: PLC0415 - Rich only when logs are shown

    cmd = logs_command(name, follow=follow)
    stream = getattr(runner, "stream", None)
    if stream is None:  # a runner that cannot stream: print once docker is done
        result = runner.run(cmd)
        for line in (result.stdout + result.stderr).splitlines():
            ui.say(line)
        return result.returncode
    if "keep_output" in inspect.signature(stream).parameters:
        return stream(cmd, ui.say, keep_output=False).returncode
    return stream(cmd, ui.say).returncode


def logs_tail(runner: Runner, name: str, lines: int = 20) -> str:
    result = runner.run(logs_command(name, tail=lines))
    return (result.stdout + result.stderr).strip()


def _connects(host: str, port: int, timeout: float) -> bool:
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def wait_ready(
    runner: Runner,
    name: str,
    *,
    host: str,
    port: int,
    timeout: float = 60.0,
    connects: Callable[[str, int, float], bool] = _connects,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
) -> None:
    """Wait until the proxy accepts connections at ``host:port`` (from the host: the bundle's address
    on its egress network, or a published port). If the bundle dies, or ``timeout`` passes, raise one
    line with the tail of its logs, so a broken config or addon says what broke."""
    deadline = clock() + timeout
    next_check = clock() + 0.5
    while True:
        if connects(host, port, 0.5):
            return
        now = clock()
        if now >= next_check or now >= deadline:
            info = parse_inspect(runner.run(inspect_command(name)).stdout)
            if info is None or not is_running(info):
                why = _last_line(runner, name)
                raise BottleError(f"the sidecar bundle {name} stopped while starting: {why}")
            if now >= deadline:
                raise BottleError(f"the egress proxy in {name} did not answer on {host}:{port} within "
                                  f"{timeout:.0f}s: {_last_line(runner, name)}")
            next_check = now + 0.5
        sleep(0.05)


def _last_line(runner: Runner, name: str) -> str:
    tail = logs_tail(runner, name, lines=20)
    lines = [ln.strip() for ln in tail.splitlines() if ln.strip()]
    return " | ".join(lines[-3:]) if lines else "no output"
