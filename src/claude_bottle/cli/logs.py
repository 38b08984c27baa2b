"""``claude-bottle logs SLUG``: the bottle's service logs, or (``--egress``) the proxy's audit log."""

from __future__ import annotations

from typing import Annotated

import typer

__all__ = ["logs"]


def _egress(slug: str, *, follow: bool, as_json: bool) -> None:
    import json

    from claude_bottle import egress_log, lifecycle, ui
    from claude_bottle.config import load_settings

    settings = load_settings()
    lifecycle.check_slug(slug, settings=settings)
    path = egress_log.log_path(slug, settings=settings)
    if follow:
        records = egress_log.follow_records(path, keep_going=path.parent.parent.is_dir)
    else:
        records = egress_log.read_records(path)
    if as_json:
        for record in records:
            ui.out().file.write(json.dumps(record) + "\n")
            ui.out().file.flush()
    elif follow:
        for record in records:
            ui.out().print(ui.egress_line(record), soft_wrap=True)
    else:
        rows = list(records)
        if rows:
            ui.out().print(ui.egress_table(rows))
        else:
            ui.say(f"no egress decisions recorded in {path}")


def logs(
    slug: Annotated[str, typer.Argument(metavar="SLUG", help="The bottle (see claude-bottle list).")],
    egress: Annotated[bool, typer.Option("--egress", help="The egress proxy's decisions instead.")] = False,
    follow: Annotated[bool, typer.Option("--follow", "-f", help="Keep printing new lines.")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="--egress: one JSON object per line.")] = False,
) -> None:
    """Show the bottle's service logs; with --egress, every allow/deny decision of its egress proxy."""
    if egress:
        _egress(slug, follow=follow, as_json=as_json)
        return
    from claude_bottle import lifecycle
    from claude_bottle.cli.common import context

    settings, runner = context()
    backend = lifecycle.backend_of(slug, settings=settings, runner=runner)
    raise typer.Exit(backend.logs(slug=slug, follow=follow))
