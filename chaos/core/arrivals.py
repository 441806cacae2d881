"""Open-loop arrival schedules: when each listener of a join storm arrives.

A schedule is a declaration (a rate in joins/s, ramps, bursts, a duration) that expands,
deterministically for a seed, into the sorted offsets in seconds at which the load
generator fires joins. Open loop: an arrival is fired at its time whatever the stack is
doing, so that a slow stack meets a growing queue, as on the evening of the incident,
instead of a politely waiting client.

The rate is piecewise linear. Before the first ramp it is ``rate_per_s``; a ramp goes
linearly from ``from_per_s`` to ``to_per_s`` over its duration and the rate then stays at
``to_per_s`` until the next ramp (a ramp of duration 0 is a step). A burst adds ``joins``
arrivals at ``at_s`` (spread over ``spread_s``, if given) on top of the rate.

    ArrivalSchedule(833, duration_s=60)                        # the incident's average rate
    ArrivalSchedule.ramp_up(833, ramp_s=30, hold_s=30)         # 0 -> 833 joins/s, then hold
    ArrivalSchedule(100, 10, bursts=(Burst(5.0, 2000),))       # plus 2000 at once at t=5 s

``process="poisson"`` (the default) draws a non-homogeneous Poisson process by time
rescaling; ``process="even"`` spaces arrivals evenly in expected-count (the k-th arrival at
the time the cumulative rate reaches k).
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

import numpy as np

from chaos.core.errors import ConfigError

PROCESSES = ("poisson", "even")
MAX_ARRIVALS = 5_000_000      # a bound on memory: 40 MB of offsets
INCIDENT_JOINS_PER_S = 50_000 / 60  # 24 May 2023: ~50,000 listeners a minute, ~833 joins/s


def _number(what: str, value, *, positive: bool = False, unit: str) -> float:
    """A finite real number (not a bool), > 0 (positive) or >= 0; ConfigError otherwise."""
    cond = "more than 0" if positive else "of at least 0"
    if (isinstance(value, bool) or not isinstance(value, (int, float)) or math.isnan(value)
            or math.isinf(value) or value < 0 or (positive and value == 0)):
        raise ConfigError(f"{what} must be a finite number {cond} ({unit}), got {value!r}")
    return float(value)


@dataclass(frozen=True)
class Ramp:
    """The rate goes linearly from from_per_s to to_per_s over [start_s, start_s + duration_s]."""
    start_s: float
    duration_s: float
    from_per_s: float
    to_per_s: float

    @property
    def end_s(self) -> float:
        return self.start_s + self.duration_s


@dataclass(frozen=True)
class Burst:
    """joins extra arrivals at at_s, all at once or spread over [at_s, at_s + spread_s)."""
    at_s: float
    joins: int
    spread_s: float = 0.0


@dataclass(frozen=True)
class ArrivalSchedule:
    rate_per_s: float
    duration_s: float
    ramps: tuple[Ramp, ...] = ()
    bursts: tuple[Burst, ...] = ()
    process: str = "poisson"
    seed: int = 0
    max_joins: int | None = None

    def __post_init__(self) -> None:
        _number("rate_per_s", self.rate_per_s, positive=True, unit="joins/s")
        if self.duration_s is None:
            raise ConfigError("duration_s is required: an arrival schedule is bounded in time "
                              "(give the run's length in seconds, more than 0)")
        _number("duration_s", self.duration_s, positive=True, unit="seconds")
        if self.process not in PROCESSES:
            raise ConfigError(f"unknown arrival process {self.process!r}; use one of: "
                              f"{', '.join(PROCESSES)}")
        if isinstance(self.seed, bool) or not isinstance(self.seed, int):
            raise ConfigError(f"seed must be an integer, got {self.seed!r}")
        if self.max_joins is not None and (isinstance(self.max_joins, bool) or not isinstance(
                self.max_joins, int) or self.max_joins < 1):
            raise ConfigError(f"max_joins must be an integer of at least 1 (or None: the "
                              f"duration bounds the run), got {self.max_joins!r}")
        if not isinstance(self.ramps, tuple) or not isinstance(self.bursts, tuple):
            raise ConfigError("ramps and bursts are tuples of Ramp and Burst")
        d = self.duration_s
        for i, r in enumerate(self.ramps):
            if not isinstance(r, Ramp):
                raise ConfigError(f"ramps[{i}] is a {type(r).__name__}, not a Ramp")
            what = f"ramp at {r.start_s!r} s"
            _number(f"{what}: start_s", r.start_s, unit="seconds")
            _number(f"{what}: duration_s", r.duration_s, unit="seconds; 0 is a step")
            _number(f"{what}: from_per_s", r.from_per_s, unit="joins/s")
            _number(f"{what}: to_per_s", r.to_per_s, unit="joins/s")
            if r.start_s >= d or r.end_s > d:
                raise ConfigError(f"{what} runs to {r.end_s:g} s, outside the run of {d:g} s; "
                                  f"ramps start at 0 to {d:g} s and end by {d:g} s")
        ordered = sorted(self.ramps, key=lambda r: r.start_s)
        for before, r in zip(ordered, ordered[1:]):
            if r.start_s < before.end_s:
                raise ConfigError(f"ramp at {r.start_s:g} s starts before the ramp at "
                                  f"{before.start_s:g} s ends ({before.end_s:g} s); ramps must not overlap")
        for i, b in enumerate(self.bursts):
            if not isinstance(b, Burst):
                raise ConfigError(f"bursts[{i}] is a {type(b).__name__}, not a Burst")
            what = f"burst at {b.at_s!r} s"
            _number(f"{what}: at_s", b.at_s, unit="seconds")
            _number(f"{what}: spread_s", b.spread_s, unit="seconds")
            if isinstance(b.joins, bool) or not isinstance(b.joins, int) or b.joins < 1:
                raise ConfigError(f"{what}: joins must be an integer of at least 1, got {b.joins!r}")
            if b.at_s >= d or b.at_s + b.spread_s > d:
                raise ConfigError(f"{what} (spread {b.spread_s:g} s) is outside the run of {d:g} s; "
                                  f"a burst happens at 0 to {d:g} s and ends by {d:g} s")
        expected = self.expected_joins()
        if expected > MAX_ARRIVALS and (self.max_joins is None or self.max_joins > MAX_ARRIVALS):
            raise ConfigError(f"the schedule makes about {expected:,.0f} arrivals; the generator "
                              f"holds at most {MAX_ARRIVALS:,}: shorten the run, lower the rate "
                              "or set max_joins")

    # -- constructors -----------------------------------------------------------------
    @classmethod
    def constant(cls, rate_per_s: float, duration_s: float, **kw) -> ArrivalSchedule:
        return cls(rate_per_s, duration_s, **kw)

    @classmethod
    def ramp_up(cls, to_per_s: float, ramp_s: float, hold_s: float = 0.0,
                from_per_s: float = 0.0, **kw) -> ArrivalSchedule:
        """From from_per_s to to_per_s over ramp_s, then hold_s at to_per_s."""
        _number("ramp_s", ramp_s, positive=True, unit="seconds")
        _number("hold_s", hold_s, unit="seconds")
        return cls(to_per_s, ramp_s + hold_s, ramps=(Ramp(0.0, ramp_s, from_per_s, to_per_s),), **kw)

    # -- the rate -----------------------------------------------------------------------
    def segments(self) -> list[tuple[float, float, float, float]]:
        """The rate as linear pieces (t0, t1, rate at t0, rate at t1) covering [0, duration_s]."""
        out = []
        t, rate = 0.0, float(self.rate_per_s)
        for r in sorted(self.ramps, key=lambda r: r.start_s):
            if r.start_s > t:
                out.append((t, float(r.start_s), rate, rate))
            if r.duration_s > 0:
                out.append((float(r.start_s), float(r.end_s), float(r.from_per_s), float(r.to_per_s)))
            t, rate = float(r.end_s), float(r.to_per_s)
        if t < self.duration_s:
            out.append((t, float(self.duration_s), rate, rate))
        return out

    def rate_at(self, t_s: float) -> float:
        """Joins/s the rate asks for at t_s (bursts not included)."""
        if not 0 <= t_s <= self.duration_s:
            return 0.0
        for t0, t1, r0, r1 in reversed(self.segments()):
            if t0 <= t_s:
                return r0 + (r1 - r0) * ((t_s - t0) / (t1 - t0) if t1 > t0 else 0.0)
        return 0.0

    def expected_joins(self) -> float:
        """The rate's integral plus the bursts (before max_joins)."""
        rate = sum((r0 + r1) / 2 * (t1 - t0) for t0, t1, r0, r1 in self.segments())
        return rate + sum(b.joins for b in self.bursts)

    @property
    def peak_rate_per_s(self) -> float:
        return max(max(r0, r1) for _, _, r0, r1 in self.segments())

    @property
    def mean_rate_per_s(self) -> float:
        n = self.expected_joins()
        if self.max_joins is not None:
            n = min(n, self.max_joins)
        return n / self.duration_s

    # -- expansion --------------------------------------------------------------------
    def offsets(self) -> list[float]:
        """Every arrival's offset in seconds from the start, sorted ascending, truncated to
        max_joins. The same declaration gives the same list."""
        return self.offsets_array().tolist()

    def offsets_array(self) -> np.ndarray:
        rng = np.random.default_rng(self.seed)
        segs = self.segments()
        t0 = np.array([s[0] for s in segs])
        t1 = np.array([s[1] for s in segs])
        r0 = np.array([s[2] for s in segs])
        r1 = np.array([s[3] for s in segs])
        mass = (r0 + r1) / 2 * (t1 - t0)
        cum = np.concatenate(([0.0], np.cumsum(mass)))
        total = float(cum[-1])
        limit = self.max_joins if self.max_joins is not None else MAX_ARRIVALS
        if self.process == "even":
            u = np.arange(min(math.ceil(total), limit), dtype=float)
        else:
            u = _poisson_points(rng, total, limit)
        u = u[u < total]
        times = _invert(u, t0, t1, r0, r1, cum)
        parts = [times]
        for b in self.bursts:
            if b.spread_s == 0:
                parts.append(np.full(b.joins, float(b.at_s)))
            elif self.process == "even":
                parts.append(b.at_s + b.spread_s * np.arange(b.joins) / b.joins)
            else:
                parts.append(b.at_s + b.spread_s * rng.random(b.joins))
        out = np.sort(np.concatenate(parts), kind="stable")
        out = np.clip(out, 0.0, np.nextafter(self.duration_s, 0.0))
        return out[:limit]

    def describe(self) -> str:
        parts = [f"{self.process} arrivals at {self.rate_per_s:g} joins/s for {self.duration_s:g} s"]
        parts += [f"ramp {r.from_per_s:g}->{r.to_per_s:g} joins/s over {r.start_s:g}-{r.end_s:g} s"
                  for r in sorted(self.ramps, key=lambda r: r.start_s)]
        parts += [f"burst of {b.joins} at {b.at_s:g} s" + (f" over {b.spread_s:g} s" if b.spread_s else "")
                  for b in self.bursts]
        n = self.expected_joins()
        cap = f", at most {self.max_joins:,}" if self.max_joins is not None else ""
        return ", ".join(parts) + f" (~{n:,.0f} joins{cap}, seed {self.seed})"


def _poisson_points(rng: np.random.Generator, total: float, limit: int) -> np.ndarray:
    """Points of a unit-rate Poisson process on [0, total), at most limit of them."""
    chunks, at, n = [], 0.0, 0
    want = int(total + 6 * math.sqrt(total) + 16)
    for _ in range(64):  # bounded: each round covers ~6 sigma more than needed
        gaps = rng.exponential(1.0, size=min(want, limit - n + 1))
        pts = at + np.cumsum(gaps)
        chunks.append(pts)
        n += len(pts)
        at = float(pts[-1])
        if at >= total or n > limit:
            break
        want = int(total - at + 6 * math.sqrt(max(total - at, 1.0)) + 16)
    return np.concatenate(chunks)[:limit]


def _invert(u: np.ndarray, t0, t1, r0, r1, cum) -> np.ndarray:
    """The times at which the cumulative rate reaches each u (the rate is linear per segment)."""
    if not len(u):
        return u
    i = np.searchsorted(cum[:-1], u, side="right") - 1
    i = np.clip(i, 0, len(t0) - 1)
    du = u - cum[i]
    a = r0[i]
    width = t1[i] - t0[i]
    slope = np.divide(r1[i] - a, width, out=np.zeros_like(a), where=width > 0)
    root = np.sqrt(np.maximum(a * a + 2 * slope * du, 0.0))
    denom = a + root
    dt = np.divide(2 * du, denom, out=np.zeros_like(du), where=denom > 0)
    return t0[i] + np.minimum(dt, width)


_RATE = re.compile(r"^\s*([0-9]*\.?[0-9]+(?:[eE][-+]?[0-9]+)?)\s*(?:/\s*(s|sec|second|min|minute|h|hour))?\s*$")
_PER = {None: 1.0, "s": 1.0, "sec": 1.0, "second": 1.0, "min": 60.0, "minute": 60.0,
        "h": 3600.0, "hour": 3600.0}


def parse_rate(text: str) -> float:
    """Joins/s from "833", "833/s", "50000/min" or "3e6/h"; ConfigError otherwise."""
    m = _RATE.match(str(text))
    if not m:
        raise ConfigError(f"join rate {text!r} is not a rate; write joins per second (833), "
                          "or per unit: 833/s, 50000/min, 3000000/h")
    rate = float(m.group(1)) / _PER[m.group(2)]
    if not math.isfinite(rate):
        raise ConfigError(f"join rate {text!r} is not a finite number; write joins per second "
                          "(833), or per unit: 833/s, 50000/min, 3000000/h")
    if not rate > 0:
        raise ConfigError(f"join rate {text!r} must be more than 0 joins/s")
    return rate
