"""Baseline steady state: with no fault, a speaker and listeners in every DC, every SLO
holds. If this fails, no fault experiment is meaningful: the gate would stop them too.

Expects: every listener joins; join_time p95 <= 2 s, audio_delivered >= 99.5 % per 5 s
window, mouth_to_ear p95 <= 400 ms, in every DC; the thick listeners hear no echo, no
freeze, no dead air, MOS >= 3.5.
"""

import pytest

from chaos.experiment import Experiment
from chaos.core.slo import DEFAULTS

pytestmark = pytest.mark.chaos_profile("resilient")   # written for the reference stack

BASELINE = Experiment(
    name="baseline",
    title="Steady state with no fault",
    expects=__doc__.split("\n\n")[1].replace("\n", " "),
    steady_state=tuple(DEFAULTS[s] for s in ("join_time", "audio_delivered", "mouth_to_ear",
                                             "freeze", "silence", "mos")),
    before_s=6.0, after_s=6.0,
)


def test_steady_state_holds_without_faults(chaos_run):
    result = chaos_run(BASELINE)
    audience = result.record.audience
    assert audience.joined == audience.listeners and audience.thick_joined == audience.thick
    assert audience.join_probes > 0 and audience.join_probes_failed == 0
