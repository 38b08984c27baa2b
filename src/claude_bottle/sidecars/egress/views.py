"""Views of a request field for the scanner: the field as sent, then with one family of encodings
undone in each further view. Pure standard library.

What the scanner's letters-and-digits reduction cannot see through on its own is undone here: URL
encoding (up to three layers), backslash escapes (``\\u002d``, ``\\x2d``, ``\\n``), HTML numeric
entities (``&#115;``, ``&#x73;``), runs of character codes (``115,107,45`` or ``0x73 0x6b``), and
base64 blobs (decoded once, so a value base64'd twice still shows its base64 form). A view is only
made when its marker is in the text, so ordinary traffic pays for the raw view alone.
"""

from __future__ import annotations

import base64
import binascii
import functools
import re
from collections.abc import Iterator
from urllib.parse import unquote_to_bytes

__all__ = ["base64_blobs", "views"]

_ESCAPE_HEX = re.compile(rb"\\(?:u00|x)([0-9A-Fa-f]{2})")
_ENTITY = re.compile(rb"&#(?:[xX]([0-9A-Fa-f]{1,2})|(\d{1,3}));?")
# JSON and C escapes that would leave a stray letter in the reduced text ("\n" -> "n").
_ESCAPE_CHARS = ((b"\\n", b"\n"), (b"\\r", b"\r"), (b"\\t", b"\t"), (b"\\/", b"/"), (b'\\"', b'"'),
                 (b"\\b", b" "), (b"\\f", b" "))
# Eight or more character codes in a row: decimal (115,107,45) or 0x-hex (0x73 0x6b 0x2d).
_CODES = re.compile(rb"(?:\d{1,3}[ ,;:]{1,2}){7,}\d{1,3}|(?:0[xX][0-9A-Fa-f]{2}[ ,;:]{0,2}){8,}")
# A cheap first look (no repetition to backtrack over): a few codes in a row, or a 0x.
_CODES_HINT = re.compile(rb"\d[,;: ]{1,2}\d{1,3}[,;: ]{1,2}\d{1,3}[,;: ]{1,2}\d|0[xX][0-9A-Fa-f]{2}")
_CODE = re.compile(rb"0[xX]([0-9A-Fa-f]{2})|(\d{1,3})")
_BLOB = re.compile(rb"[A-Za-z0-9+/_-]{24,}={0,2}")


def _entity(match: re.Match[bytes]) -> bytes:
    code = int(match.group(1), 16) if match.group(1) else int(match.group(2))
    return bytes([code]) if code < 256 else match.group(0)


def _unescape(data: bytes) -> bytes:
    if b"\\u00" in data or b"\\x" in data:
        data = _ESCAPE_HEX.sub(lambda m: binascii.unhexlify(m.group(1)), data)
    if b"&#" in data:
        data = _ENTITY.sub(_entity, data)
    if b"\\" in data:
        for escaped, plain in _ESCAPE_CHARS:
            data = data.replace(escaped, plain)
    return data


def _codes(match: re.Match[bytes]) -> bytes:
    values = [int(m.group(1), 16) if m.group(1) else int(m.group(2)) for m in _CODE.finditer(match.group(0))]
    return bytes(values) if all(v < 256 for v in values) else match.group(0)


@functools.lru_cache(maxsize=2)  # the body's views and its archive search both ask, once per request
def base64_blobs(data: bytes) -> tuple[bytes, ...]:
    """Every run of 24+ base64 characters in ``data`` that decodes (std or urlsafe, padded or not)."""
    out = []
    for match in _BLOB.finditer(data):
        blob = match.group(0).rstrip(b"=")
        blob = blob[: len(blob) - len(blob) % 4] if len(blob) % 4 == 1 else blob
        try:
            out.append(base64.urlsafe_b64decode(blob.replace(b"+", b"-").replace(b"/", b"_")
                                                + b"=" * (-len(blob) % 4)))
        except (binascii.Error, ValueError):
            continue
    return tuple(out)


def views(data: bytes) -> Iterator[tuple[str, bytes]]:
    """``(label, text)``: the field as sent (``raw``), then each decoded form that differs from it."""
    yield "raw", data
    seen = {data}

    def new(text: bytes) -> bool:
        if text in seen:
            return False
        seen.add(text)
        return True

    url = data
    for _ in range(3):  # double- and triple-encoding
        if b"%" not in url:
            break
        url = unquote_to_bytes(url)
        if not new(url):
            break
        yield "url-encoded", url
    for label, base in (("escaped", data), ("url-encoded", url)):
        if b"\\" in base or b"&#" in base:
            unescaped = _unescape(base)
            if new(unescaped):
                yield label, unescaped
    if _CODES_HINT.search(data) and _CODES.search(data):
        decoded = _CODES.sub(_codes, data)
        if new(decoded):
            yield "char-codes", decoded
    blobs = base64_blobs(data)
    if blobs:
        joined = b"\n".join(blobs)
        if new(joined):
            yield "base64-decoded", joined
