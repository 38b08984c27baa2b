"""Host names as the proxy compares them: one canonical form, IP literals told apart from names.

Pure standard library. Canonical form: lowercase ASCII (IDNA/punycode), no trailing dot, labels of
``[a-z0-9_-]``. Anything an HTTP client or resolver might read as an address is an *IP literal* and is
refused before any allowlist lookup, whatever its spelling: ``127.0.0.1``, ``[::1]``, ``::ffff:7f00:1``,
``2130706433`` (one decimal number), ``0x7f.1``, ``0177.0.0.1``, ``127.1``, full-width digits (IDNA maps
them to ASCII first). The rule, borrowed from the WHATWG URL standard: a host whose last label is a
number (decimal, or ``0x`` hex) is an IPv4 address; no real top-level domain is numeric.
"""

from __future__ import annotations

import ipaddress
import re

__all__ = ["HostError", "is_ip_literal", "matches", "normalize_host", "normalize_pattern"]

_LABEL_RE = re.compile(r"^[a-z0-9_](?:[a-z0-9_-]{0,61}[a-z0-9_])?$")
_NUMERIC_RE = re.compile(r"^(?:[0-9]+|0x[0-9a-f]*)$")
MAX_NAME = 253


class HostError(ValueError):
    """A host the proxy refuses to look up. ``rule`` is the audit rule name (``ip-literal``,
    ``bad-host``)."""

    def __init__(self, rule: str, reason: str) -> None:
        super().__init__(reason)
        self.rule = rule
        self.reason = reason


def _ascii(raw: str) -> str:
    if raw.isascii():
        return raw.lower()
    try:
        # Python's IDNA codec applies nameprep: case folding and width mapping (full-width digits and
        # the ideographic full stop become ASCII), so the result can be checked like any ASCII name.
        return raw.encode("idna").decode("ascii").lower()
    except UnicodeError as exc:
        raise HostError("bad-host", f"{raw!r} is not a valid international domain name") from exc


def is_ip_literal(host: str) -> bool:
    """True for anything that names an address rather than a host (see the module docstring)."""
    text = host.strip().lower()
    if text.startswith("["):
        return True  # brackets only ever hold an address
    text = text.removesuffix(".")
    try:
        ipaddress.ip_address(text.split("%", 1)[0])  # an IPv6 zone (fe80::1%eth0) is still an address
    except ValueError:
        pass
    else:
        return True
    last = text.rsplit(".", 1)[-1]
    return bool(_NUMERIC_RE.match(last))


def normalize_host(raw: str) -> str:
    """Canonical form of a requested host, or :class:`HostError`. Never resolves anything."""
    text = raw.strip()
    if not text:
        raise HostError("bad-host", "empty host")
    if is_ip_literal(text):
        raise HostError("ip-literal", f"{raw} is an IP address; only host names may be allowed")
    text = _ascii(text)
    if text.endswith("."):
        text = text[:-1]  # one trailing dot is the same name, fully qualified
    if is_ip_literal(text):
        raise HostError("ip-literal", f"{raw} is an IP address; only host names may be allowed")
    if len(text) > MAX_NAME or not all(_LABEL_RE.match(label) for label in text.split(".")):
        raise HostError("bad-host", f"{raw!r} is not a valid host name")
    return text


def normalize_pattern(pattern: str) -> str:
    """Canonical form of an allowlist entry: a host name or ``*.`` followed by one. Raises
    :class:`ValueError` (with a message for the user) for anything else."""
    text = pattern.strip()
    wildcard = text.startswith("*.")
    body = text[2:] if wildcard else text
    if "*" in body:
        raise ValueError(f"egress.allow entry {pattern!r}: '*' is allowed only as a leading '*.'")
    try:
        host = normalize_host(body)
    except HostError as exc:
        raise ValueError(f"egress.allow entry {pattern!r}: {exc.reason}") from exc
    return f"*.{host}" if wildcard else host


def matches(pattern: str, host: str) -> bool:
    """Does canonical ``host`` match canonical ``pattern``?

    ``*.example.com`` matches every name *below* example.com, at any depth (``a.example.com``,
    ``a.b.example.com``) but not ``example.com`` itself: allowing a domain's subdomains is not allowing
    the domain. List both when both are wanted."""
    if pattern.startswith("*."):
        return host.endswith(pattern[1:])
    return host == pattern
