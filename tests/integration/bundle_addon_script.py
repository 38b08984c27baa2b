"""Runs INSIDE the sidecars image (Python 3.13 + mitmproxy), driven by test_bundle_addon.py: the addon's
hooks called with mitmproxy's own test flows and a scripted resolver, to show what a live proxy cannot
show on demand (a DNS answer that changes between the check and the connect). Prints one JSON object."""

import asyncio
import json
import sys

from mitmproxy import connection, websocket
from mitmproxy.proxy import server_hooks
from mitmproxy.test import tflow
from wsproto.frame_protocol import Opcode

from claude_bottle.sidecars.audit import AuditLog
from claude_bottle.sidecars.config import BundleConfig, Rule
from claude_bottle.sidecars.egress.addon import EgressAddon


class Rebinding:
    """Answers a public address first, then loopback: a DNS-rebinding server."""

    def __init__(self, answers):
        self.answers = list(answers)
        self.calls = []

    async def __call__(self, host, port):
        self.calls.append(host)
        return [self.answers.pop(0) if len(self.answers) > 1 else self.answers[0]]


def addon(resolver):
    cfg = BundleConfig(slug="t-aaaaa", bottle="t", rules=(Rule("rebind.test"), Rule("*.example.org")))
    a = EgressAddon(cfg, audit=AuditLog(sys.argv[1]), discover_networks=False)
    a.resolve = resolver
    return a


def hook(host, port, client):
    server = connection.Server(address=(host, port))
    return server_hooks.ServerConnectionHookData(server=server, client=client)


def connect_flow(host, port=443):
    flow = tflow.tflow()
    flow.request.method = "CONNECT"
    flow.request.host, flow.request.port = host, port
    return flow


async def main():
    out = {}
    # 1. CONNECT checked and pinned to the public answer; the connect dials that address, no new lookup.
    resolver = Rebinding(["93.184.216.34", "127.0.0.1"])
    a = addon(resolver)
    flow = connect_flow("rebind.test")
    await a.http_connect(flow)
    data = hook("rebind.test", 443, flow.client_conn)
    await a.server_connect(data)
    out["pinned"] = {"response": flow.response and flow.response.status_code,
                     "address": list(data.server.address), "sni": data.server.sni,
                     "error": data.server.error, "lookups": len(resolver.calls)}
    # 2. A reconnect inside the tunnel (mitmproxy reconnects to the address) is re-judged and allowed.
    again = hook("93.184.216.34", 443, flow.client_conn)
    await a.server_connect(again)
    out["reconnect"] = {"address": list(again.server.address), "error": again.server.error}
    # 3. A connection nobody checked yet (no CONNECT/request before it): resolved here, judged, refused.
    resolver = Rebinding(["127.0.0.1"])
    b = addon(resolver)
    client = tflow.tclient_conn()
    late = hook("rebind.test", 443, client)
    await b.server_connect(late)
    out["unchecked"] = {"error": late.server.error, "lookups": len(resolver.calls)}
    # 4. An IP address never reaches a socket, even at the last gate.
    raw = hook("10.0.0.1", 443, client)
    await b.server_connect(raw)
    out["ip"] = {"error": raw.server.error}
    # 5. A plain request whose check saw a public answer dials that answer even if DNS now says loopback.
    resolver = Rebinding(["93.184.216.34", "127.0.0.1"])
    c = addon(resolver)
    req = tflow.tflow()
    req.request.host, req.request.port, req.request.scheme = "www.example.org", 80, "http"
    req.request.headers["host"] = "www.example.org"
    await c.request(req)
    conn = hook("www.example.org", 80, req.client_conn)
    await c.server_connect(conn)
    out["plain"] = {"response": req.response and req.response.status_code,
                    "address": list(conn.server.address), "lookups": len(resolver.calls)}
    # 6. A second CONNECT on a connection that already is a tunnel is refused; the tunnel is unchanged.
    inner = connect_flow("www.example.org")
    inner.client_conn = flow.client_conn
    await a.http_connect(inner)
    out["nested"] = {"response": inner.response and inner.response.status_code,
                     "tunnel": a.clients[flow.client_conn.id].tunnel.host}
    # 7. Every hook fails closed: a check that raises refuses what it judged (issue 15).
    out["fail_closed"] = await fail_closed()
    print(json.dumps(out))


class Exploding:
    """A request check whose every entry point raises, as the ZIP64 unpacker once did."""

    name = "exploding"

    def __call__(self, flow, verdict):
        raise OverflowError("boom")

    def check_host(self, host, port=None):
        raise OverflowError("boom")

    def check_message(self, content, verdict, *, port=None, path=None):
        raise OverflowError("boom")

    def response(self, flow):
        raise OverflowError("boom")

    def server_message(self, flow, message):
        raise OverflowError("boom")


async def fail_closed():
    cfg = BundleConfig(slug="t-aaaaa", bottle="t", rules=(Rule("rebind.test"),))
    a = EgressAddon(cfg, audit=AuditLog(sys.argv[1]), checks=[Exploding()], discover_networks=False)
    a.resolve = Rebinding(["93.184.216.34"])
    got = {}
    connect = connect_flow("rebind.test")
    await a.http_connect(connect)
    got["connect"] = connect.response and connect.response.status_code
    plain = tflow.tflow()
    plain.request.host, plain.request.port, plain.request.scheme = "rebind.test", 80, "http"
    plain.request.headers["host"] = "rebind.test"
    await a.requestheaders(plain)
    await a.request(plain)
    got["request"] = plain.response and plain.response.status_code
    answered = tflow.tflow(resp=True)
    answered.metadata["claude-bottle.injected"] = ("rebind.test", ("K",))
    a.response(answered)
    got["response"] = answered.response.status_code
    ws = tflow.twebsocketflow()
    ws.websocket.messages.append(websocket.WebSocketMessage(Opcode.TEXT, True, b"hi"))
    a.websocket_message(ws)
    got["ws_client_dropped"] = ws.websocket.messages[-1].dropped
    ws.websocket.messages.append(websocket.WebSocketMessage(Opcode.TEXT, True, b"again"))
    a.websocket_message(ws)
    got["ws_later_dropped"] = ws.websocket.messages[-1].dropped
    server = tflow.twebsocketflow()
    server.metadata["claude-bottle.injected"] = ("rebind.test", ("K",))
    server.websocket.messages.append(websocket.WebSocketMessage(Opcode.TEXT, False, b"back"))
    a.websocket_message(server)
    got["ws_server_dropped"] = server.websocket.messages[-1].dropped

    async def broken_resolver(host, port):
        raise OverflowError("resolver boom")

    b = EgressAddon(cfg, audit=AuditLog(sys.argv[1]), checks=[], discover_networks=False)
    b.resolve = broken_resolver
    b.policy.pin = lambda verdict, addresses: (_ for _ in ()).throw(OverflowError("pin boom"))
    data = hook("rebind.test", 443, tflow.tclient_conn())
    await b.server_connect(data)
    got["server_connect"] = data.server.error
    return got


asyncio.run(main())
