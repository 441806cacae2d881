"""Service-level objectives over the SLIs the probes measure.

An objective is a statistic of an SLI compared with a threshold. Judging never passes
what was not measured: no samples gives ``inconclusive``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from .errors import ConfigError
from .model import SloResult, Verdict

OPS = {"<=": lambda v, t: v <= t, ">=": lambda v, t: v >= t}


@dataclass(frozen=True)
class Objective:
    sli: str
    stat: str          # "p95", "ratio", ...
    op: str            # "<=" or ">="
    threshold: float
    unit: str = ""

    def __post_init__(self) -> None:
        if self.op not in OPS:
            raise ConfigError(f"objective for {self.sli}: operator {self.op!r}; use <= or >=")
        if not isinstance(self.threshold, (int, float)) or isinstance(self.threshold, bool) \
                or not math.isfinite(self.threshold):
            raise ConfigError(f"objective for {self.sli}: threshold {self.threshold!r} is not a finite number")

    def describe(self) -> str:
        unit = f" {self.unit}" if self.unit else ""
        return f"{self.stat} {self.op} {self.threshold:g}{unit}"

    def judge(self, value: float | None, samples: int, window: str, note: str = "") -> SloResult:
        if value is None or samples == 0:
            return SloResult(self.sli, self.describe(), Verdict.INCONCLUSIVE, None, self.threshold,
                             window, None, samples, note or "nothing was measured")
        ok = OPS[self.op](value, self.threshold)
        return SloResult(self.sli, self.describe(), Verdict.PASSED if ok else Verdict.FAILED,
                         value, self.threshold, window, None, samples, note)


DEFAULTS: dict[str, Objective] = {
    "join_time": Objective("join_time", "p95", "<=", 2.0, "s"),
    "audio_delivered": Objective("audio_delivered", "ratio", ">=", 0.995),
    "mouth_to_ear": Objective("mouth_to_ear", "p95", "<=", 0.4, "s"),
}


def percentile(values: list[float], q: float) -> float | None:
    """The q-th percentile (nearest rank); a failed join is +inf and counts as slow."""
    if not values:
        return None
    ordered = sorted(values)
    rank = max(1, math.ceil(q / 100 * len(ordered)))
    return ordered[rank - 1]
