"""``claude-bottle build``: build what a backend needs before its first ``up`` (its images)."""

from __future__ import annotations

import inspect
from typing import Annotated

import typer

__all__ = ["build"]


def build(
    backend: Annotated[str | None, typer.Option("--backend", help="Backend to build for.")] = None,
    prune: Annotated[bool, typer.Option(
        "--prune", help="Then remove superseded images and caches (never ones in use).")] = False,
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
        ui.say(f"the {name} backend has nothing to build")
        return
    # ``prune`` is a later keyword of the optional hook: a plugin written before it lacks it.
    if prune and "prune" not in inspect.signature(step).parameters:
        raise BottleError(f"the {name} backend cannot prune its images", hint="run without --prune")
    progress = ui.ConsoleProgress()
    if prune:
        step(progress=progress, prune=True)
    else:
        step(progress=progress)
    ui.err().print(ui.timings_table(progress.timings))
