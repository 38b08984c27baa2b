"""``down --json`` and ``build --json``: one JSON document alone on stdout, the human notes on stderr."""

from __future__ import annotations

import json
from dataclasses import dataclass

import pytest

from claude_bottle.testing import fake_backend


def launch(cli) -> str:
    result = cli("up", "--backend", "fake", "--detach", "--yes", "--json")
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)["slug"]


# -- down --json -----------------------------------------------------------------------------------
def test_down_json_per_bottle(cli, fake, cb_home):
    slug = launch(cli)
    result = cli("down", slug, "--yes", "--json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout) == [{
        "slug": slug, "ok": True, "found": True, "removed": 3, "failed": [], "state": "removed",
        "state_reason": "no unfetched work in it", "warnings": [], "error": None}]
    again = json.loads(cli("down", slug, "--json").stdout)
    assert (again[0]["removed"], again[0]["found"], again[0]["state"]) == (0, False, "none")


def test_down_json_says_why_the_state_is_kept(cli, cb_home):
    with fake_backend("fake"):
        kept, failing = launch(cli), launch(cli)
    (cb_home / "state" / kept / ".preserve").touch()
    with fake_backend("fake", FAIL_CLEANUP=frozenset({f"claude-bottle-{failing}"})):
        result = cli("down", "--all", "--yes", "--json")
    assert result.exit_code == 1
    data = {d["slug"]: d for d in json.loads(result.stdout)}
    assert (data[kept]["state"], data[kept]["state_reason"]) == ("kept", "it holds a .preserve file")
    bad = data[failing]
    assert (bad["ok"], bad["removed"], bad["state"]) == (False, 2, "kept")
    assert bad["failed"] == [{"kind": "container", "name": f"claude-bottle-{failing}",
                              "error": f"simulated failure removing claude-bottle-{failing}"}]
    assert f"error: bottle {failing} was not fully removed" in result.stderr


def test_down_all_json_with_nothing_live(cli, fake):
    result = cli("down", "--all", "--json")
    assert (result.exit_code, json.loads(result.stdout)) == (0, [])


# -- build --json ----------------------------------------------------------------------------------
@dataclass(frozen=True)
class Refs:
    agent: str
    sidecars: str


@pytest.mark.parametrize("returned", [Refs("agent:1", "side:1"), {"agent": "agent:1", "sidecars": "side:1"}])
def test_build_json_lists_images_built_and_found(cli, returned):
    def build(self, *, progress):
        with progress.phase("build agent:1"):
            progress.note("building agent:1")
        return returned

    with fake_backend("fake", build=build):
        result = cli("build", "--backend", "fake", "--json")
        human = cli("build", "--backend", "fake")
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)  # stdout holds the JSON alone; progress stays on stderr
    assert "building agent:1" in result.stderr
    assert [{k: v for k, v in i.items() if k != "seconds"} for i in data["images"]] == [
        {"role": "agent", "image": "agent:1", "status": "built"},
        {"role": "sidecars", "image": "side:1", "status": "found"},
    ]
    assert isinstance(data["images"][0]["seconds"], float) and data["images"][1]["seconds"] is None
    assert (data["backend"], data["pruned"], [p["phase"] for p in data["phases"]]) == (
        "fake", False, ["build agent:1"])
    lines = human.stdout.splitlines()
    assert lines[0].startswith("agent image agent:1: built in ")
    assert lines[1] == "sidecars image side:1: already present"


def test_build_json_from_a_hook_that_returns_nothing(cli, fake):
    def build(self, *, progress, prune=False):
        with progress.phase("build old:1"):
            pass

    with fake_backend("fake", build=build):
        data = json.loads(cli("build", "--backend", "fake", "--json", "--prune").stdout)
    assert [(i["role"], i["image"], i["status"]) for i in data["images"]] == [(None, "old:1", "built")]
    assert data["pruned"] is True
    with fake_backend("fake"):
        assert json.loads(cli("build", "--backend", "fake", "--json").stdout)["images"] == []
