"""Benchmark: how many real-rate listeners one edge process serves before frames arrive late.

Against a running local stack (`chaos stack up`). One speaker publishes at real rate; the
audience on edge-a grows in steps. Most listeners are sinks (a real WebSocket handshake,
then bytes counted without parsing, so that the client side stays cheap); a sample of
measuring listeners decodes every frame header and records receive - capture time. The
sinks connect straight to the edge's own address, so that the figure is the edge
process's, not toxiproxy's.

A step is "late" when the measuring listeners' p95 delay exceeds the playout budget
(default 60 ms, three frames) or they miss more than 0.5 % of frames.

    .venv/bin/python bench/edge_fanout.py [--steps 250,500,1000,1500,2000,3000] [--seconds 8]
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import os
import sys
import time
import urllib.request
from urllib.parse import urlsplit

import aiohttp

from chaos.adapters.space.joinapi import create_space, join
from chaos.adapters.space.listener import Listener
from chaos.adapters.space.speaker import Speaker
from chaos.core.slo import percentile
from chaos.targets.state import StackState
from chaos.core.retry import RetryPolicy

from recording import RecordingReception

SAMPLE = 10


def _recording(lst: Listener) -> Listener:
    lst.rec.rx = RecordingReception()
    return lst


async def sink(host: str, port: int, path: str, counter: list[int], stop: asyncio.Event) -> None:
    reader, writer = await asyncio.open_connection(host, port)
    key = base64.b64encode(os.urandom(16)).decode()
    writer.write((f"GET {path} HTTP/1.1\r\nHost: {host}:{port}\r\nUpgrade: websocket\r\n"
                  f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
                  "Sec-WebSocket-Version: 13\r\n\r\n").encode())
    head = await reader.readuntil(b"\r\n\r\n")
    if b" 101 " not in head.split(b"\r\n", 1)[0]:
        writer.close()
        raise RuntimeError(head.split(b"\r\n", 1)[0].decode())
    try:
        while not stop.is_set():
            chunk = await reader.read(65536)
            if not chunk:
                break
            counter[0] += len(chunk)
    finally:
        writer.close()


async def step(topo, n: int, seconds: float, budget_s: float) -> dict:
    edge = topo.services["edge-a"]
    host, port = edge.address.rsplit(":", 1)
    with urllib.request.urlopen(f"http://{edge.address}/admin/capacity?listeners={n + 100}", timeout=3):
        pass
    gw = topo.services["gateway-a"].public
    stop, stop_measuring, stop_sinks = asyncio.Event(), asyncio.Event(), asyncio.Event()
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as s:
        space = await create_space(s, [gw], f"bench-{n}-{int(time.time())}")
        token = (await join(s, gw, space, "listener", 5.0)).body["token"]
        speaker = Speaker(s, [gw], space, retry=RetryPolicy("fixed", 0.1))
        sp_task = asyncio.create_task(speaker.run(stop))
        await asyncio.wait_for(speaker.connected.wait(), 5)
        counter = [0]
        path = f"/listen?space={space}&token={token}"
        sinks = []
        for i in range(n):  # bounded: n connections, opened in batches
            sinks.append(asyncio.create_task(sink(host, int(port), path, counter, stop_sinks)))
            if i % 200 == 199:
                await asyncio.sleep(0.05)
        await asyncio.sleep(1.0)
        measuring = [_recording(Listener(s, i, "dc-a", [gw], space, speaker.id, RetryPolicy("fixed", 0.2), 10.0))
                     for i in range(SAMPLE)]
        m_tasks = [asyncio.create_task(m.run(stop_measuring)) for m in measuring]
        await asyncio.sleep(seconds)
        stop.set()
        await sp_task
        await asyncio.sleep(0.5)  # frames still in flight
        stop_measuring.set()
        await asyncio.gather(*m_tasks, return_exceptions=True)
        stop_sinks.set()
        for t in sinks:
            t.cancel()
        results = await asyncio.gather(*sinks, return_exceptions=True)
        await speaker.close()
    failed_sinks = sum(1 for r in results if isinstance(r, Exception) and not isinstance(r, asyncio.CancelledError))
    lat = [ns / 1e9 for m in measuring for ns in m.rec.rx.latency_ns]
    last = speaker.produced[-1][0]
    expected = sum(last - m.rec.rx.seqs[0] + 1 for m in measuring if m.rec.rx.seqs)
    got = sum(len(m.rec.rx.seqs) for m in measuring)
    p95 = percentile(lat, 95)
    delivered = got / expected if expected else 0.0
    return {"listeners": n + SAMPLE, "sinks_failed": failed_sinks,
            "p50_ms": round(1000 * (percentile(lat, 50) or 0), 1),
            "p95_ms": round(1000 * (p95 or 0), 1), "delivered": round(delivered, 4),
            "sink_mbit_s": round(counter[0] * 8 / 1e6 / seconds, 1),
            "late": p95 is None or p95 > budget_s or delivered < 0.995}


async def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--steps", default="250,500,1000,1500,2000,3000")
    p.add_argument("--seconds", type=float, default=8.0)
    p.add_argument("--budget-ms", type=float, default=60.0)
    args = p.parse_args()
    state = StackState.load()
    if state is None or state.runtime != "local":
        print("bench: start a local stack first: chaos stack up", file=sys.stderr)
        return 2
    rows = []
    for n in [int(x) for x in args.steps.split(",")]:
        row = await step(state.topology, n, args.seconds, args.budget_ms / 1000)
        rows.append(row)
        print(json.dumps(row), flush=True)
        if row["late"]:
            break
    ok = [r["listeners"] for r in rows if not r["late"]]
    print(json.dumps({"edge_listeners_on_time": max(ok) if ok else 0,
                      "first_late": next((r["listeners"] for r in rows if r["late"]), None),
                      "budget_ms": args.budget_ms}))
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
