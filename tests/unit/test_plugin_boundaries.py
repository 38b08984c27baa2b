"""Distribution boundaries (issue 10): a plugin uses another distribution only through its public
names; the core never imports a backend; the sidecar package, which runs inside the bundle, imports
nothing from the host side. Read from the source with ``ast``, so a new import that crosses a line
fails here before it ships."""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

from claude_bottle_docker import kit

ROOT = Path(__file__).resolve().parents[2]
DISTRIBUTIONS = {
    "claude_bottle": ROOT / "src" / "claude_bottle",
    "claude_bottle_docker": ROOT / "plugins" / "docker" / "src" / "claude_bottle_docker",
    "claude_bottle_smolmachines": ROOT / "plugins" / "smolmachines" / "src" / "claude_bottle_smolmachines",
}
# What each distribution offers the others: module -> the names they may import from it (None: any
# public name, i.e. one without a leading underscore).
PUBLIC = {
    "claude_bottle_docker": {"claude_bottle_docker": {"DockerBackend"},
                             "claude_bottle_docker.kit": set(kit.__all__)},
    "claude_bottle_smolmachines": {"claude_bottle_smolmachines": {"SmolmachinesBackend"}},
}


def _imports(package: Path) -> Iterator[tuple[Path, int, str, str | None]]:
    """(file, line, module, name) for every import in ``package`` (name None for ``import x``)."""
    for path in sorted(package.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                for alias in node.names:
                    yield path, node.lineno, node.module, alias.name
            elif isinstance(node, ast.Import):
                for alias in node.names:
                    yield path, node.lineno, alias.name, None


def _owner(module: str) -> str | None:
    top = module.split(".", maxsplit=1)[0]
    return top if top in DISTRIBUTIONS else None


@pytest.mark.parametrize("importer", sorted(DISTRIBUTIONS))
def test_a_distribution_uses_another_only_through_its_public_names(importer: str) -> None:
    wrong = []
    for path, line, module, name in _imports(DISTRIBUTIONS[importer]):
        owner = _owner(module)
        if owner is None or owner == importer:
            continue
        where = f"{path.relative_to(ROOT)}:{line}"
        if owner == "claude_bottle":
            if name is not None and name.startswith("_"):
                wrong.append(f"{where}: {module}.{name} is private to the core")
            continue
        if importer == "claude_bottle":
            wrong.append(f"{where}: the core imports the backend {module} by name")
            continue
        allowed = PUBLIC[owner].get(module)
        if allowed is None or name is None or name not in allowed:
            wrong.append(f"{where}: {module}.{name} is not public (use {owner}.kit)")
    assert not wrong, "\n".join(wrong)


def test_every_name_the_kit_offers_exists() -> None:
    missing = [name for name in kit.__all__ if not hasattr(kit, name)]
    assert not missing


def test_the_sidecar_package_imports_nothing_from_the_host_side() -> None:
    """It is copied alone into the bundle image: an import of host-side core code would fail there."""
    sidecars = DISTRIBUTIONS["claude_bottle"] / "sidecars"
    wrong = [f"{path.relative_to(ROOT)}:{line}: {module}"
             for path, line, module, _ in _imports(sidecars)
             if _owner(module) is not None and not module.startswith("claude_bottle.sidecars")]
    assert not wrong, "\n".join(wrong)
