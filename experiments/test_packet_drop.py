"""Packet loss on one edge, stepped up until something breaks (a breaking-point sweep).

packet_drop drops a share of the IP packets of edge-b (iptables statistic, both
directions) for 6 s per step: 2 %, 10 %, 30 %, 50 %. Expects, against the resilient
profile: the harm stays in dc-b (listeners of dc-a and dc-c keep audio_delivered and
mouth_to_ear all along: the blast radius is one edge), and the steady state holds again
once the drop is removed. The report names the first step at which each SLO broke; on a
loopback network TCP turns loss into delay, so what breaks first is usually join_time
(SYN retransmits) and mouth_to_ear, not delivery.
"""

import pytest

from chaos.experiment import Experiment, Sweep
from chaos.core.model import Phase, Verdict

pytestmark = pytest.mark.chaos_profile("resilient")   # written for the reference stack

SWEEP = Experiment(
    name="packet_drop_sweep_edge_b",
    title="packet_drop on edge-b: 2 %, 10 %, 30 %, 50 %",
    expects=__doc__.split("\n\n")[1].replace("\n", " "),
    sweep=Sweep("packet_drop", "share", (0.02, 0.10, 0.30, 0.50), step_s=6, service="edge-b",
                unit="share"),
    before_s=6, after_s=8, recover_s=3,
)


def test_packet_drop_sweep_on_one_edge(chaos_run):
    result = chaos_run(SWEEP)
    bp = result.record.breaking_point
    assert [s.value for s in bp.steps] == [0.02, 0.10, 0.30, 0.50]
    for name in ("audio_delivered", "mouth_to_ear"):
        during = result.slo(name, Phase.DURING)
        for dc in ("dc-a", "dc-c"):
            assert during.per_dc[dc].verdict is Verdict.PASSED, (name, dc, during.per_dc[dc])
