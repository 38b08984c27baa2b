"""``claude-bottle list``: live bottles across every backend."""

from __future__ import annotations

from typing import Annotated

import typer

__all__ = ["list_bottles"]


def list_bottles(
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")] = False,
) -> None:
    """List live bottles of every installed backend: backend, slug, agent, age, services."""
    from claude_bottle import lifecycle, ui
    from claude_bottle.cli.common import context

    settings, runner = context()
    listing = lifecycle.list_active(settings=settings, runner=runner)
    for warning in listing.warnings:
        ui.warn(warning)
    for bottle in listing.bottles:
        if bottle.problem:
            ui.error(f"{bottle.slug}: {bottle.problem}")
    if as_json:
        ui.print_json(ui.active_json(listing.bottles))
    elif not listing.bottles:
        ui.say("no live bottles")
    else:
        ui.out().print(ui.active_table(listing.bottles))
    if listing.failed:  # shown what the others found; the answer is still incomplete
        raise typer.Exit(1)
