"""Every preflight problem, each one line with its fix, produced against real files and processes."""

from __future__ import annotations

import os
import socket
from pathlib import Path

import pytest

from claude_bottle.runner import SubprocessRunner
from claude_bottle_smolmachines.engine import Engine, find_engine
from claude_bottle_smolmachines.preflight import (
    check_dns_port,
    check_docker,
    check_hypervisor,
    check_smolvm,
    preflight,
)

RUNNER = SubprocessRunner()


def _script(path: Path, body: str) -> Path:
    path.write_text(f"#!/bin/sh\n{body}\n")
    path.chmod(0o755)
    return path


def test_smolvm_missing() -> None:
    (problem,) = check_smolvm(None, RUNNER)
    assert "smolvm not found" in problem.summary
    assert "pip install smolmachines" in problem.fix


def test_smolvm_not_runnable(tmp_path: Path) -> None:
    body = "echo 'error while loading shared libraries: libkrun.so' >&2; exit 127"
    broken = _script(tmp_path / "smolvm", body)
    (problem,) = check_smolvm(Engine(binary=broken, source="PATH"), RUNNER)
    assert "does not run" in problem.summary and "libkrun.so" in problem.summary
    assert "reinstall" in problem.fix


def test_smolvm_not_executable(tmp_path: Path) -> None:
    plain = tmp_path / "smolvm"
    plain.write_text("not a program")
    (problem,) = check_smolvm(Engine(binary=plain, source="PATH"), RUNNER)
    assert "does not run" in problem.summary


def test_real_wheel_smolvm_runs() -> None:
    engine = find_engine({"PATH": "/nonexistent"})
    assert engine is not None
    assert check_smolvm(engine, RUNNER) == []


def test_kvm_missing(tmp_path: Path) -> None:
    (problem,) = check_hypervisor(platform="linux", runner=RUNNER, kvm=tmp_path / "kvm")
    assert "is missing" in problem.summary
    assert "modprobe kvm_intel" in problem.fix


def test_kvm_not_accessible(tmp_path: Path) -> None:
    """The check asks ``os.access``; as root every file is accessible, so this test hands the check a
    non-root answer for the device (everything else about the path is real)."""
    kvm = tmp_path / "kvm"
    kvm.write_text("")
    kvm.chmod(0o600)
    (problem,) = check_hypervisor(platform="linux", runner=RUNNER, kvm=kvm, access=lambda p: False)
    assert "cannot open it read-write" in problem.summary
    assert problem.fix.startswith("`sudo usermod -aG kvm $USER`")


@pytest.mark.skipif(os.geteuid() == 0, reason="root can open any device")
def test_kvm_real_access_check(tmp_path: Path) -> None:
    kvm = tmp_path / "kvm"
    kvm.write_text("")
    kvm.chmod(0o000)
    assert check_hypervisor(platform="linux", runner=RUNNER, kvm=kvm)


def test_kvm_present_here() -> None:
    """/dev/kvm exists and is accessible on this host (it cannot boot a microVM, a PVM host, which
    preflight cannot see without booting one)."""
    assert check_hypervisor(platform="linux", runner=RUNNER) == []


def test_macos_without_hvf(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """There is no Mac here: a ``sysctl`` on PATH answers as a Mac without Hypervisor.framework."""
    _script(tmp_path / "sysctl", "echo 0")
    monkeypatch.setenv("PATH", f"{tmp_path}{os.pathsep}{os.environ['PATH']}")
    (problem,) = check_hypervisor(platform="darwin", runner=RUNNER)
    assert "Hypervisor.framework" in problem.summary


def test_macos_with_hvf(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _script(tmp_path / "sysctl", "echo 1")
    monkeypatch.setenv("PATH", f"{tmp_path}{os.pathsep}{os.environ['PATH']}")
    assert check_hypervisor(platform="darwin", runner=RUNNER) == []


def test_unsupported_platform() -> None:
    (problem,) = check_hypervisor(platform="win32", runner=RUNNER)
    assert "does not support" in problem.summary and "docker backend" in problem.fix


def test_docker_unreachable(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("DOCKER_HOST", f"unix://{tmp_path}/no-docker.sock")
    (problem,) = check_docker(RUNNER)
    assert problem.summary.startswith(f"Docker is not reachable at unix://{tmp_path}/no-docker.sock")
    assert "systemctl start docker" in problem.fix


def test_docker_cli_missing(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    (problem,) = check_docker(RUNNER)
    assert "docker CLI not found" in problem.summary


@pytest.mark.integration
def test_docker_reachable_here() -> None:
    assert check_docker(RUNNER) == []


def test_all_together_each_one_line(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("DOCKER_HOST", f"unix://{tmp_path}/no-docker.sock")
    problems = preflight(engine=None, runner=RUNNER, platform="linux", kvm=tmp_path / "kvm")
    assert len(problems) == 3
    for p in problems:
        assert "\n" not in p.summary and "\n" not in p.fix and p.fix


def test_dns_port_held_on_every_address() -> None:
    """A real UDP socket on 0.0.0.0:53 (what a dnsmasq without bind-interfaces holds) is seen in the
    real /proc and named with its fix; once it is closed, the problem is gone."""
    if os.geteuid() != 0:
        pytest.skip("binding port 53 needs root")
    assert check_dns_port() == []  # this host runs no DNS server on every address
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        try:
            sock.bind(("0.0.0.0", 53))  # the very thing the check looks for
        except OSError:
            pytest.skip("port 53 is in use here")
        (problem,) = check_dns_port()
    assert problem.summary.startswith("port 53 (udp) is held on every address")
    assert "bind-interfaces" in problem.fix and "\n" not in problem.summary + problem.fix
    assert check_dns_port() == []
