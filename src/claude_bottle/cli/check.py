"""``claude-bottle check SLUG``: try every way out of a live bottle from inside it; PASS or FAIL per class."""

from __future__ import annotations

from typing import Annotated

import typer

__all__ = ["check"]


def check(
    slug: Annotated[str, typer.Argument(metavar="SLUG", help="The bottle (see claude-bottle list).")],
    as_json: Annotated[bool, typer.Option("--json", help="Print every class and probe as JSON.")] = False,
) -> None:
    """Run the containment probe in the bottle's agent, as the agent user; exit 0 only if every class
    passes (direct TCP/UDP, DNS, metadata and host, IP literals, other bottles, docker socket,
    capabilities, IPv6, proxy bypass)."""
    from claude_bottle import check as check_mod
    from claude_bottle import ui
    from claude_bottle.cli.common import context

    settings, runner = context()
    report = check_mod.check_bottle(slug, settings=settings, runner=runner)
    if as_json:
        ui.print_json(ui.check_json(report))
    else:
        ui.out().print(ui.check_table(report))
    if not report.ok:
        names = ", ".join(r.name for r in report.failed)
        ui.error(f"bottle {slug} failed {len(report.failed)} of {len(report.results)} classes: {names}")
        raise typer.Exit(1)
