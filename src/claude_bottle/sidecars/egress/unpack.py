"""Compressed payloads sent *without* a Content-Encoding (a gzip file, a zip upload): unpack them so the
scanner reads what is inside, or name why it cannot. Pure standard library.

Recognised by their magic bytes (zlib by its header checksum). gzip, zlib, bzip2, xz and zip are
unpacked (zip member by member, nested archives up to :data:`MAX_DEPTH` deep) within one budget of
:data:`MAX_UNPACKED` bytes for the whole request, so a decompression bomb costs at most that much
memory. Formats the standard library cannot read (zstd, 7z, rar, lz4), corrupt or encrypted archives,
and archives over the budget are reported as unreadable, and the scanner refuses them: what it cannot
read does not leave. (Data that merely looks like a zlib header but does not inflate is left alone.)
"""

from __future__ import annotations

import bz2
import gzip
import io
import lzma
import zipfile
import zlib
from collections.abc import Iterator
from typing import Protocol

__all__ = ["MAX_DEPTH", "MAX_UNPACKED", "unpack"]

MAX_UNPACKED = 64 * 1024 * 1024
MAX_DEPTH = 3
_CHUNK = 1024 * 1024

_MAGIC = (
    (b"\x1f\x8b", "gzip"),
    (b"BZh", "bzip2"),
    (b"\xfd7zXZ\x00", "xz"),
    (b"PK\x03\x04", "zip"),
    (b"\x28\xb5\x2f\xfd", "zstd"),
    (b"7z\xbc\xaf\x27\x1c", "7z"),
    (b"Rar!\x1a\x07", "rar"),
    (b"\x04\x22\x4d\x18", "lz4"),
)
_OPENERS = {
    "gzip": lambda data: gzip.GzipFile(fileobj=io.BytesIO(data)),
    "bzip2": lambda data: bz2.BZ2File(io.BytesIO(data)),
    "xz": lambda data: lzma.LZMAFile(io.BytesIO(data)),  # noqa: SIM115 - opened in ``with`` by the caller
}


class _Readable(Protocol):
    def read(self, size: int = -1, /) -> bytes: ...


class _OverBudget(Exception):
    pass


def _kind(data: bytes) -> str | None:
    kind = next((kind for magic, kind in _MAGIC if data.startswith(magic)), None)
    # zlib has no magic, only a header whose two bytes are a multiple of 31 (deflate, 0x78 = 32K window)
    if kind is None and len(data) > 2 and data[0] == 0x78 and ((data[0] << 8) | data[1]) % 31 == 0:
        return "zlib"
    return kind


def _zlib(data: bytes, budget: list[int]) -> bytes | None:
    """Inflate, within the budget; ``None`` when it is not zlib after all (text starting ``x^``)."""
    inflater = zlib.decompressobj()
    try:
        out = inflater.decompress(data, budget[0] + 1)
    except zlib.error:
        return None
    budget[0] -= len(out)
    if budget[0] < 0 or inflater.unconsumed_tail:
        raise _OverBudget
    return out


def _read(stream: _Readable, budget: list[int]) -> bytes:
    out = []
    while chunk := stream.read(min(_CHUNK, budget[0] + 1)):
        budget[0] -= len(chunk)
        if budget[0] < 0:
            raise _OverBudget
        out.append(chunk)
    return b"".join(out)


def unpack(data: bytes, where: str, *, budget: list[int] | None = None,
           depth: int = 0) -> Iterator[tuple[str, bytes | str]]:
    """``(where, content)`` for each unpacked payload inside ``data``, or ``(where, reason)`` when it
    cannot be read. Nothing at all for data that is not a recognised archive."""
    kind = _kind(data)
    if kind is None:
        return
    if budget is None:
        budget = [MAX_UNPACKED]
    if depth >= MAX_DEPTH:
        yield where, f"{kind} nested more than {MAX_DEPTH} deep"
        return
    try:
        if kind == "zlib":
            inflated = _zlib(data, budget)
            if inflated is None:
                return
            members = [(f"{where} (zlib)", inflated)]
        elif kind in _OPENERS:
            with _OPENERS[kind](data) as stream:
                members = [(f"{where} ({kind})", _read(stream, budget))]
        elif kind == "zip":
            with zipfile.ZipFile(io.BytesIO(data)) as archive:
                members = []
                for info in archive.infolist():
                    with archive.open(info) as stream:
                        members.append((f"{where} (zip: {info.filename[:80]})", _read(stream, budget)))
        else:
            yield where, kind
            return
    except _OverBudget:
        yield where, f"{kind} larger than {MAX_UNPACKED // (1024 * 1024)} MiB unpacked"
        return
    except Exception:
        # Any failure reading an archive (a ZIP64 offset past 2**63 overflows, a crafted header trips
        # an assertion) means "cannot read it", which the scanner refuses: never an escape from the scan.
        yield where, f"unreadable {kind}"
        return
    for member_where, content in members:
        yield member_where, content
        yield from unpack(content, member_where, budget=budget, depth=depth + 1)
