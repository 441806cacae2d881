"""Latency with jitter on the links from the edges to the primary origin.

1. 150 ms +- 50 ms: within ITU-T G.114's 400 ms mouth-to-ear budget. Expects, against the
   resilient profile: mouth_to_ear p95 <= 400 ms and join_time p95 <= 2 s all along.
2. 500 ms +- 100 ms: past the budget. Expects the framework to see it: mouth_to_ear breaks
   in every DC during the fault (every edge pulls from origin-a) and recovers after.
3. 800 ms with a halt condition (mouth_to_ear p95 over 600 ms for 2 s): the run is
   halted and the fault reverted long before its planned 20 s; the verdict is `aborted`.
"""

import pytest

from chaos.experiment import Experiment, fault
from chaos.core.slo import objective
from chaos.core.model import Phase, Verdict

pytestmark = pytest.mark.chaos_profile("resilient")   # written for the reference stack

LINKS = "edge-*.origin-a"


def test_latency_within_budget_holds(chaos_run):
    chaos_run(Experiment(
        name="latency_150ms_jitter_50ms",
        title="latency 150 +- 50 ms on edge -> origin-a",
        expects=__doc__.split("\n\n")[1].split("\n2.")[0].replace("\n", " "),
        method=[fault("latency", link=LINKS, at_s=0, duration_s=8, latency_ms=150, jitter_ms=50)],
        during=[objective("mouth_to_ear"), objective("join_time")],
        before_s=6, after_s=6, recover_s=2))


def test_latency_past_budget_is_caught(chaos_run):
    result = chaos_run(Experiment(
        name="latency_500ms_jitter_100ms",
        title="latency 500 +- 100 ms on edge -> origin-a",
        expects="mouth_to_ear p95 breaks 400 ms in every DC during the fault, and recovers",
        method=[fault("latency", link=LINKS, at_s=0, duration_s=8, latency_ms=500, jitter_ms=100)],
        during=[objective("mouth_to_ear")],
        before_s=6, after_s=6, recover_s=2), check=False)
    m2e = result.slo("mouth_to_ear", Phase.DURING)
    assert result.verdict is Verdict.FAILED and m2e.verdict is Verdict.FAILED
    assert {d.verdict for d in m2e.per_dc.values()} == {Verdict.FAILED}
    assert m2e.value > 0.4 and m2e.first_breach_s is not None
    assert result.slo("mouth_to_ear", Phase.AFTER).verdict is Verdict.PASSED


def test_a_halt_condition_stops_the_run_early(chaos_run):
    result = chaos_run(Experiment(
        name="latency_800ms_halted",
        title="latency 800 ms with a halt on mouth_to_ear",
        expects="halted within a few seconds of the onset; the fault reverted early",
        method=[fault("latency", link=LINKS, at_s=0, duration_s=20, latency_ms=800)],
        halts=[objective("mouth_to_ear", threshold=0.6, window_s=2.0)],
        before_s=6, after_s=4, recover_s=1), check=False)
    j = result.record
    assert j.verdict is Verdict.ABORTED and j.halt.sli == "mouth_to_ear"
    f = j.faults[0]
    assert f.reverted and f.ended_s - f.started_s < 10, f
    assert j.halt.detected_after_s < 10
    assert any(e.kind == "halt" for e in j.events)
