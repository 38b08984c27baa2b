"""Benchmarks for the docker backend (``nox -s bench``; not a test, numbers only).

1. Warm ``claude-bottle up --detach`` and ``down`` wall time against a raw-docker script that creates
   the same networks and containers (same images, same flags), alternating in one run; medians over
   ``--runs`` with the per-phase breakdown ``up`` itself reports.
2. The egress proxy's added latency: HTTPS GETs to a local upstream from inside the agent through the
   proxy, against the same GETs sent directly from a container on the same docker network; p50/p95.

Run: ``python benchmarks/run.py [--runs N] [--requests N] [--json]``. Uses a throw-away
``CLAUDE_BOTTLE_HOME`` and removes everything it made (by label) at the end.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "benchmarks")]

from raw_docker import raw_down, raw_up  # noqa: E402
from tests.integration.dockerkit import labelled, remove  # noqa: E402
from tests.integration.upstream import Upstream  # noqa: E402

BENCH_LABEL = "dev.claude-bottle-bench.home"


def _cli(env: dict[str, str], cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run([sys.executable, "-m", "claude_bottle", *args], capture_output=True, text=True,
                          env=env, cwd=cwd, check=False, timeout=1800)
    if proc.returncode != 0:
        raise SystemExit(f"claude-bottle {' '.join(args)} failed ({proc.returncode}): {proc.stderr.strip()}")
    return proc


def _phases(stderr: str) -> dict[str, float]:
    """The per-phase timings table ``up`` prints on stderr with --json: ``name  1.23s`` rows."""
    out: dict[str, float] = {}
    for line in stderr.splitlines():
        parts = line.replace("│", " ").split()
        if len(parts) >= 2 and parts[-1].endswith("s"):
            try:
                out[" ".join(parts[:-1])] = float(parts[-1][:-1])
            except ValueError:
                continue
    return out


def bench_lifecycle(env: dict[str, str], cwd: Path, runs: int) -> dict[str, object]:
    cli_up, cli_down, raw_ups, raw_downs = [], [], [], []
    phases: dict[str, list[float]] = {}
    rebuilt = 0
    i = 0
    # Only warm runs count: a run whose `up` had to build (the image sources changed under it, as
    # in a checkout being edited) is dropped and repeated, up to `runs` extra times.
    while len(cli_up) < runs and i < 2 * runs:
        i += 1
        t = time.perf_counter()
        up = _cli(env, cwd, "up", "--detach", "--yes", "--json", "--no-workspace")
        up_s = time.perf_counter() - t
        info = json.loads(up.stdout)
        slug = info["slug"]
        used = {r["role"]: r["image"] for r in info.get("images", [])}
        timings = _phases(up.stderr)
        t = time.perf_counter()
        _cli(env, cwd, "down", slug, "--yes")
        down_s = time.perf_counter() - t
        if any(name.startswith("build") for name in timings):
            rebuilt += 1
            continue
        cli_up.append(up_s)
        cli_down.append(down_s)
        for name, seconds in timings.items():
            phases.setdefault(name, []).append(seconds)

        t = time.perf_counter()
        # same images as the `up` just measured (a concurrent source edit must not make them differ)
        images = (used["agent"], used["sidecars"]) if {"agent", "sidecars"} <= set(used) else None
        raw = raw_up(f"bench{i}-{os.getpid()}", home=env["CLAUDE_BOTTLE_HOME"], images=images)
        raw_ups.append(time.perf_counter() - t)
        t = time.perf_counter()
        raw_down(raw)
        raw_downs.append(time.perf_counter() - t)
    med = statistics.median
    if not cli_up:
        raise SystemExit("every run rebuilt an image (its sources keep changing): retry when they settle")
    return {
        "runs": len(cli_up), "dropped_runs_that_built": rebuilt,
        "up_median_s": round(med(cli_up), 3), "raw_up_median_s": round(med(raw_ups), 3),
        "up_ratio": round(med(cli_up) / med(raw_ups), 2),
        "down_median_s": round(med(cli_down), 3), "raw_down_median_s": round(med(raw_downs), 3),
        "down_ratio": round(med(cli_down) / med(raw_downs), 2),
        "up_phases_median_s": {k: round(med(v), 3) for k, v in phases.items()},
        # the backend's own share: `up` minus the CLI's start-up, resolve and prepare
        "launch_ratio": round(med(phases.get("launch", [0.0])) / med(raw_ups), 2),
        "up_all_s": [round(x, 3) for x in cli_up], "raw_up_all_s": [round(x, 3) for x in raw_ups],
    }


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def bench_latency(env: dict[str, str], cwd: Path, requests: int) -> dict[str, object]:
    with Upstream(home=env["CLAUDE_BOTTLE_HOME"], label=BENCH_LABEL) as upstream:
        env = {**env, "CLAUDE_BOTTLE_EXTRA_CA_CERTS": str(upstream.trust_bundle)}
        bottles = Path(env["CLAUDE_BOTTLE_HOME"]) / "bottles"
        agents = Path(env["CLAUDE_BOTTLE_HOME"]) / "agents"
        bottles.mkdir(exist_ok=True)
        agents.mkdir(exist_ok=True)
        (bottles / "bench.md").write_text(f"---\negress:\n  allow:\n    - host: {upstream.host}\n"
                                          "      private: true\n---\n")
        (agents / "bench.md").write_text("---\nbottle: bench\n---\nBenchmark agent.\n")
        up = _cli(env, cwd, "up", "bench", "--detach", "--yes", "--json", "--no-workspace")
        slug = json.loads(up.stdout)["slug"]
        try:
            upstream.attach(f"claude-bottle-sidecars-{slug}")
            script = upstream.timing_script(requests)
            via = subprocess.run(["docker", "exec", "-i", f"claude-bottle-{slug}", "node", "-"],
                                 input=script, capture_output=True, text=True, check=True, timeout=600)
            proxied = json.loads(via.stdout)
            direct = upstream.direct_timings(requests)
        finally:
            _cli(env, cwd, "down", slug, "--yes")
    p50p, p95p, p50d, p95d = (_pct(proxied, 0.5), _pct(proxied, 0.95), _pct(direct, 0.5), _pct(direct, 0.95))
    return {
        "requests": requests,
        "proxied_p50_ms": round(p50p, 2), "proxied_p95_ms": round(p95p, 2),
        "direct_p50_ms": round(p50d, 2), "direct_p95_ms": round(p95d, 2),
        "added_p50_ms": round(p50p - p50d, 2), "added_p95_ms": round(p95p - p95d, 2),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--requests", type=int, default=200)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    home = Path(tempfile.mkdtemp(prefix="cb-bench-home-"))
    cwd = Path(tempfile.mkdtemp(prefix="cb-bench-cwd-"))
    env = {**os.environ, "CLAUDE_BOTTLE_HOME": str(home), "NO_COLOR": "1", "COLUMNS": "200"}
    ca = Path("/etc/ssl/certs/ca-certificates.crt")
    if "CLAUDE_BOTTLE_EXTRA_CA_CERTS" not in env and ca.is_file():
        env["CLAUDE_BOTTLE_EXTRA_CA_CERTS"] = str(ca)
    try:
        _cli(env, cwd, "build")  # warm: images exist before anything is timed
        # one untimed round to warm docker's own caches
        warm = _cli(env, cwd, "up", "--detach", "--yes", "--json", "--no-workspace")
        slug = json.loads(warm.stdout)["slug"]
        _cli(env, cwd, "down", slug, "--yes")
        result = {"lifecycle": bench_lifecycle(env, cwd, args.runs),
                  "proxy_latency": bench_latency(env, cwd, args.requests)}
    finally:
        _cli(env, cwd, "cleanup", "--yes")
        remove(labelled(f"{BENCH_LABEL}={home}"))  # the raw-docker baseline's and upstream's leftovers
        shutil.rmtree(home, ignore_errors=True)
        shutil.rmtree(cwd, ignore_errors=True)
    print(json.dumps(result, indent=2) if args.json else _table(result))
    return 0


def _table(result: dict[str, object]) -> str:
    life, lat = result["lifecycle"], result["proxy_latency"]
    assert isinstance(life, dict) and isinstance(lat, dict)
    lines = [
        f"warm up --detach   median {life['up_median_s']:.2f}s   "
        f"raw docker {life['raw_up_median_s']:.2f}s"
        f"   ratio {life['up_ratio']:.2f}x   ({life['runs']} warm runs, "
        f"{life['dropped_runs_that_built']} dropped for a rebuild)",
        f"down               median {life['down_median_s']:.2f}s   "
        f"raw docker {life['raw_down_median_s']:.2f}s"
        f"   ratio {life['down_ratio']:.2f}x",
        f"backend launch phase alone vs raw docker: {life['launch_ratio']:.2f}x",
        "up phases (median): " + ", ".join(f"{k} {v:.2f}s" for k, v in life["up_phases_median_s"].items()),
        f"proxy latency ({lat['requests']} HTTPS GETs): proxied p50 {lat['proxied_p50_ms']:.1f} ms "
        f"p95 {lat['proxied_p95_ms']:.1f} ms; direct p50 {lat['direct_p50_ms']:.1f} ms "
        f"p95 {lat['direct_p95_ms']:.1f} ms; added p50 {lat['added_p50_ms']:.1f} ms "
        f"p95 {lat['added_p95_ms']:.1f} ms",
    ]
    return "\n".join(lines)


if __name__ == "__main__":
    raise SystemExit(main())
