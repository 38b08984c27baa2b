"""``claude-bottle exec SLUG -- CMD...``: run a command in a bottle's agent; its exit status is ours."""

from __future__ import annotations

from typing import Annotated

import typer

__all__ = ["exec_command"]


def exec_command(
    slug: Annotated[str, typer.Argument(metavar="SLUG", help="The bottle (see claude-bottle list).")],
    argv: Annotated[list[str], typer.Argument(metavar="-- CMD...", help="The command to run.")],
    tty: Annotated[bool | None, typer.Option(
        "--tty/--no-tty", "-t/-T", help="Give CMD a terminal or not (default: if stdin and stdout are)."
    )] = None,
) -> None:
    """Run CMD in the bottle's agent as the agent user and exit with its status. Options go before SLUG."""
    from claude_bottle import lifecycle, ui
    from claude_bottle.cli.common import context

    settings, runner = context()
    # Parsing stops at SLUG (so CMD's own options stay CMD's); the "--" separator is ours, not CMD's.
    argv = argv[1:] if argv[:1] == ["--"] else argv
    interactive = ui.wants_tty() if tty is None else tty
    code = lifecycle.exec_in(slug, list(argv), settings=settings, runner=runner, interactive=interactive)
    raise typer.Exit(code)
