"""Finding and removing this backend's docker objects, by label only.

The engine filters on our slug label *key*, so an object without it (a user's own
``claude-bottle-something``) is never listed, whatever its name. On top of that we keep only objects
whose ``dev.claude-bottle.backend`` is ``docker`` (the smolmachines bundle is its backend's to
remove) and whose ``dev.claude-bottle.home`` is ours or absent (another home, such as a test suite,
owns its own bottles).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING

from claude_bottle.errors import BottleError
from claude_bottle.identity import LABEL_BACKEND, LABEL_SLUG
from claude_bottle.plan import CleanupItem, CleanupOutcome, CleanupPlan, CleanupReport
from claude_bottle_docker.docker import KINDS, Resource, is_no_such, list_command, parse_list, remove_command
from claude_bottle_docker.preflight import engine_error

if TYPE_CHECKING:
    from claude_bottle.runner import Runner

__all__ = ["inventory", "plan_items", "remove_items", "remove_slug"]

BACKEND = "docker"


def inventory(runner: Runner, *, slug: str | None = None, backend: str = BACKEND) -> list[Resource]:
    """Every labelled container, network and volume of ``backend`` (of one slug if given), in removal
    order. Raises :class:`BottleError` if docker cannot be asked: a cleanup that cannot see must not
    claim there is nothing to do."""
    filters = [f"label={LABEL_BACKEND}={backend}"]
    if slug is not None:
        filters.append(f"label={LABEL_SLUG}={slug}")
    found: list[Resource] = []
    for kind in KINDS:
        result = runner.run(list_command(kind, filters=filters))
        if not result.ok:
            detail = (result.stderr.strip().splitlines() or ["no output"])[-1]
            raise engine_error(result.stderr) or BottleError(f"cannot list docker {kind}s: {detail}")
        found.extend(parse_list(kind, result.stdout))
    return found


def plan_items(resources: Iterable[Resource], *, protected: frozenset[str], home: str) -> CleanupPlan:
    """Pure: the items to remove, containers before networks before volumes."""
    items = []
    for res in sorted(resources, key=lambda r: (KINDS.index(r.kind), r.slug, r.name)):
        if res.slug in protected:
            continue
        if res.home and res.home != home:
            continue
        items.append(_item(res))
    return CleanupPlan(tuple(items))


def remove_items(runner: Runner, items: Iterable[CleanupItem]) -> CleanupReport:
    """Best effort, one outcome per item; "no such ..." counts as removed. Never raises per item.

    One docker call per kind when it succeeds (a bottle's two containers, then its two networks);
    only if that call fails is each item retried alone, to tell which one failed and why."""
    ordered = sorted(items, key=lambda i: KINDS.index(i.kind) if i.kind in KINDS else len(KINDS))
    outcomes: list[CleanupOutcome] = []
    for kind in (*KINDS, None):
        group = [i for i in ordered if (i.kind == kind if kind else i.kind not in KINDS)]
        if kind is not None and len(group) > 1:
            try:
                batch = runner.run(remove_command(kind, *(i.ident for i in group)))
            except BottleError:
                batch = None
            if batch is not None and batch.ok:
                outcomes.extend(CleanupOutcome(i, ok=True) for i in group)
                continue
        outcomes.extend(_remove_one(runner, i) for i in group)
    return CleanupReport(tuple(outcomes))


def _remove_one(runner: Runner, item: CleanupItem) -> CleanupOutcome:
    if item.kind not in KINDS:
        return CleanupOutcome(item, ok=False, error=f"unknown kind {item.kind!r}")
    try:
        result = runner.run(remove_command(item.kind, item.ident))
    except BottleError as exc:  # the runner's own failures (timeout, docker missing)
        return CleanupOutcome(item, ok=False, error=str(exc))
    if result.ok or is_no_such(result.stderr):
        return CleanupOutcome(item, ok=True)
    detail = (result.stderr.strip().splitlines() or [f"exit status {result.returncode}"])[-1]
    return CleanupOutcome(item, ok=False, error=detail)


def remove_slug(runner: Runner, slug: str) -> CleanupReport:
    """Everything labelled with ``slug``, of any home (the user named it). Idempotent."""
    return remove_items(runner, (_item(r) for r in inventory(runner, slug=slug)))


def _item(res: Resource) -> CleanupItem:
    """Removal goes by ID (names are shown in ``detail``): if ours vanished and someone made an
    unlabelled object with the same name since the plan was shown, the ID misses it instead."""
    ident = res.ident[:12] if res.kind in ("container", "network") else res.name
    detail = f"{res.name} ({res.role})" if res.role else res.name
    return CleanupItem(backend=BACKEND, kind=res.kind, ident=ident, detail=detail, slug=res.slug)
