"""A mergeable latency histogram with log-linear buckets (HDR-style), in seconds.

Every power of two above ``LOWEST_S`` is cut into ``SUB_BUCKETS`` equal buckets, so a
bucket is at most 1/128 of its value wide and a quantile read at the bucket's middle is
within 0.4 % of the true order statistic (clamped to the exact min and max). Counts are
sparse, so a histogram of a few thousand joins is a few hundred numbers, cheap to send
from a worker process and to merge.

Failed joins are never dropped: ``record_failed()`` (or ``record(math.inf)``) counts a bad
event that every quantile ranks above any timed value. With 10 % failed joins, p95 is
+inf, which is what the join_time SLO must see.
"""

from __future__ import annotations

import math
from collections.abc import Iterable

SUB_BUCKETS = 128
LOWEST_S = 1e-6       # values below go to bucket 0 (reported clamped to the exact minimum)


class Histogram:
    __slots__ = ("counts", "count", "failed", "min_s", "max_s", "sum_s")

    def __init__(self) -> None:
        self.counts: dict[int, int] = {}
        self.count = 0          # timed events
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
        i = bucket_of(value_s)
        self.counts[i] = self.counts.get(i, 0) + 1
        self.count += 1
        self.sum_s += value_s
        if value_s < self.min_s:
            self.min_s = value_s
        if value_s > self.max_s:
            self.max_s = value_s

    def record_failed(self, n: int = 1) -> None:
        self.failed += n

    def merge(self, other: Histogram) -> Histogram:
        """Add other's events into this one; returns self."""
        for i, n in other.counts.items():
            self.counts[i] = self.counts.get(i, 0) + n
        self.count += other.count
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
    def total(self) -> int:
        """Every event, timed or failed."""
        return self.count + self.failed

    @property
    def mean_s(self) -> float | None:
        """Mean of the timed events (failed ones have no time)."""
        return self.sum_s / self.count if self.count else None

    def quantile(self, q: float) -> float | None:
        """The q-quantile (0 < q <= 1) by nearest rank over every event, failed ones
        counted as +inf. None when nothing was recorded."""
        if not 0 < q <= 1:
            raise ValueError(f"a quantile is in (0, 1], got {q!r}")
        total = self.total
        if total == 0:
            return None
        rank = max(1, math.ceil(round(q * total, 9)))
        if rank > self.count:
            return math.inf
        if rank == self.count:
            return self.max_s
        seen = 0
        for i in sorted(self.counts):
            seen += self.counts[i]
            if seen >= rank:
                return min(max(value_of(i), self.min_s), self.max_s)
        return self.max_s  # unreachable: the counts add up to count

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
        return {"sub_buckets": SUB_BUCKETS, "lowest_s": LOWEST_S,
                "counts": {str(i): n for i, n in sorted(self.counts.items())},
                "count": self.count, "failed": self.failed, "sum_s": self.sum_s,
                "min_s": self.min_s if self.count else None,
                "max_s": self.max_s if self.count else None}

    @classmethod
    def from_dict(cls, d: dict) -> Histogram:
        if d.get("sub_buckets") != SUB_BUCKETS or d.get("lowest_s") != LOWEST_S:
            raise ValueError(f"a histogram with {d.get('sub_buckets')} sub-buckets from "
                             f"{d.get('lowest_s')} s cannot merge with this one "
                             f"({SUB_BUCKETS} from {LOWEST_S} s)")
        h = cls()
        h.counts = {int(i): int(n) for i, n in d["counts"].items()}
        h.count, h.failed, h.sum_s = int(d["count"]), int(d["failed"]), float(d["sum_s"])
        if h.count != sum(h.counts.values()):
            raise ValueError(f"histogram counts add up to {sum(h.counts.values())}, not {h.count}")
        if h.count:
            h.min_s, h.max_s = float(d["min_s"]), float(d["max_s"])
        return h

    def __eq__(self, other: object) -> bool:
        """The same events (the sum may differ in its last bits: float addition order)."""
        if not isinstance(other, Histogram):
            return NotImplemented
        return (self.counts == other.counts and self.count == other.count
                and self.failed == other.failed and self.min_s == other.min_s
                and self.max_s == other.max_s and math.isclose(self.sum_s, other.sum_s, rel_tol=1e-9))

    __hash__ = None  # mutable

    def __repr__(self) -> str:
        return (f"Histogram(count={self.count}, failed={self.failed}, "
                f"p50_s={self.p50_s!r}, p95_s={self.p95_s!r})")


def bucket_of(value_s: float, sub_buckets: int = SUB_BUCKETS) -> int:
    """0 below LOWEST_S; then sub_buckets linear buckets per power of two (fewer: coarser
    and smaller, as the probes' per-second bins use)."""
    if value_s < LOWEST_S:
        return 0
    m, e = math.frexp(value_s / LOWEST_S)  # value = m * 2**e * LOWEST_S, 0.5 <= m < 1, e >= 1
    return (e - 1) * sub_buckets + int((m - 0.5) * 2 * sub_buckets) + 1


def bounds_of(i: int, sub_buckets: int = SUB_BUCKETS) -> tuple[float, float]:
    """[lower, upper) of bucket i, in seconds."""
    if i == 0:
        return 0.0, LOWEST_S
    octave, sub = divmod(i - 1, sub_buckets)
    base = LOWEST_S * 2.0 ** octave
    width = base / sub_buckets
    return base + sub * width, base + (sub + 1) * width


def value_of(i: int, sub_buckets: int = SUB_BUCKETS) -> float:
    lo, hi = bounds_of(i, sub_buckets)
    return (lo + hi) / 2
