"""Finding and removing this backend's leftovers: labelled smolvm machines, then the bundle's labelled
Docker container and network.

Selection is by label only: a machine is ours when ``machine ls --json`` shows our slug label and
``dev.claude-bottle.backend = smolmachines``; a machine named ``claude-bottle-*`` without them is
never listed. Machines and Docker objects whose ``dev.claude-bottle.home`` names another home belong
to that home's cleanup. Removal is best-effort per item (stop, then delete for machines; force-remove
for containers; remove for networks), and "already gone" counts as success.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from claude_bottle.errors import BottleError
from claude_bottle.identity import LABEL_AGENT, LABEL_BACKEND, LABEL_HOME, LABEL_ROLE, LABEL_SLUG
from claude_bottle.plan import CleanupItem, CleanupOutcome, CleanupPlan, CleanupReport
from claude_bottle_smolmachines.engine import Smolvm, SmolvmError

__all__ = ["BACKEND", "Machine", "machine_items", "our_machines", "remove_machine", "remove_machines"]

BACKEND = "smolmachines"
MACHINE = "machine"


@dataclass(frozen=True)
class Machine:
    """One labelled smolvm machine as ``machine ls --json`` reports it."""

    name: str
    slug: str
    state: str
    role: str = ""
    agent: str = ""
    home: str = ""

    @property
    def running(self) -> bool:
        return self.state == "running"


def our_machines(listing: Iterable[Mapping[str, object]]) -> list[Machine]:
    """Pure: the machines carrying our slug label and this backend's label."""
    out = []
    for row in listing:
        labels = row.get("labels")
        if not isinstance(labels, dict):
            continue
        slug = labels.get(LABEL_SLUG)
        if not slug or labels.get(LABEL_BACKEND) != BACKEND:
            continue
        out.append(Machine(name=str(row.get("name", "")), slug=str(slug), state=str(row.get("state", "")),
                           role=str(labels.get(LABEL_ROLE, "")), agent=str(labels.get(LABEL_AGENT, "")),
                           home=str(labels.get(LABEL_HOME, ""))))
    return out


def machine_items(machines: Iterable[Machine], *, protected: frozenset[str], home: str,
                  any_home: bool = False) -> list[CleanupItem]:
    """Pure: cleanup items for machines not protected and (unless ``any_home``) not another home's."""
    items = []
    for m in sorted(machines, key=lambda m: (m.slug, m.name)):
        if m.slug in protected or (not any_home and m.home and m.home != home) or not m.name:
            continue
        items.append(CleanupItem(backend=BACKEND, kind=MACHINE, ident=m.name,
                                 detail=f"smolvm machine, {m.state or 'unknown state'}", slug=m.slug))
    return items


def remove_machine(smolvm: Smolvm, name: str) -> None:
    """Stop, then delete; a machine already gone is success. Raises :class:`SmolvmError` otherwise."""
    try:
        smolvm.stop(name=name)
    except SmolvmError as exc:
        if exc.code == "NOT_FOUND":
            return
        # INVALID_STATE ("not running") and a failed stop both fall through: delete --force stops too.
    try:
        smolvm.delete(name=name)
    except SmolvmError as exc:
        if exc.code != "NOT_FOUND":
            raise


def remove_machines(smolvm: Smolvm, items: Iterable[CleanupItem]) -> list[CleanupOutcome]:
    outcomes = []
    for item in items:
        try:
            remove_machine(smolvm, item.ident)
        except BottleError as exc:  # the runner's own failures (timeout, binary gone)
            outcomes.append(CleanupOutcome(item, ok=False, error=str(exc)))
            continue
        outcomes.append(CleanupOutcome(item, ok=True))
    return outcomes


def report(outcomes: Iterable[CleanupOutcome]) -> CleanupReport:
    return CleanupReport(tuple(outcomes))


def plan(items: Iterable[CleanupItem]) -> CleanupPlan:
    return CleanupPlan(tuple(items))
