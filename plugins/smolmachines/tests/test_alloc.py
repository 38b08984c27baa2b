"""The pure allocators: a block per bottle (stable per slug, around what is used, never Docker's
default bridge, a clear error when the pool is full) and ports around taken ones."""

from __future__ import annotations

import random
from ipaddress import IPv4Address, IPv4Network

import pytest

from claude_bottle.errors import BottleError
from claude_bottle_smolmachines.alloc import (
    DOCKER_DEFAULT,
    POOL,
    PORT_RANGE,
    pick_port,
    pick_ports,
    pick_subnet,
    split_block,
)

N = IPv4Network


def test_same_slug_same_block() -> None:
    assert pick_subnet([], POOL, "researcher-m3hxd") == pick_subnet([], POOL, "researcher-m3hxd")


def test_block_is_a_28_inside_the_pool() -> None:
    block = pick_subnet([], POOL, "researcher-m3hxd")
    assert block.prefixlen == 28 and block.subnet_of(POOL)


def test_different_slugs_spread_over_the_pool() -> None:
    blocks = {pick_subnet([], POOL, f"agent-{i:05d}") for i in range(200)}
    assert len(blocks) > 190  # a hash, not a counter: nearly all distinct even with nothing used


@pytest.mark.parametrize(
    ("used", "pool", "seed", "expected"),
    [
        # nothing used: the seeded slot
        ([], N("10.0.0.0/26"), "a", None),
        # the only free /28 of a /26 is found whatever the seed
        ([N("10.0.0.0/28"), N("10.0.0.16/28"), N("10.0.0.48/28")], N("10.0.0.0/26"), "a", N("10.0.0.32/28")),
        ([N("10.0.0.0/28"), N("10.0.0.16/28"), N("10.0.0.48/28")], N("10.0.0.0/26"), "zz", N("10.0.0.32/28")),
        # a host route that covers part of the pool takes every block it overlaps
        ([N("10.0.0.0/27")], N("10.0.0.0/26"), "b", "upper"),
        # a single host address (/32 interface) blocks its /28
        ([N("10.0.0.5/32"), N("10.0.0.16/28"), N("10.0.0.32/27")], N("10.0.0.0/26"), "c", "full"),
        # routes outside the pool do not matter
        ([N("192.168.0.0/16"), N("128.0.0.0/1")], N("10.0.0.0/28"), "d", N("10.0.0.0/28")),
    ],
)
def test_pick_subnet_table(used: list[IPv4Network], pool: IPv4Network, seed: str, expected: object) -> None:
    if expected == "full":
        with pytest.raises(BottleError):
            pick_subnet(used, pool, seed)
        return
    got = pick_subnet(used, pool, seed)
    assert got.subnet_of(pool)
    assert not any(got.overlaps(u) for u in used)
    if expected == "upper":
        assert got.subnet_of(N("10.0.0.32/27"))
    elif isinstance(expected, IPv4Network):
        assert got == expected


def test_collision_moves_only_the_colliding_slug() -> None:
    first = pick_subnet([], POOL, "x-aaaaa")
    second = pick_subnet([first], POOL, "x-aaaaa")
    assert second != first and second.subnet_of(POOL)
    # stable again once the collision is known
    assert pick_subnet([first], POOL, "x-aaaaa") == second


def test_full_pool_is_one_clear_error() -> None:
    pool = N("10.9.0.0/26")
    with pytest.raises(BottleError) as err:
        pick_subnet([pool], pool, "anything")
    assert "no free /28" in str(err.value) and "10.9.0.0/26" in str(err.value)
    assert "cleanup" in str(err.value)


def test_pool_full_of_blocks_one_by_one() -> None:
    pool = N("10.9.0.0/26")
    used: list[IPv4Network] = []
    for i in range(4):
        used.append(pick_subnet(used, pool, f"s-{i}"))
    assert sorted(used) == list(pool.subnets(new_prefix=28))
    with pytest.raises(BottleError):
        pick_subnet(used, pool, "s-4")


def test_never_docker_default_bridge_even_if_the_pool_covers_it() -> None:
    pool = N("172.16.0.0/12")
    for i in range(300):
        assert not pick_subnet([], pool, f"s-{i}", prefixlen=16).overlaps(DOCKER_DEFAULT)
    with pytest.raises(BottleError):
        pick_subnet([], N("172.17.0.0/16"), "x")


def test_split_block() -> None:
    parts = split_block(N("10.213.5.16/28"))
    assert parts.guest_subnet == N("10.213.5.16/30")
    assert parts.bundle_subnet == N("10.213.5.24/29")
    assert parts.bundle_address == IPv4Address("10.213.5.25")
    assert not parts.guest_subnet.overlaps(parts.bundle_subnet)


@pytest.mark.parametrize(
    ("used", "port_range", "expected"),
    [
        (set(), range(100, 101), 100),
        ({100}, range(100, 102), 101),
        ({100, 101, 103}, range(100, 104), 102),
        (set(range(21000, 31999)), PORT_RANGE, 31999),
    ],
)
def test_pick_port_around_taken(used: set[int], port_range: range, expected: int) -> None:
    assert pick_port(used, port_range, "seed") == expected


def test_pick_port_full_range() -> None:
    with pytest.raises(BottleError) as err:
        pick_port({1, 2, 3}, range(1, 4), "s")
    assert "no free TCP port left in 1-3" in str(err.value)


def test_pick_port_stable_per_seed() -> None:
    assert pick_port(set(), PORT_RANGE, "a-bcdef") == pick_port(set(), PORT_RANGE, "a-bcdef")


def test_pick_ports_distinct_and_around_taken() -> None:
    taken = set(range(21000, 31990))
    ports = pick_ports(taken, PORT_RANGE, "s-abcde", ("egress", "git-gate", "supervise"))
    assert len(set(ports.values())) == 3
    assert not set(ports.values()) & taken
    assert list(ports) == ["egress", "git-gate", "supervise"]


def test_agrees_with_the_plain_overlap_rule_on_random_input() -> None:
    """The bisect over merged ranges picks exactly what checking every used network would."""
    rng = random.Random(7)
    pool = N("10.50.0.0/22")
    for trial in range(200):
        used = [N((int(pool.network_address) + rng.randrange(1024), rng.choice([24, 26, 28, 30, 32])),
                  strict=False) for _ in range(rng.randrange(0, 60))]
        try:
            got = pick_subnet(used, pool, f"t{trial}")
        except BottleError:
            assert all(any(b.overlaps(u) for u in used) for b in pool.subnets(new_prefix=28))
            continue
        assert not any(got.overlaps(u) for u in used)
        blocks = list(pool.subnets(new_prefix=28))
        start = blocks.index(pick_subnet([], pool, f"t{trial}"))
        for step in range(len(blocks)):  # every block before it in probe order is taken
            candidate = blocks[(start + step) % len(blocks)]
            if candidate == got:
                break
            assert any(candidate.overlaps(u) for u in used)
