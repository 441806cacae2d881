"""One process of a probe's thin listeners: joins its share, listens at real rate on the
lean receive path, and streams what they heard, aggregated, once a second.

Talks to the parent (chaos.session.crowd) over a pipe: ("ready", pid) <- ("start",) then,
every second, ("tick", {dc: bins delta}, [join states that changed], [health seconds])
... <- ("stop",) ("done", {dc: bins delta}, [record summaries], health). It keeps no
history: bins are handed over as their seconds close, so its memory stays flat. It
ignores Ctrl-C (the parent decides), dies with its parent, and stops at its hard
deadline whatever happens.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass

import aiohttp

from chaos.core.retry import RetryPolicy
from chaos.audio.sli import PLAYOUT_DEADLINE_S
from chaos.core.target import Target
from chaos.audio import child
from chaos.audio.reception import NS, SecondBins
from chaos.session.watch import LoopWatch

THIN_SLIS = ("join_time", "audio_delivered", "mouth_to_ear", "audience_retained")
SETTLE_S = 0.2            # a second is handed over once its frames' deadline and this passed


@dataclass(frozen=True)
class CrowdSpec:
    index: int
    listeners: tuple[tuple[int, str], ...]       # (listener index, home DC)
    target: dict                                 # the target (Target.to_dict()): its adapter
    space: str
    speaker_id: str
    retry: RetryPolicy
    join_timeout_s: float
    epoch_ns: int                                # the run's t0: seconds count from it
    hard_stop_s: float                           # seconds after start: stop whatever happens


def _closed_second(epoch_ns: int) -> int:
    """Seconds [0, this) are final: their frames' playout deadline has passed."""
    return max(0, int((time.time_ns() - epoch_ns) / NS - PLAYOUT_DEADLINE_S - SETTLE_S))


def _join_state(lst) -> tuple:
    r = lst.rec
    return (r.index, r.started_ns, r.join_s, r.join_error, r.joined_ns, r.edge, r.dc, r.reconnects)


async def _serve(spec: CrowdSpec, conn) -> None:
    stop = asyncio.Event()
    child.on_parent(conn, "stop", stop)
    watch = LoopWatch(spec.epoch_ns, f"listeners-{spec.index}", THIN_SLIS).start()
    from chaos import adapters
    target = Target.from_dict(spec.target)
    adapter = adapters.get(target.adapter)
    bins = {dc: SecondBins(spec.epoch_ns, PLAYOUT_DEADLINE_S) for dc in target.dcs}
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as session:
        listeners = [adapter.new_listener(session, i, dc, target, spec.space, spec.speaker_id,
                                          spec.retry, spec.join_timeout_s, bins=bins[dc])
                     for i, dc in spec.listeners]
        tasks = [asyncio.create_task(lst.run(stop)) for lst in listeners]
        sent: dict[int, tuple] = {}
        health_sent = 0
        end = time.monotonic() + spec.hard_stop_s
        while not stop.is_set() and time.monotonic() < end:
            try:
                await asyncio.wait_for(stop.wait(), 1.0)
            except TimeoutError:
                pass
            upto = _closed_second(spec.epoch_ns)
            changed = []
            for lst in listeners:
                st = _join_state(lst)
                if sent.get(st[0]) != st:
                    sent[st[0]] = st
                    changed.append(st)
            h = watch.health
            new = (h.first_s + health_sent, h.lag_ms[health_sent:].tolist(),
                   h.cpu_pct[health_sent:].tolist(), h.rss_mb[health_sent:].tolist())
            health_sent = len(h.lag_ms)
            conn.send(("tick", {dc: b.take(upto) for dc, b in bins.items()}, changed, new))
        stop.set()
        await asyncio.gather(*tasks, return_exceptions=True)
    health = await watch.stop()
    conn.send(("done", {dc: b.take(b.seconds) for dc, b in bins.items()},
               [lst.rec.summary() for lst in listeners], health.to_dict()))


def main(spec: CrowdSpec, conn) -> None:
    """The process's entry point."""
    child.run(conn, lambda start: asyncio.run(_serve(spec, conn)))
