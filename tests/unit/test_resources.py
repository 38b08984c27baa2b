"""Resource caps (issue 13, part): a bottle's resources: block, host-derived defaults, the agent's argv."""

from __future__ import annotations

import pytest

from claude_bottle.errors import BottleError
from claude_bottle.identity import Names
from claude_bottle.manifest.parse import parse_bottle
from claude_bottle.resources import GIB, Caps, bottle_caps, default_caps, parse_memory
from claude_bottle_docker.topology import AgentRun, agent_run_command


def bottle(block: str):
    return parse_bottle(name="b", path="b.md", text=f"---\nresources:\n{block}---\n")


def test_defaults_leave_most_of_the_host_to_the_host() -> None:
    assert default_caps(host_memory=24 * GIB, host_cpus=2) == Caps(memory=6 * GIB, cpus=1.5, pids=2048)
    assert default_caps(host_memory=2 * GIB, host_cpus=1).memory == GIB  # never below 1 GiB
    assert default_caps(host_memory=256 * GIB, host_cpus=64).memory == 8 * GIB  # nor above 8 GiB


@pytest.mark.parametrize(("text", "size"), [
    ("4g", 4 * GIB), ("512m", 512 * 1024 ** 2), ("1.5G", int(1.5 * GIB)), ("64m", 64 * 1024 ** 2),
    ("10k", None), ("lots", None), ("-1g", None),
])
def test_memory_sizes(text: str, size: int | None) -> None:
    assert parse_memory(text) == size


def test_a_bottle_asks_and_the_rest_comes_from_the_host() -> None:
    b = bottle("  memory: 2g\n  pids: 512\n")
    caps = bottle_caps(b, defaults=Caps(memory=6 * GIB, cpus=1.5, pids=2048))
    assert caps == Caps(memory=2 * GIB, cpus=1.5, pids=512)
    assert caps.describe() == "2 GiB memory, 1.5 CPUs, 512 pids"


@pytest.mark.parametrize(("block", "message"), [
    ("  memory: lots\n", "resources.memory 'lots' is not a size"),
    ("  cpus: 0\n", "resources.cpus must be a number of CPUs"),
    ("  pids: 8\n", "resources.pids must be a whole number, 64 or more"),
    ("  disk: 10g\n", "resources.disk is not available yet"),
    ("  memroy: 1g\n", "unknown key 'memroy'"),
])
def test_a_bad_resources_block_is_one_line_with_the_file(block: str, message: str) -> None:
    with pytest.raises(BottleError, match=message) as info:
        bottle(block)
    assert "b.md" in str(info.value)


def test_the_agent_runs_with_the_caps_and_swap_counted_in() -> None:
    run = AgentRun(names=Names("b-abcde"), image="img", labels={}, env={}, secret_env_names=(),
                   dns="10.0.0.2", caps=Caps(memory=2 * GIB, cpus=0.5, pids=300))
    argv = list(agent_run_command(run, {}).argv)
    assert argv[argv.index("--memory") + 1] == str(2 * GIB)
    assert argv[argv.index("--memory-swap") + 1] == str(2 * GIB)
    assert argv[argv.index("--cpus") + 1] == "0.5" and argv[argv.index("--pids-limit") + 1] == "300"
