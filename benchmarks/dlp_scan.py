"""Request scanning cost per request (not a test, numbers only): ``python benchmarks/dlp_scan.py``.

The scanner runs in the proxy on every allowed request, so its cost is added latency. Measured on
requests shaped like Claude Code's (a JSON conversation of growing size, the usual headers, one
injection slot) with a bottle holding two credentials, and on random base64 uploads; median of
``--repeat`` runs, in milliseconds.
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "src"))

from claude_bottle.sidecars.egress.dlp import (
    RequestParts,
    Scanner,
)
from claude_bottle.sidecars.egress.inject import Credential, decide, needles

B64URL = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"


def _token(prefix: str) -> str:
    return prefix + "".join(B64URL[b % 64] for b in os.urandom(95))


CREDS = (
    Credential("ANTHROPIC_API_KEY", _token("sk-ant-api03-"), ("api.anthropic.com",), "x-api-key", "{value}",
               _token("sk-ant-api03-")),
    Credential("CLAUDE_CODE_OAUTH_TOKEN", _token("sk-ant-oat01-"), ("api.anthropic.com",), "Authorization",
               "Bearer {value}", _token("sk-ant-oat01-")),
)
HEADERS = (("host", "api.anthropic.com"), ("content-type", "application/json"),
           ("anthropic-version", "2023-06-01"), ("anthropic-beta", "claude-code-20250219"),
           ("user-agent", "claude-cli/2.0.0 (external, cli)"), ("x-stainless-lang", "js"),
           ("x-stainless-runtime", "node"), ("accept", "application/json"),
           ("x-api-key", CREDS[0].placeholder))


def conversation(size: int) -> bytes:
    turn = ("Here is the file you asked for:\n```python\ndef add(a, b):\n    return a + b\n```\n"
            "Run the tests with `pytest -q` and tell me what fails.\n")
    messages, total = [], 0
    while total < size:
        messages.append({"role": "user" if len(messages) % 2 == 0 else "assistant", "content": turn})
        total += len(turn) + 40
    return json.dumps({"model": "claude-sonnet-4", "max_tokens": 8192, "stream": True,
                       "messages": messages}).encode()


def measure(req: RequestParts, scanner: Scanner, repeat: int) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        decide(req, CREDS, scanner)
        times.append(time.perf_counter() - start)
    return statistics.median(times) * 1000


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeat", type=int, default=15)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    scanner = Scanner(needles(CREDS))
    rows = []
    for size in (10_000, 100_000, 1_000_000):
        req = RequestParts("POST", "api.anthropic.com", "/v1/messages?beta=true", HEADERS, conversation(size))
        ms = measure(req, scanner, args.repeat)
        rows.append({"request": f"conversation {size // 1000} kB", "ms": round(ms, 2)})
    for size in (1_000_000, 10_000_000):
        body = base64.b64encode(os.urandom(size * 3 // 4))
        req = RequestParts("POST", "uploads.example.com", "/", (("content-type", "text/plain"),), body)
        ms = measure(req, scanner, 5)
        rows.append({"request": f"base64 upload {size // 1_000_000} MB", "ms": round(ms, 2)})
    if args.json:
        print(json.dumps(rows))
    else:
        for row in rows:
            print(f"{row['request']:<26} {row['ms']:>9.2f} ms")


if __name__ == "__main__":
    main()
