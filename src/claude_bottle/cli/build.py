"""``claude-bottle build``: build what a backend needs before its first ``up`` (its images)."""

from __future__ import annotations

import inspect
from typing import Annotated

import typer

__all__ = ["build"]


def _image_refs(returned: object) -> tuple[tuple[str, str], ...]:
    """The ``(role, image)`` pairs a backend's ``build`` returned: a mapping or a dataclass of image
    refs (role -> ref). A hook that returns nothing (every one written before ``--json``) gives none,
    and then only the images it timed as ``build IMAGE`` phases are listed."""
    import dataclasses
    from collections.abc import Mapping

    if dataclasses.is_dataclass(returned) and not isinstance(returned, type):
        returned = dataclasses.asdict(returned)
    if isinstance(returned, Mapping):
        return tuple((str(role), ref) for role, ref in returned.items() if isinstance(ref, str))
    return ()


def build(
    backend: Annotated[str | None, typer.Option("--backend", help="Backend to build for.")] = None,
    prune: Annotated[bool, typer.Option(
        "--prune", help="Then remove superseded images and caches (never ones in use).")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print the images and timings as JSON.")] = False,
) -> None:
    """Build the backend's images now instead of on the first up."""
    import os

    from claude_bottle import ui
    from claude_bottle.backends import registry
    from claude_bottle.cli.common import context
    from claude_bottle.errors import BottleError

    settings, runner = context()
    name, source = registry.resolve_backend_name(backend, settings=settings, environ=os.environ)
    chosen = registry.get_backend(name, runner=runner, settings=settings, source=source)
    step = getattr(chosen, "build", None)
    if not callable(step):
        if as_json:
            ui.print_json(ui.build_json(name, ()))
        else:
            ui.say(f"the {name} backend has nothing to build")
        return
    # ``prune`` is a later keyword of the optional hook: a plugin written before it lacks it.
    if prune and "prune" not in inspect.signature(step).parameters:
        raise BottleError(f"the {name} backend cannot prune its images", hint="run without --prune")
    progress = ui.ConsoleProgress()
    refs = _image_refs(step(progress=progress, prune=True) if prune else step(progress=progress))
    if as_json:
        ui.print_json(ui.build_json(name, progress.timings, refs, pruned=prune))
        return
    ui.err().print(ui.timings_table(progress.timings))
    for line in ui.build_lines(progress.timings, refs):
        ui.say(line)
