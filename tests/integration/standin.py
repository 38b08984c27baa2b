"""Stand-ins for the hosts Claude Code contacts: one HTTPS container (test CA) answering under every
candidate name, recording each request (host, method, path, the last characters of a credential), and
answering the model API with a fixed reply (``STANDIN-REPLY``, streamed or not); anything else gets
``{}``. The candidate names come from the Claude Code binary's own URLs, so a host a bottle must allow
shows up either here (allowed) or as a refusal in the bottle's audit log (not allowed)."""

from __future__ import annotations

from tests.integration.testca import TlsService

__all__ = ["CANDIDATES", "REPLY", "StandIns"]

REPLY = "STANDIN-REPLY"
# Every host name of Anthropic's, and of the services Claude Code 2.x names, seen in its binary.
CANDIDATES = (
    "api.anthropic.com", "platform.claude.com", "claude.ai", "console.anthropic.com", "code.claude.com",
    "downloads.claude.ai", "statsig.anthropic.com", "mcp-proxy.anthropic.com", "www.anthropic.com",
    "docs.anthropic.com", "status.anthropic.com", "storage.googleapis.com", "sentry.io",
    "http-intake.logs.us5.datadoghq.com", "api.statsig.com", "statsig.com", "featuregates.org",
    "github.com", "api.github.com", "raw.githubusercontent.com", "registry.npmjs.org",
)

SERVER = r'''import json, ssl, sys, threading, http.server, time
LOG = "/tmp/requests.jsonl"
lock = threading.Lock()
def sse(model):
    events = [
        ("message_start", {"type": "message_start", "message": {"id": "msg_standin", "type": "message", "role": "assistant", "model": model, "content": [], "stop_reason": None, "stop_sequence": None, "usage": {"input_tokens": 10, "output_tokens": 1}}}),
        ("content_block_start", {"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}}),
        ("content_block_delta", {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": "STANDIN-REPLY"}}),
        ("content_block_stop", {"type": "content_block_stop", "index": 0}),
        ("message_delta", {"type": "message_delta", "delta": {"stop_reason": "end_turn", "stop_sequence": None}, "usage": {"output_tokens": 3}}),
        ("message_stop", {"type": "message_stop"}),
    ]
    return "".join(f"event: {e}\ndata: {json.dumps(d)}\n\n" for e, d in events).encode()
class H(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    def handle_one(self):
        n = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(n) if n else b""
        with lock, open(LOG, "a") as f:
            f.write(json.dumps({"host": self.headers.get("Host"), "method": self.command, "path": self.path,
                                "auth": {k: v[-6:] for k, v in self.headers.items() if k.lower() in ("x-api-key", "authorization")}}) + "\n")
        if self.command == "POST" and self.path.startswith("/v1/messages"):
            try:
                req = json.loads(body or b"{}")
            except ValueError:
                req = {}
            model = req.get("model", "claude-standin")
            if req.get("stream"):
                out = sse(model); ctype = "text/event-stream"
            else:
                out = json.dumps({"id": "msg_standin", "type": "message", "role": "assistant", "model": model,
                                  "content": [{"type": "text", "text": "STANDIN-REPLY"}], "stop_reason": "end_turn",
                                  "stop_sequence": None, "usage": {"input_tokens": 10, "output_tokens": 3}}).encode()
                ctype = "application/json"
        else:
            out = b"{}"; ctype = "application/json"
        self.send_response(200); self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(out))); self.end_headers(); self.wfile.write(out)
    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = handle_one
    def log_message(self, *a): pass
srv = http.server.ThreadingHTTPServer(("0.0.0.0", 443), H)
ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER); ctx.load_cert_chain("/certs/server.pem", "/certs/server.key")
srv.socket = ctx.wrap_socket(srv.socket, server_side=True)
srv.serve_forever()
'''  # noqa: E501 - a program, not Python source


class StandIns(TlsService):
    names = CANDIDATES
    script = SERVER
    prefix = "cb-standin"

    def received(self) -> list[dict[str, object]]:
        return self.records()
