"""``claude-bottle build --prune``: remove our superseded images, keeping the current ones.

Every input change gives the images a new tag (see images.py), so each upgrade leaves the previous
``claude-bottle-agent:<hash>`` / ``claude-bottle-sidecars:<hash>`` behind, plus untagged build-stage
images. An image is *ours* only when it carries our role label (``dev.claude-bottle.image``, set by the
Dockerfiles) with one of our values AND, when tagged, sits in one of our repositories: a user's image
that merely reuses a name or a label is never touched. An image any container uses (running or stopped)
is kept; one the engine still refuses to remove (a container created meanwhile) is reported, not fatal.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from claude_bottle.runner import Command

if TYPE_CHECKING:
    from claude_bottle.backends.base import Progress
    from claude_bottle.runner import Runner
    from claude_bottle_docker.images import ImageRefs

__all__ = ["ImageRow", "PruneReport", "candidates", "format_bytes", "prune_images", "report_prune"]

REPOSITORIES = ("claude-bottle-agent", "claude-bottle-sidecars")
# The final images' roles and their build stages' (which the classic builder leaves untagged).
ROLE_VALUES = ("agent", "sidecars", "agent-build", "sidecars-build")
_LABEL = "dev.claude-bottle.image"
_NONE = "<none>"


@dataclass(frozen=True)
class ImageRow:
    ident: str
    repository: str
    tag: str
    role: str

    @property
    def ref(self) -> str:
        """What ``docker rmi`` is given: the tag (so other tags of the same ID survive), else the ID."""
        return self.ident if self.repository == _NONE else f"{self.repository}:{self.tag}"


@dataclass(frozen=True)
class PruneReport:
    removed: tuple[str, ...]
    # The deleted images' sizes: an upper bound, since layers they shared with a kept image stay.
    reclaimed_bytes: int
    failed: tuple[tuple[str, str], ...]  # (ref, the engine's reason)


def _list(runner: Runner, filters: tuple[str, ...]) -> list[ImageRow]:
    argv = ["docker", "image", "ls", "--no-trunc", "--filter", f"label={_LABEL}"]
    for extra in filters:
        argv += ["--filter", extra]
    argv += ["--format", "{{.ID}}\t{{.Repository}}\t{{.Tag}}"]
    listed = [line.split("\t") for line in runner.run(Command(tuple(argv), timeout=60)).stdout.splitlines()]
    listed = [parts for parts in listed if len(parts) == 3]
    if not listed:
        return []
    # ``image ls`` cannot show a label's value; ``image inspect`` can (one call for all IDs).
    ids = tuple(dict.fromkeys(parts[0] for parts in listed))
    fmt = "{{.Id}}\t{{index .Config.Labels \"" + _LABEL + "\"}}"
    res = runner.run(Command(("docker", "image", "inspect", "--format", fmt, *ids), check=False, timeout=60))
    roles = dict(line.split("\t", 1) for line in res.stdout.splitlines() if "\t" in line)
    return [ImageRow(ident, repo, tag, roles.get(ident, "")) for ident, repo, tag in listed]


def candidates(
    rows: list[ImageRow], *, keep: set[str], keep_ids: set[str], in_use: set[str]
) -> list[ImageRow]:
    """The rows to remove. Pure: ours, not a kept tag or ID, not used by a container."""
    chosen = []
    for row in rows:
        if row.role not in ROLE_VALUES or row.ident in in_use or row.ident in keep_ids:
            continue
        if row.repository == _NONE:
            if row.tag == _NONE:
                chosen.append(row)
        elif row.repository in REPOSITORIES and row.ref not in keep:
            chosen.append(row)
    return chosen


def _in_use(runner: Runner) -> set[str]:
    """Image IDs of every container on the engine, running or stopped."""
    ids = runner.run(Command(("docker", "container", "ls", "--all", "--quiet", "--no-trunc"), timeout=60))
    containers = ids.stdout.split()
    if not containers:
        return set()
    # check=False: a container removed between the two calls must not abort the prune.
    res = runner.run(Command(("docker", "container", "inspect", "--format", "{{.Image}}", *containers),
                             check=False, timeout=60))
    return {line.strip() for line in res.stdout.splitlines() if line.strip()}


def _ids_of(runner: Runner, refs: tuple[str, ...]) -> dict[str, tuple[str, int]]:
    """ref -> (image ID, size in bytes) for the refs that exist."""
    found: dict[str, tuple[str, int]] = {}
    for ref in refs:
        res = runner.run(Command(("docker", "image", "inspect", "--format", "{{.Id}} {{.Size}}", ref),
                                 check=False, timeout=30))
        parts = res.stdout.split()
        if res.ok and len(parts) == 2 and parts[1].isdigit():
            found[ref] = (parts[0], int(parts[1]))
    return found


def prune_images(runner: Runner, keep: ImageRefs, *, filters: tuple[str, ...] = ()) -> PruneReport:
    """Remove our images other than ``keep``. ``filters`` (extra ``docker image ls --filter`` values)
    narrow the selection further; tests use it to stay within their own images on a shared engine."""
    kept = {keep.agent, keep.sidecars}
    keep_ids = {ident for ident, _ in _ids_of(runner, tuple(kept)).values()}
    chosen = candidates(_list(runner, filters), keep=kept, keep_ids=keep_ids, in_use=_in_use(runner))
    sizes = {ident: size for ident, size in _ids_of(runner, tuple({row.ident for row in chosen})).values()}
    removed: list[str] = []
    failed: list[tuple[str, str]] = []
    deleted: set[str] = set()
    for row in chosen:
        res = runner.run(Command(("docker", "image", "rm", row.ref), check=False, timeout=120))
        if not res.ok:
            lines = [ln for ln in res.stderr.splitlines() if ln.strip()]
            failed.append((row.ref, lines[-1].strip() if lines else "docker image rm failed"))
            continue
        removed.append(row.ref)
        deleted.update(ln.split(":", 1)[1].strip() for ln in res.stdout.splitlines()
                       if ln.startswith("Deleted:"))
    # Only an image whose ID the engine deleted frees space: removing one of several tags frees nothing.
    reclaimed = sum(size for ident, size in sizes.items() if ident in deleted)
    return PruneReport(removed=tuple(removed), reclaimed_bytes=reclaimed, failed=tuple(failed))


def format_bytes(size: int) -> str:
    value = float(size)
    for unit in ("B", "KB", "MB", "GB"):
        if value < 1000 or unit == "GB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1000
    return f"{size} B"  # pragma: no cover - the loop always returns


def report_prune(report: PruneReport, progress: Progress) -> None:
    """One note per removed image and per refusal, then the total."""
    for ref in report.removed:
        progress.note(f"removed {ref}")
    for ref, reason in report.failed:
        progress.note(f"kept {ref}: {reason}")
    size = format_bytes(report.reclaimed_bytes)
    progress.note(f"pruned {len(report.removed)} image(s), reclaimed up to {size}")
