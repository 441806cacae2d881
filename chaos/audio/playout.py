"""A thick listener's frames judged as a player plays them, whatever protocol brought them
(pure: no I/O, no clock).

Each adapter's analysis puts what it received on one slot timeline (slot = the speaker's
seq), with a receive time and a latency per frame; these pieces judge it alike:

    check(playout_deadline_s, cache, seed)                 # the analysis' own arguments
    last = last_slot(seqs, on_time, first, produced, left_ns, playout_deadline_s)
    heard = Heard.of(seqs, latency_s, on_time, first, last, playout_deadline_s)
    pcm, undecodable = play(heard, seqs, payloads, first, last, decoder)
    judged = against_signal(pcm, heard.slots, first, last, ...)    # our speaker's signal

A frame that never came, or came after its playout deadline, is not played: its slot is
silence. The first arrival of a seq wins; a later copy is not played again.
"""

from __future__ import annotations

from dataclasses import dataclass

import av
import numpy as np

from chaos.audio.analysis import emodel
from chaos.audio.analysis.gaps import heard_slots, silences
from chaos.audio.hearing import (
    CODEC_DELAY_MS, CODEC_DELAY_SAMPLES, ECHO_LEAD_FRAMES, FRAME_S, EchoWindow, RunCache,
    _decisive, _windows,
)
from chaos.audio.testsignal import FRAME_SAMPLES, SAMPLE_RATE


def check(playout_deadline_s: float, cache: RunCache | None, seed: int) -> None:
    if not playout_deadline_s > 0:
        raise ValueError(f"playout_deadline_s must be > 0, got {playout_deadline_s}")
    if cache is not None and cache.seed != seed:
        raise ValueError(f"the cache holds the signal of seed {cache.seed}, not {seed}")


def last_slot(seqs: np.ndarray, on_time: np.ndarray, first: int, produced: np.ndarray,
              left_ns: int | None, playout_deadline_s: float) -> int:
    """The last slot judged: the speaker's last frame (``produced``: (seq, capture_ns)
    rows, in seq order), or, for a listener that left, the last frame due before it left
    or the last it got on time, whichever is later."""
    pseqs, pcap = produced[:, 0], produced[:, 1]
    last = int(pseqs[-1])
    if left_ns is not None:
        due = pseqs[pcap + int(round(playout_deadline_s * 1e9)) <= left_ns]
        last = max(int(due.max()) if len(due) else first - 1,
                   int(seqs[on_time].max()) if on_time.any() else first - 1)
        last = min(last, int(pseqs[-1]))
    return last


@dataclass(frozen=True)
class Heard:
    """Which slots of first..last were heard in time: ``slots`` (bool per slot), ``idx``
    (the first arrival of each seq in range, in arrival order), and the counts."""

    slots: np.ndarray
    idx: np.ndarray
    delivered: int
    late: int

    @classmethod
    def of(cls, seqs: np.ndarray, latency_s: np.ndarray, on_time: np.ndarray, first: int,
           last: int, playout_deadline_s: float) -> Heard:
        _, firsts = np.unique(seqs, return_index=True)
        firsts.sort()
        idx = firsts[(seqs[firsts] >= first) & (seqs[firsts] <= last)]
        slots = heard_slots(seqs[idx], latency_s=latency_s[idx], deadline_s=playout_deadline_s,
                            first_seq=first, last_seq=last)
        return cls(slots, idx, int(slots.sum()), int((~on_time[idx]).sum()))


def play(heard: Heard, seqs: np.ndarray, on_time: np.ndarray, payloads: list[bytes],
         first: int, last: int, decoder) -> tuple[np.ndarray, int]:
    """The audio a player plays (int16, one 20 ms slot per seq of first..last): the frames
    on time, decoded by ``decoder`` in seq order, each on its slot; and how many frames the
    decoder refused (played as silence)."""
    pcm = np.zeros((last - first + 1) * FRAME_SAMPLES, dtype=np.int16)
    played = heard.idx[on_time[heard.idx]]
    played = played[np.argsort(seqs[played], kind="stable")]
    undecodable = 0
    for i in played:
        try:
            out = decoder.decode(payloads[i])
        except (av.FFmpegError, ValueError):
            undecodable += 1
            continue
        at = (int(seqs[i]) - first) * FRAME_SAMPLES
        out = out[:FRAME_SAMPLES]
        pcm[at:at + len(out)] = out
    return pcm, undecodable


def against_signal(pcm: np.ndarray, heard: Heard, first: int, last: int, first_produced: int,
                   t0_s: float, mouth_to_ear_p95_s: float | None, playout_deadline_s: float,
                   echo_window_s: float, echo_resolve_db: float, cache: RunCache) -> dict:
    """What needs our speaker's known signal, as ThickReport fields: echo per window of
    about ``echo_window_s`` on fixed seq boundaries (against the signal from 1 s earlier,
    never before ``first_produced``), dead air, delivery, loss and MOS."""
    ref_first = max(first_produced, first - ECHO_LEAD_FRAMES)
    ref_all = cache.signal(ref_first, last - ref_first + 1)
    windows = []
    for w0, w1 in _windows(first, last, max(1, round(echo_window_s / FRAME_S))):
        r0 = max(ref_first, first + w0 - ECHO_LEAD_FRAMES)
        res = cache.echo(pcm[w0 * FRAME_SAMPLES:w1 * FRAME_SAMPLES], r0, first + w1 - r0)
        windows.append((EchoWindow(round(t0_s + w0 * FRAME_S, 9), round((w1 - w0) * FRAME_S, 9),
                                   res), first + w0 - r0))
    measured = [(w, lead) for w, lead in windows if w.result.measured]
    echo, conclusive = _decisive(windows, echo_resolve_db)
    if measured:
        offset_ms = float(np.median([w.result.direct_lag_ms + lead * FRAME_S * 1000
                                     for w, lead in measured]))
        audio_offset = round(offset_ms - CODEC_DELAY_MS, 3)
        delay_samples = int(round(offset_ms * SAMPLE_RATE / 1000))
    else:
        audio_offset, delay_samples = None, CODEC_DELAY_SAMPLES
    silence = silences(pcm, ref_all[(first - ref_first) * FRAME_SAMPLES:],
                       delay_samples=delay_samples, t0_s=t0_s)
    n = last - first + 1
    loss = 1.0 - heard.delivered / n
    burst = emodel.burst_ratio(~heard.slots)
    mos = (None if mouth_to_ear_p95_s is None
           else emodel.mos(1000 * min(mouth_to_ear_p95_s, playout_deadline_s), loss,
                           burst_ratio=burst))
    return dict(audio_delivered=heard.delivered / n, silence=silence, echo=echo,
                echo_conclusive=conclusive, echo_windows=tuple(w for w, _ in windows),
                audio_offset_ms=audio_offset, loss=loss, loss_burst_ratio=burst, mos=mos)
