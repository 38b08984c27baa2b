"""The scanner fails closed on archives and encodings it cannot read (issue 15): a ZIP64 offset past
2**63 once raised ``OverflowError`` out of the unpacker, and the proxy forwarded the request unscanned.
Here the unpacker and the whole scan are fuzzed with malformed archives: neither may raise, and a body
that carried the secret is refused (found, or unreadable) whatever was done to it."""

from __future__ import annotations

import base64
import bz2
import gzip
import io
import lzma
import random
import struct
import zipfile
import zlib

import pytest

from claude_bottle.sidecars.egress.dlp import Needle, RequestParts, Scanner
from claude_bottle.sidecars.egress.unpack import unpack

SECRET = "sk-ant-api03-" + "Zq8_rT2-mK4pL9xW" * 6 + "nB7vAA"
SCANNER = Scanner([Needle("secret", "ANTHROPIC_API_KEY", SECRET)])
PLAIN = b"ANTHROPIC_API_KEY=" + SECRET.encode() + b"\n"


def zip64_offset(member: bytes, offset: int) -> bytes:
    """A stored entry whose central directory puts its local header at ``offset`` (ZIP64 extra)."""
    name = b"x.txt"
    crc = zlib.crc32(member)
    local = struct.pack("<4sHHHHHIIIHH", b"PK\x03\x04", 20, 0, 0, 0, 0, crc, len(member), len(member),
                        len(name), 0) + name + member
    extra = struct.pack("<HHQ", 1, 8, offset)
    central = struct.pack("<4sHHHHHHIIIHHHHHII", b"PK\x01\x02", 45, 45, 0, 0, 0, 0, crc, len(member),
                          len(member), len(name), len(extra), 0, 0, 0, 0, 0xFFFFFFFF) + name + extra
    end = struct.pack("<4sHHHHIIH", b"PK\x05\x06", 0, 0, 1, 1, len(central), len(local), 0)
    return local + central + end


def zipped(data: bytes, method: int = zipfile.ZIP_DEFLATED) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", method) as z:
        z.writestr("a/.env", data)
        z.writestr("b.txt", b"hello")
    return buf.getvalue()


PACKERS = {
    "gzip": gzip.compress, "bzip2": bz2.compress, "xz": lzma.compress, "zlib": zlib.compress,
    "zip": zipped, "zip-stored": lambda d: zipped(d, zipfile.ZIP_STORED),
    "zip-bzip2": lambda d: zipped(d, zipfile.ZIP_BZIP2), "zip-lzma": lambda d: zipped(d, zipfile.ZIP_LZMA),
    "zip-in-gzip": lambda d: gzip.compress(zipped(d)),
}


def refused(body: bytes) -> bool:
    parts = RequestParts("POST", "upload.example.com", "/", (("Content-Type", "application/zip"),), body)
    return bool(list(SCANNER.scan(parts)))


@pytest.mark.parametrize("offset", [2**63, 2**64 - 1, 2**63 - 1, 2**62, 2**32])
def test_a_zip64_offset_the_unpacker_cannot_seek_to_is_unreadable_not_a_crash(offset: int) -> None:
    body = zip64_offset(PLAIN, offset)
    found = list(unpack(body, "body"))
    assert found and all(isinstance(content, str) for _, content in found), found
    assert refused(body)


def _mutations(data: bytes, rng: random.Random) -> bytes:
    out = bytearray(data)
    kind = rng.randrange(5)
    if kind == 0:  # flip bytes
        for _ in range(rng.randint(1, 8)):
            out[rng.randrange(len(out))] = rng.randrange(256)
    elif kind == 1:  # truncate
        del out[rng.randrange(1, len(out)):]
    elif kind == 2:  # all-ones fields (ZIP64 markers, huge sizes)
        i = rng.randrange(len(out))
        out[i:i + 4] = b"\xff\xff\xff\xff"
    elif kind == 3:  # duplicate a slice
        i, j = sorted(rng.sample(range(len(out)), 2))
        out[j:j] = out[i:j]
    else:  # insert noise
        i = rng.randrange(len(out))
        out[i:i] = rng.randbytes(rng.randint(1, 32))
    return bytes(out)


@pytest.mark.parametrize("label", sorted(PACKERS))
def test_malformed_archives_never_raise_and_never_pass_a_readable_secret_unseen(label: str) -> None:
    rng = random.Random(f"unpack-fuzz-{label}")  # seeded: the same 300 cases every run
    packed = PACKERS[label](PLAIN)
    for _ in range(300):
        body = _mutations(packed, rng)
        results = list(unpack(body, "body"))  # must not raise
        readable = b"".join(c for _, c in results if isinstance(c, bytes))
        if SECRET.encode() in readable:
            assert refused(body), (label, body[:40])
        for encoded in (base64.b64encode(body), body.hex().encode()):
            list(SCANNER.scan(RequestParts("POST", "h", "/", (), encoded)))  # the decoders must not raise


@pytest.mark.parametrize("label", sorted(PACKERS))
def test_an_intact_archive_with_the_secret_is_refused(label: str) -> None:
    assert refused(PACKERS[label](PLAIN)), label
