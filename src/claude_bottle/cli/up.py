"""``claude-bottle up [AGENT]``: start a bottle, open Claude Code in it, take it down afterwards."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer

if TYPE_CHECKING:
    from claude_bottle.backends.base import Bottle, BottlePlan, BottleSpec
    from claude_bottle.lifecycle import UpResult

__all__ = ["up"]


class _Hooks:
    """``lifecycle.UpHooks`` on the terminal."""

    def __init__(self, *, yes: bool, as_json: bool) -> None:
        from claude_bottle import ui

        self.ui, self.yes, self.as_json = ui, yes, as_json
        self.progress = ui.ConsoleProgress()

    def warn(self, text: str) -> None:
        self.ui.warn(text)

    def confirm(self, spec: BottleSpec, backend: str) -> bool:
        return self.ui.confirm("start this bottle?", yes=self.yes, context=self.ui.spec_table(spec, backend))

    def ask_secret(self, prompt: str) -> str:
        return self.ui.ask_secret(prompt)

    def launched(self, plan: BottlePlan, bottle: Bottle) -> None:
        if self.as_json:
            self.ui.print_json({**self.ui.plan_json(plan), "services": list(bottle.services)})
        else:
            self.ui.say(f"bottle {bottle.slug} is up on {bottle.backend}")


def _finish(result: UpResult, hooks: _Hooks) -> int:
    ui, slug = hooks.ui, result.plan.slug
    code = result.exit_code
    if result.refused:
        shown = ", ".join(f"{host} ({count})" for host, count in result.refused[:15])
        more = f" and {len(result.refused) - 15} more" if len(result.refused) > 15 else ""
        ui.note(f"egress refused during the session: {shown}{more}; every decision: {result.refused_log}")
    for warning in result.down.warnings if result.down is not None else ():
        ui.warn(warning)
    if result.down is not None and result.down.error:
        ui.error(result.down.error)
        code = code or 1
    elif result.down is not None and result.down.ok:
        ui.note(f"bottle {slug} removed" + ("" if result.down.state_removed else "; its state dir is kept"))
    elif result.down is not None:
        ui.err().print(ui.report_table(result.down.report))
        ui.error(f"bottle {slug} was not fully removed; retry with: claude-bottle down {slug}")
        code = code or 1
    elif result.bottle is not None and result.down is None:
        ui.note(f"bottle {slug} keeps running: claude-bottle exec {slug} -- CMD, claude-bottle down {slug}")
    # stdout carries the result alone (the bottle, or its JSON), so `up ... | tool` gets only that.
    ui.err().print(ui.timings_table(hooks.progress.timings))
    return code


def up(  # keyword-only: Typer passes every parameter by name
    *,
    agent: Annotated[
        str | None, typer.Argument(metavar="AGENT", help="Agent to run (default: claude).")
    ] = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Show the plan; create nothing.")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print the plan / bottle as JSON.")] = False,
    backend: Annotated[str | None, typer.Option("--backend", help="Backend (default: docker).")] = None,
    detach: Annotated[bool, typer.Option("--detach", "-d", help="Start it and return.")] = False,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation.")] = False,
    keep: Annotated[bool, typer.Option("--keep", help="Keep the bottle after the session.")] = False,
    workspace: Annotated[
        bool, typer.Option("--workspace/--no-workspace", help="Copy . to /workspace.")
    ] = True,
    with_uncommitted: Annotated[
        bool, typer.Option("--with-uncommitted", help="Carry uncommitted changes into the workspace.")
    ] = False,
    include_secret_file: Annotated[
        list[str] | None,
        typer.Option("--include-secret-file", metavar="PATH",
                     help="Copy PATH to /workspace although it looks like a secret (repeatable)."),
    ] = None,
) -> None:
    """Start a bottle for AGENT and open Claude Code in it; take it down when the session ends."""
    import os
    from pathlib import Path

    from claude_bottle import lifecycle
    from claude_bottle.cli.common import context

    settings, runner = context()
    hooks = _Hooks(yes=yes, as_json=as_json)
    request = lifecycle.UpRequest(
        cwd=Path.cwd(), agent=agent, backend=backend, dry_run=dry_run, detach=detach, keep=keep,
        workspace=workspace, with_uncommitted=with_uncommitted,
        include_secret_files=tuple(include_secret_file or ()),
    )
    result = lifecycle.up(request, settings=settings, runner=runner, hooks=hooks, environ=os.environ)
    if dry_run:
        if as_json:
            hooks.ui.print_json(hooks.ui.plan_json(result.plan))
        else:
            hooks.ui.out().print(hooks.ui.plan_table(result.plan))
        if result.plan.stage_dir is not None:
            hooks.ui.note(f"rendered files kept in {result.plan.stage_dir} (nothing else was created)")
        return
    raise typer.Exit(_finish(result, hooks))
