"""Benchmark: how many real-rate thick listeners one core sustains, and what saturates first.

Against a running local stack (`chaos stack up`). A speaker, in a child process of its
own, publishes at real rate; N thick listeners in THIS process listen to one edge. They
connect straight to the edge's own address with a token from one join (the figure is
then the listeners' and the edge's, not toxiproxy's or the gateway's), and record through
the same path as in a run (``ThickListener._received``: the thin bookkeeping plus the
message kept in the byte log). Per step it measures, over a window of ``--seconds`` once
every listener is in:

* listener CPU: this process's CPU seconds per wall second (``time.process_time``), hence
  listeners per core = N / that;
* the edge process's CPU seconds per wall second (/proc/<pid>/stat), the other thing that
  can saturate;
* on time: frames captured in the window that arrived within the playout deadline
  (``--deadline-ms``, default 400) and within the tight budget (``--budget-ms``, 60 ms as
  in bench/edge_fanout.py); latency p50/p95/p99; and this process's event-loop lag (how
  late a 10 ms timer fires: > a frame means the listeners themselves are saturated);
* after the run, the analysis cost: ``thick.analyse`` on ``--analyse`` listeners, CPU
  seconds per listener-second of audio.

A step is "late" when fewer than 99.5 % of the window's frames arrive within the playout
deadline (the audio_delivered SLO, as ``thick.analyse`` judges it); the share within the
tight budget is reported beside it. ``cpu_wait_per_wall`` is the time each process was
runnable but waiting for a CPU held by other processes: high values mean the machine was
starved by other work, and the step says little about capacity.

    CHAOS_HOME=/tmp/x .venv/bin/chaos stack up --base-port 33500
    CHAOS_HOME=/tmp/x .venv/bin/python bench/thick_listeners.py [--steps 100,250,500,750,1000]
    CHAOS_HOME=/tmp/x .venv/bin/chaos stack down
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing as mp
import os
import pickle
import resource
import sys
import time
import urllib.request

import aiohttp
import numpy as np

from chaos.adapters.space.joinapi import create_space, join
from chaos.adapters.space.listener import Listener
from chaos.adapters.space.speaker import Speaker
from chaos.adapters.space.thick import RunCache, ThickListener, analyse
from chaos.core.slo import percentile
from chaos.targets import procs
from chaos.targets.state import StackState
from chaos.core.retry import RetryPolicy

from recording import RecordingReception

SPEAKER = "spk-1"
BATCH = 100           # handshakes opened together
MAX_LISTENERS = 3000  # a bound on any step

CLK_TCK = os.sysconf("SC_CLK_TCK")


class Direct:
    """Connects straight to one edge's own address (mixed into a listener class)."""

    url = ""
    edge_name = ""
    edge_dc = ""

    async def _connect(self, deadline: float):
        last = "no attempt"
        for _ in range(100):  # bounded in count and by the deadline
            left = deadline - time.monotonic()
            if left <= 0:
                break
            try:
                ws = await self._open(self.url, max(0.1, min(left, 5.0)))  # the listener's own socket
                self.rec.edge, self.rec.dc = self.edge_name, self.edge_dc
                self.rec.edges_seen.append(self.edge_name)
                return ws
            except Exception as e:  # noqa: BLE001 - every failure is retried, bounded
                last = f"{type(e).__name__}: {e}"[:200]
                await asyncio.sleep(0.2)
        raise TimeoutError(last)


class DirectThick(Direct, ThickListener):
    pass


class DirectThin(Direct, Listener):
    pass


def _speaker_main(gateway: str, space: str, conn, limit_s: float) -> None:
    """Child process: publish until told to stop (or limit_s), then send what was produced."""

    async def go():
        stop = asyncio.Event()
        async with aiohttp.ClientSession() as s:
            sp = Speaker(s, [gateway], space, SPEAKER, retry=RetryPolicy("fixed", 0.1))
            task = asyncio.create_task(sp.run(stop))
            await asyncio.wait_for(sp.connected.wait(), 10)
            conn.send("connected")
            t_end = time.monotonic() + limit_s
            while time.monotonic() < t_end and not conn.poll():
                await asyncio.sleep(0.05)
            stop.set()
            await task
            await asyncio.sleep(0.5)  # the last frames drain before hanging up
            await sp.close()
            conn.send((sp.id, sp.seed, sp.produced))

    asyncio.run(go())


def proc_cpu_s(pid: int) -> float:
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK  # utime + stime


def run_delay_s(pid: int) -> float:
    """Seconds the process's main thread spent runnable but waiting for a CPU (taken by
    other processes): starvation, as opposed to saturation."""
    with open(f"/proc/{pid}/schedstat") as f:
        return int(f.read().split()[1]) / 1e9


async def loop_lag(stop: asyncio.Event, out: list[float]) -> None:
    while not stop.is_set():
        t = time.monotonic()
        await asyncio.sleep(0.01)
        out.append(time.monotonic() - t - 0.01)


async def step(state: StackState, n: int, kind: str, seconds: float, deadline_s: float,
               budget_s: float, sample: int, edge_name: str, keep_dir: str = "") -> dict:
    topo = state.topology
    edge = topo.services[edge_name]
    edge_pid = next(p["pid"] for p in state.runtime_state["procs"] if p["service"] == edge_name)
    with urllib.request.urlopen(f"http://{edge.address}/admin/capacity?listeners={n + 50}", timeout=3):
        pass
    gw = next(g.public for g in topo.of_kind("gateway") if g.dc == edge.dc)
    async with aiohttp.ClientSession() as s:
        space = await create_space(s, [gw], f"bench-thick-{n}-{int(time.time())}")
        token = (await join(s, gw, space, "listener", 5.0)).body["token"]
    parent, child = mp.get_context("spawn").Pipe()
    speaker = mp.get_context("spawn").Process(target=_speaker_main, args=(gw, space, child, seconds + 60),
                                              daemon=True)
    speaker.start()
    try:
        if not await asyncio.to_thread(parent.poll, 20):
            raise RuntimeError("the speaker did not connect within 20 s")
        parent.recv()
        cls = DirectThick if kind == "thick" else DirectThin
        stop = asyncio.Event()
        ls = [cls(None, i, edge.dc, [], space, SPEAKER, RetryPolicy("fixed", 0.2), 30.0) for i in range(n)]
        for lst in ls:
            lst.rec.rx = RecordingReception()
        for lst in ls:
            lst.url = f"ws://{edge.address}/listen?space={space}&token={token}"
            lst.edge_name, lst.edge_dc = edge_name, edge.dc
        tasks = []
        for i in range(0, n, BATCH):
            tasks += [asyncio.create_task(lst.run(stop)) for lst in ls[i:i + BATCH]]
            await asyncio.sleep(0.1)
        t_wait = time.monotonic() + 30
        while time.monotonic() < t_wait and sum(r.rec.join_s is not None for r in ls) < n:
            await asyncio.sleep(0.2)
        await asyncio.sleep(1.0)  # settle
        lags: list[float] = []
        lag_stop = asyncio.Event()
        lag_task = asyncio.create_task(loop_lag(lag_stop, lags))
        me, sp = os.getpid(), speaker.pid
        w0_ns, w0, c0, e0 = time.time_ns(), time.monotonic(), time.process_time(), proc_cpu_s(edge_pid)
        d0 = [run_delay_s(p) for p in (me, edge_pid, sp)]
        await asyncio.sleep(seconds)
        w1_ns, w1, c1, e1 = time.time_ns(), time.monotonic(), time.process_time(), proc_cpu_s(edge_pid)
        d1 = [run_delay_s(p) for p in (me, edge_pid, sp)]
        load = os.getloadavg()[0]
        lag_stop.set()
        await lag_task
        parent.send("stop")
        if not await asyncio.to_thread(parent.poll, 10):
            raise RuntimeError("the speaker did not report")
        speaker_id, seed, produced = parent.recv()
        await asyncio.sleep(0.5)  # drain
        stop.set()
        await asyncio.wait_for(asyncio.gather(*tasks, return_exceptions=True), 30)
    finally:
        speaker.join(5)
        if speaker.is_alive():
            speaker.terminate()
    wall = w1 - w0
    cpu = (c1 - c0) / wall
    # Frames captured in the measurement window, as every listener received them.
    win = [q for q, cap in produced if w0_ns <= cap < w1_ns - int(deadline_s * 1e9)]
    lo, hi = (win[0], win[-1]) if win else (0, -1)
    lat, got_deadline, got_budget, joined = [], 0, 0, 0
    for lst in ls:
        r = lst.rec
        if r.join_s is None:
            continue
        joined += 1
        for q, ns in zip(r.rx.seqs, r.rx.latency_ns):
            if lo <= q <= hi:
                lat.append(ns / 1e9)
                got_deadline += ns <= deadline_s * 1e9
                got_budget += ns <= budget_s * 1e9
    expected = joined * len(win)
    row = {"kind": kind, "listeners": n, "joined": joined, "window_s": round(wall, 2),
           "cpu_per_wall": round(cpu, 3),
           "listeners_per_core": round(n / cpu) if cpu > 0 else None,
           "us_per_frame": round(1e6 * (c1 - c0) / max(1, len(lat)), 1),
           "edge_cpu_per_wall": round((e1 - e0) / wall, 3),
           "cpu_wait_per_wall": {k: round((b - a) / wall, 3)
                                 for k, a, b in zip(("listeners", "edge", "speaker"), d0, d1)},
           "load_avg_1m": round(load, 2),
           "on_time_deadline": round(got_deadline / expected, 4) if expected else None,
           "on_time_budget": round(got_budget / expected, 4) if expected else None,
           "p50_ms": round(1000 * (percentile(lat, 50) or 0), 1),
           "p95_ms": round(1000 * (percentile(lat, 95) or 0), 1),
           "p99_ms": round(1000 * (percentile(lat, 99) or 0), 1),
           "loop_lag_p99_ms": round(1000 * (percentile(lags, 99) or 0), 1),
           "loop_lag_max_ms": round(1000 * max(lags, default=0), 1)}
    row["late"] = expected == 0 or got_deadline / expected < 0.995
    if kind == "thick":
        row["log_kb_per_listener_s"] = round(
            np.mean([sum(map(len, lst.rec.segments.values())) + len(lst.rec.log) for lst in ls])
            / 1024 / (len(produced) * 0.02), 2)
        t_first = produced[0][1] if produced else 0
        cache = RunCache(seed)
        cache.signal(0, len(produced))  # generated once per run, shared; not counted per listener
        picked = [lst for lst in ls if lst.rec.join_s is not None][:sample]
        costs, reports = [], []
        for lst in picked:  # the first one cold; the others reuse identical windows' echo
            c = time.process_time()
            reports.append(analyse(lst.rec, produced, seed=seed, run_start_ns=t_first, cache=cache,
                                   playout_deadline_s=deadline_s))
            costs.append((time.process_time() - c) / max(1e-9, reports[-1].frames_expected * 0.02))
        row["analysis_cpu_s_per_listener_s"] = round(costs[0], 4) if costs else None
        row["analysis_cpu_s_per_listener_s_shared"] = (round(float(np.mean(costs[1:])), 4)
                                                        if len(costs) > 1 else None)
        row["echo_windows_analysed"] = f"{cache.misses} of {cache.misses + cache.hits}"
        if keep_dir:
            os.makedirs(keep_dir, exist_ok=True)
            with open(os.path.join(keep_dir, f"step-{n}.pickle"), "wb") as f:
                pickle.dump({"produced": produced, "seed": seed, "deadline_s": deadline_s,
                             "records": [lst.rec for lst in picked]}, f)
        row["analysed"] = [{"delivered": rep.audio_delivered, "echo_db": rep.echo_db,
                            "silence_s": rep.silence_longest_s, "mos": rep.mos and round(rep.mos, 2)}
                           for rep in reports[:3]]
    return row


async def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--steps", default="100,250,500,750,1000")
    p.add_argument("--seconds", type=float, default=8.0)
    p.add_argument("--kinds", default="thick", help="thick, thin or thick,thin (compare)")
    p.add_argument("--deadline-ms", type=float, default=400.0)
    p.add_argument("--budget-ms", type=float, default=60.0)
    p.add_argument("--analyse", type=int, default=5, help="listeners analysed after each step")
    p.add_argument("--edge", default="edge-a")
    p.add_argument("--keep-records", default="", metavar="DIR",
                   help="pickle the analysed listeners' records and the speaker's frames here")
    p.add_argument("--keep-going", action="store_true", help="run every step even after a late one")
    args = p.parse_args()
    state = StackState.load()
    if state is None or state.runtime != "local":
        print("bench: start a local stack first: chaos stack up", file=sys.stderr)
        return 2
    if not 1 <= args.seconds <= 120:
        print("bench: --seconds must be 1 to 120", file=sys.stderr)
        return 2
    steps = [int(x) for x in args.steps.split(",")]
    if any(not 1 <= n <= MAX_LISTENERS for n in steps):
        print(f"bench: steps must be 1 to {MAX_LISTENERS}", file=sys.stderr)
        return 2
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    procs_ok = all(procs.is_ours(procs.Proc.from_dict(d), state.stack_id)
                   for d in state.runtime_state["procs"] if d["service"] == args.edge)
    if not procs_ok:
        print(f"bench: {args.edge} is not this stack's process; is the stack up?", file=sys.stderr)
        return 1
    rows = []
    for n in steps:
        for kind in args.kinds.split(","):
            row = await step(state, n, kind, args.seconds, args.deadline_ms / 1000,
                             args.budget_ms / 1000, args.analyse, args.edge, args.keep_records)
            rows.append(row)
            print(json.dumps(row), flush=True)
        if any(r["late"] for r in rows if r["listeners"] == n) and not args.keep_going:
            break
    thick = [r for r in rows if r["kind"] == "thick"]
    ok = [r["listeners"] for r in thick if not r["late"]]
    print(json.dumps({"thick_listeners_on_time": max(ok) if ok else 0,
                      "first_late": next((r["listeners"] for r in thick if r["late"]), None),
                      "listeners_per_core_at_largest_on_time": next(
                          (r["listeners_per_core"] for r in reversed(thick) if not r["late"]), None),
                      "cores": os.cpu_count(), "load_avg_1m": round(os.getloadavg()[0], 2)}))
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
