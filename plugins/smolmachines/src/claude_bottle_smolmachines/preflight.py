"""What must be true before a smolmachines bottle can start: a runnable smolvm, a hypervisor the
current user may use, and a reachable Docker engine (the sidecar bundle runs there)."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from claude_bottle.backends.base import Problem
from claude_bottle.errors import BottleError
from claude_bottle.runner import Command
from claude_bottle.sidecars.config import DNS_PORT
from claude_bottle_docker.kit import classify
from claude_bottle_smolmachines.engine import Smolvm
from claude_bottle_smolmachines.hoststate import wildcard_holders

if TYPE_CHECKING:
    from claude_bottle.runner import Runner
    from claude_bottle_smolmachines.engine import Engine

__all__ = ["check_dns_port", "check_docker", "check_hypervisor", "check_smolvm", "preflight"]

INSTALL_FIX = "pip install smolmachines (it ships the smolvm CLI), or put a smolvm binary on PATH"


def check_smolvm(engine: Engine | None, runner: Runner) -> list[Problem]:
    if engine is None:
        return [Problem("smolvm not found (not on PATH, no smolmachines wheel installed)", INSTALL_FIX)]
    try:
        Smolvm(engine=engine, runner=runner).version()
    except BottleError as exc:
        return [Problem(f"smolvm at {engine.binary} does not run: {exc}",
                        "reinstall it: pip install --force-reinstall smolmachines")]
    return []


def check_hypervisor(
    *,
    platform: str,
    runner: Runner,
    kvm: Path = Path("/dev/kvm"),
    access: Callable[[Path], bool] = lambda p: os.access(p, os.R_OK | os.W_OK),
) -> list[Problem]:
    """KVM on Linux, Hypervisor.framework on macOS; anything else cannot run smolvm."""
    if platform.startswith("linux"):
        if not kvm.exists():
            return [Problem(f"{kvm} is missing: no KVM hypervisor on this host",
                            "enable virtualization (VT-x/AMD-V) in the firmware or VM settings, "
                            "then `sudo modprobe kvm_intel` (or kvm_amd)")]
        if not access(kvm):
            return [Problem(f"{kvm} exists but this user cannot open it read-write",
                            "`sudo usermod -aG kvm $USER`, then log out and back in")]
        return []
    if platform == "darwin":
        result = runner.run(Command(argv=("sysctl", "-n", "kern.hv_support"), check=False, timeout=10))
        if result.stdout.strip() != "1":
            return [Problem("Hypervisor.framework is not available (kern.hv_support is not 1)",
                            "use an Apple Silicon Mac on macOS 11 or later, outside a VM without nested HVF")]
        return []
    return [Problem(f"smolvm does not support this platform ({platform})",
                    "use Linux with KVM or macOS on Apple Silicon, or the docker backend")]


def check_docker(runner: Runner) -> list[Problem]:
    fix = "start the Docker engine (`sudo systemctl start docker`) and make sure `docker info` works"
    try:
        result = runner.run(Command(argv=("docker", "info", "--format", "{{.ServerVersion}}"),
                                    check=False, timeout=30))
    except BottleError:
        return [Problem("docker CLI not found (the sidecar bundle runs in Docker)",
                        "install Docker: https://docs.docker.com/engine/install/")]
    if not result.ok or not result.stdout.strip():
        found = result.stderr.strip()
        problem = classify(found) if found else Problem("docker reports no server version", fix)
        return [Problem(f"{problem.summary} (the sidecar bundle runs in Docker)", problem.fix)]
    return []


def check_dns_port(proc: Path = Path("/proc")) -> list[Problem]:
    """The bundle's DNS responder is published on port 53 of the bottle's bundle address (the guest's
    only resolver, decision 0005); a server holding 53 on every address makes that publish fail."""
    held = wildcard_holders(DNS_PORT, proc)
    if not held:
        return []
    return [Problem(f"port {DNS_PORT} ({'/'.join(held)}) is held on every address of this host by another "
                    "program (a DNS server bound to 0.0.0.0 or ::), so the bottle's resolver cannot be "
                    "published on its bundle address",
                    "bind that server to specific addresses (dnsmasq: bind-interfaces with listen-address; "
                    "find it with `ss -lupn 'sport = :53'`), or use the docker backend")]


def preflight(*, engine: Engine | None, runner: Runner, platform: str, kvm: Path = Path("/dev/kvm"),
              access: Callable[[Path], bool] | None = None, proc: Path = Path("/proc")) -> list[Problem]:
    hv = (check_hypervisor(platform=platform, runner=runner, kvm=kvm) if access is None
          else check_hypervisor(platform=platform, runner=runner, kvm=kvm, access=access))
    return [*check_smolvm(engine, runner), *hv, *check_docker(runner), *check_dns_port(proc)]
