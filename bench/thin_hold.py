"""Benchmark: how many thin listeners this machine holds joined at once, with the stack.

Against a running local stack (`chaos stack up`). The edges' capacity is raised first
(`/admin/capacity`). Listeners join a space with NO speaker (idle sockets: what is
measured is holding, not fan-out) through chaos.load: join request -> WebSocket to the
edge (through toxiproxy, unless --edge-direct) -> held; a listener counts as held while
its socket is open. Each step joins TARGET listeners at RATE joins/s spread over WORKERS
processes, holds them HOLD seconds, and reports: joined, failed (by reason: EMFILE on the
generator's side shows as generator:too_many_open_files, a stack process out of fds as
connection errors or drops), drops while held (reconnects), the peak held, what the
edges themselves count, and the memory, fds and CPU of both sides (from /proc).

    .venv/bin/python bench/thin_hold.py [--targets 2500,5000,10000,15000] [--rate 250]
                                        [--hold 10] [--workers 4] [--edge-direct]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import os
import sys
import time
import urllib.request
from pathlib import Path

import aiohttp

from chaos.load import ArrivalSchedule, StormOptions, run_storm
from chaos.adapters.space import reference
from chaos.adapters.space.joinapi import Refused, create_space
from chaos.targets.state import StackState

TICK = os.sysconf("SC_CLK_TCK")
PAGE_KB = os.sysconf("SC_PAGE_SIZE") // 1024


def proc_stats(pid: int) -> dict | None:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        fds = len(os.listdir(f"/proc/{pid}/fd"))
    except OSError:
        return None
    return {"cpu_s": (int(fields[11]) + int(fields[12])) / TICK,
            "rss_mb": int(fields[21]) * PAGE_KB / 1024, "fds": fds}


def fd_limit(pid: int) -> int | None:
    try:
        for line in Path(f"/proc/{pid}/limits").read_text().splitlines():
            if line.startswith("Max open files"):
                return int(line.split()[3])
    except (OSError, ValueError, IndexError):
        return None
    return None


def edge_listeners(topo) -> dict[str, int]:
    out = {}
    for e in topo.of_kind("edge"):
        try:
            with urllib.request.urlopen(f"http://{e.address}/health", timeout=2) as r:
                out[e.name] = json.loads(r.read())["listeners"]
        except (OSError, ValueError, KeyError):
            out[e.name] = -1
    return out


def set_capacity(topo, n: int | None) -> None:
    for e in topo.of_kind("edge"):
        value = "none" if n is None else str(n)
        with urllib.request.urlopen(f"http://{e.address}/admin/capacity?listeners={value}", timeout=3):
            pass


class Monitor:
    """Polls the edges' counts and both sides' processes once a second (bounded by the step)."""

    def __init__(self, topo, stack: dict[str, int]) -> None:
        self.topo, self.stack = topo, stack
        self.peak_edge_total = 0
        self.peak: dict[str, dict] = {}
        self.workers: set[int] = set()

    def sample(self) -> None:
        counts = edge_listeners(self.topo)
        self.peak_edge_total = max(self.peak_edge_total, sum(max(0, v) for v in counts.values()))
        named = {**self.stack, **{f"worker-{pid}": pid for pid in self.workers}}
        for name, pid in named.items():
            st = proc_stats(pid)
            if st is None:
                continue
            top = self.peak.setdefault(name, {"rss_mb": 0.0, "fds": 0})
            top["rss_mb"] = round(max(top["rss_mb"], st["rss_mb"]), 1)
            top["fds"] = max(top["fds"], st["fds"])

    async def run(self, stop: asyncio.Event, limit_s: float) -> None:
        end = time.monotonic() + limit_s
        while not stop.is_set() and time.monotonic() < end:
            self.workers.update(p.pid for p in multiprocessing.active_children())
            await asyncio.to_thread(self.sample)
            try:
                await asyncio.wait_for(stop.wait(), 1.0)
            except TimeoutError:
                pass


async def new_space(topo, name: str, within_s: float = 60.0) -> str:
    """Create the space, waiting (bounded) for gateways still digesting the last step."""
    gws = [g.public for g in topo.of_kind("gateway")]
    end = time.monotonic() + within_s
    async with aiohttp.ClientSession() as session:
        while True:
            try:
                return await create_space(session, gws, name)
            except Refused:
                if time.monotonic() > end:
                    raise
                await asyncio.sleep(2.0)


async def step(topo, stack: dict[str, int], target: int, rate: float, hold_s: float,
               workers: int, edge_direct: bool) -> dict:
    ramp_s = target / rate
    schedule = ArrivalSchedule(rate, ramp_s + hold_s, process="even", max_joins=target)
    options = StormOptions(workers=workers, hold_s=None, join_timeout_s=10.0,
                           max_held_per_worker=target, edge_direct=edge_direct,
                           keep_samples=False, grace_s=12.0)
    space = await new_space(topo, f"bench-hold-{target}-{int(time.time())}")
    before = {s: proc_stats(p) for s, p in stack.items()}
    monitor = Monitor(topo, stack)
    stop = asyncio.Event()
    mon = asyncio.create_task(monitor.run(stop, ramp_s + hold_s + 60))
    t = time.monotonic()
    try:
        r = await run_storm(topo, space, None, schedule, options)
    finally:
        stop.set()
        await mon
    wall = time.monotonic() - t
    after = {s: proc_stats(p) for s, p in stack.items()}
    stack_cpu = {s: round((after[s]["cpu_s"] - before[s]["cpu_s"]) / wall, 2)
                 for s in stack if before.get(s) and after.get(s)}
    return {
        "target": target, "rate": rate, "hold_s": hold_s, "workers": r.workers,
        "joined": r.joined, "failed": r.failed, "failures": r.failures,
        "refusals": r.refusals, "drops_while_held": r.reconnects,
        "rejoin_failures": r.reconnect_failures, "peak_held": r.peak_concurrent,
        "peak_edge_listeners": monitor.peak_edge_total,
        "join_p95_ms": None if r.join_p95_s is None else
        ("inf" if r.join_p95_s == float("inf") else round(1000 * r.join_p95_s, 1)),
        "late_starts": r.late_starts,
        "generator": {"cpu_cores": list(r.worker_cpu), "peak": {k: v for k, v in monitor.peak.items()
                                                                 if k.startswith("worker-")}},
        "stack": {"cpu_cores": stack_cpu, "peak": {k: v for k, v in monitor.peak.items()
                                                    if not k.startswith("worker-")}},
        "scale_factor": r.scale_factor.to_dict(), "errors": list(r.errors[:3]),
        "ok": r.failed <= 0.01 * target and r.reconnects <= 0.01 * target
              and r.peak_concurrent >= 0.99 * target,
    }


async def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--targets", default="2500,5000,10000,15000")
    p.add_argument("--rate", type=float, default=250.0,
                   help="joins/s while filling (kept under what the join path sustains here)")
    p.add_argument("--hold", type=float, default=10.0, help="seconds to hold them all")
    p.add_argument("--workers", type=int, default=4)
    p.add_argument("--edge-direct", action="store_true",
                   help="connect to the edges, not through toxiproxy (2 fds a listener there)")
    p.add_argument("--all", action="store_true", help="run every target, even after one fails")
    args = p.parse_args()
    state = StackState.load()
    if state is None or state.runtime != "local":
        print("bench: start a local stack first: chaos stack up", file=sys.stderr)
        return 2
    topo = state.topology
    stack = {d["service"]: d["pid"] for d in state.runtime_state.get("procs", [])}
    print(json.dumps({"profile": topo.profile, "edge_direct": args.edge_direct,
                      "workers": args.workers, "rate": args.rate, "hold_s": args.hold,
                      "fd_limits": {s: fd_limit(pid) for s, pid in stack.items()
                                    if s.split("-")[0] in ("edge", "toxiproxy")},
                      "generator_fd_limit": fd_limit(os.getpid()),
                      "loadavg_before": os.getloadavg()}), flush=True)
    targets = [int(x) for x in args.targets.split(",")]
    set_capacity(topo, max(targets) + 1000)
    rows = []
    try:
        for target in targets:
            row = await step(topo, stack, target, args.rate, args.hold, args.workers, args.edge_direct)
            rows.append(row)
            print(json.dumps(row), flush=True)
            if not row["ok"] and not args.all:
                break
            await asyncio.sleep(5.0)  # the edges drop the last sockets, TIME_WAITs settle
    finally:
        set_capacity(topo, reference.topology(topo).settings.edge_capacity)   # the profile's own
    held = [r["peak_held"] for r in rows if r["ok"]]
    print(json.dumps({"held_at_once": max(held, default=0),
                      "first_failed_target": next((r["target"] for r in rows if not r["ok"]), None),
                      "loadavg_after": os.getloadavg()}), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
