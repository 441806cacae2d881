"""The join storm: an open-loop arrival schedule fired across K worker processes.

    result = await run_storm(topology, space, speaker_id, ArrivalSchedule(833, 60),
                             StormOptions(hold_s=None))

The caller owns the space and its speaker (e.g. a chaos.adapters.space.speaker.Speaker running in
the same event loop: run_storm awaits, it never blocks the loop). Arrivals are dealt
round-robin to the workers (``multiprocessing`` with the "spawn" context, one per core by
default); every worker starts on the same wall-clock instant, fires its share on
schedule, and reports a histogram and counters, merged here into a StormResult.

Nothing outlives the call: the workers stop at the schedule's end plus the grace (their
own deadline), and are terminated, then killed, on Ctrl-C, cancellation or any error;
they also die with the parent. Cancelling loses the result; to end a storm early and keep
what it measured, pass ``stop`` (an asyncio.Event) and set it: no arrival is fired after
it, joins in flight finish (each within its join timeout), and the call returns the
partial StormResult (the arrivals that were fired, ``scheduled_s`` cut at the stop).
Each worker runs in a session of its own (so that the kernel's autogroup scheduling
gives it a CPU share like each stack process's, not one share for the whole generator).
A script that calls run_storm needs the usual ``if __name__ == "__main__":`` guard: the
spawn start method imports the main module again in every worker.

For ``chaos probe --rate R``::

    speaker = Speaker(session, gateways, space)          # in this event loop
    task = asyncio.create_task(speaker.run(stop))
    await speaker.connected.wait()
    result = await run_storm(topo, space, speaker.id, ArrivalSchedule(R, seconds))
    t, join_s = result.join_samples(t0_ns)              # -> Series("join_time", t, join_s)
"""

from __future__ import annotations

import asyncio
import multiprocessing
import time
from array import array
from dataclasses import replace

from chaos import adapters
from chaos.core.target import Target

from chaos.core.errors import ConfigError, ProbeError
from chaos.load import worker
from chaos.core.arrivals import ArrivalSchedule
from chaos.core.storm import StormOptions
from chaos.load.result import StormResult, merge
from chaos.audio.child import reap_workers, signal_workers

READY_TIMEOUT_S = 30.0     # spawning imports the client stack: ~0.3 s a worker on this machine
START_LEAD_S = 0.2         # every worker has the start message well before offset 0
REPORT_SLACK_S = 10.0      # past the workers' own hard stop: then they are terminated
POLL_S = 0.02


def specs(topo: Target, space: str, speaker_id: str | None, arrivals: ArrivalSchedule,
          options: StormOptions) -> list[worker.WorkerSpec]:
    """One spec per worker, the offsets dealt round-robin (worker w: arrivals w, w+K, ...)."""
    if options.retry is None:
        options = replace(options, retry=topo.client_retry)
    offsets = arrivals.offsets_array()
    k = max(1, min(options.worker_count(), len(offsets)))
    where = adapters.storm_routes(topo, options)
    return [worker.WorkerSpec(index=w, workers=k, offsets=array("d", offsets[w::k]).tobytes(),
                              space=space, speaker_id=speaker_id, options=options,
                              duration_s=arrivals.duration_s, **where)
            for w in range(k)]


async def run_storm(topology: Target, space: str, speaker_id: str | None,
                    arrivals: ArrivalSchedule, options: StormOptions | None = None, *,
                    stop: asyncio.Event | None = None,
                    started: asyncio.Event | None = None) -> StormResult:
    """Fire the schedule at the stack and time every join; see the module's docstring.
    speaker_id None: a listener is joined once its socket to the edge is open. ``stop``:
    set it to end the schedule early and get the partial result; ``started`` is set at the
    schedule's offset 0 (every worker ready and started)."""
    options = options or StormOptions()
    if not isinstance(arrivals, ArrivalSchedule):
        raise ConfigError(f"arrivals must be an ArrivalSchedule, got {type(arrivals).__name__}")
    if not isinstance(space, str) or not space:
        raise ConfigError(f"space must be the id of an existing space, got {space!r}")
    plan = specs(topology, space, speaker_id, arrivals, options)
    ctx = multiprocessing.get_context("spawn")
    procs, conns = [], []
    stopper, stopped_at = None, []  # stopped_at: [seconds after offset 0] once stopped early
    try:
        for spec in plan:
            parent_end, child_end = ctx.Pipe(duplex=True)
            p = ctx.Process(target=worker.main, args=(spec, child_end),
                            name=f"chaos-load-{spec.index}", daemon=True)
            p.start()
            child_end.close()
            procs.append(p)
            conns.append(parent_end)
        await _gather(conns, procs, "ready", time.monotonic() + READY_TIMEOUT_S)
        start_wall = time.time() + START_LEAD_S
        for c in conns:
            c.send(("start", start_wall))
        t0 = time.monotonic() + START_LEAD_S
        if started is not None:  # at offset 0, when the first arrival may be due
            asyncio.get_running_loop().call_later(START_LEAD_S, started.set)
        if stop is not None:
            stopper = asyncio.create_task(_stop_on(stop, conns, t0, stopped_at))
        deadline = t0 + arrivals.duration_s + plan[0].options.grace + REPORT_SLACK_S
        reports = await _gather(conns, procs, "report", deadline, release_after="drained")
        duration_s = time.monotonic() - t0
    except BaseException:
        signal_workers(procs, "terminate")  # Ctrl-C, cancellation or a failed worker: stop them all now
        raise
    finally:
        if stopper is not None:
            stopper.cancel()
        await reap_workers(procs)
        for c in conns:
            c.close()
    scheduled_s, schedule = arrivals.duration_s, arrivals.describe()
    if stopped_at and stopped_at[0] < arrivals.duration_s:
        scheduled_s = max(stopped_at[0], 1e-3)
        schedule += f"; stopped after {scheduled_s:.3g} s"
    return merge([reports[i] for i in range(len(plan))], schedule=schedule,
                 scheduled_s=scheduled_s, peak_rate_per_s=arrivals.peak_rate_per_s,
                 late_ms=options.late_ms, started_ns=int(start_wall * 1e9), duration_s=duration_s)


async def _stop_on(stop: asyncio.Event, conns, t0: float, stopped_at: list[float]) -> None:
    """Once stop is set: tell every worker to end its schedule now (an early "release")."""
    await stop.wait()
    stopped_at.append(max(0.0, time.monotonic() - t0))
    for c in conns:
        try:
            c.send(("release",))
        except OSError:
            pass  # it finished already


async def _gather(conns, procs, kind: str, deadline: float,
                  release_after: str | None = None) -> dict[int, object]:
    """One message of this kind from every worker, without blocking the event loop. With
    release_after: once every worker has sent that message, send each ("release",)."""
    got: dict[int, object] = {}
    waiting = set(range(len(conns))) if release_after else set()
    while len(got) < len(conns):
        for i, c in enumerate(conns):
            if i in got:
                continue
            if c.poll():
                try:
                    msg = c.recv()
                except EOFError:
                    procs[i].join(1.0)
                    raise ProbeError(f"load worker {i} (pid {procs[i].pid}) exited with code "
                                     f"{procs[i].exitcode} before its {kind}; see its stderr."
                                     f"{_guard_hint(kind)}") from None
                if msg[0] == "error":
                    raise ProbeError(f"load worker {i} failed:\n{msg[1]}")
                if msg[0] == kind:
                    got[i] = msg[1]
                elif msg[0] == release_after and waiting:
                    waiting.discard(i)
                    if not waiting:
                        for other in conns:
                            try:
                                other.send(("release",))
                            except OSError:
                                pass  # it finished at its own hard stop
            elif not procs[i].is_alive():
                raise ProbeError(f"load worker {i} (pid {procs[i].pid}) died with code "
                                 f"{procs[i].exitcode} before its {kind}; see its stderr."
                                 f"{_guard_hint(kind)}")
        if len(got) < len(conns):
            if time.monotonic() > deadline:
                raise ProbeError(f"{len(conns) - len(got)} of {len(conns)} load workers sent no "
                                 f"{kind} in time; they were stopped")
            await asyncio.sleep(POLL_S)
    return got


def _guard_hint(kind: str) -> str:
    if kind != "ready":
        return ""
    return (" A script that calls run_storm must guard its entry point with "
            "`if __name__ == \"__main__\":` (the spawn start method imports the main module "
            "again in each worker).")
