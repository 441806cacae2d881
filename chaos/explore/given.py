"""The pytest way to explore: ``chaos_explore(schedule, steady_state=[...])`` inside a
Hypothesis test.

    @given(schedule=schedules(faults=("dc_loss", "latency", "packet_drop"), max_faults=3, span_s=20))
    @settings(max_examples=15, deadline=None)
    def test_any_schedule_keeps_the_audience(chaos_explore, schedule):
        chaos_explore(schedule, steady_state=[objective("audio_delivered"), objective("join_time")])

Each call resets the stack, runs the schedule as an experiment and tells Hypothesis how
close every SLO came to breaking (``hypothesis.target``). A breach raises ``ScheduleBroke``
and Hypothesis shrinks; a schedule seen before in this test is answered from its first run
(Hypothesis needs the same answer twice; every run counts for the rate). When Hypothesis
replays its minimal example for the last time, we reduce it further ourselves (a smaller
schedule is taken only if it breaks k of ``repeats`` runs) and run it until it has
``repeats`` runs, and the failure reads: the Experiment to paste, its
reproduction rate, where it broke, its journal and report, and a line that reproduces it.
A test all of whose runs were inconclusive (the stack refused every run) does not pass:
it fails with why nothing was measured, as an inconclusive ``chaos_run`` does.
Once a schedule broke, only smaller ones (Hypothesis's shrink candidates) are run; once the
test's ``budget_s`` is spent, none (the call returns None), so Hypothesis ends with the
best breach found so far. Hypothesis's own example database
replays the failing example first next time.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from chaos.core.errors import ConfigError, ScheduleBroke  # noqa: F401 - re-exported
from chaos.core.slo import Objective, objective
from chaos.explore import result as _result
from chaos.explore.live import AUDIENCE, RUN_SHAPE, LiveRunner
from chaos.explore.reduce import Grid, reduce, size
from chaos.explore.schedule import Schedule
from chaos.explore.search import Exploration, start_of
from chaos.explore.spaces import as_spaces
from chaos.explore.trials import Evaluator, Outcome

DEFAULT_BUDGET_S = 300.0


@dataclass
class _Test:
    ev: Evaluator
    runner: object
    state: object
    reproduce: str


@dataclass
class Explorer:
    """Session-wide: one evaluator per test (per steady state)."""
    current: Callable[[], tuple[object, str, str]]     # -> (stack state, test id, reproduce)
    reports_dir: str = "reports"
    progress: Callable[[str], None] = lambda m: None
    tests: dict = field(default_factory=dict)
    make_runner: Callable = LiveRunner      # (state, slos, reports_dir, reproduce) -> a Runner
    clock: Callable[[], float] | None = None

    def __call__(self, schedule: Schedule, steady_state: Sequence[Objective] | None = None, *,
                 faults: Sequence = (), budget_s: float = DEFAULT_BUDGET_S, repeats: int = 3,
                 grid: Grid = Grid()) -> Outcome | None:
        if not isinstance(schedule, Schedule):
            raise ConfigError(f"chaos_explore takes a schedule drawn from chaos.explore.schedules(...), "
                              f"got {type(schedule).__name__}")
        slos = tuple(steady_state) if steady_state else (objective("join_time"), objective("audio_delivered"))
        state, test_id, reproduce = self.current()
        from chaos.explore.stack import plans
        if not plans(schedule, state.topology):
            raise ConfigError(f"the schedule {schedule.describe()} does not plan against stack "
                              f"{state.stack_id}; draw it for this stack: schedules(..., "
                              f"target={state.topology.profile or state.topology.source!r})")
        key = (test_id, slos)
        t = self.tests.get(key)
        if t is None:
            runner = self.make_runner(state, slos, self.reports_dir, reproduce)
            ev = Evaluator(runner, budget_s, progress=self.progress, name="explore",
                           **({"clock": self.clock} if self.clock else {}))
            t = self.tests[key] = _Test(ev, runner, state, reproduce)
        broke = t.ev.failing()
        if schedule not in t.ev.runs and broke and \
                size(schedule, state.topology) >= min(size(b, state.topology) for b in broke):
            return None        # after a breach only smaller schedules are worth a run
        out = t.ev.first(schedule, "example")
        if out is None:
            return None
        _guide(out)
        if not out.failed:
            return out
        message = f"{schedule.describe()} broke {', '.join(out.broke)}"
        if _is_final():
            message = "\n" + self._final(t, schedule, out, slos, faults, budget_s, repeats, grid)
        raise ScheduleBroke(message)       # one origin: Hypothesis sees the same failure each time

    def _final(self, t: _Test, schedule: Schedule, out: Outcome, slos, faults, budget_s: float,
               repeats: int, grid: Grid) -> str:
        """Hypothesis's last replay: reduce further, reproduce, and say it all."""
        state = t.state
        spaces = {s.kind: s for s in as_spaces(faults)} if faults else {}
        # from the smallest breach that meets k of n (Hypothesis's minimal may be a fluke)
        start = start_of(t.ev, state.topology, repeats) or schedule
        minimal, reduced = reduce(t.ev, start, state.topology, spaces, grid, repeats)
        rate = t.ev.confirm(minimal, repeats)
        fails = [o for o in t.ev.runs[minimal] if o.failed]
        r = Exploration(slos, budget_s, 0.0, 0, 0, minimal=minimal, rate=rate,
                        outcome=fails[-1] if fails else out, first=schedule, reduced=reduced,
                        repeats=repeats).judged_by(t.ev)
        return _result.render(r, run_shape=RUN_SHAPE, audience=AUDIENCE, reproduce=t.reproduce)

    def inconclusive(self, test_id: str) -> str:
        """Why the test ``test_id`` must not pass although no schedule broke: every run it
        made was inconclusive, so nothing was measured ("" if something was, or it ran
        nothing). Called once the test body has returned (the pytest plugin)."""
        said = []
        for (tid, slos), t in self.tests.items():
            if tid != test_id:
                continue
            r = Exploration(slos, t.ev.budget_s, 0.0, 0, 0).judged_by(t.ev)
            if r.runs and r.verdict == "inconclusive":
                said.append(_result.render(r))
        return "\n".join(said)


def _guide(out: Outcome) -> None:
    """hypothesis.target on each SLO's closeness to breaking, inside a Hypothesis test."""
    from hypothesis import currently_in_test_context, target
    if currently_in_test_context():
        for name, score in out.scores.items():
            target(float(score), label=name)


def _is_final() -> bool:
    """Is Hypothesis replaying its minimal example for the report? (outside Hypothesis: yes)"""
    try:
        from hypothesis.control import current_build_context
        return bool(current_build_context().is_final)
    except Exception:  # noqa: BLE001 - not inside a Hypothesis test
        return True
