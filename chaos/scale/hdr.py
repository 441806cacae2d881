"""Join times as HdrHistograms in the standard format (the ``hdrhistogram`` library).

A shard sends one snapshot a second: the joins resolved in that second, encoded in
HdrHistogram's compressed, base64 wire format, which any HdrHistogram implementation can
read. Values are recorded in microseconds from 1 us to 1 hour with 3 significant
digits, so a quantile is within 0.1 % of the true order statistic. A failed join has no
time: it is counted beside the histogram and ranks above every timed join (with 10 %
failed, p95 is +inf), as in chaos.load.histogram.
"""

from __future__ import annotations

import math
from collections.abc import Iterable

from hdrh.histogram import HdrHistogram

LOWEST_US = 1
HIGHEST_US = 3_600_000_000   # one hour: a join timeout is seconds
SIGNIFICANT_DIGITS = 3


def _empty() -> HdrHistogram:
    return HdrHistogram(LOWEST_US, HIGHEST_US, SIGNIFICANT_DIGITS)


class JoinHdr:
    """Timed joins (an HdrHistogram of microseconds) and failed ones (a count)."""
    __slots__ = ("hist", "failed")

    def __init__(self) -> None:
        self.hist = _empty()
        self.failed = 0

    def record(self, value_s: float) -> None:
        if value_s == math.inf:
            self.failed += 1
            return
        if not value_s >= 0:
            raise ValueError(f"a join time is >= 0 s, got {value_s!r}")
        self.hist.record_value(min(max(round(value_s * 1e6), LOWEST_US), HIGHEST_US))

    @property
    def count(self) -> int:
        return self.hist.get_total_count()

    @property
    def total(self) -> int:
        return self.count + self.failed

    def merge(self, other: JoinHdr) -> JoinHdr:
        if other.count:
            self.hist.add(other.hist)
        self.failed += other.failed
        return self

    @classmethod
    def merged(cls, parts: Iterable[JoinHdr]) -> JoinHdr:
        out = cls()
        for p in parts:
            out.merge(p)
        return out

    def quantile(self, q: float) -> float | None:
        """The q-quantile in seconds by nearest rank over every join, failed ones as +inf;
        None when nothing was recorded."""
        if not 0 < q <= 1:
            raise ValueError(f"a quantile is in (0, 1], got {q!r}")
        total = self.total
        if total == 0:
            return None
        rank = max(1, math.ceil(round(q * total, 9)))
        if rank > self.count:
            return math.inf
        # the library's percentile by rank over the timed joins alone
        return self.hist.get_value_at_percentile(100.0 * rank / self.count) / 1e6

    def summary(self) -> dict:
        return {"count": self.count, "failed": self.failed,
                "p50_s": self.quantile(0.5), "p95_s": self.quantile(0.95),
                "p99_s": self.quantile(0.99),
                "max_s": self.hist.get_max_value() / 1e6 if self.count else None}

    def values_s(self) -> list[tuple[float, int]]:
        """(value in seconds, how many joins) of every recorded bucket, then (inf, failed)."""
        out = [(it.value_iterated_to / 1e6, it.count_added_in_this_iter_step)
               for it in self.hist.get_recorded_iterator()]
        return out + ([(math.inf, self.failed)] if self.failed else [])

    # -- the wire ---------------------------------------------------------------------------
    def encode(self) -> dict:
        """{"hdr": HdrHistogram's compressed base64 text (None: no timed join), "failed": n}."""
        return {"hdr": self.hist.encode().decode("ascii") if self.count else None,
                "failed": self.failed}

    @classmethod
    def decode(cls, d: dict) -> JoinHdr:
        out = cls()
        if d.get("hdr"):
            out.hist = HdrHistogram.decode(d["hdr"].encode("ascii"))
        out.failed = int(d.get("failed", 0))
        return out
