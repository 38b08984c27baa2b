"""``claude-bottle down SLUG`` / ``down --all``: remove bottles and their state."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer

if TYPE_CHECKING:
    from claude_bottle.lifecycle import DownResult

__all__ = ["down"]


def _report(result: DownResult) -> bool:
    from claude_bottle import ui

    for warning in result.warnings:
        ui.warn(warning)
    if result.error:
        ui.error(result.error)
        return False
    if not result.ok:
        ui.out().print(ui.report_table(result.report))
        ui.error(f"bottle {result.slug} was not fully removed; see above, then retry")
        return False
    if not result.found:
        ui.say(f"nothing to remove for {result.slug}")
    else:
        kept = "; state dir kept (.preserve)" if result.preserved else ""
        ui.say(f"removed bottle {result.slug} ({len(result.report.outcomes)} resources){kept}")
    return True


def down(
    slug: Annotated[
        str | None, typer.Argument(metavar="SLUG", help="The bottle to remove (see claude-bottle list).")
    ] = None,
    all_: Annotated[bool, typer.Option("--all", help="Remove every live bottle.")] = False,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation.")] = False,
    discard: Annotated[bool, typer.Option(
        "--discard", help="Drop the agent's unsaved and unfetched work instead of keeping it.")] = False,
) -> None:
    """Remove bottle SLUG (its containers, networks, machine and state dir), or every live one."""
    from claude_bottle import lifecycle, ui
    from claude_bottle.cli.common import context
    from claude_bottle.errors import UsageError
    from claude_bottle.state import StateDir

    if bool(slug) == all_:
        raise UsageError("give either a SLUG or --all", hint="see claude-bottle list")
    settings, runner = context()
    if slug:
        meta = StateDir(settings.state_root / slug).read()
        if meta is not None and meta.live and not ui.confirm(f"take down live bottle {slug}?", yes=yes):
            raise typer.Exit(1)
        result = lifecycle.down(slug, settings=settings, runner=runner, discard=discard)
        raise typer.Exit(0 if _report(result) else 1)
    listing = lifecycle.list_active(settings=settings, runner=runner)
    for warning in listing.warnings:
        ui.warn(warning)
    if not listing.bottles:
        ui.say("no live bottles")
        return
    question = f"take down {len(listing.bottles)} live bottles?"
    if not ui.confirm(question, yes=yes, context=ui.active_table(listing.bottles)):
        raise typer.Exit(1)
    results = [lifecycle.down(b.slug, settings=settings, runner=runner, discard=discard)
               for b in listing.bottles]
    # A backend that could not list its bottles may hold live ones still: not "every live one" then.
    raise typer.Exit(0 if all([_report(r) for r in results]) and not listing.failed else 1)
