"""``build --prune`` on the real engine, with throw-away images tagged into our repositories.

The engine is shared (other bottles' and other users' images live there), so the prune is confined to
this test's images by an extra label filter; the selection logic is the one ``build --prune`` runs."""

from __future__ import annotations

import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from claude_bottle.runner import SubprocessRunner
from claude_bottle_docker.images import ImageRefs
from claude_bottle_docker.prune import prune_images

pytestmark = pytest.mark.integration
BASE = "debian:bookworm-slim"


def docker(*argv: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["docker", *argv], capture_output=True, text=True, check=check)


def build(tmp: Path, marker: str, role: str, name: str, tag: str | None) -> str:
    """A one-line image FROM a local base (no network); returns its ID."""
    ctx = tmp / name
    ctx.mkdir()
    (ctx / "Dockerfile").write_text(
        f"FROM {BASE}\nLABEL dev.claude-bottle.image={role} dev.claude-bottle.prune-test={marker} n={name}\n")
    argv = ["build", "--quiet", *(["--tag", tag] if tag else []), str(ctx)]
    return docker(*argv).stdout.strip()


@pytest.fixture
def world(tmp_path: Path) -> Iterator[dict[str, str]]:
    if docker("image", "inspect", BASE, check=False).returncode != 0:
        pytest.skip(f"no usable docker engine or no local {BASE}")
    marker = uuid.uuid4().hex[:12]
    tags = {k: f"claude-bottle-{role}:prunetest-{marker}-{k}" for k, role in
            [("agent", "agent"), ("sidecars", "sidecars"), ("old", "agent"), ("old_sc", "sidecars"),
             ("used", "agent")]}
    made: dict[str, str] = {"marker": marker, "container": f"claude-bottle-prunetest-{marker}"}
    try:
        for key, tag in tags.items():
            made[key] = build(tmp_path, marker, tag.split(":")[0].removeprefix("claude-bottle-"), key, tag)
        made["stage"] = build(tmp_path, marker, "agent-build", "stage", None)  # untagged build stage
        made["foreign"] = build(tmp_path, marker, "agent", "foreign", f"prunetest-{marker}-foreign:x")
        docker("create", "--name", made["container"], "--label", f"dev.claude-bottle.prune-test={marker}",
               tags["used"], "true")
        yield {**made, **{f"tag_{k}": v for k, v in tags.items()}}
    finally:
        docker("rm", "--force", made["container"], check=False)
        leftovers = [*tags.values(), f"prunetest-{marker}-foreign:x", made.get("stage", "")]
        docker("image", "rm", "--force", *[ref for ref in leftovers if ref], check=False)


def present(ref: str) -> bool:
    return docker("image", "inspect", ref, check=False).returncode == 0


def test_prune_removes_old_keeps_current_and_used(world: dict[str, str]) -> None:
    keep = ImageRefs(agent=world["tag_agent"], sidecars=world["tag_sidecars"])
    report = prune_images(SubprocessRunner(), keep,
                          filters=(f"label=dev.claude-bottle.prune-test={world['marker']}",))
    assert sorted(report.removed) == sorted([world["tag_old"], world["tag_old_sc"], world["stage"]])
    assert report.failed == ()
    assert not present(world["tag_old"]) and not present(world["tag_old_sc"]) and not present(world["stage"])
    # Kept: the current tags, the stopped container's image, an image outside our repositories.
    assert present(world["tag_agent"]) and present(world["tag_sidecars"]) and present(world["tag_used"])
    assert present(f"prunetest-{world['marker']}-foreign:x")
    # The throw-away images share every layer with the base; deleting their IDs frees only metadata.
    assert report.reclaimed_bytes >= 0
