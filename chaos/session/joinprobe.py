"""Join probes: every few seconds, one fresh listener per DC joins and hangs up once it
hears the speaker, so that join_time is measured all along a run (under a fault too),
not only at the start. Each probe's record (its home DC, request time, join time or
error) is kept; a join that fails or times out counts as failed, never dropped."""

from __future__ import annotations

import asyncio
import contextlib
import itertools

from chaos.audio.record import ListenerRecord

POLL_S = 0.05
FIRST_INDEX = 1_000_000       # listener indexes of join probes, apart from the audience's


async def _one(lst) -> None:
    stop = asyncio.Event()
    task = asyncio.create_task(lst.run(stop))
    try:
        while not task.done() and lst.rec.join_s is None:
            await asyncio.sleep(POLL_S)
    finally:
        stop.set()
        with contextlib.suppress(asyncio.TimeoutError, asyncio.CancelledError):
            await asyncio.wait_for(task, timeout=3.0)


async def run_join_probes(live, every_s: float, records: list[ListenerRecord],
                          stop_firing: asyncio.Event) -> None:
    """Until ``stop_firing`` is set, every ``every_s`` one join per DC (the target's adapter
    joins it through the DC's own entry first); then wait for the joins in flight to end. ``records`` gets each
    probe's record when it starts. Cancelled (an abort), joins still in flight are
    dropped from ``records``: they were neither timed nor failed."""
    if not every_s > 0:
        return
    counter = itertools.count(FIRST_INDEX)
    pending: set[asyncio.Task] = set()
    loop = asyncio.get_running_loop()
    next_at = loop.time()
    try:
        while not stop_firing.is_set():
            for dc in live.topo.dcs:
                lst = live.adapter.new_join_probe(live.session, next(counter), dc, live.topo,
                                                  live.space, live.speaker.id, live.retry,
                                                  live.join_timeout_s)
                records.append(lst.rec)
                task = asyncio.create_task(_one(lst))
                pending.add(task)
                task.add_done_callback(pending.discard)
            next_at += every_s
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(stop_firing.wait(), max(0.0, next_at - loop.time()))
        await asyncio.gather(*pending, return_exceptions=True)
    finally:
        for t in list(pending):
            t.cancel()
        await asyncio.gather(*pending, return_exceptions=True)
        records[:] = [r for r in records if r.join_s is not None or r.join_error]
