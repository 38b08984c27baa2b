"""The installed CLI, as a user runs it: ``backends`` shows smolmachines with its binary and version;
``up --backend smolmachines --dry-run --json`` shows the allocation and creates nothing; two dry-runs
never share a subnet or a port."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from ipaddress import IPv4Network
from pathlib import Path

import pytest

from claude_bottle.runner import Command, SubprocessRunner
from claude_bottle_smolmachines.engine import Smolvm, find_engine

pytestmark = pytest.mark.integration

CLI = Path(sys.executable).parent / "claude-bottle"
RUNNER = SubprocessRunner()


def _cli(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "NO_COLOR": "1", "COLUMNS": "200"}
    return subprocess.run([str(CLI), *args], capture_output=True, text=True, env=env, cwd=cwd, timeout=300,
                          check=False)


def test_backends_lists_smolmachines_with_binary_and_version(tmp_path: Path) -> None:
    out = _cli("backends", cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    assert "smolmachines" in out.stdout and "claude-bottle-smolmachines" in out.stdout
    assert "smol-vmm" in out.stdout and "(from smolmachines wheel)" in out.stdout
    assert "smolvm version: 1.32" in out.stdout


def test_two_dry_runs(tmp_path: Path) -> None:
    engine = find_engine()
    assert engine is not None
    smolvm = Smolvm(engine=engine, runner=RUNNER)
    machines_before = smolvm.ls()
    plans = []
    for _ in range(2):
        out = _cli("up", "--backend", "smolmachines", "--dry-run", "--json", cwd=tmp_path)
        assert out.returncode == 0, out.stderr
        plans.append(json.loads(out.stdout))
    a, b = (p["details"] for p in plans)
    assert plans[0]["slug"] != plans[1]["slug"]
    assert not IPv4Network(a["guest subnet"]).overlaps(IPv4Network(b["guest subnet"]))
    assert a["bundle address"] != b["bundle address"]
    ports = [int(x.split()[1]) for d in (a, b) for x in d["ports"].split(", ")]
    assert len(ports) == len(set(ports))
    for d in (a, b):
        assert d["Smolfile"].endswith("/Smolfile")
        assert d["egress allow list"] == f"{d['bundle address']}/32 only"
    # nothing created: no machine, no container or network of either slug, no state dir
    assert smolvm.ls() == machines_before
    for p in plans:
        for argv in (("docker", "ps", "-a", "-q"), ("docker", "network", "ls", "-q")):
            res = RUNNER.run(Command((*argv, "--filter", f"label=dev.claude-bottle.slug={p['slug']}")))
            assert res.stdout.strip() == ""
        assert not Path(p["state_dir"]).exists()
