"""``claude-bottle check`` against real bottles: a healthy one passes every class, and one given a way
out (its agent joined to a second, ordinary network where a listener answers) fails ``direct-tcp``.

This machine may have no internet, so an outside address never answers whatever the bottle does: the
hole is proved with a local listener sitting on one of the addresses the probe always tries, reachable
only through the network the test connects the agent to.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator

import pytest
from tests.integration.dockerkit import TEST_LABEL, Env, docker
from tests.integration.upstream import _sidecars_image

from claude_bottle.backends.base import ProbeTargets
from claude_bottle.check import CLASSES, probe_config
from claude_bottle.identity import Names

pytestmark = pytest.mark.integration

# Addresses the probe always tries (direct-tcp), each in a /24 that may be free on this engine.
HOLES = ("10.0.0.1:80", "100.64.0.1:80", "172.16.0.1:80")


def _up(env: Env, *args: str) -> tuple[str, str]:
    out = env.cli("up", "--detach", "--yes", "--json", "--no-workspace", *args)
    return json.loads(out.stdout)["slug"], out.stderr


@pytest.fixture
def bottle(env: Env, images: None) -> Iterator[str]:
    slug, _ = _up(env)
    try:
        yield slug
    finally:
        env.cli("down", slug, "--yes", "--discard", check=False)


def test_a_healthy_bottle_passes_every_class(env: Env, bottle: str) -> None:
    table = env.cli("check", bottle, check=False, timeout=300)
    assert table.returncode == 0, table.stdout + table.stderr
    assert table.stdout.count("PASS") == len(CLASSES) and "FAIL" not in table.stdout
    data = json.loads(env.cli("check", bottle, "--json", timeout=300).stdout)
    assert data["ok"] is True and data["complete"] is True and data["slug"] == bottle
    assert [c["name"] for c in data["classes"]] == list(CLASSES)
    assert all(c["ok"] for c in data["classes"]), [c for c in data["classes"] if not c["ok"]]
    probes = {(p["class"], p["probe"]): p["result"] for p in data["probes"]}
    # what the backend told the probe was tried: the default bridge's gateway (the host)
    assert ("metadata-and-host", "tcp 172.17.0.1:22") in probes
    assert probes[("ip-literals", "proxy CONNECT 1.1.1.1:443")] == "403 (ip-literal)"
    assert probes[("capabilities", "uid")] == "1000"


def test_up_check_hands_over_a_bottle_that_passes(env: Env, images: None) -> None:
    slug, stderr = _up(env, "--check")
    try:
        assert f"containment check: all {len(CLASSES)} classes pass" in stderr
    finally:
        env.cli("down", slug, "--yes", "--discard", check=False)


@pytest.fixture
def hole(env: Env, images: None) -> Iterator[tuple[str, str]]:
    """A labelled, ordinary (not internal) network holding a listener on one of :data:`HOLES`: the
    (network, "ip:port") a bottle must never reach."""
    assert all(h in probe_config(ProbeTargets())["direct_tcp"] for h in HOLES)
    name = f"cb-check-hole-{uuid.uuid4().hex[:8]}"
    labels = ("--label", f"{TEST_LABEL}={env.home}")
    for target in HOLES:
        ip, port = target.split(":")
        subnet = ip.rsplit(".", 1)[0] + ".0/24"
        gateway = ip.rsplit(".", 1)[0] + ".254"
        if docker("network", "create", *labels, "--subnet", subnet, "--gateway", gateway, name, check=False):
            break
    else:
        pytest.skip(f"none of {', '.join(HOLES)} has a free /24 on this engine")
    try:
        docker("run", "-d", "--name", name, *labels, "--network", name, "--ip", ip, "--user", "0:0",
               "--entrypoint", "python3", _sidecars_image(), "-m", "http.server", port, "--bind", ip)
        deadline = time.monotonic() + 30
        ready = f"import socket; socket.create_connection(('{ip}', {port}), 2); print('up')"
        while "up" not in docker("exec", name, "python3", "-c", ready, check=False):
            assert time.monotonic() < deadline, docker("logs", name, check=False)
            time.sleep(0.2)
        yield name, target
    finally:
        docker("rm", "-f", name, check=False)
        docker("network", "rm", name, check=False)


def test_a_bottle_with_a_way_out_fails_direct_tcp(env: Env, bottle: str, hole: tuple[str, str]) -> None:
    network, target = hole
    agent = Names(bottle).agent
    docker("network", "connect", network, agent)
    try:
        result = env.cli("check", bottle, "--json", check=False, timeout=300)
    finally:
        docker("network", "disconnect", "--force", network, agent, check=False)
    assert result.returncode == 1, result.stdout + result.stderr
    data = json.loads(result.stdout)
    classes = {c["name"]: c for c in data["classes"]}
    assert data["ok"] is False and classes["direct-tcp"]["ok"] is False
    assert ": open" in classes["direct-tcp"]["detail"]
    # the listener answered through the hole (and, here, whatever the new route leads to may answer
    # for outside addresses too)
    assert {"class": "direct-tcp", "probe": f"tcp {target}", "result": "open", "ok": False} in data["probes"]
    assert "direct-tcp" in result.stderr
    # the walls that do not depend on the network still hold
    assert classes["capabilities"]["ok"] and classes["docker-socket"]["ok"]
