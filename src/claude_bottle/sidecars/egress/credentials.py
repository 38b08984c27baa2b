"""The proxy's credential step: scan every allowed request, then put real credentials in their slots.

Registered by the addon in ``request_checks``. The addon calls it:

* as a request check, after the allowlist allowed a request (scan, then inject: :func:`.inject.decide`);
* ``check_host`` before it looks a name up (a sub-domain carrying a secret would reach DNS);
* ``check_message`` for each WebSocket message the agent sends;
* ``response`` for each response, and ``server_message`` for each WebSocket message the server sends,
  to keep a reflected real value from reaching the agent.

It reads flows through mitmproxy's attributes only (``method``, ``path``, ``port``, ``headers.fields``,
``raw_content``, ``metadata``), without importing mitmproxy, so the host's tests drive it with small
stand-ins. Every finding, injection and swap is an audit line naming the secret, never its value.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from claude_bottle.sidecars.audit import AuditLog, audit_record
from claude_bottle.sidecars.egress.dlp import History, Needle, RequestParts, Scanner
from claude_bottle.sidecars.egress.inject import (
    Credential,
    CredentialsMissing,
    CredentialStore,
    apply,
    decide,
)
from claude_bottle.sidecars.egress.policy import Refusal

if TYPE_CHECKING:
    from claude_bottle.sidecars.config import BundleConfig
    from claude_bottle.sidecars.egress.policy import Verdict

__all__ = ["INJECTED", "REDACTED_PATH", "WITHHELD_HOST", "CredentialCheck", "missing_reason", "request_parts"]

log = logging.getLogger("claude_bottle.egress")

REDACTED_PATH = "/[path withheld: it carried a finding]"
WITHHELD_HOST = "[name withheld: it carried a finding]"
INJECTED = "claude-bottle.injected"  # flow metadata: (host, secret names) the proxy put in the request


def missing_reason(slug: str) -> str:
    """What the agent (and the audit log) is told while the bottle's credentials are absent."""
    return ("this bottle's credentials are not in its egress proxy (the sidecar bundle restarted and "
            "lost them, or they have not arrived yet), so nothing may leave; on the host the user can "
            f"run `claude-bottle start {slug}` to give them again, or `claude-bottle down {slug}`")


def request_parts(request: Any, host: str) -> RequestParts | None:
    """What the scanner reads. ``host`` is the host the policy judged (the connection's, never the
    ``Host`` header). ``None`` when the body is not in memory (streamed), so it cannot be scanned."""
    body = request.raw_content
    if body is None:
        return None
    headers = tuple((k.decode("latin-1"), v.decode("latin-1")) for k, v in request.headers.fields)
    return RequestParts(method=request.method, host=host, path=request.path, headers=headers, body=body,
                        scheme=getattr(request, "scheme", "https"))


class CredentialCheck:
    name = "credentials"

    def __init__(self, cfg: BundleConfig, *, store: CredentialStore | None = None,
                 audit: AuditLog | None = None) -> None:
        self.store = store or CredentialStore(expected=cfg.credentials)
        self.slug = cfg.slug
        self.history = History()  # small fields across requests, per host (pieces sent one at a time)
        # Its own descriptor on the same O_APPEND file: each line is one write, so lines never mix.
        self.audit = audit or AuditLog(cfg.audit_log, max_bytes=cfg.audit_max_bytes)

    def _load(self) -> tuple[tuple[Credential, ...], Scanner] | Refusal:
        try:
            return self.store.refresh()
        except CredentialsMissing:
            return Refusal("credentials-missing", missing_reason(self.slug))
        except (OSError, ValueError, KeyError, TypeError) as exc:
            # Fail closed: a request must not leave unscanned, nor with a placeholder un-swapped.
            log.error("cannot read the bottle's credentials: %s", type(exc).__name__)
            return Refusal("credentials", "the proxy cannot read this bottle's credentials")

    def check_host(self, host: str, port: int | None = None) -> Refusal | None:
        """Judge a name before the proxy looks it up (CONNECT, plain HTTP): a sub-domain the agent
        chose that carries this bottle's secret or placeholder would hand it to that domain's DNS
        servers in the lookup itself. Own values only. The caller logs the refusal under
        :data:`WITHHELD_HOST`, never the name."""
        loaded = self._load()
        if isinstance(loaded, Refusal):
            return loaded
        decision = decide(RequestParts("CONNECT", host, ""), *loaded, dlp_exempt=True, history=self.history)
        for event in decision.events():
            self.audit.write(audit_record(source="egress", method="CONNECT", host=WITHHELD_HOST, port=port,
                                          **event))  # type: ignore[arg-type]
        return Refusal("dlp", decision.reason(WITHHELD_HOST)) if decision.refused else None

    def check_message(self, content: bytes, verdict: Verdict, *, port: int | None = None,
                      path: str | None = None) -> Refusal | None:
        """A WebSocket message from the agent, once its upgrade request passed: scanned like a body
        (nothing is ever injected into a message)."""
        loaded = self._load()
        if isinstance(loaded, Refusal):
            return loaded
        exempt = bool(verdict.entry is not None and verdict.entry.dlp_exempt)
        message = RequestParts("WEBSOCKET", verdict.host, "", body=content)
        decision = decide(message, *loaded, dlp_exempt=exempt)
        for event in decision.events():
            self.audit.write(audit_record(source="egress", method="WEBSOCKET", host=verdict.host, port=port,
                                          path=path, **event))  # type: ignore[arg-type]
        return Refusal("dlp", decision.reason(verdict.host)) if decision.refused else None

    def __call__(self, flow: Any, verdict: Verdict) -> Refusal | None:
        req = flow.request
        parts = request_parts(req, verdict.host)
        if parts is None:
            return Refusal("dlp", "the body was streamed, so it could not be scanned")
        if getattr(req, "trailers", None):
            return Refusal("dlp", "request trailers cannot be scanned; send those fields as headers")
        loaded = self._load()
        if isinstance(loaded, Refusal):
            return loaded
        credentials, scanner = loaded
        exempt = bool(verdict.entry is not None and verdict.entry.dlp_exempt)
        decision = decide(parts, credentials, scanner, dlp_exempt=exempt, history=self.history)
        if decision.refused and any("path" in f.where for f in decision.findings):
            # The audit log records paths: one that carries a secret must not put it on the host's
            # disk. The request is refused, so rewriting its path changes nothing that leaves.
            req.path = REDACTED_PATH
        for event in decision.events():
            self.audit.write(audit_record(source="egress", method=req.method, host=verdict.host,
                                          port=req.port, path=req.path, **event))  # type: ignore[arg-type]
        if decision.refused:
            return Refusal("dlp", decision.reason(verdict.host))
        if decision.injections:
            req.headers.fields = tuple((k.encode("latin-1"), v.encode("latin-1"))
                                       for k, v in apply(parts.headers, decision))
            flow.metadata[INJECTED] = (verdict.host, tuple(i.name for i in decision.injections))
        return None

    def response(self, flow: Any) -> None:
        """A host that got a real value may reflect it (an echo endpoint, an error quoting the header):
        on those flows only, the value is swapped back for its placeholder before the agent sees the
        response; one it cannot swap (encoded, unreadable body) replaces the response with a 502."""
        injected = flow.metadata.get(INJECTED) if flow.response is not None else None
        if not injected:
            return
        host, names = injected
        loaded = self._load()
        credentials = () if isinstance(loaded, Refusal) else tuple(c for c in loaded[0] if c.name in names)
        resp = flow.response
        try:
            body = resp.content or b""
        except ValueError:  # a Content-Encoding mitmproxy cannot decode
            body = None
        swapped = []
        for c in credentials:
            real, stand_in = c.value.encode(), c.placeholder.encode()
            fields = resp.headers.fields
            if body is not None and real in body:
                body = body.replace(real, stand_in)
                swapped.append(c.name)
            if any(real in v for _, v in fields):
                resp.headers.fields = tuple((k, v.replace(real, stand_in)) for k, v in fields)
                swapped.append(c.name)
        if swapped and body is not None:
            resp.content = body
        left = [] if body is None else [
            f for f in Scanner(Needle("secret", c.name, c.value) for c in credentials).scan(RequestParts(
                "RESPONSE", host, "", tuple((k.decode("latin-1"), v.decode("latin-1")) for k, v in
                                           resp.headers.fields), body), patterns=False)]
        for name in dict.fromkeys(swapped):
            self.audit.write(audit_record(
                source="egress", kind="redact", verdict="redact", rule=f"secret:{name}", host=host,
                method=flow.request.method, port=flow.request.port, path=flow.request.path, secret=name,
                reason=f"the response carried the value of {name}; the agent got its placeholder"))
        if body is None or left:
            why = "an unreadable body" if body is None else "; ".join(f.describe() for f in left)
            self.audit.write(audit_record(
                source="egress", kind="redact", verdict="deny", rule="dlp-response", host=host,
                method=flow.request.method, port=flow.request.port, path=flow.request.path,
                reason=f"response withheld from the agent: {why}"))
            flow.response = type(resp).make(
                502, f"claude-bottle: the response from {host} was withheld: it carried {why}, and the "
                     "response to a request the proxy put a credential in may not show it to the agent\n",
                {"Content-Type": "text/plain; charset=utf-8"})

    def server_message(self, flow: Any, message: Any) -> bool:
        """A WebSocket message from the server, on a connection whose upgrade request got a real value:
        like :meth:`response`, the value is swapped for its placeholder, and a message still carrying
        it in a form that cannot be swapped (encoded) is dropped. ``True`` means drop it."""
        injected = flow.metadata.get(INJECTED)
        if not injected:
            return False
        host, names = injected
        loaded = self._load()
        if isinstance(loaded, Refusal):
            return True  # fail closed: without the values nothing can be checked
        credentials = tuple(c for c in loaded[0] if c.name in names)
        content = message.content or b""
        swapped = [c for c in credentials if c.value.encode() in content]
        for c in swapped:
            content = content.replace(c.value.encode(), c.placeholder.encode())
        if swapped:
            message.content = content
        left = Scanner(Needle("secret", c.name, c.value) for c in credentials).scan(
            RequestParts("WEBSOCKET", host, "", body=content), patterns=False)
        for c in swapped:
            self.audit.write(audit_record(
                source="egress", kind="redact", verdict="redact", rule=f"secret:{c.name}", host=host,
                method="WEBSOCKET", port=flow.request.port, path=flow.request.path, secret=c.name,
                reason=f"a WebSocket message carried the value of {c.name}; the agent got its placeholder"))
        if left:
            self.audit.write(audit_record(
                source="egress", kind="redact", verdict="deny", rule="dlp-response", host=host,
                method="WEBSOCKET", port=flow.request.port, path=flow.request.path,
                reason="WebSocket message withheld from the agent: "
                       + "; ".join(f.describe() for f in left)))
        return bool(left)
