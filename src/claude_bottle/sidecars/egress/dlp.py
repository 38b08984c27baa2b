"""Request scanning (DLP): find secret-shaped text in what the agent sends, before it leaves.

Pure standard library, importable on the host's Python for tests; the proxy addon calls it for every
intercepted request. Two kinds of finding:

* **well-known token formats** (:data:`PATTERNS`): AWS, GitHub, GitLab, Slack, Stripe, Google,
  Anthropic, OpenAI, npm, PyPI, Hugging Face, JWTs and PEM private keys. Skipped for hosts with
  ``dlp_exempt``.
* **unreadable bodies**: a Content-Encoding other than identity, and archives (by magic bytes) that
  :mod:`.unpack` cannot open; the archives it can open are scanned inside. Never exempt.
* **this bottle's own values** (:class:`Needle`): its real secrets and their placeholders, raw,
  base64 (std or urlsafe, any of the three byte alignments, padded or not, folded), base32, hex (any
  case), URL- or backslash-escaped, and split across fields (host labels included). Never exempt.

How encodings are caught without listing them all: every field is reduced to lowercase ASCII letters
and digits (``_reduce``), and so is every encoded form of every value. Separators, padding, case,
``+/`` versus ``-_`` and line folding all disappear in that reduction, so one substring test covers
them. Escapes that *add* letters (``%2D``, ``\\u002d``) are undone first, in extra views. Pieces of a
value spread over several small fields are caught by pairwise concatenation and by 16-character
fragments unique to one value.
"""

from __future__ import annotations

import base64
import binascii
import quopri
import re
from collections import OrderedDict
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from urllib.parse import unquote_to_bytes

from claude_bottle.sidecars.egress.unpack import MAX_UNPACKED, unpack
from claude_bottle.sidecars.egress.views import base64_blobs, views

__all__ = ["PATTERNS", "Finding", "History", "Needle", "RequestParts", "Scanner"]

FRAGMENT = 16         # a split piece this long (after reduction) is still recognised
MIN_NEEDLE = 10       # encoded forms shorter than this (after reduction) would match by chance
MAX_PAIR_FIELDS = 48  # pairwise concatenation is quadratic; past this, only the in-order join
WINDOW = 512          # History: reduced bytes remembered per (host, field)
FIELDS = 4096         # History: (host, field) windows remembered

# (name, prefixes, the rest). Each prefix is a literal the regex engine searches for quickly, and the
# regex runs only on text holding it (an ``in`` test); the match must not follow a letter or digit.
_FORMATS = (
    ("aws-access-key", "AKIA ASIA ABIA ACCA", rb"[A-Z0-9]{16}(?![A-Za-z0-9])"),
    ("github-token", "ghp_ gho_ ghu_ ghs_ ghr_", rb"[A-Za-z0-9]{36,255}(?![A-Za-z0-9])"),
    ("github-token", "github_pat_", rb"[A-Za-z0-9_]{50,255}"),
    ("gitlab-token", "glpat-", rb"[A-Za-z0-9_-]{20,}"),
    ("slack-token", "xoxa- xoxb- xoxp- xoxo- xoxs- xoxr- xapp-", rb"[A-Za-z0-9-]{10,}"),
    ("slack-webhook", "hooks.slack.com/services/T", rb"[A-Za-z0-9_]+/B[A-Za-z0-9_]+/[A-Za-z0-9_]+"),
    ("stripe-key", "sk_live_ sk_test_ rk_live_ rk_test_", rb"[A-Za-z0-9]{20,}"),
    ("google-api-key", "AIza", rb"[0-9A-Za-z_-]{35}"),
    ("anthropic-key", "sk-ant-", rb"[a-z]{2,8}\d{2}-[A-Za-z0-9_-]{20,}"),
    ("openai-key", "sk-proj- sk-svcacct- sk-admin-", rb"[A-Za-z0-9_-]{20,}"),
    ("openai-key", "sk-", rb"[A-Za-z0-9]{20}T3BlbkFJ[A-Za-z0-9]{20}"),
    ("npm-token", "npm_", rb"[A-Za-z0-9]{36}(?![A-Za-z0-9])"),
    ("pypi-token", "pypi-AgEIcHlwaS5vcmc", rb"[A-Za-z0-9_-]{50,}"),
    ("huggingface-token", "hf_", rb"[A-Za-z0-9]{34,}(?![A-Za-z0-9])"),
    ("jwt", "eyJ", rb"[A-Za-z0-9_-]{8,}\.eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{16,}"),
    ("private-key", "-----BEGIN", rb"[A-Z0-9 ]{0,32}PRIVATE KEY(?: BLOCK)?-----"),
)
PATTERNS: tuple[tuple[str, bytes, re.Pattern[bytes]], ...] = tuple(
    (name, prefix.encode(), re.compile(re.escape(prefix.encode()) + rest))
    for name, prefixes, rest in _FORMATS for prefix in prefixes.split())
_WORD = frozenset(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789")

_ALNUM = b"abcdefghijklmnopqrstuvwxyz0123456789"
_LOWER = bytes.maketrans(b"ABCDEFGHIJKLMNOPQRSTUVWXYZ", b"abcdefghijklmnopqrstuvwxyz")
_NOT_ALNUM = bytes(b for b in range(256) if b not in _ALNUM + _ALNUM[:26].upper())
_IDENTITY = frozenset({"", "identity"})
_ROT13 = bytes.maketrans(b"abcdefghijklmnopqrstuvwxyz", b"nopqrstuvwxyzabcdefghijklm")
# Placeholders are tripwires, worth only the common encodings (each form costs a pass over the body).
_PLACEHOLDER_FORMS = frozenset({"raw", "hex", "base64"})
BODY_FRAGMENTS = 64 * 1024  # bodies up to this size are also searched for fragments


def _reduce(data: bytes) -> bytes:
    """Lowercase letters and digits only: what survives every encoding we undo by comparison."""
    return data.translate(_LOWER, _NOT_ALNUM)


@dataclass(frozen=True)
class Finding:
    """Why a request is refused. ``secret`` names one of the bottle's secrets, never its value."""

    kind: str         # a PATTERNS name, "secret", "placeholder" or "unreadable-body"
    where: str        # "path", "query", "header x-api-key", "headers a+b", "body"
    secret: str = ""
    encoding: str = ""

    def describe(self) -> str:
        what = {
            "secret": f"the value of secret {self.secret}",
            "placeholder": f"the placeholder of secret {self.secret}",
            "unreadable-body": f"a body in {self.encoding} encoding, which cannot be scanned",
            "plain-http": f"the placeholder of secret {self.secret} over plain HTTP",
            "foreign-credential": f"a credential other than secret {self.secret}'s placeholder",
        }.get(self.kind, f"a secret-shaped string ({self.kind})")
        how = f" ({self.encoding})" if self.encoding and self.kind != "unreadable-body" else ""
        return f"{self.where} carries {what}{how}"

    def to_json(self) -> dict[str, str]:
        return {k: v for k, v in (("kind", self.kind), ("where", self.where), ("secret", self.secret),
                                  ("encoding", self.encoding)) if v}


@dataclass(frozen=True)
class Needle:
    """A value to find: ``kind`` is "secret" (real) or "placeholder"; ``name`` is the secret's name."""

    kind: str
    name: str
    value: str = field(repr=False)


@dataclass(frozen=True)
class RequestParts:
    """The parts of a request the scanner reads, independent of mitmproxy's types.

    ``path`` is the request target as sent (``/a/b?x=1``); ``headers`` keep their order and repeats;
    ``body`` is the raw body as it would go on the wire (before any content decoding)."""

    method: str
    host: str
    path: str
    headers: tuple[tuple[str, str], ...] = ()
    body: bytes = field(default=b"", repr=False)
    scheme: str = "https"

    def header(self, name: str) -> list[str]:
        return [v for k, v in self.headers if k.lower() == name.lower()]


def _encodings(value: bytes) -> Iterator[tuple[str, bytes]]:
    """Every encoded form of ``value``, reduced. Base64 at each of the three byte alignments, keeping
    only the characters the value alone determines (the neighbours' bits change the others)."""
    yield "raw", _reduce(value)
    yield "hex", value.hex().encode()
    for offset in range(3):
        encoded = base64.b64encode(b"\0" * offset + value)
        start, end = (8 * offset + 5) // 6, (8 * (offset + len(value))) // 6
        yield "base64", _reduce(encoded[start:end])
    # base32 (the usual way into DNS names), at each of its five byte alignments
    for offset in range(5):
        encoded = base64.b32encode(b"\0" * offset + value)
        start, end = (8 * offset + 4) // 5, (8 * (offset + len(value))) // 5
        yield "base32", _reduce(encoded[start:end])
    yield "reversed", _reduce(value[::-1])
    yield "rot13", _reduce(value).translate(_ROT13)


class Scanner:
    """Built once per set of needles (the proxy rebuilds it when its credentials change)."""

    def __init__(self, needles: Iterable[Needle]) -> None:
        self.needles = tuple(n for n in needles if n.value)
        self._forms: list[tuple[bytes, Needle, str]] = []
        grams: dict[bytes, set[tuple[Needle, str]]] = {}
        for needle in self.needles:
            for encoding, form in _encodings(needle.value.encode()):
                searched = needle.kind != "placeholder" or encoding in _PLACEHOLDER_FORMS
                if searched and (len(form) >= MIN_NEEDLE or (encoding == "raw" and form)):
                    self._forms.append((form, needle, encoding))
                for i in range(len(form) - FRAGMENT + 1):
                    grams.setdefault(form[i:i + FRAGMENT], set()).add((needle, encoding))
        # A fragment shared by two values (a real value and its placeholder share their prefix, so
        # do hex forms of ``sk-ant-api03-``) identifies neither: keep only fragments unique to one.
        self._grams: dict[bytes, tuple[Needle, str]] = {}
        for gram, owners in grams.items():
            if len({needle for needle, _ in owners}) != 1:
                continue
            kept = sorted((n, e) for n, e in owners if n.kind != "placeholder" or e in _PLACEHOLDER_FORMS)
            if kept:
                self._grams[gram] = kept[0]
        self.placeholders = tuple(n.value for n in self.needles if n.kind == "placeholder")

    # -- finding own values -------------------------------------------------------------------------
    def _find_forms(self, reduced: bytes, where: str, view: str) -> Iterator[Finding]:
        for form, needle, encoding in self._forms:
            if form in reduced:
                yield Finding(needle.kind, where, needle.name, encoding if view == "raw" else view)

    def find_new(self, window: bytes, new_from: int, where: str) -> Iterator[Finding]:
        """Whole forms and fragments in a reduced ``History`` window that overlap its newest piece
        (from ``new_from`` on), as splits: what older pieces alone held was judged already."""
        for form, needle, _ in self._forms:
            if window.find(form, max(0, new_from - len(form) + 1)) != -1:
                yield Finding(needle.kind, where, needle.name, "split")
                return
        yield from self._find_fragments(window[max(0, new_from - FRAGMENT + 1):], where)

    def _find_fragments(self, reduced: bytes, where: str) -> Iterator[Finding]:
        for i in range(len(reduced) - FRAGMENT + 1):
            owner = self._grams.get(reduced[i:i + FRAGMENT])
            if owner is not None:
                yield Finding(owner[0].kind, where, owner[0].name, "split")
                return

    def _find_patterns(self, data: bytes, where: str) -> Iterator[Finding]:
        reported = set()
        for name, prefix, pattern in PATTERNS:
            if name in reported or prefix not in data:
                continue
            for match in pattern.finditer(data):
                if match.start() and data[match.start() - 1] in _WORD and prefix[:1] in _WORD:
                    continue
                text = match.group(0).decode("latin-1")
                # A placeholder has its token's shape on purpose; the placeholder rule judges it.
                if not any(p in text or text in p for p in self.placeholders):
                    reported.add(name)
                    yield Finding(name, where)
                    break

    def _scan_field(self, data: bytes, where: str, *, patterns: bool, small: bool) -> Iterator[Finding]:
        for view, text in views(data):
            reduced = _reduce(text)
            yield from self._find_forms(reduced, where, view)
            if small or len(reduced) <= BODY_FRAGMENTS:
                yield from self._find_fragments(reduced, where)
            if patterns:
                yield from self._find_patterns(text, where)

    def holds(self, text: str) -> bool:
        """Whether a short ``text`` (a log field) carries one of the values in any known form."""
        return any(True for _ in self._scan_field(text.encode("latin-1", "replace"), "", patterns=False,
                                                  small=True))

    # -- the request -----------------------------------------------------------------------------------
    def scan(self, req: RequestParts, *, patterns: bool = True, skip_headers: frozenset[int] = frozenset(),
             history: History | None = None) -> list[Finding]:
        """Every finding in ``req``, deduplicated, in order. ``skip_headers`` are indexes into
        ``req.headers`` not to read (the slots where the proxy itself puts a credential); ``history``
        remembers small fields across requests (a value sent one piece per request)."""
        found: list[Finding] = []
        path, _, query = req.path.partition("?")
        # The host too: sub-domains of a wildcard entry are the agent's choice (``<hex>.allowed.example``).
        for where, text in (("host", req.host), ("path", path), ("query", query)):
            found += self._scan_field(text.encode("latin-1", "replace"), where, patterns=patterns, small=True)
        small_fields: list[tuple[str, bytes]] = [("host", req.host.encode("latin-1", "replace")),
                                                 ("path", path.encode("latin-1", "replace"))]
        small_fields += [(f"query {k}", v) for k, v in _query_values(query)]
        for i, (name, value) in enumerate(req.headers):
            if i in skip_headers:
                continue
            data = value.encode("latin-1", "replace")
            found += self._scan_field(data, f"header {name.lower()}", patterns=patterns, small=True)
            small_fields.append((f"header {name.lower()}", data))
        found += self._scan_split(small_fields)
        if history is not None:
            path_end = ("path end", path.rsplit("/", 1)[-1].encode("latin-1", "replace"))
            found += history.scan(self, req.host, [*small_fields[1:], path_end])
            # pieces in sub-domain labels meet under their parent domain
            label, _, parent = req.host.partition(".")
            found += history.scan(self, parent, [("host label", label.encode("latin-1", "replace"))])
        found += self._scan_body(req, patterns=patterns)
        return list(dict.fromkeys(found))

    def _scan_split(self, fields: list[tuple[str, bytes]]) -> Iterator[Finding]:
        """A value cut in two (or more, in order) across headers, query values and the path."""
        reduced = [(where, _reduce(data)) for where, data in fields]
        pairs = enumerate(reduced) if len(reduced) <= MAX_PAIR_FIELDS else iter(())
        for i, (where_a, a) in pairs:
            for j, (where_b, b) in enumerate(reduced):
                if i == j or not a or not b:
                    continue
                for form, needle, _ in self._forms:
                    if form in a + b and form not in a and form not in b:
                        yield Finding(needle.kind, f"{where_a}+{where_b}".replace("header ", ""),
                                      needle.name, "split")
        joined = b"".join(r for _, r in reduced)
        for form, needle, _ in self._forms:
            if form in joined and not any(form in r for _, r in reduced):
                yield Finding(needle.kind, "headers", needle.name, "split")

    def _scan_body(self, req: RequestParts, *, patterns: bool) -> Iterator[Finding]:
        if not req.body:
            return
        for coding in _codings(req.header("content-encoding")):
            yield Finding("unreadable-body", "body", encoding=coding)
            return
        for coding in _codings(req.header("transfer-encoding"), also_ok=("chunked",)):
            yield Finding("unreadable-body", "body", encoding=coding)
            return
        yield from self._scan_field(req.body, "body", patterns=patterns, small=False)
        content_type = (req.header("content-type") or [""])[0]
        budget = [MAX_UNPACKED]  # one budget for every archive in the request
        # Archives may sit in the body, in a multipart part, or base64'd inside a JSON or form field.
        blobs = [("body (base64)", blob, False) for blob in base64_blobs(req.body)]
        for part_where, part, decoded in [("body", req.body, False),
                                          *_multipart_parts(content_type, req.body), *blobs]:
            if isinstance(part, str):  # a part in an encoding we cannot read
                yield Finding("unreadable-body", part_where, encoding=part)
                continue
            if decoded:
                yield from self._scan_field(part, part_where, patterns=patterns, small=False)
            for inner_where, inner in unpack(part, part_where, budget=budget):
                if isinstance(inner, str):
                    yield Finding("unreadable-body", inner_where, encoding=inner)
                else:
                    yield from self._scan_field(inner, inner_where, patterns=patterns, small=False)


def _codings(values: list[str], also_ok: tuple[str, ...] = ()) -> Iterator[str]:
    for value in values:
        for raw in value.lower().split(","):
            coding = raw.strip()
            if coding not in _IDENTITY and coding not in also_ok:
                yield coding


def _query_values(query: str) -> Iterator[tuple[str, bytes]]:
    for pair in query.split("&"):
        key, _, value = pair.partition("=")
        if value:
            yield key[:40], value.encode("latin-1", "replace")


_BOUNDARY = re.compile(r'boundary="?([^";,]+)"?', re.I)


def _multipart_parts(content_type: str, body: bytes) -> Iterator[tuple[str, bytes | str, bool]]:
    """Each part's content, with ``True`` when it was decoded (base64, quoted-printable) and so needs
    its own scan (plain parts were read with the body), or the name of an encoding we cannot read."""
    match = _BOUNDARY.search(content_type) if content_type.lower().startswith("multipart/") else None
    if not match:
        return
    for n, chunk in enumerate(body.split(b"--" + match.group(1).encode("latin-1"))):
        head, sep, content = chunk.partition(b"\r\n\r\n")
        if not sep:
            head, sep, content = chunk.partition(b"\n\n")
        if not sep:
            continue
        headers = {k.strip().lower(): v.strip().lower() for k, _, v in
                   (line.decode("latin-1").partition(":") for line in head.splitlines()) if k.strip()}
        where = f"body part {n}"
        coding = headers.get("content-encoding", "")
        if coding not in _IDENTITY:
            yield where, coding, False
            continue
        cte = headers.get("content-transfer-encoding", "")
        if cte == "base64":
            try:
                decoded = base64.b64decode(re.sub(rb"\s+", b"", content.strip(b"-\r\n")), validate=False)
            except (binascii.Error, ValueError):
                yield where, "invalid base64", False
            else:
                yield where, decoded, True
        elif cte == "quoted-printable":
            yield where, quopri.decodestring(content), True
        else:
            # The part without the CRLF that belongs to the boundary, so archives are recognised.
            yield where, content[:-2] if content.endswith(b"\r\n") else content, False


class History:
    """What recent requests to each host carried in each small field (a query parameter, a header, the
    end of the path, the first label of the name), joined in arrival order: a value cut into pieces and
    sent one piece per request is seen once two pieces are in (whole, or as a fragment). Pieces the
    scanner refused stay in the window too, so the rest of the value is refused after them. Bounded:
    :data:`WINDOW` bytes per field, :data:`FIELDS` fields, oldest forgotten first."""

    def __init__(self) -> None:
        self._windows: OrderedDict[tuple[str, str], bytes] = OrderedDict()

    def scan(self, scanner: Scanner, host: str, fields: Iterable[tuple[str, bytes]]) -> list[Finding]:
        found: list[Finding] = []
        for where, data in fields:
            reduced = _reduce(unquote_to_bytes(data))
            if not reduced:
                continue
            key = (host, where)
            before = self._windows.pop(key, b"")
            window = (before + reduced)[-WINDOW:]
            self._windows[key] = window
            if len(self._windows) > FIELDS:
                self._windows.popitem(last=False)
            if before:  # a single piece is the request's own scan's to judge
                found += scanner.find_new(window, len(window) - len(reduced), f"{where} across requests")
        return found
