"""A join storm scaled out over shards: the coordinator here, the shards on an engine.

    result = await run_scaled(topo, space, speaker_id, ArrivalSchedule(833, 60),
                              scale=ScaleOut("swarm", 4))
    print(result.describe())

``during(coordinator, engine)``, if given, runs beside the storm (a test kills a shard
with ``engine.kill(i)`` or halts with ``coordinator.halt_all(reason)``). The engine's
shards are removed on the way out, whatever happened.
"""

from __future__ import annotations

import asyncio
import time
from contextlib import asynccontextmanager
from dataclasses import replace

from chaos.core.arrivals import ArrivalSchedule
from chaos.adapters import storm_routes as routes
from chaos.core.storm import StormOptions
from chaos.core.target import Target
from chaos.scale.config import ScaleOut
from chaos.scale.coordinator import LEAD_S, SLACK_S, Coordinator, JoinObjective, ScaledResult, ShardPool
from chaos.scale.engines import engine_for
from chaos.scale.plan import StormPlan

CONNECT_S = 60.0          # local processes and Swarm tasks on nodes that have the image
K8S_CONNECT_S = 600.0     # the user applies the Job; pods are scheduled, images pulled


def plan_for(topo: Target, space: str, speaker_id: str | None, schedule: ArrivalSchedule,
             options: StormOptions | None = None) -> StormPlan:
    options = options or StormOptions()
    if options.retry is None:
        options = replace(options, retry=topo.client_retry)
    # one worker per shard: the shard is the unit of scale, the engine places them
    options = replace(options, workers=1)
    where = routes(topo, options)
    return StormPlan(schedule, options, where["gateways"], space, speaker_id, where["adapter"])


async def run_scaled(topo: Target, space: str, speaker_id: str | None,
                     schedule: ArrivalSchedule, options: StormOptions | None = None, *,
                     shards: int | None = None, engine: str = "local",
                     scale: ScaleOut | None = None, objective: JoinObjective | None = None,
                     engine_options: dict | None = None, during=None,
                     stop: asyncio.Event | None = None,
                     started: asyncio.Event | None = None, pool: tuple | None = None) -> ScaledResult:
    """The storm over ``scale`` (or ``engine`` and ``shards``). ``stop``: set it to halt
    every shard (joins in flight finish); ``started`` is set at T0. ``pool``: shards
    already running (shard_pool)."""
    scale = scale or ScaleOut(engine, shards if shards is not None else 1)
    plan = plan_for(topo, space, speaker_id, schedule, options)
    return await run_plan(plan, scale, objective=objective, engine_options=engine_options,
                          during=during, stop=stop, started=started, pool=pool)


@asynccontextmanager
async def shard_pool(scale: ScaleOut, run_s: float, engine_options: dict | None = None):
    """The engine's shards, started and connected: ``async with shard_pool(...) as (pool,
    engine)``. Removed on the way out, whatever happened."""
    eng = engine_for(scale.engine, **(engine_options if engine_options is not None
                                      else scale.engine_options(run_s)))
    host, port, advertise = scale.listen()
    pool = ShardPool(scale.shards, engine=scale.engine, host=host, port=port, advertise=advertise,
                     connect_timeout_s=K8S_CONNECT_S if scale.engine == "k8s" else CONNECT_S)
    sink = await pool.serve()
    try:
        await asyncio.to_thread(eng.start, scale.shards, sink)
        await pool.connected(eng.check)
        yield pool, eng
    finally:
        await pool.close()
        await asyncio.to_thread(eng.stop)


async def run_plan(plan: StormPlan, scale: ScaleOut, *, objective: JoinObjective | None = None,
                   engine_options: dict | None = None, during=None,
                   stop: asyncio.Event | None = None, started: asyncio.Event | None = None,
                   pool: tuple | None = None) -> ScaledResult:
    """The storm on ``pool`` ((ShardPool, engine): shards already running, e.g. a probe
    run's) when it is free, else on shards started for it alone."""
    if pool is not None and pool[0].storm is None:
        return await _on_pool(plan, *pool, objective, during, stop, started)
    run_s = plan.schedule.duration_s + plan.options.grace + SLACK_S + LEAD_S
    async with shard_pool(scale, run_s, engine_options) as (p, eng):
        return await _on_pool(plan, p, eng, objective, during, stop, started)


async def _on_pool(plan, pool: ShardPool, eng, objective, during, stop, started) -> ScaledResult:
    coord = Coordinator(plan, pool, objective=objective)
    side = []
    try:
        if during is not None:
            side.append(asyncio.create_task(during(coord, eng)))
        if stop is not None or started is not None:
            side.append(asyncio.create_task(_relay(coord, stop, started)))
        return await coord.run()
    finally:
        for t in side:
            if not t.done():
                t.cancel()
        for failed in await asyncio.gather(*side, return_exceptions=True):
            if isinstance(failed, Exception):
                raise failed   # what ran beside the storm failed: its result would mislead


async def _relay(coord: Coordinator, stop: asyncio.Event | None,
                 started: asyncio.Event | None) -> None:
    """started at T0; stop -> halt every shard."""
    while coord.t0_wall is None:
        await asyncio.sleep(0.02)
    if started is not None:
        await asyncio.sleep(max(0.0, coord.t0_wall - time.time()))
        started.set()
    if stop is not None:
        await stop.wait()
        await coord.halt_all("stopped by the run")


async def fire(scale: ScaleOut | None, topo, space: str, speaker_id: str | None, schedule,
               options=None, *, stop: asyncio.Event | None = None,
               started: asyncio.Event | None = None, pool: tuple | None = None):
    """A join storm: a StormResult (one machine) or a ScaledResult (shards; on ``pool``,
    the run's shards already started, when it is free)."""
    if scale is None or not scale.scaled:
        from chaos.load import run_storm
        return await run_storm(topo, space, speaker_id, schedule, options, stop=stop,
                               started=started)
    return await run_scaled(topo, space, speaker_id, schedule, options, scale=scale,
                            stop=stop, started=started, pool=pool)
