"""``claude-bottle down SLUG`` / ``down --all``: remove bottles and their state."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer

if TYPE_CHECKING:
    from claude_bottle.lifecycle import DownResult

__all__ = ["down"]


def _report(result: DownResult, *, as_json: bool) -> bool:
    """Warnings and errors on stderr; the outcome on stdout unless ``as_json`` (then the caller
    prints every bottle's JSON at once)."""
    from claude_bottle import ui

    for warning in result.warnings:
        ui.warn(warning)
    if result.error:
        ui.error(result.error)
        return False
    if not result.ok and as_json:
        ui.error(f"bottle {result.slug} was not fully removed (see its \"failed\" list); "
                 f"retry with `claude-bottle down {result.slug}`")
        return False
    if not result.ok:
        ui.out().print(ui.report_table(result.report))
        ui.error(f"bottle {result.slug} was not fully removed; see above, then retry")
        return False
    if as_json:
        pass
    elif not result.found:
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
    as_json: Annotated[bool, typer.Option("--json", help="Print each bottle's outcome as JSON.")] = False,
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
        slugs = [slug]
        failed = False
    else:
        listing = lifecycle.list_active(settings=settings, runner=runner)
        for warning in listing.warnings:
            ui.warn(warning)
        slugs = [b.slug for b in listing.bottles]
        # A backend that could not list its bottles may hold live ones still: not "every live one" then.
        failed = bool(listing.failed)
        if not slugs:
            if as_json:
                ui.print_json([])
            else:
                ui.say("no live bottles")
            return
        question = f"take down {len(slugs)} live bottles?"
        if not ui.confirm(question, yes=yes, context=ui.active_table(listing.bottles)):
            raise typer.Exit(1)
    # With --all each bottle was just listed: down need not ask its backend again whether it exists.
    results = [lifecycle.down(s, settings=settings, runner=runner, discard=discard, listed=not slug)
               for s in slugs]
    ok = all([_report(r, as_json=as_json) for r in results])
    if as_json:
        ui.print_json([ui.down_json(r, state_left=(settings.state_root / r.slug).is_dir(), discard=discard)
                       for r in results])
    raise typer.Exit(0 if ok and not failed else 1)
