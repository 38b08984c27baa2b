"""Header checks that decide before a request is routed: characters a back end may read as a line end,
and a ``Host`` (or request target) that names another host or port than the one dialled. Pure
standard library, so the host's tests drive it.

A bare CR inside a value (``X: a\\rHost: evil.test``) is one header to the proxy and two to a back end
that treats CR as a line end; that back end then routes by a ``Host`` nobody judged. LF and NUL split
or end lines the same way in other parsers. None of them has a legitimate use in HTTP/1.1 (RFC 9110
5.5) or HTTP/2 (RFC 9113 8.2.1), so any of them refuses the request.
"""

from __future__ import annotations

from collections.abc import Iterable

__all__ = ["DEFAULT_SCHEME_PORTS", "authority_port", "forbidden_header_chars"]

_FORBIDDEN = {0x0D: "CR", 0x0A: "LF", 0x00: "NUL"}
DEFAULT_SCHEME_PORTS = {"http": 80, "https": 443, "ws": 80, "wss": 443}


def _describe(data: bytes) -> str | None:
    for byte in data:
        if byte in _FORBIDDEN:
            return _FORBIDDEN[byte]
    return None


def forbidden_header_chars(fields: Iterable[tuple[bytes, bytes]]) -> str | None:
    """Why ``fields`` (raw name/value pairs) must be refused, or ``None``. Names the character and the
    header's name with that character escaped, never the value (it may carry a secret)."""
    for name, value in fields:
        for where, data in (("name", name), ("value", value)):
            found = _describe(data)
            if found is not None:
                shown = name.decode("latin-1").encode("unicode_escape").decode("ascii")[:60]
                return f"a header {where} carries a {found} character (header {shown!r})"
    return None


def authority_port(authority: str, scheme: str) -> int | None:
    """The port ``host[:port]`` names: explicit, else the scheme's default; ``None`` if unreadable."""
    if authority.startswith("["):
        end = authority.find("]")
        rest = authority[end + 1:] if end >= 0 else ""
    else:
        rest = authority[authority.find(":"):] if authority.count(":") == 1 else ""
    if not rest:
        return DEFAULT_SCHEME_PORTS.get(scheme.lower())
    if not rest.startswith(":") or not rest[1:].isdigit() or not rest[1:].isascii():
        return None
    port = int(rest[1:])
    return port if 0 < port < 65536 else None
