"""``claude-bottle attach SLUG``: open Claude Code in a running bottle (after ``up --detach``, or a second
terminal on a session). Claude Code's history lives in the agent's home, so ``claude --resume`` there
finds earlier conversations of this bottle."""

from __future__ import annotations

from typing import Annotated

import typer

__all__ = ["attach"]


def attach(
    slug: Annotated[str, typer.Argument(metavar="SLUG", help="The bottle (see claude-bottle list).")],
    resume: Annotated[bool, typer.Option("--resume", "-r", help="Pick an earlier conversation.")] = False,
    continue_: Annotated[bool, typer.Option("--continue", "-c",
                                            help="Continue the last conversation.")] = False,
) -> None:
    """Open Claude Code in the bottle's agent; exits with its status."""
    from claude_bottle import lifecycle
    from claude_bottle.cli.common import context

    settings, runner = context()
    argv = [*lifecycle.SESSION_ARGV, *(["--resume"] if resume else []),
            *(["--continue"] if continue_ else [])]
    raise typer.Exit(lifecycle.exec_in(slug, argv, settings=settings, runner=runner, interactive=True))
