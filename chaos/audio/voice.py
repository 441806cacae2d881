"""A speaker's microphone, whatever protocol the speaker publishes through: the known test
signal frame by frame, the signal it said some samples ago, and the ``echo`` fault's hot mic
(the frame plus a delayed, scaled copy). Every audio adapter's speaker plays its echoes
with these."""

from __future__ import annotations

import collections
from dataclasses import dataclass
from typing import Any

import numpy as np

from chaos.audio import testsignal
from chaos.audio.testsignal import FRAME_MS, FRAME_SAMPLES, SAMPLE_RATE

MAX_ECHO_S = 1.0                   # the echo SLI looks 30-1000 ms after the direct path
HISTORY_FRAMES = int(MAX_ECHO_S * 1000) // FRAME_MS + 2  # the signal an echo reaches back to


@dataclass(frozen=True)
class EchoState:
    """An echo being played: ``mode``, ``delay_s`` (a whole number of samples), ``gain``
    (amplitude, of the delayed copy), ``seq``: the first frame it is in. ``copy`` is the
    second publisher of mode "double"."""
    mode: str
    delay_s: float
    gain: float
    seq: int = -1
    copy: Any = None               # a speaker (the second publisher)

    @property
    def delay_samples(self) -> int:
        return int(round(self.delay_s * SAMPLE_RATE))

    def describe(self) -> dict:
        return {"mode": self.mode, "delay_s": self.delay_s, "gain": self.gain, "seq": self.seq,
                **({"copy": self.copy.id} if self.copy is not None else {})}


class Voice:
    """What the speaker's microphone picks up, one 20 ms frame at a time: the test signal
    of each seq, and the signal it said ``n`` samples ago (for an echo). Keeps the last
    HISTORY_FRAMES frames, as float32; seqs must come in order, one after the other."""

    def __init__(self, seed: int = 0) -> None:
        self.seed = seed
        self._frames: collections.deque[np.ndarray] = collections.deque(maxlen=HISTORY_FRAMES)
        self._zeros = np.zeros(FRAME_SAMPLES, dtype=np.float32)

    def frame(self, seq: int) -> np.ndarray:
        """The test signal of frame ``seq`` (int16), remembered for the echoes to come."""
        pcm = testsignal.frame(seq, self.seed)
        self._frames.append(pcm.astype(np.float32))
        return pcm

    def delayed(self, n: int) -> np.ndarray:
        """The signal ``n`` samples (>= 0, <= HISTORY_FRAMES - 1 frames) before the frame
        just produced, float32; silence before the first frame."""
        size = FRAME_SAMPLES
        q, r = divmod(n, size)           # sample i of the frame is sample i - r of frame -q
        if r == 0:
            return self._back(q).copy()
        return np.concatenate((self._back(q + 1)[size - r:], self._back(q)[:size - r]))

    def _back(self, k: int) -> np.ndarray:
        return self._frames[-1 - k] if k < len(self._frames) else self._zeros


def clip16(x: np.ndarray) -> np.ndarray:
    """float samples -> int16, rounded and clipped (what a saturating ADC gives)."""
    return np.clip(np.rint(x), -32768, 32767).astype(np.int16)


def hot_mic(pcm: np.ndarray, delayed: np.ndarray, gain: float) -> np.ndarray:
    """A hot microphone: the frame plus gain x the delayed signal, int16."""
    return clip16(pcm.astype(np.float32) + np.float32(gain) * delayed)
