"""Request scanning: well-known formats, and this bottle's own values in every encoding and split."""

from __future__ import annotations

import base64
import codecs
import gzip
import json
import zlib
from urllib.parse import quote

import pytest

from claude_bottle.sidecars.egress.dlp import History, Needle, RequestParts, Scanner

SECRET = "sk-ant-api03-" + "Zq8_rT2-mK4pL9xW" * 6 + "nB7vAA"
PLACEHOLDER = "sk-ant-api03-" + "Yh3-uQ7_cF1oJ5eR" * 6 + "dS2mAA"
OTHER = "s3cr3t-Passw0rd-for-the-db"
SCANNER = Scanner([Needle("secret", "ANTHROPIC_API_KEY", SECRET),
                   Needle("placeholder", "ANTHROPIC_API_KEY", PLACEHOLDER),
                   Needle("secret", "DB_PASSWORD", OTHER)])


def req(path: str = "/", headers: tuple[tuple[str, str], ...] = (), body: bytes = b"") -> RequestParts:
    return RequestParts(method="POST", host="upload.example.com", path=path, headers=headers, body=body)


def kinds(r: RequestParts, **kw: object) -> set[tuple[str, str]]:
    return {(f.kind, f.secret) for f in SCANNER.scan(r, **kw)}  # type: ignore[arg-type]


def b64_variants(data: bytes) -> list[tuple[str, bytes]]:
    """base64 of the value inside surrounding bytes at every alignment, std and urlsafe, +/- padding."""
    out = []
    for pad in ("", "x", "xy"):
        framed = f"{pad}{{\"key\": \"{data.decode()}\"}}".encode()
        for name, enc in (("std", base64.b64encode), ("url", base64.urlsafe_b64encode)):
            encoded = enc(framed)
            out += [(f"{name}-{len(pad)}", encoded), (f"{name}-{len(pad)}-nopad", encoded.rstrip(b"="))]
    return out


ENCODINGS = [
    ("raw", SECRET.encode()),
    ("hex-lower", SECRET.encode().hex().encode()),
    ("hex-upper", SECRET.encode().hex().upper().encode()),
    ("hex-colon", b":".join(f"{b:02x}".encode() for b in SECRET.encode())),
    ("url-all", "".join(f"%{b:02X}" for b in SECRET.encode()).encode()),
    ("url-double", quote("".join(f"%{b:02X}" for b in SECRET.encode())).encode()),
    ("json-unicode", json.dumps(SECRET).replace("-", "\\u002d").encode()),
    ("folded-base64", b"\n".join(base64.encodebytes(SECRET.encode()).split(b"\n"))),
    *b64_variants(SECRET.encode()),
]


@pytest.mark.parametrize(("label", "encoded"), ENCODINGS, ids=[e[0] for e in ENCODINGS])
@pytest.mark.parametrize("where", ["body", "query", "path", "header"])
def test_own_secret_found_in_every_encoding_and_place(label: str, encoded: bytes, where: str) -> None:
    text = encoded.decode()
    if where == "body":
        r = req(body=b"data=" + encoded + b"&more=1")
    elif where == "query":
        r = req(path="/upload?x=1&token=" + quote(text, safe="%"))
    elif where == "path":
        r = req(path="/files/" + quote(text, safe="%") + "/raw")
    else:
        r = req(headers=(("X-Data", text.replace("\n", "")),))
    assert ("secret", "ANTHROPIC_API_KEY") in kinds(r)


def test_short_password_found_raw_base64_hex() -> None:
    for body in (OTHER.encode(), base64.b64encode(b"u:" + OTHER.encode()), OTHER.encode().hex().encode()):
        assert ("secret", "DB_PASSWORD") in kinds(req(body=body))


def test_secret_split_across_two_headers_in_any_order() -> None:
    half = len(SECRET) // 2
    for a, b in ((SECRET[:half], SECRET[half:]), (SECRET[half:], SECRET[:half])):
        r = req(headers=(("X-A", a), ("Accept", "*/*"), ("X-B", b)))
        assert ("secret", "ANTHROPIC_API_KEY") in kinds(r)


def test_short_secret_split_in_two_is_found_by_pairing() -> None:
    r = req(headers=(("X-One", OTHER[:12]), ("X-Two", OTHER[12:])))
    findings = SCANNER.scan(r)
    assert any(f.secret == "DB_PASSWORD" and f.encoding == "split" for f in findings)


def test_secret_split_in_many_pieces_is_found_by_fragments() -> None:
    pieces = [SECRET[i:i + 20] for i in range(0, len(SECRET), 20)]
    r = req(headers=tuple((f"X-{i}", p) for i, p in enumerate(pieces)))
    assert ("secret", "ANTHROPIC_API_KEY") in kinds(r)


def test_hex_secret_split_between_header_and_query() -> None:
    hexed = SECRET.encode().hex()
    r = req(path="/?q=" + hexed[:100], headers=(("X-Rest", hexed[100:]),))
    assert ("secret", "ANTHROPIC_API_KEY") in kinds(r)


def test_secret_in_sub_domain_labels_hex_or_base32() -> None:
    hexed = SECRET.encode().hex()
    host = ".".join(hexed[i:i + 60] for i in range(0, len(hexed), 60)) + ".files.example.com"
    r = RequestParts("GET", host, "/")
    assert ("secret", "ANTHROPIC_API_KEY") in kinds(r)
    b32 = base64.b32encode(b"x" + SECRET.encode()).decode().rstrip("=").lower()
    r = RequestParts("GET", ".".join(b32[i:i + 50] for i in range(0, len(b32), 50)) + ".example.com", "/")
    assert ("secret", "ANTHROPIC_API_KEY") in kinds(r)


EVASIONS = {
    "html-entities": "".join(f"&#{c};" for c in SECRET.encode()).encode(),
    "html-hex-entities": "".join(f"&#x{c:x};" for c in SECRET.encode()).encode(),
    "decimal-codes": ",".join(str(c) for c in SECRET.encode()).encode(),
    "hex-codes": " ".join(f"0x{c:02x}" for c in SECRET.encode()).encode(),
    "base64-of-base64": base64.b64encode(base64.b64encode(SECRET.encode())),
    "zlib": zlib.compress(SECRET.encode()),
    "base64-of-gzip-in-json": json.dumps({"f": base64.b64encode(gzip.compress(SECRET.encode())).decode()})
    .encode(),
}


@pytest.mark.parametrize("label", sorted(EVASIONS))
def test_secret_under_further_encodings(label: str) -> None:
    assert ("secret", "ANTHROPIC_API_KEY") in kinds(req(body=EVASIONS[label])), label


def test_text_that_looks_like_a_zlib_header_is_not_refused() -> None:
    assert kinds(req(body=b"x^ marks the spot")) == set()
    assert kinds(req(body=b"1, 2, 3, 4, 5, 6, 7, 8, 9, 10 and a list of numbers")) == set()


def test_reversed_and_rot13_secret() -> None:
    for body in (SECRET[::-1], codecs.encode(SECRET, "rot13")):
        assert ("secret", "ANTHROPIC_API_KEY") in kinds(req(body=body.encode()))


def test_secret_in_pieces_inside_a_small_body() -> None:
    body = json.dumps({"a": SECRET[:40], "note": "x" * 100, "b": SECRET[40:80], "c": SECRET[80:]}).encode()
    assert ("secret", "ANTHROPIC_API_KEY") in kinds(req(body=body))


def test_placeholder_found_like_a_secret() -> None:
    r = req(body=base64.b64encode(PLACEHOLDER.encode()))
    assert ("placeholder", "ANTHROPIC_API_KEY") in kinds(r)


def test_shared_prefix_is_not_a_finding() -> None:
    """The real value and placeholder share 'sk-ant-api03-': its hex alone must not match either."""
    r = req(body=b"sk-ant-api03-".hex().encode() * 3)
    assert kinds(r) == set()


@pytest.mark.parametrize("coding", ["gzip", "br", "deflate", "zstd", "x-custom", "gzip, identity"])
def test_unreadable_content_encoding_is_refused(coding: str) -> None:
    r = req(headers=(("Content-Encoding", coding),), body=gzip.compress(b"hello"))
    assert ("unreadable-body", "") in kinds(r)


def test_identity_encoding_and_empty_gzip_body_pass() -> None:
    assert kinds(req(headers=(("Content-Encoding", "identity"),), body=b"hello")) == set()
    assert kinds(req(headers=(("Content-Encoding", "gzip"),), body=b"")) == set()


def test_multipart_base64_part_is_decoded_and_gzip_part_refused() -> None:
    aws = "AKIAIOSFODNN7EXAMPLE"
    body = (b"--XyZ\r\nContent-Disposition: form-data; name=\"a\"\r\n"
            b"Content-Transfer-Encoding: base64\r\n\r\n" + base64.b64encode(f"key={aws}".encode()) +
            b"\r\n--XyZ\r\nContent-Disposition: form-data; name=\"b\"\r\nContent-Encoding: gzip\r\n\r\n" +
            gzip.compress(b"x") + b"\r\n--XyZ--\r\n")
    found = SCANNER.scan(req(headers=(("Content-Type", "multipart/form-data; boundary=XyZ"),), body=body))
    assert {(f.kind, f.where) for f in found} >= {
        ("aws-access-key", "body part 1"), ("unreadable-body", "body part 2")}


def test_form_body_url_encoded_secret() -> None:
    r = req(headers=(("Content-Type", "application/x-www-form-urlencoded"),),
            body=b"a=1&k=" + quote(SECRET, safe="").encode())
    assert ("secret", "ANTHROPIC_API_KEY") in kinds(r)


WELL_KNOWN = {
    "aws-access-key": "AKIAIOSFODNN7EXAMPLE",
    "github-token": "ghp_" + "a1B2c3D4e5" * 3 + "f6G7h8",
    "gitlab-token": "glpat-" + "x1Y2z3W4v5U6t7S8r9Q0",
    "slack-token": "xoxb-1234567890-abcdefghij",
    "slack-webhook": "https://hooks.slack.com/services/T0000/B0000/XXXXXXXXXXXX",
    "stripe-key": "sk_live_" + "4eC39HqLyjWDarjtT1zdp7dc",
    "google-api-key": "AIza" + "SyD-9tSrke72PouQMnMX-a7eZSW0jkFMBWY",
    "anthropic-key": "sk-ant-api03-" + "q" * 90,
    "openai-key": "sk-proj-" + "A1b2C3d4E5f6G7h8I9j0K1l2",
    "npm-token": "npm_" + "a" * 36,
    "jwt": "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U",
    "private-key": "-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXk=\n-----END OPENSSH PRIVATE KEY-----",
}


@pytest.mark.parametrize(("kind", "token"), WELL_KNOWN.items(), ids=list(WELL_KNOWN))
def test_well_known_formats_in_body_query_and_header(kind: str, token: str) -> None:
    assert (kind, "") in kinds(req(body=json.dumps({"content": f"see {token} here"}).encode()))
    assert (kind, "") in kinds(req(path="/x?v=" + quote(token, safe="")))
    assert (kind, "") in kinds(req(headers=(("X-T", token.replace("\n", " ")),)))
    # exempt hosts skip the formats
    assert (kind, "") not in kinds(req(body=token.encode()), patterns=False)


def test_exempt_still_catches_own_secret_and_unreadable_body() -> None:
    assert ("secret", "ANTHROPIC_API_KEY") in kinds(req(body=SECRET.encode()), patterns=False)
    r = req(headers=(("Content-Encoding", "gzip"),), body=gzip.compress(b"x"))
    assert ("unreadable-body", "") in kinds(r, patterns=False)


def test_placeholder_is_not_reported_as_a_well_known_anthropic_key() -> None:
    assert ("anthropic-key", "") not in kinds(req(body=PLACEHOLDER.encode()))


def test_ordinary_traffic_is_clean() -> None:
    body = json.dumps({"model": "claude-sonnet-4", "max_tokens": 1024, "messages": [
        {"role": "user", "content": "Write a function that adds two numbers. " * 200}]}).encode()
    r = RequestParts("POST", "api.anthropic.com", "/v1/messages?beta=true", (
        ("content-type", "application/json"), ("anthropic-version", "2023-06-01"),
        ("user-agent", "claude-cli/2.0.0 (external, cli)"), ("x-stainless-lang", "js"),
        ("accept", "application/json")), body)
    assert SCANNER.scan(r) == []


def test_skip_headers_are_not_read() -> None:
    r = req(headers=(("x-api-key", SECRET), ("x-other", "1")))
    assert ("secret", "ANTHROPIC_API_KEY") not in kinds(r, skip_headers=frozenset({0}))


def test_pieces_sent_one_per_request_are_seen_together() -> None:
    history = History()
    pieces = [SECRET[i:i + 10] for i in range(0, len(SECRET), 10)]
    results = [SCANNER.scan(req(path=f"/m?i={i}&p={p}"), history=history) for i, p in enumerate(pieces)]
    assert results[0] == []  # one piece alone says nothing
    assert all(any(f.secret == "ANTHROPIC_API_KEY" and "across requests" in f.where for f in r)
               for r in results[2:])
    # the same through sub-domain labels of one parent, and through the end of the path
    history = History()
    names = [f"{p.lower().replace('_', '-')}.x.example" for p in pieces[:4]]
    labels = [SCANNER.scan(RequestParts("GET", name, "/"), history=history) for name in names]
    assert labels[-1]
    history = History()
    ends = [SCANNER.scan(req(path=f"/files/{p}"), history=history) for p in pieces[:4]]
    assert ends[-1]


def test_history_does_not_mix_hosts_or_fields() -> None:
    history = History()
    assert SCANNER.scan(req(path=f"/?a={SECRET[:12]}"), history=history) == []
    r = RequestParts("GET", "elsewhere.example", f"/?a={SECRET[12:24]}")
    assert SCANNER.scan(r, history=history) == []
    assert SCANNER.scan(req(path=f"/?b={SECRET[12:24]}"), history=history) == []


def test_history_judges_only_what_the_new_piece_completes() -> None:
    """After a refused value, later ordinary requests to the same host and field still pass."""
    history = History()
    assert SCANNER.scan(req(path=f"/up/{SECRET}"), history=history)
    assert SCANNER.scan(req(path="/up/after"), history=history) == []
    assert SCANNER.scan(req(path="/up/and-again"), history=history) == []
