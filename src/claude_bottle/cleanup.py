"""Cross-backend cleanup: one plan from every backend plus orphan state dirs, one prompt, best-effort.

The protected set is the heart of it. A bottle is protected when *any* backend reports it live, when
its ``up`` is still running (metadata says launching), or when its metadata says live but the backend
that could confirm it is not installed, broken, or failed to answer: then we cannot tell, and a
cleanup that guesses wrong destroys someone's running session. Every backend gets the same set.
"""

from __future__ import annotations

import shutil
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from claude_bottle import gitwork, identity, worksave
from claude_bottle.backends import registry
from claude_bottle.errors import BottleError, backend_failure
from claude_bottle.plan import CleanupItem, CleanupOutcome, CleanupPlan, CleanupReport
from claude_bottle.state import Metadata, StateDir, list_state_dirs

if TYPE_CHECKING:
    from claude_bottle.backends.base import Backend
    from claude_bottle.config import Settings
    from claude_bottle.runner import Runner

__all__ = ["CORE", "CleanupSurvey", "apply", "survey"]

CORE = "core"
STATE_DIR = "state dir"
# A state dir without metadata.json may be an `up` between mkdir and its first write: leave it alone
# for this long.
FRESH_SECONDS = 60.0


@dataclass(frozen=True)
class CleanupSurvey:
    """The combined plan, what it protects, and what went wrong while asking the backends
    (``failed``: the backends that could not answer, so the plan may miss their leftovers)."""

    plan: CleanupPlan
    protected: frozenset[str]
    warnings: tuple[str, ...]
    settings: Settings = field(repr=False, compare=False)
    backends: Mapping[str, Backend] = field(default_factory=dict, repr=False, compare=False)
    failed: frozenset[str] = frozenset()


def _protected(
    backends: Mapping[str, Backend], metas: Mapping[str, Metadata | None], warnings: list[str],
    failures: dict[str, Exception],
) -> tuple[set[str], set[str]]:
    """Protected slugs, and the backends whose enumerate_active failed (added to ``failures``)."""
    protected: set[str] = set()
    failed: set[str] = set()
    for name, backend in backends.items():
        try:
            protected.update(a.slug for a in backend.enumerate_active())
        except Exception as exc:  # a failing backend makes us careful, never stops the rest
            failed.add(name)
            failures[name] = exc
            warnings.append(f"backend {name} could not list its live bottles ({exc}); its bottles are kept")
    for slug, meta in metas.items():
        if meta is None:
            continue
        if meta.launching:
            protected.add(slug)
        elif meta.live and (meta.backend not in backends or meta.backend in failed):
            protected.add(slug)
            if meta.backend not in backends:
                warnings.append(f"bottle {slug} is live on backend {meta.backend}, not available; kept")
    return protected, failed


def _unfetched(runner: Runner, state: StateDir) -> str:
    """The agent's pushed work lives only in the state dir's git mirror until ``fetch``: say so in
    the plan, so nobody removes it unawares."""
    try:
        branches = gitwork.unfetched_branches(runner=runner, state_dir=state.path)
    except BottleError:
        return ""
    return f"; unfetched {', '.join(branches)} (claude-bottle fetch {state.slug})" if branches else ""


def _state_dir_items(  # noqa: PLR0917 - one private caller, the survey's own state
    settings: Settings, runner: Runner, metas: Mapping[str, Metadata | None], protected: set[str],
    failed: set[str], warnings: list[str],
) -> list[CleanupItem]:
    items = []
    now = time.time()
    for state in list_state_dirs(settings.state_root):
        meta = metas.get(state.slug)
        # Only slug-named dirs are ours to reap: anything else under state/ was put there by hand.
        if state.slug in protected or state.preserved or not identity.is_slug(state.slug):
            continue
        if meta is None:
            try:
                age = now - state.path.stat().st_mtime
            except OSError:  # removed meanwhile (a concurrent down)
                continue
            if age < FRESH_SECONDS:
                continue
            why = "no metadata"
        elif meta.backend in failed:
            continue  # its backend could not tell us what belongs to it: keep its records
        else:
            why = "bottle no longer running" if meta.live else "up did not finish"
        unfetched = _unfetched(runner, state)
        if (state.path / worksave.KEPT_WORKSPACE).is_dir():
            unfetched += f"; the agent's /workspace is kept in {state.path / worksave.KEPT_WORKSPACE}"
        if unfetched:
            # The agent's work lives only here until fetch: cleanup never removes it (down --discard does).
            warnings.append(f"kept {state.path}{unfetched}, or `claude-bottle down {state.slug} --discard`")
            continue
        detail = f"{state.slug}: {why}"
        items.append(CleanupItem(CORE, STATE_DIR, str(state.path), detail, slug=state.slug))
    return items


def survey(*, settings: Settings, runner: Runner) -> CleanupSurvey:
    """Ask every backend for its cleanup plan under one protected set, and add orphan state dirs.
    Read-only. A backend that cannot answer is a warning beside a plan of the rest; when that plan is
    empty its failure is the error: an engine that is away must never read as "nothing to clean up"."""
    backends, broken = registry.instantiate_all(runner=runner, settings=settings)
    warnings = list(broken)
    metas = {state.slug: state.read() for state in list_state_dirs(settings.state_root)}
    failures: dict[str, Exception] = {}
    protected, failed = _protected(backends, metas, warnings, failures)
    frozen = frozenset(protected)
    plans = []
    for name, backend in backends.items():
        if name in failed:
            continue  # it could not say what is live: asking for its leftovers fails the same way
        try:
            plans.append(backend.prepare_cleanup(protected=frozen))
        except Exception as exc:
            failed.add(name)
            failures[name] = exc
            warnings.append(f"backend {name} could not plan its cleanup ({exc}); nothing of it is removed")
    plans.append(CleanupPlan(tuple(_state_dir_items(settings, runner, metas, protected, failed, warnings))))
    plan = CleanupPlan.merge(plans)
    if failures and not plan:
        raise backend_failure("cannot plan the cleanup", failures)
    return CleanupSurvey(plan, frozen, tuple(warnings), settings, backends, frozenset(failed))


def _remove_state_dir(item: CleanupItem, settings: Settings) -> CleanupOutcome:
    path = StateDir(settings.state_root / item.slug).path
    if str(path) != item.ident:  # only ever a dir directly under our state root
        return CleanupOutcome(item, ok=False, error=f"not a state dir of {settings.state_root}")
    try:
        shutil.rmtree(path)
    except FileNotFoundError:
        pass
    except OSError as exc:
        return CleanupOutcome(item, ok=False, error=str(exc))
    return CleanupOutcome(item, ok=True)


def _backend_outcomes(backend: Backend, plan: CleanupPlan) -> list[CleanupOutcome]:
    try:
        report = backend.cleanup(plan=plan)
    except Exception as exc:  # a backend that raises fails its own items, not the whole cleanup
        error = f"{backend.NAME} cleanup failed: {exc}"
        return [CleanupOutcome(i, ok=False, error=error) for i in plan.items]
    seen = {o.item for o in report.outcomes}
    silent = [i for i in plan.items if i not in seen]
    missing = [CleanupOutcome(i, ok=False, error="the backend reported nothing") for i in silent]
    return [*report.outcomes, *missing]


def apply(found: CleanupSurvey) -> CleanupReport:
    """Remove everything in the plan: each backend gets only its own items; state dirs go last, so
    a crash half-way leaves the metadata that explains what is left. One failure never stops the rest."""
    outcomes: list[CleanupOutcome] = []
    for name, backend in found.backends.items():
        mine = found.plan.for_backend(name)
        if mine:
            outcomes.extend(_backend_outcomes(backend, mine))
    # A state dir outlives a failed removal of its bottle's resources: it explains what is left.
    unfinished = {o.item.slug for o in outcomes if not o.ok}
    for item in found.plan.for_backend(CORE).items:
        if item.slug in unfinished:
            outcomes.append(CleanupOutcome(item, ok=False, error="kept: its bottle's resources remain"))
        else:
            outcomes.append(_remove_state_dir(item, found.settings))
    return CleanupReport(tuple(outcomes))
