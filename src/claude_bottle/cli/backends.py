"""``claude-bottle backends``: installed backends, their distributions, and what each still needs."""

from __future__ import annotations

from typing import Annotated

import typer

__all__ = ["backends"]


def backends(
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")] = False,
) -> None:
    """List installed backends with their status: ok, each preflight problem with its fix, or broken.
    Exits 1 when the default backend (the one `up` uses) is missing or not ready."""
    from claude_bottle import ui
    from claude_bottle.backends import registry
    from claude_bottle.cli.common import context

    settings, runner = context()
    statuses = registry.backend_statuses(runner=runner, settings=settings)
    if as_json:
        ui.print_json(ui.backends_json(statuses))
    elif not statuses:
        ui.say("no backends installed (pip install claude-bottle-docker)")
    else:
        ui.out().print(ui.backends_table(statuses))
    problem = registry.default_not_ready(statuses, settings=settings)
    if problem is not None:
        raise problem
