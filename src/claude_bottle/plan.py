"""Cleanup plans and results: frozen values every backend returns and the core merges and renders.

A backend's ``prepare_cleanup`` returns a :class:`CleanupPlan` (read-only, no side effects); the core
merges every backend's plan, shows one table, asks once, then hands each backend back its own items
through ``cleanup``, which answers with one :class:`CleanupOutcome` per item.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from enum import StrEnum

__all__ = ["CleanupItem", "CleanupOutcome", "CleanupPlan", "CleanupReport", "ReportStatus"]


@dataclass(frozen=True)
class CleanupItem:
    """One thing to remove.

    ``backend`` is the name of the backend that will remove it (``core`` for state dirs), ``kind`` a
    short noun (``container``, ``network``, ``volume``, ``machine``, ``state dir``), ``ident`` what
    finds it again (a name, id or path) and ``detail`` a human hint (the slug, why it is an orphan).
    """

    backend: str
    kind: str
    ident: str
    detail: str = ""
    slug: str = ""


@dataclass(frozen=True)
class CleanupPlan:
    """An ordered set of items. Order matters: containers before the networks they sit on."""

    items: tuple[CleanupItem, ...] = ()

    def __bool__(self) -> bool:
        return bool(self.items)

    def __len__(self) -> int:
        return len(self.items)

    def for_backend(self, name: str) -> CleanupPlan:
        return CleanupPlan(tuple(i for i in self.items if i.backend == name))

    @classmethod
    def merge(cls, plans: Iterable[CleanupPlan]) -> CleanupPlan:
        return cls(tuple(item for plan in plans for item in plan.items))


@dataclass(frozen=True)
class CleanupOutcome:
    """What happened to one item. An item already gone counts as ``ok``."""

    item: CleanupItem
    ok: bool
    error: str = ""


class ReportStatus(StrEnum):
    SUCCESS = "success"
    PARTIAL = "partial"
    ERROR = "error"
    NOTHING = "nothing"


@dataclass(frozen=True)
class CleanupReport:
    outcomes: tuple[CleanupOutcome, ...] = field(default_factory=tuple)

    @property
    def failed(self) -> tuple[CleanupOutcome, ...]:
        return tuple(o for o in self.outcomes if not o.ok)

    @property
    def status(self) -> ReportStatus:
        if not self.outcomes:
            return ReportStatus.NOTHING
        bad = len(self.failed)
        if bad == 0:
            return ReportStatus.SUCCESS
        return ReportStatus.ERROR if bad == len(self.outcomes) else ReportStatus.PARTIAL

    @classmethod
    def merge(cls, reports: Iterable[CleanupReport]) -> CleanupReport:
        return cls(tuple(o for r in reports for o in r.outcomes))
