"""The search: stored examples first, then Hypothesis (guided by how close each SLO came
to breaking), then our own reduction of the smallest breaking schedule, then reproduction.

    result = explore(schedules(faults=("dc_loss", "latency")), runner, budget_s=600)

Phases, all within ``budget_s`` (a run that has started is finished; the next does not
start once the budget is spent, and the result says the search stopped early):

1. replay: the examples that broke this catalogue before (``Store``) are run first;
2. search: Hypothesis draws schedules and runs each (``hypothesis.target`` on every
   objective's closeness, so the targeting phase climbs towards a breach); the first
   breach ends generation and Hypothesis shrinks it, for at most ``shrink_runs`` new runs;
3. reduce: our own greedy reduction (``reduce.py``), from the smallest breaking schedule
   that breaks k of ``repeats`` runs (``trials.needed``: 2 of 3), and taking a smaller one
   only when it does too: one run that broke is not enough;
4. reproduce: the minimal schedule is run until it has ``repeats`` runs; its rate (e.g.
   3 of 3) and whether it meets the same k-of-n rule are part of the finding. A breach
   below the rule is still a finding, said to be intermittent, with its rate.

A search whose every run was inconclusive (the gate refused a sick stack, the reset left
it unhealthy) measured nothing: its verdict is ``inconclusive``, never "nothing broke",
and the result says why the runs said nothing.

Hypothesis needs a test that answers the same for the same input; the evaluator answers
a schedule it ran before with that schedule's first outcome, and every run is kept for
the rates.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from chaos.core.slo import Objective
from chaos.core.target import Target
from chaos.explore.reduce import Grid, reduce, size
from chaos.explore.schedule import Schedule
from chaos.explore.spaces import Space
from chaos.explore.store import Store
from chaos.explore.trials import Evaluator, Outcome, Runner, holds, needed


class _Broke(Exception):
    """Raised inside the Hypothesis test: this schedule broke a required SLO."""


@dataclass
class Exploration:
    """What a search found, and what it tried."""
    steady_state: tuple[Objective, ...]
    budget_s: float
    elapsed_s: float
    tried: int                              # distinct schedules run
    runs: int                               # runs in all (repeats included)
    minimal: Schedule | None = None         # the smallest breaking schedule
    rate: tuple[int, int] = (0, 0)          # its (broke, runs)
    repeats: int = 3                        # the n of the k-of-n rule (trials.needed)
    outcome: Outcome | None = None          # the minimal schedule's last breaking run
    first: Schedule | None = None           # the first breaking schedule found
    reduced: bool = True                    # the reduction finished within the budget
    stopped_early: bool = False             # the budget ended the search
    spread: dict = field(default_factory=dict)   # what the schedules tried covered
    closest: tuple[Schedule, str, float] | None = None   # nothing found: the nearest miss
    replayed: int = 0
    unmeasured: int = 0                     # schedules none of whose runs said anything
    silences: dict = field(default_factory=dict)   # why runs said nothing -> how many

    @property
    def found(self) -> bool:
        return self.minimal is not None

    @property
    def needed(self) -> int:
        return needed(self.repeats)

    @property
    def reproduces(self) -> bool:
        """The minimal schedule meets the k-of-n rule its reduction steps were held to."""
        return self.found and holds(self.rate, self.repeats)

    @property
    def verdict(self) -> str:
        """``failed`` (a breaking schedule), ``passed`` (runs were judged and none broke) or
        ``inconclusive`` (no run was judged: nothing was measured)."""
        if self.found:
            return "failed"
        return "passed" if self.tried > self.unmeasured else "inconclusive"

    def judged_by(self, ev: Evaluator) -> Exploration:
        """What the evaluator ran, into this result."""
        self.elapsed_s = ev.elapsed_s
        self.tried = len(ev.order)
        self.runs = ev.total_runs
        self.stopped_early = ev.exhausted
        self.spread = spread_of(ev)
        self.unmeasured = len(ev.unmeasured())
        self.silences = ev.silences()
        return self


def spread_of(ev: Evaluator) -> dict:
    """How the schedules tried covered the catalogue: per kind, per target, faults per
    schedule, seconds of fault."""
    kinds: dict[str, int] = {}
    where: dict[str, int] = {}
    sizes: dict[int, int] = {}
    for s in ev.order:
        sizes[len(s)] = sizes.get(len(s), 0) + 1
        for st in s.steps:
            kinds[st.kind] = kinds.get(st.kind, 0) + 1
            w = st.dc or st.service or st.link or "audience"
            where[w] = where.get(w, 0) + 1
    return {"kinds": dict(sorted(kinds.items())), "targets": dict(sorted(where.items())),
            "faults_per_schedule": dict(sorted(sizes.items()))}


def explore(strategy, steady_state: Sequence[Objective], runner: Runner, *, budget_s: float,
            spaces: Sequence[Space] = (), target: Target | None = None, repeats: int = 3,
            max_examples: int = 100, shrink_runs: int = 4, store: Store | None = None,
            grid: Grid = Grid(), seed: int | None = None,
            clock: Callable[[], float] | None = None,
            progress: Callable[[str], None] = lambda m: None) -> Exploration:
    import time
    ev = Evaluator(runner, budget_s, clock or time.monotonic, progress)
    by_kind = {s.kind: s for s in spaces}
    breaking: list[Schedule] = []

    # 1. replay what broke before
    replayed = 0
    for s in (store.examples() if store is not None else []):
        out = ev.first(s, "replaying a stored example")
        if out is None:
            break
        replayed += 1
        if out.failed:
            breaking.append(s)
            break
    # 2. Hypothesis: generate (guided), then its own shrink for a few runs
    if not breaking:
        breaking += _hypothesis(strategy, ev, max_examples, shrink_runs, seed)
    best = start_of(ev, target, repeats)
    result = Exploration(tuple(steady_state), budget_s, 0.0, 0, 0, replayed=replayed,
                         repeats=repeats)
    if best is not None:
        result.first = ev.failing()[0]
        # 3. our reduction, 4. its reproduction rate
        result.minimal, result.reduced = reduce(ev, best, target, by_kind, grid, repeats)
        result.rate = ev.confirm(result.minimal, repeats)
        fails = [o for o in ev.runs[result.minimal] if o.failed]
        result.outcome = fails[-1] if fails else None
        if store is not None:
            store.add(result.minimal, result.rate)
    else:
        result.closest = _closest(ev)
    return result.judged_by(ev)


def start_of(ev: Evaluator, target: Target | None, repeats: int) -> Schedule | None:
    """Where the reduction starts: the smallest breaking schedule that breaks k of
    ``repeats`` runs; if none does (or the budget ends first), the smallest that broke at
    all (its finding then says it is intermittent, with its rate)."""
    failing = sorted(ev.failing(), key=lambda s: size(s, target))
    for s in failing:
        ok = ev.reproduces(s, repeats, "reproducing")
        if ok is None:
            break
        if ok:
            return s
    return failing[0] if failing else None


def _closest(ev: Evaluator) -> tuple[Schedule, str, float] | None:
    best = None
    for s, outs in ev.runs.items():
        for o in outs:
            for name, score in o.scores.items():
                if best is None or score > best[2]:
                    best = (s, name, score)
    return best


def _hypothesis(strategy, ev: Evaluator, max_examples: int, shrink_runs: int,
                seed: int | None) -> list[Schedule]:
    from hypothesis import HealthCheck, Phase, given, seed as hseed, settings, target

    found: list[Schedule] = []
    shrink_left = [shrink_runs]

    @settings(max_examples=max_examples, deadline=None, database=None, report_multiple_bugs=False,
              phases=(Phase.generate, Phase.target, Phase.shrink),
              suppress_health_check=list(HealthCheck), print_blob=False)
    @given(strategy)
    def probe(schedule: Schedule) -> None:
        known = schedule in ev.runs
        if not known and found:            # Hypothesis is shrinking: a few smaller runs only
            if shrink_left[0] <= 0 or size(schedule) >= min(size(f) for f in found):
                return
            shrink_left[0] -= 1
        out = ev.first(schedule, "shrinking" if found else "searching")
        if out is None:                     # the budget is spent: answer without a run
            return
        for name, score in out.scores.items():
            target(float(score), label=name)
        if out.failed:
            if schedule not in found:
                found.append(schedule)
            raise _Broke(schedule.describe())

    if seed is not None:
        probe = hseed(seed)(probe)
    try:
        probe()
    except _Broke:
        pass
    return found
