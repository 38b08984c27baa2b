"""``launch``: networks, the bundle, the hardened agent, provisioning; undone as a whole on failure.

Crash safety does not depend on this process surviving: every object is labelled in the same docker
call that creates it, so a ``kill -9`` at any point leaves only labelled objects that ``cleanup``
finds. A failure this process *does* see (an error, Ctrl-C) removes everything labelled with the slug,
which also catches an object whose creating call failed after the engine had already made it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from claude_bottle.errors import BottleError
from claude_bottle.gitwork import GIT_MOUNT
from claude_bottle.identity import Names, labels
from claude_bottle.resources import Caps
from claude_bottle.runner import Command
from claude_bottle.secrets import CredentialSet, delivery_command
from claude_bottle_docker import bundle as bundle_mod
from claude_bottle_docker import provision
from claude_bottle_docker.cleanup import remove_slug
from claude_bottle_docker.docker import DOCKER
from claude_bottle_docker.topology import (
    AGENT_USER,
    BUNDLE_ALIASES,
    PROXY_PORT,
    AgentRun,
    agent_run_command,
    network_create_command,
)

if TYPE_CHECKING:
    from claude_bottle.backends.base import Progress
    from claude_bottle.runner import Runner

__all__ = ["LaunchInputs", "bundle_spec", "run_launch"]

BACKEND = "docker"
CONFIG_DIR = "/etc/claude-bottle"
LOG_DIR = "/var/log/claude-bottle"


@dataclass(frozen=True)
class LaunchInputs:
    """What ``prepare`` decided, unpacked from ``BottlePlan.data``."""

    slug: str
    agent_name: str
    home: str
    agent_image: str
    sidecars_image: str
    stage_dir: Path
    logs_dir: Path
    env: Mapping[str, str]
    secret_env_names: tuple[str, ...]
    prompt: str
    workspace: Path | None
    workspace_exclude: Mapping[str, str] = field(default_factory=dict)  # path -> why it stays behind
    # The agent's home files (Claude Code's config, CLAUDE.md, git identity, skills): claude_code.home_files
    home_files: Mapping[str, bytes] = field(default_factory=dict)
    caps: Caps | None = None  # the agent's resource caps (claude_bottle.resources)
    git_dir: Path | None = None            # <state_dir>/git when the workspace is a git clone (issue 5)
    git_clone: tuple[tuple[str, ...], ...] = ()  # argv run as the agent user to clone it
    services: tuple[str, ...] = ("egress",)      # the sidecars the bundle runs (render.active_sidecars)

    def labels(self, role: str) -> dict[str, str]:
        return labels(slug=self.slug, backend=BACKEND, role=role, agent=self.agent_name, home=self.home)


def bundle_spec(inp: LaunchInputs, names: Names) -> bundle_mod.BundleSpec:
    # Egress network first: the bundle's default route must leave through it, not the internal one.
    return bundle_mod.BundleSpec(
        name=names.bundle,
        image=inp.sidecars_image,
        labels=inp.labels("sidecars"),
        networks=(bundle_mod.NetworkAttach(names.egress_net),
                  bundle_mod.NetworkAttach(names.internal_net, BUNDLE_ALIASES)),
        mounts=(bundle_mod.Mount(inp.stage_dir, CONFIG_DIR, read_only=True),
                bundle_mod.Mount(inp.logs_dir, LOG_DIR, read_only=False),
                *((bundle_mod.Mount(inp.git_dir, GIT_MOUNT, read_only=False),) if inp.git_dir else ())),
    )


def run_launch(runner: Runner, inp: LaunchInputs, *, secret_env: Mapping[str, str],
               progress: Progress, credentials: CredentialSet | None = None,
               git_credentials: Command | None = None) -> tuple[str, ...]:
    """Create and provision the bottle; return its services. On any failure remove what was made.

    ``credentials`` go to the bundle through stdin (decision 0007), after its proxy answers and
    before anything runs in the agent; the agent's ``secret_env`` carries only their placeholders."""
    names = Names(inp.slug)
    try:
        _steps(runner, inp, names, secret_env=secret_env, progress=progress, credentials=credentials,
               git_credentials=git_credentials)
    except KeyboardInterrupt:
        _undo(runner, inp, names, progress)
        raise
    except BottleError as exc:
        leftover = _undo(runner, inp, names, progress)
        raise BottleError(f"{exc.message}; {leftover}", hint=exc.hint) from exc
    except Exception:  # a bug, but still leave nothing behind
        _undo(runner, inp, names, progress)
        raise
    return inp.services


def _steps(runner: Runner, inp: LaunchInputs, names: Names, *, secret_env: Mapping[str, str],
           progress: Progress, credentials: CredentialSet | None, git_credentials: Command | None) -> None:
    with progress.phase("networks"):
        _create_network(runner, network_create_command(names.internal_net, inp.labels("net-internal"),
                                                       internal=True))
        _create_network(runner, network_create_command(names.egress_net, inp.labels("net-egress"),
                                                       internal=False))
    with progress.phase("bundle"):
        inp.logs_dir.mkdir(parents=True, exist_ok=True)
        info = bundle_mod.start_bundle(runner, bundle_spec(inp, names))
        egress_ip, internal_ip = info.ips.get(names.egress_net), info.ips.get(names.internal_net)
        if not egress_ip or not internal_ip:
            raise BottleError(f"the sidecar bundle {names.bundle} got no address on its networks")
    # The agent is created while the proxy boots (it only needs the bundle's address for DNS); it
    # runs nothing but `sleep` until provisioning, which waits for the proxy.
    with progress.phase("agent"):
        run = AgentRun(names=names, image=inp.agent_image, labels=inp.labels("agent"), env=inp.env,
                       secret_env_names=inp.secret_env_names, dns=internal_ip, caps=inp.caps)
        runner.run(agent_run_command(run, secret_env))
    with progress.phase("proxy ready"):
        bundle_mod.wait_ready(runner, names.bundle, host=egress_ip, port=PROXY_PORT)
    if credentials:
        with progress.phase("credentials"):
            runner.run(delivery_command(container=names.bundle, creds=credentials))
    if git_credentials is not None:
        with progress.phase("git credentials"):
            runner.run(git_credentials)
    with progress.phase("provision"):
        provision.install_ca(runner, names.agent, provision.fetch_bundle_ca(runner, names.bundle))
        archive = provision.build_user_archive(prompt=inp.prompt, workspace=inp.workspace,
                                               home_files=inp.home_files, exclude=inp.workspace_exclude)
        if note := provision.skipped_note(archive):
            progress.note(note)
        if archive.entries:
            provision.install_user_files(runner, names.agent, archive)
    if inp.git_clone:
        with progress.phase("git clone"):
            for argv in inp.git_clone:
                runner.run(Command((DOCKER, "exec", "--user", AGENT_USER, "--workdir", "/", names.agent,
                                    *argv), timeout=120))


def _create_network(runner: Runner, cmd: Command) -> None:
    try:
        runner.run(cmd)
    except BottleError as exc:
        # Each bottle takes two networks from the engine's address pools (about 30 by default).
        if "non-overlapping" in exc.message or "address pool" in exc.message:
            hint = ("take down bottles you no longer need (`claude-bottle list`), remove unused networks, "
                    "or widen default-address-pools in /etc/docker/daemon.json")
            raise BottleError("docker has no free address range for another network", hint=hint) from exc
        raise


def _undo(runner: Runner, inp: LaunchInputs, names: Names, progress: Progress) -> str:
    """Remove every object of this slug; keep the bundle's last words first. Returns what happened."""
    with progress.phase("undo"):
        try:
            tail = bundle_mod.logs_tail(runner, names.bundle, lines=200)
            if tail:
                inp.logs_dir.mkdir(parents=True, exist_ok=True)
                (inp.logs_dir / "bundle-failed-start.log").write_text(tail + "\n")
        except (BottleError, OSError):
            pass
        try:
            report = remove_slug(runner, inp.slug)
        except BottleError as exc:
            return f"could not remove what was made ({exc.message}): run `claude-bottle cleanup`"
    if report.failed:
        return f"{len(report.failed)} object(s) could not be removed: run `claude-bottle cleanup`"
    return "removed everything this up had made"
