"""Credential injection: swap a placeholder for the real value, only where the bottle says.

The host pipes the bottle's credentials into the bundle (``claude_bottle.secrets``); this module reads
them and decides, per request, in this order:

1. **Slots.** A header named by a secret, on a request to one of that secret's hosts, whose value is
   exactly the secret's format around its placeholder (``Bearer <placeholder>``). Only slots are
   ever rewritten, and the scanner does not read them (the placeholder has a token's shape on purpose).
2. **Scan** everything else (:mod:`.dlp`): the bottle's real values anywhere, on any host; a
   placeholder outside a slot on a host that is not its own (sending a placeholder to its own host
   leaks nothing, and Claude Code may quote its environment in a conversation); well-known token
   formats unless the host is ``dlp_exempt``. Any finding refuses the request.
3. **Inject** into the slots, after the scan: the real value the proxy adds is never scanned, and a
   request the scanner refused never gets one.

Pure standard library; the addon applies the :class:`Decision`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .dlp import Finding, History, Needle, RequestParts, Scanner
from .hosts import HostError, matches, normalize_host, normalize_pattern

__all__ = ["Credential", "CredentialStore", "CredentialsMissing", "Decision", "Injection", "Scrubber",
           "apply", "decide", "parse_credentials"]

# Where the host's ``docker exec -i`` writes them (``claude_bottle.secrets``): /dev/shm is a tmpfs in
# every Docker container, so the values live in RAM only, and the agent (another container or VM) has
# no view of it.
CREDENTIALS_FILE = Path("/dev/shm/claude-bottle/credentials.json")  # noqa: S108 - the bundle's tmpfs


@dataclass(frozen=True)
class Credential:
    """One secret as the proxy uses it. ``value`` is real: never print, log or write it to disk."""

    name: str
    placeholder: str
    hosts: tuple[str, ...]
    header: str
    format: str
    value: str = field(repr=False)

    def header_value(self, value: str) -> str:
        return self.format.replace("{value}", value)

    def serves(self, host: str) -> bool:
        """Whether ``host`` is one of this secret's hosts, compared as the allowlist compares them."""
        try:
            canonical = normalize_host(host)
            return any(matches(normalize_pattern(pattern), canonical) for pattern in self.hosts)
        except (HostError, ValueError):
            return False

    def to_json(self) -> dict[str, object]:
        return {"name": self.name, "placeholder": self.placeholder, "hosts": list(self.hosts),
                "header": self.header, "format": self.format, "value": self.value}


def parse_credentials(data: bytes) -> tuple[Credential, ...]:
    doc = json.loads(data)
    if doc.get("version") != 1:
        raise ValueError("unknown credentials format version")
    return tuple(
        Credential(name=str(c["name"]), placeholder=str(c["placeholder"]), hosts=tuple(map(str, c["hosts"])),
                   header=str(c["header"]), format=str(c["format"]), value=str(c["value"]))
        for c in doc["credentials"]
    )


class CredentialsMissing(Exception):
    """The bottle has credentials, but they are not (or no longer) in the bundle's tmpfs."""


class CredentialStore:
    """The credentials file, re-read when it changes: the bundle starts before the host delivers it.

    ``expected`` names the secrets the bottle declares (bundle.yaml). While any are expected and the
    file is absent, :meth:`refresh` raises :class:`CredentialsMissing` instead of answering "none":
    before the host delivers them, and after a restart emptied the tmpfs, the scanner would otherwise
    know no secret to look for and no placeholder to refuse (decision 0010)."""

    def __init__(self, path: Path = CREDENTIALS_FILE, *, expected: tuple[str, ...] = ()) -> None:
        self.path = path
        self.expected = expected
        self._stamp: tuple[int, int] | None = None
        self.credentials: tuple[Credential, ...] = ()
        self.scanner = Scanner(())

    def refresh(self) -> tuple[tuple[Credential, ...], Scanner]:
        try:
            st = self.path.stat()
        except FileNotFoundError:
            if self.expected:
                self._stamp, self.credentials, self.scanner = None, (), Scanner(())
                raise CredentialsMissing(", ".join(self.expected)) from None
            return self.credentials, self.scanner
        stamp = (st.st_mtime_ns, st.st_size)
        if stamp != self._stamp:
            credentials = parse_credentials(self.path.read_bytes())
            unknown = {c.name for c in credentials} - set(self.expected)
            if self.expected and unknown:
                raise ValueError(f"credentials the bottle does not declare: {sorted(unknown)}")
            self.credentials = credentials
            self.scanner = Scanner(needles(self.credentials))
            self._stamp = stamp
        return self.credentials, self.scanner


WITHHELD = "[withheld: it carried a secret of this bottle]"


class Scrubber:
    """The last look at an audit line before it is written: a field carrying this bottle's secret or
    placeholder in any form the scanner knows (a refused host name, a ``Host`` header quoted in a
    reason, a DNS query name) is withheld, so no secret reaches the log on the host's disk."""

    def __init__(self, store: CredentialStore | None = None) -> None:
        self.store = store or CredentialStore()

    def __call__(self, record: dict[str, Any]) -> dict[str, Any]:
        try:
            credentials, scanner = self.store.refresh()
        except (OSError, ValueError, KeyError, TypeError, CredentialsMissing):
            return record  # nothing to compare with (and the proxy refuses every request meanwhile)
        if not credentials:
            return record
        return {k: WITHHELD if isinstance(v, str) and len(v) >= 8 and scanner.holds(v) else v
                for k, v in record.items()}


def needles(credentials: tuple[Credential, ...]) -> list[Needle]:
    out = []
    for c in credentials:
        out += [Needle("secret", c.name, c.value), Needle("placeholder", c.name, c.placeholder)]
    return out


@dataclass(frozen=True)
class Injection:
    """Put ``value`` (real: never log it) in header number ``index`` of the request."""

    name: str
    header: str
    index: int
    value: str = field(repr=False)


@dataclass(frozen=True)
class Decision:
    findings: tuple[Finding, ...] = ()
    injections: tuple[Injection, ...] = ()

    @property
    def refused(self) -> bool:
        return bool(self.findings)

    def events(self) -> list[dict[str, object]]:
        """Audit fields (``claude_bottle.sidecars.audit.audit_record`` keywords) for each finding or
        injection: secret names and headers, never values."""
        if self.refused:
            # ``rule`` names the finding so the one-line views (``logs --egress``) show it.
            return [{"kind": "dlp", "verdict": "deny", "reason": f.describe(), "finding": f.kind,
                     "rule": ":".join(filter(None, ("dlp", f.kind, f.secret))),
                     **{k: v for k, v in f.to_json().items() if k != "kind"}}
                    for f in self.findings]
        return [{"kind": "inject", "verdict": "inject", "rule": f"secret:{i.name}",
                 "reason": f"{i.name} put in header {i.header.lower()}", "secret": i.name,
                 "header": i.header.lower()} for i in self.injections]

    def reason(self, host: str) -> str:
        """One line for the request's audit record and the 403: each finding, then what would allow
        it (only format findings can be allowed, by exempting the host)."""
        text = "; ".join(f.describe() for f in self.findings)
        kinds = {f.kind for f in self.findings}
        if "foreign-credential" in kinds:
            return text + f" (on {host} the proxy supplies the credential: send the placeholder from the" \
                " bottle's environment)"
        if kinds & {"secret", "placeholder"}:
            return text + " (a bottle's secrets go only to the hosts its definition names for them)"
        if kinds <= {"unreadable-body"}:
            return text + " (send the body without Content-Encoding so it can be scanned)"
        if kinds <= {"plain-http", "unreadable-body"}:
            return text + f" (credentials go only over HTTPS: use https://{host})"
        return text + f" (if {host} must receive such tokens, set dlp_exempt: true on its egress.allow rule)"


def decide(req: RequestParts, credentials: tuple[Credential, ...], scanner: Scanner, *,
           dlp_exempt: bool = False, history: History | None = None) -> Decision:
    slots: list[Injection] = []
    for index, (name, value) in enumerate(req.headers):
        for c in credentials:
            if (name.lower() == c.header.lower() and c.serves(req.host)
                    and value.strip() == c.header_value(c.placeholder)):
                slots.append(Injection(c.name, name, index, c.header_value(c.value)))
    own = {c.name for c in credentials if c.serves(req.host)}
    findings = _foreign_credentials(req, credentials, {s.index for s in slots}) + tuple(
        f for f in scanner.scan(req, patterns=not dlp_exempt, skip_headers=frozenset(s.index for s in slots),
                                history=history)
        if not (f.kind == "placeholder" and f.secret in own)
    )
    if req.scheme != "https":  # a real value never crosses the network in clear text
        findings += tuple(Finding("plain-http", f"header {s.header.lower()}", s.name) for s in slots)
    return Decision(findings=findings, injections=() if findings else tuple(slots))


def _foreign_credentials(req: RequestParts, credentials: tuple[Credential, ...],
                         slots: set[int]) -> tuple[Finding, ...]:
    """A credential header on a secret's own host must carry that secret's placeholder. Anything else
    there is a credential the agent brought itself (an attacker's API key, say), and the secret's host
    would then file whatever the request carries under someone else's account: an exfiltration path
    through a host the bottle trusts, which format scanning misses for tokens of unknown shape and on
    ``dlp_exempt`` hosts."""
    guarded = {c.header.lower(): c.name for c in credentials if c.serves(req.host)}
    return tuple(
        Finding("foreign-credential", f"header {name.lower()}", guarded[name.lower()])
        for index, (name, _value) in enumerate(req.headers)
        if name.lower() in guarded and index not in slots
    )


def apply(headers: tuple[tuple[str, str], ...], decision: Decision) -> tuple[tuple[str, str], ...]:
    """``headers`` with the decision's injections made (same order, same names)."""
    by_index = {i.index: i.value for i in decision.injections}
    return tuple((k, by_index.get(n, v)) for n, (k, v) in enumerate(headers))
