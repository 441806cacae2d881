"""One process of a probe's thin listeners: joins its share, listens at real rate on the
lean receive path, and streams what they heard, aggregated, once a second.

Talks to the parent (chaos.probes.crowd) over a pipe: ("ready", pid) <- ("start",) then,
every second, ("tick", {dc: bins delta}, [join states that changed], [health seconds])
... <- ("stop",) ("done", {dc: bins delta}, [record summaries], health). It keeps no
history: bins are handed over as their seconds close, so its memory stays flat. It
ignores Ctrl-C (the parent decides), dies with its parent, and stops at its hard
deadline whatever happens.
"""

from __future__ import annotations

import asyncio
import os
import signal
import time
import traceback
from dataclasses import dataclass

import aiohttp

from ..load.worker import _die_with_parent, _own_session, _raise_fd_limit
from ..retry import RetryPolicy
from ..sli import PLAYOUT_DEADLINE_S
from ..targets.model import Target
from .reception import NS, SecondBins
from .watch import LoopWatch

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
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()

    def on_message() -> None:
        try:
            msg = conn.recv()
        except (EOFError, OSError):
            os._exit(3)  # the parent is gone
        if msg and msg[0] == "stop":
            stop.set()

    loop.add_reader(conn.fileno(), on_message)
    watch = LoopWatch(spec.epoch_ns, f"listeners-{spec.index}", THIN_SLIS).start()
    from .. import adapters
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
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    _own_session()
    _die_with_parent()
    _raise_fd_limit()
    try:
        conn.send(("ready", os.getpid()))
        msg = conn.recv()
        if msg[0] != "start":
            return
        asyncio.run(_serve(spec, conn))
    except (EOFError, BrokenPipeError):
        os._exit(3)
    except BaseException:  # noqa: BLE001 - the parent must hear why, whatever it was
        try:
            conn.send(("error", traceback.format_exc()[-4000:]))
        except OSError:
            pass
        raise
    finally:
        conn.close()
