"""Smaller backend paths: exec and logs argv, the image archive cache."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import pytest

from claude_bottle.config import load_settings
from claude_bottle.errors import BottleError
from claude_bottle.identity import Names
from claude_bottle.runner import Command, Result, SubprocessRunner
from claude_bottle_docker.bundle import create_commands
from claude_bottle_smolmachines import SmolmachinesBackend, images
from claude_bottle_smolmachines.launch import LaunchInputs, bundle_spec


@dataclass
class Recorder:
    """Records commands; runs them for real when ``inner`` is set."""

    inner: SubprocessRunner | None = None
    calls: list[Command] = field(default_factory=list)

    def run(self, cmd: Command) -> Result:
        self.calls.append(cmd)
        return self.inner.run(cmd) if self.inner else Result(argv=cmd.argv, returncode=0)

    def interactive(self, cmd: Command) -> int:
        self.calls.append(cmd)
        return 0


def test_exec_runs_as_the_agent_user_in_the_machine(fake_smolvm: object) -> None:
    rec = Recorder()
    backend = SmolmachinesBackend(runner=rec, settings=load_settings())
    assert backend.exec_argv(slug="claude-abcde", argv=["claude", "--help"], interactive=True) == 0
    (cmd,) = rec.calls
    args = list(cmd.argv[1:])
    assert args[args.index("machine"):] == [
        "machine", "exec", "--name", "claude-bottle-claude-abcde", "--interactive", "--tty",
        "--user", "claude", "--workdir", "/workspace", "--", "claude", "--help"]


def test_logs_are_the_bundles() -> None:
    class Answering(Recorder):
        def run(self, cmd: Command) -> Result:
            self.calls.append(cmd)
            return Result(cmd.argv, 0, stdout='[{"Name": "bundle"}]' if "inspect" in cmd.argv else "")

    rec = Answering()
    backend = SmolmachinesBackend(runner=rec, settings=load_settings())
    backend.logs(slug="claude-abcde", follow=True)
    inspect, cmd = rec.calls
    assert inspect.argv[1:3] == ("container", "inspect")
    assert cmd.argv[:2] == ("docker", "logs") and cmd.argv[-1] == "claude-bottle-sidecars-claude-abcde"
    gone = SmolmachinesBackend(runner=Recorder(), settings=load_settings())  # inspect finds nothing
    with pytest.raises(BottleError, match="has no sidecar bundle"):
        gone.logs(slug="claude-abcde", follow=False)


@pytest.mark.integration
def test_archive_cached_by_image_id(tmp_path: Path) -> None:
    """The second export of the same image ID runs no ``docker save``."""
    settings = load_settings()
    rec = Recorder(inner=SubprocessRunner())
    first = images.export_image(rec, settings, "debian:bookworm-slim")
    ident = images.image_id(SubprocessRunner(), "debian:bookworm-slim")
    assert ident is not None and first == images.archive_for(settings, ident) and first.stat().st_size > 0
    rec.calls.clear()
    assert images.export_image(rec, settings, "debian:bookworm-slim") == first
    assert not [c for c in rec.calls if c.argv[:2] == ("docker", "save")]
    assert not list(first.parent.glob(".*partial"))
    first.unlink()


@pytest.mark.integration
def test_missing_image_is_one_line() -> None:
    with pytest.raises(BottleError) as err:
        images.export_image(SubprocessRunner(), load_settings(), "claude-bottle-agent:does-not-exist")
    assert "claude-bottle build" in str(err.value)


def test_the_bundle_is_created_with_forwarding_off(tmp_path: Path) -> None:
    """The smolmachines bundle is the docker plugin's, hardened the same way: it never routes."""
    inp = LaunchInputs(slug="claude-abcde", agent_name="claude", home=str(tmp_path), sidecars_image="s:1",
                       smolfile=tmp_path / "Smolfile", guest_subnet="100.96.0.0/30",
                       bundle_subnet="172.31.0.0/29", bundle_address="172.31.0.1", ports={"egress": 41000},
                       container_ports={"egress": 3128}, stage_dir=tmp_path / "stage",
                       logs_dir=tmp_path / "logs", secret_env_names=(), prompt="", workspace=None)
    (create,) = create_commands(bundle_spec(inp, Names("claude-abcde")), {})
    argv = create.argv
    sysctls = [argv[i + 1] for i, a in enumerate(argv) if a == "--sysctl"]
    assert "net.ipv4.ip_forward=0" in sysctls and "net.ipv6.conf.all.forwarding=0" in sysctls


def test_run_in_agent_captures_a_machine_exec(fake_smolvm: object) -> None:
    rec = Recorder()
    backend = SmolmachinesBackend(runner=rec, settings=load_settings())
    assert backend.run_in_agent(slug="claude-abcde", argv=["node", "-"], input=b"js", timeout=9).ok
    (cmd,) = rec.calls
    args = list(cmd.argv[1:])
    assert args[args.index("machine"):] == [
        "machine", "exec", "--name", "claude-bottle-claude-abcde", "--interactive", "--user", "claude",
        "--", "node", "-"]
    assert (cmd.input, cmd.timeout, cmd.check) == (b"js", 9, False)
