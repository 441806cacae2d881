"""A join storm scaled out over shards: the coordinator here, the shards on an engine.

    result = await run_scaled(topo, space, speaker_id, ArrivalSchedule(833, 60),
                              shards=4, engine="swarm")
    print(result.describe())

``during(coordinator, engine)``, if given, runs beside the storm (a test kills a shard
with ``engine.kill(i)`` or halts with ``coordinator.halt_all(reason)``). The engine's
shards are removed on the way out, whatever happened.
"""

from __future__ import annotations

import asyncio
from dataclasses import replace

from ..errors import ConfigError
from ..load.arrivals import ArrivalSchedule
from ..load.generator import gateway_order
from ..load.options import StormOptions
from ..targets.model import Target
from .coordinator import Coordinator, JoinObjective, ScaledResult
from .engines import engine_for
from .plan import StormPlan


def plan_for(topo: Target, space: str, speaker_id: str | None, schedule: ArrivalSchedule,
             options: StormOptions | None = None) -> StormPlan:
    options = options or StormOptions()
    if options.retry is None:
        options = replace(options, retry=topo.client_retry)
    # one worker per shard: the shard is the unit of scale, the engine places them
    options = replace(options, workers=1)
    gateways = {dc: gateway_order(topo, dc) for dc in topo.dcs}
    if not all(gateways.values()):
        raise ConfigError("the target has no gateway with a public address; is it a stack's?")
    return StormPlan(schedule, options, gateways, space, speaker_id)


async def run_scaled(topo: Target, space: str, speaker_id: str | None,
                     schedule: ArrivalSchedule, options: StormOptions | None = None, *,
                     shards: int, engine: str = "local", objective: JoinObjective | None = None,
                     host: str = "127.0.0.1", port: int = 0, engine_options: dict | None = None,
                     during=None) -> ScaledResult:
    plan = plan_for(topo, space, speaker_id, schedule, options)
    return await run_plan(plan, shards=shards, engine=engine, objective=objective, host=host,
                          port=port, engine_options=engine_options, during=during)


async def run_plan(plan: StormPlan, *, shards: int, engine: str = "local",
                   objective: JoinObjective | None = None, host: str = "127.0.0.1",
                   port: int = 0, engine_options: dict | None = None,
                   during=None) -> ScaledResult:
    if isinstance(shards, bool) or not isinstance(shards, int) or shards < 1:
        raise ConfigError(f"shards must be an integer of at least 1, got {shards!r}")
    eng = engine_for(engine, **(engine_options or {}))
    coord = Coordinator(plan, shards, engine=engine, objective=objective, host=host, port=port)
    sink = await coord.serve()
    side = None
    try:
        await asyncio.to_thread(eng.start, shards, sink)
        if during is not None:
            side = asyncio.create_task(during(coord, eng))
        return await coord.run(eng.check)
    finally:
        if side is not None and not side.done():
            side.cancel()
        await coord.close()
        await asyncio.to_thread(eng.stop)
        if side is not None:
            failed = (await asyncio.gather(side, return_exceptions=True))[0]
            if isinstance(failed, Exception):
                raise failed   # what ran beside the storm failed: its result would mislead
