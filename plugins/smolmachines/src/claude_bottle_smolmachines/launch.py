"""``launch``: bundle network, bundle container, agent image archive, machine, provisioning; every
step undone, newest first, if a later one fails.

Crash safety does not depend on this process: the network, the container and the machine carry the
bottle's labels from the call that creates them, so after a ``kill -9`` ``cleanup`` finds them.
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from claude_bottle.errors import BottleError
from claude_bottle.gitwork import GIT_MOUNT
from claude_bottle.identity import Names, labels
from claude_bottle.runner import Command
from claude_bottle.secrets import CredentialSet, delivery_command
from claude_bottle_docker.kit import DOCKER, label_args, provision
from claude_bottle_docker.kit import bundle as bundle_mod
from claude_bottle_smolmachines.cleanup import remove_machine
from claude_bottle_smolmachines.guestdns import check_guest_dns, dns_publish
from claude_bottle_smolmachines.render import CA_PATH_IN_AGENT, SYSTEM_CA_BUNDLE, network_flags

if TYPE_CHECKING:
    from claude_bottle.backends.base import Progress
    from claude_bottle.runner import Runner
    from claude_bottle_smolmachines.engine import Smolvm

__all__ = ["LaunchInputs", "run_launch"]

BACKEND = "smolmachines"
CONFIG_DIR = "/etc/claude-bottle"
LOG_DIR = "/var/log/claude-bottle"
AGENT_USER = "claude"


@dataclass(frozen=True)
class LaunchInputs:
    slug: str
    agent_name: str
    home: str
    sidecars_image: str
    smolfile: Path
    guest_subnet: str
    bundle_subnet: str
    bundle_address: str
    ports: Mapping[str, int]           # sidecar -> host port on bundle_address
    container_ports: Mapping[str, int]  # sidecar -> port inside the bundle
    stage_dir: Path
    logs_dir: Path
    secret_env_names: tuple[str, ...]
    prompt: str
    workspace: Path | None
    workspace_exclude: Mapping[str, str] = field(default_factory=dict)  # path -> why it stays behind
    # The agent's home files (Claude Code's config, CLAUDE.md, git identity, skills): claude_code.home_files
    home_files: Mapping[str, bytes] = field(default_factory=dict)
    git_dir: Path | None = None                  # <state_dir>/git when the workspace is a git clone
    git_clone: tuple[tuple[str, ...], ...] = ()  # argv run as the agent user to clone it (issue 5)

    def labels(self, role: str) -> dict[str, str]:
        return labels(slug=self.slug, backend=BACKEND, role=role, agent=self.agent_name, home=self.home)


def network_command(inp: LaunchInputs, name: str) -> Command:
    # Not --internal: the bundle's upstream traffic leaves through this network, and it is the
    # network the published ports sit on. Its gateway is the bundle address.
    return Command((DOCKER, "network", "create", "--driver", "bridge", *label_args(inp.labels("net-bundle")),
                    "--subnet", inp.bundle_subnet, "--gateway", inp.bundle_address, name), timeout=60)


def bundle_spec(inp: LaunchInputs, names: Names) -> bundle_mod.BundleSpec:
    publish = tuple(bundle_mod.Publish(host_ip=inp.bundle_address, host_port=port,
                                       container_port=inp.container_ports[name])
                    for name, port in inp.ports.items()) + dns_publish(inp.bundle_address)
    return bundle_mod.BundleSpec(
        name=names.bundle, image=inp.sidecars_image, labels=inp.labels("sidecars"),
        networks=(bundle_mod.NetworkAttach(names.bundle_net),), publish=publish,
        mounts=(bundle_mod.Mount(inp.stage_dir, CONFIG_DIR, read_only=True),
                bundle_mod.Mount(inp.logs_dir, LOG_DIR, read_only=False),
                *((bundle_mod.Mount(inp.git_dir, GIT_MOUNT, read_only=False),) if inp.git_dir else ())),
    )


def secret_refs(names: tuple[str, ...]) -> tuple[list[str], Callable[[Mapping[str, str]], dict[str, str]]]:
    """smolvm ``--secret-env GUEST=HOST_VAR`` flags; the values travel only in the runner's env."""
    host = {n: f"CLAUDE_BOTTLE_SECRET_{n}" for n in names}
    flags = [a for n in names for a in ("--secret-env", f"{n}={host[n]}")]
    return flags, lambda values: {host[n]: values[n] for n in names}


def run_launch(*, runner: Runner, smolvm: Smolvm, inp: LaunchInputs, secret_env: Mapping[str, str],
               progress: Progress, credentials: CredentialSet | None = None,
               git_credentials: Command | None = None) -> tuple[str, ...]:
    """``secret_env``: the guest's secret variables (values from the host, credential placeholders);
    ``credentials``: the real values, delivered to the bundle through stdin (decision 0007);
    ``git_credentials``: the command handing git-gate its remotes' credentials the same way."""
    names = Names(inp.slug)
    undo: list[tuple[str, Callable[[], None]]] = []
    try:
        _steps(runner, smolvm, inp, names, undo, _Secrets(secret_env, credentials, git_credentials), progress)
    except BaseException as exc:
        failed = _undo(undo, progress)
        if isinstance(exc, BottleError):
            note = (f"; could not undo: {', '.join(failed)} (run `claude-bottle cleanup`)" if failed
                    else "; removed everything this up had made")
            raise BottleError(f"{exc.message}{note}", hint=exc.hint) from exc
        raise
    return tuple(inp.ports)


@dataclass(frozen=True)
class _Secrets:
    env: Mapping[str, str] = field(repr=False)
    credentials: CredentialSet | None = field(default=None, repr=False)
    git_credentials: Command | None = field(default=None, repr=False)


def _steps(runner: Runner, smolvm: Smolvm, inp: LaunchInputs, names: Names,  # noqa: PLR0917 - private
           undo: list[tuple[str, Callable[[], None]]], secrets: _Secrets, progress: Progress) -> None:
    def rm(*argv: str) -> Callable[[], None]:
        return lambda: _docker_rm(runner, argv)

    with progress.phase("bundle network"):
        undo.append((f"network {names.bundle_net}", rm("network", "rm", names.bundle_net)))
        runner.run(network_command(inp, names.bundle_net))
    with progress.phase("bundle"):
        inp.logs_dir.mkdir(parents=True, exist_ok=True)
        undo.append((f"container {names.bundle}", rm("rm", "--force", "--volumes", names.bundle)))
        info = bundle_mod.start_bundle(runner, bundle_spec(inp, names))
        bundle_ip = info.ips.get(names.bundle_net)
        if not bundle_ip:
            raise BottleError(f"the sidecar bundle {names.bundle} got no address on {names.bundle_net}")
    with progress.phase("proxy ready"):
        bundle_mod.wait_ready(runner, names.bundle, host=inp.bundle_address, port=inp.ports["egress"])
    if secrets.credentials:
        with progress.phase("credentials"):
            runner.run(delivery_command(container=names.bundle, creds=secrets.credentials))
    if secrets.git_credentials is not None:
        with progress.phase("git credentials"):
            runner.run(secrets.git_credentials)
    flags, values = secret_refs(inp.secret_env_names)
    secret_values = values(secrets.env)
    with progress.phase("machine create"):
        undo.append((f"machine {names.machine}", lambda: remove_machine(smolvm, names.machine)))
        smolvm.create(name=names.machine, smolfile=inp.smolfile, labels=inp.labels("agent"),
                      extra=[*network_flags(guest_subnet=inp.guest_subnet, bundle_address=inp.bundle_address),
                             *flags], secret_env=secret_values)
    with progress.phase("machine start"):
        smolvm.start(name=names.machine, secret_env=secret_values)
    with progress.phase("guest DNS"):
        check_guest_dns(smolvm, machine=names.machine, user=AGENT_USER, bundle_ip=bundle_ip)
    with progress.phase("provision"):
        _provision(runner, smolvm, inp, names, progress)
    if inp.git_clone:
        with progress.phase("git clone"):
            for argv in inp.git_clone:
                # HOME explicitly: `git config --global` must land in the agent's own home whatever
                # environment `machine exec --user` gives the command.
                smolvm.exec(name=names.machine, user=AGENT_USER,
                            argv=["env", f"HOME={provision.HOME}", *argv], timeout=120)


def _provision(runner: Runner, smolvm: Smolvm, inp: LaunchInputs, names: Names, progress: Progress) -> None:
    pem = provision.fetch_bundle_ca(runner, names.bundle)
    archive = provision.build_user_archive(prompt=inp.prompt, workspace=inp.workspace,
                                           home_files=inp.home_files, exclude=inp.workspace_exclude)
    if note := provision.skipped_note(archive):
        progress.note(note)
    with tempfile.TemporaryDirectory(prefix="claude-bottle-provision-") as tmp:
        ca = Path(tmp) / "ca.pem"
        ca.write_bytes(pem)
        smolvm.cp(src=str(ca), dst=f"{names.machine}:{CA_PATH_IN_AGENT}", mode="644")
        smolvm.exec(name=names.machine, user="root",
                    argv=["sh", "-c", f"cat {CA_PATH_IN_AGENT} >> {SYSTEM_CA_BUNDLE}"])
        if archive.data:
            tar = Path(tmp) / "user.tar"
            tar.write_bytes(archive.data)
            smolvm.cp(src=str(tar), dst=f"{names.machine}:/tmp/claude-bottle-user.tar", mode="644")
            smolvm.exec(name=names.machine, user=AGENT_USER, argv=[
                "sh", "-c", "tar --extract --file /tmp/claude-bottle-user.tar --directory / --no-same-owner "
                "--delay-directory-restore && rm -f /tmp/claude-bottle-user.tar"])


def _docker_rm(runner: Runner, argv: tuple[str, ...]) -> None:
    result = runner.run(Command((DOCKER, *argv), check=False, timeout=60))
    text = result.stderr.lower()
    if not result.ok and "no such" not in text and "not found" not in text:
        raise BottleError((result.stderr.strip().splitlines() or ["failed"])[-1])


def _undo(undo: list[tuple[str, Callable[[], None]]], progress: Progress) -> list[str]:
    failed = []
    with progress.phase("undo"):
        for what, action in reversed(undo):
            try:
                action()
            except BottleError:
                failed.append(what)
    return failed
