"""Plain result types shared by every layer. No I/O here."""

from __future__ import annotations

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
