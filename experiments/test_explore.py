"""Generated fault schedules against the fragile profile: Hypothesis draws schedules from
the catalogue (dc_loss over every DC, latency on any link, packet_drop on any service),
runs each against the stack, and the search shrinks the first that breaks the audience's
steady state. The fragile stack has single points of failure in dc-a (its only Redis and
its only origin): the exploration must find a breaking schedule and shrink it to a single
fault in dc-a. A search that finds nothing means the framework is blind: the test fails.

Small budget (150 s of runs): the whole experiments folder runs in CI.
"""

import pytest
from hypothesis import given, settings

from chaos.explore import schedules
from chaos.explore.given import ScheduleBroke
from chaos.core.slo import objective

pytestmark = pytest.mark.chaos_profile("fragile")

CATALOGUE = ("dc_loss", "latency", "packet_drop")


def test_generated_schedules_find_the_single_point_of_failure(chaos_explore):
    @given(schedule=schedules(faults=CATALOGUE, target="fragile", max_faults=3, span_s=10))
    # report_multiple_bugs=False: the first breach ends generation, the budget goes to shrinking
    @settings(max_examples=8, deadline=None, database=None, report_multiple_bugs=False)
    def any_schedule_keeps_the_audience(schedule):
        chaos_explore(schedule, steady_state=[objective("join_time"), objective("audio_delivered")],
                      faults=CATALOGUE, budget_s=150, repeats=3)

    with pytest.raises(ScheduleBroke) as found:
        any_schedule_keeps_the_audience()
    said = str(found.value)
    print(said)
    assert "Falsifying schedule:" in said and "Experiment(" in said
    method = said.split("method=[", 1)[1].split("]", 1)[0]
    assert method.count("fault(") == 1 and "dc='dc-a'" in method, method  # one fault, in dc-a
    assert " of 3 run(s) broke" in said and "Where it broke:" in said and "Reproduce: pytest" in said
    assert "join_time" in said or "audio_delivered" in said
