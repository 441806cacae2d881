"""Slow state: Redis answers 300 ms late (toxiproxy on every gateway -> redis link) for 8 s.

Expects, against the resilient profile: joins get slower (each join reads and writes the
room's state in one Redis round trip: p95 at least ~300 ms) but stay under 2 s at p95,
listeners already in the room are untouched (audio_delivered, mouth_to_ear), and the
steady state holds after.
"""

import pytest

from chaos.experiment import Experiment, fault
from chaos.core.slo import objective
from chaos.core.model import Phase

pytestmark = pytest.mark.chaos_profile("resilient")   # written for the reference stack


def test_slow_redis_slows_joins_within_the_slo(chaos_run):
    result = chaos_run(Experiment(
        name="slow_state_300ms",
        title="Redis 300 ms slow for 8 s",
        expects=__doc__.split("\n\n")[1].replace("\n", " "),
        method=[fault("slow_state", at_s=0, duration_s=8, mode="slow", latency_ms=300)],
        during=[objective("join_time"), objective("audio_delivered"), objective("mouth_to_ear")],
        before_s=6, after_s=6, recover_s=2))
    # it bit: every join waits for one Redis round trip (one pipeline), 300 ms later now
    during = result.slo("join_time", Phase.DURING)
    assert during.value >= 0.27, during
