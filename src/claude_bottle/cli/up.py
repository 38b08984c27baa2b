"""``claude-bottle up [AGENT]``: start a bottle, open Claude Code in it, take it down afterwards."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer

if TYPE_CHECKING:
    from collections.abc import Mapping

    from claude_bottle.backends.base import Bottle, BottlePlan, BottleSpec
    from claude_bottle.lifecycle import UpResult

__all__ = ["up"]

# Claude Code signs in with either; the built-in bottle declares both as optional secrets.
_CREDENTIALS = ("ANTHROPIC_API_KEY", "CLAUDE_CODE_OAUTH_TOKEN")


def _credential_warning(spec: BottleSpec, environ: Mapping[str, str]) -> str:
    """Why no Claude Code credential will reach the bottle ("" when one will): the bottle declares
    neither credential, or every source it reads them from is a host variable that is not set."""
    from claude_bottle.manifest.model import EnvKind

    sources = [s.source for s in spec.bottle.secrets if s.name in _CREDENTIALS]
    # A plain env entry of the same name reaches the agent too (a literal, or read from the host).
    sources += [v for env in (spec.bottle.env, spec.agent.env) for k, v in env.items() if k in _CREDENTIALS]
    if not sources:
        bottle = f"bottle {spec.bottle.name} ({spec.bottle.source})"
        return f"no Claude Code credential will reach the bottle: {bottle} declares neither " + (
            f"{' nor '.join(_CREDENTIALS)}; add one to its secrets")
    if any(v.kind is not EnvKind.HOST or environ.get(v.raw) for v in sources):
        return ""
    unset = sorted({v.raw for v in sources})
    what = unset[0] + " is" if len(unset) == 1 else " and ".join(unset) + " are"
    return (f"no Claude Code credential will reach the bottle: {what} not set on this host; export "
            f"{'it' if len(unset) == 1 else 'one'} (an API key, or the token from `claude setup-token`) "
            "and run up again")


class _Hooks:
    """``lifecycle.UpHooks`` on the terminal."""

    def __init__(self, *, yes: bool, as_json: bool, environ: Mapping[str, str]) -> None:
        from claude_bottle import ui

        self.ui, self.yes, self.as_json, self.environ = ui, yes, as_json, environ
        self.progress = ui.ConsoleProgress()

    def warn(self, text: str) -> None:
        self.ui.warn(text)

    def confirm(self, spec: BottleSpec, backend: str) -> bool:
        warning = _credential_warning(spec, self.environ)
        if warning and self.yes:  # --yes shows no table: the warning still has to be seen
            self.ui.warn(warning)
        table = self.ui.spec_table(spec, backend, warnings=(warning,) if warning else ())
        return self.ui.confirm("start this bottle?", yes=self.yes, context=table)

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
    check: Annotated[bool, typer.Option(
        "--check", help="Probe its walls first (see `check`); take it down if any class fails.")] = False,
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
    hooks = _Hooks(yes=yes, as_json=as_json, environ=os.environ)
    request = lifecycle.UpRequest(
        cwd=Path.cwd(), agent=agent, backend=backend, dry_run=dry_run, detach=detach, keep=keep,
        workspace=workspace, with_uncommitted=with_uncommitted,
        include_secret_files=tuple(include_secret_file or ()), check=check,
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
