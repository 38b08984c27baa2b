"""``claude-bottle cleanup``: remove what crashed bottles left behind, on every backend, after one y/N."""

from __future__ import annotations

from typing import Annotated

import typer

__all__ = ["cleanup"]


def cleanup(
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation.")] = False,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Show the plan; remove nothing.")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print the plan and results as JSON.")] = False,
) -> None:
    """Remove leftovers of bottles that are not live, on every installed backend, plus orphan state dirs.
    Live bottles (on any backend) are never touched."""
    from claude_bottle import cleanup as core
    from claude_bottle import ui
    from claude_bottle.cli.common import context

    settings, runner = context()
    found = core.survey(settings=settings, runner=runner)
    for warning in found.warnings:
        ui.warn(warning)
    if not found.plan or dry_run:
        if as_json:
            ui.print_json(ui.cleanup_json(found.plan))
        elif not found.plan:
            ui.say("nothing to clean up")
        else:
            ui.out().print(ui.cleanup_table(found.plan))
        raise typer.Exit(1 if found.failed else 0)
    if not ui.confirm("remove all of the above?", yes=yes, context=ui.cleanup_table(found.plan)):
        ui.say("aborted: nothing was removed")
        raise typer.Exit(1)
    report = core.apply(found)
    if as_json:
        ui.print_json(ui.cleanup_json(found.plan, report))
    else:
        ui.out().print(ui.report_table(report))
    raise typer.Exit(1 if report.failed or found.failed else 0)
