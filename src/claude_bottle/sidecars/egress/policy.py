"""The egress decision: may this request (or CONNECT) go out, and to which address? Pure standard library.

The same :meth:`Policy.check` serves plain HTTP, CONNECT and every request inside an intercepted
tunnel; :meth:`Policy.pin` judges the resolved addresses and returns the one to dial. The mitmproxy
addon only gathers inputs, applies verdicts and writes the audit lines.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from claude_bottle.sidecars.config import Rule
from claude_bottle.sidecars.egress import netcheck
from claude_bottle.sidecars.egress.hosts import HostError, matches, normalize_host

__all__ = ["DEFAULT_PORTS", "Policy", "Refusal", "Verdict", "refusal_body"]

# What an allow entry opens when it lists no ports: the web. Any other service on an allowed name
# (ssh, a database, an admin port) needs ``ports:`` on the entry.
DEFAULT_PORTS = (80, 443)


@dataclass(frozen=True)
class Refusal:
    """A request check's "no": ``rule`` names the check (``dlp``, ``credential-host``...), ``reason``
    says why in words a user can act on. It becomes a 403 and a deny line in the audit log."""

    rule: str
    reason: str


@dataclass(frozen=True)
class Verdict:
    """``rule`` names what decided: the allowlist entry that allowed (``api.example.com``,
    ``*.example.com``), or the refusing rule (``default-deny``, ``ip-literal``, ``bad-host``,
    ``method``, ``path``, ``private-address``, ``sni-mismatch``, ``host-mismatch``, ...)."""

    allowed: bool
    host: str
    rule: str
    reason: str
    entry: Rule | None = None  # the allowlist entry that matched (also set for method/path refusals)
    address: str | None = None  # the address to dial, once pinned

    @property
    def verdict(self) -> str:
        return "allow" if self.allowed else "deny"


def _deny(host: str, rule: str, reason: str, entry: Rule | None = None) -> Verdict:
    return Verdict(False, host, rule, reason, entry)


class Policy:
    def __init__(self, rules: Sequence[Rule], *, own_networks: Iterable[str] = ()) -> None:
        # Exact entries before wildcards, so an exact entry's methods/paths/flags win for its host.
        self.rules = tuple(sorted(rules, key=lambda r: r.host.startswith("*.")))
        self.own = netcheck.parse_networks(own_networks)

    def add_own_networks(self, cidrs: Iterable[str]) -> None:
        self.own = (*self.own, *netcheck.parse_networks(cidrs))

    def lookup(self, raw_host: str, *, port: int | None = None) -> Verdict:
        """The host-level decision (CONNECT, SNI, passthrough): is the host on the allowlist, and, when
        ``port`` is given, does a matching entry open that port?"""
        try:
            host = normalize_host(raw_host)
        except HostError as exc:
            return _deny(raw_host, exc.rule, exc.reason)
        refused: Verdict | None = None
        for rule in self.rules:
            if not matches(rule.host, host):
                continue
            if not _port_allowed(rule, port):
                refused = refused or _deny(host, "port", f"port {port} is not open for {rule.host} "
                                           f"(open: {', '.join(map(str, rule.ports or DEFAULT_PORTS))})",
                                           rule)
                continue
            return Verdict(True, host, rule.host, "allowlisted", rule)
        return refused or _deny(host, "default-deny", f"{host} is not on the egress allowlist")

    def check(self, raw_host: str, method: str | None = None, path: str | None = None, *,
              port: int | None = None) -> Verdict:
        """The request-level decision: host (and port), then the matching entries' methods and path
        prefixes. ``method``/``path`` of ``None`` (a CONNECT, whose inner requests are checked one by
        one later) pass the host check only."""
        first = self.lookup(raw_host, port=port)
        if not first.allowed or (method is None and path is None):
            return first
        host = first.host
        refused: Verdict | None = None
        for rule in self.rules:
            if not matches(rule.host, host) or not _port_allowed(rule, port):
                continue
            if method is not None and rule.methods and method.upper() not in rule.methods:
                refused = refused or _deny(host, "method", f"{method} is not allowed for {rule.host} "
                                           f"(allowed: {', '.join(rule.methods)})", rule)
                continue
            if path is not None and rule.paths and not _path_allowed(path, rule.paths):
                refused = refused or _deny(host, "path", f"{_path_only(path)} is not under an allowed path "
                                           f"of {rule.host} ({', '.join(rule.paths)})", rule)
                continue
            return Verdict(True, host, rule.host, "allowlisted", rule)
        assert refused is not None
        return refused

    def pin(self, verdict: Verdict, addresses: Sequence[str]) -> Verdict:
        """Judge every address ``verdict.host`` resolved to; allow with the first one as the address
        to dial, or refuse naming the offending address. The caller dials exactly ``address``."""
        if not verdict.allowed:
            return verdict
        if not addresses:
            return _deny(verdict.host, "unresolvable", f"{verdict.host} did not resolve", verdict.entry)
        private_ok = bool(verdict.entry and verdict.entry.private)
        for text in addresses:
            addr = ipaddress.ip_address(text.split("%", 1)[0])
            why = netcheck.refusal(addr, private_ok=private_ok, own=self.own)
            if why is not None:
                hint = "" if private_ok or why != "private" else " (mark the entry private: true to allow it)"
                return _deny(verdict.host, "private-address",
                             f"{verdict.host} resolves to {addr}, a {why} address{hint}", verdict.entry)
        return Verdict(True, verdict.host, verdict.rule, verdict.reason, verdict.entry, addresses[0])


def _port_allowed(rule: Rule, port: int | None) -> bool:
    return port is None or port in (rule.ports or DEFAULT_PORTS)


def _path_only(path: str) -> str:
    return path.split("?", 1)[0].split("#", 1)[0]


def _path_allowed(path: str, prefixes: Sequence[str]) -> bool:
    # Compared on the path without query, after refusing dot segments and encoded slashes that a
    # server could resolve to a different path than the one the prefix check saw.
    only = _path_only(path)
    lowered = only.lower()
    if "%2f" in lowered or "%5c" in lowered or "%2e" in lowered or "\\" in only:
        return False
    segments = only.split("/")
    if any(seg in (".", "..") for seg in segments):
        return False
    for prefix in prefixes:
        if prefix.endswith("/") and only.startswith(prefix):
            return True
        if only == prefix or only.startswith(prefix.rstrip("/") + "/"):
            return True
    return False


def refusal_body(verdict: Verdict, *, bottle: str, method: str, port: int | None = None,
                 bottle_file: str = "") -> str:
    """The text of a 403: what was refused, by which rule, and how to allow it. ``bottle_file`` is the
    host path of the bottle's definition (from bundle.yaml); a config rendered before it existed names
    the usual place instead."""
    host = f"[{verdict.host}]" if ":" in verdict.host and not verdict.host.startswith("[") else verdict.host
    where = f"{host}:{port}" if port else host
    lines = [f"claude-bottle egress proxy refused {method} {where}", f"rule: {verdict.rule}",
             f"reason: {verdict.reason}"]
    path = bottle_file or f"~/.claude-bottle/bottles/{bottle}.md"
    if verdict.rule == "default-deny":
        lines.append(f'to allow it: add "{verdict.host}" to egress.allow in {path}')
    elif verdict.rule == "port" and verdict.entry is not None:
        lines.append(f"to allow it: add {port} to the ports of {verdict.entry.host!r} "
                     f"in egress.allow in {path}")
    elif verdict.rule in ("method", "path") and verdict.entry is not None:
        lines.append(f"to allow it: widen the {verdict.rule}s of {verdict.entry.host!r} "
                     f"in egress.allow in {path}")
    elif verdict.rule == "private-address" and verdict.entry is not None and not verdict.entry.private:
        lines.append(f"to allow it: set private: true on {verdict.entry.host!r} in egress.allow in {path} "
                     "(loopback, link-local, metadata and the bottle's own networks stay refused)")
    elif verdict.rule == "ip-literal":
        lines.append(f"IP addresses are never allowed: use a host name and add it to egress.allow in {path}")
    if lines[-1].startswith(("to allow it", "IP addresses")):
        # A bottle's policy is fixed when it starts: say so, so nobody edits the file and retries here.
        lines.append("a change to that file applies to bottles started after it, not to this one")
    return "\n".join(lines) + "\n"
