"""Hypothesis strategies for fault schedules, drawn from a target's topology.

    from chaos.explore import schedules, space
    schedules(faults=("dc_loss", "latency", "packet_drop"), max_faults=3, span_s=20)
    schedules(faults=(space("dc_loss", dcs=("dc-c",)), space("latency", latency_ms=(10, 90))),
              target="resilient")

Every draw is valid by construction (no ``assume``): the fault's target is one the
topology has (a DC, a service, a link), every magnitude is on its grid within its bounds
(and a latency's jitter never exceeds its delay), every fault starts on the time grid and
ends within ``span_s``. Overlaps are allowed. Hypothesis shrinks towards fewer faults, the
first target (dc-a, the first service or link), the smallest magnitude, the shortest
duration and the earliest start, which is also what "smaller" means to the search.
"""

from __future__ import annotations

from collections.abc import Sequence

from hypothesis import strategies as st

from chaos.core.errors import ConfigError
from chaos.core.target import Target
from chaos.explore.schedule import Schedule, Step, params_of
from chaos.explore.spaces import Resolved, Space, as_spaces

TARGET_PROFILES = ("resilient", "fragile")


def reference_common(runtime: str = "local") -> Target:
    """The reference stack's services and links that both profiles have: a schedule drawn
    from it plans against either profile."""
    from dataclasses import replace

    from chaos.adapters.space.reference import build
    a, b = build(runtime, "resilient"), build(runtime, "fragile")
    services = {k: v for k, v in b.services.items() if k in a.services}
    links = {k: v for k, v in b.links.items() if k in a.links}
    return replace(b, name="space", profile="", services=services, links=links)


def resolve_target(target: Target | str | None) -> Target:
    """A Target; a reference profile's name; a target file's path; None: what both reference
    profiles share."""
    if target is None:
        return reference_common()
    if isinstance(target, Target):
        return target
    if target in TARGET_PROFILES:
        from chaos.adapters.space.reference import build
        return build("local", target)
    from chaos.targets.file import load
    return load(str(target))


def _grid_steps(what: str, value: float, grid_s: float) -> int:
    n = value / grid_s
    if abs(n - round(n)) > 1e-9:
        raise ConfigError(f"schedules: {what}={value:g} s is not a multiple of grid_s={grid_s:g} s")
    return int(round(n))


def schedules(faults: Sequence[str | Space] = ("dc_loss", "latency", "packet_drop"), *,
              target: Target | str | None = None, max_faults: int = 3, span_s: float = 20.0,
              grid_s: float = 2.0, min_duration_s: float = 2.0,
              max_duration_s: float | None = None) -> st.SearchStrategy[Schedule]:
    """Schedules of 1 to ``max_faults`` faults from the catalogue ``faults``, against
    ``target`` (a Target, ``"resilient"``/``"fragile"``, a target file, or None for what both
    reference profiles share), every fault on a ``grid_s`` grid within ``span_s``."""
    topo = resolve_target(target)
    spaces = as_spaces(faults)
    if isinstance(max_faults, bool) or not isinstance(max_faults, int) or not 1 <= max_faults <= 10:
        raise ConfigError(f"schedules: max_faults={max_faults!r}; give 1 to 10 faults")
    for what, v in (("grid_s", grid_s), ("span_s", span_s), ("min_duration_s", min_duration_s)):
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not v > 0:
            raise ConfigError(f"schedules: {what}={v!r} must be a number of seconds > 0")
    span_n = _grid_steps("span_s", span_s, grid_s)
    min_n = _grid_steps("min_duration_s", min_duration_s, grid_s)
    max_n = span_n if max_duration_s is None else _grid_steps("max_duration_s", max_duration_s, grid_s)
    if not min_n <= max_n <= span_n:
        raise ConfigError(f"schedules: durations must fit min_duration_s={min_duration_s:g} <= "
                          f"max_duration_s <= span_s={span_s:g}")
    resolved = [s.resolve(topo) for s in spaces]
    step = st.one_of(*[_step(r, grid_s, span_n, min_n, max_n) for r in resolved])
    return st.builds(Schedule, st.lists(step, min_size=1, max_size=max_faults).map(tuple))


def _step(r: Resolved, grid_s: float, span_n: int, min_n: int, max_n: int) -> st.SearchStrategy[Step]:
    mags = r.space.magnitudes()
    kind = r.space.kind

    @st.composite
    def draw(d) -> Step:
        at_n = d(st.integers(0, span_n - min_n))
        dur_n = d(st.integers(min_n, min(max_n, span_n - at_n)))
        dc = service = link = None
        params: dict = {}
        if r.dcs:
            dc = d(st.sampled_from(r.dcs))
            narrow = r.dc_kinds.get(dc, ())
            if len(narrow) > 1:   # a single kind of the DC is the smaller fault: first
                k = d(st.sampled_from(narrow + ("all",)))
                if k != "all":
                    params["kinds"] = k
        elif r.services:
            service = d(st.sampled_from(r.services))
        elif r.links:
            link = d(st.sampled_from(r.links))
        for p, values in mags.items():
            if p == "latency_ms" and kind == "latency":
                v = d(st.sampled_from(values))
                params[p] = v
                # jitter within the delay, on the same grid: never below 0 ms
                grid = values[1] - values[0] if len(values) > 1 else v
                params["jitter_ms"] = d(st.sampled_from(tuple(
                    j for j in range(0, int(v) + 1, max(1, int(grid))) if j <= v // 2) or (0,)))
            else:
                params[p] = d(st.sampled_from(values))
        if kind == "slow_state":
            params["mode"] = "slow"
        return Step(at_n * grid_s, dur_n * grid_s, kind, dc, service, link, params_of(params))
    return draw()
