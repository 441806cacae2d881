"""The client-side faults (echo, join_storm) on the local stack, injected and reverted
through the engine during a probe run, and measured by the run's own listeners.

Each test drives its own probe session as the runner does: the session's clients
(``SessionClients``) plugged into the run's slot, which the engine's ``client`` executor
was built on; the engine runs in a thread (``asyncio.to_thread``). The thick listeners' 5 s
echo windows are cut at seqs that are multiples of 250. Each echo run waits until every thick
listener hears the speaker, takes the next multiple of 250 as its start B (so a listener that
joined late on a busy machine still has whole windows), injects at B + 245, reverts at B + 500
and listens until B + 760: one window with the echo all through and two without it.
"""

from __future__ import annotations

import asyncio
import os
import time

import pytest

from chaos.targets import stack
from chaos.faults import Engine, FaultSpec, plan
from chaos.faults.executors import client as exec_client
from chaos.faults.executors import executors_for
from chaos.faults.ledger import Ledger
from chaos.session.clients import SessionClients
from chaos.session.probe import ProbeResult, open_session, series
from chaos.audio.hearing import FRAME_S, ThickReport

from .conftest import bring_up

pytestmark = [pytest.mark.local, pytest.mark.timeout(300)]
BASE = int(os.environ.get("CHAOS_TEST_CLIENT_FAULTS_BASE_PORT", 30000))  # below 32768


@pytest.fixture(scope="module")
def local_stack(chaos_home):
    state = bring_up("local", "resilient", BASE)
    yield state
    try:
        Engine(executors_for(state), state.stack_id).revert_all()
    finally:
        stack.down()


@pytest.fixture
def slot():
    slot = exec_client.ClientSlot()
    yield slot
    assert slot.hub is None               # the session's clients were unplugged


@pytest.fixture
def engine(local_stack, slot):
    eng = Engine(executors_for(local_stack, {"client": exec_client.ClientExecutor(local_stack, slot)}),
                 local_stack.stack_id)
    yield eng
    assert eng.revert_all().ok
    assert Ledger().active(local_stack.stack_id) == []


def drive(state, during, **session) -> ProbeResult:
    """Open a probe session, drive it with ``during``, return what it measured."""
    async def go():
        async with open_session(state.topology, **session) as live:
            await during(live)
        return live.result
    return asyncio.run(go())


async def until_seq(speaker, seq: int) -> None:
    while not speaker.produced or speaker.produced[-1][0] < seq:
        await asyncio.sleep(0.005)


SEGMENT = 250           # frames in a thick listener's echo window (5 s)


async def window_start(live, timeout_s: float = 30.0) -> int:
    """The first seq that starts a window every thick listener hears whole."""
    deadline = time.monotonic() + timeout_s
    while any(t.rec.rx.first_seq is None for t in live.thick):
        assert time.monotonic() < deadline, "a thick listener heard nothing in 30 s"
        await asyncio.sleep(0.02)
    heard = max(t.rec.rx.first_seq for t in live.thick)
    return (heard // SEGMENT + 1) * SEGMENT


def echo_run(state, engine: Engine, slot, spec: FaultSpec, on: int = 245, off: int = 500,
             end: int = 760) -> tuple[ProbeResult, list, int]:
    actions = plan(spec, state.topology)
    log: list = []
    start: list[int] = []

    async def during(live):
        # the runner's pattern: plug in, inject and revert in a thread, then aclose
        async with SessionClients(live, slot) as hub:
            b = await window_start(live)
            start.append(b)
            await until_seq(live.speaker, b + on)
            await asyncio.to_thread(engine.inject, actions)
            assert [a.key for a in Ledger().active(state.stack_id)] == [actions[0].key]
            await until_seq(live.speaker, b + off)
            report = await asyncio.to_thread(engine.revert, actions)
            assert report.ok, report.failed
            await until_seq(live.speaker, b + end)
            await hub.aclose()
        log.extend(live.speaker.echo_log)

    # the cap is for a hung run only: the run ends when `during` does (about B + 15 s)
    result = drive(state, during, listeners=3, seconds=60, thick_per_dc=1)
    return result, log, start[0]


def windows(report: ThickReport, seq_on: int, seq_off: int, b: int) -> list[tuple[float, object]]:
    """(share of the window the echo was on, its EchoResult) for each whole echo window from
    seq ``b`` on (the part heard before it, from the join, is no whole window)."""
    out = []
    for w in report.echo_windows:
        s0 = report.first_seq + round((w.start_s - report.t0_s) / FRAME_S)
        s1 = s0 + round(w.duration_s / FRAME_S)
        if s0 >= b and s1 - s0 >= SEGMENT - 2:
            out.append((max(0, min(s1, seq_off) - max(s0, seq_on)) / (s1 - s0), w.result))
    return out


def check_echo(result: ProbeResult, log: list, b: int, mode: str, delay_ms: float,
               gain_db: float) -> list:
    (_, seq_on, state), (_, seq_off, cleared) = log
    assert state.mode == mode and state.delay_s == delay_ms / 1000 and cleared is None
    assert b + 245 <= seq_on <= b + 252 and b + 500 <= seq_off <= b + 506, \
        f"echo on {seq_on}..{seq_off}, windows from {b}"
    assert len(result.thick) == 3 and all(r.joined for r in result.thick)
    measured, quiet = [], []
    for r in result.thick:
        ws = windows(r, seq_on, seq_off, b)
        echoed = [res for share, res in ws if share >= 0.9]
        clean = [res for share, res in ws if share <= 0.05]
        assert echoed and len(clean) >= 2, [(s, x.at_most_db) for s, x in ws]
        for res in echoed:
            assert res.detected, res
            assert res.lag_ms == pytest.approx(delay_ms, abs=20), res
            assert res.strength_db == pytest.approx(gain_db, abs=3), res
            measured.append((res.lag_ms, res.strength_db))
        for res in clean:
            assert res.measured and res.at_most_db < -25, res
            quiet.append(round(res.at_most_db, 1))
        assert r.echo.detected and r.echo_db == pytest.approx(gain_db, abs=3)  # the run's verdict
    echo_slo = next(s for s in result.slos if s.name == "echo")
    assert echo_slo.verdict.value == "failed", echo_slo
    print(f"{mode}: (lag ms, strength dB) per echoed window: {measured}; "
          f"windows without it, at most (dB): {quiet}")
    return measured


def test_echo_hot_mic_is_heard_at_its_lag_and_strength_and_only_while_injected(local_stack, engine, slot):
    result, log, b = echo_run(local_stack, engine, slot, FaultSpec(
        "echo", params={"delay_ms": 200, "gain_db": -6, "mode": "hot_mic"}))
    check_echo(result, log, b, "hot_mic", 200, -6)
    assert result.listeners_joined == 3


def test_echo_double_is_heard_like_a_second_publisher_and_listeners_follow_the_speaker(
        local_stack, engine, slot):
    result, log, b = echo_run(local_stack, engine, slot, FaultSpec(
        "echo", params={"delay_ms": 200, "gain_db": -6, "mode": "double"}))
    check_echo(result, log, b, "double", 200, -6)
    # the copy is mixed in by the origin; the listeners' accounting is the speaker's alone
    for rec in result.records + result.thick_records:
        assert rec.join_s is not None and rec.out_of_order == 0
        assert rec.rx.missing == 0, "a gap"
    assert all(r.audio_delivered >= 0.99 for r in result.thick), [r.audio_delivered for r in result.thick]


def test_a_join_storm_fault_counts_its_joins_and_stops_at_the_revert(local_stack, engine, slot):
    state = local_stack
    actions = plan(FaultSpec("join_storm", params={"rate": 30}), state.topology)
    marks: dict = {}

    async def during(live):
        async with SessionClients(live, slot) as hub:
            await asyncio.sleep(1.0)
            marks["inject"] = (time.time_ns() - live.t0_ns) / 1e9
            await asyncio.to_thread(engine.inject, actions)
            marks["injected"] = (time.time_ns() - live.t0_ns) / 1e9
            await asyncio.sleep(4.0)
            marks["revert"] = (time.time_ns() - live.t0_ns) / 1e9
            report = await asyncio.to_thread(engine.revert, actions)
            marks["reverted"] = (time.time_ns() - live.t0_ns) / 1e9
            assert report.ok, report.failed
            marks["ledger"] = Ledger().active(state.stack_id)
            marks["storms_at_revert"] = len(live.storms)
        marks["hub"] = hub          # aclose has waited for the storm's result

    result = drive(state, during, listeners=3, seconds=40, thick_per_dc=0)
    assert marks["ledger"] == [] and Ledger().active(state.stack_id) == []
    (storm,) = result.storms
    assert marks["hub"].storms == [storm]
    print(f"storm: {storm.schedule}; arrivals {storm.arrivals}, joined {storm.joined}, "
          f"p95 {storm.join_p95_s}, inject took {marks['injected'] - marks['inject']:.2f} s")
    # ~30/s for the ~4 s between inject and revert (Poisson: 120 +- 11)
    assert 80 <= storm.arrivals <= 165, storm
    assert storm.accounted and storm.fired == storm.arrivals
    assert "generator:not_fired" not in storm.failures
    assert storm.joined >= 0.95 * storm.arrivals, storm.failures
    assert 3.5 <= storm.scheduled_s <= 4.5 and "stopped after" in storm.schedule
    t, v = storm.join_samples(result.t0_ns)
    assert len(t) == storm.arrivals
    assert marks["inject"] < t.min() and t.max() <= marks["reverted"] + 0.05, (t.min(), t.max(), marks)
    # the run's join_time has every one of them, beside the probe's own listeners
    joins = series(result)["join_time"]
    assert len(joins) == storm.arrivals + len(result.records)
    in_storm = (joins.t_s >= marks["inject"]) & (joins.t_s <= marks["reverted"] + 0.05)
    assert in_storm.sum() == storm.arrivals
    join_slo = next(s for s in result.slos if s.name == "join_time")
    assert join_slo.verdict.value == "passed", join_slo
    for pid in storm.worker_pids:  # its load workers are gone
        assert not os.path.exists(f"/proc/{pid}") or open(f"/proc/{pid}/stat").read().rsplit(
            ")", 1)[1].split()[0] == "Z"
