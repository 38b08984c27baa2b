"""The mitmproxy addon: gathers each decision's inputs, applies :mod:`.policy` and writes the audit log.

Runs only in the bundle (it imports mitmproxy). Where each guarantee is enforced:

* ``http_connect``: the CONNECT host is judged (allowlist, IP literals) and resolved; a refusal is a
  403 before any tunnel exists.
* ``tls_clienthello``: the SNI must name the CONNECT host; a mismatch is intercepted (never passed
  through) and every request in it answered 403. Passthrough hosts are relayed untouched after that.
* ``request``: every HTTP request, plain or inside a tunnel, is judged by the same
  :meth:`Policy.check` (host, ``Host`` header, method, path), then by the pluggable request checks
  (credential injection and scanning add theirs to :func:`request_checks`).
* ``server_connect``: the last gate before a socket opens. The host is judged again and its address
  resolved and checked *here*, and the checked address is written into the connection, so the proxy
  dials exactly what passed (no second lookup a DNS-rebinding server could answer differently).
* layer choice: anything that is not HTTP(S) inside a tunnel is cut before a byte of it is relayed
  (mitmproxy's raw TCP/UDP layers are replaced by :class:`.guard.Refused`, see
  :func:`.guard.install_layer_guard`; ``rawtcp`` is off too).
  ``tcp_start``/``udp_start`` stay as a second line.
* ``requestheaders``: the host, port, method, path and header checks run on the headers, so a refused
  request's body is never buffered; every body is capped (:func:`.guard.install_body_cap`).

Every hook fails closed (:func:`.guard.fail_closed`): an exception refuses what it was judging and is
an audit line, never a request forwarded unchecked (decision 0010).
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Protocol

from mitmproxy import connection, http, tcp, tls, udp
from mitmproxy.proxy import server_hooks

from claude_bottle.sidecars import netinfo
from claude_bottle.sidecars.audit import AuditLog, audit_record
from claude_bottle.sidecars.config import BundleConfig
from claude_bottle.sidecars.egress import guard
from claude_bottle.sidecars.egress.credentials import INJECTED, WITHHELD_HOST, CredentialCheck
from claude_bottle.sidecars.egress.headers import authority_port, forbidden_header_chars
from claude_bottle.sidecars.egress.hosts import HostError, normalize_host
from claude_bottle.sidecars.egress.policy import Policy, Refusal, Verdict, refusal_body

__all__ = ["EgressAddon", "RequestCheck", "request_checks"]

class RequestCheck(Protocol):
    """One step of the request path, run in order after the allowlist allowed a request. It may
    rewrite the request (inject a credential) or refuse it by returning a :class:`Refusal`."""

    name: str

    def __call__(self, flow: http.HTTPFlow, verdict: Verdict) -> Refusal | None: ...


def request_checks(cfg: BundleConfig) -> list[RequestCheck]:
    """The checks every allowed request passes through, in order. Credential injection and request
    scanning (issue 6) register theirs here."""
    # One step, scan then inject (decision 0007): the scanner must see the request before a real value
    # is put in, and no request it refuses may get one.
    return [CredentialCheck(cfg)]


@dataclass
class _Tunnel:
    host: str
    port: int
    verdict: Verdict
    sni_refused: str | None = None


@dataclass
class _ClientState:
    tunnel: _Tunnel | None = None
    broken: str | None = None  # a check failed on this connection: everything on it is refused
    pins: dict[tuple[str, int], str] = field(default_factory=dict)   # (host, port) -> checked address
    dialled: dict[tuple[str, int], Verdict] = field(default_factory=dict)  # (address, port) -> verdict


async def resolve(host: str, port: int) -> list[str]:
    infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return list(dict.fromkeys(str(info[4][0]) for info in infos))


def _host_part(authority: str) -> str:
    """``host`` of ``host[:port]`` (``[v6]`` kept bracketed, so it reads as the IP literal it is)."""
    if authority.startswith("["):
        return authority[: authority.find("]") + 1] if "]" in authority else authority
    return authority.rsplit(":", 1)[0] if authority.count(":") == 1 else authority


def _names_port(authority: str) -> bool:
    tail = authority[authority.rfind("]") + 1:] if authority.startswith("[") else authority
    return tail.count(":") == 1


_WS_REFUSED = "claude-bottle.websocket-refused"
_EARLY = "claude-bottle.verdict"      # flow metadata: the verdict reached at the request's headers
_REFUSED_BODY_ALLOWANCE = 64 * 1024  # what of a refused request's body is read before the 403


class EgressAddon:
    def __init__(
        self,
        cfg: BundleConfig,
        *,
        policy: Policy | None = None,
        audit: AuditLog | None = None,
        checks: Sequence[RequestCheck] | None = None,
        discover_networks: bool = True,
    ) -> None:
        self.cfg = cfg
        self.policy = policy or Policy(cfg.rules, own_networks=cfg.own_networks)
        if discover_networks:
            self.policy.add_own_networks(netinfo.own_networks())
        self.audit = audit or AuditLog(cfg.audit_log, max_bytes=cfg.audit_max_bytes)
        self.checks = list(request_checks(cfg) if checks is None else checks)
        self.clients: dict[str, _ClientState] = {}
        self.resolve = resolve
        guard.install_body_cap(self._body_limit, self._body_refused,
                               lambda flow: bool(flow.metadata.get(INJECTED)))
        guard.install_layer_guard(self._raw_refused)

    # -- helpers --------------------------------------------------------------------------------
    def _state(self, client: connection.Client) -> _ClientState:
        return self.clients.setdefault(client.id, _ClientState())

    def _log(self, kind: str, verdict: Verdict | Refusal, *, host: str, port: int | None,
             method: str | None = None, path: str | None = None,
             client: connection.Client | None = None) -> None:
        allowed = isinstance(verdict, Verdict) and verdict.allowed
        self.audit.write(audit_record(
            source="egress", kind=kind, method=method, host=host, port=port, path=path,
            verdict="allow" if allowed else "deny", rule=verdict.rule, reason=verdict.reason,
            client=client.peername[0] if client and client.peername else None,
        ))

    def _respond(self, flow: http.HTTPFlow, verdict: Verdict, port: int | None) -> None:
        status = 502 if verdict.rule == "unresolvable" else 403
        body = refusal_body(verdict, bottle=self.cfg.bottle, method=flow.request.method, port=port,
                            bottle_file=self.cfg.bottle_file)
        flow.response = http.Response.make(
            status, body.encode(), {"Content-Type": "text/plain; charset=utf-8",
                                    "X-Claude-Bottle-Rule": verdict.rule},
        )

    async def _pin(self, verdict: Verdict, port: int) -> Verdict:
        if not verdict.allowed:
            return verdict
        try:
            addresses = await self.resolve(verdict.host, port)
        except OSError:
            addresses = []
        return self.policy.pin(verdict, addresses)

    # -- failing closed ---------------------------------------------------------------------------
    def _internal(self, exc: BaseException) -> Verdict:
        return Verdict(False, "?", "internal-error",
                       f"the proxy's check failed ({type(exc).__name__}), so the request was refused")

    def _flow_failed(self, exc: BaseException, flow: http.HTTPFlow) -> None:
        """A request-side hook raised: answer 403, forget any credential put in, log the refusal."""
        tunnel = self._state(flow.client_conn).tunnel
        host = tunnel.host if tunnel is not None else flow.request.host
        port = tunnel.port if tunnel is not None else flow.request.port
        verdict = replace(self._internal(exc), host=host)
        flow.metadata[_EARLY] = verdict
        self._log("request", verdict, host=host, port=port, method=flow.request.method,
                  path=flow.request.path, client=flow.client_conn)
        self._respond(flow, verdict, port)

    def _response_failed(self, exc: BaseException, flow: http.HTTPFlow) -> None:
        verdict = replace(self._internal(exc), host=flow.request.host)
        self._log("response", verdict, host=flow.request.host, port=flow.request.port,
                  method=flow.request.method, path=flow.request.path, client=flow.client_conn)
        flow.response = http.Response.make(
            502, f"claude-bottle: the response was withheld: {verdict.reason}\n".encode(),
            {"Content-Type": "text/plain; charset=utf-8", "X-Claude-Bottle-Rule": verdict.rule})

    def _message_failed(self, exc: BaseException, flow: http.HTTPFlow) -> None:
        verdict = replace(self._internal(exc), host=flow.request.host)
        self._log("websocket", verdict, host=flow.request.host, port=flow.request.port, method="WEBSOCKET",
                  path=flow.request.path, client=flow.client_conn)
        flow.metadata[_WS_REFUSED] = True
        if flow.websocket is not None and flow.websocket.messages:
            flow.websocket.messages[-1].drop()

    def _connection_failed(self, exc: BaseException, data: server_hooks.ServerConnectionHookData) -> None:
        verdict = self._internal(exc)
        self._state(data.client).broken = verdict.reason
        address = data.server.address
        self._log("connection", verdict, host=str(address[0]) if address else "?",
                  port=address[1] if address else None, client=data.client)
        data.server.error = f"claude-bottle egress: {verdict.rule}: {verdict.reason}"

    def _hello_failed(self, exc: BaseException, data: tls.ClientHelloData) -> None:
        verdict = self._internal(exc)
        self._state(data.context.client).broken = verdict.reason
        self._log("tls", verdict, host="?", port=None, client=data.context.client)
        data.ignore_connection = False  # intercept, so every request in it is answered 403

    def _raw_failed(self, exc: BaseException, flow: tcp.TCPFlow | udp.UDPFlow) -> None:
        flow.kill()

    # -- request bodies -------------------------------------------------------------------------
    def _body_limit(self, flow: http.HTTPFlow) -> int:
        early = flow.metadata.get(_EARLY)
        if early is not None and not early.allowed:
            return _REFUSED_BODY_ALLOWANCE
        return self.cfg.request_body_max_bytes

    def _body_refused(self, flow: http.HTTPFlow, size: int) -> str:
        """The audit line and the 413's text for a body past its cap (the rest of it is never read)."""
        early = flow.metadata.get(_EARLY)
        tunnel = self._state(flow.client_conn).tunnel
        host = tunnel.host if tunnel is not None else flow.request.host
        port = tunnel.port if tunnel is not None else flow.request.port
        if early is not None and not early.allowed:
            message = (f"claude-bottle egress proxy refused {flow.request.method} {host} "
                       f"(rule: {early.rule}: {early.reason}); its body was not read")
            return message
        cap = self.cfg.request_body_max_bytes
        verdict = Verdict(False, host, "body-too-large",
                          f"the request body ({size} bytes or more) is over the proxy's scanning cap of "
                          f"{cap} bytes (setting request_body_max_bytes, "
                          "environment CLAUDE_BOTTLE_REQUEST_BODY_MAX_BYTES)")
        self._log("request", verdict, host=host, port=port, method=flow.request.method,
                  path=flow.request.path, client=flow.client_conn)
        return f"claude-bottle egress proxy: rule body-too-large: {verdict.reason}"

    # -- hooks ----------------------------------------------------------------------------------
    def _judge_name(self, verdict: Verdict, port: int) -> Verdict:
        """Before a name is looked up, the checks that judge names (request scanning: a sub-domain
        carrying this bottle's secret would reach DNS servers in the lookup itself)."""
        for check in self.checks if verdict.allowed else ():
            judge = getattr(check, "check_host", None)
            refusal = judge(verdict.host, port) if judge is not None else None
            if refusal is not None:
                return Verdict(False, WITHHELD_HOST, refusal.rule, refusal.reason, verdict.entry)
        return verdict

    def _raw_refused(self, context: Any) -> None:
        """mitmproxy chose its raw layer for a tunnel (its first bytes are neither HTTP nor TLS): the
        guard put a refusing layer in its place; this writes the audit line."""
        tunnel = self._state(context.client).tunnel
        address = context.server.address
        host = tunnel.host if tunnel is not None else (str(address[0]) if address else "?")
        port = tunnel.port if tunnel is not None else (address[1] if address else None)
        self._log("tcp", Refusal("non-http", "a tunnel carried something that is not HTTP or TLS; only "
                                 "HTTP(S) may leave"), host=host, port=port, client=context.client)

    @guard.fail_closed(_flow_failed)
    async def http_connect(self, flow: http.HTTPFlow) -> None:
        req = flow.request
        state = self._state(flow.client_conn)
        if state.tunnel is not None:
            # A CONNECT inside a tunnel (HTTP/2 streams can carry one) would re-key this connection's
            # tunnel while its other requests still go to the first server. No client needs it.
            verdict = Verdict(False, state.tunnel.host, "nested-connect",
                              f"CONNECT {req.host}:{req.port} inside the tunnel to {state.tunnel.host} "
                              "is refused")
        else:
            verdict = self._header_refusal(req, req.host) or await self._pin(
                self._judge_name(self.policy.check(req.host, port=req.port), req.port), req.port)
        self._log("connect", verdict, host=verdict.host, port=req.port, method="CONNECT",
                  client=flow.client_conn)
        if not verdict.allowed:
            self._respond(flow, verdict, req.port)
            return
        state.tunnel = _Tunnel(verdict.host, req.port, verdict)
        assert verdict.address is not None
        state.pins[(verdict.host, req.port)] = verdict.address

    @guard.fail_closed(_hello_failed)
    def tls_clienthello(self, data: tls.ClientHelloData) -> None:
        state = self._state(data.context.client)
        tunnel = state.tunnel
        if tunnel is None:
            return  # TLS without a CONNECT cannot happen in regular mode; server_connect still gates
        sni = data.client_hello.sni
        if sni is not None:
            try:
                same = normalize_host(sni) == tunnel.host
            except HostError:
                same = False
            if not same:
                tunnel.sni_refused = sni
                refusal = Refusal("sni-mismatch",
                                  f"TLS SNI {sni!r} differs from the CONNECT host {tunnel.host}")
                self._log("tls", refusal, host=tunnel.host, port=tunnel.port, client=data.context.client)
                # Intercept (never relay) so the client gets a 403 saying why, and no byte of it
                # reaches a server under the other name.
                data.ignore_connection = False
                data.establish_server_tls_first = False
                return
        if tunnel.verdict.entry is not None and tunnel.verdict.entry.passthrough and state.broken is None:
            data.ignore_connection = True

    async def _verdict_at_headers(self, flow: http.HTTPFlow) -> Verdict:
        """Everything about a request that its headers decide: the target (tunnel or plain), the
        allowlist with method and path, header characters, ``Host`` and request target, the address."""
        req = flow.request
        state = self._state(flow.client_conn)
        tunnel = state.tunnel
        if state.broken is not None:
            return Verdict(False, tunnel.host if tunnel else req.host, "internal-error", state.broken)
        if tunnel is None:
            # A plain proxy request: the target is the request's own host, resolved and pinned now.
            verdict = self.policy.check(req.host, req.method, req.path, port=req.port)
            if verdict.allowed:
                verdict = self._header_refusal(req, verdict.host, verdict) or await self._pin(
                    self._judge_name(verdict, req.port), req.port)
            return verdict
        if tunnel.sni_refused is not None:
            return Verdict(False, tunnel.host, "sni-mismatch",
                           f"TLS SNI {tunnel.sni_refused!r} differs from the CONNECT host {tunnel.host}")
        # Inside a tunnel mitmproxy sends every request to the tunnel's server (req.host is that
        # server's address), so the tunnel's host is judged, with this request's method and path.
        verdict = self.policy.check(tunnel.host, req.method, req.path, port=tunnel.port)
        if verdict.allowed:
            verdict = self._header_refusal(req, verdict.host, verdict, port=tunnel.port) or self.policy.pin(
                verdict, [tunnel.verdict.address] if tunnel.verdict.address else [])
        return verdict

    @guard.fail_closed(_flow_failed)
    async def requestheaders(self, flow: http.HTTPFlow) -> None:
        """Decide on the headers: a refused request is answered before its body is read (what the
        client still sends is capped at a small allowance, then the connection is cut)."""
        verdict = await self._verdict_at_headers(flow)
        flow.metadata[_EARLY] = verdict
        if not verdict.allowed:
            tunnel = self._state(flow.client_conn).tunnel
            port = tunnel.port if tunnel is not None else flow.request.port
            self._log("request", verdict, host=verdict.host, port=port, method=flow.request.method,
                      path=flow.request.path, client=flow.client_conn)
            self._respond(flow, verdict, port)

    @guard.fail_closed(_flow_failed)
    async def request(self, flow: http.HTTPFlow) -> None:
        req = flow.request
        state = self._state(flow.client_conn)
        tunnel = state.tunnel
        early = flow.metadata.get(_EARLY)
        if early is not None and not early.allowed:
            return  # refused at its headers: answered and logged there
        # Addons (and tests) may reach ``request`` without ``requestheaders``: decide here then.
        verdict = early if early is not None else await self._verdict_at_headers(flow)
        if verdict.allowed:
            for check in self.checks:
                refusal = check(flow, verdict)
                if refusal is not None:
                    verdict = Verdict(False, verdict.host, refusal.rule, refusal.reason, verdict.entry)
                    break
        port = tunnel.port if tunnel is not None else req.port
        self._log("request", verdict, host=verdict.host, port=port, method=req.method, path=req.path,
                  client=flow.client_conn)
        if not verdict.allowed:
            flow.metadata[_EARLY] = verdict
            self._respond(flow, verdict, port)
            return
        assert verdict.address is not None
        state.pins[(verdict.host, port)] = verdict.address

    @staticmethod
    def _header_refusal(req: http.Request, host: str, verdict: Verdict | None = None, *,
                        port: int | None = None) -> Verdict | None:
        """Headers that would let a back end route or read the request differently from how it was
        judged: a CR, LF or NUL in any header, or a ``Host`` header (absolute-form target, HTTP/2
        ``:authority``) naming another host or port than the one dialled (domain fronting)."""
        entry = verdict.entry if verdict is not None else None
        bad = forbidden_header_chars(req.headers.fields)
        if bad is not None:
            return Verdict(False, host, "header-chars", f"{bad}; such a header could hide another one",
                           entry)
        if req.method == "CONNECT":
            return None
        dialled = req.port if port is None else port
        for label, value in (("Host header", req.host_header), ("request target", req.authority)):
            if not value:
                continue
            try:
                same = normalize_host(_host_part(value)) == host
            except HostError:
                same = False
            if not same:
                return Verdict(False, host, "host-mismatch",
                               f"the {label} {value!r} names another host than {host}", entry)
            # No port named is the scheme's default, which a client omits; a named one must be dialled.
            named = authority_port(value, req.scheme) if _names_port(value) else dialled
            if named != dialled:
                return Verdict(False, host, "host-mismatch",
                               f"the {label} {value!r} names another port than {dialled}", entry)
        return None

    @guard.fail_closed(_connection_failed)
    async def server_connect(self, data: server_hooks.ServerConnectionHookData) -> None:
        server = data.server
        if server.address is None:
            return
        host, port = server.address
        state = self._state(data.client)
        earlier = state.dialled.get((host, port))
        if state.broken is not None:
            verdict = Verdict(False, host, "internal-error", state.broken)
        elif state.tunnel is not None and state.tunnel.sni_refused is not None:
            verdict = Verdict(False, state.tunnel.host, "sni-mismatch",
                              "TLS SNI differs from the CONNECT host")
        elif earlier is not None:
            # A reconnect to an address this client's checked name was pinned to (inside a tunnel
            # mitmproxy reconnects to the address, not the name): judge that address again.
            verdict = self.policy.pin(earlier, [host])
        else:
            verdict = self.policy.lookup(host, port=port)
            pinned = state.pins.get((verdict.host, port))
            verdict = self.policy.pin(verdict, [pinned]) if pinned else await self._pin(verdict, port)
        if not verdict.allowed:
            self._log("connection", verdict, host=verdict.host, port=port, client=data.client)
            server.error = f"claude-bottle egress: {verdict.rule}: {verdict.reason}"
            return
        assert verdict.address is not None
        if server.sni is None:
            server.sni = verdict.host  # upstream TLS names (and verifies) the host, not the address
        server.address = (verdict.address, port)
        state.dialled[(verdict.address, port)] = verdict

    @guard.fail_closed(_response_failed)
    def response(self, flow: http.HTTPFlow) -> None:
        """Checks that look at what comes back (a host reflecting the credential the proxy put in)."""
        for check in self.checks:
            hook = getattr(check, "response", None)
            if hook is not None:
                hook(flow)

    @guard.fail_closed(_message_failed)
    def websocket_message(self, flow: http.HTTPFlow) -> None:
        """What the agent sends on an upgraded (WebSocket) connection never passes ``request``: the
        checks that read messages (request scanning) judge each one. After a refusal nothing more
        from the agent passes on that connection (mitmproxy 12 cannot kill a flow in transit, so
        every later client message is dropped instead)."""
        assert flow.websocket is not None
        message = flow.websocket.messages[-1]
        if not message.from_client:
            # What the server sends back passes the checks that read responses (a host reflecting the
            # credential the proxy put into the upgrade request must not show it to the agent).
            for check in self.checks:
                hook = getattr(check, "server_message", None)
                if hook is not None and hook(flow, message):
                    message.drop()
                    return
            return
        if flow.metadata.get(_WS_REFUSED):
            message.drop()
            return
        tunnel = self._state(flow.client_conn).tunnel
        port = tunnel.port if tunnel is not None else flow.request.port
        verdict = self.policy.lookup(tunnel.host if tunnel is not None else flow.request.host)
        refusal: Refusal | None = None if verdict.allowed else Refusal(verdict.rule, verdict.reason)
        for check in self.checks if refusal is None else ():
            judge = getattr(check, "check_message", None)
            refusal = judge(message.content, verdict, port=port, path=flow.request.path) if judge else None
            if refusal is not None:
                break
        if refusal is not None:
            self._log("websocket", refusal, host=verdict.host, port=port, method="WEBSOCKET",
                      path=flow.request.path, client=flow.client_conn)
            message.drop()
            flow.metadata[_WS_REFUSED] = True

    @guard.fail_closed(_raw_failed)
    def tcp_start(self, flow: tcp.TCPFlow) -> None:
        self._cut(flow, "tcp")

    @guard.fail_closed(_raw_failed)
    def tcp_message(self, flow: tcp.TCPFlow) -> None:
        # Unreachable while next_layer refuses raw layers; if one ever runs, nothing it carries passes.
        flow.messages[-1].content = b""
        flow.kill()

    @guard.fail_closed(_raw_failed)
    def udp_start(self, flow: udp.UDPFlow) -> None:
        self._cut(flow, "udp")

    def _cut(self, flow: tcp.TCPFlow | udp.UDPFlow, kind: str) -> None:
        address = flow.server_conn.address
        host, port = (address[0], address[1]) if address else ("?", None)
        refusal = Refusal("non-http",
                          f"raw {kind.upper()} through the proxy is refused; only HTTP(S) may leave")
        self._log(kind, refusal, host=str(host), port=port, client=flow.client_conn)
        flow.kill()

    def client_disconnected(self, client: connection.Client) -> None:
        self.clients.pop(client.id, None)

    def done(self) -> None:
        self.audit.close()
