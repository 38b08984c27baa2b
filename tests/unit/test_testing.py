"""``claude_bottle.testing``: the conformance run passes a correct backend, catches broken ones, and
exercises every abstract method of the contract (the meta-test)."""

from __future__ import annotations

import functools
from pathlib import Path

import pytest

from claude_bottle.backends.base import Backend, Problem
from claude_bottle.config import load_settings
from claude_bottle.errors import BottleError
from claude_bottle.plan import CleanupPlan
from claude_bottle.runner import SubprocessRunner
from claude_bottle.state import list_state_dirs
from claude_bottle.testing import ConformanceError, FakeBackend, check_backend


def make(cls: type[FakeBackend] = FakeBackend) -> FakeBackend:
    return cls(runner=SubprocessRunner(), settings=load_settings())


def test_fake_backend_passes_and_leaves_nothing(cb_home):
    backend = make()
    report = check_backend(backend)
    assert report.steps == (
        "preflight", "prepare", "launch", "enumerate", "prepare_cleanup", "cleanup", "cleanup again",
        "down", "down again",
    )
    assert backend.records() == [] and list_state_dirs(cb_home / "state") == []


def test_every_abstract_method_is_exercised():
    called: set[str] = set()

    def record(name: str, method):
        @functools.wraps(method)
        def wrapper(self, *args, **kwargs):
            called.add(name)
            return method(self, *args, **kwargs)

        return wrapper

    abstract = set(Backend.__abstractmethods__)
    Recording = type("Recording", (FakeBackend,), {n: record(n, getattr(FakeBackend, n)) for n in abstract})
    check_backend(make(Recording))
    assert called == abstract


class IgnoresProtected(FakeBackend):
    def prepare_cleanup(self, *, protected: frozenset[str]) -> CleanupPlan:
        return super().prepare_cleanup(protected=frozenset())


class PrepareHasSideEffects(FakeBackend):
    def prepare(self, *, spec, stage_dir: Path):
        plan = super().prepare(spec=spec, stage_dir=stage_dir)
        self._create(kind="network", name=f"claude-bottle-net-{spec.slug}", role="network", spec=spec)
        return plan


class CleanupNotIdempotent(FakeBackend):
    def _remove(self, name: str) -> None:
        path = self.root / f"{name}.json"
        if not path.exists():
            raise BottleError(f"{name} not found")
        path.unlink()


class ForgetsLiveBottles(FakeBackend):
    def enumerate_active(self):
        return []


@pytest.mark.parametrize(
    ("cls", "message"),
    [
        (IgnoresProtected, "prepare_cleanup() lists a protected bottle's resources"),
        (PrepareHasSideEffects, "prepare() changed what enumerate/prepare_cleanup see"),
        (CleanupNotIdempotent, "cleanup again failed"),
        (ForgetsLiveBottles, "enumerate_active() misses the live bottle"),
    ],
)
def test_contract_breaches_are_caught_and_cleaned_up(cls, message, cb_home):
    backend = make(cls)
    with pytest.raises(ConformanceError, match=message.replace("(", r"\(").replace(")", r"\)")):
        check_backend(backend)
    assert backend.records() == [] and list_state_dirs(cb_home / "state") == []


def test_preflight_problems_stop_the_run():
    cls = type("Needy", (FakeBackend,), {"PROBLEMS": (Problem("no docker", "install docker.io"),)})
    with pytest.raises(ConformanceError, match=r"preflight problems: no docker \(install docker.io\)"):
        check_backend(make(cls))
