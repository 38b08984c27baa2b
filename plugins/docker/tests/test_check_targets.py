"""The docker side of ``claude-bottle check``: the probe runs in the agent as its user with stdin
attached, and ``probe_targets`` reads the gateways, other bottles and the bundle's far side."""

from __future__ import annotations

import json

import pytest

from claude_bottle.config import Settings
from claude_bottle.errors import BottleError
from claude_bottle.runner import Result
from claude_bottle_docker import DockerBackend
from claude_bottle_docker.targets import parse_gateways, parse_ips

SLUG = "claude-abcde"


def _inspect(networks: dict[str, str], *, running: bool = True) -> dict[str, object]:
    return {"State": {"Running": running},
            "NetworkSettings": {"Networks": {n: {"IPAddress": ip} for n, ip in networks.items()}}}


def test_run_in_agent_is_a_captured_exec_as_the_agent_user(recorder, tmp_path):
    def answer(cmd):
        if cmd.argv[1:3] == ("container", "inspect"):
            return Result(cmd.argv, 0, json.dumps([_inspect({})]))
        return Result(cmd.argv, 3, stdout="out", stderr="err")

    recorder.answer = answer
    backend = DockerBackend(runner=recorder, settings=Settings(home=tmp_path))
    result = backend.run_in_agent(slug=SLUG, argv=["node", "-", "{}"], input=b"script", timeout=30)
    assert (result.returncode, result.stdout) == (3, "out")  # a failing command is the caller's to judge
    cmd = recorder.calls[-1]
    assert cmd.argv == ("docker", "exec", "--interactive", "--user", "claude", f"claude-bottle-{SLUG}",
                        "node", "-", "{}")
    assert (cmd.input, cmd.timeout, cmd.check) == (b"script", 30, False)
    backend.run_in_agent(slug=SLUG, argv=["true"])
    assert "--interactive" not in recorder.calls[-1].argv  # no stdin, none attached


def test_run_in_agent_of_a_stopped_bottle_says_so(recorder, tmp_path):
    recorder.answer = lambda cmd: Result(cmd.argv, 0, json.dumps([_inspect({}, running=False)]))
    backend = DockerBackend(runner=recorder, settings=Settings(home=tmp_path))
    with pytest.raises(BottleError, match=f"bottle {SLUG} is not running"):
        backend.run_in_agent(slug=SLUG, argv=["true"])


def test_parse_gateways_fills_in_the_default_bridges():
    out = ('[{"Subnet":"172.17.0.0/16"}]\n[{"Subnet":"192.168.96.0/20","Gateway":"192.168.96.1"}]\n'
           '[{"Subnet":"fd00::/64"}]\nError: No such network: bridge\n[{"Subnet":"192.168.96.0/20",'
           '"Gateway":"192.168.96.1"}]\n')
    assert parse_gateways(out) == ("172.17.0.1", "192.168.96.1")


def test_parse_ips_skips_networks_and_bad_output():
    out = json.dumps([_inspect({"a": "10.1.0.2", "b": "10.2.0.2"}), _inspect({"a": "10.1.0.3", "c": ""})])
    assert parse_ips(out) == ("10.1.0.2", "10.2.0.2", "10.1.0.3")
    assert parse_ips(out, skip_networks=("a",)) == ("10.2.0.2",)
    assert parse_ips("not json") == () and parse_ips("") == ()


def test_probe_targets(recorder, tmp_path):
    internal, egress = f"claude-bottle-net-{SLUG}", f"claude-bottle-egress-{SLUG}"
    other = {"id": "abc", "name": "claude-bottle-claude-zzzzz", "state": "running", "slug": "claude-zzzzz"}
    mine = {"id": "def", "name": f"claude-bottle-{SLUG}", "state": "running", "slug": SLUG}
    stopped = {"id": "ghi", "name": "claude-bottle-claude-yyyyy", "state": "exited", "slug": "claude-yyyyy"}

    def answer(cmd):
        if cmd.argv[1:3] == ("network", "inspect"):
            return Result(cmd.argv, 0, '[{"Subnet":"10.9.0.0/24","Gateway":"10.9.0.1"}]\n')
        if cmd.argv[1] == "ps":
            return Result(cmd.argv, 0, "\n".join(json.dumps(r) for r in (other, mine, stopped)))
        if cmd.argv[-1] == f"claude-bottle-sidecars-{SLUG}":
            return Result(cmd.argv, 0, json.dumps([_inspect({internal: "10.9.0.2", egress: "10.8.0.2"})]))
        if cmd.argv[-1] == "abc":
            return Result(cmd.argv, 0, json.dumps([_inspect({"x": "10.7.0.3"})]))
        return Result(cmd.argv, 1, stderr="unexpected")

    recorder.answer = answer
    targets = DockerBackend(runner=recorder, settings=Settings(home=tmp_path)).probe_targets(slug=SLUG)
    assert targets.host == ("10.9.0.1",)
    assert targets.siblings == ("10.7.0.3",)  # running bottles but this one
    assert targets.far_side == ("10.8.0.2",)
    assert recorder.calls[0].argv[-3:] == (internal, egress, "bridge")
