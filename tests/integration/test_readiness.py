"""Readiness against a real local stack: the known answers it must get right.

- fragile + survive dc_loss: NO-GO, naming redis in dc-a as a single point of failure
  (found in the target's depends, confirmed by a dc_loss run under load);
- a demand above the measured knee: NO-GO, negative headroom, the fleet that would do;
- a generator capped below the demand: INCONCLUSIVE, saying the generator was the limit.

Each is a few real runs (about a minute); CI runs only the quick form in
experiments/test_readiness.py, so these run when CHAOS_READINESS_ALL=1.
"""

from __future__ import annotations

import json
import os

import pytest

from chaos.readiness import Demand, Plan, Readiness, assess

from .conftest import bring_up

pytestmark = [pytest.mark.local, pytest.mark.skipif(
    os.environ.get("CHAOS_READINESS_ALL") != "1",
    reason="the readiness known answers take minutes; set CHAOS_READINESS_ALL=1 (CI runs the quick "
           "form in experiments/test_readiness.py)")]
BASE = int(os.environ.get("CHAOS_TEST_READINESS_BASE_PORT", 19200))
SMALL = Plan(step_s=4.0, gap_s=0.5, units=(1,), fanout_units=(1,), join_steps=(40, 160, 640),
             fanout_steps=(10, 40), listeners_per_unit=2, loss_s=6.0)


@pytest.fixture
def stack_of(chaos_home):
    from chaos.targets import stack
    started = []

    def up(profile: str):
        started.append(bring_up("local", profile, BASE))
        return started[-1]
    yield up
    if started:
        stack.down()


def test_fragile_with_dc_loss_is_no_go_naming_redis_in_dc_a(stack_of, tmp_path):
    state = stack_of("fragile")
    a = assess(Demand.of(30, "300/min"), state, survive="dc_loss", plan=SMALL, reports_dir=tmp_path)
    assert a.verdict.verdict is Readiness.NO_GO and a.exit_code == 1
    assert "redis (redis-a)" in a.verdict.sentence and "dc-a" in a.verdict.sentence
    loss = a.doc["n_minus_1"]
    assert loss["dc"] == "dc-a" and loss["verdict"] == "failed"
    assert set(next(iter(loss["broke_elsewhere"].values()))) >= {"dc-b", "dc-c"}
    assert loss["run_id"] in a.doc["run_ids"]
    assert json.loads((tmp_path / loss["run_id"] / "journal.json").read_text())["verdict"] == "failed"


def test_demand_above_the_knee_is_no_go_with_the_fleet_needed(stack_of, tmp_path):
    state = stack_of("resilient")
    a = assess(Demand.of(30, "120000/min"), state, plan=SMALL, reports_dir=tmp_path)   # 2000/s
    join = next(t for t in a.doc["tiers"] if t["tier"] == "join")
    assert a.verdict.verdict is Readiness.NO_GO, a.verdict.reasons
    assert join["headroom"] < 0 and join["verdict"] == "NO-GO"
    assert a.doc["measurements"][0]["knee"] is not None
    assert "NO-GO: the join tier" in a.verdict.sentence


def test_a_capped_generator_is_inconclusive(stack_of, tmp_path):
    from dataclasses import replace
    state = stack_of("resilient")
    a = assess(Demand.of(30, "6000/min"), state, plan=replace(SMALL, max_rate_per_s=15.0),
               reports_dir=tmp_path)                                                    # 100/s
    assert a.verdict.verdict is Readiness.INCONCLUSIVE and a.exit_code == 4
    assert "the generator was the limit" in a.verdict.sentence
    join = a.doc["measurements"][0]
    assert join["limit"] == "generator" and max(s["requested_per_s"] for s in join["steps"]) == 15.0
