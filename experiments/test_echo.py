"""Echo from a hot-mic speaker (the incident: listeners heard echo).

The speaker's microphone hears its own playback 250 ms late at -6 dB (hot_mic), or the
speaker is published twice, 250 ms apart (double), for 10 s. Expects: the thick listeners
find the delayed copy in what they hear, in every DC: echo breaks its -25 dB objective
during the fault at about the injected strength, and is gone once the fault ends. (These
are detector checks: the framework must see the echo a listener would hear.) Echo is
measured over 5 s windows: a 4 s grace after the fault keeps the window that straddles
its end out of the `after` judgement.
"""

import pytest

from chaos.experiment import Audience, Experiment, fault
from chaos.core.slo import objective
from chaos.core.model import Phase, Verdict

pytestmark = pytest.mark.chaos_profile("resilient")   # written for the reference stack


@pytest.mark.parametrize("mode", ["hot_mic", "double"])
def test_echo_is_heard_and_then_gone(chaos_run, mode):
    result = chaos_run(Experiment(
        name=f"echo_{mode}",
        title=f"echo ({mode}): 250 ms, -6 dB, for 10 s",
        expects=__doc__.split("\n\n")[1].replace("\n", " "),
        method=[fault("echo", at_s=0, duration_s=10, delay_ms=250, gain_db=-6, mode=mode)],
        during=[objective("echo")],
        audience=Audience(listeners=9, thick_per_dc=1),
        before_s=6, after_s=10, recover_s=4), check=False)
    echo = result.slo("echo", Phase.DURING)
    assert echo.verdict is Verdict.FAILED, echo
    assert -12.0 <= echo.value <= -3.0, echo          # about the injected -6 dB
    assert {d.verdict for d in echo.per_dc.values()} == {Verdict.FAILED}
    assert result.slo("echo", Phase.AFTER).verdict is Verdict.PASSED
    assert result.slo("echo", Phase.BEFORE).verdict is Verdict.PASSED
