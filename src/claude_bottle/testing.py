"""Helpers for backend authors' test suites: a :class:`FakeBackend` and the :func:`check_backend`
conformance run every backend should pass.

Use them from pytest like this::

    import pytest
    from claude_bottle import testing

    @pytest.fixture
    def fake(tmp_path, monkeypatch):
        monkeypatch.setenv("CLAUDE_BOTTLE_HOME", str(tmp_path))
        with testing.fake_backend() as cls:   # registered until the block ends, even on failure
            yield cls

    def test_conformance(tmp_path, monkeypatch):
        monkeypatch.setenv("CLAUDE_BOTTLE_HOME", str(tmp_path))
        backend = MyBackend(runner=SubprocessRunner(), settings=load_settings())
        testing.check_backend(backend)
"""

from __future__ import annotations

import contextlib
import json
import shutil
import sys
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, cast

from claude_bottle import identity
from claude_bottle.backends import registry
from claude_bottle.backends.base import (
    ActiveBottle,
    Backend,
    Bottle,
    BottlePlan,
    BottleSpec,
    NullProgress,
    Problem,
    Progress,
    SecretValues,
)
from claude_bottle.config import Settings
from claude_bottle.errors import BottleError
from claude_bottle.plan import CleanupItem, CleanupOutcome, CleanupPlan, CleanupReport
from claude_bottle.runner import Result
from claude_bottle.state import StateDir

__all__ = [
    "ConformanceError",
    "ConformanceReport",
    "FakeBackend",
    "builtin_spec",
    "check_backend",
    "fake_backend",
]

# Removal order, as a real backend would: containers before the networks they sit on.
_KIND_ORDER = {"container": 0, "volume": 1, "network": 2}


class FakeBackend(Backend):
    """A real :class:`Backend` whose "resources" are labelled JSON records under
    ``$CLAUDE_BOTTLE_HOME/fake-backends/<NAME>/``, so enumerate and cleanup do real work.

    Tune it by subclassing (or through :func:`fake_backend`'s keyword arguments):
    ``PROBLEMS`` (what preflight reports), ``FAIL_LAUNCH`` (launch fails after its first resource and
    undoes it), ``FAIL_CLEANUP`` (resource names whose removal fails), ``EXEC_STATUS``, and
    ``AGENT_OUTPUT`` (what ``run_in_agent`` prints: a canned probe output for ``check``).
    """

    NAME: ClassVar[str] = "fake"
    PROBLEMS: ClassVar[tuple[Problem, ...]] = ()
    FAIL_LAUNCH: ClassVar[bool] = False
    FAIL_CLEANUP: ClassVar[frozenset[str]] = frozenset()
    EXEC_STATUS: ClassVar[int] = 0
    AGENT_OUTPUT: ClassVar[str] = ""

    @property
    def root(self) -> Path:
        return self.settings.home / "fake-backends" / self.NAME

    # -- resources ------------------------------------------------------------------------------
    def records(self) -> list[dict[str, Any]]:
        """Every resource record of this home, in removal order."""
        if not self.root.is_dir():
            return []
        found = [json.loads(p.read_text()) for p in sorted(self.root.glob("*.json"))]
        mine = [r for r in found if r["labels"].get(identity.LABEL_HOME) == str(self.settings.home)]
        return sorted(mine, key=lambda r: (_KIND_ORDER.get(r["kind"], 9), r["name"]))

    def _create(self, *, kind: str, name: str, role: str, spec: BottleSpec) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        labels = identity.labels(
            slug=spec.slug, backend=self.NAME, role=role, agent=spec.agent.name, home=str(self.settings.home)
        )
        record = {"kind": kind, "name": name, "labels": labels}
        (self.root / f"{name}.json").write_text(json.dumps(record))

    def _remove(self, name: str) -> None:
        if name in self.FAIL_CLEANUP:
            raise BottleError(f"simulated failure removing {name}")
        (self.root / f"{name}.json").unlink(missing_ok=True)

    @staticmethod
    def _resources(slug: str) -> list[tuple[str, str, str]]:
        names = identity.Names(slug)
        return [("network", names.internal_net, "network"), ("container", names.bundle, "sidecars"),
                ("container", names.agent, "agent")]

    # -- the contract ---------------------------------------------------------------------------
    def preflight(self) -> list[Problem]:
        return list(self.PROBLEMS)

    def describe(self) -> dict[str, str]:
        return {"root": str(self.root)}

    def prepare(self, *, spec: BottleSpec, stage_dir: Path) -> BottlePlan:
        resources = self._resources(spec.slug)
        rendered = {"agent": spec.agent.name, "hosts": list(spec.bottle.egress.hosts)}
        (stage_dir / "fake.json").write_text(json.dumps(rendered))
        return BottlePlan(
            spec=spec,
            backend=self.NAME,
            images=(("agent", "fake/agent:1"), ("sidecars", "fake/sidecars:1")),
            sidecars=("egress",),
            allowed_hosts=spec.bottle.egress.hosts,
            networks=(identity.Names(spec.slug).internal_net,),
            stage_dir=stage_dir,
            details=(("fake root", str(self.root)),),
            data={"resources": [list(r) for r in resources]},
        )

    def launch(self, *, plan: BottlePlan, secrets: SecretValues, progress: Progress) -> Bottle:
        made: list[str] = []
        resources = cast("list[list[str]]", plan.data["resources"])  # what prepare put there
        try:
            for kind, name, role in resources:
                with progress.phase(f"create {kind} {name}"):
                    self._create(kind=kind, name=name, role=role, spec=plan.spec)
                    made.append(name)
                if self.FAIL_LAUNCH:
                    raise BottleError(f"simulated launch failure after {name}")
        except BaseException:
            for name in reversed(made):
                (self.root / f"{name}.json").unlink(missing_ok=True)
            raise
        spec = plan.spec
        return Bottle(slug=spec.slug, backend=self.NAME, state_dir=spec.state_dir, services=plan.sidecars)

    def down(self, *, slug: str) -> CleanupReport:
        items = [i for i in self._items() if i.slug == slug]
        return self.cleanup(plan=CleanupPlan(tuple(items)))

    def exec_argv(self, *, slug: str, argv: list[str], interactive: bool) -> int:
        if not any(i.slug == slug for i in self._items()):
            raise BottleError(f"no {self.NAME} bottle {slug}")
        self.root.mkdir(parents=True, exist_ok=True)
        with (self.root / "exec.log").open("a") as log:
            log.write(json.dumps({"slug": slug, "argv": argv, "interactive": interactive}) + "\n")
        return self.EXEC_STATUS

    def run_in_agent(self, *, slug: str, argv: list[str], input: bytes | None = None,
                     timeout: float = 120) -> Result:
        self.exec_argv(slug=slug, argv=argv, interactive=False)  # the same check and log
        return Result(argv=tuple(argv), returncode=self.EXEC_STATUS, stdout=self.AGENT_OUTPUT)

    def logs(self, *, slug: str, follow: bool) -> int:
        sys.stdout.write(f"{self.NAME} logs of {slug}\n")
        return 0

    def enumerate_active(self) -> list[ActiveBottle]:
        out = []
        for record in self.records():
            lab = record["labels"]
            if lab[identity.LABEL_ROLE] != "agent":
                continue
            meta = StateDir(self.settings.state_root / lab[identity.LABEL_SLUG]).read()
            if meta is not None and meta.live:
                out.append(ActiveBottle(meta.slug, self.NAME, meta.agent, meta.started_at, meta.services))
        return out

    def _items(self) -> list[CleanupItem]:
        return [
            CleanupItem(self.NAME, r["kind"], r["name"], f"bottle {r['labels'][identity.LABEL_SLUG]}",
                        slug=r["labels"][identity.LABEL_SLUG])
            for r in self.records()
        ]

    def prepare_cleanup(self, *, protected: frozenset[str]) -> CleanupPlan:
        return CleanupPlan(tuple(i for i in self._items() if i.slug not in protected))

    def cleanup(self, *, plan: CleanupPlan) -> CleanupReport:
        outcomes = []
        for item in plan.items:
            try:
                self._remove(item.ident)
                outcomes.append(CleanupOutcome(item, ok=True))
            except BottleError as exc:
                outcomes.append(CleanupOutcome(item, ok=False, error=str(exc)))
        return CleanupReport(tuple(outcomes))


@contextmanager
def fake_backend(name: str = "fake", **overrides: object) -> Iterator[type[FakeBackend]]:
    """Register a :class:`FakeBackend` subclass named ``name`` (class attributes from
    ``overrides``) in the registry for the ``with`` block; it is always unregistered afterwards."""
    cls = type(f"FakeBackend_{name}", (FakeBackend,), {"NAME": name, **overrides})
    with registry.registered(cls):
        yield cls


def builtin_spec(
    *, settings: Settings, cwd: Path | None = None, agent: str | None = None, workspace: bool = False
) -> BottleSpec:
    """A :class:`BottleSpec` of the built-in ``claude`` agent and ``default`` bottle (or the named
    ``agent``), with a fresh slug: what a conformance run launches."""
    from claude_bottle.manifest.loader import resolve_definitions  # noqa: PLC0415 - yaml only if used

    cwd = cwd or Path(tempfile.mkdtemp(prefix="claude-bottle-conformance-"))
    defs = resolve_definitions(settings=settings, cwd=cwd, agent=agent)
    slug = identity.new_slug(defs.agent.name)
    return BottleSpec(slug=slug, agent=defs.agent, bottle=defs.bottle, cwd=cwd,
                      state_dir=settings.state_root / slug, workspace=workspace)


class ConformanceError(AssertionError):
    """A backend broke the contract; the message says which step and how."""


@dataclass(frozen=True)
class ConformanceReport:
    slug: str
    steps: tuple[str, ...]


class _Check:
    """One conformance run; ``steps`` says how far it got, for the failure message."""

    def __init__(self, backend: Backend) -> None:
        self.backend = backend
        self.steps: list[str] = []

    def expect(self, ok: bool, what: str) -> None:
        if not ok:
            done = " -> ".join(self.steps) or "nothing"
            raise ConformanceError(f"{self.backend.NAME}: {what} (after {done})")

    def active(self) -> set[str]:
        return {a.slug for a in self.backend.enumerate_active()}

    def listed(self, slug: str, *, protected: frozenset[str] = frozenset()) -> tuple[CleanupItem, ...]:
        items = self.backend.prepare_cleanup(protected=protected).items
        return tuple(i for i in items if i.slug == slug or slug in i.ident)

    def preflight(self) -> None:
        problems = self.backend.preflight()
        self.expect(isinstance(problems, list), "preflight() must return a list")
        found = "; ".join(f"{p.summary} ({p.fix})" for p in problems)
        self.expect(not problems, f"preflight problems: {found}")
        self.expect(isinstance(self.backend.describe(), dict), "describe() must return a dict")
        self.steps.append("preflight")

    def dry_prepare(self, spec: BottleSpec) -> None:
        def snapshot() -> tuple[object, ...]:
            return (sorted(self.active()), self.backend.prepare_cleanup(protected=frozenset()).items)

        before = snapshot()
        stage = Path(tempfile.mkdtemp(prefix="claude-bottle-stage-"))
        try:
            plan = self.backend.prepare(spec=spec, stage_dir=stage)
        finally:
            shutil.rmtree(stage, ignore_errors=True)
        ok = plan.spec == spec and plan.backend == self.backend.NAME
        self.expect(ok, "prepare() returned a plan of another spec or backend")
        self.expect(snapshot() == before, "prepare() changed what enumerate/prepare_cleanup see")
        self.expect(not spec.state_dir.exists(), "prepare() created the state dir")
        self.steps.append("prepare")

    def launch(self, spec: BottleSpec, secrets: SecretValues, progress: Progress) -> None:
        # What the core's `up` does around the backend: state dir first, live mark last.
        state = StateDir(spec.state_dir)
        state.create(agent=spec.agent.name, bottle=spec.bottle.name, backend=self.backend.NAME, cwd=spec.cwd)
        (state.path / "stage").mkdir()
        plan = self.backend.prepare(spec=spec, stage_dir=state.path / "stage")
        bottle = self.backend.launch(plan=plan, secrets=secrets, progress=progress)
        ok = bottle.slug == spec.slug and bottle.backend == self.backend.NAME
        self.expect(ok, "launch() returned another bottle")
        state.mark_live(services=bottle.services)
        self.steps.append("launch")
        self.expect(spec.slug in self.active(), "enumerate_active() misses the live bottle")
        self.steps.append("enumerate")

    def cleanup_cycle(self, slug: str) -> None:
        guarded = self.listed(slug, protected=frozenset({slug}))
        self.expect(not guarded, "prepare_cleanup() lists a protected bottle's resources")
        mine = self.listed(slug)
        self.expect(bool(mine), "prepare_cleanup() does not list an unprotected bottle's resources")
        self.expect(all(i.backend == self.backend.NAME and i.slug == slug for i in mine),
                    "every cleanup item needs this backend's name and the bottle's slug")
        self.steps.append("prepare_cleanup")
        for attempt in ("cleanup", "cleanup again"):
            report = self.backend.cleanup(plan=CleanupPlan(mine))
            self.expect(len(report.outcomes) == len(mine), f"{attempt}: one outcome per item")
            self.expect(not report.failed, f"{attempt} failed: " + "; ".join(o.error for o in report.failed))
            self.expect(slug not in self.active(), f"enumerate_active() shows the bottle after {attempt}")
            self.steps.append(attempt)
        self.expect(not self.listed(slug), "prepare_cleanup() still lists resources after cleanup")
        for attempt in ("down", "down again"):
            self.expect(not self.backend.down(slug=slug).failed, f"{attempt} of a removed bottle failed")
            self.steps.append(attempt)


def check_backend(
    backend: Backend,
    *,
    spec_factory: Callable[[], BottleSpec] | None = None,
    settings: Settings | None = None,
    secrets: SecretValues | None = None,
    progress: Progress | None = None,
) -> ConformanceReport:
    """Take ``backend`` through a whole bottle life and raise :class:`ConformanceError` at the
    first broken rule: preflight -> prepare (no side effects) -> launch -> enumerate shows it ->
    prepare_cleanup protects it -> prepare_cleanup lists it -> cleanup -> gone -> cleanup again is
    a no-op -> down twice is a no-op. Whatever happens, the bottle is taken down at the end.

    ``spec_factory`` builds the spec; by default :func:`builtin_spec` on ``settings`` (default
    ``backend.settings``): the built-in ``claude`` agent in the ``default`` bottle."""
    check = _Check(backend)
    check.preflight()
    spec = (spec_factory or (lambda: builtin_spec(settings=settings or backend.settings)))()
    try:
        check.dry_prepare(spec)
        check.launch(spec, secrets or SecretValues(), progress or NullProgress())
        check.cleanup_cycle(spec.slug)
    finally:
        # Best-effort: a failure here must not hide the step that failed first.
        with contextlib.suppress(Exception):
            backend.down(slug=spec.slug)
        shutil.rmtree(spec.state_dir, ignore_errors=True)
    return ConformanceReport(slug=spec.slug, steps=tuple(check.steps))
