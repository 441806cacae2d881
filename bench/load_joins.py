"""Benchmark: open-loop join storms at rising rates, every join timed; what saturates first.

Against a running local stack (`chaos stack up --profile fragile`, or resilient: its
gateways admit 400 joins/s each). A speaker publishes at real rate; each step fires an
open-loop schedule (Poisson, RATE joins/s for SECONDS) across the worker processes of
chaos.load: join request -> WebSocket -> first audio frame -> leave (hold 0).

For each step it reports the achieved arrival rate, join time p50/p95/p99 (failed joins as
+inf), failures and refusals, late starts (arrivals started more than 20 ms after their
schedule: the generator saturating), and the CPU of both sides over the step, from
/proc/<pid>/stat: the stack's processes (pids from the stack state file, grouped by
kind), the generator (its workers and this process, which runs the speaker), and the
whole machine from /proc/stat ("other": everything else on this shared machine). A step
breaks when the stack misses its objective (join p95 > 2 s or more than 1 % of joins
failed or refused) or the generator falls behind (more than 1 % late starts); the summary
names what broke first.

    .venv/bin/python bench/load_joins.py [--rates 100,200,300,400,600,800,1000] [--seconds 10]
                                         [--workers 2] [--edge-direct] [--no-keepalive]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
import sys
import time
from pathlib import Path

import aiohttp

from chaos.load import ArrivalSchedule, StormOptions, run_storm
from chaos.adapters.space.joinapi import create_space
from chaos.adapters.space.speaker import Speaker
from chaos.targets.state import StackState
from chaos.core.retry import RetryPolicy

TICK = os.sysconf("SC_CLK_TCK")
P95_LIMIT_S = 2.0
BAD_SHARE = 0.01
WORKER_BOUND = 0.85      # a worker this busy (cores) is the generator's own limit
MACHINE_BOUND = 0.9      # a machine this busy starves whoever it schedules last


def proc_cpu_s(pid: int) -> float | None:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / TICK


def machine_cpu_s() -> tuple[float, float]:
    """(busy, total) CPU seconds of the whole machine since boot."""
    parts = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = parts[3] + parts[4]
    total = sum(parts[:8])
    return (total - idle) / TICK, total / TICK


def stack_pids(state: StackState) -> dict[str, int]:
    return {d["service"]: d["pid"] for d in state.runtime_state.get("procs", [])}


def group(service: str) -> str:
    return service.rsplit("-", 1)[0]  # gateway-a -> gateway, toxiproxy -> toxiproxy


async def step(topo, pids: dict[str, int], space: str, speaker_id: str, rate: float,
               seconds: float, options: StormOptions, seed: int) -> dict:
    before = {s: proc_cpu_s(p) for s, p in pids.items()}
    busy0, total0 = machine_cpu_s()
    self0 = resource.getrusage(resource.RUSAGE_SELF)
    t = time.monotonic()
    r = await run_storm(topo, space, speaker_id, ArrivalSchedule(rate, seconds, seed=seed), options)
    wall = time.monotonic() - t
    self1 = resource.getrusage(resource.RUSAGE_SELF)
    busy1, total1 = machine_cpu_s()
    after = {s: proc_cpu_s(p) for s, p in pids.items()}
    stack: dict[str, float] = {}
    for s in pids:
        if before[s] is not None and after[s] is not None:
            stack[group(s)] = stack.get(group(s), 0.0) + (after[s] - before[s]) / wall
    parent = ((self1.ru_utime + self1.ru_stime) - (self0.ru_utime + self0.ru_stime)) / wall
    # the workers' CPU covers their storm (start to report), about the step's wall time
    generator = r.generator_cpu_s / wall + parent
    cores = (total1 - total0) / wall
    machine = (busy1 - busy0) / wall
    stack_total = sum(stack.values())
    refused = sum(r.refusals.values())
    late_share = r.late_starts / r.arrivals if r.arrivals else 0.0
    bad_share = r.failed / r.arrivals if r.arrivals else 0.0
    stack_broke = (r.join_p95_s is None or r.join_p95_s > P95_LIMIT_S or bad_share > BAD_SHARE
                   or refused > BAD_SHARE * r.arrivals)
    late = late_share > BAD_SHARE
    busy = machine / cores if cores else 0.0
    worker_bound = max(r.worker_cpu, default=0.0) > WORKER_BOUND
    broke = []
    if stack_broke:
        broke.append("stack")
    if late:
        # the schedule slipped: the workers' own CPU, or a CPU they could not get
        broke.append("generator" if worker_bound or busy < MACHINE_BOUND else "machine")
    return {
        "rate_requested": rate, "rate_scheduled": round(r.rate_requested_per_s, 1),
        "achieved_rate": round(r.achieved_rate_per_s, 1),
        "arrivals": r.arrivals, "joined": r.joined, "failed": r.failed,
        "failures": r.failures, "refusals": r.refusals,
        "join_p50_ms": _ms(r.join_p50_s), "join_p95_ms": _ms(r.join_p95_s),
        "join_p99_ms": _ms(r.join_p99_s),
        "late_starts": r.late_starts, "late_share": round(late_share, 4),
        "lateness_p99_ms": _ms(r.lateness_p99_s), "peak_in_flight": r.peak_in_flight,
        "cpu_cores": {"machine_busy": round(machine, 2), "machine_cores": round(cores, 2),
                      "stack": round(stack_total, 2),
                      "stack_by_kind": {k: round(v, 2) for k, v in sorted(stack.items())},
                      "generator": round(generator, 2), "generator_workers": list(r.worker_cpu),
                      "generator_parent": round(parent, 2),
                      "other": round(max(0.0, machine - stack_total - generator), 2)},
        "cpu_ms_per_join": {"stack": _per_join(stack_total * wall, r.arrivals),
                            "generator": _per_join(generator * wall, r.arrivals)},
        "scale_factor": r.scale_factor.to_dict(),
        "machine_busy_share": round(busy, 3), "broke": broke,
    }


def _ms(s: float | None):
    if s is None:
        return None
    return "inf" if s == float("inf") else round(1000 * s, 1)


def _per_join(cpu_s: float, joins: int) -> float | None:
    return round(1000 * cpu_s / joins, 3) if joins else None


def verdict(rows: list[dict]) -> dict:
    ok = [r for r in rows if not r["broke"]]
    first = next((r for r in rows if r["broke"]), None)
    out = {"sustained_joins_per_s": max((r["achieved_rate"] for r in ok), default=0.0),
           "first_broken_rate": first and first["rate_requested"],
           "saturates_first": None}
    if first is not None:
        c = first["cpu_cores"]
        why = {"stack": "the stack missed its objective",
               "generator": "the generator fell behind on its own CPU",
               "machine": "the generator fell behind because the machine's CPUs were all busy"}
        out["saturates_first"] = (
            f"{' and '.join(first['broke'])} at {first['rate_requested']:g} joins/s "
            f"({'; '.join(why[b] for b in first['broke'])}): join p95 {first['join_p95_ms']} ms, "
            f"{first['failed']} failed, {sum(first['refusals'].values())} refused, "
            f"{first['late_starts']} late starts (lateness p99 {first['lateness_p99_ms']} ms); "
            f"machine {100 * first['machine_busy_share']:.0f} % busy: stack {c['stack']} cores "
            f"({', '.join(f'{k} {v}' for k, v in c['stack_by_kind'].items())}), generator "
            f"{c['generator']} (workers {c['generator_workers']}), other {c['other']}")
        out["cpu_ms_per_join_at_break"] = first["cpu_ms_per_join"]
    return out


async def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--rates", default="100,200,300,400,600,800,1000")
    p.add_argument("--seconds", type=float, default=10.0)
    p.add_argument("--workers", type=int, default=None)
    p.add_argument("--join-timeout", type=float, default=5.0)
    p.add_argument("--edge-direct", action="store_true",
                   help="connect to the edges, not through toxiproxy (no link faults apply)")
    p.add_argument("--no-keepalive", action="store_true", help="a new gateway connection per join")
    p.add_argument("--all", action="store_true", help="run every rate, even after one breaks")
    p.add_argument("--nice", type=int, default=0,
                   help="the workers' niceness change (-10: ahead of the stack for the CPU)")
    args = p.parse_args()
    state = StackState.load()
    if state is None or state.runtime != "local":
        print("bench: start a local stack first: chaos stack up --profile fragile", file=sys.stderr)
        return 2
    topo = state.topology
    pids = stack_pids(state)
    options = StormOptions(workers=args.workers, hold_s=0.0, join_timeout_s=args.join_timeout,
                           edge_direct=args.edge_direct, http_keepalive=not args.no_keepalive,
                           keep_samples=False, worker_nice=args.nice)
    print(json.dumps({"profile": topo.profile, "workers": options.worker_count(),
                      "edge_direct": args.edge_direct, "nice": args.nice, "keepalive": not args.no_keepalive,
                      "seconds": args.seconds, "cpus": os.cpu_count(),
                      "loadavg_before": os.getloadavg()}), flush=True)
    gws = [g.public for g in topo.of_kind("gateway")]
    stop = asyncio.Event()
    rows = []
    async with aiohttp.ClientSession() as session:
        space = await create_space(session, gws, f"bench-joins-{int(time.time())}")
        speaker = Speaker(session, gws[:1], space, retry=RetryPolicy("fixed", 0.1))
        sp_task = asyncio.create_task(speaker.run(stop))
        await asyncio.wait_for(speaker.connected.wait(), 5)
        try:
            for i, rate in enumerate(float(x) for x in args.rates.split(",")):
                row = await step(topo, pids, space, speaker.id, rate, args.seconds, options, seed=i)
                rows.append(row)
                print(json.dumps(row), flush=True)
                if row["broke"] and not args.all:
                    break
                await asyncio.sleep(2.0)  # let TIME_WAITs and the edges settle between steps
        finally:
            stop.set()
            await sp_task
            await speaker.close()
    print(json.dumps(verdict(rows) | {"loadavg_after": os.getloadavg()}), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
