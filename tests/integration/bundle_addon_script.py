"""Runs INSIDE the sidecars image (Python 3.13 + mitmproxy), driven by test_bundle_addon.py: the addon's
hooks called with mitmproxy's own test flows and a scripted resolver, to show what a live proxy cannot
show on demand (a DNS answer that changes between the check and the connect). Prints one JSON object."""

import asyncio
import json
import sys

from mitmproxy import connection
from mitmproxy.proxy import server_hooks
from mitmproxy.test import tflow

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
    print(json.dumps(out))


asyncio.run(main())
