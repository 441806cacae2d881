"""chaos.explore without a stack: the strategies draw only valid schedules, and the search
(reduction, reproduction rates, budget, store) behaves against a fake runner."""

from __future__ import annotations

import random

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from chaos.adapters.space.reference import build
from chaos.core.errors import ConfigError
from chaos.experiment import validate
from chaos.explore import Schedule, Step, explore, schedules, space
from chaos.explore.reduce import Grid, reduce, size
from chaos.explore.result import render, to_dict
from chaos.explore.store import Store
from chaos.explore.strategies import reference_common
from chaos.explore.trials import Evaluator, Outcome, closeness
from chaos.faults.base import plan
from chaos.core.slo import objective

FRAGILE = build("local", "fragile")
RESILIENT = build("local", "resilient")
CATALOGUE = ("dc_loss", "latency", "packet_drop", "slow_state", "bandwidth", "link_down",
             "cpu_starve", "join_storm", "dc_partition")
SLOS = (objective("join_time"), objective("audio_delivered"))


# -- strategies -----------------------------------------------------------------------------

@pytest.mark.parametrize("target", [None, "fragile", "resilient"])
@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_every_draw_plans_against_the_reference_stack(target, data):
    s = data.draw(schedules(CATALOGUE, target=target, max_faults=3, span_s=20, grid_s=2))
    exp = s.experiment("drawn", SLOS)
    validate(exp)
    against = [FRAGILE, RESILIENT] if target is None else [build("local", target)]
    for topo in against:            # the default target: both profiles accept every draw
        for step in exp.method:
            assert plan(step.spec, topo)
    assert 1 <= len(s) <= 3
    for step in s:
        assert step.at_s % 2 == 0 and step.duration_s % 2 == 0      # on the grid
        assert 2 <= step.duration_s and step.ends_s <= 20             # within the span


@settings(max_examples=80, deadline=None)
@given(s=schedules(("latency", "packet_drop", space("dc_loss", dcs=("dc-c",))), target="resilient"))
def test_magnitudes_and_targets_stay_in_bounds(s):
    for step in s:
        p = dict(step.params)
        if step.kind == "latency":
            assert 50 <= p["latency_ms"] <= 1000 and p["latency_ms"] % 50 == 0
            assert 0 <= p["jitter_ms"] <= p["latency_ms"]
            assert step.link in RESILIENT.links
        elif step.kind == "packet_drop":
            assert 0.05 <= p["share"] <= 0.5
            assert RESILIENT.services[step.service].kind != "toxiproxy"
        else:
            assert step.dc == "dc-c"
            assert p.get("kinds", "all") in {"all"} | {x.kind for x in RESILIENT.in_dc("dc-c")}


@settings(max_examples=40, deadline=None)
@given(s=schedules((space("latency", latency_ms=(10, 90, 10)),), target="resilient",
                   max_faults=2, span_s=12, grid_s=3, min_duration_s=3))
def test_user_bounds_and_grid(s):
    for step in s:
        assert 10 <= dict(step.params)["latency_ms"] <= 90
        assert step.at_s % 3 == 0 and step.duration_s >= 3 and step.ends_s <= 12


def test_default_target_is_what_both_profiles_share():
    common = reference_common()
    assert set(common.services) == set(FRAGILE.services) & set(RESILIENT.services)
    assert "origin-b" not in common.services and "edge-a.origin-b" not in common.links


@pytest.mark.parametrize("call, says", [
    (lambda: space("nonsense"), "the search draws"),
    (lambda: space("latency", latency_ms=(10, 10**9)), "within 0 to 600000 ms"),
    (lambda: space("latency", share=(0.1, 0.2)), "not a magnitude"),
    (lambda: schedules(("latency",), span_s=7, grid_s=2), "not a multiple of grid_s"),
    (lambda: schedules(("latency",), max_faults=0), "max_faults"),
    (lambda: schedules((space("dc_loss", dcs=("dc-z",)),), target="fragile"), "dc-z not in the target"),
    (lambda: schedules(()), "catalogue is empty"),
])
def test_bad_catalogues_are_refused_with_what_to_write(call, says):
    with pytest.raises(ConfigError, match=says):
        call()


def test_schedule_source_pastes_back_into_an_experiment():
    s = Schedule((Step(2.0, 4.0, "latency", link="listener.edge-a",
                       params=(("latency_ms", 300), ("jitter_ms", 50))),
                  Step(0.0, 2.0, "dc_loss", dc="dc-a", params=(("kinds", "redis"),))))
    assert s.steps[0].kind == "dc_loss"            # start order
    from chaos.experiment import Audience, Experiment, fault  # noqa: F401 - used by eval
    exp = eval(s.to_python("pasted", SLOS), {"Experiment": Experiment, "fault": fault,
                                             "objective": objective, "Audience": Audience})
    assert tuple(exp.method) == s.experiment("pasted", SLOS).method
    assert Schedule.from_dict(s.to_dict()) == s and s.key() == Schedule.from_dict(s.to_dict()).key()


def test_closeness_is_the_share_of_the_allowed_room():
    assert closeness({"value": 1.0, "threshold": 2.0, "op": "<="}) == 0.5
    assert closeness({"value": None, "threshold": 2.0, "op": "<=", "verdict": "failed"}) == 10.0
    assert closeness({"value": 0.99, "threshold": 0.995, "op": ">="}) == pytest.approx(2.0)
    assert closeness({"value": 1.0, "threshold": 0.995, "op": ">="}) == 0.0


# -- the search against a fake runner ---------------------------------------------------------

class FakeStack:
    """Breaks join_time whenever redis in dc-a is lost (alone or with its DC), with a
    reproduction probability; every run costs ``run_s`` of a fake clock."""

    def __init__(self, p_break: float = 1.0, run_s: float = 30.0, seed: int = 1):
        self.now = 0.0
        self.run_s = run_s
        self.p = p_break
        self.rng = random.Random(seed)
        self.calls: list[Schedule] = []

    def clock(self) -> float:
        return self.now

    def __call__(self, schedule: Schedule, name: str) -> Outcome:
        self.now += self.run_s
        self.calls.append(schedule)
        hit = any(s.kind == "dc_loss" and s.dc == "dc-a"
                  and dict(s.params).get("kinds", "all") in ("all", "redis") for s in schedule)
        if hit and self.rng.random() < self.p:
            return Outcome("failed", ("join_time",), {"join_time": 10.0},
                           ("join_time p95 rose to inf (limit 2 s) at t=5 s",), f"/r/{name}")
        near = max((dict(s.params).get("latency_ms", 0) / 1000 for s in schedule), default=0)
        return Outcome("passed", (), {"join_time": near, "audio_delivered": 0.1})


def test_reduction_drops_faults_and_narrows_the_dc_to_redis():
    fake = FakeStack()
    big = Schedule((Step(4.0, 10.0, "latency", link="edge-b.origin-a", params=(("latency_ms", 400), ("jitter_ms", 100))),
                    Step(6.0, 8.0, "dc_loss", dc="dc-a"),
                    Step(0.0, 6.0, "packet_drop", service="edge-c", params=(("share", 0.3),))))
    ev = Evaluator(fake, budget_s=10_000, clock=fake.clock)
    smallest, finished = reduce(ev, big, FRAGILE, {}, Grid())
    assert finished
    assert smallest == Schedule((Step(0.0, 2.0, "dc_loss", dc="dc-a", params=(("kinds", "redis"),)),))
    assert size(smallest, FRAGILE) < size(big, FRAGILE)


def test_search_finds_shrinks_and_gives_the_reproduction_rate(tmp_path):
    fake = FakeStack()
    store = Store(tmp_path, "k")
    r = explore(schedules(("dc_loss", "latency"), target="fragile", span_s=12), SLOS, fake,
                budget_s=100_000, target=FRAGILE, repeats=3, store=store, seed=3, clock=fake.clock)
    assert r.found and r.rate == (3, 3) and r.reduced and not r.stopped_early
    assert r.minimal == Schedule((Step(0.0, 2.0, "dc_loss", dc="dc-a", params=(("kinds", "redis"),)),))
    text = render(r)
    assert "3 of 3 run(s) broke join_time (reproducible)" in text
    assert "fault('dc_loss', at_s=0, duration_s=2, dc='dc-a', kinds='redis')" in text
    assert "Reproduce: chaos explore --replay /r/" in text and "Where it broke:" in text
    assert to_dict(r)["reproduced"] == {"broke": 3, "runs": 3, "needed": 2, "of": 3, "reproduces": True}
    assert to_dict(r)["verdict"] == "failed"
    assert "Each reduction step was taken only if it broke at least 2 of 3 runs; this schedule " \
           "meets that rule." in text
    # the next search tries the stored example first and needs no generation
    again = FakeStack()
    r2 = explore(schedules(("dc_loss", "latency"), target="fragile", span_s=12), SLOS, again,
                 budget_s=100_000, target=FRAGILE, repeats=3, store=store, clock=again.clock)
    assert again.calls[0] == r.minimal and r2.replayed == 1 and r2.minimal == r.minimal
    assert r2.runs == 3


def test_an_intermittent_breach_is_a_finding_with_its_rate():
    fake = FakeStack(p_break=0.5, seed=7)
    r = explore(schedules((space("dc_loss", dcs=("dc-a",)),), target="fragile", span_s=8),
                SLOS, fake, budget_s=100_000, target=FRAGILE, repeats=6, seed=1, clock=fake.clock)
    assert r.found
    broke, runs = r.rate
    assert runs == 6 and 0 < broke < 6
    assert "intermittent" in render(r)


def test_the_budget_stops_the_search_with_the_best_so_far():
    fake = FakeStack(run_s=30.0)
    cat = (space("dc_loss", dcs=("dc-a",), narrow=False), "latency", "packet_drop")
    r = explore(schedules(cat, target="fragile", max_faults=3), SLOS, fake, budget_s=60,
                target=FRAGILE, repeats=3, seed=5, clock=fake.clock)
    assert r.stopped_early and r.found
    # a run that started is finished; then only the minimal schedule's reproduction runs
    assert fake.now <= 60 + 30 + 3 * 30 and r.rate[1] == 3
    assert len(fake.calls) == r.runs <= 10
    text = render(r)
    assert not r.reduced and "the smallest breaking schedule found so far" in text


def test_nothing_found_says_how_much_was_tried_and_the_spread():
    class Survives(FakeStack):
        def __call__(self, schedule, name):
            self.now += self.run_s
            self.calls.append(schedule)
            return Outcome("passed", (), {"join_time": 0.4, "audio_delivered": 0.2})
    fake = Survives()
    cat = (space("dc_loss", dcs=("dc-c",)), space("latency", latency_ms=(10, 90, 10)))
    r = explore(schedules(cat, target="resilient", span_s=10), SLOS, fake, budget_s=300,
                target=RESILIENT, seed=2, clock=fake.clock)
    assert not r.found and r.tried == len(set(fake.calls)) >= 5 and r.stopped_early
    text = render(r)
    assert f"No schedule broke join_time, audio_delivered: {r.tried} schedule(s)" in text
    assert "kinds: dc_loss" in text or "kinds: latency" in text
    assert "Closest: join_time reached 40% of its limit" in text
    assert set(r.spread["kinds"]) <= {"dc_loss", "latency"}


def test_an_inconclusive_run_is_tried_again_and_not_counted():
    class Sick(FakeStack):
        def __call__(self, schedule, name):
            self.now += 1
            self.calls.append(schedule)
            if len(self.calls) == 1:
                return Outcome("inconclusive", reason="the gate: join_time broke before any fault")
            return Outcome("failed", ("join_time",), {"join_time": 10.0})
    fake = Sick()
    ev = Evaluator(fake, 1000, fake.clock)
    s = Schedule((Step(0.0, 2.0, "dc_loss", dc="dc-a"),))
    assert ev.first(s).failed and ev.rate(s) == (1, 1) and len(fake.calls) == 2


# -- the command line and the pytest glue ---------------------------------------------------

def test_cli_catalogue_entries_and_budgets():
    from chaos.cli.explore import parse_budget, parse_space
    assert parse_budget("90s") == 90 and parse_budget("10m") == 600 and parse_budget("1h") == 3600
    assert parse_budget("45") == 45
    sp = parse_space("packet_drop@edge-b+edge-c:share=0.05..0.3")
    assert sp.services == ("edge-b", "edge-c") and sp.bounds["share"][:2] == (0.05, 0.3)
    assert parse_space("dc_loss@dc-c").dcs == ("dc-c",)
    assert parse_space("latency:latency_ms=10..90..10").magnitudes()["latency_ms"] == tuple(range(10, 100, 10))
    for bad, says in (("ten minutes", "--budget"), ("0s", "--budget")):
        with pytest.raises(ConfigError, match=says):
            parse_budget(bad)
    for bad, says in (("latency:latency_ms=10", "PARAM=LO..HI"), ("teleport", "unknown kind"),
                      ("join_storm@x", "takes no @WHERE")):
        with pytest.raises(ConfigError, match=says):
            parse_space(bad)


def test_cli_usage_errors_exit_2(capsys):
    from chaos.cli import main
    assert main(["explore", "--faults", "teleport", "--budget", "1m"]) == 2
    assert main(["explore", "--budget", "soon"]) == 2
    assert "--budget 'soon'" in capsys.readouterr().err
    with pytest.raises(SystemExit) as e:
        main(["explore", "--max-faults", "many"])
    assert e.value.code == 2


pytest_plugins = ["pytester"]


def test_explorations_are_selected_by_profile_like_experiments(pytester):
    pytester.makepyfile(test_exp='''
import pytest

@pytest.mark.chaos_profile("fragile")
def test_explore_fragile(chaos_explore):
    pass

def test_explore_resilient(chaos_explore):
    pass
''')
    result = pytester.runpytest("--collect-only", "-q", "--chaos-stack-profile", "resilient",
                                "-p", "no:cacheprovider")
    out = result.stdout.str()
    assert "test_explore_resilient" in out and "test_explore_fragile" not in out


def test_a_breach_before_the_method_is_not_the_schedule_s():
    from chaos.explore.live import outcome_of
    slo = {"name": "join_time", "required": True, "verdict": "failed", "value": 2.33,
           "threshold": 2.0, "op": "<=", "first_breach_s": 0.4}
    gate = {"verdict": "inconclusive", "reason": "the gate", "slos": [{**slo, "phase": "before"}]}
    out = outcome_of(gate, SLOS)
    assert not out.failed and not out.counted
    during = {"verdict": "failed", "slos": [{**slo, "phase": "before", "verdict": "passed", "value": 0.2},
                                            {**slo, "phase": "during"}]}
    out = outcome_of(during, SLOS)
    assert out.broke == ("join_time",) and out.scores["join_time"] == pytest.approx(2.33 / 2)


def test_the_fixture_inside_hypothesis_reduces_and_reports_like_a_hypothesis_failure():
    from types import SimpleNamespace

    from hypothesis import given, settings

    from chaos.explore.given import Explorer, ScheduleBroke
    fake = FakeStack()
    state = SimpleNamespace(topology=FRAGILE, stack_id="space-test")
    explorer = Explorer(lambda: (state, "t::x", "pytest 't::x' --chaos-stack-profile fragile"),
                        make_runner=lambda *a: fake, clock=fake.clock)

    @given(schedule=schedules(("latency", "dc_loss"), target="fragile", span_s=8))
    @settings(max_examples=30, deadline=None, database=None, report_multiple_bugs=False,
              derandomize=True)
    def any_schedule(schedule):
        explorer(schedule, SLOS, budget_s=100_000, repeats=3)

    with pytest.raises(ScheduleBroke) as e:
        any_schedule()
    said = str(e.value)
    assert "fault('dc_loss', at_s=0, duration_s=2, dc='dc-a', kinds='redis')" in said
    assert "3 of 3 run(s) broke join_time" in said
    assert "Reproduce: pytest 't::x' --chaos-stack-profile fragile" in said
    ev = explorer.tests[("t::x", SLOS)].ev
    assert len(fake.calls) == ev.total_runs    # every run is counted once, none was repeated blindly
    with pytest.raises(ConfigError, match="does not plan against stack"):
        explorer(Schedule((Step(0.0, 2.0, "packet_drop", service="sentinel-a", params=(("share", 0.1),)),)), SLOS)


# -- inconclusive runs and the k-of-n rule --------------------------------------------------

SICK = "the stack was not healthy after its reset: redis-a"


class SickStack(FakeStack):
    """Every run says nothing: the reset leaves the stack unhealthy."""
    def __call__(self, schedule, name):
        self.now += self.run_s
        self.calls.append(schedule)
        return Outcome("inconclusive", reason=SICK)


def test_a_search_whose_every_run_was_inconclusive_is_inconclusive_not_a_pass():
    fake = SickStack(run_s=10.0)
    r = explore(schedules(("dc_loss", "latency"), target="fragile", span_s=8), SLOS, fake,
                budget_s=100, target=FRAGILE, seed=4, clock=fake.clock)
    assert not r.found and r.verdict == "inconclusive"
    assert r.runs == len(fake.calls) > 0 and r.unmeasured == r.tried > 0
    assert r.silences == {SICK: r.runs}
    text = render(r)
    assert "No schedule broke" not in text
    assert text.startswith(f"Inconclusive: join_time, audio_delivered could not be judged under any "
                           f"of the {r.tried} schedule(s) tried: all {r.runs} run(s) were "
                           "inconclusive, so nothing was measured")
    assert f"Why the runs said nothing: {SICK} ({r.runs} runs)." in text
    assert "make the stack healthy" in text
    doc = to_dict(r)
    assert doc["verdict"] == "inconclusive" and doc["inconclusive_runs"] == {SICK: r.runs}


def test_a_search_with_some_unmeasured_schedules_says_so_beside_what_held():
    class Patchy(FakeStack):
        def __call__(self, schedule, name):
            self.now += self.run_s
            self.calls.append(schedule)
            if any(s.kind == "latency" for s in schedule):
                return Outcome("inconclusive", reason="the gate: join_time broke before any fault")
            return Outcome("passed", (), {"join_time": 0.3})
    fake = Patchy()
    cat = (space("dc_loss", dcs=("dc-c",)), space("latency", latency_ms=(10, 90, 10)))
    r = explore(schedules(cat, target="resilient", span_s=10), SLOS, fake, budget_s=600,
                target=RESILIENT, seed=2, clock=fake.clock)
    assert r.verdict == "passed" and 0 < r.unmeasured < r.tried
    text = render(r)
    assert text.startswith("No schedule broke")
    assert (f"{r.unmeasured} of the {r.tried} schedule(s) could not be judged (every run of them was "
            "inconclusive): the gate: join_time broke before any fault") in text


class Fluky(FakeStack):
    """dc_loss of dc-a (or its redis) always breaks join_time; a latency alone breaks on its
    first run only (a fluke)."""
    def __call__(self, schedule, name):
        out = super().__call__(schedule, name)
        if not out.failed and [s.kind for s in schedule] == ["latency"] and \
                self.calls.count(schedule) == 1:
            return Outcome("failed", ("join_time",), {"join_time": 1.2}, ("a fluke",))
        return out


LATENCY = Step(4.0, 10.0, "latency", link="edge-b.origin-a", params=(("latency_ms", 400), ("jitter_ms", 0)))


def test_a_reduction_step_is_taken_on_k_of_n_runs_not_on_one_fluke():
    fake = Fluky()
    big = Schedule((LATENCY, Step(6.0, 8.0, "dc_loss", dc="dc-a")))
    ev = Evaluator(fake, budget_s=10_000, clock=fake.clock)
    smallest, finished = reduce(ev, big, FRAGILE, {}, Grid(), repeats=3)
    assert finished
    assert smallest == Schedule((Step(0.0, 2.0, "dc_loss", dc="dc-a", params=(("kinds", "redis"),)),))
    alone = Schedule((LATENCY,))
    assert ev.rate(alone) == (1, 3)          # it broke once, then held twice: not taken
    # with one run per step (the old rule) the fluke would have become the minimal example
    ev1 = Evaluator(Fluky(), budget_s=10_000, clock=fake.clock)
    fluke, _ = reduce(ev1, big, FRAGILE, {}, Grid(), repeats=1)
    assert [st.kind for st in fluke] == ["latency"] and ev1.rate(fluke) == (1, 1)


def test_reproduces_runs_only_until_k_of_n_is_decided_and_counts_what_it_has():
    from chaos.explore.trials import needed
    assert [needed(n) for n in (1, 2, 3, 4, 5, 6)] == [1, 2, 2, 3, 3, 4]
    fake = FakeStack()
    ev = Evaluator(fake, budget_s=10_000, clock=fake.clock)
    breaks = Schedule((Step(0.0, 2.0, "dc_loss", dc="dc-a"),))
    holds_ = Schedule((LATENCY,))
    assert ev.reproduces(breaks, 3) is True and ev.rate(breaks) == (2, 2)
    assert ev.reproduces(breaks, 3) is True and len(fake.calls) == 2      # decided: no more runs
    assert ev.reproduces(holds_, 3) is False and ev.rate(holds_) == (0, 2)
    sick = Evaluator(SickStack(), budget_s=10_000, clock=fake.clock)
    assert sick.reproduces(breaks, 3) is False and sick.total_runs == 3   # said nothing: not taken
    short = FakeStack(run_s=30.0)
    tight = Evaluator(short, budget_s=30, clock=short.clock)
    assert tight.reproduces(breaks, 3) is None and short.now == 30        # the budget ended it


def test_the_minimal_example_below_the_rule_says_so_with_its_rate():
    class Once(FakeStack):
        """Only dc_loss of dc-a breaks, and only on its first run."""
        def __call__(self, schedule, name):
            out = super().__call__(schedule, name)
            return out if self.calls.count(schedule) == 1 else Outcome("passed", (), {"join_time": 0.5})
    fake = Once()
    r = explore(schedules((space("dc_loss", dcs=("dc-a",), narrow=False),), target="fragile", span_s=4),
                SLOS, fake, budget_s=100_000, target=FRAGILE, repeats=3, seed=1, clock=fake.clock)
    assert r.found and r.rate == (1, 3) and not r.reproduces and r.verdict == "failed"
    text = render(r)
    assert "1 of 3 run(s) broke join_time (intermittent)" in text
    assert "this schedule does not (1 of 3): no schedule was shown to break that reliably" in text
    assert to_dict(r)["reproduced"]["reproduces"] is False


def test_cli_explore_exits_4_when_every_run_was_inconclusive(monkeypatch, tmp_path, capsys):
    from types import SimpleNamespace

    from chaos.cli import main
    from chaos.core.exits import Exit
    state = SimpleNamespace(topology=FRAGILE, stack_id="space-test")
    monkeypatch.setattr("chaos.targets.stack.current", lambda target=None: state)
    monkeypatch.setattr("chaos.targets.stack.require_healthy", lambda s: None)
    monkeypatch.setattr("chaos.explore.stack.LiveRunner", lambda *a, **k: SickStack(run_s=0.0))
    argv = ["explore", "--faults", "dc_loss@dc-a", "--budget", "10m", "--max-examples", "3",
            "--no-store", "--reports", str(tmp_path)]
    assert main(argv) == Exit.INCONCLUSIVE
    out = capsys.readouterr().out
    assert "Inconclusive:" in out and SICK in out and "No schedule broke" not in out


def test_cli_replay_that_said_nothing_exits_4(monkeypatch, tmp_path, capsys):
    from types import SimpleNamespace

    from chaos.cli import main
    from chaos.core.exits import Exit
    monkeypatch.setattr("chaos.targets.stack.current", lambda target=None: SimpleNamespace())
    monkeypatch.setattr("chaos.targets.stack.require_healthy", lambda s: None)
    outs = [Outcome("inconclusive", reason=SICK)] * 2
    monkeypatch.setattr("chaos.explore.stack.replay", lambda *a, **k: (0, 0, outs))
    assert main(["explore", "--replay", str(tmp_path / "schedule.json"), "--repeats", "2"]) == Exit.INCONCLUSIVE


def test_an_explore_test_whose_every_run_was_inconclusive_does_not_pass(pytester):
    pytester.makeconftest('''
import os
from types import SimpleNamespace

import pytest

from chaos.adapters.space.reference import build
from chaos.explore.given import Explorer
from chaos.explore.trials import Outcome

STATE = SimpleNamespace(topology=build("local", "fragile"), stack_id="space-test")


def _runner(state, slos, reports_dir, test_id):
    def run(schedule, name):
        if "sick" in test_id:
            return Outcome("inconclusive", reason="the gate: join_time broke before any fault")
        return Outcome("passed", (), {"join_time": 0.2})
    return run


@pytest.fixture(scope="session")
def chaos_explore():
    def current():
        test_id = os.environ["PYTEST_CURRENT_TEST"].rsplit(" ", 1)[0]
        return STATE, test_id, test_id
    return Explorer(current, make_runner=_runner)
''')
    pytester.makepyfile(test_drawn='''
from hypothesis import given, settings

from chaos.core.slo import objective
from chaos.explore import schedules


@given(schedule=schedules(("dc_loss",), target="fragile", span_s=4))
@settings(max_examples=3, deadline=None, database=None)
def test_sick(chaos_explore, schedule):
    chaos_explore(schedule, steady_state=[objective("join_time")])


@given(schedule=schedules(("dc_loss",), target="fragile", span_s=4))
@settings(max_examples=3, deadline=None, database=None)
def test_healthy(chaos_explore, schedule):
    chaos_explore(schedule, steady_state=[objective("join_time")])
''')
    result = pytester.runpytest("-q", "-p", "no:cacheprovider", "-p", "no:randomly")
    out = result.stdout.str()
    result.assert_outcomes(passed=1, failed=1)
    assert "test_drawn.py::test_sick" in out and "chaos_explore: Inconclusive: join_time could not be " \
           "judged under any of the" in out
    assert "Why the runs said nothing: the gate: join_time broke before any fault" in out


def test_the_reduction_starts_from_the_smallest_breach_that_meets_the_rule():
    from chaos.explore.search import start_of
    fake = Fluky()
    ev = Evaluator(fake, budget_s=10_000, clock=fake.clock)
    fluke, real = Schedule((LATENCY,)), Schedule((Step(6.0, 8.0, "dc_loss", dc="dc-a"),))
    assert ev.first(fluke).failed and ev.first(real).failed          # each broke once
    assert size(fluke, FRAGILE) < size(real, FRAGILE)
    assert start_of(ev, FRAGILE, 3) == real and ev.rate(fluke) == (1, 3)
    never = Evaluator(Fluky(), budget_s=10_000, clock=fake.clock)
    assert never.first(fluke).failed
    assert start_of(never, FRAGILE, 3) == fluke      # none meets it: the smallest breach, said intermittent
