"""The push policy git-gate's pre-receive hook enforces. Pure: git is reached through ``is_ancestor``.

Rules (each refusal names its rule, so the agent and the user can tell what to change):

* ``scope``: only refs matching the bottle's push patterns may change (by default ``claude/<slug>`` and
  ``claude/<slug>/*``; ``git.push`` in the bottle definition widens it). Tags are refs like any other:
  outside the scope unless a ``refs/tags/...`` pattern allows them.
* ``remote-branches``: a push addressed to a declared remote must also match that remote's branches.
* ``no-delete``: a ref that existed when the bottle started (the *baseline*) is never deleted.
* ``no-rewrite``: a non-fast-forward update must keep the ref's baseline commit in its history, so
  history the user had is never rewritten; refs the agent created itself may be rewritten freely.
* ``tag-immutable``: an existing tag never moves.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

from claude_bottle.sidecars.gitgate.config import branch_matches

__all__ = ["ZERO", "Refusal", "Update", "check_updates", "is_zero"]

ZERO = "0" * 40


def is_zero(sha: str) -> bool:
    return set(sha) == {"0"}


@dataclass(frozen=True)
class Update:
    old: str
    new: str
    ref: str

    @property
    def deletes(self) -> bool:
        return is_zero(self.new)

    @property
    def creates(self) -> bool:
        return is_zero(self.old)


@dataclass(frozen=True)
class Refusal:
    ref: str
    rule: str
    reason: str

    def line(self) -> str:
        return f"refused {self.ref}: rule {self.rule}: {self.reason}"


def _pretty(patterns: Sequence[str]) -> str:
    return ", ".join(patterns) or "(nothing)"


def check_updates(
    updates: Sequence[Update],
    *,
    push: Sequence[str],
    baseline: Mapping[str, str],
    is_ancestor: Callable[[str, str], bool],
    remote: str | None = None,
    remote_branches: Sequence[str] = (),
) -> list[Refusal]:
    """Every refusal for ``updates``; an empty list means the push may go ahead."""
    refusals: list[Refusal] = []
    for up in updates:
        refusal = _check_one(up, push=push, baseline=baseline, is_ancestor=is_ancestor,
                             remote=remote, remote_branches=remote_branches)
        if refusal is not None:
            refusals.append(refusal)
    return refusals


def _check_one(  # noqa: PLR0911 - one return per rule reads best
    up: Update,
    *,
    push: Sequence[str],
    baseline: Mapping[str, str],
    is_ancestor: Callable[[str, str], bool],
    remote: str | None,
    remote_branches: Sequence[str],
) -> Refusal | None:
    if not branch_matches(up.ref, tuple(push)):
        return Refusal(up.ref, "scope", f"this bottle may push only {_pretty(push)}; "
                       "to allow more, add a pattern to git.push in the bottle definition")
    if remote is not None and not branch_matches(up.ref, tuple(remote_branches)):
        return Refusal(up.ref, "remote-branches", f"remote {remote} accepts only "
                       f"{_pretty(remote_branches)}; change its branches in the bottle definition")
    base = baseline.get(up.ref)
    if up.deletes:
        if base is not None:
            return Refusal(up.ref, "no-delete", "it existed before this bottle started; deletes are refused")
        return None
    if up.creates:
        return None
    if up.ref.startswith("refs/tags/"):
        return Refusal(up.ref, "tag-immutable", "an existing tag never moves; push a new tag instead")
    if is_ancestor(up.old, up.new):
        return None
    if base is not None and not is_ancestor(base, up.new):
        return Refusal(up.ref, "no-rewrite", f"non-fast-forward update drops {base[:12]}, which the ref held "
                       "when the bottle started; push on top of it instead of rewriting it")
    return None
