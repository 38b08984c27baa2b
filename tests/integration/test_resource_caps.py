"""Resource caps measured from inside (issue 13, part): a bottle's resources: block is what its agent
gets; past its memory cap the process that asked is OOM-killed, the bottle and a sibling keep working."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
from tests.integration.dockerkit import AgentBottle, Env, docker

pytestmark = pytest.mark.integration

HOG = "node -e 'const a = []; for (;;) a.push(Buffer.alloc(16 * 1024 * 1024, 1))'"


@pytest.fixture
def two(env: Env, images: None) -> Iterator[tuple[AgentBottle, AgentBottle]]:
    (env.home / "bottles").mkdir(exist_ok=True)
    (env.home / "agents").mkdir(exist_ok=True)
    (env.home / "bottles" / "small.md").write_text(
        "---\nresources:\n  memory: 256m\n  cpus: 0.5\n  pids: 256\n---\n")
    (env.home / "agents" / "small.md").write_text("---\nbottle: small\n---\n")
    made: list[AgentBottle] = []
    try:
        for agent in ("small", "claude"):
            up = env.cli("up", agent, "--no-workspace", "--detach", "--yes", "--json")
            made.append(AgentBottle(json.loads(up.stdout)["slug"], env))
        yield made[0], made[1]
    finally:
        for b in made:
            env.cli("down", b.slug, "--yes", "--discard", check=False)


Two = tuple[AgentBottle, AgentBottle]


def test_caps_are_what_the_bottle_asked_and_the_plan_shows_them(env: Env, two: Two) -> None:
    small, _ = two
    config = json.loads(docker("inspect", small.agent))[0]["HostConfig"]
    assert config["Memory"] == 256 * 1024 ** 2 and config["MemorySwap"] == 256 * 1024 ** 2
    assert config["NanoCpus"] == 500_000_000 and config["PidsLimit"] == 256
    inside = small.sh("cat /sys/fs/cgroup/memory.max 2>/dev/null || "
                      "cat /sys/fs/cgroup/memory/memory.limit_in_bytes")
    assert inside.stdout.strip() == str(256 * 1024 ** 2), inside
    plan = env.cli("up", "small", "--no-workspace", "--dry-run")
    assert "256 MiB memory, 0.5 CPUs, 256 pids" in " ".join(plan.stdout.split()), plan.stdout


def test_past_the_memory_cap_the_process_is_killed_and_the_sibling_works(two: Two) -> None:
    small, sibling = two
    hog = small.sh(HOG, timeout=120)
    assert hog.returncode == 137, hog  # OOM-killed: SIGKILL, inside the bottle
    assert small.sh("echo still here").stdout == "still here\n"
    state = json.loads(docker("inspect", small.agent))[0]["State"]
    assert state["Running"], state
    assert sibling.sh("echo fine").stdout == "fine\n"
