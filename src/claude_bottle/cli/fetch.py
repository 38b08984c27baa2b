"""``claude-bottle fetch SLUG``: bring a bottle's accepted ``claude/<slug>`` branches home as branches."""

from __future__ import annotations

from typing import Annotated

import typer

__all__ = ["fetch"]


def fetch(
    slug: Annotated[str, typer.Argument(help="The bottle (see claude-bottle list).")],
) -> None:
    """Copy the branches the bottle pushed (claude/SLUG) into your repository. Refs only: your working
    tree, index, config and hooks are never touched. Works after `down` while the state dir exists."""
    from claude_bottle import gitwork, lifecycle, ui
    from claude_bottle.cli.common import context

    settings, runner = context()
    lifecycle.check_slug(slug, settings=settings)
    results = gitwork.fetch_slug(slug, settings=settings, runner=runner)
    if not results:
        ui.note(f"bottle {slug} has not pushed any claude/{slug} branch yet")
    for result in results:
        if result.ok:
            ui.say(f"{result.branch} -> {result.sha[:12]}")
        else:
            ui.error(f"{result.branch}: {result.detail}")
    if any(not r.ok for r in results):
        raise typer.Exit(1)
