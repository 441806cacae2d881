"""Benchmark: one join storm split over shards, on the local engine and a single-node
Docker Swarm, against the same storm from the load generator alone; and what merging
per-second snapshots costs the coordinator.

Against a running local stack (`chaos stack up --base-port 31000`). For each engine it
fires the same open-loop schedule (RATE joins/s, evenly spaced, for SECONDS) and reports:
the achieved rate against the requested one, arrivals fired, joined and failed, merged
join p50/p95, the shards' largest measured clock offset, how long from the call to T0
(shards started, connected, clocks measured), and, in a second run with an objective that
breaks at once, how long after the halt every shard had stopped firing. With --swarm it
makes this Docker engine a single-node swarm for the run and always leaves it (refused if
it is already in one); the shards run in chaos-shard:latest (chaos.scale.image).

    .venv/bin/python bench/scale_out.py [--rate 200] [--seconds 8] [--shards 4] [--swarm]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

from chaos.targets import stack
from chaos.load import ArrivalSchedule, StormOptions, run_storm
from chaos.audio.histogram import Histogram
from chaos.scale import JoinObjective, ScaleOut, run_scaled

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from integration.test_load_storm import with_speaker  # noqa: E402


def docker(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(["docker", *args], capture_output=True, text=True, timeout=60)


def one(topo, schedule, engine, shards, engine_options=None, objective=None):
    t_call = time.time()
    starts = {}

    async def note_t0(coord, eng):
        while coord.t0_wall is None:
            await asyncio.sleep(0.01)
        starts["t0"] = coord.t0_wall

    r = asyncio.run(with_speaker(topo, f"bench-{engine}", lambda space, spk: run_scaled(
        topo, space, spk, schedule, StormOptions(hold_s=0.5), scale=ScaleOut(engine, shards),
        engine_options=engine_options, objective=objective, during=note_t0)))
    return r, starts.get("t0", t_call) - t_call


def merge_cost(shards: int, seconds: int, joins_per_snapshot: int) -> float:
    rng = np.random.default_rng(1)
    snaps = []
    for _ in range(shards * seconds):
        h = Histogram()
        for v in rng.lognormal(-3, 0.7, joins_per_snapshot):
            h.record(float(v))
        snaps.append(h.to_dict())
    t = time.perf_counter()
    merged = Histogram()
    for d in snaps:
        merged.merge(Histogram.from_dict(d))
    merged.quantile(0.95)
    return (time.perf_counter() - t) / len(snaps)


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rate", type=float, default=200.0)
    ap.add_argument("--seconds", type=float, default=8.0)
    ap.add_argument("--shards", type=int, default=4)
    ap.add_argument("--swarm", action="store_true")
    a = ap.parse_args()
    topo = stack.current().topology
    schedule = ArrivalSchedule(a.rate, a.seconds, process="even", seed=7)
    print(f"machine: {os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f}")
    print(f"schedule: {schedule.describe()}")

    t = time.time()
    g = asyncio.run(with_speaker(topo, "bench-gen", lambda space, spk: run_storm(
        topo, space, spk, schedule, StormOptions(hold_s=0.5, workers=a.shards))))
    print(f"load generator ({a.shards} workers): {g.achieved_rate_per_s:.1f} joins/s, "
          f"{g.fired}/{g.arrivals} fired, {g.joined} joined, p50 {g.join_p50_s:.3f} s "
          f"p95 {g.join_p95_s:.3f} s, run {time.time() - t:.1f} s")

    engines = [("local", None)]
    swarm_made = False
    if a.swarm:
        if docker("info", "--format", "{{.Swarm.LocalNodeState}}").stdout.strip() != "inactive":
            print("swarm: skipped, this engine is already in a swarm that is not ours")
        else:
            swarm_made = docker("swarm", "init", "--advertise-addr", "127.0.0.1").returncode == 0
            engines.append(("swarm", {}))   # the shards' image, built from these sources
    try:
        for engine, opts in engines:
            r, to_t0 = one(topo, schedule, engine, a.shards, opts)
            off = max(abs(s["clock_offset_ms"]) for s in r.per_shard)
            print(f"{engine} engine, {a.shards} shards: {r.achieved_rate_per_s:.1f} joins/s "
                  f"({r.achieved_rate_per_s / r.rate_requested_per_s - 1:+.1%}), "
                  f"{r.fired}/{r.arrivals} fired, {r.joined} joined, {r.failed} failed, "
                  f"p50 {r.join['p50_s']:.3f} s p95 {r.join['p95_s']:.3f} s; call to T0 "
                  f"{to_t0:.2f} s; largest clock offset {off:.2f} ms; "
                  f"merged == one histogram of all joins: "
                  f"{all(r.merged.quantile(q) == r.histogram_of_samples().quantile(q) for q in (0.5, 0.95, 0.99))}")
            h, _ = one(topo, ArrivalSchedule(a.rate, 20, process="even", seed=8), engine,
                       a.shards, opts, JoinObjective(1e-6, min_joins=20, window_s=5))
            print(f"{engine} engine halt: at {h.halt['at_s']:.2f} s, {h.halt['shards_stopped']}"
                  f"/{a.shards} shards stopped within {h.halt['stopped_within_s'] * 1e3:.1f} ms")
    finally:
        if swarm_made:
            docker("swarm", "leave", "--force")
    per = merge_cost(64, 10, 200)
    print(f"coordinator merge: {per * 1e6:.0f} us per snapshot (200 joins each, 640 snapshots); "
          f"the incident's audience at 200 joins/s a shard is 5 shards: 5 merges a second")
    print(f"machine load average after: {os.getloadavg()[0]:.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
