"""The backend contract. These docstrings are the plugin author's documentation.

A backend makes bottles. It lives in its own distribution and registers a :class:`Backend` subclass
under the entry-point group ``claude_bottle.backends``, with the entry-point name equal to ``NAME``::

    [project.entry-points."claude_bottle.backends"]
    docker = "claude_bottle_docker:DockerBackend"

The core constructs a backend with keyword arguments only (``runner``, ``settings``) and calls:

``preflight`` (``claude-bottle backends``, before ``up``) -> ``prepare`` (``up``, ``up --dry-run``) ->
``launch`` (``up``) -> ``enumerate_active`` (``list``, ``cleanup``) -> ``prepare_cleanup`` and
``cleanup`` (``cleanup``) -> ``down`` (``down``). ``exec_argv``, ``logs``, ``copy_out``,
``describe``, ``run_in_agent`` and ``probe_targets`` have defaults a backend may override.

Rules every backend keeps:

* Every process goes through ``self.runner`` (a :class:`claude_bottle.runner.Runner`); never import
  :mod:`subprocess`. Secrets go in ``Command.secret_env``, never in ``argv``.
* Every container, network, volume or machine carries :func:`claude_bottle.identity.labels` from
  the moment it is created. Cleanup finds resources by those labels, never by name alone.
* Failures a user can fix raise :class:`claude_bottle.errors.BottleError` with one line saying what
  to do.
"""

from __future__ import annotations

import abc
from collections.abc import Iterator, Mapping
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, ClassVar, Protocol

from claude_bottle.errors import BottleError

if TYPE_CHECKING:
    from claude_bottle.config import Settings
    from claude_bottle.manifest.model import AgentDef, BottleDef
    from claude_bottle.plan import CleanupPlan, CleanupReport
    from claude_bottle.runner import Result, Runner
    from claude_bottle.secrets import CredentialSet

__all__ = [
    "ActiveBottle",
    "Backend",
    "Bottle",
    "BottlePlan",
    "BottleSpec",
    "NullProgress",
    "ProbeTargets",
    "Problem",
    "Progress",
    "SecretValues",
]


@dataclass(frozen=True)
class Problem:
    """Something ``preflight`` found missing, and the one-line fix."""

    summary: str
    fix: str


@dataclass(frozen=True)
class BottleSpec:
    """What the user asked for, resolved from flags and manifests. Holds no secret values."""

    slug: str
    agent: AgentDef
    bottle: BottleDef
    cwd: Path
    state_dir: Path
    workspace: bool = True          # copy/clone the current directory to /workspace
    with_uncommitted: bool = False  # carry uncommitted changes as a first commit (git workspaces)
    # Paths (relative to ``cwd``) a copied workspace takes although they look like secrets; the
    # backend's ``prepare`` hands them to :func:`claude_bottle.workspace.workspace_notes`.
    include_secret_files: tuple[str, ...] = ()
    # The agent's named skills, resolved to host folders by the core (claude_code.find_skills), and
    # the git identity its commits carry; a backend puts both in the agent's home (home_files).
    skills: Mapping[str, Path] = field(default_factory=dict)
    git_identity: tuple[str, str] | None = None


@dataclass(frozen=True)
class SecretValues:
    """Values that must never be printed, logged, written to disk or put on a command line.

    ``env``: agent environment variables whose values came from ``${HOST_VAR}`` or ``?prompt``.
    ``credentials``: secret name -> real value, for the egress proxy to inject.
    """

    env: Mapping[str, str] = field(default_factory=dict, repr=False)
    credentials: Mapping[str, str] = field(default_factory=dict, repr=False)

    def all_values(self) -> tuple[str, ...]:
        return tuple(v for v in (*self.env.values(), *self.credentials.values()) if v)


@dataclass(frozen=True)
class BottlePlan:
    """What ``launch`` will make. Built by ``prepare``; shown by ``up --dry-run``; JSON-serialisable.

    ``details`` holds backend-specific rows for the plan table (``("subnet", "10.213.7.0/24")``);
    ``data`` holds whatever private, JSON-able values the backend's ``launch`` needs back.
    """

    spec: BottleSpec
    backend: str
    images: tuple[tuple[str, str], ...] = ()    # (role, image reference)
    sidecars: tuple[str, ...] = ()             # egress, git-gate, supervise
    allowed_hosts: tuple[str, ...] = ()
    networks: tuple[str, ...] = ()
    stage_dir: Path | None = None
    details: tuple[tuple[str, str], ...] = ()
    data: Mapping[str, object] = field(default_factory=dict)

    @property
    def slug(self) -> str:
        return self.spec.slug


@dataclass(frozen=True)
class Bottle:
    """A launched bottle, returned by ``launch``."""

    slug: str
    backend: str
    state_dir: Path
    services: tuple[str, ...] = ()


@dataclass(frozen=True)
class ActiveBottle:
    """A live bottle as ``enumerate_active`` reports it."""

    slug: str
    backend: str
    agent: str
    started_at: float
    services: tuple[str, ...] = ()
    # A problem the bottle reported about itself, with what to do (filled in by the core from the
    # bottle's state dir; backends leave it empty).
    problem: str = ""
    # "running", or "stopped": its resources exist but do not all run (an agent that exited, a host
    # reboot). A stopped bottle is still live: it holds the agent's work, cleanup spares it, and
    # `down` saves its work first (or refuses while it cannot).
    state: str = "running"


@dataclass(frozen=True)
class ProbeTargets:
    """Addresses ``claude-bottle check`` probes from inside the agent that the agent cannot find out
    itself (what it can, such as its own subnet and default gateway, the probe finds). Each must be
    unreachable from the agent. Returned by ``probe_targets``; every field may be empty."""

    host: tuple[str, ...] = ()       # the machine running the bottle, as its networks see it (gateways)
    siblings: tuple[str, ...] = ()   # other bottles' agents and bundles
    far_side: tuple[str, ...] = ()   # the bundle's addresses on networks the agent is not on


class Progress(Protocol):
    """Where a backend reports long work. ``phase`` times a named step for the summary at the end."""

    def phase(self, name: str) -> AbstractContextManager[None]: ...

    def note(self, text: str) -> None: ...


class NullProgress:
    """A :class:`Progress` that reports nothing (tests, ``--json``)."""

    @contextmanager
    def phase(self, name: str) -> Iterator[None]:
        yield

    def note(self, text: str) -> None:
        pass


class Backend(abc.ABC):
    """Base class of every backend. Subclasses set ``NAME`` and implement the abstract methods."""

    NAME: ClassVar[str]

    def __init__(self, *, runner: Runner, settings: Settings) -> None:
        self.runner = runner
        self.settings = settings

    # -- checks ---------------------------------------------------------------------------------
    @abc.abstractmethod
    def preflight(self) -> list[Problem]:
        """Return what is missing to use this backend, each with its fix. Never raise for a missing
        tool: ``claude-bottle backends`` shows these, and ``up`` refuses to start while any remain."""

    def describe(self) -> dict[str, str]:
        """Extra facts for ``claude-bottle backends`` (binary path, version). Cheap; may be empty."""
        return {}

    # -- one bottle -----------------------------------------------------------------------------
    @abc.abstractmethod
    def prepare(self, *, spec: BottleSpec, stage_dir: Path) -> BottlePlan:
        """Validate ``spec`` and render config files into ``stage_dir``; return the plan.

        Pure with respect to the system: create no container, network, VM or state dir. Reading the
        system to allocate (ports, subnets) is fine. ``up --dry-run`` stops after this."""

    @abc.abstractmethod
    def launch(self, *, plan: BottlePlan, secrets: SecretValues, progress: Progress) -> Bottle:
        """Create the bottle's resources in order, each labelled from birth, and provision them.

        If any step fails, remove what this call made and raise :class:`BottleError`. Called after
        the core created the state dir and wrote ``metadata.json``; the core marks the bottle live
        when this returns."""

    @abc.abstractmethod
    def down(self, *, slug: str) -> CleanupReport:
        """Remove every resource of bottle ``slug`` (live or not). Idempotent: already gone is ok.
        The core removes the state dir afterwards unless it is preserved."""

    def exec_argv(self, *, slug: str, argv: list[str], interactive: bool) -> int:
        """Run ``argv`` in the agent as the agent user and return its exit status."""
        raise BottleError(f"the {self.NAME} backend cannot exec into bottles")

    def run_in_agent(self, *, slug: str, argv: list[str], input: bytes | None = None,
                     timeout: float = 120) -> Result:
        """Run ``argv`` in bottle ``slug``'s agent as the agent user, with ``input`` on its stdin, and
        return what it printed (``check=False``: a non-zero exit is the caller's to judge). Raise
        :class:`BottleError` when the bottle is not running. ``claude-bottle check`` and ``up --check``
        run their containment probe (a node script) through it. Optional: the default refuses."""
        raise BottleError(f"the {self.NAME} backend cannot run a command in a bottle and read its output")

    def probe_targets(self, *, slug: str) -> ProbeTargets:
        """The addresses ``claude-bottle check`` should find unreachable from bottle ``slug``'s agent
        and that the agent cannot discover: the host's gateways, other bottles, the bundle's far side.
        Read-only. Optional: the default gives none (the probe still tries its own list)."""
        return ProbeTargets()

    def start(self, *, slug: str, credentials: CredentialSet) -> None:
        """Bring a stopped bottle (``ActiveBottle.state == "stopped"``) back: its sidecars first, with
        ``credentials`` delivered again (the bundle's tmpfs lost them; the core rebuilt them with the
        placeholders the agent holds), then the agent. Called by ``claude-bottle start``. Optional:
        the default refuses, and the user can only ``down --discard`` such a bottle."""
        raise BottleError(f"the {self.NAME} backend cannot start a stopped bottle",
                          hint=f"`claude-bottle down {slug} --discard` removes it with its work")

    def logs(self, *, slug: str, follow: bool) -> int:
        """Stream the bottle's service logs to stdout; return an exit status."""
        raise BottleError(f"the {self.NAME} backend has no logs")

    def copy_out(self, *, slug: str, path: str, dest: Path) -> None:
        """Copy ``path`` (absolute, inside the agent) out of bottle ``slug`` to ``dest`` on the host
        (``claude-bottle cp``). Never follow a link out of the bottle onto the host's filesystem."""
        raise BottleError(f"the {self.NAME} backend cannot copy files out of bottles")

    # -- all bottles ----------------------------------------------------------------------------
    @abc.abstractmethod
    def enumerate_active(self) -> list[ActiveBottle]:
        """Live bottles of this backend: ``up`` finished (``metadata.json`` says live) and their
        resources still run. Read-only.

        Raise :class:`~claude_bottle.errors.BottleError` when the engine cannot be asked, even if no
        bottle is recorded: an empty list means "none live", which ``list``, ``down --all`` and
        ``cleanup`` report as such, and only an engine that answers can say that."""

    @abc.abstractmethod
    def prepare_cleanup(self, *, protected: frozenset[str]) -> CleanupPlan:
        """List this backend's leftovers: labelled resources of bottles whose slug is not in
        ``protected`` (live or still launching on *any* backend). Read-only; never lists a
        resource without our labels."""

    @abc.abstractmethod
    def cleanup(self, *, plan: CleanupPlan) -> CleanupReport:
        """Remove each item of ``plan`` (only this backend's items are passed), best-effort: one
        :class:`~claude_bottle.plan.CleanupOutcome` per item, already-gone counts as success, never
        raise for a single item. Running it again on the same plan is a no-op that succeeds."""
