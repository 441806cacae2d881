"""A probe that cannot keep up never passes or fails the stack: its listener process is
held to a third of a CPU (SIGSTOP/SIGCONT, 0.7 s stopped in every second) while it holds
a few hundred real-rate listeners; what it measured then is set aside and the frame SLIs
are inconclusive, with the probe's lag, where they would otherwise have failed."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal

import pytest

from chaos.targets import stack
from chaos.core.model import Verdict
from chaos.session.probe import LiveRun, open_session, series

from .conftest import bring_up

pytestmark = [pytest.mark.local, pytest.mark.timeout(300)]
STOPPED_S, RUNNING_S = 0.7, 0.3


@pytest.fixture(scope="module")
def local_stack(chaos_home):
    state = bring_up("local", "resilient", int(os.environ.get("CHAOS_TEST_PROBE_BASE_PORT", 26000)))
    yield state
    stack.down()


async def starve_listeners(live: LiveRun) -> None:
    """Once every listener has joined (or failed to), hold the probe's listener processes
    to ~30 % of a CPU for 8 s."""
    pids = [p.pid for p in live.thin.procs]
    for _ in range(150):                 # bounded: 15 s for the joins on a busy machine
        await asyncio.sleep(0.1)
        if all(r.join_s is not None or r.join_error for r in live.thin_records()):
            break
    await asyncio.sleep(1.0)
    try:
        for _ in range(8):
            for pid in pids:
                os.kill(pid, signal.SIGSTOP)
            await asyncio.sleep(STOPPED_S)
            for pid in pids:
                os.kill(pid, signal.SIGCONT)
            await asyncio.sleep(RUNNING_S)
    finally:
        for pid in pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGCONT)
    await asyncio.sleep(2.0)


def test_a_starved_probe_says_inconclusive_with_its_lag_not_failed(local_stack):
    async def starved():
        async with open_session(local_stack.topology, listeners=300, seconds=40,
                                thick_per_dc=1, processes=1) as live:
            await starve_listeners(live)
        return live.result
    result = asyncio.run(starved())
    verdicts = {s.name: s for s in result.slos}
    crowd = next(p for p in result.health.processes if p.label == "listeners-0")
    assert max(crowd.lag_ms) >= 500, "the listener process saw its own stops as lag"
    for name in ("audio_delivered", "mouth_to_ear"):
        s = verdicts[name]
        assert s.verdict is Verdict.INCONCLUSIVE, (name, s)
        assert "the probe, not the stack, was saturated: lag" in s.note and "listeners-0" in s.note
    # judged blind to the probe's limits, the same samples would have blamed the stack
    by_sli = series(result)
    naive = {o.sli: o.evaluate(by_sli[o.sli], 0.0, result.seconds + 1.5)
             for o in (verdicts_objective(result, "mouth_to_ear"),)}
    assert naive["mouth_to_ear"].verdict is Verdict.FAILED, naive
    # the thick listeners live in the main process, which kept up: what they heard holds
    for name in ("freeze", "silence"):
        assert verdicts[name].verdict is Verdict.PASSED, verdicts[name]
    assert result.listeners_joined == 300, "every listener joined before the starving began"


def verdicts_objective(result, name):
    from chaos.session.probe import defaults_for
    return next(o for o in defaults_for(result.seconds) if o.sli == name)
