"""``claude-bottle info [AGENT]``: the resolved agent and bottle definition, secret values masked."""

from __future__ import annotations

from typing import Annotated

import typer

__all__ = ["info"]


def info(
    agent: Annotated[
        str | None, typer.Argument(metavar="AGENT", help="Agent name (default: claude).")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")] = False,
) -> None:
    """Show where AGENT and its bottle come from and what they allow. Secret values are never shown."""
    from pathlib import Path

    from claude_bottle import ui
    from claude_bottle.config import load_settings
    from claude_bottle.manifest.describe import describe
    from claude_bottle.manifest.loader import resolve_definitions

    defs = resolve_definitions(settings=load_settings(), cwd=Path.cwd(), agent=agent)
    for warning in defs.warnings:
        ui.warn(warning)
    data = describe(defs)
    if as_json:
        ui.print_json(data)
        return
    ui.out().print(ui.mapping_table(data["agent"], title="agent"))
    ui.out().print(ui.mapping_table(data["bottle"], title="bottle"))
