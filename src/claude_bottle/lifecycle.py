"""One bottle's life: ``up`` (resolve, prepare, launch, session, down), ``down``, ``list``, ``exec``.

These functions hold the order of things and the guarantees around them (nothing half-created left
behind, a second ``down`` is a no-op); the backend does the work and the CLI does the talking,
through the :class:`UpHooks` it passes in.
"""

from __future__ import annotations

import contextlib
import difflib
import shutil
import tempfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from claude_bottle import claude_code, gitwork, identity, safecopy, worksave
from claude_bottle import secrets as secrets_mod
from claude_bottle.backends import registry
from claude_bottle.backends.base import (
    ActiveBottle,
    Backend,
    Bottle,
    BottlePlan,
    BottleSpec,
    Progress,
    SecretValues,
)
from claude_bottle.errors import BottleError, UsageError, backend_failure
from claude_bottle.plan import CleanupItem, CleanupOutcome, CleanupReport
from claude_bottle.sidecars.init import BUNDLE_PROBLEM_FILE
from claude_bottle.state import StateDir, list_state_dirs

if TYPE_CHECKING:
    from claude_bottle.config import Settings
    from claude_bottle.runner import Runner

__all__ = [
    "DownResult",
    "Listing",
    "UpHooks",
    "UpRequest",
    "UpResult",
    "backend_of",
    "check_slug",
    "down",
    "exec_in",
    "list_active",
    "up",
]

SESSION_ARGV = ("claude",)


@dataclass(frozen=True)
class UpRequest:
    cwd: Path
    agent: str | None = None
    backend: str | None = None
    dry_run: bool = False
    detach: bool = False
    keep: bool = False
    workspace: bool = True
    with_uncommitted: bool = False
    include_secret_files: tuple[str, ...] = ()  # --include-secret-file
    check: bool = False  # --check: the containment probe runs before the bottle is handed over


class UpHooks(Protocol):
    """How ``up`` talks to the user. The CLI implements it with ``ui``; tests with recorders."""

    @property
    def progress(self) -> Progress: ...

    def warn(self, text: str) -> None: ...

    def confirm(self, spec: BottleSpec, backend: str) -> bool:
        """Ask once before anything is created (and before any secret is asked for)."""
        ...

    def ask_secret(self, prompt: str) -> str: ...

    def launched(self, plan: BottlePlan, bottle: Bottle) -> None:
        """The bottle is live; called before the session starts."""
        ...


@dataclass(frozen=True)
class DownResult:
    slug: str
    report: CleanupReport = field(default_factory=CleanupReport)
    state_removed: bool = False
    preserved: bool = False
    warnings: tuple[str, ...] = ()
    # Set when the answer is one line: no backend could even look (an engine that is away), or
    # nothing was found under a slug close to a known one (a typo).
    error: str = ""

    @property
    def found(self) -> bool:
        return bool(self.report.outcomes) or self.state_removed or self.preserved

    @property
    def ok(self) -> bool:
        return not self.report.failed and not self.error


@dataclass(frozen=True)
class UpResult:
    plan: BottlePlan
    bottle: Bottle | None = None  # None after --dry-run
    exit_code: int = 0            # the session's exit status
    down: DownResult | None = None  # set when up took the bottle down after the session
    refused: tuple[tuple[str, int], ...] = ()  # (host, count) the proxy refused during the session
    refused_log: str = ""                      # where that session's audit log is kept


@dataclass(frozen=True)
class Listing:
    bottles: tuple[ActiveBottle, ...]
    warnings: tuple[str, ...] = ()
    failed: frozenset[str] = frozenset()  # backends whose enumerate_active raised


# -- up ----------------------------------------------------------------------------------------------
def _ready_backend(
    flag: str | None, *, settings: Settings, runner: Runner, environ: Mapping[str, str]
) -> Backend:
    name, source = registry.resolve_backend_name(flag, settings=settings, environ=environ)
    backend = registry.get_backend(name, runner=runner, settings=settings, source=source)
    problems = backend.preflight()
    if problems:
        raise BottleError(f"the {name} backend is not ready: {problems[0].summary}", hint=problems[0].fix)
    return backend


def _dry_prepare(backend: Backend, spec: BottleSpec) -> BottlePlan:
    # The rendered files stay in the temporary stage dir so the user can read what `up` would use
    # (the plan names them); a failed prepare leaves nothing.
    stage = Path(tempfile.mkdtemp(prefix="claude-bottle-stage-"))
    try:
        return backend.prepare(spec=spec, stage_dir=stage)
    except BaseException:
        shutil.rmtree(stage, ignore_errors=True)
        raise


def _launch(
    backend: Backend, spec: BottleSpec, secrets: SecretValues, progress: Progress
) -> tuple[BottlePlan, Bottle]:
    state = StateDir(spec.state_dir)
    state.create(agent=spec.agent.name, bottle=spec.bottle.name, backend=backend.NAME, cwd=spec.cwd)
    launched = False
    try:
        stage = state.path / "stage"
        stage.mkdir()
        with progress.phase("prepare"):
            plan = backend.prepare(spec=spec, stage_dir=stage)
        with progress.phase("launch"):
            bottle = backend.launch(plan=plan, secrets=secrets, progress=progress)
        launched = True
        state.mark_live(services=bottle.services)
    except BaseException:
        # launch undoes its own resources when it fails; if something after it failed, undo them here.
        if launched:
            with contextlib.suppress(Exception):
                backend.down(slug=spec.slug)
        kept = _keep_only_logs(state.path)
        meta = state.read() if kept else None
        if meta is not None:
            state.write(replace(meta, pid_start=None))  # ended: no longer an up in flight for cleanup
        if kept:
            progress.note(f"the failed start's logs are kept in {kept} "
                          "(`claude-bottle cleanup` removes them)")
        raise
    return plan, bottle


def _keep_only_logs(state_dir: Path) -> str:
    """After a failed start: remove the state dir but for its logs (the bundle's last words, the audit
    log), which stay as evidence until ``cleanup`` (the dir is not live, so cleanup reaps it)."""
    logs = state_dir / "logs"
    if not logs.is_dir() or not any(p.is_file() and p.stat().st_size for p in logs.iterdir()):
        shutil.rmtree(state_dir, ignore_errors=True)
        return ""
    for child in state_dir.iterdir():
        if child not in (logs, state_dir / "metadata.json"):  # metadata: cleanup knows it as ours
            if child.is_dir() and not child.is_symlink():
                shutil.rmtree(child, ignore_errors=True)
            else:
                child.unlink(missing_ok=True)
    return str(logs)


def up(
    request: UpRequest, *, settings: Settings, runner: Runner, hooks: UpHooks, environ: Mapping[str, str]
) -> UpResult:
    """Start a bottle (or, with ``dry_run``, only prepare and return its plan: nothing is created
    outside a temporary stage dir, which holds the rendered files the plan names)."""
    from claude_bottle.manifest.loader import resolve_definitions  # noqa: PLC0415 - yaml is slow to import
    from claude_bottle.manifest.secrets import collect_secret_values  # noqa: PLC0415

    with hooks.progress.phase("resolve"):
        backend = _ready_backend(request.backend, settings=settings, runner=runner, environ=environ)
        defs = resolve_definitions(settings=settings, cwd=request.cwd, agent=request.agent)
    for warning in defs.warnings:
        hooks.warn(warning)
    slug = identity.new_slug(defs.agent.name)
    # An unknown skill is refused here, before anything exists.
    skills = claude_code.find_skills(defs.agent.skills, claude_code.skill_search(
        bottle_home=settings.home, cwd=request.cwd))
    spec = BottleSpec(
        slug=slug, agent=defs.agent, bottle=defs.bottle, cwd=request.cwd,
        state_dir=settings.state_root / slug, workspace=request.workspace,
        include_secret_files=request.include_secret_files,
        with_uncommitted=request.with_uncommitted, skills=skills,
        git_identity=claude_code.git_identity(runner, cwd=request.cwd, slug=slug),
    )
    if request.dry_run:
        with hooks.progress.phase("prepare"):
            return UpResult(plan=_dry_prepare(backend, spec))
    if not hooks.confirm(spec, backend.NAME):
        raise BottleError("aborted: nothing was created")
    secrets = collect_secret_values(defs, environ=environ, ask=hooks.ask_secret)
    plan, bottle = _launch(backend, spec, secrets, hooks.progress)
    if request.check:
        _check_or_down(backend, slug, settings=settings, runner=runner, progress=hooks.progress)
    hooks.launched(plan, bottle)
    if request.detach:
        return UpResult(plan=plan, bottle=bottle)
    code, result = 1, None
    refused: tuple[tuple[str, int], ...] = ()
    try:
        # No progress phase around the session: a spinner must not draw over the agent's terminal.
        code = backend.exec_argv(slug=slug, argv=list(SESSION_ARGV), interactive=True)
    finally:
        refused, kept_log = _session_refusals(slug, settings=settings)
        if not request.keep:
            with hooks.progress.phase("down"):
                result = down(slug, settings=settings, runner=runner)
    return UpResult(plan=plan, bottle=bottle, exit_code=code, down=result, refused=refused,
                    refused_log=kept_log)


def _check_or_down(backend: Backend, slug: str, *, settings: Settings, runner: Runner,
                   progress: Progress) -> None:
    """``up --check``: probe the new bottle's walls; a bottle that fails (or cannot be probed) is taken
    down, with nothing in it to save yet, and ``up`` fails."""
    from claude_bottle import check  # noqa: PLC0415 - only with --check

    report = None
    try:
        with progress.phase("containment check"):
            report = check.run_probe(backend, slug, settings=settings)
    finally:
        if report is None or not report.ok:
            for failed in report.failed if report is not None else ():
                progress.note(f"containment check FAIL {failed.name}: {failed.detail}")
            with progress.phase("down"), contextlib.suppress(Exception):
                down(slug, settings=settings, runner=runner, discard=True)
    if not report.ok:
        names = ", ".join(r.name for r in report.failed)
        raise BottleError(f"bottle {slug} failed its containment check ({names}) and was taken down",
                          hint="`claude-bottle check SLUG` shows every class of a live bottle")
    progress.note(f"containment check: all {len(report.results)} classes pass")


def _session_refusals(slug: str, *, settings: Settings) -> tuple[tuple[tuple[str, int], ...], str]:
    """What the proxy refused during the session (host, count), most first, and where its audit log is
    kept for a closer look: a copy under ``$CLAUDE_BOTTLE_HOME/logs`` (the state dir may go with the
    bottle) when anything was refused."""
    from claude_bottle import egress_log  # noqa: PLC0415 - only when a session ends

    path = egress_log.log_path(slug, settings=settings)
    counts: dict[str, int] = {}
    try:
        for record in egress_log.read_records(path):
            if record.get("verdict") == "deny":
                host = str(record.get("host") or "?")
                counts[host] = counts.get(host, 0) + int(record.get("repeated") or 1)  # type: ignore[call-overload]
    except OSError:
        return (), ""
    if not counts:
        return (), ""
    kept = settings.home / "logs" / f"{slug}-egress.jsonl"
    try:
        kept.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(path, kept)
    except OSError:
        kept = path
    return tuple(sorted(counts.items(), key=lambda hc: (-hc[1], hc[0]))), str(kept)


def start(slug: str, *, settings: Settings, runner: Runner, environ: Mapping[str, str],
          ask: Callable[[str], str]) -> None:
    """Bring a stopped bottle back (its agent exited, the host rebooted): the backend starts its
    sidecars, gets the bottle's credentials again (real values resolved from the host as at ``up``,
    beside the placeholders the agent holds) and starts the agent. Then ``attach`` or ``down``."""
    from claude_bottle.manifest.loader import resolve_definitions  # noqa: PLC0415 - yaml is slow to import
    from claude_bottle.manifest.secrets import collect_secret_values  # noqa: PLC0415

    state = StateDir(settings.state_root / slug)
    meta = state.read()
    if meta is None or not meta.live:
        raise BottleError(f"no bottle {slug} to start", hint="see claude-bottle list")
    backend = registry.get_backend(meta.backend, runner=runner, settings=settings,
                                   source=str(state.metadata_path))
    defs = resolve_definitions(settings=settings, cwd=Path(meta.cwd), agent=meta.agent)
    values = collect_secret_values(defs, environ=environ, ask=ask)
    backend.start(slug=slug, credentials=secrets_mod.restore_credentials(state.path, values.credentials))
    (state.path / "logs" / BUNDLE_PROBLEM_FILE).unlink(missing_ok=True)


# -- down, list, exec --------------------------------------------------------------------------------
def _failed_down(backend: Backend, slug: str, exc: BottleError) -> CleanupReport:
    item = CleanupItem(backend.NAME, "bottle", identity.Names(slug).agent, f"bottle {slug}", slug=slug)
    return CleanupReport((CleanupOutcome(item, ok=False, error=str(exc)),))


def _present(backend: Backend, slug: str) -> bool:
    """Whether the bottle's agent still exists (running or stopped): only then is there work in it to
    save. An engine that cannot answer raises: ``down`` stops rather than guesses."""
    return any(a.slug == slug for a in backend.enumerate_active())


def _save_work(backend: Backend, slug: str, state: StateDir) -> str:
    """Push the agent's unpushed commits and its uncommitted work to the gate (:mod:`.worksave`).
    Returns why the bottle must be kept ("" when the work is safe or there is none to save)."""
    keep = f"kept bottle {slug}"
    drop = f"`claude-bottle down {slug} --discard` drops it"
    git = gitwork.load_workspace(state.path) is not None
    try:
        if not git:
            return _keep_copied_workspace(backend, slug, state)
        code = backend.exec_argv(slug=slug, argv=worksave.save_argv(slug), interactive=False)
    except BottleError as exc:
        return f"{keep}: its work could not be saved ({exc.message}); start it again, or {drop}"
    return "" if code == 0 else f"{keep}: some of its work could not be saved (see above); {drop}"


def _keep_copied_workspace(backend: Backend, slug: str, state: StateDir) -> str:
    """A copied (not git) workspace has no gate to push to: when the agent changed anything in it
    (a file newer than the session's own CLAUDE.md), the whole of ``/workspace`` is copied, made safe,
    into the state dir, which ``down`` then keeps (and ``cleanup`` spares) until ``--discard``."""
    dest = state.path / worksave.KEPT_WORKSPACE
    if dest.exists():
        return ""
    if backend.exec_argv(slug=slug, argv=list(worksave.CHANGED_ARGV), interactive=False) != worksave.CHANGED:
        return ""  # nothing changed in /workspace during the session
    safecopy.keep_copy(backend, slug=slug, path="/workspace", dest=dest)
    return ""


def down(slug: str, *, settings: Settings, runner: Runner, discard: bool = False,
         listed: bool = False) -> DownResult:
    """Remove bottle ``slug`` on its backend (from its metadata; every backend when that is gone),
    then its state dir unless preserved or holding work not fetched yet. First the agent's work is
    saved to its gate (unless ``discard``): a bottle whose work cannot be saved is kept. Idempotent: a
    bottle already gone is a no-op. ``listed``: the caller just saw the bottle in ``list_active``, so
    its backend need not be asked again whether it exists (``down --all``)."""
    if not identity.is_slug(slug):
        raise BottleError(f"{slug!r} is not a bottle slug", hint="see claude-bottle list")
    state = StateDir(settings.state_root / slug)
    meta = state.read()
    warnings: tuple[str, ...] = ()
    if meta is not None:
        source = str(state.metadata_path)
        made_by = registry.get_backend(meta.backend, runner=runner, settings=settings, source=source)
        backends = {meta.backend: made_by}
        if meta.live and not discard and (listed or _present(made_by, slug)):
            kept = _save_work(made_by, slug, state)
            if kept:
                return DownResult(slug, error=kept)
    else:
        backends, warnings = registry.instantiate_all(runner=runner, settings=settings)
    reports = []
    failures: dict[str, BottleError] = {}
    for name, backend in backends.items():
        try:
            reports.append(backend.down(slug=slug))
        except BottleError as exc:
            failures[name] = exc
            reports.append(_failed_down(backend, slug, exc))
    report = CleanupReport.merge(reports)
    error = ""
    if failures and len(failures) == len(backends):
        error = str(backend_failure(f"cannot remove bottle {slug}", failures))
    preserved = state.path.is_dir() and state.preserved
    removed = False
    # The agent's pushed work lives only in the state dir's git mirror until `fetch` (issue 5).
    unfetched = ([] if discard or not state.path.is_dir()
                 else gitwork.unfetched_branches(runner=runner, state_dir=state.path))
    if unfetched:
        warnings += (f"kept {state.path}: {', '.join(unfetched)} not fetched yet; run `claude-bottle fetch "
                     f"{slug}`, then `claude-bottle cleanup` removes it",)
    kept_copy = not discard and (state.path / worksave.KEPT_WORKSPACE).is_dir()
    if kept_copy:
        warnings += (f"the agent's /workspace is kept in {state.path / worksave.KEPT_WORKSPACE} (it changed "
                     f"files); take what you need, then `claude-bottle down {slug} --discard`",)
    if state.path.is_dir() and not preserved and not unfetched and not kept_copy and not report.failed:
        shutil.rmtree(state.path)
        removed = True
    result = DownResult(slug, report, state_removed=removed, preserved=preserved, warnings=warnings,
                        error=error)
    close = None if result.found else _close_slug(slug, settings)
    return replace(result, error=f"no bottle {slug}; did you mean {close}?") if close else result


def list_active(*, settings: Settings, runner: Runner) -> Listing:
    """Live bottles of every backend, oldest first. A backend that fails to answer is a warning
    beside the others' bottles (``Listing.failed`` names it); when no bottle was found at all, its
    failure is the error: an engine that is away must never read as "no live bottles"."""
    backends, warnings = registry.instantiate_all(runner=runner, settings=settings)
    bottles: list[ActiveBottle] = []
    failures: dict[str, Exception] = {}
    for name, backend in backends.items():
        try:
            bottles.extend(backend.enumerate_active())
        except Exception as exc:  # one failing backend must not hide the others' bottles
            failures[name] = exc
    if failures and not bottles:
        raise backend_failure("cannot list live bottles", failures)
    warnings += tuple(f"backend {name} could not list its bottles: {exc}" for name, exc in failures.items())
    bottles = [_with_problem(b, settings.state_root / b.slug) for b in bottles]
    return Listing(tuple(sorted(bottles, key=lambda b: b.started_at)), warnings, frozenset(failures))


def _with_problem(bottle: ActiveBottle, state_dir: Path) -> ActiveBottle:
    """What the bottle's bundle reported about itself (one line, beside its audit log: a bundle that
    restarted without its credentials refuses everything and says what to do)."""
    try:
        text = (state_dir / "logs" / BUNDLE_PROBLEM_FILE).read_text(errors="replace").strip()
    except OSError:
        return bottle
    return replace(bottle, problem=text.splitlines()[0][:300]) if text else bottle


def backend_of(slug: str, *, settings: Settings, runner: Runner) -> Backend:
    """The backend that made ``slug``: from its metadata, else whichever backend lists it live."""
    meta = StateDir(settings.state_root / slug).read()
    if meta is not None:
        return registry.get_backend(meta.backend, runner=runner, settings=settings, source=f"bottle {slug}")
    backends, _ = registry.instantiate_all(runner=runner, settings=settings)
    failures: dict[str, BottleError] = {}
    for name, backend in backends.items():
        try:
            if any(a.slug == slug for a in backend.enumerate_active()):
                return backend
        except BottleError as exc:
            failures[name] = exc
    close = _close_slug(slug, settings)
    if close:
        raise BottleError(f"no bottle {slug}; did you mean {close}?")
    if failures:  # it may be there: say why we cannot tell, not that it is not
        raise backend_failure(f"cannot look for bottle {slug}", failures)
    raise BottleError(f"no bottle {slug}", hint="see claude-bottle list")


def _close_slug(slug: str, settings: Settings) -> str | None:
    """The known bottle (by state dir) whose slug is closest to a mistyped ``slug``, if any is close."""
    known = [d.slug for d in list_state_dirs(settings.state_root)
             if d.slug != slug and identity.is_slug(d.slug)]
    close = difflib.get_close_matches(slug, known, n=1)
    return close[0] if close else None


def check_slug(slug: str, *, settings: Settings) -> None:
    """For commands that read a bottle's state dir (``fetch``, ``logs --egress``): a slug with no
    state dir but close to one that has is a typo; say which it probably meant."""
    if not (settings.state_root / slug).is_dir() and (close := _close_slug(slug, settings)):
        raise BottleError(f"no bottle {slug}; did you mean {close}?")


def exec_in(slug: str, argv: list[str], *, settings: Settings, runner: Runner, interactive: bool) -> int:
    if not argv:
        raise UsageError("nothing to run", hint="claude-bottle exec SLUG -- CMD...")
    backend = backend_of(slug, settings=settings, runner=runner)
    return backend.exec_argv(slug=slug, argv=argv, interactive=interactive)
