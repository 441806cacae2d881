"""Losing a data center in the middle of an event (the incident: one of three main DCs had
been shut down weeks before).

dc_loss kills every service of one DC for 10 s, then brings them back. Expects, against the
resilient profile: every listener that was hearing audio before the loss hears it again
(audience_retained >= 95 %); joins keep working from every DC while the DC is gone, within
5 s at p95 (the 2 s objective is relaxed during the loss: a gateway finds out about a dead
edge or a Redis failover only after a timeout; the report shows by how much 2 s broke);
and once the DC is back, after a 3 s grace, the whole steady state holds again.
dc-a holds the Redis primary and the primary origin: losing it exercises Sentinel's
failover and the standby origin's takeover.
"""

import pytest

from chaos.experiment import Experiment, fault
from chaos.core.slo import objective

pytestmark = pytest.mark.chaos_profile("resilient")   # written for the reference stack


def dc_loss(dc: str) -> Experiment:
    return Experiment(
        name=f"dc_loss_{dc.replace('-', '_')}",
        title=f"dc_loss({dc}) for 10 s in the middle of an event",
        expects=__doc__.split("\n\n")[1].replace("\n", " "),
        method=[fault("dc_loss", dc=dc, at_s=0, duration_s=10, mode="kill")],
        during=[objective("join_time", threshold=5.0)],
        after=[objective("audience_retained")],
        before_s=6, after_s=9, recover_s=3,
    )


@pytest.mark.parametrize("dc", ["dc-a", "dc-b", "dc-c"])
def test_dc_loss_mid_event(chaos_run, dc):
    result = chaos_run(dc_loss(dc))
    fault_doc = result.record.faults[0]
    assert fault_doc.reverted and fault_doc.started_s is not None
    assert {s.dc for s in fault_doc.target.services} == {dc}
