"""From recorded listener histories to timed SLI samples (pure functions, no I/O).

Times are seconds since the run's t0 (a wall-clock ns timestamp). A join is stamped at
its request; a frame at its capture time, so that a loss is placed when it was spoken.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from .probes.record import ListenerRecord
from .slo import DEFAULTS, Series

RETAIN_WITHIN_S = 30.0
PLAYOUT_DEADLINE_S = 0.4     # the mouth_to_ear SLO (G.114): later is as good as lost
ECHO_RESOLVE_DB = DEFAULTS["echo"].threshold  # an echo window must resolve the SLO to count


def _rel(ns: int | np.ndarray, t0_ns: int):
    return (ns - t0_ns) / 1e9


def join_time(records: Sequence[ListenerRecord], t0_ns: int) -> Series:
    """One sample per join: seconds to the first frame, +inf for a failed join."""
    return Series.of("join_time", [
        (_rel(r.started_ns, t0_ns), r.join_s if r.join_s is not None else math.inf)
        for r in records if r.started_ns])


def _capture_times(produced: Sequence[tuple[int, int]]) -> tuple[np.ndarray, np.ndarray]:
    arr = np.asarray(produced, dtype=np.int64).reshape(-1, 2)
    return arr[:, 0], arr[:, 1]


def audio_delivered(records: Sequence[ListenerRecord], produced: Sequence[tuple[int, int]],
                    t0_ns: int, deadline_s: float = 0.4) -> Series:
    """Per listener and produced frame (from its first frame on): 1 if it arrived, in order,
    within the playout deadline of its capture time, else 0."""
    seqs, capture = _capture_times(produced)
    if not len(seqs):
        return Series.of("audio_delivered", [])
    t_parts, v_parts = [], []
    for r in records:
        if not r.seqs:
            continue
        got = np.asarray(r.seqs, dtype=np.int64)
        on_time = got[np.asarray(r.latency_ns, dtype=np.int64) <= deadline_s * 1e9]
        window = seqs >= got[0]
        t_parts.append(_rel(capture[window], t0_ns))
        v_parts.append(np.isin(seqs[window], on_time).astype(float))
    if not t_parts:
        return Series.of("audio_delivered", [])
    t, v = np.concatenate(t_parts), np.concatenate(v_parts)
    order = np.argsort(t, kind="stable")
    return Series("audio_delivered", t[order], v[order])


def mouth_to_ear(records: Sequence[ListenerRecord], produced: Sequence[tuple[int, int]],
                 t0_ns: int) -> Series:
    seqs, capture = _capture_times(produced)
    lookup = dict(zip(seqs.tolist(), capture.tolist()))
    t, v = [], []
    for r in records:
        for seq, lat in zip(r.seqs, r.latency_ns):
            c = lookup.get(seq)
            if c is not None:
                t.append(_rel(c, t0_ns))
                v.append(lat / 1e9)
    t_arr, v_arr = np.asarray(t, dtype=float), np.asarray(v, dtype=float)
    order = np.argsort(t_arr, kind="stable")
    return Series("mouth_to_ear", t_arr[order], v_arr[order])


def audience_retained(records: Sequence[ListenerRecord], produced: Sequence[tuple[int, int]],
                      t0_ns: int, onset_s: float, recovered_by_s: float,
                      within_s: float = RETAIN_WITHIN_S) -> Series:
    """Of the listeners hearing audio before onset_s, the share that hear audio again within
    within_s after recovered_by_s (the fault's end; for a run with no fault, both are the
    point from which the audience is followed). One sample, stamped at recovered_by_s."""
    seqs, capture = _capture_times(produced)
    lookup = dict(zip(seqs.tolist(), _rel(capture, t0_ns).tolist()))
    before = after = 0
    for r in records:
        heard = [lookup[s] for s in r.seqs if s in lookup]
        if not any(t < onset_s for t in heard):
            continue
        before += 1
        if any(recovered_by_s <= t <= recovered_by_s + within_s for t in heard):
            after += 1
    if before == 0:
        return Series.of("audience_retained", [])
    return Series.of("audience_retained", [(recovered_by_s, after / before)])


def _bins(t0_s: float, span_s: float, step_s: float) -> np.ndarray:
    return t0_s + np.arange(0.0, max(span_s, 0.0), step_s)


def _overlap(intervals, lo: float, hi: float) -> float:
    return sum(max(0.0, min(hi, iv.start_s + iv.duration_s) - max(lo, iv.start_s)) for iv in intervals)


def freeze_share(intervals, t0_s: float, listening_s: float, step_s: float = 1.0) -> list[tuple[float, float]]:
    """A thick listener's freezes in time: per step of its listening, the share of it spent
    in playout gaps over 200 ms (stamped at the step's start; the mean over a phase is the
    phase's freeze share; a step with a freeze is stamped where its first freeze starts, so
    that a breach is never placed before the gap that caused it)."""
    end = t0_s + listening_s
    out = []
    for lo in _bins(t0_s, listening_s, step_s):
        hi = min(lo + step_s, end)
        if hi <= lo:
            continue
        share = _overlap(intervals, lo, hi) / (hi - lo)
        starts = [iv.start_s for iv in intervals if iv.start_s < hi and iv.start_s + iv.duration_s > lo]
        out.append((float(max(lo, min(starts))) if share > 0 and starts else float(lo), share))
    return out


def dead_air(intervals, t0_s: float, listening_s: float, step_s: float = 1.0) -> list[tuple[float, float]]:
    """A thick listener's dead air in time: per step of its listening, the length of the
    longest dead-air run that touches it (0 if none): the max over a phase is the longest
    run heard in it, placed where it happened: at the step's start, or at the run's own start
    when it begins inside the step)."""
    out = []
    for lo in _bins(t0_s, listening_s, step_s):
        hi = lo + step_s
        touching = [iv for iv in intervals if iv.start_s < hi and iv.start_s + iv.duration_s > lo]
        longest = max(touching, key=lambda iv: iv.duration_s, default=None)
        out.append((float(max(lo, longest.start_s)) if longest else float(lo),
                    longest.duration_s if longest else 0.0))
    return out
