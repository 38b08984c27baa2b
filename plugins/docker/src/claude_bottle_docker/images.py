"""The agent and sidecar-bundle images: built from Dockerfiles shipped in this package, tagged by content.

A tag is a hash of *every* input of its image: the Dockerfile and build-context files, the base image's
ID (so a re-pulled base rebuilds), the pinned versions passed as build args, and for the bundle the
core's ``claude_bottle.sidecars`` sources. An image whose tag exists is therefore up to date and is never
rebuilt: a warm ``up`` costs two ``docker image inspect`` calls.

The extra CA (``settings.extra_ca_certs``) is *not* an input: builds trust it only in a throw-away build
stage (npm, pip), and the bundle receives it at run time (``/etc/claude-bottle/upstream-ca.pem``). A
different CA therefore never changes an image or its tag.
"""

from __future__ import annotations

import hashlib
import json
import re
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from importlib import resources
from importlib.resources.abc import Traversable
from pathlib import Path
from typing import TYPE_CHECKING

from claude_bottle import claude_code
from claude_bottle.errors import BottleError
from claude_bottle.identity import LABEL_PREFIX
from claude_bottle.runner import Command, Result

if TYPE_CHECKING:
    from claude_bottle.backends.base import Progress
    from claude_bottle.config import Settings
    from claude_bottle.runner import Runner

__all__ = [
    "CLAUDE_CODE_VERSION",
    "ImageInputs",
    "ImageRefs",
    "build",
    "ensure_images",
    "image_inputs",
    "image_refs",
    "tag_for",
]

# Pinned (in the core, beside the hosts it was measured to need) so a tag names one exact Claude Code;
# bump it there (the tag follows) to upgrade, and run tests/integration/test_claude_code.py.
CLAUDE_CODE_VERSION = claude_code.CLAUDE_CODE_VERSION
# Bumped when the tagging scheme itself changes, so old tags are never mistaken for new ones.
_SCHEME = "claude-bottle-image/1"
_TAG_LEN = 16
LABEL_IMAGE_ROLE = f"{LABEL_PREFIX}.image"
_ROLES = ("agent", "sidecars")


@dataclass(frozen=True)
class ImageRefs:
    agent: str
    sidecars: str


@dataclass(frozen=True)
class ImageInputs:
    """Everything one image is built from, except the base image ID (looked up from the engine)."""

    role: str
    repository: str
    base: str
    files: tuple[tuple[str, bytes], ...]  # build-context path -> content, sorted by path
    build_args: tuple[tuple[str, str], ...]


def _walk(node: Traversable, prefix: str) -> Iterator[tuple[str, bytes]]:
    for child in node.iterdir():
        if child.name == "__pycache__" or child.name.endswith((".pyc", ".pyo")):
            continue
        path = f"{prefix}{child.name}"
        if child.is_dir():
            yield from _walk(child, f"{path}/")
        else:
            yield path, child.read_bytes()


def image_inputs(role: str, settings: Settings) -> ImageInputs:
    """Read the Dockerfile, context files and pinned versions of ``role`` (``agent``/``sidecars``)."""
    files = dict(_walk(resources.files("claude_bottle_docker") / "images" / role, ""))
    if role == "agent":
        base = settings.agent_base_image
        args = {"CLAUDE_CODE_VERSION": CLAUDE_CODE_VERSION}
    elif role == "sidecars":
        base = settings.sidecars_base_image
        args = {}
        # Only the sidecar package goes in, under an empty parent package: the bundle imports
        # nothing else from the core (the host's core may be a newer or older Python).
        files["src/claude_bottle/__init__.py"] = b""
        files.update(_walk(resources.files("claude_bottle.sidecars"), "src/claude_bottle/sidecars/"))
    else:
        raise ValueError(f"unknown image role {role!r}")
    return ImageInputs(
        role=role,
        repository=f"claude-bottle-{role}",
        base=base,
        files=tuple(sorted(files.items())),
        build_args=tuple(sorted({"BASE_IMAGE": base, **args}.items())),
    )


def tag_for(inputs: ImageInputs, base_id: str) -> str:
    """``claude-bottle-<role>:<hash of all inputs>``. Pure."""
    digest = hashlib.sha256()

    def feed(*parts: str | bytes) -> None:
        for part in parts:
            data = part.encode() if isinstance(part, str) else part
            # Length-prefixed, so no two different input sets can concatenate to the same bytes.
            digest.update(len(data).to_bytes(8, "big") + data)

    feed(_SCHEME, inputs.role, base_id)
    for key, value in inputs.build_args:
        feed("arg", key, value)
    for path, content in inputs.files:
        feed("file", path, content)
    return f"{inputs.repository}:{digest.hexdigest()[:_TAG_LEN]}"


def _base_ids(runner: Runner, bases: tuple[str, ...]) -> dict[str, str]:
    """Image ID of each base present locally (one docker call); missing bases are left out."""
    unique = tuple(dict.fromkeys(bases))
    result = runner.run(Command(("docker", "image", "inspect", "--format", "{{.Id}}", *unique), check=False))
    found: dict[str, str] = {}
    if result.ok:
        # All present: output lines come back in argument order.
        lines = result.stdout.strip().splitlines()
        if len(lines) == len(unique):
            return {base: line.strip() for base, line in zip(unique, lines, strict=True)}
    for base in unique:  # some missing (rare): ask one by one to know which
        one = runner.run(Command(("docker", "image", "inspect", "--format", "{{.Id}}", base), check=False))
        if one.ok and one.stdout.strip():
            found[base] = one.stdout.strip()
    return found


def _missing_base_error(role: str, base: str) -> BottleError:
    key = f"{role}_base_image"
    return BottleError(
        f"base image {base} for the {role} image is not available locally",
        hint=f"run `docker pull {base}`, or set {key} in config.toml / CLAUDE_BOTTLE_{key.upper()}",
    )


def _refs(runner: Runner, settings: Settings) -> tuple[ImageRefs, dict[str, ImageInputs]]:
    inputs = {role: image_inputs(role, settings) for role in _ROLES}
    ids = _base_ids(runner, tuple(i.base for i in inputs.values()))
    tags = {}
    for role, inp in inputs.items():
        if inp.base not in ids:
            raise _missing_base_error(role, inp.base)
        tags[role] = tag_for(inp, ids[inp.base])
    return ImageRefs(agent=tags["agent"], sidecars=tags["sidecars"]), inputs


def image_refs(settings: Settings, *, runner: Runner) -> ImageRefs:
    """The tags ``up`` will use. Builds nothing; reads only the base images' IDs from the engine."""
    return _refs(runner, settings)[0]


def _present(runner: Runner, tags: tuple[str, ...]) -> set[str]:
    argv = ("docker", "image", "inspect", "--format", "{{json .RepoTags}}", *tags)
    result = runner.run(Command(argv, check=False))
    present: set[str] = set()
    for raw in result.stdout.splitlines():
        if raw.strip().startswith("["):
            present.update(json.loads(raw))
    return present & set(tags)


def _pull_missing_bases(runner: Runner, settings: Settings, progress: Progress) -> None:
    bases = {"agent": settings.agent_base_image, "sidecars": settings.sidecars_base_image}
    have = _base_ids(runner, tuple(bases.values()))
    for role, base in bases.items():
        if base in have:
            continue
        with progress.phase(f"pull {base}"):
            if not runner.run(Command(("docker", "pull", "--quiet", base), check=False)).ok:
                raise _missing_base_error(role, base)
        have[base] = "pulled"


def ensure_images(*, runner: Runner, settings: Settings, progress: Progress) -> ImageRefs:
    """Return the image refs, building only the images whose tag is missing."""
    return build(runner=runner, settings=settings, progress=progress, force=False)


def build(
    *, runner: Runner, settings: Settings, progress: Progress, force: bool = False, no_cache: bool = False
) -> ImageRefs:
    """Build the images (``claude-bottle build``). ``force`` rebuilds present tags too; ``no_cache``
    also skips docker's layer cache."""
    try:
        refs, inputs = _refs(runner, settings)
    except BottleError:
        _pull_missing_bases(runner, settings, progress)
        refs, inputs = _refs(runner, settings)
    tags = {"agent": refs.agent, "sidecars": refs.sidecars}
    present = set() if force else _present(runner, tuple(tags.values()))
    for role in _ROLES:
        if tags[role] in present:
            continue
        _build_one(runner, settings, progress, inputs[role], tags[role], no_cache=no_cache)
    return refs


def _log_path(settings: Settings, tag: str) -> Path:
    return settings.home / "logs" / f"build-{tag.replace(':', '-')}.log"


def _build_one(
    runner: Runner, settings: Settings, progress: Progress, inputs: ImageInputs, tag: str, *, no_cache: bool
) -> None:
    log_path = _log_path(settings, tag)
    log_path.parent.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    with progress.phase(f"build {tag}"), tempfile.TemporaryDirectory(prefix="claude-bottle-build-") as tmp:
        ctx = Path(tmp)
        for rel, content in inputs.files:
            dest = ctx / rel
            dest.parent.mkdir(parents=True, exist_ok=True)
            dest.write_bytes(content)
        ca = settings.extra_ca_certs
        (ctx / "extra-ca.pem").write_bytes(ca.read_bytes() if ca else b"")
        progress.note(f"building {tag} (log: {log_path})")
        argv = ["docker", "build", "--tag", tag, "--label", f"{LABEL_IMAGE_ROLE}={inputs.role}"]
        for key, value in inputs.build_args:
            argv += ["--build-arg", f"{key}={value}"]
        if no_cache:
            argv.append("--no-cache")
        result = _run_logged(runner, Command((*argv, str(ctx)), check=False), log_path, progress)
    if not result.ok:
        reason = _failure(result.stdout, result.stderr)
        hint = f"full log: {log_path}"
        if "certificate" in reason.lower() and settings.extra_ca_certs is None:
            hint = ("behind a TLS-inspecting proxy? set CLAUDE_BOTTLE_EXTRA_CA_CERTS (or extra_ca_certs in "
                    f"config.toml) to its CA bundle; {hint}")
        raise BottleError(f"building {tag} failed {reason}", hint=hint)
    steps = summarise_steps(result.stdout)
    progress.note(f"built {tag} in {time.monotonic() - started:.0f}s ({steps} steps)")


def _run_logged(runner: Runner, cmd: Command, log_path: Path, progress: Progress) -> Result:
    """Run the build, writing its output to ``log_path`` as it comes (``tail -f`` works) and showing
    each step as a progress note, when the runner can stream; else capture, then write the log."""
    stream = getattr(runner, "stream", None)
    if stream is None:
        result = runner.run(cmd)
        log_path.write_text(result.stdout + result.stderr)
        return result
    with log_path.open("w") as log:

        def on_line(line: str) -> None:
            log.write(line + "\n")
            log.flush()
            step = _STEP_RE.match(line)
            if step:
                short = step.group(2) if len(step.group(2)) <= 60 else step.group(2)[:57] + "..."
                progress.note(f"  step {step.group(1)}: {short}")

        return stream(cmd, on_line)


_STEP_RE = re.compile(r"^Step (\d+/\d+) : (.*)$", re.MULTILINE)
_ANSI_RE = re.compile(r"\x1b\[[0-9;]*m")
_NOISE = ("The command '", "DEPRECATED:", "Install the buildx", "https://docs.docker.com", " ---> ",
          "Removing intermediate", "Sending build context", "A complete log of this run", "/root/.npm/_logs")
_TELLING = re.compile(r"reason:|^E: |^ERROR:|^error:|ERR! code", re.IGNORECASE)


def summarise_steps(output: str) -> int:
    return len(_STEP_RE.findall(output))


def _failure(stdout: str, stderr: str) -> str:
    """``at step 7/12 (RUN npm install ...): <the step's most telling error line>`` from the classic
    builder's output (npm's ``reason:``, apt's ``E:``, pip's ``ERROR:``; else its last line)."""
    text = _ANSI_RE.sub("", stdout + "\n" + stderr)
    steps = list(_STEP_RE.finditer(text))
    where = ""
    if steps:
        number, instruction = steps[-1].groups()
        short = instruction if len(instruction) <= 70 else instruction[:67] + "..."
        where = f"at step {number} ({short})"
        text = text[steps[-1].end():]
    lines = [ln.strip() for ln in text.splitlines()]
    lines = [ln for ln in lines if ln and not ln.startswith(_NOISE)]
    telling = [ln for ln in lines if _TELLING.search(ln)]
    reasons = [ln for ln in telling if "reason:" in ln.lower()]
    detail = (reasons or telling or lines or ["docker build failed"])[-1]
    detail = detail if len(detail) <= 200 else detail[:197] + "..."
    return f"{where}: {detail}" if where else f": {detail}"
