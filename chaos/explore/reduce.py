"""Our own reduction of a breaking schedule, after Hypothesis's shrink.

Hypothesis shrinks choice sequences and stops after a while; on a live stack every
candidate costs a run of seconds, so we try the candidates that matter most first, in this
order, keeping the first that still breaks (k of n runs: ``trials.needed``) and starting
over from it (greedy, like delta debugging):

1. fewer faults: each single fault alone, then every schedule with one fault left out;
2. simpler targets: a lost DC narrowed to one kind of service, the ones most others
   depend on first (redis and the origin before the gateways);
3. smaller magnitudes: the catalogue's lowest value, then halfway down, on its grid;
4. shorter faults: the shortest duration, then half as long, on the grid;
5. earlier faults: a start at 0.

"Smaller" is one order (``size``): fewer faults, then a narrower blast radius, then
smaller magnitudes, shorter and earlier faults.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, replace

from chaos.core.target import Target
from chaos.explore.schedule import Schedule, Step, params_of
from chaos.explore.spaces import MAGNITUDES, Space, depended_first
from chaos.explore.trials import Evaluator


@dataclass(frozen=True)
class Grid:
    grid_s: float = 2.0
    min_duration_s: float = 2.0


def size(s: Schedule, target: Target | None = None) -> tuple:
    """The order in which schedules are smaller: faults, blast radius, magnitude, time."""
    breadth = mags = dur = at = 0.0
    for st in s.steps:
        breadth += _breadth(st, target)
        for k, v in st.params:
            hi = MAGNITUDES.get(st.kind, {}).get(k, (0, 0, 0))[1]
            if isinstance(v, (int, float)) and hi:
                mags += float(v) / hi
        dur += st.duration_s
        at += st.at_s
    return (len(s), breadth, round(mags, 6), dur, at)


def _breadth(st: Step, target: Target | None) -> float:
    kinds = dict(st.params).get("kinds")
    if st.kind == "dc_loss" and (kinds in (None, "all")):
        return float(len(target.in_dc(st.dc))) if target is not None and st.dc else 5.0
    return 1.0


def candidates(s: Schedule, target: Target | None, spaces: Mapping[str, Space],
               grid: Grid) -> Iterator[Schedule]:
    steps = list(s.steps)
    n = len(steps)
    for k in range(1, n):            # 1. fewer faults, smallest subsets first
        for keep in itertools.combinations(range(n), k):
            yield Schedule(tuple(steps[i] for i in keep))
    for i, st in enumerate(steps):   # 2-5, one fault at a time
        for simpler in _simpler(st, target, spaces.get(st.kind), grid):
            yield Schedule(tuple(steps[:i] + [simpler] + steps[i + 1:]))


def _simpler(st: Step, target: Target | None, sp: Space | None, grid: Grid) -> Iterator[Step]:
    params = dict(st.params)
    if st.kind == "dc_loss" and params.get("kinds", "all") == "all" and target is not None and st.dc:
        for k in depended_first(target, st.dc):
            yield replace(st, params=params_of({**params, "kinds": k}))
    mags = (sp or Space(st.kind)).magnitudes() if st.kind in MAGNITUDES else {}
    for p, values in mags.items():
        v = params.get(p)
        if v is None or not values or v <= values[0]:
            continue
        lower = [x for x in values if x < v]
        for new in dict.fromkeys((lower[0], lower[len(lower) // 2])):
            changed = {**params, p: new}
            if "jitter_ms" in changed and changed["jitter_ms"] > changed.get("latency_ms", 0):
                changed["jitter_ms"] = 0
            yield replace(st, params=params_of(changed))
    if "jitter_ms" in params and params["jitter_ms"]:
        yield replace(st, params=params_of({**params, "jitter_ms": 0}))
    if st.duration_s > grid.min_duration_s:
        half = max(grid.min_duration_s, round(st.duration_s / 2 / grid.grid_s) * grid.grid_s)
        for d in dict.fromkeys((grid.min_duration_s, half)):
            if d < st.duration_s:
                yield replace(st, duration_s=float(d))
    if st.at_s > 0:
        yield replace(st, at_s=0.0)


def reduce(ev: Evaluator, start: Schedule, target: Target | None, spaces: Mapping[str, Space],
           grid: Grid = Grid(), repeats: int = 3) -> tuple[Schedule, bool]:
    """The smallest schedule found that still breaks, and whether the reduction finished
    (False: the budget ran out first). A candidate is taken only if it breaks k of
    ``repeats`` runs (``trials.needed``), the rule the minimal schedule's finding is held
    to: one breaking run (a fluke) is not enough, one passing run does not rule it out."""
    current = start
    while True:
        for cand in sorted(dict.fromkeys(candidates(current, target, spaces, grid)),
                           key=lambda c: size(c, target)):
            if size(cand, target) >= size(current, target):
                continue
            ok = ev.reproduces(cand, repeats, "reducing")
            if ok is None:
                return current, False
            if ok:
                current = cand
                break
        else:
            return current, True
