"""The room restarted: every origin goes down at once for 3 s and comes back (the incident's
Space was ended and relaunched; about half the audience came back).

Expects, against the resilient profile: listeners and the speaker reconnect by themselves
(their retry policy), so at least 95 % of the listeners who heard audio before hear it
again within 30 s (audience_retained), and after a 5 s grace the steady state holds again.
The report says how long the audio took to come back (recovered_s).
"""

import pytest

from chaos.experiment import Experiment, fault
from chaos.core.slo import objective
from chaos.core.model import Phase

pytestmark = pytest.mark.chaos_profile("resilient")   # written for the reference stack

ROOM_RESTART = Experiment(
    name="room_restart",
    title="every origin killed for 3 s, then restarted",
    expects=__doc__.split("\n\n")[1].replace("\n", " "),
    method=[fault("dc_loss", dc="dc-a", kinds="origin", at_s=0, duration_s=3, label="origin-a restart"),
            fault("dc_loss", dc="dc-b", kinds="origin", at_s=0, duration_s=3, label="origin-b restart")],
    after=[objective("audience_retained")],
    before_s=6, after_s=11, recover_s=5,
)


def test_listeners_come_back_after_a_room_restart(chaos_run):
    result = chaos_run(ROOM_RESTART)
    retained = result.slo("audience_retained", Phase.AFTER)
    assert retained.samples == 1 and retained.value >= 0.95, retained
