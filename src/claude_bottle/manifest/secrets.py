"""Collect the secret values a bottle needs at ``up``: host variables and answers typed on the TTY.

The values live only in the returned :class:`SecretValues` (whose repr hides them). This module never
prints, logs or writes them; errors name the variable and the file that wants it, never a value.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

from claude_bottle.backends.base import SecretValues
from claude_bottle.errors import BottleError
from claude_bottle.manifest.model import Definitions, EnvKind, EnvValue

__all__ = ["collect_secret_values"]

Ask = Callable[[str], str]


def _resolve(
    value: EnvValue, *, wanted_by: str, environ: Mapping[str, str], ask: Ask, label: str
) -> str | None:
    """The value, or None when the host variable is unset or empty / the answer is empty."""
    if value.kind is EnvKind.HOST:
        return environ.get(value.raw) or None
    if value.kind is EnvKind.PROMPT:
        # The prompt text may come from a cloned repository's agent: always say which file asks and
        # for what, so a question dressed up as something else cannot phish a password.
        what = f"{value.raw} ({label}, " if value.raw else f"{label} ("
        return ask(f"{what}asked by {wanted_by})") or None
    raise AssertionError("literal values are not secrets")


def _missing(value: EnvValue, label: str, wanted_by: str) -> BottleError:
    if value.kind is EnvKind.HOST:
        return BottleError(
            f"host variable {value.raw} is not set or empty ({wanted_by} wants it for {label})",
            hint=f"export {value.raw}=... before 'claude-bottle up'",
        )
    return BottleError(f"no value given for {label} ({wanted_by} asks for it)")


def collect_secret_values(defs: Definitions, *, environ: Mapping[str, str], ask: Ask) -> SecretValues:
    """Resolve ``${HOST_VAR}`` and ``?prompt`` env values of bottle and agent into ``.env`` and every
    secret's source into ``.credentials``. ``ask(text)`` reads one answer without echo. A missing
    host variable raises, naming it and the file; an optional secret is skipped silently."""
    env: dict[str, str] = {}
    sources = {
        **dict.fromkeys(defs.bottle.env, defs.bottle.source),
        **dict.fromkeys(defs.agent.env, defs.agent.source),
    }
    for name, value in defs.env.items():
        if not value.kind.is_secret:
            continue
        wanted_by = sources[name]
        resolved = _resolve(value, wanted_by=wanted_by, environ=environ, ask=ask, label=f"env.{name}")
        if resolved is None and value.kind is EnvKind.HOST and value.raw not in environ:
            raise _missing(value, f"env.{name}", wanted_by)
        env[name] = resolved or ""
    credentials: dict[str, str] = {}
    for secret in defs.bottle.secrets:
        label = f"secret {secret.name}"
        resolved = _resolve(
            secret.source, wanted_by=defs.bottle.source, environ=environ, ask=ask, label=label
        )
        if resolved is None:
            if secret.optional:
                continue
            raise _missing(secret.source, label, defs.bottle.source)
        if not resolved.isprintable():
            # A line break in a header value would let the value smuggle extra headers.
            raise BottleError(f"the value of {label} contains a line break or control character")
        credentials[secret.name] = resolved
    return SecretValues(env=env, credentials=credentials)
