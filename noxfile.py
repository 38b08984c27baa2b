"""Sessions: tests (unit), integration (real Docker), lint, typecheck, bench."""

from __future__ import annotations

import shutil

import nox

nox.options.default_venv_backend = "venv"
nox.options.sessions = ["tests", "integration"] if shutil.which("docker") else ["tests"]

PACKAGES = ("-e", ".", "-e", "plugins/docker", "-e", "plugins/smolmachines")
# detect-secrets and unidiff: the git-gate unit tests run the gate's pre-receive hook on the host.
TEST_DEPS = ("pytest>=8", "pytest-mock>=3", "detect-secrets==1.5.0", "unidiff==0.7.5")
TEST_DIRS = ("tests/unit", "plugins/docker/tests", "plugins/smolmachines/tests")


def _install(session: nox.Session, *extra: str) -> None:
    session.install(*PACKAGES, *TEST_DEPS, *extra)


@nox.session
def tests(session: nox.Session) -> None:
    """Unit tests: no Docker needed."""
    _install(session)
    session.run("pytest", *TEST_DIRS, "-m", "not integration", *session.posargs)


@nox.session
def integration(session: nox.Session) -> None:
    """Integration tests against the real Docker engine (and the real smolvm binary)."""
    _install(session)
    session.run(
        "pytest", "tests/integration", "plugins/docker/tests", "plugins/smolmachines/tests",
        "-m", "integration", "-p", "no:cacheprovider", *session.posargs,
    )


@nox.session
def lint(session: nox.Session) -> None:
    session.install("ruff>=0.6")
    session.run("ruff", "check", "src", "plugins", "tests", "noxfile.py")


@nox.session
def typecheck(session: nox.Session) -> None:
    _install(session, "mypy>=1.10", "types-PyYAML")
    session.run("mypy", "src/claude_bottle", "plugins/docker/src", "plugins/smolmachines/src")


@nox.session
def bench(session: nox.Session) -> None:
    """Warm up/down against raw docker, and the proxy's added latency (see benchmarks/)."""
    _install(session)
    session.run("python", "benchmarks/run.py", *session.posargs)
