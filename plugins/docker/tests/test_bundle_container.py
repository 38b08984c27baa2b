from __future__ import annotations

import json
from pathlib import Path

import pytest

from claude_bottle.errors import BottleError
from claude_bottle.runner import Result
from claude_bottle_docker.bundle import BundleSpec, Mount, NetworkAttach, Publish, create_commands, wait_ready


def spec(**kw):
    base = dict(name="claude-bottle-sidecars-x-aaaaa", image="claude-bottle-sidecars:1",
                labels={"dev.claude-bottle.slug": "x-aaaaa"},
                networks=(NetworkAttach("egress-net"), NetworkAttach("internal-net", ("egress", "git-gate"))),
                mounts=(Mount(Path("/s/stage"), "/etc/claude-bottle"),
                        Mount(Path("/s/logs"), "/var/log/claude-bottle", read_only=False)))
    base.update(kw)
    return BundleSpec(**base)


def test_created_on_the_first_network_then_connected_with_aliases():
    create, connect = create_commands(spec(), {})
    argv = create.argv
    assert argv[:2] == ("docker", "create")
    assert argv[argv.index("--network") + 1] == "egress-net" and argv.count("--network") == 1
    assert "--network-alias" not in argv
    assert "type=bind,source=/s/stage,target=/etc/claude-bottle,readonly" in argv
    assert "type=bind,source=/s/logs,target=/var/log/claude-bottle" in argv
    assert "--label" in argv and "dev.claude-bottle.slug=x-aaaaa" in argv
    sysctls = [argv[i + 1] for i, a in enumerate(argv) if a == "--sysctl"]
    assert sysctls == ["net.ipv4.ip_forward=0", "net.ipv6.conf.all.forwarding=0"]  # never a router
    assert connect.argv == ("docker", "network", "connect", "--alias", "egress", "--alias", "git-gate",
                            "internal-net", "claude-bottle-sidecars-x-aaaaa")


def test_published_ports_and_first_network_aliases_for_other_topologies():
    s = spec(networks=(NetworkAttach("bundle-net", ("egress",)),),
             publish=(Publish("127.0.0.7", 41000, 3128), Publish("127.0.0.7", 41001, 53, "udp")))
    (create,) = create_commands(s, {"TOKEN": "tok-value-123"})
    argv = create.argv
    assert argv[argv.index("--network-alias") + 1] == "egress"
    assert "127.0.0.7:41000:3128" in argv and "127.0.0.7:41001:53/udp" in argv


def _inspect(running):
    info = {"State": {"Running": running}, "NetworkSettings": {"Networks": {}}}
    return Result((), 0, stdout=json.dumps([info]))


class Clock:
    def __init__(self):
        self.now = 0.0

    def __call__(self):
        return self.now

    def sleep(self, seconds):
        self.now += seconds


def test_wait_ready_returns_once_the_proxy_accepts(recorder):
    attempts = []

    def connects(host, port, timeout):
        attempts.append((host, port))
        return len(attempts) >= 3

    clock = Clock()
    wait_ready(recorder, "b", host="10.0.0.2", port=3128, connects=connects, clock=clock, sleep=clock.sleep)
    assert attempts == [("10.0.0.2", 3128)] * 3


def test_wait_ready_says_why_when_the_bundle_dies(recorder):
    def answer(cmd):
        if cmd.argv[1] == "container":
            return _inspect(False)
        return Result(cmd.argv, 0, stdout="starting\nTraceback...\nValueError: bad bundle.yaml\n")

    recorder.answer = answer
    clock = Clock()
    with pytest.raises(BottleError, match=r"stopped while starting: .*bad bundle\.yaml"):
        wait_ready(recorder, "b", host="h", port=1, connects=lambda *a: False, clock=clock, sleep=clock.sleep)


def test_wait_ready_is_bounded(recorder):
    recorder.answer = lambda cmd: _inspect(True) if cmd.argv[1] == "container" else None
    clock = Clock()
    with pytest.raises(BottleError, match="did not answer on h:1 within 5s"):
        wait_ready(recorder, "b", host="h", port=1, timeout=5, connects=lambda *a: False, clock=clock,
                   sleep=clock.sleep)
    assert clock.now < 7
