"""The real smolvm binary (from the smolmachines wheel) with an isolated ``--state-dir``: everything
that does not boot a VM. This host cannot boot one (PVM), so no test here calls ``machine start``.

Machines are created from the Smolfile ``prepare`` rendered, carrying the labels ``launch`` gives
them, then listed, cleaned up, and an unlabelled ``claude-bottle-*`` machine is left alone.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tomllib
from pathlib import Path

import pytest

from claude_bottle import identity
from claude_bottle.config import load_settings
from claude_bottle.plan import CleanupItem, CleanupPlan
from claude_bottle.runner import Command, SubprocessRunner
from claude_bottle.state import StateDir
from claude_bottle.testing import builtin_spec
from claude_bottle_smolmachines import SmolmachinesBackend
from claude_bottle_smolmachines.engine import STATE_DIR_ENV, Smolvm, SmolvmError, find_engine
from claude_bottle_smolmachines.render import network_flags

pytestmark = pytest.mark.integration  # docker save and image lookups need the engine


@pytest.fixture
def backend() -> SmolmachinesBackend:
    engine = find_engine()
    assert engine is not None and engine.source == "smolmachines wheel"
    assert engine.state_dir == Path(os.environ[STATE_DIR_ENV])  # never the user's machines
    return SmolmachinesBackend(runner=SubprocessRunner(), settings=load_settings())


@pytest.fixture
def smolvm(backend: SmolmachinesBackend) -> Smolvm:
    return backend.smolvm


def _labels(slug: str, home: str, role: str = "agent") -> dict[str, str]:
    return identity.labels(slug=slug, backend="smolmachines", role=role, agent=identity.agent_of(slug),
                           home=home)


@pytest.fixture(scope="session")
def small_archive(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A real ``docker save`` archive, of the small base image (the agent image is 800 MB; smolvm
    reads and copies the archive at create, and only its format matters here)."""
    path = tmp_path_factory.mktemp("archive") / "bookworm.tar"
    save = ("docker", "save", "--output", str(path), "debian:bookworm-slim")
    SubprocessRunner().run(Command(save, timeout=300))
    return path


def _create_from_plan(backend: SmolmachinesBackend, tmp_path: Path, archive: Path) -> tuple[str, Path]:
    spec = builtin_spec(settings=backend.settings)
    plan = backend.prepare(spec=spec, stage_dir=tmp_path / spec.slug)
    smolfile = Path(str(plan.data["smolfile"]))
    alloc = dict(plan.data["allocation"])  # type: ignore[call-overload]
    # Put an archive where the rendered Smolfile says the agent image will be.
    image = Path(tomllib.loads(smolfile.read_text())["image"])
    image.parent.mkdir(parents=True, exist_ok=True)
    stand_in = not image.exists()  # the real archive may be cached already (the launch tests export it)
    if stand_in:
        image.symlink_to(archive)
    try:
        backend.smolvm.create(name=identity.Names(spec.slug).machine, smolfile=smolfile,
                              labels=_labels(spec.slug, str(backend.settings.home)),
                              extra=network_flags(guest_subnet=str(alloc["guest_subnet"]),
                                                  bundle_address=str(alloc["bundle_address"])))
    finally:
        if stand_in:
            image.unlink()  # never leave a stand-in where the real archive cache would find it
    return spec.slug, smolfile


def test_rendered_smolfile_is_accepted_and_labels_read_back(backend: SmolmachinesBackend, smolvm: Smolvm,
                                                            tmp_path: Path, small_archive: Path) -> None:
    slug, _ = _create_from_plan(backend, tmp_path, small_archive)
    name = identity.Names(slug).machine
    try:
        (row,) = [m for m in smolvm.ls() if m["name"] == name]
        assert row["labels"] == _labels(slug, str(backend.settings.home))
        assert row["network"] is True
        (cidr,) = row["allowed_cidrs"]  # type: ignore[misc]
        assert cidr.endswith("/32") and cidr.startswith("10.213.")
        # The guest's resolver is the bundle's responder at that same (only) allowed address.
        assert row["dns"] == cidr.removesuffix("/32")
        assert row["state"] == "created"
    finally:
        smolvm.delete(name=name)


@pytest.mark.parametrize("smolfile", ['net = true\ndns = "10.213.0.9"\n',
                                      '[network]\nallow_cidrs = ["10.213.0.9/32"]\ndns = "10.213.0.9"\n'])
def test_the_resolver_is_no_smolfile_key(smolvm: Smolvm, tmp_path: Path, smolfile: str) -> None:
    """Why ``--dns`` is a create flag: smolvm 1.32 refuses a ``dns`` key in the Smolfile."""
    sf = tmp_path / "Smolfile"
    sf.write_text(smolfile)
    name = identity.Names(identity.new_slug("dnskey")).machine
    with pytest.raises(SmolvmError, match="unknown field `dns`"):
        smolvm.create(name=name, smolfile=sf, labels={})
    assert name not in {m["name"] for m in smolvm.ls()}


def test_cleanup_takes_labelled_machines_and_leaves_the_rest(backend: SmolmachinesBackend, smolvm: Smolvm,
                                                             tmp_path: Path) -> None:
    home = str(backend.settings.home)
    crashed = identity.new_slug("crash")
    live = identity.new_slug("live")
    other_home = identity.new_slug("other")
    stranger = identity.new_slug("stranger")
    sf = tmp_path / "Smolfile"
    sf.write_text('net = false\n')
    smolvm.create(name=identity.Names(crashed).machine, smolfile=sf, labels=_labels(crashed, home))
    smolvm.create(name=identity.Names(live).machine, smolfile=sf, labels=_labels(live, home))
    smolvm.create(name=identity.Names(other_home).machine, smolfile=sf,
                  labels=_labels(other_home, "/elsewhere"))
    # A user's own machine named like ours, without our labels: never touched.
    smolvm.create(name=identity.Names(stranger).machine, smolfile=sf, labels={"owner": "me"})
    try:
        plan = backend.prepare_cleanup(protected=frozenset({live}))
        machines = [i for i in plan.items if i.kind == "machine"]
        assert [(i.ident, i.slug, i.backend) for i in machines] == [
            (identity.Names(crashed).machine, crashed, "smolmachines")]
        report = backend.cleanup(plan=plan)
        assert not report.failed
        names = {m["name"] for m in smolvm.ls()}
        assert identity.Names(crashed).machine not in names
        assert {identity.Names(s).machine for s in (live, other_home, stranger)} <= names
        # idempotent: the same plan again succeeds, nothing new is listed
        assert not backend.cleanup(plan=plan).failed
        again = backend.prepare_cleanup(protected=frozenset({live})).items
        assert not [i for i in again if i.kind == "machine"]
    finally:
        for slug in (crashed, live, other_home, stranger):
            with contextlib.suppress(SmolvmError):
                smolvm.delete(name=identity.Names(slug).machine)


def test_enumerate_tells_a_stopped_machine_from_a_running_one(backend: SmolmachinesBackend, smolvm: Smolvm,
                                                               tmp_path: Path) -> None:
    """A live state dir with a created-but-not-running machine is a stopped bottle: listed (so cleanup
    spares the work in it), not running."""
    slug = identity.new_slug("enum")
    state = StateDir(backend.settings.state_root / slug)
    state.create(agent="enum", bottle="default", backend="smolmachines", cwd=tmp_path)
    state.mark_live()
    sf = tmp_path / "Smolfile"
    sf.write_text("net = false\n")
    smolvm.create(name=identity.Names(slug).machine, smolfile=sf,
                  labels=_labels(slug, str(backend.settings.home)))
    try:
        assert {a.slug: a.state for a in backend.enumerate_active()}.get(slug) == "stopped"
    finally:
        smolvm.delete(name=identity.Names(slug).machine)
        shutil.rmtree(state.path)


def test_down_of_nothing_is_ok(backend: SmolmachinesBackend) -> None:
    report = backend.down(slug=identity.new_slug("gone"))
    assert not report.failed


def test_cleanup_reports_a_failure_without_blocking_the_rest(backend: SmolmachinesBackend, smolvm: Smolvm,
                                                             tmp_path: Path) -> None:
    """One item that cannot be removed (a name smolvm rejects as an option) fails alone; the next
    item is still removed."""
    slug = identity.new_slug("partial")
    sf = tmp_path / "Smolfile"
    sf.write_text("net = false\n")
    smolvm.create(name=identity.Names(slug).machine, smolfile=sf,
                  labels=_labels(slug, str(backend.settings.home)))
    bad = CleanupItem(backend="smolmachines", kind="machine", ident="--bogus", slug=slug)
    good = CleanupItem(backend="smolmachines", kind="machine", ident=identity.Names(slug).machine, slug=slug)
    report = backend.cleanup(plan=CleanupPlan((bad, good)))
    assert [o.ok for o in report.outcomes] == [False, True]
    assert report.outcomes[0].error
    assert identity.Names(slug).machine not in {m["name"] for m in smolvm.ls()}
