"""A join storm scaled from the incident: ~833 joins/s (50,000 a minute) times the scale
factor this machine can carry (SCALE = 0.1: 83 joins/s, on 2 cores shared with the whole
stack), for 8 s, under each client retry policy.

Expects, against the resilient profile: joins stay under 2 s at p95 during the storm
(the storm's own joins included) and the steady state of the listeners already in the
room holds all along; the journal states the scale factor against the incident.
"""

import pytest

from chaos.experiment import Experiment, Sweep, fault
from chaos.core.arrivals import INCIDENT_JOINS_PER_S
from chaos.core.slo import objective

pytestmark = pytest.mark.chaos_profile("resilient")   # written for the reference stack

SCALE = 0.1


@pytest.mark.parametrize("retry", ["none", "fixed", "exponential", "exponential_jitter"])
def test_join_storm_from_the_incident(chaos_run, retry):
    rate = round(INCIDENT_JOINS_PER_S * SCALE, 1)
    result = chaos_run(Experiment(
        name=f"join_storm_{retry}",
        title=f"join storm at {rate:g} joins/s ({SCALE:g} of the incident), retry {retry}",
        expects=__doc__.split("\n\n")[1].replace("\n", " "),
        method=[fault("join_storm", at_s=0, duration_s=8, rate=rate, retry=retry)],
        during=[objective("join_time"), objective("audio_delivered"), objective("mouth_to_ear")],
        before_s=5, after_s=6, recover_s=2))
    storm = result.record.storms[0]     # its workers take ~1 s to start: ~7 s of arrivals
    assert storm.arrivals >= 0.75 * rate * 8 and storm.joined + storm.failed == storm.arrivals
    assert storm.achieved_rate_per_s >= 0.85 * rate
    assert result.record.target.scale_factor.join_rate > 0.05


def test_join_rate_breaking_point(chaos_run):
    """Where the join path breaks on this machine: join storms of 50, 150, 300 and 450
    joins/s (0.06 to 0.54 of the incident's rate) for 6 s each, 3 s apart. Expects, against the
    resilient profile: the report names the first rate at which each SLO broke (or that it
    held at every step), and the steady state holds again afterwards."""
    result = chaos_run(Experiment(
        name="join_rate_breaking_point",
        title="join storms of 50, 150, 300 and 450 joins/s",
        expects=test_join_rate_breaking_point.__doc__.split("Expects, ")[1].replace("\n", " "),
        sweep=Sweep("join_storm", "rate", (50, 150, 300, 450), step_s=6, gap_s=3, unit="joins/s"),
        before_s=5, after_s=8, recover_s=3))
    bp = result.record.breaking_point
    assert [s.value for s in bp.steps] == [50, 150, 300, 450]
    assert len(result.record.storms) == 4
    assert set(bp.first_broken) >= {"join_time", "audio_delivered", "mouth_to_ear"}
