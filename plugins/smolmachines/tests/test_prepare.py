"""``prepare``: the plan's details, nothing created, and allocations that never collide, neither with
the host (routes, Docker networks, listening ports) nor with other prepares (leases)."""

from __future__ import annotations

import socket
import tomllib
from dataclasses import replace
from ipaddress import IPv4Network
from pathlib import Path

import pytest

from claude_bottle import identity
from claude_bottle.config import load_settings
from claude_bottle.errors import BottleError
from claude_bottle.manifest.model import GitDef, GitRemote
from claude_bottle.runner import Command, SubprocessRunner
from claude_bottle.sidecars.config import load_bundle_config
from claude_bottle.testing import builtin_spec
from claude_bottle_smolmachines import SmolmachinesBackend, prepare
from claude_bottle_smolmachines.leases import LEASE_TTL

pytestmark = pytest.mark.integration  # reads the Docker engine (images, networks)

RUNNER = SubprocessRunner()


@pytest.fixture
def backend() -> SmolmachinesBackend:
    return SmolmachinesBackend(runner=RUNNER, settings=load_settings())


def _docker_state(slug: str) -> list[str]:
    """Docker objects of this slug (other suites share the engine, so only ours are compared)."""
    ps = RUNNER.run(Command(("docker", "ps", "-a", "--filter", f"label=dev.claude-bottle.slug={slug}",
                             "--format", "{{.Names}}")))
    nets = RUNNER.run(Command(("docker", "network", "ls", "--format", "{{.Name}}")))
    return [*ps.stdout.split(), *(n for n in nets.stdout.split() if slug in n)]


def test_plan_details_and_files(backend: SmolmachinesBackend, tmp_path: Path) -> None:
    spec = builtin_spec(settings=backend.settings)
    assert _docker_state(spec.slug) == [] and backend.smolvm.ls() == []
    plan = backend.prepare(spec=spec, stage_dir=tmp_path / "stage")
    assert _docker_state(spec.slug) == [] and backend.smolvm.ls() == []  # nothing created
    assert not spec.state_dir.exists()
    details = dict(plan.details)
    assert details["machine"] == identity.Names(spec.slug).machine
    guest = IPv4Network(details["guest subnet"])
    assert guest.prefixlen == 30 and guest.subnet_of(IPv4Network("10.213.0.0/16"))
    address = details["bundle address"]
    assert details["egress allow list"] == f"{address}/32 only"
    assert details["guest DNS"].startswith(f"{address}:53, ")
    assert details["ports"].startswith("egress ")
    smolfile = Path(details["Smolfile"])
    assert smolfile == tmp_path / "stage" / "Smolfile"
    doc = tomllib.loads(smolfile.read_text())
    assert doc["net_backend"] == "virtio-net"
    assert doc["network"] == {"allow_cidrs": [f"{address}/32"]}
    port = dict(plan.data["allocation"])["ports"]["egress"]  # type: ignore[index]
    assert f"HTTPS_PROXY=http://{address}:{port}" in doc["env"]
    assert (tmp_path / "stage" / "bundle.yaml").is_file()
    assert plan.networks == (identity.Names(spec.slug).bundle_net,)
    # Only what runs is listed (and run): the proxy and its DNS responder, no gate outside a repository.
    assert plan.sidecars == ("egress",)
    daemons = [d.name for d in load_bundle_config(tmp_path / "stage" / "bundle.yaml").daemons]
    assert daemons == ["egress", "dns"]


def test_two_dry_runs_never_share_a_subnet_or_port(backend: SmolmachinesBackend, tmp_path: Path) -> None:
    plans = [backend.prepare(spec=builtin_spec(settings=backend.settings), stage_dir=tmp_path / str(i))
             for i in range(12)]
    blocks = [IPv4Network(str(dict(p.data["allocation"])["block"])) for p in plans]
    for i, a in enumerate(blocks):
        for b in blocks[i + 1:]:
            assert not a.overlaps(b)
    ports = [port for p in plans for port in dict(dict(p.data["allocation"])["ports"]).values()]
    assert len(ports) == len(set(ports))


def test_same_slug_is_stable(backend: SmolmachinesBackend, tmp_path: Path) -> None:
    spec = builtin_spec(settings=backend.settings)
    first = backend.prepare(spec=spec, stage_dir=tmp_path / "a").data["allocation"]
    second = backend.prepare(spec=spec, stage_dir=tmp_path / "b").data["allocation"]
    assert first == second


def test_avoids_a_port_someone_listens_on(backend: SmolmachinesBackend, tmp_path: Path,
                                          monkeypatch: pytest.MonkeyPatch) -> None:
    spec = builtin_spec(settings=backend.settings)
    wanted = dict(dict(backend.prepare(spec=spec, stage_dir=tmp_path / "a").data["allocation"])["ports"])
    prepare.lease_book(backend.settings).remove(spec.slug)
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", wanted["egress"]))
        sock.listen()
        again = dict(dict(backend.prepare(spec=spec, stage_dir=tmp_path / "b").data["allocation"])["ports"])
    assert again["egress"] != wanted["egress"]


def test_avoids_a_docker_network_on_its_block(backend: SmolmachinesBackend, tmp_path: Path) -> None:
    spec = builtin_spec(settings=backend.settings)
    block = str(dict(backend.prepare(spec=spec, stage_dir=tmp_path / "a").data["allocation"])["block"])
    prepare.lease_book(backend.settings).remove(spec.slug)
    name = f"cb-smol-test-{spec.slug}"
    labels = identity.labels(slug=spec.slug, backend="smolmachines", role="test", agent="claude",
                             home=str(backend.settings.home))
    label_args = [a for k, v in labels.items() for a in ("--label", f"{k}={v}")]
    RUNNER.run(Command(("docker", "network", "create", *label_args, "--subnet", block, name)))
    try:
        other = str(dict(backend.prepare(spec=spec, stage_dir=tmp_path / "b").data["allocation"])["block"])
    finally:
        RUNNER.run(Command(("docker", "network", "rm", name)))
    assert not IPv4Network(other).overlaps(IPv4Network(block))


def test_expired_dry_run_lease_is_forgotten(backend: SmolmachinesBackend, tmp_path: Path) -> None:
    spec = builtin_spec(settings=backend.settings)
    backend.prepare(spec=spec, stage_dir=tmp_path / "a")
    book = prepare.lease_book(backend.settings)
    (lease,) = [ls for ls in book.read() if ls.slug == spec.slug]
    assert book.held(lease, lease.created_at + 1)
    assert not book.held(lease, lease.created_at + LEASE_TTL + 1)
    book.prune(now=lease.created_at + LEASE_TTL + 1)
    assert spec.slug not in {ls.slug for ls in book.read()}


def test_full_pool_fails_with_one_line(backend: SmolmachinesBackend, tmp_path: Path) -> None:
    spec = builtin_spec(settings=backend.settings)
    with pytest.raises(BottleError) as err:
        prepare.allocate(slug=spec.slug, sidecars=("egress",), runner=RUNNER, settings=backend.settings,
                         pool=IPv4Network("172.17.0.0/24"))  # inside docker0's route: nothing free
    assert "no free /28" in str(err.value) and "\n" not in str(err.value)


def test_sidecars_follow_the_bottle(backend: SmolmachinesBackend) -> None:
    spec = builtin_spec(settings=backend.settings)
    assert prepare.active_sidecars(spec, git=False) == ("egress",)
    # Remotes alone do not start the gate's port: without a git workspace it has no mirror to serve.
    bottle = replace(spec.bottle, supervise=True,
                     git=GitDef(remotes=(GitRemote(name="origin", url="https://example.com/r.git"),)))
    with_all = replace(spec, bottle=bottle)
    assert prepare.active_sidecars(with_all, git=False) == ("egress", "supervise")
    assert prepare.active_sidecars(with_all, git=True) == ("egress", "git-gate", "supervise")


def test_a_git_workspace_gets_the_gate_port(backend: SmolmachinesBackend, tmp_path: Path) -> None:
    """``up`` inside a repository: git-gate is a sidecar with its own port on the bundle address, the
    plan says the workspace is a clone from it, and the guest learns the gate's URL."""
    repo = tmp_path / "repo"
    repo.mkdir()
    RUNNER.run(Command(("git", "init", "--quiet", str(repo))))
    spec = replace(builtin_spec(settings=backend.settings, cwd=repo), workspace=True)
    plan = backend.prepare(spec=spec, stage_dir=tmp_path / "stage")
    assert plan.sidecars == ("egress", "git-gate")
    alloc = dict(plan.data["allocation"])  # type: ignore[call-overload]
    ports, address = alloc["ports"], alloc["bundle_address"]
    assert set(ports) == {"egress", "git-gate"} and ports["egress"] != ports["git-gate"]
    details = dict(plan.details)
    assert details["workspace"] == (f"clone of {repo} (branch claude/{spec.slug}) from git-gate at "
                                    f"http://{address}:{ports['git-gate']}")
    doc = tomllib.loads((tmp_path / "stage" / "Smolfile").read_text())
    assert f"CLAUDE_BOTTLE_GIT_GATE_URL=http://{address}:{ports['git-gate']}" in doc["env"]
    assert doc["network"] == {"allow_cidrs": [f"{address}/32"]}  # the gate needs no other address
    daemons = [d.name for d in load_bundle_config(tmp_path / "stage" / "bundle.yaml").daemons]
    assert daemons == ["egress", "dns", "git-gate"]
    assert not spec.state_dir.exists()  # the mirror is made at launch, not by a dry run


def test_a_copied_workspace_leaves_secrets_out(backend: SmolmachinesBackend, tmp_path: Path) -> None:
    """Outside git the plan names what the copy leaves out (claude_bottle.workspace) and hands the
    paths to launch, which builds the archive with the docker plugin's provision module."""
    project = tmp_path / "project"
    project.mkdir()
    (project / ".env").write_text("TOKEN=x\n")
    (project / "main.py").write_text("print(1)\n")
    spec = replace(builtin_spec(settings=backend.settings, cwd=project), workspace=True)
    plan = backend.prepare(spec=spec, stage_dir=tmp_path / "stage")
    note = dict(plan.details)["not copied"]
    assert note.startswith("1 path that may hold secrets: .env (environment file)")
    assert plan.data["workspace_exclude"] == {".env": "environment file"}
