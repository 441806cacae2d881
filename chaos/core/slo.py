"""Service-level objectives over the SLIs the probes measure.

An SLI is recorded as a series of timed samples (seconds since the run started). An
objective is a statistic of that series compared with a threshold, either over each
sliding window (``window_s``) or over a whole phase. Every verdict carries the measured
value (the worst window), the threshold, the window and the first time it broke. Judging
never passes what was not measured: no samples gives ``inconclusive``.

    objective("join_time")                         # the default: p95 <= 2.0 s
    objective("audio_delivered", threshold=0.99)   # overridden per experiment
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace

import numpy as np

from chaos.core import validate as v
from chaos.core.errors import ConfigError
from chaos.core.model import SloResult, Verdict

OPS = {"<=": lambda v, t: v <= t, ">=": lambda v, t: v >= t}
STATS = ("p50", "p95", "p99", "mean", "max", "min")


@dataclass(frozen=True)
class SliSpec:
    """What an SLI is: the one registry every module reads (units, thresholds that make
    sense, whether it is known while the run goes on, which of the target's client paths it
    measures, and how a sentence says it broke)."""
    name: str
    unit: str
    lo: float            # accepted threshold range, inclusive
    hi: float
    about: str
    broke: str           # "joins failed": the subject of "... in every DC"
    path: str = "audio"  # the target's client path it measures: "join" | "audio"
    live: bool = False   # measured while the run goes on (halts, gates); else after it
    timing: str = "phased"  # judged per phase in time | "whole": one value per listener's
                            # listening, over the run | "recovery": after the faults


SLIS: dict[str, SliSpec] = {s.name: s for s in (
    SliSpec("join_time", "s", 0.0, 600.0, "join request -> first audio frame; failed joins count as +inf",
            "joins failed", path="join", live=True),
    SliSpec("audio_delivered", "", 0.0, 1.0, "share of produced frames received before the playout deadline",
            "audio delivery broke", live=True),
    SliSpec("freeze", "", 0.0, 1.0, "share of listening time in playout gaps over 200 ms",
            "playout froze"),
    SliSpec("mouth_to_ear", "s", 0.0, 60.0, "speaker capture -> listener receive",
            "audio arrived late", live=True),
    SliSpec("echo", "dB", -120.0, 0.0, "strength of a delayed copy (30-1000 ms) of the speaker's signal",
            "echo was heard"),
    SliSpec("silence", "s", 0.0, 600.0, "longest run of dead air while the speaker talks",
            "dead air was heard"),
    SliSpec("mos", "", 1.0, 4.5, "ITU-T G.107 E-model estimate from delay and loss",
            "call quality fell", timing="whole"),
    SliSpec("audience_retained", "", 0.0, 1.0, "share of listeners joined before a fault who hear audio within 30 s after it",
            "listeners were lost", path="join", timing="recovery"),
)}
LIVE_SLIS = tuple(s.name for s in SLIS.values() if s.live)   # judged while the run goes on


@dataclass(frozen=True)
class Objective:
    """An SLI's statistic (``stat``, one of ``STATS``) compared with ``threshold`` by ``op``
    (``<=`` or ``>=``), over each sliding window of ``window_s`` (stepped by ``step_s``) or,
    with no window, over the whole phase. Checked when made: a bad value raises
    ``ConfigError`` saying what. ``objective(sli)`` gives an SLI's default."""

    sli: str
    stat: str            # one of STATS
    op: str              # "<=" or ">="
    threshold: float
    window_s: float | None = None   # sliding window; None: the whole phase
    step_s: float = 1.0             # how far the window slides

    def __post_init__(self) -> None:
        spec = SLIS.get(self.sli) if isinstance(self.sli, str) else None
        if spec is None:
            raise ConfigError(f"unknown SLI {v.show(self.sli)}; use one of: {', '.join(SLIS)}")
        what = f"objective for {self.sli}"
        v.choice(f"{what}: op", self.op, tuple(OPS))
        v.choice(f"{what}: stat", self.stat, STATS)
        v.number(f"{what}: threshold", self.threshold, lo=spec.lo, hi=spec.hi, unit=spec.unit)
        window = v.optional(v.seconds, f"{what}: window_s", self.window_s, positive=True)
        v.step(f"{what}: step_s", self.step_s, window)

    @property
    def unit(self) -> str:
        return SLIS[self.sli].unit

    def describe(self) -> str:
        unit = f" {self.unit}" if self.unit else ""
        per = f" per {self.window_s:g} s window" if self.window_s else ""
        return f"{self.stat} {self.op} {self.threshold:g}{unit}{per}"

    def holds(self, value: float) -> bool:
        return OPS[self.op](value, self.threshold)

    def worse(self, a: float, b: float) -> float:
        return max(a, b) if self.op == "<=" else min(a, b)

    # -- judging --------------------------------------------------------------------
    def judge(self, value: float | None, samples: int, window: str, note: str = "") -> SloResult:
        """A verdict on one value that was computed elsewhere (whole run, no time series)."""
        if value is None or samples == 0 or math.isnan(value):
            return SloResult(self.sli, self.describe(), Verdict.INCONCLUSIVE, None, self.threshold,
                             window, None, samples, note or ("nothing was measured" if value is None
                                                             or samples == 0 else
                                                             "the measured value is not a number"))
        verdict = Verdict.PASSED if self.holds(value) else Verdict.FAILED
        return SloResult(self.sli, self.describe(), verdict, value, self.threshold, window, None,
                         samples, note)

    def evaluate(self, series: Series, start_s: float, end_s: float, phase: str = "run",
                 note: str = "", saturation: Saturation | None = None) -> SloResult:
        """Judge the samples in [start_s, end_s): each sliding window, or the phase as a whole.

        With ``saturation`` (the seconds in which the measuring side lagged past what this
        SLI tolerates): a probe that lags can only make the stack look worse (frames read
        late, joins timed long, gaps heard wider), never better. So what holds with every
        sample holds (the lag is said in the note); otherwise the samples of those seconds
        are set aside and the rest judged: a breach there still fails, but what would have
        passed is ``inconclusive`` (the probe, not the stack, may have been the limit), and
        nothing left is ``inconclusive``."""
        where = f"{phase} [{start_s:g} s, {end_s:g} s)"
        blind = saturation.blind(self.sli, start_s, end_s) if saturation is not None else None
        if not blind:
            return self._evaluate(series, start_s, end_s, phase, note, where)
        kept = series.without(blind)
        if len(kept) == len(series):             # nothing of this SLI fell in those seconds
            return self._evaluate(series, start_s, end_s, phase, note, where)
        why = saturation.describe(self.sli, start_s, end_s)
        whole = self._evaluate(series, start_s, end_s, phase, note, where)
        if whole.verdict is Verdict.PASSED:      # it held even as measured by a lagging probe
            return replace(whole, note="; ".join(x for x in (whole.note, f"it held although {why}") if x))
        r = self._evaluate(kept, start_s, end_s, phase, note, where)
        if r.verdict is Verdict.FAILED:
            return r
        return replace(r, verdict=Verdict.INCONCLUSIVE, note=f"{why}; {r.note}" if r.note else why)

    def _evaluate(self, series: Series, start_s: float, end_s: float, phase: str, note: str,
                  where: str) -> SloResult:
        t, v, wt = series.between_weighted(start_s, end_s)
        bad = np.isnan(v)
        if bad.any():   # a broken measurement is no evidence either way: left out, and said
            t, v = t[~bad], v[~bad]
            wt = None if wt is None else wt[~bad]
            note = "; ".join(x for x in (note, f"{int(bad.sum())} sample(s) were not a number "
                                         "and were left out") if x)
        if not len(t):
            return SloResult(self.sli, self.describe(), Verdict.INCONCLUSIVE, None, self.threshold,
                             where, None, 0, note or "nothing was measured", phase)
        n = len(v) if wt is None else Series.count(wt)
        if not self.window_s or self.window_s >= end_s - start_s:
            value = _stat(self.stat, v, wt)
            ok = self.holds(value)
            return SloResult(self.sli, self.describe(), Verdict.PASSED if ok else Verdict.FAILED,
                             value, self.threshold, where,
                             None if ok else _first_breach(self, t, v, wt), n, note, phase)
        worst: float | None = None
        first_breach: float | None = None
        w = self.window_s
        for lo in np.arange(start_s, end_s - w + 1e-9, self.step_s):
            i, j = np.searchsorted(t, [lo, lo + w])
            if i == j:
                continue
            value = _stat(self.stat, v[i:j], None if wt is None else wt[i:j])
            worst = value if worst is None else self.worse(worst, value)
            if first_breach is None and not self.holds(value):
                first_breach = float(lo + w)  # known broken once the window has closed
        if worst is None:
            return SloResult(self.sli, self.describe(), Verdict.INCONCLUSIVE, None, self.threshold,
                             where, None, 0, note or "nothing was measured", phase)
        return SloResult(self.sli, self.describe(),
                         Verdict.FAILED if first_breach is not None else Verdict.PASSED,
                         worst, self.threshold, f"{where}, {w:g} s windows every {self.step_s:g} s",
                         first_breach, n, note, phase)


def _stat(stat: str, v: np.ndarray, w: np.ndarray | None = None) -> float:
    """The statistic of samples v; w (optional) counts each sample w times (an aggregate:
    a per-second share over w frames, a histogram bucket of w latencies)."""
    if w is not None:
        if stat.startswith("p"):
            return weighted_percentile(v, w, float(stat[1:]))  # type: ignore[return-value]
        if stat == "mean":
            return float(np.average(v, weights=w)) if w.sum() > 0 else float(np.mean(v))
    if stat.startswith("p"):
        return percentile(v, float(stat[1:]))  # type: ignore[return-value]
    return float({"mean": np.mean, "max": np.max, "min": np.min}[stat](v))


def _first_breach(obj: Objective, t: np.ndarray, v: np.ndarray, w: np.ndarray | None = None) -> float:
    """When the statistic of everything seen so far first broke the objective.

    Checked on a grid of step_s (at most 400 points), so long runs stay cheap.
    """
    grid = np.arange(t[0] + obj.step_s, t[-1] + obj.step_s, obj.step_s)
    if len(grid) > 400:
        grid = np.linspace(grid[0], grid[-1], 400)
    for g in grid:
        k = int(np.searchsorted(t, g, side="right"))
        if k and not obj.holds(_stat(obj.stat, v[:k], None if w is None else w[:k])):
            return float(min(g, t[k - 1]))
    return float(t[-1])


@dataclass(frozen=True)
class Series:
    """Timed samples of one SLI: t_s sorted ascending, seconds since the run started.

    ``weights`` (optional) says how many events each sample stands for: probes aggregate
    as they go (per second, per histogram bucket) rather than keep every frame, and a
    weighted sample is judged exactly as that many equal samples would be."""
    sli: str
    t_s: np.ndarray
    values: np.ndarray
    weights: np.ndarray | None = None

    @classmethod
    def of(cls, sli: str, samples: Iterable[tuple[float, float]]) -> Series:
        arr = np.array(sorted(samples), dtype=float).reshape(-1, 2)
        return cls(sli, arr[:, 0], arr[:, 1])

    @classmethod
    def weighted(cls, sli: str, t_s, values, weights) -> Series:
        """Samples with weights (zero-weight samples dropped), sorted by time."""
        t, v, w = (np.asarray(x, dtype=float) for x in (t_s, values, weights))
        keep = w > 0
        t, v, w = t[keep], v[keep], w[keep]
        order = np.argsort(t, kind="stable")
        return cls(sli, t[order], v[order], w[order])

    def between(self, start_s: float, end_s: float) -> tuple[np.ndarray, np.ndarray]:
        i, j = np.searchsorted(self.t_s, [start_s, end_s])
        return self.t_s[i:j], self.values[i:j]

    def between_weighted(self, start_s: float, end_s: float):
        """(t, values, weights or None) in [start_s, end_s)."""
        i, j = np.searchsorted(self.t_s, [start_s, end_s])
        return self.t_s[i:j], self.values[i:j], None if self.weights is None else self.weights[i:j]

    def without(self, spans: Sequence[tuple[float, float]]) -> Series:
        """The samples outside every [lo, hi) span."""
        keep = np.ones(len(self.t_s), dtype=bool)
        for lo, hi in spans:
            i, j = np.searchsorted(self.t_s, [lo, hi])
            keep[i:j] = False
        return Series(self.sli, self.t_s[keep], self.values[keep],
                      None if self.weights is None else self.weights[keep])

    @staticmethod
    def count(weights: np.ndarray | None, n: int | None = None) -> int:
        return int(round(float(weights.sum()))) if weights is not None else int(n or 0)

    def events(self) -> int:
        """How many events the samples stand for."""
        return len(self.t_s) if self.weights is None else int(round(float(self.weights.sum())))

    def __len__(self) -> int:
        return len(self.t_s)


DEFAULTS: dict[str, Objective] = {
    "join_time": Objective("join_time", "p95", "<=", 2.0),
    "audio_delivered": Objective("audio_delivered", "mean", ">=", 0.995, window_s=5.0),
    "freeze": Objective("freeze", "mean", "<=", 0.01),
    "mouth_to_ear": Objective("mouth_to_ear", "p95", "<=", 0.4),
    "echo": Objective("echo", "max", "<=", -25.0),
    "silence": Objective("silence", "max", "<=", 1.0),
    "mos": Objective("mos", "min", ">=", 3.5),
    "audience_retained": Objective("audience_retained", "min", ">=", 0.95),
}


def objective(sli: str, **overrides) -> Objective:
    """The default objective of an SLI, with overrides (threshold, window_s, stat, op, step_s).
    A window shorter than the default step of 1 s slides by the window itself."""
    if not isinstance(sli, str) or sli not in DEFAULTS:
        raise ConfigError(f"unknown SLI {v.show(sli)}; use one of: {', '.join(SLIS)}")
    unknown = set(overrides) - {"threshold", "window_s", "stat", "op", "step_s"}
    if unknown:
        raise ConfigError(f"objective for {sli}: unknown setting(s) {', '.join(sorted(unknown))}; "
                          "use threshold, window_s, step_s, stat or op")
    w = overrides.get("window_s")
    if "step_s" not in overrides and v._is_number(w) and 0 < w < DEFAULTS[sli].step_s:
        overrides["step_s"] = w
    return replace(DEFAULTS[sli], **overrides)


def validate(objectives: Sequence[Objective], run_s: float, what: str = "") -> None:
    """Reject declarations that cannot be judged in a run of run_s seconds, before it starts."""
    seen = set()
    for o in v.items(what or "objectives", objectives, Objective,
                     "objective('join_time', threshold=...)"):
        if o.sli in seen:
            raise ConfigError(f"{what + ': ' if what else ''}two objectives for {o.sli}: "
                              "declare each SLI once")
        seen.add(o.sli)
        v.window(f"{what + ': ' if what else ''}objective for {o.sli}: window_s", o.window_s, run_s)


def weighted_percentile(values: np.ndarray, weights: np.ndarray, q: float) -> float | None:
    """The q-th percentile (nearest rank) of values each counted weights times."""
    if len(values) == 0 or not weights.sum() > 0:
        return None
    order = np.argsort(values, kind="stable")
    v, cum = values[order], np.cumsum(weights[order])
    rank = max(1.0, math.ceil(round(q / 100 * cum[-1], 9)))
    return float(v[min(int(np.searchsorted(cum, rank - 1e-9)), len(v) - 1)])


class Saturation:
    """The seconds of a run in which the measuring side could not keep up (a protocol the
    probes' watch implements: ``chaos.session.watch.ProbeHealth``)."""

    def blind(self, sli: str, start_s: float, end_s: float) -> list[tuple[float, float]]:
        """Spans in [start_s, end_s) whose samples of ``sli`` cannot be trusted."""
        raise NotImplementedError

    def describe(self, sli: str, start_s: float, end_s: float) -> str:
        raise NotImplementedError


def percentile(values: Sequence[float] | np.ndarray, q: float) -> float | None:
    """The q-th percentile (nearest rank); a failed join is +inf and counts as slow."""
    if len(values) == 0:
        return None
    ordered = np.sort(np.asarray(values, dtype=float))
    rank = max(1, math.ceil(q / 100 * len(ordered)))
    return float(ordered[rank - 1])
