"""Plain result types shared by every layer. No I/O here."""

from __future__ import annotations

import math
import numbers
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from enum import StrEnum


class Verdict(StrEnum):
    """What a judge answered: passed, failed, aborted (a halt condition or a person stopped
    the run) or inconclusive (nothing, or nothing trustworthy, was measured)."""

    PASSED = "passed"
    FAILED = "failed"
    ABORTED = "aborted"
    INCONCLUSIVE = "inconclusive"


class Phase(StrEnum):
    """A run's phases, in order; an SLO entry judged over the whole run is in RUN. Other
    entries name their own span ("step 2", "halt"), so a phase in a journal is one of
    these or free text."""
    BEFORE = "before"
    DURING = "during"
    RECOVERY = "recovery"
    AFTER = "after"
    RUN = "run"


@dataclass(frozen=True)
class SloResult:
    """One objective's verdict: the measured ``value`` (the worst window; None when nothing
    was measured) against the ``threshold``, over ``window``, in ``phase``, with the first
    time it broke (``first_breach_s``, seconds since the run started)."""

    name: str                   # the SLI, e.g. "join_time"
    objective: str              # in words, e.g. "p95 <= 2.0 s"
    verdict: Verdict
    value: float | None         # None: nothing was measured
    threshold: float
    window: str                 # what the value was computed over
    first_breach_s: float | None = None
    samples: int = 0
    note: str = ""
    phase: Phase | str = Phase.RUN   # a run phase, or a span of its own ("step 2", "halt")

    def to_dict(self) -> dict:
        d = asdict(self)
        d["verdict"], d["phase"] = str(self.verdict), str(self.phase)
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


_JSON_INT = 2**53           # past this, readers lose digits (or refuse: Python's 4300-digit limit)


def jsonable(obj, _depth: int = 0):
    """Anything, as what JSON can hold and read back: non-finite floats become null, numpy
    numbers plain ones, bytes and lone surrogates valid text, keys text, other objects their
    str(). A run's journal is built through this, so that no declared value can keep it
    from being written."""
    if _depth > 64:
        return "..."
    if obj is None or isinstance(obj, bool):
        return obj
    if isinstance(obj, str):
        try:
            obj.encode("utf-8")
            return str(obj)
        except UnicodeEncodeError:
            return obj.encode("utf-8", "replace").decode("utf-8")
    if isinstance(obj, numbers.Integral):
        n = int(obj)
        return n if abs(n) <= _JSON_INT else jsonable(_to_float(n))
    if isinstance(obj, numbers.Real):
        f = _to_float(obj)
        return f if f is not None and math.isfinite(f) else None
    if isinstance(obj, (bytes, bytearray)):
        return bytes(obj).decode("utf-8", "replace")
    if isinstance(obj, Mapping):
        return {(k if isinstance(k, str) else str(jsonable(k, _depth + 1))): jsonable(v, _depth + 1)
                for k, v in obj.items()}
    if isinstance(obj, (list, tuple, set, frozenset)):
        return [jsonable(v, _depth + 1) for v in obj]
    return jsonable(str(obj), _depth + 1)


def _to_float(x) -> float | None:
    try:
        return float(x)
    except (OverflowError, ValueError, TypeError):
        return None


def value_words(v) -> str:
    """A measured value in a verdict's words: "nothing measured" when there is none."""
    if v is None:
        return "nothing measured"
    if isinstance(v, float) and math.isinf(v):
        return "∞ (failed joins)"
    return f"{v:.3g}"
