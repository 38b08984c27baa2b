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
* ``tcp_start``/``udp_start``: anything that is not HTTP(S) inside a tunnel is cut.
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Protocol

from mitmproxy import connection, http, tcp, tls, udp
from mitmproxy.proxy import server_hooks

from claude_bottle.sidecars import netinfo
from claude_bottle.sidecars.audit import AuditLog, audit_record
from claude_bottle.sidecars.config import BundleConfig
from claude_bottle.sidecars.egress.credentials import CredentialCheck
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
    pins: dict[tuple[str, int], str] = field(default_factory=dict)


async def resolve(host: str, port: int) -> list[str]:
    infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return list(dict.fromkeys(str(info[4][0]) for info in infos))


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
        self.audit = audit or AuditLog(cfg.audit_log)
        self.checks = list(request_checks(cfg) if checks is None else checks)
        self.clients: dict[str, _ClientState] = {}
        self.resolve = resolve

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
        body = refusal_body(verdict, bottle=self.cfg.bottle, method=flow.request.method, port=port)
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

    # -- hooks ----------------------------------------------------------------------------------
    async def http_connect(self, flow: http.HTTPFlow) -> None:
        req = flow.request
        verdict = await self._pin(self.policy.check(req.host), req.port)
        self._log("connect", verdict, host=verdict.host, port=req.port, method="CONNECT",
                  client=flow.client_conn)
        state = self._state(flow.client_conn)
        if not verdict.allowed:
            state.tunnel = None
            self._respond(flow, verdict, req.port)
            return
        state.tunnel = _Tunnel(verdict.host, req.port, verdict)
        assert verdict.address is not None
        state.pins[(verdict.host, req.port)] = verdict.address

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
        if tunnel.verdict.entry is not None and tunnel.verdict.entry.passthrough:
            data.ignore_connection = True

    async def request(self, flow: http.HTTPFlow) -> None:
        req = flow.request
        state = self._state(flow.client_conn)
        tunnel = state.tunnel
        if tunnel is not None and tunnel.sni_refused is not None:
            verdict = Verdict(False, tunnel.host, "sni-mismatch",
                              f"TLS SNI {tunnel.sni_refused!r} differs from the CONNECT host {tunnel.host}")
        else:
            verdict = self.policy.check(req.host, req.method, req.path)
            if verdict.allowed:
                verdict = self._host_header_mismatch(req, verdict) or await self._pin(verdict, req.port)
        if verdict.allowed:
            for check in self.checks:
                refusal = check(flow, verdict)
                if refusal is not None:
                    verdict = Verdict(False, verdict.host, refusal.rule, refusal.reason, verdict.entry)
                    break
        self._log("request", verdict, host=verdict.host, port=req.port, method=req.method, path=req.path,
                  client=flow.client_conn)
        if not verdict.allowed:
            self._respond(flow, verdict, req.port)
            return
        assert verdict.address is not None
        state.pins[(verdict.host, req.port)] = verdict.address

    @staticmethod
    def _host_header_mismatch(req: http.Request, verdict: Verdict) -> Verdict | None:
        """A ``Host`` header naming another host than the one judged (and dialled) would let an
        allowed server's shared front end route the request elsewhere (domain fronting)."""
        header = req.host_header
        if not header:
            return None
        name = header.rsplit(":", 1)[0] if not header.startswith("[") else header
        try:
            same = normalize_host(name) == verdict.host
        except HostError:
            same = False
        if same:
            return None
        return Verdict(False, verdict.host, "host-mismatch",
                       f"the Host header {header!r} names another host than the request target "
                       f"{verdict.host}",
                       verdict.entry)

    async def server_connect(self, data: server_hooks.ServerConnectionHookData) -> None:
        server = data.server
        if server.address is None:
            return
        host, port = server.address
        state = self._state(data.client)
        verdict = self.policy.lookup(host)
        if state.tunnel is not None and state.tunnel.sni_refused is not None:
            verdict = Verdict(False, state.tunnel.host, "sni-mismatch",
                              "TLS SNI differs from the CONNECT host")
        if verdict.allowed:
            pinned = state.pins.get((verdict.host, port))
            verdict = self.policy.pin(verdict, [pinned]) if pinned else await self._pin(verdict, port)
        if not verdict.allowed:
            self._log("connection", verdict, host=verdict.host, port=port, client=data.client)
            server.error = f"claude-bottle egress: {verdict.rule}: {verdict.reason}"
            return
        assert verdict.address is not None
        if server.sni is None:
            server.sni = verdict.host  # so upstream TLS names (and verifies) the host, not the address
        server.address = (verdict.address, port)

    def tcp_start(self, flow: tcp.TCPFlow) -> None:
        self._cut(flow, "tcp")

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
