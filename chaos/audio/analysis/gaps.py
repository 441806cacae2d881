"""Freezes and silences: the two ways a listener hears nothing.

Both work on the 20 ms frame-slot timeline of one speaker's stream: slot i is the frame
with sequence number first_seq + i, and starts i * 20 ms after the first slot.

* A **freeze** is a playout gap: slots with no frame to play, because the frame never came
  or came after its playout deadline. It is judged from sequence numbers (from headers or
  recovered from the audio with ``sequence.identify_frame``) and per-frame latency.
* A **silence** is dead air in audio that did play: the speaker is talking (the reference
  frame is loud) but what the listener decoded is far quieter, e.g. a mixer dropping an
  input, or a decoder concealing a long loss until it fades out. It is judged from the
  decoded PCM laid on the same slot timeline. A freeze filled with concealment or zeros is
  therefore also a silence once the concealment has faded: the SLIs overlap on purpose,
  the freeze SLI says why, the silence SLI says what the listener heard.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np

from chaos.audio.analysis._signal import full_scale, runs

FRAME_S = 0.020
FRAME_SAMPLES = 960
_EDGE_FRAMES = 2
_EPS = 1e-12  # -120 dBFS: float guard, quieter than 1 LSB of int16 (about -100 dBFS)


class Interval(NamedTuple):
    """A stretch of listening time, in seconds from the first slot (plus any t0_s given)."""

    start_s: float
    duration_s: float

    @property
    def end_s(self) -> float:
        return self.start_s + self.duration_s


@dataclass(frozen=True)
class FreezeReport:
    intervals: tuple[Interval, ...]   # playout gaps longer than min_gap_s, in order
    share: float                      # frozen time / listening time (nan if no listening)
    listening_s: float                # slots in the timeline x 20 ms
    missing_slots: int                # every empty slot, including gaps too short to count


@dataclass(frozen=True)
class SilenceReport:
    intervals: tuple[Interval, ...]   # dead-air runs of at least min_run_s, in order
    longest_s: float                  # longest dead-air run of any length (0.0 if none)
    talking_s: float                  # time the speaker was talking (the SLI's denominator)
    dead_s: float                     # all dead-air time, runs of any length


def heard_slots(seqs: Iterable[int], *, latency_s: Iterable[float] | None = None,
                deadline_s: float | None = None, first_seq: int | None = None,
                last_seq: int | None = None) -> np.ndarray:
    """Which slots first_seq..last_seq had a frame to play (bool per slot).

    ``seqs`` are the speaker sequence numbers received, in any order, duplicates allowed
    (reordering does not make a gap; lateness does). With ``latency_s`` (receive time minus
    capture time, per entry of ``seqs``) and ``deadline_s``, a frame later than the deadline
    counts as missing, as it would for a player with a fixed playout delay. Pass
    ``first_seq``/``last_seq`` as the frames the speaker produced while the listener was
    listening, so that frames lost at either end count; by default the received range.
    Sequence numbers are taken as not wrapping (2^32 frames are 2.7 years).
    """
    s = np.fromiter(seqs, dtype=np.int64)
    if latency_s is not None:
        lat = np.fromiter(latency_s, dtype=np.float64)
        if lat.shape != s.shape:
            raise ValueError(f"latency_s has {lat.size} entries for {s.size} seqs")
        if deadline_s is not None:
            s = s[lat <= deadline_s]
    elif deadline_s is not None:
        raise ValueError("deadline_s needs latency_s")
    if first_seq is None or last_seq is None:
        if s.size == 0:
            raise ValueError("no frame received: pass first_seq and last_seq")
        first_seq = int(s.min()) if first_seq is None else first_seq
        last_seq = int(s.max()) if last_seq is None else last_seq
    if last_seq < first_seq:
        raise ValueError(f"last_seq {last_seq} < first_seq {first_seq}")
    heard = np.zeros(last_seq - first_seq + 1, dtype=bool)
    s = s[(s >= first_seq) & (s <= last_seq)]
    heard[s - first_seq] = True
    return heard


def freezes(heard: np.ndarray, *, min_gap_s: float = 0.2, frame_s: float = FRAME_S,
            t0_s: float = 0.0) -> FreezeReport:
    """Playout gaps longer than ``min_gap_s`` (the freeze SLI: "over 200 ms") and their share of
    listening time, from a per-slot heard mask (see ``heard_slots``).

    With 20 ms slots a gap of 10 empty slots (200 ms) does not count, 11 (220 ms) does.
    """
    h = np.asarray(heard, dtype=bool)
    gaps = runs(~h)
    # "Longer than" on whole slots; the tolerance keeps 10 x 0.02 from passing 0.2.
    long = [(i, n) for i, n in gaps if n * frame_s > min_gap_s + 1e-9]
    intervals = tuple(_interval(i, n, frame_s, t0_s) for i, n in long)
    frozen = sum(n for _, n in long)
    return FreezeReport(intervals, frozen / h.size if h.size else math.nan,
                        round(h.size * frame_s, 9), int((~h).sum()))


def frame_levels_dbfs(pcm: np.ndarray, frame_samples: int = FRAME_SAMPLES) -> np.ndarray:
    """RMS level per whole frame in dBFS (int16 or float PCM, see ``full_scale``); a
    trailing partial frame is dropped. Digital silence reads about -120."""
    x = full_scale(pcm, "pcm")
    n = len(x) // frame_samples
    p = (x[:n * frame_samples].reshape(n, frame_samples) ** 2).mean(axis=1)
    return 10 * np.log10(p + _EPS)


def silences(received: np.ndarray, reference: np.ndarray, *, below_db: float = 30.0,
             edge_db: float = 15.0, talking_dbfs: float = -50.0, min_run_s: float = 0.1,
             delay_samples: int = 0, frame_samples: int = FRAME_SAMPLES, frame_s: float = FRAME_S,
             t0_s: float = 0.0) -> SilenceReport:
    """Dead air: frames where the speaker is talking but the listener hears a level more than
    ``below_db`` under the reference's, grouped into runs.

    ``received`` is the decoded PCM laid on the slot timeline (slot i at samples
    i*960.., empty slots filled with whatever the player played: concealment or zeros) and
    ``reference`` what the speaker sent for the same slots (``reference.reference``); int16
    or float (full scale 1.0), mixed freely. A reference frame under ``talking_dbfs`` (the
    test signal is about -20 dBFS) is the speaker pausing: not dead air, and it ends a run.
    Up to two frames more than ``edge_db`` under that touch a dead run join it (a decoder
    fades out over a frame or two). ``delay_samples`` is the codec/path delay to undo (e.g.
    312 for libopus, or ``measure_echo(...).direct_lag_ms`` in samples); runs are located
    within one frame without it, exactly with it. Runs of at least ``min_run_s`` are
    listed; ``longest_s`` covers runs of any length, for the "no run over 1 s" SLO.
    """
    y = full_scale(received, "received")
    if delay_samples > 0:
        y = y[delay_samples:]
    elif delay_samples < 0:
        y = np.concatenate((np.zeros(-delay_samples), y))
    ref_db = frame_levels_dbfs(reference, frame_samples)
    want = len(ref_db) * frame_samples
    if len(y) < want:  # the listener stopped early: the rest was not heard
        y = np.concatenate((y, np.zeros(want - len(y))))
    rec_db = frame_levels_dbfs(y[:want], frame_samples)
    talking = ref_db >= talking_dbfs
    dead = talking & (rec_db < ref_db - below_db)
    # Hysteresis at the edges: a codec fades in and out over a frame or two (Opus: about
    # -8 dB, then -28 dB, then digital silence after a cut), so a frame well under the
    # reference (edge_db) next to dead air is the edge of the same run. Two frames at most:
    # a long quiet-but-audible stretch is not dead air.
    edge = talking & (rec_db < ref_db - edge_db)
    for _ in range(_EDGE_FRAMES):
        grown = dead.copy()
        grown[1:] |= dead[:-1]
        grown[:-1] |= dead[1:]
        dead = (grown & edge) | dead
    all_runs = runs(dead)
    listed = tuple(_interval(i, n, frame_s, t0_s) for i, n in all_runs
                   if n * frame_s >= min_run_s - 1e-9)
    longest = max((n for _, n in all_runs), default=0)
    return SilenceReport(listed, round(longest * frame_s, 9), round(int(talking.sum()) * frame_s, 9),
                         round(int(dead.sum()) * frame_s, 9))


def _interval(first: int, count: int, frame_s: float, t0_s: float) -> Interval:
    # Rounded to the nanosecond: slot arithmetic should print as 1.64, not 1.6400000000000001.
    return Interval(round(t0_s + first * frame_s, 9), round(count * frame_s, 9))
