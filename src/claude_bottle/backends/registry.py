"""Backend discovery: the entry-point group ``claude_bottle.backends``, read once and lazily.

:func:`load_backends` keeps a broken plugin visible instead of letting it break unrelated commands:
an import error or a class that is not a :class:`~claude_bottle.backends.base.Backend` is recorded
on its :class:`LoadedBackend`, shown by ``claude-bottle backends``, and raised in full only when the
user picks that backend. Two distributions claiming one name is an error naming both, because
silently letting one win would make ``--backend`` mean different things on different machines.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, replace
from importlib import metadata
from typing import TYPE_CHECKING

from claude_bottle.backends.base import Backend, Problem
from claude_bottle.errors import BottleError

if TYPE_CHECKING:
    from claude_bottle.config import Settings
    from claude_bottle.runner import Runner

__all__ = [
    "DEFAULT_BACKEND",
    "ENV_BACKEND",
    "ENV_BACKENDS",
    "GROUP",
    "BackendStatus",
    "LoadedBackend",
    "backend_statuses",
    "clear_cache",
    "default_not_ready",
    "get_backend",
    "instantiate_all",
    "load_backends",
    "lookup",
    "registered",
    "resolve_backend_name",
]

GROUP = "claude_bottle.backends"
ENV_BACKENDS = "CLAUDE_BOTTLE_BACKENDS"  # comma list limiting discovery; empty disables it
ENV_BACKEND = "CLAUDE_BOTTLE_BACKEND"    # the default backend for `up`
DEFAULT_BACKEND = "docker"


@dataclass(frozen=True)
class LoadedBackend:
    """One discovered backend. ``error`` is set (and ``cls`` is None) when the plugin is broken."""

    name: str
    cls: type[Backend] | None
    dist_name: str
    dist_version: str
    error: BaseException | None = None

    @property
    def ok(self) -> bool:
        return self.error is None and self.cls is not None

    def require(self) -> type[Backend]:
        """The backend class, or the plugin's own error re-raised in full (pytest's rule: never
        hide an ImportError behind a friendlier message)."""
        if self.error is not None:
            note = f"the {self.name} backend ({self.dist_name} {self.dist_version}) is broken"
            if note not in getattr(self.error, "__notes__", ()):
                self.error.add_note(note)  # the CLI's crash line leads with it
            raise self.error
        assert self.cls is not None
        return self.cls


_cache: dict[str | None, dict[str, LoadedBackend]] = {}
# Backends registered in-process (tests, plugin suites); they survive CLAUDE_BOTTLE_BACKENDS="".
_extra: dict[str, LoadedBackend] = {}


def _allowed(environ: Mapping[str, str]) -> set[str] | None:
    raw = environ.get(ENV_BACKENDS)
    if raw is None:
        return None
    return {part.strip() for part in raw.split(",") if part.strip()}


def _load_one(ep: metadata.EntryPoint, dist_name: str, dist_version: str) -> LoadedBackend:
    try:
        obj = ep.load()
    except Exception as exc:  # any failure inside a plugin's import is recorded, not raised
        return LoadedBackend(ep.name, None, dist_name, dist_version, exc)
    if not (isinstance(obj, type) and issubclass(obj, Backend)):
        err = TypeError(f"{ep.value} is not a subclass of claude_bottle.backends.base.Backend")
        return LoadedBackend(ep.name, None, dist_name, dist_version, err)
    if getattr(obj, "NAME", None) != ep.name:
        named = getattr(obj, "NAME", None)
        err = TypeError(f"{ep.value}.NAME is {named!r}, not the entry-point name {ep.name!r}")
        return LoadedBackend(ep.name, None, dist_name, dist_version, err)
    return LoadedBackend(ep.name, obj, dist_name, dist_version)


def _discover(allowed: set[str] | None) -> dict[str, LoadedBackend]:
    found: dict[str, LoadedBackend] = {}
    if allowed is not None and not allowed:
        return found
    for ep in metadata.entry_points(group=GROUP):
        if allowed is not None and ep.name not in allowed:
            continue
        dist = ep.dist
        dist_name = dist.name if dist is not None else "?"
        dist_version = dist.version if dist is not None else "?"
        if ep.name in found:
            other = found[ep.name].dist_name
            if other == dist_name:  # the same distribution seen twice on sys.path
                continue
            raise BottleError(
                f"backend {ep.name!r} is provided by two distributions: {other} and {dist_name}",
                hint="uninstall one of them",
            )
        found[ep.name] = _load_one(ep, dist_name, dist_version)
    return found


def load_backends(environ: Mapping[str, str] | None = None) -> dict[str, LoadedBackend]:
    """Every backend, by name: installed (limited by ``CLAUDE_BOTTLE_BACKENDS``) plus registered.

    Runs discovery once per value of ``CLAUDE_BOTTLE_BACKENDS`` and caches it."""
    env = os.environ if environ is None else environ
    key = env.get(ENV_BACKENDS)
    if key not in _cache:
        _cache[key] = _discover(_allowed(env))
    return dict(sorted({**_cache[key], **_extra}.items()))


def clear_cache() -> None:
    _cache.clear()


@contextmanager
def registered(
    cls: type[Backend],
    *,
    name: str | None = None,
    dist_name: str = "claude-bottle-testing",
    dist_version: str = "0",
) -> Iterator[LoadedBackend]:
    """Make ``cls`` a backend for the duration of the ``with`` block, whatever is installed.

    The registration is always removed on exit, so one test never leaks a backend into the next."""
    loaded = LoadedBackend(name or cls.NAME, cls, dist_name, dist_version)
    previous = _extra.get(loaded.name)
    _extra[loaded.name] = loaded
    try:
        yield loaded
    finally:
        if previous is None:
            _extra.pop(loaded.name, None)
        else:
            _extra[loaded.name] = previous


def resolve_backend_name(
    flag: str | None, *, settings: Settings, environ: Mapping[str, str] | None = None
) -> tuple[str, str]:
    """``--backend`` > ``CLAUDE_BOTTLE_BACKEND`` > config.toml ``backend`` > ``docker``.

    Returns ``(name, where it came from)`` so an unknown name can be blamed on its source."""
    env = os.environ if environ is None else environ
    if flag:
        return flag, "--backend"
    if env.get(ENV_BACKEND):
        return env[ENV_BACKEND], ENV_BACKEND
    if settings.backend and settings.backend != DEFAULT_BACKEND:
        return settings.backend, f"backend in {settings.home / 'config.toml'}"
    return DEFAULT_BACKEND, "the default"


def lookup(name: str, *, source: str = "--backend") -> LoadedBackend:
    """The loaded backend ``name``, or a one-line error naming the installed ones."""
    backends = load_backends()
    if name not in backends:
        hint = f"installed: {', '.join(backends)}" if backends else "none installed"
        limit = os.environ.get(ENV_BACKENDS)
        if limit is not None:
            hint += f"; {ENV_BACKENDS}={limit!r} limits which load"
        raise BottleError(f"unknown backend {name!r} (from {source})", hint=hint)
    return backends[name]


def get_backend(name: str, *, runner: Runner, settings: Settings, source: str = "--backend") -> Backend:
    """Instantiate backend ``name``. A broken plugin's own error is raised here, in full."""
    return lookup(name, source=source).require()(runner=runner, settings=settings)


@dataclass(frozen=True)
class BackendStatus:
    """What ``claude-bottle backends`` shows for one backend."""

    name: str
    dist_name: str
    dist_version: str
    problems: tuple[Problem, ...] = ()
    error: str = ""                          # why the plugin is broken
    facts: tuple[tuple[str, str], ...] = ()  # the backend's describe()

    @property
    def state(self) -> str:
        if self.error:
            return "broken"
        return "problems" if self.problems else "ok"


def _describe_error(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}".strip().splitlines()[0]


def backend_statuses(*, runner: Runner, settings: Settings) -> tuple[BackendStatus, ...]:
    """Every backend with its preflight problems and description. Never raises for one backend:
    a plugin whose ``preflight`` or ``describe`` blows up is shown as broken, not fatal."""
    out = []
    for loaded in load_backends().values():
        base = BackendStatus(loaded.name, loaded.dist_name, loaded.dist_version)
        if not loaded.ok:
            assert loaded.error is not None
            out.append(replace(base, error=_describe_error(loaded.error)))
            continue
        try:
            backend = loaded.require()(runner=runner, settings=settings)
            problems = tuple(backend.preflight())
            facts = tuple((str(k), str(v)) for k, v in backend.describe().items())
        except BottleError as exc:
            out.append(replace(base, problems=(Problem(summary=exc.message, fix=exc.hint or ""),)))
            continue
        except Exception as exc:  # one bad plugin must not hide the others
            out.append(replace(base, error=_describe_error(exc)))
            continue
        out.append(replace(base, problems=problems, facts=facts))
    return tuple(out)


def default_not_ready(
    statuses: tuple[BackendStatus, ...], *, settings: Settings, environ: Mapping[str, str] | None = None
) -> BottleError | None:
    """Why ``up`` would refuse to start on its default backend (``CLAUDE_BOTTLE_BACKEND``, config,
    else docker) as things are, or None: the exit status of ``claude-bottle backends``."""
    name, source = resolve_backend_name(None, settings=settings, environ=environ)
    status = next((st for st in statuses if st.name == name), None)
    if status is None:
        hint = f"pip install claude-bottle-{name}"
        return BottleError(f"backend {name!r} ({source}) is not installed", hint=hint)
    if status.error:
        return BottleError(f"the {name} backend is broken: {status.error}")
    if status.problems:
        first = status.problems[0]
        return BottleError(f"the {name} backend is not ready: {first.summary}", hint=first.fix or None)
    return None


def instantiate_all(*, runner: Runner, settings: Settings) -> tuple[dict[str, Backend], tuple[str, ...]]:
    """Every usable backend, instantiated, plus one warning per broken one (``list``, ``cleanup``
    and ``down`` carry on without it rather than fail)."""
    backends: dict[str, Backend] = {}
    warnings: list[str] = []
    for loaded in load_backends().values():
        try:
            backends[loaded.name] = loaded.require()(runner=runner, settings=settings)
        except Exception as exc:  # a broken plugin is reported, never fatal to the others
            warnings.append(
                f"backend {loaded.name} ({loaded.dist_name}) is broken and was skipped: "
                f"{_describe_error(exc)} (see claude-bottle backends)"
            )
    return backends, tuple(warnings)
