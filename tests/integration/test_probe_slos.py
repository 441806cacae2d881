"""The probe's steady state against the local stack: 200 listeners, every SLO judged and
passing, and the thick listeners' decoded view agreeing with the thin listeners' headers."""

from __future__ import annotations

import asyncio
import os

import pytest

from chaos.audio import sli
from chaos.targets import stack
from chaos.core.model import Verdict
from chaos.session.probe import run_probe
from chaos.runner.judge import SATURATED
from chaos.core.slo import SLIS, weighted_percentile

from .conftest import bring_up

pytestmark = [pytest.mark.local, pytest.mark.timeout(300)]


@pytest.fixture(scope="module")
def local_stack(chaos_home):
    state = bring_up("local", "resilient", int(os.environ.get("CHAOS_TEST_PROBE_BASE_PORT", 26000)))
    yield state
    stack.down()


def test_200_listeners_every_slo_passes_and_thick_agrees_with_thin(local_stack):
    result = asyncio.run(run_probe(local_stack.topology, listeners=200, seconds=8, thick_per_dc=2))
    verdicts = {s.name: s for s in result.slos}
    assert set(verdicts) == set(SLIS), "every SLI is judged"
    failed = {n: (s.value, s.objective, s.verdict, s.note) for n, s in verdicts.items()
              if s.verdict is not Verdict.PASSED}
    # on a busy shared machine the probe itself may lag (joining 200 listeners at once): an
    # SLO it could not measure says so, and only that; the stack fails none
    assert all(s.verdict is Verdict.INCONCLUSIVE and SATURATED in s.note
               for s in verdicts.values() if s.verdict is not Verdict.PASSED), failed
    assert sum(s.verdict is Verdict.PASSED for s in verdicts.values()) >= len(SLIS) - 3, failed
    assert result.listeners_joined == 200 and len(result.thick) == 6
    thin = sli.mouth_to_ear([b for bs in result.bins.values() for b in bs])   # every frame heard
    thin_ms = weighted_percentile(thin.values, thin.weights, 50) * 1000
    for report in result.thick:
        assert report.audio_delivered >= 0.995
        assert not report.echo.detected
        # thick and thin agree: ~0.1 ms apart on a quiet machine; on a loaded 2-core one the
        # thin listeners' costlier receive path lags by up to ~15 ms, so a tenth of the SLO
        assert abs(report.mouth_to_ear_p50_s * 1000 - thin_ms) < 40, (report.mouth_to_ear_p50_s, thin_ms)
        assert abs(report.audio_offset_ms) <= 1.0, "the decoded audio is where its headers say"


def test_an_arriving_audience_is_timed_join_by_join(local_stack):
    result = asyncio.run(run_probe(local_stack.topology, listeners=6, seconds=4, thick_per_dc=0,
                                   rate=40.0))
    storm = result.storm
    assert storm.joined + storm.failed == storm.arrivals >= 120
    join = next(s for s in result.slos if s.name == "join_time")
    assert join.samples == storm.arrivals + 6, "every join, the storm's and the probe's, is a sample"
    assert result.scale_factor()["join_rate"] == pytest.approx(storm.achieved_rate_per_s / (50_000 / 60))
