"""Image tags and the build decision. No docker: a scripted runner stands in for the engine's answers."""

from __future__ import annotations

from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path

import pytest

from claude_bottle.config import Settings
from claude_bottle.errors import BottleError
from claude_bottle.runner import Command, Result, SubprocessRunner
from claude_bottle_docker import images
from claude_bottle_docker.images import ImageRefs, ensure_images, image_inputs, image_refs, tag_for

BASE_IDS = {"debian:bookworm-slim": "sha256:" + "a" * 64, "debian:trixie-slim": "sha256:" + "b" * 64}


class ScriptedRunner:
    """Answers docker image inspect from a set of present images; records every command."""

    def __init__(self, present: dict[str, str], *, build_fails: bool = False) -> None:
        self.present = dict(present)
        self.calls: list[tuple[str, ...]] = []
        self.build_fails = build_fails

    def run(self, cmd: Command) -> Result:
        argv = cmd.argv
        self.calls.append(argv)
        if argv[:3] == ("docker", "image", "inspect"):
            names = argv[5:]
            found = [n for n in names if n in self.present]
            fmt = argv[4]
            out = "\n".join(f'["{n}"]' if "RepoTags" in fmt else self.present[n] for n in found)
            return Result(argv, 0 if len(found) == len(names) else 1, out + "\n", "")
        if argv[:2] == ("docker", "build"):
            if self.build_fails:
                out = "Step 1/3 : FROM x\nStep 2/3 : RUN npm install -g @anthropic-ai/claude-code\n"
                return Result(argv, 1, out, "npm ERR! network unreachable\n")
            tag = argv[argv.index("--tag") + 1]
            self.present[tag] = "sha256:built"
            return Result(argv, 0, "Step 1/2 : FROM x\nStep 2/2 : RUN true\nSuccessfully tagged\n", "")
        if argv[:2] == ("docker", "pull"):
            return Result(argv, 1, "", "no registry")
        raise AssertionError(f"unexpected command {argv}")

    def interactive(self, cmd: Command) -> int:
        raise AssertionError("not used")

    def builds(self) -> list[tuple[str, ...]]:
        return [c for c in self.calls if c[:2] == ("docker", "build")]


class Notes:
    def __init__(self) -> None:
        self.lines: list[str] = []

    @contextmanager
    def phase(self, name: str):
        self.lines.append(f"phase {name}")
        yield

    def note(self, text: str) -> None:
        self.lines.append(text)


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(home=tmp_path)


def test_tag_is_stable_and_names_the_repository(settings):
    inputs = image_inputs("agent", settings)
    tag = tag_for(inputs, "sha256:1")
    assert tag == tag_for(image_inputs("agent", settings), "sha256:1")
    assert tag.startswith("claude-bottle-agent:")
    assert len(tag.split(":")[1]) == 16


@pytest.mark.parametrize("role", ["agent", "sidecars"])
def test_every_input_changes_the_tag(settings, role):
    inputs = image_inputs(role, settings)
    tag = tag_for(inputs, "sha256:1")
    assert tag_for(inputs, "sha256:2") != tag  # base image re-pulled
    assert tag_for(replace(inputs, build_args=(*inputs.build_args, ("X", "1"))), "sha256:1") != tag
    for i, (path, content) in enumerate(inputs.files):
        files = list(inputs.files)
        files[i] = (path, content + b"\n")
        assert tag_for(replace(inputs, files=tuple(files)), "sha256:1") != tag, path
    renamed = tuple((p + "x" if i == 0 else p, c) for i, (p, c) in enumerate(inputs.files))
    assert tag_for(replace(inputs, files=renamed), "sha256:1") != tag


def test_pinned_versions_are_inputs(settings):
    agent = dict(image_inputs("agent", settings).build_args)
    assert agent["CLAUDE_CODE_VERSION"] == images.CLAUDE_CODE_VERSION
    assert agent["BASE_IMAGE"] == "debian:bookworm-slim"
    files = dict(image_inputs("sidecars", settings).files)
    assert "mitmproxy==12.3.1" in files["requirements.txt"].decode().splitlines()


def test_sidecars_context_carries_the_core_sidecar_package(settings):
    files = dict(image_inputs("sidecars", settings).files)
    assert files["src/claude_bottle/__init__.py"] == b""
    assert "src/claude_bottle/sidecars/__init__.py" in files
    assert not [p for p in files if "__pycache__" in p or p.endswith(".pyc")]
    # Nothing else of the core goes in: the bundle must not depend on host-side modules.
    assert not [p for p in files if p.startswith("src/") and not p.startswith("src/claude_bottle/sidecars/")
                and p != "src/claude_bottle/__init__.py"]


def test_extra_ca_is_not_an_input(tmp_path):
    ca = tmp_path / "ca.pem"
    ca.write_text("-----BEGIN CERTIFICATE-----\n")
    plain = Settings(home=tmp_path)
    with_ca = Settings(home=tmp_path, extra_ca_certs=ca)
    runner = ScriptedRunner(BASE_IDS)
    assert image_refs(plain, runner=runner) == image_refs(with_ca, runner=runner)


def test_base_images_change_the_tag(settings):
    refs = image_refs(settings, runner=ScriptedRunner(BASE_IDS))
    other = {**BASE_IDS, "debian:bookworm-slim": "sha256:" + "c" * 64}
    moved = image_refs(settings, runner=ScriptedRunner(other))
    assert moved.agent != refs.agent
    assert moved.sidecars == refs.sidecars


def test_warm_ensure_builds_nothing_and_asks_docker_twice(settings):
    refs = image_refs(settings, runner=ScriptedRunner(BASE_IDS))
    runner = ScriptedRunner({**BASE_IDS, refs.agent: "sha256:x", refs.sidecars: "sha256:y"})
    assert ensure_images(runner=runner, settings=settings, progress=Notes()) == refs
    assert runner.builds() == []
    assert len(runner.calls) == 2


def test_cold_ensure_builds_only_missing_tags(settings):
    refs = image_refs(settings, runner=ScriptedRunner(BASE_IDS))
    runner = ScriptedRunner({**BASE_IDS, refs.agent: "sha256:x"})
    notes = Notes()
    ensure_images(runner=runner, settings=settings, progress=notes)
    (build,) = runner.builds()
    assert build[build.index("--tag") + 1] == refs.sidecars
    assert "BASE_IMAGE=debian:trixie-slim" in build
    assert any(line.startswith(f"built {refs.sidecars}") for line in notes.lines)
    log = settings.home / "logs" / f"build-{refs.sidecars.replace(':', '-')}.log"
    assert "Successfully tagged" in log.read_text()


def test_build_failure_is_one_line_with_step_and_log(settings):
    runner = ScriptedRunner(BASE_IDS, build_fails=True)
    with pytest.raises(BottleError) as err:
        ensure_images(runner=runner, settings=settings, progress=Notes())
    text = str(err.value)
    assert "\n" not in text
    assert "at step 2/3 (RUN npm install -g @anthropic-ai/claude-code)" in text
    assert "npm ERR! network unreachable" in text
    assert str(settings.home / "logs") in text


NPM_FAILURE = """\
Step 5/14 : COPY extra-ca.pem /tmp/extra-ca.pem
 ---> e05bd9b8de17
Step 6/14 : RUN NODE_EXTRA_CA_CERTS=/tmp/extra-ca.pem npm install -g --no-fund --no-audit x
 ---> Running in e07dbdea0aa9
\x1b[91mnpm\x1b[0m\x1b[91m ERR! code SELF_SIGNED_CERT_IN_CHAIN
\x1b[0m\x1b[91mnpm\x1b[0m\x1b[91m ERR! request to https://registry.npmjs.org/x failed, reason: \
self-signed certificate in certificate chain
\x1b[0m\x1b[91mnpm\x1b[0m\x1b[91m ERR! A complete log of this run can be found in:
npm ERR!     /root/.npm/_logs/2026-11-26T18_33_43_713Z-debug-0.log
\x1b[0mDEPRECATED: The legacy builder is deprecated and will be removed in a future release.
"""


def test_failure_names_the_step_and_its_telling_line():
    stderr = "The command '/bin/sh -c npm install' returned a non-zero code: 1\n"
    text = images._failure(NPM_FAILURE, stderr)
    assert text == ("at step 6/14 (RUN NODE_EXTRA_CA_CERTS=/tmp/extra-ca.pem npm install -g --no-fund ...): "
                    "npm ERR! request to https://registry.npmjs.org/x failed, reason: "
                    "self-signed certificate in certificate chain")
    apt = "Step 2/3 : RUN apt-get install nodjs\nReading package lists...\n" \
          "E: Unable to locate package nodjs\n"
    assert images._failure(apt, "").endswith(": E: Unable to locate package nodjs")


def test_certificate_failure_without_extra_ca_points_at_the_setting(settings):
    class CertRunner(ScriptedRunner):
        def run(self, cmd):
            if cmd.argv[:2] == ("docker", "build"):
                return Result(cmd.argv, 1, NPM_FAILURE, "")
            return super().run(cmd)

    with pytest.raises(BottleError, match="CLAUDE_BOTTLE_EXTRA_CA_CERTS"):
        ensure_images(runner=CertRunner(BASE_IDS), settings=settings, progress=Notes())


def test_missing_base_is_pulled_then_reported(settings):
    runner = ScriptedRunner({"debian:trixie-slim": "sha256:1"})
    pattern = r"base image debian:bookworm-slim .*docker pull debian:bookworm-slim"
    with pytest.raises(BottleError, match=pattern):
        ensure_images(runner=runner, settings=settings, progress=Notes())
    assert ("docker", "pull", "--quiet", "debian:bookworm-slim") in runner.calls
    with pytest.raises(BottleError, match="agent_base_image"):
        image_refs(settings, runner=runner)


def test_force_rebuilds_present_tags(settings):
    refs = image_refs(settings, runner=ScriptedRunner(BASE_IDS))
    runner = ScriptedRunner({**BASE_IDS, refs.agent: "x", refs.sidecars: "y"})
    built = images.build(runner=runner, settings=settings, progress=Notes(), force=True)
    assert built == ImageRefs(refs.agent, refs.sidecars)
    assert len(runner.builds()) == 2


class StreamingRunner(ScriptedRunner):
    """Also offers the optional ``stream`` capability; records that the build went through it."""

    streamed = 0

    def stream(self, cmd: Command, on_line) -> Result:
        self.streamed += 1
        result = self.run(cmd)
        for line in result.stdout.splitlines():
            on_line(line)
        return result


def test_streaming_runner_shows_steps_and_writes_the_log_as_it_goes(settings):
    refs = image_refs(settings, runner=ScriptedRunner(BASE_IDS))
    runner = StreamingRunner({**BASE_IDS, refs.agent: "sha256:x"})
    notes = Notes()
    ensure_images(runner=runner, settings=settings, progress=notes)
    assert runner.streamed == 1
    assert "  step 1/2: FROM x" in notes.lines and "  step 2/2: RUN true" in notes.lines
    log = settings.home / "logs" / f"build-{refs.sidecars.replace(':', '-')}.log"
    assert log.read_text().splitlines() == ["Step 1/2 : FROM x", "Step 2/2 : RUN true", "Successfully tagged"]


def test_subprocess_runner_streams_merged_output_line_by_line():
    seen: list[str] = []
    script = "echo 'Step 1/2 : FROM x'; echo to-stderr >&2; printf 'no newline'; exit 3"
    result = SubprocessRunner().stream(Command(("sh", "-c", script), check=False), seen.append)
    assert seen == ["Step 1/2 : FROM x", "to-stderr", "no newline"]
    assert result.returncode == 3 and result.stdout == "Step 1/2 : FROM x\nto-stderr\nno newline"
    with pytest.raises(BottleError, match=r"failed: no newline"):
        SubprocessRunner().stream(Command(("sh", "-c", script)), seen.append)

