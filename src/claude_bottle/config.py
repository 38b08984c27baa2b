"""User settings: ``$CLAUDE_BOTTLE_HOME/config.toml`` overridden by ``CLAUDE_BOTTLE_*`` variables."""

from __future__ import annotations

import os
import tomllib
from dataclasses import dataclass
from pathlib import Path

from claude_bottle.errors import BottleError

__all__ = ["Settings", "home_dir", "load_settings"]

DEFAULT_AGENT_BASE = "debian:bookworm-slim"
DEFAULT_SIDECARS_BASE = "debian:trixie-slim"

_KEYS = {"extra_ca_certs", "agent_base_image", "sidecars_base_image", "backend", "audit_log_max_bytes",
         "request_body_max_bytes"}


def home_dir() -> Path:
    raw = os.environ.get("CLAUDE_BOTTLE_HOME")
    return Path(raw).expanduser().resolve() if raw else (Path.home() / ".claude-bottle").resolve()


@dataclass(frozen=True)
class Settings:
    home: Path
    extra_ca_certs: Path | None = None
    agent_base_image: str = DEFAULT_AGENT_BASE
    sidecars_base_image: str = DEFAULT_SIDECARS_BASE
    backend: str = "docker"
    # The bottle's audit log cap on the host's disk (None: the sidecars' default, 32 MiB; kept twice).
    audit_log_max_bytes: int | None = None
    # The largest request body the egress proxy scans and passes (None: the sidecars' default, 64 MiB).
    request_body_max_bytes: int | None = None

    @property
    def state_root(self) -> Path:
        return self.home / "state"

    @property
    def bottles_dir(self) -> Path:
        return self.home / "bottles"

    @property
    def agents_dir(self) -> Path:
        return self.home / "agents"


def load_settings(environ: dict[str, str] | None = None) -> Settings:
    env = os.environ if environ is None else environ
    home = home_dir()
    data: dict[str, object] = {}
    path = home / "config.toml"
    if path.is_file():
        try:
            data = tomllib.loads(path.read_text())
        except tomllib.TOMLDecodeError as exc:
            raise BottleError(f"{path}: {exc}", hint="fix the TOML syntax") from exc
        unknown = set(data) - _KEYS
        if unknown:
            known = ", ".join(sorted(_KEYS))
            raise BottleError(f"{path}: unknown key {sorted(unknown)[0]!r}", hint=f"known keys: {known}")

    def pick(key: str) -> str | None:
        value = env.get(f"CLAUDE_BOTTLE_{key.upper()}") or data.get(key)
        if value is not None and not isinstance(value, str):
            raise BottleError(f"{path}: {key} must be a string")
        return value or None
    ca = pick("extra_ca_certs")
    ca_path = Path(ca).expanduser() if ca else None
    if ca_path is not None and not ca_path.is_file():
        raise BottleError(
            f"extra CA bundle {ca_path} not found",
            hint="fix CLAUDE_BOTTLE_EXTRA_CA_CERTS or extra_ca_certs in config.toml",
        )

    def size(key: str) -> int | None:
        value = pick(key)
        if value is not None and not (value.isascii() and value.isdigit() and int(value) > 0):
            raise BottleError(f"{key} {value!r} is not a positive number of bytes",
                              hint=f"fix CLAUDE_BOTTLE_{key.upper()} or {key} in config.toml")
        return int(value) if value is not None else None
    return Settings(
        home=home,
        extra_ca_certs=ca_path,
        agent_base_image=pick("agent_base_image") or DEFAULT_AGENT_BASE,
        sidecars_base_image=pick("sidecars_base_image") or DEFAULT_SIDECARS_BASE,
        backend=pick("backend") or "docker",
        audit_log_max_bytes=size("audit_log_max_bytes"),
        request_body_max_bytes=size("request_body_max_bytes"),
    )
