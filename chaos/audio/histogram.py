"""A mergeable latency histogram in seconds: HdrHistogram (the ``hdrhistogram`` library)
with failed events beside it.

Values are recorded in whole microseconds from 1 us to 1 hour with 3 significant digits, so a
quantile is within 0.1 % of the true order statistic above 1 ms and within 1 us below it (a
microsecond is the unit: 17.3 us is recorded as 17 us); quantiles are clamped to the exact min
and max, kept beside the buckets with the exact sum. Its wire form (``to_dict``) carries the
buckets in HdrHistogram's standard compressed base64 encoding, which any HdrHistogram
implementation reads; it is what the load generator's workers and the scale-out shards
send, and merging is exact (bucket counts add).

Failed joins are never dropped: ``record_failed()`` (or ``record(math.inf)``) counts a bad
event that every quantile ranks above any timed value. With 10 % failed joins, p95 is
+inf, which is what the join_time SLO must see.
"""

from __future__ import annotations

import math
from collections.abc import Iterable

from hdrh.histogram import HdrHistogram

LOWEST_US = 1
HIGHEST_US = 3_600_000_000    # one hour: longer values are recorded as one hour
SIGNIFICANT_DIGITS = 3
FORMAT = "hdrhistogram-v2"    # the library's encode(): V2 compressed, base64


def _hdr() -> HdrHistogram:
    return HdrHistogram(LOWEST_US, HIGHEST_US, SIGNIFICANT_DIGITS)


def _us(value_s: float) -> int:
    return min(max(round(value_s * 1e6), LOWEST_US), HIGHEST_US)


class Histogram:
    __slots__ = ("hdr", "failed", "min_s", "max_s", "sum_s")

    def __init__(self) -> None:
        self.hdr = _hdr()
        self.failed = 0         # bad events: ranked as +inf
        self.min_s = math.inf
        self.max_s = -math.inf
        self.sum_s = 0.0

    # -- recording ----------------------------------------------------------------------
    def record(self, value_s: float) -> None:
        """One timed event; +inf counts as a failed one. Negative values and NaN are bugs."""
        if value_s == math.inf:
            self.failed += 1
            return
        if not value_s >= 0:
            raise ValueError(f"a latency is >= 0 s, got {value_s!r}")
        self.hdr.record_value(_us(value_s))
        self.sum_s += value_s
        if value_s < self.min_s:
            self.min_s = value_s
        if value_s > self.max_s:
            self.max_s = value_s

    def record_failed(self, n: int = 1) -> None:
        self.failed += n

    def merge(self, other: Histogram) -> Histogram:
        """Add other's events into this one; returns self."""
        if other.count:
            self.hdr.add(other.hdr)
        self.failed += other.failed
        self.sum_s += other.sum_s
        self.min_s = min(self.min_s, other.min_s)
        self.max_s = max(self.max_s, other.max_s)
        return self

    @classmethod
    def merged(cls, hs: Iterable[Histogram]) -> Histogram:
        out = cls()
        for h in hs:
            out.merge(h)
        return out

    # -- reading --------------------------------------------------------------------------
    @property
    def count(self) -> int:
        """Timed events."""
        return self.hdr.get_total_count()

    @property
    def total(self) -> int:
        """Every event, timed or failed."""
        return self.count + self.failed

    @property
    def counts(self) -> dict[int, int]:
        """Recorded buckets: the bucket's highest value in microseconds -> events."""
        return {it.value_iterated_to: it.count_added_in_this_iter_step
                for it in self.hdr.get_recorded_iterator()}

    def values_s(self) -> list[tuple[float, int]]:
        """(bucket value in seconds, events) of every recorded bucket, then (inf, failed)."""
        out = [(min(max(us / 1e6, self.min_s), self.max_s), n) for us, n in self.counts.items()]
        return out + ([(math.inf, self.failed)] if self.failed else [])

    @property
    def mean_s(self) -> float | None:
        """Mean of the timed events (failed ones have no time)."""
        return self.sum_s / self.count if self.count else None

    def quantile(self, q: float) -> float | None:
        """The q-quantile (0 < q <= 1) by nearest rank over every event, failed ones
        counted as +inf. None when nothing was recorded."""
        if not 0 < q <= 1:
            raise ValueError(f"a quantile is in (0, 1], got {q!r}")
        count, total = self.count, self.total
        if total == 0:
            return None
        rank = max(1, math.ceil(round(q * total, 9)))
        if rank > count:
            return math.inf
        if rank == count:
            return self.max_s
        value = self.hdr.get_value_at_percentile(100.0 * rank / count) / 1e6
        return min(max(value, self.min_s), self.max_s)

    @property
    def p50_s(self) -> float | None:
        return self.quantile(0.50)

    @property
    def p95_s(self) -> float | None:
        return self.quantile(0.95)

    @property
    def p99_s(self) -> float | None:
        return self.quantile(0.99)

    def summary(self) -> dict:
        """count, failed, min, max, mean and p50/p95/p99 in seconds (None: nothing timed)."""
        return {"count": self.count, "failed": self.failed,
                "min_s": self.min_s if self.count else None,
                "max_s": self.max_s if self.count else None, "mean_s": self.mean_s,
                "p50_s": self.p50_s, "p95_s": self.p95_s, "p99_s": self.p99_s}

    # -- crossing processes -------------------------------------------------------------
    def to_dict(self) -> dict:
        count = self.count
        return {"format": FORMAT, "hdr": self.hdr.encode().decode("ascii") if count else None,
                "count": count, "failed": self.failed, "sum_s": self.sum_s,
                "min_s": self.min_s if count else None, "max_s": self.max_s if count else None}

    @classmethod
    def from_dict(cls, d: dict) -> Histogram:
        if d.get("format") != FORMAT:
            raise ValueError(f"a histogram in format {d.get('format')!r} cannot merge with this "
                             f"one ({FORMAT}: HdrHistogram's compressed base64 encoding)")
        h = cls()
        if d.get("hdr"):
            h.hdr = HdrHistogram.decode(d["hdr"].encode("ascii"))
        if h.count != int(d["count"]):
            raise ValueError(f"histogram counts add up to {h.count}, not {d['count']}")
        h.failed, h.sum_s = int(d["failed"]), float(d["sum_s"])
        if h.count:
            h.min_s, h.max_s = float(d["min_s"]), float(d["max_s"])
        return h

    def __eq__(self, other: object) -> bool:
        """The same events (the sum may differ in its last bits: float addition order)."""
        if not isinstance(other, Histogram):
            return NotImplemented
        return (self.counts == other.counts and self.failed == other.failed
                and self.min_s == other.min_s and self.max_s == other.max_s
                and math.isclose(self.sum_s, other.sum_s, rel_tol=1e-9, abs_tol=1e-12))

    __hash__ = None  # mutable

    def __repr__(self) -> str:
        return (f"Histogram(count={self.count}, failed={self.failed}, "
                f"p50_s={self.p50_s!r}, p95_s={self.p95_s!r})")
