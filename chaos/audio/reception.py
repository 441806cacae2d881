"""What listeners heard, aggregated as it arrives: memory bounded by the run's seconds,
never by its frames.

* ``Reception``: one listener's hearing: first and last in-order seq, frames received in
  order and on time, out-of-order ones, and frames heard per second of capture time.
* ``SecondBins``: a group of listeners (a home DC, in one process), per second of capture
  time: frames received in order, frames on time (before the playout deadline), and a
  coarse log-linear histogram of mouth-to-ear latency. Mergeable across processes.

Seconds count from the run's epoch (its t0, a wall-clock ns timestamp). Nothing here
knows a wire format: a listener's receive path calls ``heard(seq, capture_ns, recv_ns)``.
"""

from __future__ import annotations

import math
from array import array
from dataclasses import dataclass, field

import numpy as np

SUB_BUCKETS = 16   # per power of two: buckets ~4 % wide, a p95 read within ~2 %
LOWEST_S = 1e-6    # latencies below go to bucket 0


def bucket_of(value_s: float, sub_buckets: int = SUB_BUCKETS) -> int:
    """Log-linear buckets (HDR-style, coarse: the per-second bins keep few numbers): 0
    below LOWEST_S, then ``sub_buckets`` equal buckets per power of two."""
    if value_s < LOWEST_S:
        return 0
    m, e = math.frexp(value_s / LOWEST_S)  # value = m * 2**e * LOWEST_S, 0.5 <= m < 1, e >= 1
    return (e - 1) * sub_buckets + int((m - 0.5) * 2 * sub_buckets) + 1


def value_of(i: int, sub_buckets: int = SUB_BUCKETS) -> float:
    """The middle of bucket i, in seconds."""
    if i == 0:
        return LOWEST_S / 2
    octave, sub = divmod(i - 1, sub_buckets)
    base = LOWEST_S * 2.0 ** octave
    width = base / sub_buckets
    return base + (sub + 0.5) * width
NS = 1_000_000_000


def _grow(a: array, i: int) -> None:
    """Zeros up to index i."""
    n = i + 1 - len(a)
    if n > 0:
        a.frombytes(bytes(a.itemsize * n))


class SecondBins:
    """Per second of capture time since ``epoch_ns``: received, on time, latency buckets.

    Closed seconds' latency buckets are packed into one bytes object each (uint16 bucket,
    uint32 count: 6 bytes a bucket); the seconds being filled use a dict. Seconds before the epoch go to second 0's bin (the first frames of a
    run, captured just before its t0)."""

    def __init__(self, epoch_ns: int, deadline_s: float) -> None:
        self.epoch_ns, self.deadline_s = epoch_ns, deadline_s
        self.deadline_ns = int(round(deadline_s * 1e9))
        self.received = array("I")
        self.on_time = array("I")
        self.starts = array("q")          # first in-order seq of each listener (expected frames)
        self._open: dict[int, dict[int, int]] = {}      # second -> bucket -> count
        self._packed: dict[int, bytes] = {}

    def second_of(self, capture_ns: int) -> int:
        s = (capture_ns - self.epoch_ns) // NS
        return s if s > 0 else 0

    def add(self, second: int, latency_ns: int) -> None:
        """One frame received in order (the hot path)."""
        if second >= len(self.received):
            _grow(self.received, second)
            _grow(self.on_time, second)
            if len(self._open) > 3:
                self._pack(second - 3)
        self.received[second] += 1
        if latency_ns <= self.deadline_ns:
            self.on_time[second] += 1
        b = bucket_of(latency_ns / 1e9 if latency_ns > 0 else 0.0, SUB_BUCKETS)
        d = self._open.get(second)
        if d is None:
            d = self._open[second] = {}
        d[b] = d.get(b, 0) + 1

    def _pack(self, before: int) -> None:
        for s in [s for s in self._open if s < before]:
            self._store(s, self._open.pop(s))

    def _store(self, s: int, d: dict[int, int]) -> None:
        idx = np.fromiter(d.keys(), dtype=np.int64, count=len(d))
        cnt = np.fromiter(d.values(), dtype=np.int64, count=len(d))
        old = self._packed.get(s)
        if old is not None:
            oi, oc = _unpack(old)
            idx, cnt = np.concatenate((oi, idx)), np.concatenate((oc, cnt))
            u, inv = np.unique(idx, return_inverse=True)
            idx, cnt = u, np.bincount(inv, weights=cnt).astype(np.int64)
        self._packed[s] = idx.astype("<u2").tobytes() + cnt.astype("<u4").tobytes()

    def latency(self, second: int) -> tuple[np.ndarray, np.ndarray]:
        """(bucket values in s, counts) of one second."""
        packed = self._packed.get(second)
        idx, cnt = _unpack(packed) if packed else (np.zeros(0, np.int64), np.zeros(0, np.int64))
        d = self._open.get(second)
        if d:
            idx = np.concatenate((idx, np.fromiter(d.keys(), dtype=np.int64, count=len(d))))
            cnt = np.concatenate((cnt, np.fromiter(d.values(), dtype=np.int64, count=len(d))))
        return _values(idx), cnt.astype(float)

    @property
    def seconds(self) -> int:
        return len(self.received)

    # -- crossing processes, merging ------------------------------------------------------
    def take(self, upto: int) -> dict:
        """The seconds < upto not taken yet, as a picklable delta, and forget them here
        (a worker streams its bins and keeps none: its memory stays flat). Latency of
        frames that came after their second was taken (a delay past the deadline) goes
        with the next delta."""
        upto = min(upto, len(self.received))
        base = getattr(self, "_taken", 0)
        self._pack(upto)
        lat = {s: self._packed[s] for s in list(self._packed) if s < upto}
        lo = min(base, upto)
        delta = {"base": lo, "received": self.received[lo:upto].tobytes(),
                 "on_time": self.on_time[lo:upto].tobytes(), "latency": lat,
                 "starts": self.starts.tobytes()}
        for s in lat:
            del self._packed[s]
        self.starts = array("q")
        self._taken = max(base, upto)
        return delta

    def merge_delta(self, d: dict) -> None:
        rec, ont = array("I"), array("I")
        rec.frombytes(d["received"])
        ont.frombytes(d["on_time"])
        base = d["base"]
        if len(rec):
            _grow(self.received, base + len(rec) - 1)
            _grow(self.on_time, base + len(rec) - 1)
        for i, (a, b) in enumerate(zip(rec, ont)):
            self.received[base + i] += a
            self.on_time[base + i] += b
        for s, packed in d["latency"].items():
            idx, cnt = _unpack(packed)
            self._store(s, dict(zip(idx.tolist(), cnt.tolist())))
        st = array("q")
        st.frombytes(d["starts"])
        self.starts.extend(st)

    def merge(self, other: SecondBins) -> SecondBins:
        other._pack(other.seconds + 1)
        self.merge_delta({"base": 0, "received": other.received.tobytes(),
                          "on_time": other.on_time.tobytes(),
                          "latency": dict(other._packed),
                          "starts": other.starts.tobytes()})
        return self

    def nbytes(self) -> int:
        """Roughly what the bins hold (for the bounded-memory test)."""
        return (self.received.itemsize * len(self.received) * 2 + 8 * len(self.starts)
                + sum(len(b) for b in self._packed.values())
                + 100 * sum(len(d) for d in self._open.values()))


def _unpack(packed: bytes) -> tuple[np.ndarray, np.ndarray]:
    n = len(packed) // 6
    return (np.frombuffer(packed, "<u2", n).astype(np.int64),
            np.frombuffer(packed, "<u4", n, offset=2 * n).astype(np.int64))


_VALUES = np.array([value_of(i, SUB_BUCKETS) for i in range(64 * SUB_BUCKETS + 1)])


def _values(idx: np.ndarray) -> np.ndarray:
    """Bucket indices -> the values at their middles, in seconds."""
    return _VALUES[idx]


@dataclass
class Reception:
    """One listener's hearing of the speaker it follows (bounded: a counter per second)."""
    first_seq: int | None = None
    first_capture_ns: int | None = None
    last_seq: int = -1
    frames: int = 0                   # received in order
    on_time: int = 0                  # ... before the playout deadline
    out_of_order: int = 0             # at or below the last in-order seq (late or repeated)
    heard_by_s: array = field(default_factory=lambda: array("H"), repr=False)

    def heard(self, seq: int, capture_ns: int, recv_ns: int, bins: SecondBins) -> bool:
        """One frame of the followed speaker (the hot path). False: out of order."""
        if seq <= self.last_seq:
            self.out_of_order += 1
            return False
        if self.first_seq is None:
            self.first_seq, self.first_capture_ns = seq, capture_ns
            bins.starts.append(seq)
        self.last_seq = seq
        self.frames += 1
        lat = recv_ns - capture_ns
        if lat <= bins.deadline_ns:
            self.on_time += 1
        s = bins.second_of(capture_ns)
        h = self.heard_by_s
        if s >= len(h):
            _grow(h, s)
        if h[s] < 65535:
            h[s] += 1
        bins.add(s, lat)
        return True

    @property
    def missing(self) -> int:
        """Seqs between the first and the last in-order one that never came in order."""
        return 0 if self.first_seq is None else self.last_seq - self.first_seq + 1 - self.frames

    def heard_between(self, lo_s: float, hi_s: float) -> int:
        """Frames heard with capture time in seconds [floor(lo_s), hi_s) since the epoch."""
        lo, hi = max(0, int(lo_s)), min(len(self.heard_by_s), int(np.ceil(hi_s)))
        return sum(self.heard_by_s[lo:hi]) if hi > lo else 0

    def summary(self) -> dict:
        return {"first_seq": self.first_seq, "last_seq": self.last_seq, "frames": self.frames,
                "on_time": self.on_time, "out_of_order": self.out_of_order,
                "missing": self.missing, "heard_by_s": self.heard_by_s.tobytes(),
                "first_capture_ns": self.first_capture_ns}

    @classmethod
    def from_summary(cls, d: dict) -> Reception:
        h = array("H")
        h.frombytes(d["heard_by_s"])
        return cls(d["first_seq"], d["first_capture_ns"], d["last_seq"], d["frames"],
                   d["on_time"], d["out_of_order"], h)


class Produced:
    """A speaker's (seq, capture_ns) of every frame it produced, 16 bytes a frame (a list of
    tuples costs ~120): reads as a sequence of (seq, capture_ns) tuples."""

    def __init__(self) -> None:
        self.seqs = array("q")
        self.capture_ns = array("q")

    @classmethod
    def of(cls, frames) -> Produced:
        """From any sequence of (seq, capture_ns) (a Produced is returned as it is)."""
        if isinstance(frames, Produced):
            return frames
        out = cls()
        for f in frames:
            out.append(f)
        return out

    def append(self, item: tuple[int, int]) -> None:
        self.seqs.append(item[0])
        self.capture_ns.append(item[1])

    def __len__(self) -> int:
        return len(self.seqs)

    def __bool__(self) -> bool:
        return len(self.seqs) > 0

    def __getitem__(self, i):
        if isinstance(i, slice):
            return list(zip(self.seqs[i], self.capture_ns[i]))
        return self.seqs[i], self.capture_ns[i]

    def __iter__(self):
        return zip(self.seqs, self.capture_ns)

    def __eq__(self, other: object) -> bool:
        """Equal to any sequence of the same (seq, capture_ns) pairs."""
        try:
            return list(self) == [tuple(x) for x in other]  # type: ignore[union-attr]
        except TypeError:
            return NotImplemented

    __hash__ = None  # mutable

    def __repr__(self) -> str:
        return f"Produced({len(self)} frames)"

    def arrays(self) -> tuple[np.ndarray, np.ndarray]:
        """(seqs, capture_ns) as int64 arrays (copies)."""
        return (np.frombuffer(self.seqs, dtype=np.int64).copy(),
                np.frombuffer(self.capture_ns, dtype=np.int64).copy())

    def between(self, lo_seq: int, hi_seq: int) -> np.ndarray:
        """An (n, 2) array of the frames with lo_seq <= seq < hi_seq."""
        s = np.frombuffer(self.seqs, dtype=np.int64)
        c = np.frombuffer(self.capture_ns, dtype=np.int64)
        i, j = np.searchsorted(s, [lo_seq, hi_seq])   # seqs are produced in order
        return np.stack((s[i:j], c[i:j]), axis=1).copy()

    def per_second(self, epoch_ns: int) -> tuple[np.ndarray, np.ndarray]:
        """Per second of capture since epoch_ns (before it: second 0): (frames, first seq)."""
        s, c = self.arrays()
        if not len(s):
            return np.zeros(0, np.int64), np.zeros(0, np.int64)
        sec = np.maximum((c - epoch_ns) // NS, 0)
        n = np.bincount(sec)
        first = np.full(len(n), -1, dtype=np.int64)
        rev = np.arange(len(sec))[::-1]
        first[sec[rev]] = s[rev]          # the last write per second wins: its smallest seq
        return n, first
