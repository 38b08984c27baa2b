"""``claude-bottle build``: build what a backend needs before its first ``up`` (its images)."""

from __future__ import annotations

from typing import Annotated

import typer

__all__ = ["build"]


def build(
    backend: Annotated[str | None, typer.Option("--backend", help="Backend to build for.")] = None,
) -> None:
    """Build the backend's images now instead of on the first up."""
    import os

    from claude_bottle import ui
    from claude_bottle.backends import registry
    from claude_bottle.cli.common import context

    settings, runner = context()
    name, source = registry.resolve_backend_name(backend, settings=settings, environ=os.environ)
    chosen = registry.get_backend(name, runner=runner, settings=settings, source=source)
    step = getattr(chosen, "build", None)
    if not callable(step):
        ui.say(f"the {name} backend has nothing to build")
        return
    progress = ui.ConsoleProgress()
    step(progress=progress)
    ui.err().print(ui.timings_table(progress.timings))
