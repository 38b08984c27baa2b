"""The launch path: real Docker for the bundle network and container, a FAKE smolvm for the machine.

This host's /dev/kvm cannot boot a microVM (PVM), so the real ``smolvm machine start`` always fails.
These tests put ``fake_smolvm.py`` first on PATH as ``smolvm``: it records every argv and keeps machine
records with the real ``machine ls --json`` fields, so launch, enumerate, cleanup and down run
unchanged against it. What they prove about smolvm is the exact arguments we give it; what they prove
about Docker is real.
"""

from __future__ import annotations

import json
import shutil
import socket
from pathlib import Path

import pytest

from claude_bottle import identity
from claude_bottle.backends.base import NullProgress, SecretValues
from claude_bottle.config import load_settings
from claude_bottle.errors import BottleError
from claude_bottle.runner import Command, SubprocessRunner
from claude_bottle.state import StateDir
from claude_bottle.testing import builtin_spec, check_backend
from claude_bottle_smolmachines import SmolmachinesBackend

pytestmark = pytest.mark.integration

RUNNER = SubprocessRunner()


def _ours(slug: str) -> list[str]:
    out = []
    for argv in (("docker", "ps", "-a"), ("docker", "network", "ls")):
        fmt = "{{.Name}}" if argv[1] == "network" else "{{.Names}}"
        flt = f"label=dev.claude-bottle.slug={slug}"
        res = RUNNER.run(Command((*argv, "--filter", flt, "--format", fmt)))
        out += res.stdout.split()
    return out


def _connects(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=2):
            return True
    except OSError:
        return False


def _host_ipv4s() -> list[str]:
    out = RUNNER.run(Command(("ip", "-4", "-o", "addr", "show"))).stdout
    return [line.split()[3].split("/")[0] for line in out.splitlines() if len(line.split()) > 3]


@pytest.fixture
def backend(fake_smolvm: object) -> SmolmachinesBackend:
    b = SmolmachinesBackend(runner=RUNNER, settings=load_settings())
    assert b.engine is not None and b.engine.source == "PATH"  # the fake, never the real one
    return b


def test_conformance(backend: SmolmachinesBackend) -> None:
    """The core's whole-life check: preflight, dry prepare, launch, enumerate, cleanup, down."""
    report = check_backend(backend)
    assert report.steps[-1] == "down again"
    assert _ours(report.slug) == []


def test_launch_arguments_and_bundle_topology(backend: SmolmachinesBackend, fake_smolvm: object,
                                              tmp_path: Path) -> None:
    spec = builtin_spec(settings=backend.settings)
    state = StateDir(spec.state_dir)
    state.create(agent=spec.agent.name, bottle=spec.bottle.name, backend="smolmachines", cwd=spec.cwd)
    plan = backend.prepare(spec=spec, stage_dir=spec.state_dir / "stage")
    alloc = dict(plan.data["allocation"])  # type: ignore[call-overload]
    names = identity.Names(spec.slug)
    try:
        backend.launch(plan=plan, secrets=SecretValues(), progress=NullProgress())
        verbs = fake_smolvm.verbs()  # type: ignore[attr-defined]
        # create, start, then provisioning: the bottle's CA (cp + exec as root), the prompt (cp + exec)
        assert verbs[verbs.index("machine create"):] == [
            "machine create", "machine start", "machine cp", "machine exec", "machine cp", "machine exec"]
        execs = [c for c in fake_smolvm.calls() if "exec" in c]  # type: ignore[attr-defined]
        assert [c[c.index("--user") + 1] for c in execs] == ["root", "claude"]
        (create,) = [c for c in fake_smolvm.calls() if "create" in c]  # type: ignore[attr-defined]
        assert create[create.index("--smolfile") + 1] == str(spec.state_dir / "stage" / "Smolfile")
        assert create[create.index("--guest-subnet") + 1] == alloc["guest_subnet"]
        labels = dict(v.split("=", 1) for i, v in enumerate(create) if create[i - 1] == "--label")
        assert labels == identity.labels(slug=spec.slug, backend="smolmachines", role="agent",
                                         agent=spec.agent.name, home=str(backend.settings.home))
        # The Smolfile now names the exported archive of the real agent image, cached by ID.
        smolfile = (spec.state_dir / "stage" / "Smolfile").read_text()
        image_line = next(ln for ln in smolfile.splitlines() if ln.startswith("image = "))
        archive = Path(json.loads(image_line.split(" = ", 1)[1]))
        assert archive.is_file() and archive.parent.name == "images" and len(archive.stem) == 64
        # Docker: the bundle network on the allocated /29 with the bundle address as its gateway...
        net = json.loads(RUNNER.run(Command(("docker", "network", "inspect", names.bundle_net))).stdout)[0]
        ipam = [{"Subnet": alloc["bundle_subnet"], "Gateway": alloc["bundle_address"]}]
        assert net["IPAM"]["Config"] == ipam
        assert net["Internal"] is False and net["Labels"]["dev.claude-bottle.role"] == "net-bundle"
        # ...and the bundle publishing only on that address and the allocated ports.
        info = json.loads(RUNNER.run(Command(("docker", "container", "inspect", names.bundle))).stdout)[0]
        bindings = info["HostConfig"]["PortBindings"]
        published = {"HostIp": alloc["bundle_address"], "HostPort": str(alloc["ports"]["egress"])}
        assert bindings == {"3128/tcp": [published]}
        # Attack from the host side: the proxy port answers on the bundle address and nowhere else.
        port = int(alloc["ports"]["egress"])
        assert _connects(alloc["bundle_address"], port)
        others = {"127.0.0.1", *_host_ipv4s()} - {alloc["bundle_address"]}
        assert len(others) >= 3  # loopback, eth0, docker0 at least
        for other in sorted(others):
            assert not _connects(other, port), f"bundle port {port} reachable on {other}"
        state.mark_live(services=("egress",))
        assert spec.slug in {a.slug for a in backend.enumerate_active()}
    finally:
        report = backend.down(slug=spec.slug)
        shutil.rmtree(spec.state_dir, ignore_errors=True)
    assert not report.failed
    assert _ours(spec.slug) == []
    assert not [m for m in backend.smolvm.ls() if spec.slug in str(m["name"])]


@pytest.mark.parametrize("failing", ["start", "exec"])
def test_a_failed_step_undoes_everything(backend: SmolmachinesBackend, monkeypatch: pytest.MonkeyPatch,
                                         failing: str) -> None:
    monkeypatch.setenv("FAKE_SMOLVM_FAIL", failing)
    spec = builtin_spec(settings=backend.settings)
    StateDir(spec.state_dir).create(agent=spec.agent.name, bottle=spec.bottle.name, backend="smolmachines",
                                    cwd=spec.cwd)
    plan = backend.prepare(spec=spec, stage_dir=spec.state_dir / "stage")
    try:
        with pytest.raises(BottleError) as err:
            backend.launch(plan=plan, secrets=SecretValues(), progress=NullProgress())
        assert f"{failing} failed" in str(err.value)
        assert "removed everything this up had made" in str(err.value)
        assert _ours(spec.slug) == []
        assert not [m for m in backend.smolvm.ls() if spec.slug in str(m["name"])]
    finally:
        backend.down(slug=spec.slug)
        shutil.rmtree(spec.state_dir, ignore_errors=True)


def test_subnet_taken_between_prepare_and_launch(backend: SmolmachinesBackend) -> None:
    """Someone takes the bottle's bundle subnet after prepare: launch fails in one line and leaves
    nothing of the bottle behind (the intruding network is not ours and stays)."""
    spec = builtin_spec(settings=backend.settings)
    StateDir(spec.state_dir).create(agent=spec.agent.name, bottle=spec.bottle.name, backend="smolmachines",
                                    cwd=spec.cwd)
    plan = backend.prepare(spec=spec, stage_dir=spec.state_dir / "stage")
    subnet = str(dict(plan.data["allocation"])["bundle_subnet"])  # type: ignore[call-overload]
    intruder = f"cb-smol-intruder-{spec.slug}"
    RUNNER.run(Command(("docker", "network", "create", "--label", f"dev.claude-bottle.test={spec.slug}",
                        "--subnet", subnet, intruder)))
    try:
        with pytest.raises(BottleError) as err:
            backend.launch(plan=plan, secrets=SecretValues(), progress=NullProgress())
        assert "\n" not in str(err.value) and "network create" in str(err.value)
        assert _ours(spec.slug) == []
        assert not [m for m in backend.smolvm.ls() if spec.slug in str(m["name"])]
    finally:
        RUNNER.run(Command(("docker", "network", "rm", intruder), check=False))
        backend.down(slug=spec.slug)
        shutil.rmtree(spec.state_dir, ignore_errors=True)
