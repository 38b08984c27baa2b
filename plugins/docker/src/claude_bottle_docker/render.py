"""What ``prepare`` writes and decides without touching docker: the agent's environment and the bundle's
stage dir (``bundle.yaml`` and the upstream CA), mounted read-only at ``/etc/claude-bottle``."""

from __future__ import annotations

import shutil
from typing import TYPE_CHECKING

from claude_bottle.manifest.model import EnvKind

if TYPE_CHECKING:
    from pathlib import Path

    from claude_bottle.backends.base import BottleSpec
    from claude_bottle.config import Settings

__all__ = ["UPSTREAM_CA", "active_sidecars", "literal_env", "render_stage"]

BUNDLE_CONFIG = "bundle.yaml"
UPSTREAM_CA = "upstream-ca.pem"


def literal_env(spec: BottleSpec) -> tuple[dict[str, str], tuple[str, ...]]:
    """The agent's user-defined env: literals (safe on a command line) and the names of the secret
    ones (``${HOST}`` / ``?prompt``), whose values come from ``SecretValues.env`` at launch. The agent
    definition's values override the bottle's."""
    merged = {**spec.bottle.env, **spec.agent.env}
    literals = {k: v.raw for k, v in merged.items() if v.kind is EnvKind.LITERAL}
    secret = tuple(sorted(k for k, v in merged.items() if v.kind is not EnvKind.LITERAL))
    return literals, secret


def active_sidecars(spec: BottleSpec, *, git: bool) -> tuple[str, ...]:
    """The sidecars this bottle's bundle really runs, for the plan and ``list`` (both backends): the
    proxy always; git-gate when the workspace is a git clone (``git``: ``up`` runs inside a repository;
    without a mirror the gate would serve nothing, remotes included); supervise when the bottle asks
    (the manifest refuses that while no supervise service exists)."""
    out = ["egress"]
    if git:
        out.append("git-gate")
    if spec.bottle.supervise:
        out.append("supervise")
    return tuple(out)


def render_stage(*, spec: BottleSpec, stage_dir: Path, settings: Settings,
                 sidecars: tuple[str, ...] = ("egress", "git-gate")) -> None:
    """``sidecars`` (from :func:`active_sidecars`) picks the bundle's daemons; the DNS responder runs
    beside the proxy always."""
    from claude_bottle import gitwork  # noqa: PLC0415
    from claude_bottle.bundle_config import bottle_file_for, render_bundle_config  # noqa: PLC0415
    from claude_bottle.sidecars.config import (  # noqa: PLC0415
        AUDIT_MAX_BYTES,
        DEFAULT_DAEMONS,
        REQUEST_BODY_MAX_BYTES,
    )

    stage_dir.mkdir(parents=True, exist_ok=True)
    daemons = (*DEFAULT_DAEMONS, *(("git-gate",) if "git-gate" in sidecars else ()))
    (stage_dir / BUNDLE_CONFIG).write_text(render_bundle_config(
        spec=spec, daemons=daemons, audit_max_bytes=settings.audit_log_max_bytes or AUDIT_MAX_BYTES,
        bottle_file=bottle_file_for(spec.bottle, settings.bottles_dir),
        credentials=tuple(s.name for s in spec.bottle.secrets),
        request_body_max_bytes=settings.request_body_max_bytes or REQUEST_BODY_MAX_BYTES))
    gitwork.write_gate_config(slug=spec.slug, bottle=spec.bottle, stage_dir=stage_dir)
    if settings.extra_ca_certs is not None:
        shutil.copyfile(settings.extra_ca_certs, stage_dir / UPSTREAM_CA)
