"""Running schedules: the runner seam, one outcome per run, and the evaluator that caches,
counts and keeps to the time budget.

A ``Runner`` is any callable ``(schedule, name) -> Outcome``: the live one resets the stack
and runs the schedule as an experiment (``chaos.explore.live``); a test passes a fake. Runs
are not deterministic, so the evaluator keeps every outcome of every schedule it ran: the
search sees the first one (Hypothesis needs a function that answers the same twice), and
the reproduction rate counts them all.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from chaos.explore.schedule import Schedule


@dataclass(frozen=True)
class Outcome:
    """One run of a schedule: did a required SLO break, which, how close each came."""
    verdict: str                                  # the run's verdict
    broke: tuple[str, ...] = ()                   # required SLOs that broke
    scores: Mapping[str, float] = field(default_factory=dict)  # SLO -> closeness (>= 1: broken)
    sentences: tuple[str, ...] = ()               # the report's "where it broke"
    run_dir: str = ""
    reason: str = ""
    took_s: float = 0.0

    @property
    def failed(self) -> bool:
        return bool(self.broke)

    @property
    def counted(self) -> bool:
        """An inconclusive run (the gate, a probe error) says nothing about the schedule."""
        return self.failed or self.verdict == "passed"


Runner = Callable[[Schedule, str], Outcome]


def needed(repeats: int) -> int:
    """The k of k-of-n: how many of ``repeats`` counted runs must break for a schedule to
    count as breaking (a majority: 2 of 3, 3 of 4, 1 of 1). One rule for every step of the
    reduction and for the minimal schedule's finding, so a fluke cannot become the example."""
    return repeats // 2 + 1


def holds(rate: tuple[int, int], repeats: int) -> bool:
    """Does a rate (broke, counted runs) meet the k-of-n rule for ``repeats`` runs?"""
    return rate[0] >= needed(repeats)


def closeness(slo: Mapping) -> float:
    """How close an SLO came to breaking: its worst value as a share of the allowed room
    (1.0 is the threshold; above it broke). ``<=`` objectives: value / threshold; ``>=``
    share objectives: shortfall / allowed shortfall. A broken SLO without a finite value
    (failed joins) scores 10."""
    v, t, op = slo.get("value"), slo.get("threshold"), slo.get("op") or "<="
    if v is None or t is None or not math.isfinite(float(v)):
        return 10.0 if slo.get("verdict") == "failed" else 0.0
    v, t = float(v), float(t)
    if op == "<=":
        return min(10.0, v / t) if t > 0 else (10.0 if v > t else 0.0)
    room = (1.0 - t) if 0 < t < 1 else abs(t) or 1.0
    return min(10.0, max(0.0, (1.0 - v) if 0 < t < 1 else (t - v)) / room)


@dataclass
class Evaluator:
    """Runs schedules within a budget; remembers every outcome."""
    runner: Runner
    budget_s: float
    clock: Callable[[], float] = time.monotonic
    progress: Callable[[str], None] = lambda msg: None
    name: str = "explore"
    runs: dict[Schedule, list[Outcome]] = field(default_factory=dict)
    order: list[Schedule] = field(default_factory=list)
    started: float | None = None
    exhausted: bool = False

    def __post_init__(self) -> None:
        self.started = self.clock() if self.started is None else self.started

    @property
    def elapsed_s(self) -> float:
        return self.clock() - self.started

    def left_s(self) -> float:
        return self.budget_s - self.elapsed_s

    def affordable(self) -> bool:
        """Another run fits if the budget is not spent (a run started is finished)."""
        if self.left_s() <= 0:
            self.exhausted = True
        return not self.exhausted

    def run(self, schedule: Schedule, why: str = "", overrun: bool = False) -> Outcome | None:
        """One more run of ``schedule`` (None: the budget is spent; ``overrun``: run anyway)."""
        if not self.affordable() and not overrun:
            return None
        n = len(self.runs.get(schedule, ())) + 1
        self.progress(f"[{self.elapsed_s:5.0f}/{self.budget_s:.0f} s] {why or 'run'} #{n}: "
                      f"{schedule.describe()}")
        t0 = self.clock()
        out = self.runner(schedule, f"{self.name}-{schedule.key()}-{n}")
        if not out.took_s:
            out = Outcome(out.verdict, out.broke, out.scores, out.sentences, out.run_dir,
                          out.reason, self.clock() - t0)
        if schedule not in self.runs:
            self.order.append(schedule)
        self.runs.setdefault(schedule, []).append(out)
        self.progress(f"    -> {'BROKE ' + ', '.join(out.broke) if out.failed else out.verdict}"
                      + (f" ({out.reason})" if not out.counted else ""))
        return out

    def first(self, schedule: Schedule, why: str = "") -> Outcome | None:
        """The schedule's first counted outcome, running it if it has none (a run that
        said nothing, e.g. the gate refused a sick stack, is tried once more)."""
        for out in self.runs.get(schedule, ()):
            if out.counted:
                return out
        for _ in range(2):
            out = self.run(schedule, why)
            if out is None or out.counted:
                return out
        return out

    def rate(self, schedule: Schedule) -> tuple[int, int]:
        """(runs that broke, counted runs) of a schedule."""
        outs = [o for o in self.runs.get(schedule, ()) if o.counted]
        return sum(o.failed for o in outs), len(outs)

    def reproduces(self, schedule: Schedule, repeats: int, why: str = "") -> bool | None:
        """Does ``schedule`` break in at least ``needed(repeats)`` of its first ``repeats``
        counted runs? Runs only until that is decided (k broke, or k can no longer be
        reached), within the budget; runs it had already count. None: the budget ended
        before it was decided. A schedule whose runs keep saying nothing (inconclusive, at
        most ``repeats`` of them beyond the counted ones) does not reproduce."""
        k = needed(repeats)
        silent = 0
        while True:
            outs = [o for o in self.runs.get(schedule, ()) if o.counted][:repeats]
            broke = sum(o.failed for o in outs)
            if broke >= k:
                return True
            if broke + (repeats - len(outs)) < k or silent >= repeats:
                return False
            out = self.run(schedule, why)
            if out is None:
                return None
            silent += not out.counted

    def confirm(self, schedule: Schedule, repeats: int) -> tuple[int, int]:
        """Run ``schedule`` until it has ``repeats`` counted runs. A finding needs its rate,
        so these runs may go past the budget: at most ``repeats + 1`` of them."""
        tries = 0
        while self.rate(schedule)[1] < repeats and tries < repeats + 1:
            tries += 1
            self.run(schedule, "reproducing", overrun=True)
        return self.rate(schedule)

    @property
    def total_runs(self) -> int:
        return sum(len(v) for v in self.runs.values())

    def failing(self) -> list[Schedule]:
        return [s for s in self.order if self.rate(s)[0] > 0]

    def unmeasured(self) -> list[Schedule]:
        """The schedules none of whose runs said anything (every run inconclusive)."""
        return [s for s in self.order if self.rate(s)[1] == 0]

    def silences(self) -> dict[str, int]:
        """Why runs said nothing: each inconclusive run's reason, with how many gave it."""
        why: dict[str, int] = {}
        for s in self.order:
            for o in self.runs[s]:
                if not o.counted:
                    r = o.reason or f"the run's verdict was {o.verdict or 'missing'}, with no reason given"
                    why[r] = why.get(r, 0) + 1
        return dict(sorted(why.items(), key=lambda kv: -kv[1]))
