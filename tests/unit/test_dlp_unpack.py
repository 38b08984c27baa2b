"""Compressed payloads without a Content-Encoding: unpacked and scanned, or refused as unreadable."""

from __future__ import annotations

import bz2
import gzip
import io
import lzma
import zipfile

import pytest

from claude_bottle.sidecars.egress import unpack as unpack_mod
from claude_bottle.sidecars.egress.dlp import Needle, RequestParts, Scanner

SECRET = "sk-ant-api03-" + "Zq8_rT2-mK4pL9xW" * 6 + "nB7vAA"
SCANNER = Scanner([Needle("secret", "ANTHROPIC_API_KEY", SECRET)])


def zipped(**members: bytes) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        for name, data in members.items():
            z.writestr(name, data)
    return buf.getvalue()


def scan(body: bytes, content_type: str = "application/octet-stream") -> set[tuple[str, str]]:
    r = RequestParts("POST", "upload.example.com", "/", (("Content-Type", content_type),), body)
    return {(f.kind, f.where) for f in SCANNER.scan(r)}


@pytest.mark.parametrize(("label", "pack"), [
    ("gzip", gzip.compress), ("bzip2", bz2.compress), ("xz", lzma.compress),
    ("zip", lambda data: zipped(**{"config/.env": data})),
    ("zip in gzip", lambda data: gzip.compress(zipped(inner=data))),
])
def test_secret_inside_an_archive_is_found(label: str, pack) -> None:
    body = pack(b"ANTHROPIC_API_KEY=" + SECRET.encode() + b"\n")
    assert any(kind == "secret" for kind, _ in scan(body)), label


def test_clean_archive_passes() -> None:
    assert scan(zipped(**{"pkg/__init__.py": b"print('hi')\n"})) == set()
    assert scan(gzip.compress(b"just some text" * 100)) == set()


def test_archive_in_a_multipart_upload() -> None:
    archive = zipped(**{"notes.txt": b"key: AKIAIOSFODNN7EXAMPLE"})
    body = (b"--b0\r\nContent-Disposition: form-data; name=\"f\"; filename=\"x.zip\"\r\n"
            b"Content-Type: application/zip\r\n\r\n" + archive + b"\r\n--b0--\r\n")
    found = scan(body, "multipart/form-data; boundary=b0")
    assert ("aws-access-key", "body part 1 (zip: notes.txt)") in found


@pytest.mark.parametrize(("body", "reason"), [
    (b"\x28\xb5\x2f\xfd" + b"\0" * 20, "zstd"),
    (b"7z\xbc\xaf\x27\x1c" + b"\0" * 20, "7z"),
    (b"\x1f\x8b" + b"not really gzip", "unreadable gzip"),
    (b"PK\x03\x04" + b"broken", "unreadable zip"),
])
def test_unreadable_archives_are_refused(body: bytes, reason: str) -> None:
    r = RequestParts("POST", "h", "/", (), body)
    assert [(f.kind, f.encoding) for f in SCANNER.scan(r)] == [("unreadable-body", reason)]


def test_decompression_bomb_stops_at_the_budget(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(unpack_mod, "MAX_UNPACKED", 1024 * 1024)
    bomb = gzip.compress(b"\0" * (8 * 1024 * 1024))
    out = list(unpack_mod.unpack(bomb, "body"))
    assert out == [("body", "gzip larger than 1 MiB unpacked")]


def test_nesting_is_bounded() -> None:
    data = b"x"
    for _ in range(unpack_mod.MAX_DEPTH + 1):
        data = gzip.compress(data)
    assert any(isinstance(c, str) and "nested" in c for _, c in unpack_mod.unpack(data, "body"))
