"""Canaries: against the `fragile` profile (one Redis, no Sentinel, one origin, no
admission control, clients that do not retry), the framework must find the known
weaknesses. A canary that passes means the framework is blind: the test fails.

1. dc_loss(dc-a) takes Redis (and the only origin) down: joins fail in every DC, and the
   report says so in words, with the time of the first breach.
2. The only origin is lost for 8 s: with no standby origin, every DC goes silent for the
   whole loss (the resilient profile's standby takes over within a few seconds).
"""

import pytest

from chaos.experiment import Experiment, fault
from chaos.core.slo import objective
from chaos.core.model import Phase, Verdict

pytestmark = pytest.mark.chaos_profile("fragile")


def test_dc_a_loss_breaks_joins_in_every_dc(chaos_run):
    result = chaos_run(Experiment(
        name="canary_dc_a_loss",
        title="fragile: dc_loss(dc-a) takes redis down",
        expects="join_time breaks in all three DCs; the report blames redis in dc-a",
        method=[fault("dc_loss", dc="dc-a", at_s=0, duration_s=10)],
        during=[objective("join_time")],
        before_s=6, after_s=6, recover_s=2), check=False)
    j = result.record
    jt = result.slo("join_time", Phase.DURING)
    assert j.verdict is Verdict.FAILED and jt.verdict is Verdict.FAILED
    assert {dc: d.verdict for dc, d in jt.per_dc.items()} == \
        {"dc-a": "failed", "dc-b": "failed", "dc-c": "failed"}
    fault_start = j.faults[0].started_s
    assert fault_start <= jt.first_breach_s <= fault_start + 10
    from chaos.report import narrative
    said = " ".join(narrative.sentences(j))
    assert "dc_loss(dc-a)" in said and "redis" in said and "join_time" in said
    assert "all three DCs" in said or "every DC" in said
    assert f"t={jt.first_breach_s:.0f}" in said or f"t={jt.first_breach_s:.1f}" in said, said
    html = (result.dir / "report.html").read_text()
    assert "redis" in html and "dc_loss(dc-a)" in html


def test_origin_loss_silences_every_dc(chaos_run):
    result = chaos_run(Experiment(
        name="canary_origin_loss",
        title="fragile: the only origin is lost for 8 s",
        expects="audio_delivered collapses in all three DCs for the whole loss: no standby",
        method=[fault("dc_loss", dc="dc-a", kinds="origin", at_s=0, duration_s=8)],
        during=[objective("audio_delivered")],
        before_s=6, after_s=8, recover_s=3), check=False)
    delivered = result.slo("audio_delivered", Phase.DURING)
    assert result.verdict is Verdict.FAILED and delivered.verdict is Verdict.FAILED
    assert {d.verdict for d in delivered.per_dc.values()} == {Verdict.FAILED}
    assert delivered.value < 0.5          # no standby takes over: most of the loss is silent
