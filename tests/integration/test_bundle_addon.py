"""The egress addon's pinning, inside the real sidecars image: the address that passed the check is the
one dialled, whatever DNS answers afterwards. (A live proxy cannot be made to see DNS change on demand,
so the hooks are driven with mitmproxy's own test flows and a scripted resolver; see
bundle_addon_script.py.)"""

from __future__ import annotations

import json
import subprocess
import tempfile
from pathlib import Path

import pytest
from tests.integration.dockerkit import HOST_CA, TEST_LABEL, Env

from claude_bottle.backends.base import NullProgress
from claude_bottle.config import Settings
from claude_bottle.runner import SubprocessRunner
from claude_bottle_docker.images import ensure_images

SCRIPT = Path(__file__).with_name("bundle_addon_script.py")


@pytest.fixture(scope="module")
def result(env: Env) -> dict[str, dict[str, object]]:
    settings = Settings(home=env.home, extra_ca_certs=HOST_CA if HOST_CA.is_file() else None)
    refs = ensure_images(runner=SubprocessRunner(), settings=settings, progress=NullProgress())
    with tempfile.TemporaryDirectory() as tmp:
        proc = subprocess.run(
            ["docker", "run", "--rm", "-i", "--label", f"{TEST_LABEL}={env.home}", "--network", "none",
             "--mount", f"type=bind,source={tmp},target=/audit", "--entrypoint", "python3", refs.sidecars,
             "-", "/audit/egress.jsonl"],
            input=SCRIPT.read_text(), capture_output=True, text=True, timeout=120, check=False)
        assert proc.returncode == 0, proc.stderr
        out = json.loads(proc.stdout.strip().splitlines()[-1])
        out["audit"] = [json.loads(line) for line in (Path(tmp) / "egress.jsonl").read_text().splitlines()]
    return out


def test_connect_dials_the_checked_address_without_a_second_lookup(result):
    pinned = result["pinned"]
    assert pinned["response"] is None  # no refusal: the tunnel opens
    assert pinned["address"] == ["93.184.216.34", 443]
    assert pinned["sni"] == "rebind.test"  # upstream TLS still names (and verifies) the host
    assert pinned["error"] is None
    assert pinned["lookups"] == 1


def test_reconnect_to_the_pinned_address_is_allowed(result):
    assert result["reconnect"] == {"address": ["93.184.216.34", 443], "error": None}


def test_unchecked_connection_is_resolved_judged_and_refused_at_the_last_gate(result):
    assert "private-address" in result["unchecked"]["error"] and "loopback" in result["unchecked"]["error"]
    assert result["unchecked"]["lookups"] == 1
    assert "ip-literal" in result["ip"]["error"]
    rules = [(r["kind"], r["rule"]) for r in result["audit"]]
    assert ("connection", "private-address") in rules and ("connection", "ip-literal") in rules


def test_plain_request_dials_what_its_check_saw(result):
    assert result["plain"] == {"response": None, "address": ["93.184.216.34", 80], "lookups": 1}


def test_connect_inside_a_tunnel_is_refused(result):
    assert result["nested"] == {"response": 403, "tunnel": "rebind.test"}
    assert ("connect", "nested-connect") in [(r["kind"], r["rule"]) for r in result["audit"]]


def test_every_hook_fails_closed_when_a_check_raises(result):
    """Issue 15: an exception in a check (the ZIP64 unpacker's OverflowError) once let mitmproxy
    forward the request unscanned. Now each hook refuses what it was judging, with an audit line."""
    got = result["fail_closed"]
    assert got["connect"] == 403 and got["request"] == 403
    assert got["response"] == 502
    assert got["ws_client_dropped"] and got["ws_later_dropped"] and got["ws_server_dropped"]
    assert "internal-error" in got["server_connect"]
    internal = [r for r in result["audit"] if r["rule"] == "internal-error"]
    assert {r["kind"] for r in internal} >= {"request", "response", "websocket", "connection"}, internal
    assert all(r["verdict"] == "deny" for r in internal)
