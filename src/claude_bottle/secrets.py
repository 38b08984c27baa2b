"""Credentials on the host side: placeholders for the agent, real values for the egress proxy only.

The agent never holds a real credential. For each secret of the bottle it sees, under the secret's
name, a *placeholder*: random text of the same shape (same well-known prefix such as
``sk-ant-api03-``, same length, same alphabet) so clients that check a token's form accept it. The
egress proxy swaps the placeholder for the real value in the secret's header, on requests to the
secret's hosts only (``claude_bottle.sidecars.egress.inject``).

Real values reach the bundle over the stdin of ``docker exec -i`` into a file on a tmpfs that only the
bundle's proxy user can read (:func:`delivery_command`): never on a command line, in ``docker inspect``,
in an image layer or on disk. See ``docs/decisions/0007-credentials.md``.
"""

from __future__ import annotations

import json
import re
import secrets as _random
import string
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from claude_bottle.errors import BottleError
from claude_bottle.runner import Command
from claude_bottle.sidecars.egress.inject import CREDENTIALS_FILE as _CREDENTIALS_PATH
from claude_bottle.sidecars.egress.inject import Credential

if TYPE_CHECKING:
    from claude_bottle.manifest.model import SecretDef

__all__ = [
    "CREDENTIALS_DIR",
    "CREDENTIALS_FILE",
    "Credential",
    "CredentialSet",
    "delivery_command",
    "make_placeholder",
    "plan_credentials",
    "restore_credentials",
    "save_placeholders",
]

CREDENTIALS_FILE = str(_CREDENTIALS_PATH)
CREDENTIALS_DIR = str(_CREDENTIALS_PATH.parent)

MIN_SECRET_LENGTH = 8

# Prefixes that identify a token's kind; clients (Claude Code among them) may check them, so the
# placeholder keeps them. Longest first, so ``sk-ant-api03-`` wins over ``sk-``.
_KNOWN_PREFIXES = tuple(sorted((
    "sk-ant-api03-", "sk-ant-oat01-", "sk-ant-admin01-", "sk-ant-ort01-",
    "sk-proj-", "sk-svcacct-", "sk-admin-", "sk-",
    "github_pat_", "ghp_", "gho_", "ghu_", "ghs_", "ghr_", "glpat-",
    "xoxb-", "xoxp-", "xoxa-", "xoxr-", "xapp-",
    "sk_live_", "sk_test_", "rk_live_", "rk_test_", "pk_live_", "pk_test_",
    "AKIA", "ASIA", "AIza", "npm_", "pypi-", "hf_", "glc_", "dop_v1_",
), key=len, reverse=True))
# Otherwise: short word-like segments ending in a separator (``abc-v2_``), at most 16 characters.
_GENERIC_PREFIX = re.compile(r"^(?:[A-Za-z][A-Za-z0-9]{0,7}[-_]){1,3}")

_DIGITS = string.digits
_HEX_LOWER = "0123456789abcdef"
_HEX_UPPER = "0123456789ABCDEF"
_ALNUM = string.ascii_letters + string.digits
_LOWER_DIGITS = string.ascii_lowercase + string.digits
_UPPER_DIGITS = string.ascii_uppercase + string.digits
_B64URL = _ALNUM + "-_"
_B64STD = _ALNUM + "+/"
# Tried in order: the first alphabet that holds every character of a segment is that segment's.
_ALPHABETS = (_DIGITS, _HEX_LOWER, _HEX_UPPER, _LOWER_DIGITS, _UPPER_DIGITS, _ALNUM, _B64URL, _B64STD)


def _split_prefix(value: str) -> tuple[str, str]:
    for prefix in _KNOWN_PREFIXES:
        if value.startswith(prefix) and len(value) > len(prefix):
            return prefix, value[len(prefix):]
    match = _GENERIC_PREFIX.match(value)
    if match and len(match.group(0)) <= 16 and len(match.group(0)) * 3 <= len(value):
        return match.group(0), value[match.end():]
    return "", value


def _random_like(segment: str) -> str:
    """Random text of ``segment``'s length drawn from the smallest alphabet that holds it."""
    chars = set(segment)
    for alphabet in _ALPHABETS:
        if chars <= set(alphabet):
            return "".join(_random.choice(alphabet) for _ in segment)
    # Unusual text (passwords): keep each character's class, keep punctuation where it stands.
    out = []
    for ch in segment:
        if ch.islower():
            out.append(_random.choice(string.ascii_lowercase))
        elif ch.isupper():
            out.append(_random.choice(string.ascii_uppercase))
        elif ch.isdigit():
            out.append(_random.choice(string.digits))
        else:
            out.append(ch)
    return "".join(out)


def make_placeholder(value: str) -> str:
    """A fresh random stand-in for ``value``: same prefix, length, alphabet and ``.``/``=`` layout."""
    if len(value) < MIN_SECRET_LENGTH:
        raise ValueError(f"a secret must be at least {MIN_SECRET_LENGTH} characters long")
    prefix, body = _split_prefix(value)
    stripped = body.rstrip("=")
    padding = body[len(stripped):]
    for _ in range(100):
        # Dot-separated segments (JWTs) keep their dots; each segment gets its own alphabet.
        candidate = prefix + ".".join(_random_like(seg) for seg in stripped.split(".")) + padding
        if candidate != value and value not in candidate and candidate not in value:
            return candidate
    raise ValueError("could not make a placeholder that differs from the secret")


@dataclass(frozen=True)
class CredentialSet:
    """The credentials of one bottle: placeholders for the agent, a payload for the bundle."""

    credentials: tuple[Credential, ...] = ()
    # The bottle declares secrets, so its bundle waits for a delivery (possibly of none: an optional
    # secret the user did not set) and refuses all traffic until it has one.
    expected: bool = False

    @property
    def agent_env(self) -> dict[str, str]:
        """What the agent's environment gets: secret name -> placeholder (no real value)."""
        return {c.name: c.placeholder for c in self.credentials}

    def payload(self) -> bytes:
        """The bytes piped into the bundle (see :func:`delivery_command`). Contains real values."""
        return json.dumps({"version": 1, "credentials": [c.to_json() for c in self.credentials]}).encode()

    def __bool__(self) -> bool:
        """Whether there is anything to deliver to the bundle."""
        return bool(self.credentials) or self.expected


def plan_credentials(defs: Iterable[SecretDef], values: Mapping[str, str]) -> CredentialSet:
    """Pair each secret the user supplied with a fresh placeholder.

    ``values`` is ``SecretValues.credentials`` (name -> real value); an optional secret the user did
    not set is absent from it and gets nothing. A required one missing is the manifest layer's error.
    """
    out = []
    defs = tuple(defs)
    for d in defs:
        value = values.get(d.name)
        if not value:
            continue
        try:
            placeholder = make_placeholder(value)
        except ValueError as exc:
            raise BottleError(f"secret {d.name}: {exc}",
                              hint=f"check the value {d.source.masked()} supplies") from exc
        out.append(Credential(name=d.name, placeholder=placeholder, hosts=tuple(d.hosts),
                              header=d.header, format=d.format, value=value))
    return CredentialSet(tuple(out), expected=bool(defs))


PLACEHOLDERS_FILE = "placeholders.json"


def save_placeholders(state_dir: Path, creds: CredentialSet) -> None:
    """Keep what a restart needs to give the bundle the same credentials again, but no value: each
    secret's placeholder (the agent holds it), hosts, header and format. Written at ``up``."""
    if not creds:
        return
    rows = [{k: v for k, v in c.to_json().items() if k != "value"} for c in creds.credentials]
    path = state_dir / PLACEHOLDERS_FILE
    path.write_text(json.dumps({"version": 1, "credentials": rows}, indent=2) + "\n")
    path.chmod(0o600)


def restore_credentials(state_dir: Path, values: Mapping[str, str]) -> CredentialSet:
    """The bottle's credentials as at ``up``, with ``values`` (name -> real value, resolved again from
    the host) put back beside the placeholders the agent already holds. Empty when it had none."""
    path = state_dir / PLACEHOLDERS_FILE
    if not path.is_file():
        return CredentialSet()
    rows = json.loads(path.read_text())["credentials"]
    creds = tuple(Credential(name=r["name"], placeholder=r["placeholder"], hosts=tuple(r["hosts"]),
                             header=r["header"], format=r["format"], value=values[r["name"]])
                  for r in rows if values.get(r["name"]))
    return CredentialSet(creds, expected=True)


def delivery_command(*, container: str, creds: CredentialSet, user: str | None = None) -> Command:
    """``docker exec -i`` writing the payload from stdin into the bundle's credentials tmpfs.

    The values travel only through the pipe: argv holds none, the file is written with umask 077 by
    ``user`` (the proxy's; default the container's) and renamed into place so the proxy, which
    re-reads it when it changes, never sees half a file.
    """
    # Refuses (exit 3) to write anywhere that is not a tmpfs, so a value never lands on a disk.
    script = (f"umask 077 && mkdir -p {CREDENTIALS_DIR} && "
              f'[ "$(stat -f -c %T {CREDENTIALS_DIR})" = tmpfs ] || exit 3; '
              f"cat > {CREDENTIALS_FILE}.tmp && mv -f {CREDENTIALS_FILE}.tmp {CREDENTIALS_FILE}")
    argv = ["docker", "exec", "-i"]
    if user:
        argv += ["-u", user]
    argv += [container, "sh", "-c", script]
    # Not ``secret_env``: that would put the values in the docker CLI's own environment for nothing.
    return Command(argv=tuple(argv), input=creds.payload(), timeout=30)
