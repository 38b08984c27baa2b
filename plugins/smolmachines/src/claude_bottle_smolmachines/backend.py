"""``SmolmachinesBackend``: the agent in a smolvm microVM (its own kernel), the sidecar bundle in
Docker, joined by one allow-listed address (docs/decisions/0005-smolmachines-networking.md)."""

from __future__ import annotations

import sys
from collections.abc import Mapping
from functools import cached_property
from pathlib import Path
from typing import ClassVar

from claude_bottle import claude_code, gitwork
from claude_bottle.backends.base import (
    ActiveBottle,
    Backend,
    Bottle,
    BottlePlan,
    BottleSpec,
    Problem,
    Progress,
    SecretValues,
)
from claude_bottle.errors import BottleError
from claude_bottle.identity import Names
from claude_bottle.plan import CleanupItem, CleanupPlan, CleanupReport
from claude_bottle.runner import Command, Result
from claude_bottle.secrets import plan_credentials, save_placeholders
from claude_bottle.state import list_state_dirs
from claude_bottle.workspace import exclusions_from_data, workspace_notes
from claude_bottle_docker.kit import (
    format_bytes,
    inspect_container,
    inventory,
    literal_env,
    remove_items,
    render_stage,
    require_engine,
    show_logs,
)
from claude_bottle_docker.kit import images as docker_images
from claude_bottle_smolmachines import cleanup, images, prepare
from claude_bottle_smolmachines.engine import Engine, Smolvm, find_engine
from claude_bottle_smolmachines.launch import LaunchInputs, run_launch
from claude_bottle_smolmachines.preflight import preflight

__all__ = ["SmolmachinesBackend"]


def _mapping(data: Mapping[str, object], key: str) -> Mapping[str, object]:
    value = data.get(key) or {}
    if not isinstance(value, Mapping):
        raise TypeError(f"plan data {key} must be a mapping")
    return value


def _strings(data: Mapping[str, object], key: str) -> tuple[str, ...]:
    value = data.get(key) or ()
    if not isinstance(value, (list, tuple)):
        raise TypeError(f"plan data {key} must be a list")
    return tuple(str(v) for v in value)


class SmolmachinesBackend(Backend):
    """Needs smolvm (on PATH or from the ``smolmachines`` wheel), a hypervisor (KVM or HVF) and Docker."""

    NAME: ClassVar[str] = "smolmachines"

    @cached_property
    def engine(self) -> Engine | None:
        return find_engine()

    @property
    def smolvm(self) -> Smolvm:
        if self.engine is None:
            raise BottleError("smolvm not found", hint="pip install smolmachines, or put smolvm on PATH")
        return Smolvm(engine=self.engine, runner=self.runner)

    # -- checks ---------------------------------------------------------------------------------
    def preflight(self) -> list[Problem]:
        return preflight(engine=self.engine, runner=self.runner, platform=sys.platform)

    def describe(self) -> dict[str, str]:
        if self.engine is None:
            return {"smolvm": "not found"}
        facts = {"smolvm": f"{self.engine.binary} (from {self.engine.source})"}
        try:
            facts["smolvm version"] = self.smolvm.version()
        except BottleError as exc:
            facts["smolvm version"] = f"unknown ({exc})"
        return facts

    # -- one bottle -----------------------------------------------------------------------------
    def build(self, *, progress: Progress, prune: bool = False) -> None:
        """``claude-bottle build``: the images and the agent image's archive, ahead of the first ``up``;
        ``prune`` then removes archives of superseded agent images."""
        require_engine(self.runner)  # else a dead engine reads as "base image not available locally"
        refs = docker_images.ensure_images(runner=self.runner, settings=self.settings, progress=progress)
        with progress.phase("agent image archive"):
            archive = images.export_image(self.runner, self.settings, refs.agent)
        if prune:
            removed, freed = images.prune_archives(self.settings, archive.stem)
            for path in removed:
                progress.note(f"removed {path}")
            progress.note(f"pruned {len(removed)} archive(s), reclaimed {format_bytes(freed)}")

    def prepare(self, *, spec: BottleSpec, stage_dir: Path) -> BottlePlan:
        names = Names(spec.slug)
        refs = docker_images.image_refs(self.settings, runner=self.runner)
        env, secret_names = literal_env(spec)
        repo = gitwork.find_repo(self.runner, spec.cwd) if spec.workspace else None
        sidecars = prepare.active_sidecars(spec, git=repo is not None)
        allocation = prepare.allocate(slug=spec.slug, sidecars=sidecars, runner=self.runner,
                                      settings=self.settings)
        archive = images.planned_archive(self.settings, refs.agent, images.image_id(self.runner, refs.agent))
        render_stage(spec=spec, stage_dir=stage_dir, settings=self.settings, sidecars=sidecars)
        sf_spec = prepare.smolfile_spec(image=str(archive), literal_env=env, allocation=allocation)
        smolfile = prepare.write_smolfile(stage_dir, sf_spec)
        workspace = str(spec.cwd) if spec.workspace else None
        shown = f"copy of {workspace} at /workspace" if workspace else "none"
        if repo is not None:
            extra = " + uncommitted changes" if spec.with_uncommitted else ""
            gate = gitwork.gate_url(allocation.bundle_address, allocation.ports["git-gate"])
            shown = f"clone of {repo} (branch claude/{spec.slug}{extra}) from git-gate at {gate}"
        notes = workspace_notes(runner=self.runner, spec=spec, repo=repo)
        data = {
            "sidecars_image": refs.sidecars,
            "agent_image": refs.agent,
            "literal_env": env,
            "secret_env_names": list(secret_names),
            "allocation": allocation.to_data(),
            "smolfile": str(smolfile),
            "workspace": workspace,
            "workspace_exclude": dict(notes.exclude),
        }
        return BottlePlan(
            spec=spec, backend=self.NAME,
            images=(("agent", refs.agent), ("sidecars", refs.sidecars)),
            sidecars=sidecars, allowed_hosts=spec.bottle.egress.hosts, networks=(names.bundle_net,),
            stage_dir=stage_dir,
            details=prepare.details(names=names, allocation=allocation, smolfile=smolfile,
                                    agent_image=refs.agent, workspace=shown) + notes.rows,
            data=data,
        )

    def launch(self, *, plan: BottlePlan, secrets: SecretValues, progress: Progress) -> Bottle:
        spec, data = plan.spec, plan.data
        with progress.phase("images"):
            refs = docker_images.ensure_images(runner=self.runner, settings=self.settings, progress=progress)
        with progress.phase("agent image archive"):
            archive = images.export_image(self.runner, self.settings, refs.agent)
        stage_dir = plan.stage_dir or spec.state_dir / "stage"
        smolfile = Path(str(data["smolfile"]))
        allocation = prepare.Allocation.from_data(_mapping(data, "allocation"))
        # The image's ID is known only now (prepare may have run before the build): re-render with it.
        env = {str(k): str(v) for k, v in _mapping(data, "literal_env").items()}
        smolfile = prepare.write_smolfile(smolfile.parent, prepare.smolfile_spec(
            image=str(archive), literal_env=env, allocation=allocation))
        env_names = _strings(data, "secret_env_names")
        missing = [n for n in env_names if n not in secrets.env]
        if missing:
            raise BottleError(f"no value for secret environment variable {missing[0]}")
        creds = plan_credentials(spec.bottle.secrets, secrets.credentials)
        save_placeholders(spec.state_dir, creds)  # for `start`, should the bundle lose them
        # Placeholders are not secret, but they travel like secrets: by reference, never in argv.
        secret_env = {**{n: secrets.env[n] for n in env_names}, **creds.agent_env}
        workspace = data.get("workspace")
        git_creds: Command | None = None
        clone: tuple[tuple[str, ...], ...] = ()
        # The gate's port was allocated at prepare, when the workspace was a repository: only then
        # is it a clone (issue 5); the mirror lives in the state dir and is mounted into the bundle.
        ws = None
        if "git-gate" in allocation.ports:
            ws = gitwork.prepare_workspace(runner=self.runner, spec=spec, state_dir=spec.state_dir)
        if ws is not None:
            git_creds = gitwork.credentials_command(container=Names(spec.slug).bundle, bottle=spec.bottle)
            clone = tuple(tuple(argv) for argv in gitwork.agent_clone_commands(
                slug=spec.slug, bottle=spec.bottle, host=allocation.bundle_address,
                port=allocation.ports["git-gate"]))
            workspace = None
        inp = LaunchInputs(
            slug=spec.slug, agent_name=spec.agent.name, home=str(self.settings.home),
            sidecars_image=refs.sidecars, smolfile=smolfile, guest_subnet=str(allocation.guest_subnet),
            bundle_subnet=str(allocation.bundle_subnet), bundle_address=allocation.bundle_address,
            ports=allocation.ports, container_ports={n: prepare.SIDECAR_PORTS[n] for n in allocation.ports},
            stage_dir=stage_dir, logs_dir=spec.state_dir / "logs", secret_env_names=tuple(sorted(secret_env)),
            prompt=spec.agent.prompt, workspace=Path(str(workspace)) if workspace else None,
            workspace_exclude=exclusions_from_data(data.get("workspace_exclude")),
            git_dir=spec.state_dir / "git" if ws is not None else None, git_clone=clone,
            home_files=claude_code.home_files(
                slug=spec.slug, prompt=spec.agent.prompt, placeholders=creds.agent_env, git=ws is not None,
                git_identity=spec.git_identity, skills=spec.skills,
                claude_config=spec.agent.claude_config),
        )
        services = run_launch(runner=self.runner, smolvm=self.smolvm, inp=inp, secret_env=secret_env,
                              progress=progress, credentials=creds, git_credentials=git_creds)
        return Bottle(slug=spec.slug, backend=self.NAME, state_dir=spec.state_dir, services=services)

    def down(self, *, slug: str) -> CleanupReport:
        items = [i for i in self._items(protected=frozenset(), home=None) if i.slug == slug]
        report = self._remove(items)
        prepare.lease_book(self.settings).remove(slug)
        return report

    def exec_argv(self, *, slug: str, argv: list[str], interactive: bool) -> int:
        flags = ["--interactive", "--tty"] if interactive else ["--interactive"]
        cmd = Command(self.smolvm.engine.argv("machine", "exec", "--name", Names(slug).machine, *flags,
                                              "--user", "claude", "--workdir", "/workspace", "--", *argv),
                      env=self.smolvm.engine.env)
        return self.runner.interactive(cmd)

    def run_in_agent(self, *, slug: str, argv: list[str], input: bytes | None = None,
                     timeout: float = 120) -> Result:
        flags = ("--interactive",) if input is not None else ()
        cmd = Command(self.smolvm.engine.argv("machine", "exec", "--name", Names(slug).machine, *flags,
                                              "--user", "claude", "--", *argv),
                      env=self.smolvm.engine.env, input=input, timeout=timeout, check=False)
        return self.runner.run(cmd)

    def logs(self, *, slug: str, follow: bool) -> int:
        """The sidecar bundle's logs (proxy decisions, git-gate), as for the docker backend."""
        if inspect_container(self.runner, Names(slug).bundle) is None:
            raise BottleError(f"bottle {slug} has no sidecar bundle", hint="see `claude-bottle list`")
        return show_logs(self.runner, Names(slug).bundle, follow=follow)

    # -- all bottles ----------------------------------------------------------------------------
    def enumerate_active(self) -> list[ActiveBottle]:
        metas = [m for d in list_state_dirs(self.settings.state_root)
                 if (m := d.read()) is not None and m.backend == self.NAME and m.live]
        if not metas:
            require_engine(self.runner)  # the bundles live in Docker: "none live" needs it to answer
            return []
        if self.engine is None:
            return []
        agents = [m for m in cleanup.our_machines(self.smolvm.ls()) if m.role == "agent"]
        machines = {m.slug for m in agents if m.running}
        bundles = {r.slug for r in inventory(self.runner, backend=self.NAME)
                   if r.kind == "container" and r.running and r.role == "sidecars"}
        # A live bottle whose machine exists but does not run with its bundle is stopped, not gone.
        return [ActiveBottle(slug=m.slug, backend=self.NAME, agent=m.agent, started_at=m.started_at,
                             services=m.services or ("egress",),
                             state="running" if m.slug in machines and m.slug in bundles else "stopped")
                for m in metas if m.slug in {a.slug for a in agents}]

    def prepare_cleanup(self, *, protected: frozenset[str]) -> CleanupPlan:
        return CleanupPlan(tuple(self._items(protected=protected, home=str(self.settings.home))))

    def cleanup(self, *, plan: CleanupPlan) -> CleanupReport:
        items = plan.for_backend(self.NAME).items
        report = self._remove(items)
        book = prepare.lease_book(self.settings)
        for slug in {o.item.slug for o in report.outcomes if o.ok and o.item.slug}:
            book.remove(slug)
        return report

    def _items(self, *, protected: frozenset[str], home: str | None) -> list[CleanupItem]:
        """Machines first (they hold nothing Docker needs), then containers, then networks."""
        items: list[CleanupItem] = []
        if self.engine is not None:
            machines = cleanup.our_machines(self.smolvm.ls())
            items += cleanup.machine_items(machines, protected=protected, home=home or "",
                                           any_home=home is None)
        for res in inventory(self.runner, backend=self.NAME):
            if res.slug in protected or (home is not None and res.home and res.home != home):
                continue
            ident = res.ident[:12]
            detail = f"{res.name} ({res.role})" if res.role else res.name
            items.append(CleanupItem(backend=self.NAME, kind=res.kind, ident=ident, detail=detail,
                                     slug=res.slug))
        return items

    def _remove(self, items: tuple[CleanupItem, ...] | list[CleanupItem]) -> CleanupReport:
        machines = [i for i in items if i.kind == cleanup.MACHINE]
        others = [i for i in items if i.kind != cleanup.MACHINE]
        outcomes = cleanup.remove_machines(self.smolvm, machines) if machines else []
        docker_report = remove_items(self.runner, others) if others else CleanupReport()
        return CleanupReport((*outcomes, *docker_report.outcomes))
