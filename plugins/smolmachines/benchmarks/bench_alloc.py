"""How long allocation takes as bottles accumulate: ``python plugins/smolmachines/benchmarks/bench_alloc.py``.

Prints the median of several runs of ``pick_subnet`` with N blocks of the pool already used, and of
``pick_ports`` with N ports taken. Measured here (2 cores): 4000 used blocks, about 7 ms (a plain
every-block-against-every-used-network scan took 11.3 s)."""

from __future__ import annotations

import statistics
import time
from ipaddress import IPv4Network

from claude_bottle_smolmachines import alloc


def _median_ms(fn: object, runs: int = 5) -> float:
    times = []
    for _ in range(runs):
        t = time.perf_counter()
        fn()  # type: ignore[operator]
        times.append((time.perf_counter() - t) * 1000)
    return statistics.median(times)


def main() -> None:
    blocks = list(alloc.POOL.subnets(new_prefix=alloc.BLOCK_PREFIX))
    for n in (0, 100, 1000, 4000):
        used: list[IPv4Network] = blocks[:n]
        ms = _median_ms(lambda used=used: alloc.pick_subnet(used, alloc.POOL, "bench-abcde"))
        print(f"pick_subnet, {n:5d} blocks used: {ms:8.2f} ms")
    for n in (0, 1000, 10000):
        taken = set(range(alloc.PORT_RANGE.start, alloc.PORT_RANGE.start + n))
        ms = _median_ms(lambda taken=taken: alloc.pick_ports(taken, alloc.PORT_RANGE, "bench-abcde",
                                                             ("egress", "git-gate", "supervise")))
        print(f"pick_ports,  {n:5d} ports taken: {ms:8.2f} ms")


if __name__ == "__main__":
    main()
