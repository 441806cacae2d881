"""Join storms against the local stack: every arrival accounted for, joins timed, refusals
and their retry hints counted, and no worker process left behind, also after a cancel."""

from __future__ import annotations

import asyncio
import multiprocessing
import os
import time
import urllib.request

import aiohttp
import pytest

from chaos.targets import stack
from chaos.load import ArrivalSchedule, StormOptions, run_storm
from chaos.adapters.space.joinapi import create_space
from chaos.adapters.space.speaker import Speaker
from chaos.core.retry import RetryPolicy

from .conftest import bring_up

pytestmark = [pytest.mark.local, pytest.mark.timeout(240)]
BASE = int(os.environ.get("CHAOS_TEST_STORM_BASE_PORT", 32000))


@pytest.fixture(scope="module")
def resilient(chaos_home):
    state = bring_up("local", "resilient", BASE)
    yield state
    stack.down()


def gone(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] == "Z"
    except FileNotFoundError:
        return True


async def with_speaker(topo, name: str, fn, speaker: bool = True):
    """Create a space (with a speaker publishing, if asked) and run fn(space, speaker_id)."""
    gws = [g.public for g in topo.of_kind("gateway")]
    stop = asyncio.Event()
    async with aiohttp.ClientSession() as session:
        space = await create_space(session, gws, f"{name}-{int(time.time() * 1000)}")
        if not speaker:
            return await fn(space, None)
        spk = Speaker(session, gws[:1], space, retry=RetryPolicy("fixed", 0.1))
        task = asyncio.create_task(spk.run(stop))
        await asyncio.wait_for(spk.connected.wait(), 5)
        try:
            return await fn(space, spk.id)
        finally:
            stop.set()
            await task
            await spk.close()


def set_capacity(topo, n: int | str) -> None:
    for edge in topo.of_kind("edge"):
        with urllib.request.urlopen(f"http://{edge.address}/admin/capacity?listeners={n}", timeout=3):
            pass


def test_a_storm_of_100_joins_a_second_is_timed_and_accounted_for(resilient):
    topo = resilient.topology
    schedule = ArrivalSchedule(100, 3, seed=42)
    result = asyncio.run(with_speaker(topo, "storm", lambda space, spk: run_storm(
        topo, space, spk, schedule, StormOptions(workers=2, hold_s=0.5))))
    arrivals = len(schedule.offsets())
    assert result.arrivals == arrivals and result.fired == arrivals
    assert result.joined + result.failed == arrivals, result.failures
    assert result.accounted
    assert result.joined >= 0.99 * arrivals, result.failures
    assert result.join_p95_s is not None and result.join_p95_s < 2.0
    assert result.join_time.total == arrivals
    assert result.workers == 2 and len(result.worker_pids) == 2
    assert result.achieved_rate_per_s == pytest.approx(100, rel=0.15)
    assert result.peak_concurrent > 0
    assert result.scale_factor.rate == pytest.approx(result.achieved_rate_per_s / 833.33, rel=1e-3)
    t, v = result.join_samples()
    assert len(t) == arrivals and (t[1:] >= t[:-1]).all()
    assert multiprocessing.active_children() == []
    assert all(gone(pid) for pid in result.worker_pids)


def test_held_listeners_and_refusals_with_retry_hints(resilient):
    """Edges full at 10 listeners each: of 60 held listeners arriving over 3 s, about 30
    get in; the rest meet refusals with retry hints (from the full edges, or from gateways
    that know they are full), and every arrival is still accounted for."""
    topo = resilient.topology
    schedule = ArrivalSchedule(20, 3, process="even")
    set_capacity(topo, 10)
    try:
        result = asyncio.run(with_speaker(topo, "full", lambda space, spk: run_storm(
            topo, space, spk, schedule,
            StormOptions(workers=2, hold_s=None, join_timeout_s=3.0,
                         retry=RetryPolicy("exponential_jitter", 0.05, 0.5)))))
    finally:
        set_capacity(topo, 5000)
    assert result.arrivals == 60 and result.accounted
    refused = result.refusals.get("edge_full", 0) + result.refusals.get("no_edge_available", 0)
    assert refused > 0, result.refusals
    assert result.retry_hints > 0 and result.retry_hint_max_s >= 1
    assert 20 <= result.joined <= 3 * 10 + 6, result  # in-flight handshakes may overshoot a little
    assert any(r.startswith("refused:") for r in result.failures), result.failures
    assert result.join_p95_s == float("inf")  # half the joins failed: +inf, never dropped
    assert result.peak_concurrent == pytest.approx(result.joined, abs=2)


def test_without_a_speaker_an_open_socket_is_a_join(resilient):
    topo = resilient.topology
    schedule = ArrivalSchedule(200, 1, process="even")
    result = asyncio.run(with_speaker(topo, "idle", lambda space, spk: run_storm(
        topo, space, spk, schedule, StormOptions(workers=1, hold_s=None)), speaker=False))
    assert result.joined == 200 and result.failed == 0
    assert result.peak_concurrent == 200
    assert result.join_p95_s < 2.0


def test_a_cancelled_storm_leaves_no_worker_behind(resilient):
    topo = resilient.topology
    seen: set[int] = set()

    async def storm_then_cancel(space, spk):
        task = asyncio.create_task(run_storm(topo, space, spk, ArrivalSchedule(50, 30),
                                             StormOptions(workers=2, hold_s=None)))
        for _ in range(100):  # bounded: until the workers run, then a moment more
            await asyncio.sleep(0.1)
            seen.update(p.pid for p in multiprocessing.active_children())
            if len(seen) >= 2:
                break
        await asyncio.sleep(1.0)
        task.cancel()
        t = time.monotonic()
        with pytest.raises(asyncio.CancelledError):
            await task
        return time.monotonic() - t

    took = asyncio.run(with_speaker(topo, "cancel", storm_then_cancel))
    assert len(seen) == 2
    assert took < 8
    assert multiprocessing.active_children() == []
    assert all(gone(pid) for pid in seen), [p for p in seen if not gone(p)]


def test_a_worker_that_dies_fails_the_storm_and_takes_the_others_down(resilient):
    from chaos.core.errors import ProbeError
    topo = resilient.topology
    seen: list[int] = []

    async def storm_and_kill(space, spk):
        task = asyncio.create_task(run_storm(topo, space, spk, ArrivalSchedule(20, 30),
                                             StormOptions(workers=2)))
        for _ in range(100):
            await asyncio.sleep(0.1)
            kids = multiprocessing.active_children()
            if len(kids) == 2:
                seen.extend(p.pid for p in kids)
                break
        await asyncio.sleep(1.0)
        os.kill(seen[0], 9)
        with pytest.raises(ProbeError, match=r"load worker \d .*(died|exited)"):
            await task

    asyncio.run(with_speaker(topo, "kill", storm_and_kill))
    assert multiprocessing.active_children() == []
    assert all(gone(pid) for pid in seen)
