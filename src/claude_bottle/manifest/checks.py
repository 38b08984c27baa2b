"""Pure checks of the values a manifest names: hosts, variable and header names, git patterns, URLs.

Each ``*_problem`` function returns ``None`` when the value is fine, or a short reason the caller puts
after the file, line and key. They never raise, so the proxy and git-gate can reuse them.
"""

from __future__ import annotations

import base64
import binascii
import difflib
import ipaddress
import re
from urllib.parse import urlsplit

from claude_bottle.identity import is_agent_name

__all__ = [
    "RESERVED_ENV",
    "env_name_problem",
    "git_pattern_problem",
    "header_problem",
    "host_covered",
    "host_key_problem",
    "host_matches",
    "host_problem",
    "is_ssh_url",
    "method_problem",
    "name_problem",
    "path_problem",
    "remote_name_problem",
    "remote_url_problem",
    "skill_problem",
]

_LABEL = re.compile(r"^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$")
_ENV = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_TOKEN = re.compile(r"^[!#$%&'*+.^_`|~0-9A-Za-z-]+$")  # RFC 9110 field-name / method token
_REMOTE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$")
_SCP = re.compile(r"^(?:[A-Za-z0-9._-]+@)?([A-Za-z0-9.-]+):(?!//)(.+)$")

# Set by claude-bottle itself: a manifest that overrides them would only break the bottle.
RESERVED_ENV = frozenset({"HTTP_PROXY", "HTTPS_PROXY", "NO_PROXY", "ALL_PROXY"})

# Headers that frame or route the request: injecting a credential there would corrupt or redirect it.
_FORBIDDEN_HEADERS = frozenset(
    {
        "host",
        "content-length",
        "transfer-encoding",
        "connection",
        "upgrade",
        "te",
        "trailer",
        "keep-alive",
        "proxy-connection",
        "proxy-authorization",
        "cookie2",
    }
)

_SSH_KEY_TYPES = frozenset(
    {
        "ssh-ed25519",
        "ssh-rsa",
        "ecdsa-sha2-nistp256",
        "ecdsa-sha2-nistp384",
        "ecdsa-sha2-nistp521",
        "sk-ssh-ed25519@openssh.com",
        "sk-ecdsa-sha2-nistp256@openssh.com",
    }
)


def _is_ip_literal(text: str) -> bool:
    try:
        ipaddress.ip_address(text.strip("[]"))
    except ValueError:
        # inet_aton also reads 127.1, 0x7f.1 and 2130706433 as addresses: a name whose last label is
        # numeric is never a real hostname, so treat every such name as an address.
        last = text.lower().rsplit(".", 1)[-1]
        return last.isdigit() or last.startswith("0x")
    return True


def host_problem(text: str) -> str | None:  # noqa: PLR0911 - one return per reason
    """An allowlist host is an exact hostname or ``*.domain``; never a URL, port, path or address."""
    if not text:
        return "is empty"
    if "://" in text:
        return "must be a hostname without a scheme (write 'example.com', not 'https://example.com')"
    if "/" in text:
        return "must be a hostname without a path (path rules go in 'paths:')"
    if _is_ip_literal(text) or text.startswith("["):
        return "is an IP address; name the host instead (addresses are always refused by the proxy)"
    if ":" in text:
        return "must be a hostname without a port"
    if text != text.lower():
        return f"must be lowercase (write {text.lower()!r})"
    if not text.isascii():
        return "must be ASCII; write an internationalised name in its xn-- form"
    name = text[2:] if text.startswith("*.") else text
    if "*" in name:
        return "may only use '*' as a whole first label ('*.example.com')"
    if name.endswith("."):
        return "must not end with a dot"
    if len(name) > 253 or not all(_LABEL.match(label) for label in name.split(".")):
        return "is not a valid hostname (letters, digits and '-' in dot-separated labels)"
    return None


def host_matches(pattern: str, host: str) -> bool:
    """``*.example.com`` matches any name below example.com (not example.com itself)."""
    host = host.lower().rstrip(".")
    if pattern.startswith("*."):
        return host.endswith(pattern[1:])
    return host == pattern


def host_covered(pattern: str, by: str) -> bool:
    """Whether every host ``pattern`` matches is also matched by allowlist entry ``by``."""
    if pattern.startswith("*."):
        return by.startswith("*.") and (pattern == by or pattern.endswith(by[1:]))
    return host_matches(by, pattern)


def env_name_problem(name: str) -> str | None:
    if not _ENV.match(name):
        return "is not a valid variable name (letters, digits and '_', not starting with a digit)"
    if name.upper() in RESERVED_ENV:
        return "is set by claude-bottle to point at the egress proxy"
    return None


def name_problem(name: str) -> str | None:
    """Agent and bottle names: the agent's name goes into the bottle's slug and resource names."""
    if not is_agent_name(name):
        return "must be lowercase letters, digits and '-' (at most 40, not starting or ending with '-')"
    return None


def remote_name_problem(name: str) -> str | None:
    return None if _REMOTE_NAME.match(name) else "is not a valid remote name (letters, digits, '.', '_', '-')"


def skill_problem(name: str) -> str | None:
    return None if _REMOTE_NAME.match(name) else "is not a valid skill name (letters, digits, '.', '_', '-')"


CLAUDE_CONFIG_PARTS = ("settings", "commands", "agents")


def claude_config_problem(part: str) -> str | None:
    if part in CLAUDE_CONFIG_PARTS:
        return None
    close = difflib.get_close_matches(part, CLAUDE_CONFIG_PARTS, n=1)
    hint = f"; did you mean {close[0]!r}?" if close else ""
    parts = ", ".join(CLAUDE_CONFIG_PARTS)
    return f"is not a part of Claude Code's config that can be carried in ({parts}){hint}"


def header_problem(name: str) -> str | None:
    if not _TOKEN.match(name):
        return "is not a valid HTTP header name"
    if name.lower() in _FORBIDDEN_HEADERS:
        return "frames or routes the request; a credential cannot go there"
    return None


def method_problem(method: str) -> str | None:
    return None if _TOKEN.match(method) else "is not a valid HTTP method"


def path_problem(path: str) -> str | None:
    if not path.startswith("/"):
        return "must start with '/'"
    if any(ch in path for ch in "?# ") or not path.isprintable():
        return "must be a plain path prefix (no query, fragment, spaces or control characters)"
    return None


def git_pattern_problem(pattern: str) -> str | None:
    """A branch pattern: git's ref-name rules, with ``*`` as a glob and ``{slug}`` as a placeholder."""
    if pattern.startswith("refs/"):
        return "names a branch without 'refs/heads/' (write 'feature/*')"
    bare = pattern.replace("{slug}", "x")
    if not bare or bare.startswith(("/", "-", ".")) or bare.endswith(("/", ".", ".lock")):
        return "is not a valid branch pattern"
    bad = ("..", "//", "@{", "/.", "{", "}", "\\", "~", "^", ":", "?", "[", " ")
    if any(part in bare for part in bad) or not bare.isprintable():
        return "is not a valid branch pattern (git ref rules; '*' and '{slug}' are the only specials)"
    return None


def remote_url_problem(url: str) -> str | None:
    """https, http (no credential), ssh or scp-like URLs; never a local path or embedded secret."""
    if _SCP.match(url) and "://" not in url:
        return None
    parts = urlsplit(url)
    if parts.scheme not in {"https", "http", "ssh"}:
        return "must be an https://, http://, ssh:// or user@host:path URL"
    if not parts.hostname:
        return "has no host"
    if parts.password is not None:
        return "must not carry a password or token; use 'token: \"${HOST_VAR}\"'"
    if parts.username is not None and parts.scheme != "ssh":
        return "must not carry a user name; use 'token: \"${HOST_VAR}\"'"
    return None


def is_ssh_url(url: str) -> bool:
    return url.startswith("ssh://") or ("://" not in url and bool(_SCP.match(url)))


def host_key_problem(text: str) -> str | None:
    """A pinned key: ``[hosts] keytype base64`` as in known_hosts, one line."""
    fields = text.split()
    if "\n" in text.strip() or len(fields) not in (2, 3):
        return "must be one known_hosts line: '[host] ssh-ed25519 AAAA...'"
    keytype, blob = fields[-2], fields[-1]
    if keytype not in _SSH_KEY_TYPES:
        return f"has unknown key type {keytype!r}"
    try:
        base64.b64decode(blob, validate=True)
    except (binascii.Error, ValueError):
        return "has a key that is not valid base64"
    return None
