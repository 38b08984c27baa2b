"""``DockerBackend``: bottles as a hardened container behind a sidecar bundle, on one docker engine."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import ClassVar

from claude_bottle import claude_code, gitwork
from claude_bottle.backends.base import (
    ActiveBottle,
    Backend,
    Bottle,
    BottlePlan,
    BottleSpec,
    ProbeTargets,
    Problem,
    Progress,
    SecretValues,
)
from claude_bottle.errors import BottleError
from claude_bottle.identity import Names
from claude_bottle.plan import CleanupPlan, CleanupReport
from claude_bottle.resources import bottle_caps
from claude_bottle.runner import Command, Result
from claude_bottle.secrets import CredentialSet, delivery_command, plan_credentials, save_placeholders
from claude_bottle.state import list_state_dirs
from claude_bottle.workspace import exclusions_from_data, workspace_notes
from claude_bottle_docker import bundle as bundle_mod
from claude_bottle_docker import images, provision, targets
from claude_bottle_docker.bundle import show_logs
from claude_bottle_docker.cleanup import inventory, plan_items, remove_items, remove_slug
from claude_bottle_docker.docker import DOCKER, is_running
from claude_bottle_docker.launch import PROXY_PORT, LaunchInputs, run_launch
from claude_bottle_docker.preflight import docker_problems, inspect_container, require_engine, server_version
from claude_bottle_docker.prune import prune_images, report_prune
from claude_bottle_docker.render import active_sidecars, literal_env, render_stage
from claude_bottle_docker.topology import (
    AGENT_USER,
    WORKSPACE,
    agent_env,
)

__all__ = ["DockerBackend"]


class DockerBackend(Backend):
    """The default backend. Needs the ``docker`` CLI and a daemon the user may talk to."""

    NAME: ClassVar[str] = "docker"

    # -- checks ---------------------------------------------------------------------------------
    def preflight(self) -> list[Problem]:
        return docker_problems(self.runner)

    def describe(self) -> dict[str, str]:
        version = server_version(self.runner)
        return {"docker server": version} if version else {}

    def build(self, *, progress: Progress, prune: bool = False) -> None:
        """``claude-bottle build``: build the images whose tag is missing, ahead of the first ``up``;
        ``prune`` then removes our superseded images (``build --prune``)."""
        require_engine(self.runner)  # else a dead engine reads as "base image not available locally"
        refs = images.build(runner=self.runner, settings=self.settings, progress=progress)
        if prune:
            with progress.phase("prune old images"):
                report_prune(prune_images(self.runner, refs), progress)

    # -- one bottle -----------------------------------------------------------------------------
    def prepare(self, *, spec: BottleSpec, stage_dir: Path) -> BottlePlan:
        names = Names(spec.slug)
        refs = images.image_refs(self.settings, runner=self.runner)
        env, secret_names = literal_env(spec)
        workspace = str(spec.cwd) if spec.workspace else None
        repo = gitwork.find_repo(self.runner, spec.cwd) if spec.workspace else None
        sidecars = active_sidecars(spec, git=repo is not None)
        render_stage(spec=spec, stage_dir=stage_dir, settings=self.settings, sidecars=sidecars)
        shown = f"copy of {workspace} at {WORKSPACE}" if workspace else "none"
        if repo is not None:
            extra = " + uncommitted changes" if spec.with_uncommitted else ""
            shown = f"clone of {repo} (branch claude/{spec.slug}{extra}) from git-gate at {WORKSPACE}"
        notes = workspace_notes(runner=self.runner, spec=spec, repo=repo)
        data = {
            "agent_image": refs.agent,
            "sidecars_image": refs.sidecars,
            "env": agent_env(literal_env=env),
            "secret_env_names": list(secret_names),
            "workspace": workspace,
            "workspace_exclude": dict(notes.exclude),
        }
        return BottlePlan(
            spec=spec,
            backend=self.NAME,
            images=(("agent", refs.agent), ("sidecars", refs.sidecars)),
            sidecars=sidecars,
            allowed_hosts=spec.bottle.egress.hosts,
            networks=(names.internal_net, names.egress_net),
            stage_dir=stage_dir,
            details=(
                ("agent container", f"{names.agent} (user {AGENT_USER}, no capabilities)"),
                ("resource caps", bottle_caps(spec.bottle).describe()),
                ("sidecar bundle", f"{names.bundle} (proxy egress:3128, DNS for bundle names only)"),
                ("internal network", f"{names.internal_net} (no route off the bottle)"),
                ("egress network", names.egress_net),
                ("workspace", shown),
                *notes.rows,
            ),
            data=data,
        )

    def launch(self, *, plan: BottlePlan, secrets: SecretValues, progress: Progress) -> Bottle:
        spec = plan.spec
        with progress.phase("images"):
            refs = images.ensure_images(runner=self.runner, settings=self.settings, progress=progress)
        data = plan.data
        workspace = data.get("workspace")
        stage_dir = plan.stage_dir or spec.state_dir / "stage"
        inp = LaunchInputs(
            slug=spec.slug,
            agent_name=spec.agent.name,
            home=str(self.settings.home),
            agent_image=refs.agent,
            sidecars_image=refs.sidecars,
            stage_dir=stage_dir,
            logs_dir=spec.state_dir / "logs",
            env=dict(data.get("env") or {}),  # type: ignore[call-overload]
            secret_env_names=tuple(data.get("secret_env_names") or ()),  # type: ignore[arg-type]
            prompt=spec.agent.prompt,
            workspace=Path(str(workspace)) if workspace else None,
            services=plan.sidecars,
            workspace_exclude=exclusions_from_data(data.get("workspace_exclude")),
        )
        missing = [n for n in inp.secret_env_names if n not in secrets.env]
        if missing:
            raise BottleError(f"no value for secret environment variable {missing[0]}")
        # Only when prepare found a repository: that decided whether the bundle runs the gate.
        ws = (gitwork.prepare_workspace(runner=self.runner, spec=spec, state_dir=spec.state_dir)
              if "git-gate" in plan.sidecars else None)
        git_creds = None
        if ws is not None:  # the workspace is a clone from git-gate, not a copy (issue 5)
            git_creds = gitwork.credentials_command(container=Names(spec.slug).bundle, bottle=spec.bottle)
            clone = gitwork.agent_clone_commands(slug=spec.slug, bottle=spec.bottle)
            inp = replace(inp, workspace=None, git_dir=spec.state_dir / "git",
                          git_clone=tuple(tuple(argv) for argv in clone))
        creds = plan_credentials(spec.bottle.secrets, secrets.credentials)
        save_placeholders(spec.state_dir, creds)  # for `start`, should the bundle lose them
        # Placeholders are not secret, but they travel like secrets: off argv, out of `ps`.
        secret_env = {**{n: secrets.env[n] for n in inp.secret_env_names}, **creds.agent_env}
        inp = replace(inp, secret_env_names=tuple(sorted(secret_env)), caps=bottle_caps(spec.bottle),
                      home_files=claude_code.home_files(
            slug=spec.slug, prompt=spec.agent.prompt, placeholders=creds.agent_env, git=ws is not None,
            git_identity=spec.git_identity, skills=spec.skills,
            claude_config=spec.agent.claude_config))
        services = run_launch(self.runner, inp, secret_env=secret_env, progress=progress, credentials=creds,
                              git_credentials=git_creds)
        return Bottle(slug=spec.slug, backend=self.NAME, state_dir=spec.state_dir, services=services)

    def down(self, *, slug: str) -> CleanupReport:
        return remove_slug(self.runner, slug)

    def start(self, *, slug: str, credentials: CredentialSet) -> None:
        names = Names(slug)
        require_engine(self.runner)
        self.runner.run(Command((DOCKER, "start", names.bundle), timeout=60))
        info = bundle_mod.inspect_bundle(self.runner, names.bundle)
        egress_ip = info.ips.get(names.egress_net)
        if not egress_ip:
            raise BottleError(f"the sidecar bundle {names.bundle} has no address on {names.egress_net}")
        bundle_mod.wait_ready(self.runner, names.bundle, host=egress_ip, port=PROXY_PORT)
        if credentials:
            self.runner.run(delivery_command(container=names.bundle, creds=credentials))
        self.runner.run(Command((DOCKER, "start", names.agent), timeout=60))
        # The bundle made a new CA when it started (one is never reused): the agent must trust it.
        provision.install_ca(self.runner, names.agent, provision.fetch_bundle_ca(self.runner, names.bundle))

    def _running_agent(self, slug: str) -> str:
        agent = Names(slug).agent
        info = inspect_container(self.runner, agent)
        if info is None or not is_running(info):
            raise BottleError(f"bottle {slug} is not running", hint="see `claude-bottle list`")
        return agent

    def exec_argv(self, *, slug: str, argv: list[str], interactive: bool) -> int:
        agent = self._running_agent(slug)
        flags = ["--interactive", "--tty"] if interactive else ["--interactive"]
        cmd = Command((DOCKER, "exec", *flags, "--user", AGENT_USER, "--workdir", WORKSPACE, agent, *argv))
        return self.runner.interactive(cmd)

    def run_in_agent(self, *, slug: str, argv: list[str], input: bytes | None = None,
                     timeout: float = 120) -> Result:
        agent = self._running_agent(slug)
        flags = ("--interactive",) if input is not None else ()
        return self.runner.run(Command((DOCKER, "exec", *flags, "--user", AGENT_USER, agent, *argv),
                                       input=input, timeout=timeout, check=False))

    def probe_targets(self, *, slug: str) -> ProbeTargets:
        return targets.probe_targets(self.runner, slug)

    def copy_out(self, *, slug: str, path: str, dest: Path) -> None:
        agent = Names(slug).agent
        if inspect_container(self.runner, agent) is None:
            raise BottleError(f"bottle {slug} has no agent container", hint="see `claude-bottle list`")
        # docker cp copies links as links (no -L): nothing outside the bottle is read.
        res = self.runner.run(Command((DOCKER, "cp", f"{agent}:{path}", str(dest)), check=False, timeout=600))
        if not res.ok:
            lines = [ln for ln in res.stderr.splitlines() if ln.strip()]
            raise BottleError(f"could not copy {slug}:{path}: {lines[-1] if lines else 'docker cp failed'}")

    def logs(self, *, slug: str, follow: bool) -> int:
        bundle = Names(slug).bundle
        if inspect_container(self.runner, bundle) is None:
            raise BottleError(f"bottle {slug} has no sidecar bundle", hint="see `claude-bottle list`")
        return show_logs(self.runner, bundle, follow=follow)

    # -- all bottles ----------------------------------------------------------------------------
    def enumerate_active(self) -> list[ActiveBottle]:
        metas = [m for d in list_state_dirs(self.settings.state_root)
                 if (m := d.read()) is not None and m.backend == self.NAME and m.live]
        if not metas:
            require_engine(self.runner)  # "none live" is an answer only an engine that answers gives
            return []
        running: dict[str, set[str]] = {}
        present: dict[str, set[str]] = {}
        for res in inventory(self.runner):
            if res.kind == "container":
                present.setdefault(res.slug, set()).add(res.role)
                if res.running:
                    running.setdefault(res.slug, set()).add(res.role)
        # Live and both containers running: running. Live with its agent container still there but not
        # both running (an agent that exited, a reboot): stopped, and still listed, so cleanup spares
        # the work inside it.
        both = {"agent", "sidecars"}
        return [
            ActiveBottle(slug=m.slug, backend=self.NAME, agent=m.agent, started_at=m.started_at,
                         services=m.services or ("egress",),
                         state="running" if both <= running.get(m.slug, set()) else "stopped")
            for m in metas
            if "agent" in present.get(m.slug, set())
        ]

    def prepare_cleanup(self, *, protected: frozenset[str]) -> CleanupPlan:
        return plan_items(inventory(self.runner), protected=protected, home=str(self.settings.home))

    def cleanup(self, *, plan: CleanupPlan) -> CleanupReport:
        return remove_items(self.runner, plan.for_backend(self.NAME).items)

