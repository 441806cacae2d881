"""What a join storm measured: the workers' reports merged into one frozen result, with
its scale against the incident (24 May 2023: ~600,000 listeners, ~833 joins/s)."""

from __future__ import annotations

from array import array
from collections import Counter
from dataclasses import dataclass, field

import numpy as np

from chaos.core.arrivals import INCIDENT_JOINS_PER_S
from chaos.audio.histogram import Histogram

INCIDENT_AUDIENCE = 600_000


@dataclass(frozen=True)
class ScaleFactor:
    """The run against the incident: rate = achieved joins/s / 833, audience = peak
    concurrent listeners / 600,000."""
    rate: float
    audience: float

    def describe(self) -> str:
        return (f"{self.rate:.3g} of the incident's join rate ({self.rate * INCIDENT_JOINS_PER_S:,.0f} "
                f"of {INCIDENT_JOINS_PER_S:,.0f} joins/s), {self.audience:.3g} of its audience "
                f"({self.audience * INCIDENT_AUDIENCE:,.0f} of {INCIDENT_AUDIENCE:,} listeners)")

    def to_dict(self) -> dict:
        return {"rate": self.rate, "audience": self.audience,
                "against": {"joins_per_s": round(INCIDENT_JOINS_PER_S, 1), "audience": INCIDENT_AUDIENCE}}


@dataclass(frozen=True)
class StormResult:
    schedule: str                      # the arrival schedule, in words
    rate_requested_per_s: float        # mean over the schedule: arrivals / duration
    peak_rate_requested_per_s: float
    arrivals: int
    fired: int
    achieved_rate_per_s: float         # fired / the span they were fired over
    joined: int                        # joins timed (first frame heard)
    failed: int                        # joins failed, timed out or never fired (+inf)
    failures: dict[str, int]           # reason -> joins
    join_p50_s: float | None
    join_p95_s: float | None           # failed joins count as +inf
    join_p99_s: float | None
    join_mean_s: float | None          # of the timed joins
    refusals: dict[str, int]           # the stack's refusals (every attempt), by reason
    retry_hints: int                   # refusals that carried a retry hint
    retry_hint_max_s: float
    retries: int                       # attempts after the first, over all joins
    reconnects: int                    # held listeners lost and rejoining
    reconnect_failures: dict[str, int]
    evicted: int                       # held listeners sent away by the per-worker cap
    late_starts: int                   # arrivals started more than late_ms after schedule
    late_ms: float
    lateness_p99_s: float | None
    lateness_max_s: float | None
    peak_concurrent: int               # listeners held at once (sum of the workers' per-second peaks)
    peak_in_flight: int                # joins in progress at once (sum of the workers' peaks)
    scheduled_s: float
    duration_s: float                  # wall time, start to the last report
    workers: int
    generator_cpu_s: float
    worker_cpu: tuple[float, ...]      # each worker's CPU over its wall time (1.0: a whole core)
    worker_pids: tuple[int, ...]
    scale_factor: ScaleFactor
    started_ns: int                    # wall clock of offset 0
    errors: tuple[str, ...] = ()
    join_time: Histogram = field(default_factory=Histogram, repr=False, compare=False)
    rejoin_time: Histogram = field(default_factory=Histogram, repr=False, compare=False)
    samples: np.ndarray = field(default_factory=lambda: np.empty((0, 2)), repr=False, compare=False)

    @property
    def accounted(self) -> bool:
        """Every arrival is either joined or failed."""
        return self.joined + self.failed == self.arrivals

    def join_samples(self, t0_ns: int | None = None) -> tuple[np.ndarray, np.ndarray]:
        """(request time in s since t0_ns (default: started_ns), join time in s or +inf),
        sorted by request time: a join_time series for windowed SLOs."""
        order = np.argsort(self.samples[:, 0], kind="stable")
        shift = 0.0 if t0_ns is None else (self.started_ns - t0_ns) / 1e9
        return self.samples[order, 0] + shift, self.samples[order, 1]

    def to_dict(self) -> dict:
        d = {k: getattr(self, k) for k in self.__dataclass_fields__
             if k not in ("join_time", "rejoin_time", "samples", "scale_factor")}
        d["worker_cpu"] = list(self.worker_cpu)
        d["worker_pids"] = list(self.worker_pids)
        d["errors"] = list(self.errors)
        d["scale_factor"] = self.scale_factor.to_dict()
        d["join_time"] = self.join_time.summary()
        return d


def merge(reports: list[dict], *, schedule: str, scheduled_s: float, peak_rate_per_s: float,
          late_ms: float, started_ns: int, duration_s: float) -> StormResult:
    join = Histogram.merged(Histogram.from_dict(r["join"]) for r in reports)
    rejoin = Histogram.merged(Histogram.from_dict(r["rejoin"]) for r in reports)
    lateness = Histogram.merged(Histogram.from_dict(r["lateness"]) for r in reports)

    def total(key: str) -> int:
        return sum(r[key] for r in reports)

    def counts(key: str) -> dict[str, int]:
        c: Counter[str] = Counter()
        for r in reports:
            c.update(r[key])
        return dict(c.most_common())

    arrivals, fired = total("arrivals"), total("fired")
    firsts = [r["first_fire_s"] for r in reports if r["first_fire_s"] is not None]
    lasts = [r["last_fire_s"] for r in reports if r["last_fire_s"] is not None]
    # the span arrivals were fired over, at least the schedule's (a schedule that ends
    # early is no faster for it); a late generator stretches it
    span = max([scheduled_s] + lasts) - min([0.0] + firsts) if firsts else scheduled_s
    achieved = fired / span if span > 0 else 0.0
    n_s = max((len(r["held_by_s"]) for r in reports), default=0)
    held = [sum(r["held_by_s"][s] for r in reports if s < len(r["held_by_s"])) for s in range(n_s)]
    peak = max(held, default=0)
    parts = []
    for r in reports:
        a = array("d")
        a.frombytes(r["samples"])
        parts.append(np.frombuffer(a, dtype=float).reshape(-1, 2))
    samples = np.concatenate(parts) if parts else np.empty((0, 2))
    return StormResult(
        schedule=schedule, rate_requested_per_s=arrivals / scheduled_s,
        peak_rate_requested_per_s=peak_rate_per_s, arrivals=arrivals, fired=fired,
        achieved_rate_per_s=achieved, joined=total("joined"), failed=join.failed,
        failures=counts("failures"), join_p50_s=join.p50_s, join_p95_s=join.p95_s,
        join_p99_s=join.p99_s, join_mean_s=join.mean_s, refusals=counts("refusals"),
        retry_hints=total("retry_hints"),
        retry_hint_max_s=max((r["retry_hint_max_s"] for r in reports), default=0.0),
        retries=total("retries"), reconnects=total("reconnects"),
        reconnect_failures=counts("reconnect_failures"), evicted=total("evicted"),
        late_starts=total("late_starts"), late_ms=late_ms, lateness_p99_s=lateness.p99_s,
        lateness_max_s=lateness.max_s if lateness.count else None, peak_concurrent=peak,
        peak_in_flight=total("peak_in_flight"), scheduled_s=scheduled_s, duration_s=duration_s,
        workers=len(reports), generator_cpu_s=sum(r["cpu_s"] for r in reports),
        worker_cpu=tuple(round(r["cpu_s"] / r["wall_s"], 3) if r["wall_s"] > 0 else 0.0
                         for r in reports),
        worker_pids=tuple(r["pid"] for r in reports),
        scale_factor=ScaleFactor(achieved / INCIDENT_JOINS_PER_S, peak / INCIDENT_AUDIENCE),
        started_ns=started_ns,
        errors=tuple(e for r in reports for e in r["errors"])[:10],
        join_time=join, rejoin_time=rejoin, samples=samples)

