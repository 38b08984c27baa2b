"""``build --prune`` for the docker backend: which images are chosen and what is run. No engine: the
recording runner answers docker's listing commands."""

from __future__ import annotations

from claude_bottle.backends.base import NullProgress
from claude_bottle.config import Settings
from claude_bottle.runner import Command, Result
from claude_bottle_docker import backend as backend_mod
from claude_bottle_docker import images
from claude_bottle_docker.images import ImageRefs
from claude_bottle_docker.prune import ImageRow, candidates, format_bytes, prune_images

KEEP = ImageRefs(agent="claude-bottle-agent:new", sidecars="claude-bottle-sidecars:new")
ROWS = [
    ("sha256:a1", "claude-bottle-agent", "new", "agent"),
    ("sha256:a0", "claude-bottle-agent", "old", "agent"),
    ("sha256:s0", "claude-bottle-sidecars", "old", "sidecars"),
    ("sha256:u0", "claude-bottle-agent", "used", "agent"),  # a stopped container's image
    ("sha256:b0", "<none>", "<none>", "agent-build"),  # an old build stage
    ("sha256:x0", "myapp", "latest", "agent"),  # someone else's image that copies our label
    ("sha256:y0", "claude-bottle-agent", "mine", "something-else"),  # our name, not our label value
    ("sha256:r0", "claude-bottle-sidecars", "busy", "sidecars"),  # the engine will refuse this one
]
LISTING = "\n".join("\t".join(row[:3]) for row in ROWS)
ROLES = "\n".join(f"{row[0]}\t{row[3]}" for row in ROWS)


def _answer(cmd: Command) -> Result | None:
    argv = cmd.argv
    if argv[:3] == ("docker", "image", "ls"):
        return Result(argv, 0, LISTING + "\n")
    if argv[:3] == ("docker", "container", "ls"):
        return Result(argv, 0, "c1\nc2\n")
    if argv[:3] == ("docker", "container", "inspect"):
        return Result(argv, 0, "sha256:u0\nsha256:a1\n")
    if argv[:3] == ("docker", "image", "inspect") and "Labels" in argv[4]:
        return Result(argv, 0, ROLES + "\n")
    if argv[:3] == ("docker", "image", "inspect"):
        ids = {"claude-bottle-agent:new": "sha256:a1", "claude-bottle-sidecars:new": "sha256:s1"}
        ref = argv[-1]
        return Result(argv, 0, f"{ids.get(ref, ref)} 400000000\n")
    if argv[:3] == ("docker", "image", "rm"):
        if argv[3] == "claude-bottle-sidecars:busy":
            return Result(argv, 1, "", "Error response from daemon: conflict: image is being used\n")
        ident = {"claude-bottle-agent:old": "sha256:a0", "claude-bottle-sidecars:old": "sha256:s0"}.get(
            argv[3], argv[3])
        return Result(argv, 0, f"Untagged: {argv[3]}\nDeleted: {ident}\n")
    return None


def test_prune_removes_only_our_superseded_images(recorder):
    recorder.answer = _answer
    report = prune_images(recorder, KEEP)
    removed = [c.argv[3] for c in recorder.calls if c.argv[:3] == ("docker", "image", "rm")]
    assert removed == ["claude-bottle-agent:old", "claude-bottle-sidecars:old", "sha256:b0",
                       "claude-bottle-sidecars:busy"]
    assert report.removed == ("claude-bottle-agent:old", "claude-bottle-sidecars:old", "sha256:b0")
    assert report.failed == (("claude-bottle-sidecars:busy",
                              "Error response from daemon: conflict: image is being used"),)
    assert report.reclaimed_bytes == 3 * 400_000_000
    listing = next(c.argv for c in recorder.calls if c.argv[:3] == ("docker", "image", "ls"))
    assert "label=dev.claude-bottle.image" in listing


def test_candidates_keep_a_current_id_under_another_tag():
    rows = [ImageRow("sha256:a1", "claude-bottle-agent", "alias", "agent"),
            ImageRow("sha256:a1", "<none>", "<none>", "agent")]
    assert candidates(rows, keep={"claude-bottle-agent:new"}, keep_ids={"sha256:a1"}, in_use=set()) == []


def test_backend_build_prune_reports(recorder, monkeypatch, tmp_path):
    monkeypatch.setattr(images, "build", lambda **kw: KEEP)
    recorder.answer = _answer
    notes: list[str] = []

    class Notes(NullProgress):
        def note(self, text: str) -> None:
            notes.append(text)

    be = backend_mod.DockerBackend(runner=recorder, settings=Settings(home=tmp_path))
    be.build(progress=Notes(), prune=True)
    assert "removed claude-bottle-agent:old" in notes
    assert any(n.startswith("kept claude-bottle-sidecars:busy: ") for n in notes)
    assert notes[-1] == "pruned 3 image(s), reclaimed up to 1.2 GB"
    recorder.calls.clear()
    be.build(progress=Notes())
    assert [c.argv[:2] for c in recorder.calls] == [("docker", "version")]  # is the engine there?


def test_format_bytes():
    assert [format_bytes(n) for n in (0, 999, 1500, 2_500_000_000)] == ["0 B", "999 B", "1.5 KB", "2.5 GB"]
