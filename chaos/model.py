"""Plain result types shared by every layer. No I/O here."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from enum import StrEnum


class Verdict(StrEnum):
    PASSED = "passed"
    FAILED = "failed"
    ABORTED = "aborted"
    INCONCLUSIVE = "inconclusive"


@dataclass(frozen=True)
class SloResult:
    name: str                   # the SLI, e.g. "join_time"
    objective: str              # in words, e.g. "p95 <= 2.0 s"
    verdict: Verdict
    value: float | None         # None: nothing was measured
    threshold: float
    window: str                 # what the value was computed over
    first_breach_s: float | None = None
    samples: int = 0
    note: str = ""
    phase: str = "run"

    def to_dict(self) -> dict:
        d = asdict(self)
        d["verdict"] = str(self.verdict)
        return d


def finite(obj):
    """JSON has no infinity: non-finite floats (a failed join's +inf) become null, in nested
    dicts and lists too."""
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    if isinstance(obj, dict):
        return {k: finite(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [finite(v) for v in obj]
    return obj
