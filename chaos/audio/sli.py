"""From what the listeners aggregated to timed SLI samples (pure functions, no I/O).

Times are seconds since the run's t0 (a wall-clock ns timestamp). A join is stamped at
its request; frames by the second of their capture time (at its middle), so that a loss
is placed when it was spoken. Frame SLIs are weighted samples (``Series.weighted``): one
per second and group, or per histogram bucket and second, never one per frame.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from chaos.audio.reception import NS, Produced, SecondBins
from chaos.audio.record import ListenerRecord
from chaos.core.slo import DEFAULTS, Series

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


def _expected(bins: SecondBins, produced: Produced) -> np.ndarray:
    """Frames the group's listeners should have heard, per capture second: every frame
    produced from each listener's first frame on."""
    n, first = produced.per_second(bins.epoch_ns)
    out = np.zeros(len(n), dtype=np.int64)
    if not len(n) or not len(bins.starts):
        return out
    seqs, capture = produced.arrays()
    starts = np.frombuffer(bins.starts, dtype=np.int64)
    at = np.clip(np.searchsorted(seqs, starts), 0, len(seqs) - 1)
    sec = np.maximum((capture[at] - bins.epoch_ns) // NS, 0)
    began = np.bincount(sec, minlength=len(n))[:len(n)]
    before = np.concatenate(([0], np.cumsum(began)[:-1]))          # started in an earlier second
    out += n * before
    partial = first[sec] + n[sec] - starts                          # the rest of its first second
    np.add.at(out, sec, np.clip(partial, 0, None))
    return out


def audio_delivered(groups: Sequence[SecondBins], produced: Produced,
                    upto_s: float | None = None, since_s: float = 0.0) -> Series:
    """Per capture second: the share of the frames produced, for every listener from its
    first frame on, that arrived in order within the playout deadline, weighted by those
    frames (a window's mean is the share over all its frames). ``upto_s``: only seconds
    that ended before it (a live view); ``since_s``: none before it."""
    t, v, w = [], [], []
    produced = Produced.of(produced)
    for g in groups:
        exp = _expected(g, produced)
        m = len(exp)        # a second nobody heard counts: every frame of it was lost
        if upto_s is not None:
            m = min(m, max(0, int(upto_s)))
        on = np.zeros(m)
        got = np.frombuffer(g.on_time, dtype=np.uint32)[:m]
        on[:len(got)] = got
        e = exp[:m].astype(float)
        ok = e > 0
        ok[:max(0, int(since_s))] = False
        t.append(np.arange(m)[ok] + 0.5)
        v.append(np.minimum(on[ok] / e[ok], 1.0))
        w.append(e[ok])
    if not t:
        return Series.of("audio_delivered", [])
    return Series.weighted("audio_delivered", np.concatenate(t), np.concatenate(v), np.concatenate(w))


def mouth_to_ear(groups: Sequence[SecondBins], upto_s: float | None = None,
                 since_s: float = 0.0) -> Series:
    """Speaker capture -> listener receive of every frame received in order, from the
    groups' per-second histograms: one weighted sample per bucket and second."""
    t, v, w = [], [], []
    for g in groups:
        m = g.seconds if upto_s is None else min(g.seconds, max(0, int(upto_s)))
        for sec in range(max(0, int(since_s)), m):
            vals, counts = g.latency(sec)
            if len(vals):
                t.append(np.full(len(vals), sec + 0.5))
                v.append(vals)
                w.append(counts)
    if not t:
        return Series.of("mouth_to_ear", [])
    return Series.weighted("mouth_to_ear", np.concatenate(t), np.concatenate(v), np.concatenate(w))


def audience_retained(records: Sequence[ListenerRecord], onset_s: float, recovered_by_s: float,
                      within_s: float = RETAIN_WITHIN_S) -> Series:
    """Of the listeners hearing audio before onset_s, the share that hear audio again within
    within_s after recovered_by_s (the fault's end; for a run with no fault, both are the
    point from which the audience is followed). One sample, stamped at recovered_by_s.
    Resolved to the second of capture time (the listeners' per-second counters)."""
    before = after = 0
    for r in records:
        if not r.rx.heard_between(0, onset_s):
            continue
        before += 1
        if r.rx.heard_between(recovered_by_s, recovered_by_s + within_s):
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
