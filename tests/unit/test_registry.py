"""Backend discovery: real entry points (patched and from a real ``*.dist-info`` on sys.path), broken
plugins kept visible, duplicate names refused, ``CLAUDE_BOTTLE_BACKENDS`` limits, precedence."""

from __future__ import annotations

import ast
import importlib
import uuid
from importlib import metadata
from pathlib import Path

import pytest
from tests.fakes import GoodBackend

from claude_bottle.backends import registry
from claude_bottle.backends.base import Problem
from claude_bottle.config import Settings
from claude_bottle.errors import BottleError
from claude_bottle.runner import SubprocessRunner
from claude_bottle.testing import FakeBackend, fake_backend

GROUP = registry.GROUP


def patch_entry_points(monkeypatch: pytest.MonkeyPatch, *eps: metadata.EntryPoint) -> None:
    def entry_points(*, group: str) -> tuple[metadata.EntryPoint, ...]:
        return tuple(ep for ep in eps if ep.group == group)

    monkeypatch.setattr(metadata, "entry_points", entry_points)
    monkeypatch.delenv(registry.ENV_BACKENDS)


def ep(name: str, value: str) -> metadata.EntryPoint:
    return metadata.EntryPoint(name=name, group=GROUP, value=value)


# -- patched entry points ------------------------------------------------------------------------------
def test_good_entry_point_loads_the_class(monkeypatch):
    patch_entry_points(monkeypatch, ep("good", "tests.fakes:GoodBackend"))
    loaded = registry.load_backends()["good"]
    assert loaded.ok and loaded.cls is GoodBackend and loaded.error is None


def test_wrong_base_class_is_recorded_not_raised(monkeypatch):
    patch_entry_points(monkeypatch, ep("notabackend", "tests.fakes:NotABackend"))
    loaded = registry.load_backends()["notabackend"]
    assert not loaded.ok
    assert isinstance(loaded.error, TypeError)
    assert "not a subclass" in str(loaded.error)


def test_name_must_match_the_entry_point(monkeypatch):
    patch_entry_points(monkeypatch, ep("misnamed", "tests.fakes:MisnamedBackend"))
    loaded = registry.load_backends()["misnamed"]
    assert not loaded.ok and "NAME is 'something-else'" in str(loaded.error)


def test_discovery_runs_once_per_limit(monkeypatch):
    calls = []

    def entry_points(*, group: str) -> tuple[metadata.EntryPoint, ...]:
        calls.append(group)
        return (ep("good", "tests.fakes:GoodBackend"),)

    monkeypatch.setattr(metadata, "entry_points", entry_points)
    monkeypatch.setenv(registry.ENV_BACKENDS, "good")
    registry.load_backends()
    registry.load_backends()
    assert calls == [GROUP]


def test_limit_and_disable(monkeypatch):
    good, other = ep("good", "tests.fakes:GoodBackend"), ep("other", "tests.fakes:OtherBackend")
    patch_entry_points(monkeypatch, good, other)
    monkeypatch.setenv(registry.ENV_BACKENDS, "other, nope")
    assert list(registry.load_backends()) == ["other"]
    monkeypatch.setenv(registry.ENV_BACKENDS, "")
    assert registry.load_backends() == {}


def test_registered_backend_survives_disabled_discovery_and_is_removed_after():
    with registry.registered(GoodBackend) as loaded:
        assert registry.load_backends() == {"good": loaded}
    assert registry.load_backends() == {}


def test_registered_is_removed_even_when_the_block_raises():
    with pytest.raises(RuntimeError), registry.registered(GoodBackend):
        raise RuntimeError
    assert "good" not in registry.load_backends()


# -- a real distribution on sys.path ----------------------------------------------------------------------
class FakeDist:
    """Writes ``<name>-1.0.dist-info`` plus modules into a directory on sys.path."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def add(self, dist: str, entry_points: dict[str, str], modules: dict[str, str]) -> None:
        # The directory name escapes '-' as '_' (as wheels do); importlib.metadata splits it on '-'.
        info = self.root / f"{dist.replace('-', '_')}-1.0.dist-info"
        info.mkdir()
        (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist}\nVersion: 1.0\n")
        lines = "".join(f"{name} = {value}\n" for name, value in entry_points.items())
        (info / "entry_points.txt").write_text(f"[{GROUP}]\n{lines}")
        for module, source in modules.items():
            (self.root / f"{module}.py").write_text(source)
        importlib.invalidate_caches()


@pytest.fixture
def site(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> FakeDist:
    root = tmp_path / "site"
    root.mkdir()
    monkeypatch.syspath_prepend(str(root))
    return FakeDist(root)


def unique(prefix: str) -> str:
    return f"{prefix}_{uuid.uuid4().hex[:8]}"


GOOD_MODULE = """
from claude_bottle.backends.base import Problem
from claude_bottle.testing import FakeBackend, fake_backend

class Plugin(FakeBackend):
    NAME = {name!r}
"""


def test_real_dist_good(site, monkeypatch):
    mod = unique("cbgood")
    site.add("cb-fake-good", {"fakegood": f"{mod}:Plugin"}, {mod: GOOD_MODULE.format(name="fakegood")})
    monkeypatch.setenv(registry.ENV_BACKENDS, "fakegood")
    loaded = registry.load_backends()["fakegood"]
    assert loaded.ok
    assert (loaded.dist_name, loaded.dist_version) == ("cb-fake-good", "1.0")
    assert issubclass(loaded.require(), FakeBackend)


def test_real_dist_broken_import_is_recorded_then_reraised_in_full(site, monkeypatch):
    mod = unique("cbbroken")
    source = "import claude_bottle_no_such_module  # the plugin's own bug\n"
    site.add("cb-fake-broken", {"fakebroken": f"{mod}:Plugin"}, {mod: source})
    monkeypatch.setenv(registry.ENV_BACKENDS, "fakebroken")
    loaded = registry.load_backends()["fakebroken"]
    assert not loaded.ok and loaded.dist_name == "cb-fake-broken"
    assert isinstance(loaded.error, ModuleNotFoundError)
    with pytest.raises(ModuleNotFoundError, match="claude_bottle_no_such_module"):
        registry.get_backend("fakebroken", runner=SubprocessRunner(), settings=Settings(home=Path("/x")))


def test_real_dist_wrong_base_class(site, monkeypatch):
    mod = unique("cbwrong")
    source = "class Plugin:\n    NAME = 'fakewrong'\n"
    site.add("cb-fake-wrong", {"fakewrong": f"{mod}:Plugin"}, {mod: source})
    monkeypatch.setenv(registry.ENV_BACKENDS, "fakewrong")
    loaded = registry.load_backends()["fakewrong"]
    assert not loaded.ok and isinstance(loaded.error, TypeError)


def test_real_dist_duplicate_name_names_both_distributions(site, monkeypatch):
    one, two = unique("cbdupa"), unique("cbdupb")
    site.add("cb-dup-one", {"fakedup": f"{one}:Plugin"}, {one: GOOD_MODULE.format(name="fakedup")})
    site.add("cb-dup-two", {"fakedup": f"{two}:Plugin"}, {two: GOOD_MODULE.format(name="fakedup")})
    monkeypatch.setenv(registry.ENV_BACKENDS, "fakedup")
    with pytest.raises(BottleError) as info:
        registry.load_backends()
    assert "cb-dup-one" in str(info.value) and "cb-dup-two" in str(info.value)


# -- choosing a backend -------------------------------------------------------------------------------------
def test_precedence_flag_env_config_default():
    settings = Settings(home=Path("/h"), backend="fromconfig")
    env = {registry.ENV_BACKEND: "fromenv"}
    assert registry.resolve_backend_name("flag", settings=settings, environ=env) == ("flag", "--backend")
    assert registry.resolve_backend_name(None, settings=settings, environ=env)[0] == "fromenv"
    assert registry.resolve_backend_name(None, settings=settings, environ={})[0] == "fromconfig"
    plain = Settings(home=Path("/h"))
    assert registry.resolve_backend_name(None, settings=plain, environ={}) == ("docker", "the default")


def test_unknown_backend_names_the_installed_ones(fake, fake_b, monkeypatch):
    monkeypatch.setattr(metadata, "entry_points", lambda *, group: ())
    monkeypatch.delenv(registry.ENV_BACKENDS)
    with pytest.raises(BottleError) as info:
        registry.lookup("nope", source="--backend")
    assert str(info.value) == "unknown backend 'nope' (from --backend) (installed: fake, fake-b)"
    monkeypatch.setenv(registry.ENV_BACKENDS, "docker")
    with pytest.raises(BottleError, match=r"fake-b; CLAUDE_BOTTLE_BACKENDS='docker' limits which load\)$"):
        registry.lookup("nope", source="--backend")


def test_statuses_show_problems_and_broken_plugins(monkeypatch, cb_settings):
    patch_entry_points(monkeypatch, ep("notabackend", "tests.fakes:NotABackend"))
    problem = Problem("docker not found", "install docker.io")
    with fake_backend("needy", PROBLEMS=(problem,)):
        found = registry.backend_statuses(runner=SubprocessRunner(), settings=cb_settings)
    statuses = {s.name: s for s in found}
    assert statuses["needy"].state == "problems" and statuses["needy"].problems == (problem,)
    assert statuses["notabackend"].state == "broken" and "TypeError" in statuses["notabackend"].error
    assert ("root", str(cb_settings.home / "fake-backends" / "needy")) in statuses["needy"].facts


def test_the_core_never_imports_a_plugin_or_subprocess_by_name():
    """Backends arrive only through entry points, and processes only through the runner."""
    src = Path(registry.__file__).resolve().parents[1]
    offenders = []
    for path in src.rglob("*.py"):
        if "sidecars" in path.parts or path.name == "runner.py":
            continue  # the bundle's own programs, and the one place processes start
        for node in ast.walk(ast.parse(path.read_text())):
            names = []
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                names = [node.module or ""]
            offenders += [f"{path.name}: {n}" for n in names
                          if n.startswith(("claude_bottle_", "subprocess"))]
    assert offenders == []
