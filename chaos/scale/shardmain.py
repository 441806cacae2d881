"""One shard's process: ``python -m chaos.scale.shardmain`` (what every engine runs).

It reads its contract from the environment (chaos.scale.shard.from_env), connects to the
coordinator, answers its clock pings, receives the plan and T0 (already on this shard's
clock), fires its segment with the load generator's worker storm, and streams one
snapshot a second: an HdrHistogram of the joins resolved in that second and the counts
of arrivals fired, joined, failed and late. A ``halt`` stops its arrivals at once (joins
in flight finish within their timeout); it answers ``halted`` when nothing more will be
fired. It stops at its own hard deadline whatever happens, and exits if the coordinator
goes away.
"""

from __future__ import annotations

import asyncio
import base64
import os
import socket
import sys
import time

from chaos.load.worker import WorkerStorm
from chaos.scale import wire
from chaos.audio.histogram import Histogram
from chaos.scale.plan import StormPlan
from chaos.scale.shard import Shard, from_env

CONNECT_TIMEOUT_S = 60.0     # the coordinator may start after the engine's first shards
IDLE_S = 900.0               # between storms of one run (then the shard exits)
MAX_STORMS = 1000            # storms of one run, a bound


class ShardStorm(WorkerStorm):
    """The worker storm, with per-second snapshots and a halt report."""

    def __init__(self, spec, t0: float, writer: asyncio.StreamWriter) -> None:
        super().__init__(spec, t0)
        self.writer = writer
        self.snap = Histogram()
        self.sent = {"fired": 0, "joined": 0, "failed": 0, "late": 0}

    def _sample(self, start: float, value: float) -> None:
        super()._sample(start, value)
        self.snap.record(value)

    async def _schedule(self) -> None:
        await super()._schedule()
        if self._release.is_set():
            await wire.send(self.writer, "halted", fired=self.fired, shard_wall=time.time())

    async def snapshot(self, sec: int) -> None:
        now = {"fired": self.fired, "joined": self.joined,
               "failed": self.join.failed, "late": self.late_starts}
        delta = {k: now[k] - self.sent[k] for k in now}
        self.sent = now
        part, self.snap = self.snap, Histogram()
        part.failed = delta["failed"]  # arrivals never fired are failed too, without a sample
        await wire.send(self.writer, "snap", sec=sec, join=part.to_dict(), **delta)

    async def stream(self) -> None:
        sec = 0
        while True:
            await asyncio.sleep(max(0.0, self.t0 + sec + 1 - time.monotonic()))
            await self.snapshot(sec)
            sec += 1


async def run(shard: Shard) -> int:
    reader, writer = await _connect(shard)
    await wire.send(writer, "hello", index=shard.index, count=shard.count, pid=os.getpid(),
                    host=os.environ.get("CHAOS_SHARD_NAME") or socket.gethostname())
    for _ in range(MAX_STORMS):
        if not await _storm(shard, reader, writer):
            return 0     # the pool closed: the run is over
    return 0


async def _storm(shard: Shard, reader, writer) -> bool:
    """One storm: clock pings, the start, the storm, the final report. False when the
    coordinator has closed the connection (or was silent for IDLE_S)."""
    try:
        async with asyncio.timeout(IDLE_S):
            while True:
                msg = await wire.recv(reader)
                if msg is None:
                    return False
                if msg["kind"] == "ping":
                    await wire.send(writer, "pong", t=msg["t"], shard_wall=time.time())
                elif msg["kind"] == "start":
                    break
    except TimeoutError:
        return False
    plan = StormPlan.from_json(msg["plan"])
    t0 = time.monotonic() + (msg["t0_wall"] - time.time())
    storm = ShardStorm(plan.worker_spec(shard), t0, writer)
    release = asyncio.Event()

    async def listen() -> None:
        while (m := await wire.recv(reader)) is not None:
            if m["kind"] in ("release", "halt"):
                release.set()
        os._exit(3)  # the coordinator is gone: nobody will read a result

    listener = asyncio.create_task(listen())
    streamer = asyncio.create_task(storm.stream())
    drained = lambda: asyncio.ensure_future(wire.send(writer, "drained"))  # noqa: E731
    try:
        report = await storm.run(release, drained)
    finally:
        streamer.cancel()
    await storm.snapshot(int(max(0.0, time.monotonic() - t0)))
    # each join's (start since T0, time): the coordinator can check its merge against them
    report["samples"] = base64.b64encode(report["samples"]).decode("ascii")
    listener.cancel()
    await asyncio.gather(listener, return_exceptions=True)
    await wire.send(writer, "final", report=report)
    return True


async def _connect(shard: Shard):
    host, port = shard.address
    end = time.monotonic() + CONNECT_TIMEOUT_S
    while True:
        try:
            return await asyncio.open_connection(host, port, limit=wire.MAX_LINE)
        except OSError:
            if time.monotonic() > end:
                raise
            await asyncio.sleep(0.2)


def main() -> int:
    shard = from_env()
    return asyncio.run(run(shard))


if __name__ == "__main__":
    sys.exit(main())
