from __future__ import annotations

import json

import pytest

from claude_bottle.errors import BottleError
from claude_bottle.plan import CleanupItem
from claude_bottle.runner import Result
from claude_bottle_docker.cleanup import inventory, plan_items, remove_items, remove_slug
from claude_bottle_docker.docker import Resource

HOME = "/home/u/.claude-bottle"


def res(kind, name, slug, home=HOME, role="agent"):
    return Resource(kind=kind, ident=f"{name}-id-0123456789", name=name, slug=slug, backend="docker",
                    role=role, home=home)


def test_plan_skips_protected_and_other_homes_and_orders_containers_first():
    found = [
        res("network", "claude-bottle-net-a-11111", "a-11111", role="net-internal"),
        res("container", "claude-bottle-a-11111", "a-11111"),
        res("container", "claude-bottle-b-22222", "b-22222"),          # protected (live)
        res("container", "claude-bottle-c-33333", "c-33333", home="/other/home"),
        res("volume", "claude-bottle-vol-d-44444", "d-44444", home=""),  # no home label: ours to clean
    ]
    plan = plan_items(found, protected=frozenset({"b-22222"}), home=HOME)
    assert [(i.kind, i.slug) for i in plan.items] == [
        ("container", "a-11111"), ("network", "a-11111"), ("volume", "d-44444")]
    assert all(i.backend == "docker" for i in plan.items)
    # containers and networks are removed by ID (a same-named newcomer is missed), volumes by name
    assert plan.items[0].ident == found[1].ident[:12]
    assert plan.items[2].ident == "claude-bottle-vol-d-44444"
    assert "claude-bottle-a-11111" in plan.items[0].detail


def test_remove_items_one_outcome_each_and_gone_is_ok(recorder):
    def answer(cmd):
        target = cmd.argv[-1]
        if target == "gone":
            return Result(cmd.argv, 1, stderr="Error: No such container: gone")
        if target == "busy":
            return Result(cmd.argv, 1, stderr="Error response from daemon: network busy has active endpoints")
        if target == "hang":
            raise BottleError("docker network rm timed out after 60s")
        return None

    recorder.answer = answer
    items = [CleanupItem("docker", "network", "busy"), CleanupItem("docker", "container", "gone"),
             CleanupItem("docker", "network", "hang"), CleanupItem("docker", "container", "ok")]
    report = remove_items(recorder, items)
    by = {o.item.ident: o for o in report.outcomes}
    assert len(report.outcomes) == 4
    assert by["gone"].ok and by["ok"].ok
    assert not by["busy"].ok and "active endpoints" in by["busy"].error
    assert not by["hang"].ok and "timed out" in by["hang"].error
    # containers before networks, whatever order the plan came in; one call per kind first, each
    # item alone only after a batch failed
    calls = [c.argv for c in recorder.calls]
    assert calls[0] == ("docker", "rm", "--force", "--volumes", "gone", "ok")
    assert calls[1] == ("docker", "network", "rm", "busy", "hang")
    assert calls[2:] == [("docker", "network", "rm", "busy"), ("docker", "network", "rm", "hang")]


def test_inventory_refuses_to_guess_when_docker_cannot_answer(recorder):
    recorder.answer = lambda cmd: Result(cmd.argv, 1, stderr="Cannot connect to the Docker daemon at "
                                         "unix:///x.sock. Is the docker daemon running?")
    with pytest.raises(BottleError) as caught:
        inventory(recorder)
    assert str(caught.value).startswith("Docker is not reachable at unix:///x.sock (start the docker daemon")
    assert "DOCKER_HOST / docker context" in str(caught.value)
    recorder.answer = lambda cmd: Result(cmd.argv, 1, stderr="Error response from daemon: bad filter\n")
    with pytest.raises(BottleError, match="cannot list docker containers: Error response from daemon"):
        inventory(recorder)


def test_remove_slug_lists_by_slug_and_removes_every_kind(recorder):
    rows = {
        "ps": {"id": "c1", "name": "claude-bottle-a-11111", "slug": "a-11111", "role": "agent", "home": "/x"},
        "network": {"id": "n1", "name": "claude-bottle-net-a-11111", "slug": "a-11111",
                    "role": "net-internal"},
        "volume": None,
    }

    def answer(cmd):
        if "--format" in cmd.argv:
            assert "label=dev.claude-bottle.slug=a-11111" in cmd.argv
            row = rows[cmd.argv[1]]
            return Result(cmd.argv, 0, stdout=json.dumps(row) + "\n" if row else "")
        return None

    recorder.answer = answer
    report = remove_slug(recorder, "a-11111")
    assert [o.item.kind for o in report.outcomes] == ["container", "network"]
    assert not report.failed
