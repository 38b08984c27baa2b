"""The Typer root and the error boundary.

Exit codes (DESIGN.md): 0 ok, 1 a known error (one red line, no traceback), 2 usage, 3 unexpected (the
traceback goes to ``$CLAUDE_BOTTLE_HOME/logs/crash-<timestamp>.log``, whose path is printed; locals
only with ``CLAUDE_BOTTLE_DEBUG=1`` because they may hold tokens), 130 interrupted.

Only Typer is imported at module level: ``claude-bottle --help`` must start fast, so Rich, YAML and
the backend registry load inside the commands that use them.
"""

from __future__ import annotations

import os
import sys
from datetime import UTC, datetime
from typing import Annotated, Any

import typer
from typer.core import TyperGroup

from claude_bottle.cli import (
    attach,
    backends,
    build,
    check,
    cleanup,
    cp,
    down,
    exec_,
    fetch,
    info,
    list_,
    logs,
    start,
    up,
)
from claude_bottle.errors import BottleError

__all__ = ["app", "main"]

EXIT_UNEXPECTED = 3


def _save_crash(exc: BaseException) -> str:
    import traceback

    from claude_bottle.config import home_dir

    debug = os.environ.get("CLAUDE_BOTTLE_DEBUG") == "1"
    text = "".join(traceback.TracebackException.from_exception(exc, capture_locals=debug).format())
    try:
        logs = home_dir() / "logs"
        logs.mkdir(parents=True, exist_ok=True)
        path = logs / f"crash-{datetime.now(UTC).strftime('%Y%m%dT%H%M%S.%fZ')}.log"
        path.write_text(text)
    except OSError:
        sys.stderr.write(text)  # nowhere to save it: show it rather than lose it
        return "(could not be saved; printed above)"
    return str(path)


class BottleGroup(TyperGroup):
    """Turns exceptions into the exit codes above. Living on the command (not in ``main``) means the
    tests' ``CliRunner`` goes through exactly the same boundary as the console script."""

    def main(self, *args: Any, **kwargs: Any) -> Any:
        try:
            return super().main(*args, **kwargs)
        except BottleError as exc:
            from claude_bottle import ui

            ui.error(str(exc))
            sys.exit(exc.exit_code)
        except Exception as exc:  # everything else is a bug: keep the evidence, print one line
            from claude_bottle import ui

            where = _save_crash(exc)
            first = (str(exc).strip().splitlines() or [""])[0]
            # A broken plugin's error carries a note naming it; otherwise it is our own bug.
            notes = getattr(exc, "__notes__", None)
            lead = f"{notes[0]}:" if notes else "unexpected"
            ui.error(f"{lead} {type(exc).__name__}: {first}; traceback saved to {where}")
            sys.exit(EXIT_UNEXPECTED)


app = typer.Typer(
    cls=BottleGroup,
    name="claude-bottle",
    help="Run AI coding agents in bottles: sandboxes that reach only what they are granted.",
    no_args_is_help=True,
    add_completion=True,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
    context_settings={"help_option_names": ["-h", "--help"]},
)


def _print_version(value: bool) -> None:
    if value:
        from importlib.metadata import version  # the installed distribution's, as pip shows it

        typer.echo(f"claude-bottle {version('claude-bottle')}")
        raise typer.Exit()


@app.callback()
def _root(
    _version: Annotated[bool, typer.Option(
        "--version", callback=_print_version, is_eager=True, help="Print the version and exit.")] = False,
) -> None:
    """Options before any command."""


app.command("up", short_help="Start a bottle and open Claude Code in it.")(up.up)
app.command("down", short_help="Remove a bottle, or every live one.")(down.down)
app.command("list", short_help="Live bottles on every backend.")(list_.list_bottles)
app.command(
    "exec",
    short_help="Run a command in a bottle's agent.",
    context_settings={"allow_interspersed_args": False, "ignore_unknown_options": True},
)(exec_.exec_command)
app.command("attach", short_help="Open Claude Code in a running bottle.")(attach.attach)
app.command("start", short_help="Start a stopped bottle again.")(start.start)
app.command("logs", short_help="Service logs, or the egress decisions.")(logs.logs)
app.command("cleanup", short_help="Remove what crashed bottles left behind.")(cleanup.cleanup)
app.command("backends", short_help="Installed backends and what they need.")(backends.backends)
app.command("info", short_help="An agent's resolved definition.")(info.info)
app.command("build", short_help="Build a backend's images now.")(build.build)
app.command("fetch")(fetch.fetch)
app.command("cp")(cp.cp)
app.command("check", short_help="Try every way out of a live bottle, from inside it.")(check.check)


def main() -> None:
    """Console script ``claude-bottle`` and ``python -m claude_bottle``."""
    typer.main.get_command(app).main(prog_name="claude-bottle")
