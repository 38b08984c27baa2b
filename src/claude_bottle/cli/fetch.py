"""``claude-bottle fetch SLUG``: bring a bottle's accepted ``claude/<slug>`` branches home as branches."""

from __future__ import annotations

from typing import Annotated

import typer

__all__ = ["fetch"]


def fetch(
    slug: Annotated[str, typer.Argument(help="The bottle (see claude-bottle list).")],
    as_json: Annotated[
        bool, typer.Option("--json", help="Print the repository and branches as JSON.")
    ] = False,
) -> None:
    """Copy the branches the bottle pushed (claude/SLUG) into your repository. Refs only: your working
    tree, index, config and hooks are never touched. Works after `down` while the state dir exists."""
    from claude_bottle import gitwork, lifecycle, ui
    from claude_bottle.cli.common import context

    settings, runner = context()
    lifecycle.check_slug(slug, settings=settings)
    result = gitwork.fetch_slug(slug, settings=settings, runner=runner)
    if not result.branches:
        ui.note(f"bottle {slug} has not pushed any claude/{slug} branch yet")
    if as_json:
        ui.print_json(ui.fetch_json(result))
    elif any(b.ok for b in result.branches):
        ui.say(f"fetched into {result.repo}:")
        for branch in (b for b in result.branches if b.ok):
            ui.say(f"  {ui.fetched_line(branch)}")
    for branch in (b for b in result.branches if not b.ok):
        ui.error(f"{branch.branch} not fetched: {branch.detail}")
    if any(not b.ok for b in result.branches):
        raise typer.Exit(1)
