"""``bundle.yaml``: what the sidecar bundle runs and what its egress proxy and DNS allow.

Rendered on the host by ``claude_bottle.bundle_config.render_bundle_config`` (pure, golden-tested; it
lives outside this package, which runs inside the bundle and imports nothing from the host side),
written into the stage dir,
mounted read-only at ``/etc/claude-bottle`` and read in the bundle by :func:`load_bundle_config`. Both
ends share the dataclasses below, so this module imports only the standard library and PyYAML (never
the rest of the core: the bundle has only this package).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from claude_bottle.sidecars.logfile import MAX_BYTES as AUDIT_MAX_BYTES

__all__ = [
    "AUDIT_LOG",
    "AUDIT_MAX_BYTES",
    "CA_EXPORT",
    "CONFIG_DIR",
    "CONFIG_PATH",
    "DNS_PORT",
    "PROXY_PORT",
    "REQUEST_BODY_MAX_BYTES",
    "SERVICE_ALIASES",
    "UPSTREAM_CA",
    "BundleConfig",
    "ConfigError",
    "DaemonEntry",
    "Rule",
    "dump_bundle_config",
    "load_bundle_config",
    "parse_bundle_config",
]

CONFIG_DIR = "/etc/claude-bottle"
CONFIG_PATH = f"{CONFIG_DIR}/bundle.yaml"
UPSTREAM_CA = f"{CONFIG_DIR}/upstream-ca.pem"   # the extra CA, mounted at run time when configured
AUDIT_LOG = "/var/log/claude-bottle/egress.jsonl"
CA_EXPORT = "/run/claude-bottle/ca/ca.pem"      # the bottle's CA certificate, for the backend to copy
PROXY_PORT = 3128
DNS_PORT = 53
SERVICE_ALIASES = ("egress", "git-gate", "supervise")
DEFAULT_DAEMONS = ("egress", "dns")
VERSION = 1
# A request body is scanned in memory before it leaves; past this it is refused with a 413 (decision 0010).
REQUEST_BODY_MAX_BYTES = 64 * 1024 * 1024


class ConfigError(ValueError):
    """bundle.yaml is malformed (a bug in the renderer, or a hand edit)."""


@dataclass(frozen=True)
class Rule:
    """One allowlist entry as the proxy sees it. ``host`` is lowercase ASCII (IDNA) or ``*.domain``."""

    host: str
    methods: tuple[str, ...] = ()
    paths: tuple[str, ...] = ()
    passthrough: bool = False
    private: bool = False
    dlp_exempt: bool = False
    ports: tuple[int, ...] = ()  # empty: DEFAULT_PORTS


@dataclass(frozen=True)
class DaemonEntry:
    name: str
    argv: tuple[str, ...] = ()  # empty: the init's built-in command for ``name``


@dataclass(frozen=True)
class BundleConfig:
    slug: str
    bottle: str
    daemons: tuple[DaemonEntry, ...] = tuple(DaemonEntry(d) for d in DEFAULT_DAEMONS)
    rules: tuple[Rule, ...] = ()
    proxy_port: int = PROXY_PORT
    audit_log: str = AUDIT_LOG
    audit_max_bytes: int = AUDIT_MAX_BYTES  # the audit log's cap on disk (rotated once past it)
    own_networks: tuple[str, ...] = ()     # refused on top of what the bundle finds on its interfaces
    dns_port: int = DNS_PORT
    dns_names: tuple[str, ...] = SERVICE_ALIASES
    extra: Mapping[str, Any] = field(default_factory=dict)  # sections owned by other sidecars
    # The host path of the bottle's definition, named by a 403's "to allow it" line ("" when unknown).
    bottle_file: str = ""
    # The names of the credentials the host delivers after start (never values): until every one is
    # in the bundle's tmpfs, the proxy refuses all traffic (a restart empties the tmpfs).
    credentials: tuple[str, ...] = ()
    request_body_max_bytes: int = REQUEST_BODY_MAX_BYTES


def _rule_dict(rule: Rule) -> dict[str, Any]:
    out: dict[str, Any] = {
        "host": rule.host,
        "methods": list(rule.methods),
        "paths": list(rule.paths),
        "passthrough": rule.passthrough,
        "private": rule.private,
        "dlp_exempt": rule.dlp_exempt,
    }
    if rule.ports:  # written only when set, so configs without it stay as they were
        out["ports"] = list(rule.ports)
    return out


def dump_bundle_config(cfg: BundleConfig) -> str:
    data: dict[str, Any] = {
        "version": VERSION,
        "slug": cfg.slug,
        "bottle": cfg.bottle,
        **({"bottle_file": cfg.bottle_file} if cfg.bottle_file else {}),
        "daemons": [d.name if not d.argv else {"name": d.name, "argv": list(d.argv)} for d in cfg.daemons],
        "egress": {
            "port": cfg.proxy_port,
            "audit_log": cfg.audit_log,
            "own_networks": list(cfg.own_networks),
            "allow": [_rule_dict(r) for r in cfg.rules],
        },
        "dns": {"port": cfg.dns_port, "names": list(cfg.dns_names)},
    }
    if cfg.audit_max_bytes != AUDIT_MAX_BYTES:  # written only when set, so configs stay as they were
        data["egress"]["audit_max_bytes"] = cfg.audit_max_bytes
    if cfg.request_body_max_bytes != REQUEST_BODY_MAX_BYTES:
        data["egress"]["request_body_max_bytes"] = cfg.request_body_max_bytes
    if cfg.credentials:
        data["egress"]["credentials"] = list(cfg.credentials)
    for key, value in cfg.extra.items():
        if key in data:
            raise ValueError(f"extra section {key!r} would replace a built-in one")
        data[key] = value
    header = "# claude-bottle sidecar bundle configuration: rendered by claude-bottle, do not edit.\n"
    return header + yaml.safe_dump(data, sort_keys=False, default_flow_style=False, width=1000)


def _take(data: Mapping[str, Any], key: str, kind: type, where: str, default: Any = None) -> Any:
    if key not in data:
        if default is None:
            raise ConfigError(f"{where}: missing {key!r}")
        return default
    value = data[key]
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        raise ConfigError(f"{where}.{key}: expected {kind.__name__}, got {type(value).__name__}")
    return value


def _strings(value: list[Any], where: str) -> tuple[str, ...]:
    if not all(isinstance(v, str) for v in value):
        raise ConfigError(f"{where}: expected a list of strings")
    return tuple(value)


def _known(data: Mapping[str, Any], keys: set[str], where: str) -> None:
    unknown = set(data) - keys
    if unknown:
        raise ConfigError(f"{where}: unknown key {sorted(unknown)[0]!r}")


def _parse_rule(raw: Any, where: str) -> Rule:
    if not isinstance(raw, dict):
        raise ConfigError(f"{where}: expected a mapping")
    _known(raw, {"host", "methods", "paths", "passthrough", "private", "dlp_exempt", "ports"}, where)
    ports = _take(raw, "ports", list, where, [])
    if not all(isinstance(p, int) and not isinstance(p, bool) and 1 <= p <= 65535 for p in ports):
        raise ConfigError(f"{where}.ports: expected port numbers")
    return Rule(
        host=_take(raw, "host", str, where),
        methods=_strings(_take(raw, "methods", list, where, []), f"{where}.methods"),
        paths=_strings(_take(raw, "paths", list, where, []), f"{where}.paths"),
        passthrough=_take(raw, "passthrough", bool, where, False),
        private=_take(raw, "private", bool, where, False),
        dlp_exempt=_take(raw, "dlp_exempt", bool, where, False),
        ports=tuple(ports),
    )


def _parse_daemon(raw: Any, where: str) -> DaemonEntry:
    if isinstance(raw, str):
        return DaemonEntry(raw)
    if isinstance(raw, dict):
        _known(raw, {"name", "argv"}, where)
        return DaemonEntry(_take(raw, "name", str, where), _strings(_take(raw, "argv", list, where), where))
    raise ConfigError(f"{where}: expected a name or {{name, argv}}")


def parse_bundle_config(text: str) -> BundleConfig:
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ConfigError(f"not YAML: {exc}") from exc
    if not isinstance(data, dict):
        raise ConfigError("expected a mapping at the top level")
    if data.get("version") != VERSION:
        raise ConfigError(f"version {data.get('version')!r} (this bundle reads version {VERSION})")
    egress = _take(data, "egress", dict, "bundle", {})
    _known(egress, {"port", "audit_log", "audit_max_bytes", "own_networks", "allow", "credentials",
                    "request_body_max_bytes"}, "egress")
    dns = _take(data, "dns", dict, "bundle", {})
    _known(dns, {"port", "names"}, "dns")
    builtin = {"version", "slug", "bottle", "bottle_file", "daemons", "egress", "dns"}
    return BundleConfig(
        slug=_take(data, "slug", str, "bundle"),
        bottle=_take(data, "bottle", str, "bundle"),
        bottle_file=_take(data, "bottle_file", str, "bundle", ""),
        daemons=tuple(_parse_daemon(d, f"daemons[{i}]")
                      for i, d in enumerate(_take(data, "daemons", list, "bundle", list(DEFAULT_DAEMONS)))),
        rules=tuple(_parse_rule(r, f"egress.allow[{i}]")
                    for i, r in enumerate(_take(egress, "allow", list, "egress", []))),
        proxy_port=_take(egress, "port", int, "egress", PROXY_PORT),
        audit_log=_take(egress, "audit_log", str, "egress", AUDIT_LOG),
        audit_max_bytes=_take(egress, "audit_max_bytes", int, "egress", AUDIT_MAX_BYTES),
        own_networks=_strings(_take(egress, "own_networks", list, "egress", []), "egress.own_networks"),
        credentials=_strings(_take(egress, "credentials", list, "egress", []), "egress.credentials"),
        request_body_max_bytes=_take(egress, "request_body_max_bytes", int, "egress", REQUEST_BODY_MAX_BYTES),
        dns_port=_take(dns, "port", int, "dns", DNS_PORT),
        dns_names=_strings(_take(dns, "names", list, "dns", list(SERVICE_ALIASES)), "dns.names"),
        extra={k: v for k, v in data.items() if k not in builtin},
    )


def load_bundle_config(path: str | Path = CONFIG_PATH) -> BundleConfig:
    return parse_bundle_config(Path(path).read_text())
