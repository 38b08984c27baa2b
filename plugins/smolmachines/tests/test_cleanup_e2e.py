"""End to end on this host: leftovers of a crashed smolmachines bottle (a labelled smolvm machine in
the real smolvm, a labelled bundle container and bundle network in Docker) and of a crashed docker
bottle are listed in ONE ``claude-bottle cleanup`` table, and ``cleanup --yes`` removes exactly those.
A smolvm machine and a container named like ours but without our labels survive.

The CLI runs as a subprocess with this suite's ``CLAUDE_BOTTLE_HOME`` and smolvm ``--state-dir``.
Docker is shared with other suites, so before ``--yes`` the test checks that the plan holds only what
it planted; if another suite's unlabelled-home leftovers show up, it stops rather than remove them.
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from claude_bottle import identity
from claude_bottle.config import load_settings
from claude_bottle.runner import Command, SubprocessRunner
from claude_bottle_smolmachines.engine import Smolvm, SmolvmError, find_engine

pytestmark = pytest.mark.integration

RUNNER = SubprocessRunner()
CLI = Path(sys.executable).parent / "claude-bottle"


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "NO_COLOR": "1", "COLUMNS": "200"}
    return subprocess.run([str(CLI), *args], capture_output=True, text=True, env=env, timeout=300,
                          check=False)


def _label_args(labels: dict[str, str]) -> list[str]:
    return [a for k, v in labels.items() for a in ("--label", f"{k}={v}")]


def _docker(*argv: str) -> str:
    return RUNNER.run(Command(("docker", *argv), timeout=120)).stdout.strip()


def _exists(kind: str, name: str) -> bool:
    cmd = ("docker", "container" if kind == "container" else "network", "inspect", name)
    return RUNNER.run(Command(cmd, check=False)).ok


@pytest.fixture
def smolvm() -> Smolvm:
    engine = find_engine()
    assert engine is not None and engine.state_dir is not None  # the suite's own smolvm state
    return Smolvm(engine=engine, runner=RUNNER)


def test_one_table_across_backends_and_exact_removal(smolvm: Smolvm, tmp_path: Path) -> None:
    home = str(load_settings().home)
    smol = identity.new_slug("smolcrash")
    dock = identity.new_slug("dockcrash")
    stranger = identity.new_slug("stranger")
    smol_names, dock_names = identity.Names(smol), identity.Names(dock)

    def lab(slug: str, backend: str, role: str) -> dict[str, str]:
        return identity.labels(slug=slug, backend=backend, role=role, agent=identity.agent_of(slug),
                               home=home)

    sf = tmp_path / "Smolfile"
    sf.write_text("net = false\n")
    planted: list[tuple[str, str]] = []
    try:
        # the crashed smolmachines bottle
        smolvm.create(name=smol_names.machine, smolfile=sf, labels=lab(smol, "smolmachines", "agent"))
        _docker("network", "create", *_label_args(lab(smol, "smolmachines", "net-bundle")),
                smol_names.bundle_net)
        _docker("create", "--name", smol_names.bundle, *_label_args(lab(smol, "smolmachines", "sidecars")),
                "--network", smol_names.bundle_net, "debian:bookworm-slim", "sleep", "infinity")
        # the crashed docker bottle
        _docker("network", "create", "--internal", *_label_args(lab(dock, "docker", "net-internal")),
                dock_names.internal_net)
        _docker("create", "--name", dock_names.agent, *_label_args(lab(dock, "docker", "agent")),
                "--network", dock_names.internal_net, "debian:bookworm-slim", "sleep", "infinity")
        # look-alikes without our labels
        smolvm.create(name=identity.Names(stranger).machine, smolfile=sf, labels={"owner": "someone"})
        _docker("create", "--name", identity.Names(stranger).bundle, "debian:bookworm-slim", "true")
        planted = [("machine", smol_names.machine), ("container", smol_names.bundle),
                   ("network", smol_names.bundle_net), ("container", dock_names.agent),
                   ("network", dock_names.internal_net)]

        shown = _cli("cleanup", "--dry-run")
        assert shown.returncode == 0, shown.stderr
        for _, name in planted:
            assert name in shown.stdout  # one table, both backends
        assert "smolmachines" in shown.stdout and "docker" in shown.stdout
        assert identity.Names(stranger).machine not in shown.stdout

        plan = json.loads(_cli("cleanup", "--dry-run", "--json").stdout)["plan"]
        slugs = {item["slug"] for item in plan if item.get("slug")}
        if not slugs <= {smol, dock}:
            foreign = sorted(slugs - {smol, dock})
            pytest.skip(f"another suite's leftovers are in the plan ({foreign}); not removing them")
        by_backend = sorted((i["backend"], i["kind"]) for i in plan)
        assert by_backend == sorted([("smolmachines", "machine"), ("smolmachines", "container"),
                                     ("smolmachines", "network"), ("docker", "container"),
                                     ("docker", "network")])

        done = _cli("cleanup", "--yes")
        assert done.returncode == 0, done.stdout + done.stderr
        names = {str(m["name"]) for m in smolvm.ls()}
        assert smol_names.machine not in names
        assert identity.Names(stranger).machine in names
        for kind, name in planted[1:]:
            assert not _exists(kind, name), name
        assert _exists("container", identity.Names(stranger).bundle)
        assert _cli("cleanup", "--dry-run").stdout.strip() == "nothing to clean up"
    finally:
        for name in (smol_names.machine, identity.Names(stranger).machine):
            with contextlib.suppress(SmolvmError):
                smolvm.delete(name=name)
        for argv in (("rm", "-f", smol_names.bundle), ("rm", "-f", dock_names.agent),
                     ("rm", "-f", identity.Names(stranger).bundle), ("network", "rm", smol_names.bundle_net),
                     ("network", "rm", dock_names.internal_net)):
            RUNNER.run(Command(("docker", *argv), check=False))
