"""Rendering ``bundle.yaml`` on the host: the bottle's spec to the config the sidecar bundle reads.

Kept out of ``claude_bottle.sidecars`` (which is copied alone into the bundle image and imports nothing
from the host side); the shapes both ends share are :mod:`claude_bottle.sidecars.config`'s.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from claude_bottle.sidecars.config import (
    AUDIT_MAX_BYTES,
    DEFAULT_DAEMONS,
    REQUEST_BODY_MAX_BYTES,
    BundleConfig,
    DaemonEntry,
    Rule,
    dump_bundle_config,
)
from claude_bottle.sidecars.egress.hosts import normalize_pattern

if TYPE_CHECKING:
    from claude_bottle.backends.base import BottleSpec
    from claude_bottle.manifest.model import BottleDef

__all__ = ["bottle_file_for", "render_bundle_config"]


def _rules_from_spec(spec: BottleSpec) -> tuple[Rule, ...]:
    return tuple(
        Rule(
            host=normalize_pattern(r.host),
            methods=tuple(m.upper() for m in r.methods),
            paths=tuple(r.paths),
            passthrough=r.passthrough,
            private=getattr(r, "private", False),
            dlp_exempt=r.dlp_exempt,
            ports=tuple(getattr(r, "ports", ())),
        )
        for r in spec.bottle.egress.allow
    )


def render_bundle_config(
    *,
    spec: BottleSpec,
    daemons: Iterable[str] = DEFAULT_DAEMONS,
    own_networks: Sequence[str] = (),
    extra: Mapping[str, Any] | None = None,
    audit_max_bytes: int = AUDIT_MAX_BYTES,
    bottle_file: str | None = None,
    credentials: Sequence[str] = (),
    request_body_max_bytes: int = REQUEST_BODY_MAX_BYTES,
) -> str:
    """The YAML text of ``bundle.yaml`` for ``spec``. Pure: no I/O, same input -> same bytes.

    ``own_networks`` adds CIDRs the proxy refuses (the bundle also refuses every network it sits
    on, found at start). ``extra`` adds top-level sections for other sidecars (credentials, ...).
    ``bottle_file`` is where the user edits this bottle (see :func:`bottle_file_for`); by default the
    bottle's source file, if it has one. ``credentials`` names the secrets the host will deliver."""
    source = spec.bottle.source
    cfg = BundleConfig(
        slug=spec.slug,
        bottle=spec.bottle.name,
        bottle_file=bottle_file if bottle_file is not None else ("" if source.startswith("<") else source),
        daemons=tuple(DaemonEntry(d) for d in daemons),
        rules=_rules_from_spec(spec),
        own_networks=tuple(own_networks),
        audit_max_bytes=audit_max_bytes,
        extra=dict(extra or {}),
        credentials=tuple(credentials),
        request_body_max_bytes=request_body_max_bytes,
    )
    return dump_bundle_config(cfg)


def bottle_file_for(bottle: BottleDef, bottles_dir: Path) -> str:
    """The file defining ``bottle``: its manifest source, or for a built-in bottle (``default``) the
    file a user would create in ``bottles_dir`` to override it."""
    return str(bottles_dir / f"{bottle.name}.md") if bottle.source.startswith("<") else bottle.source
