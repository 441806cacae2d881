"""The speaker's known test signal.

Noise-like, not speech-like: a periodic signal correlates with itself at every period and
gives false echo peaks, white noise correlates only at lag zero. Each 20 ms frame is
seeded by (seed, seq), so any frame can be regenerated from its sequence number by an
analyser on the other side.
"""

from __future__ import annotations

import numpy as np

SAMPLE_RATE = 48_000   # Opus' native rate; every adapter's speaker sends this signal
FRAME_MS = 20
FRAME_SAMPLES = SAMPLE_RATE * FRAME_MS // 1000

AMPLITUDE = 0.1  # of full scale: about -23 dBFS RMS, loud enough, far from clipping


def frame(seq: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng((seed, seq))
    x = rng.standard_normal(FRAME_SAMPLES) * (AMPLITUDE * 32767)
    return np.clip(x, -32767, 32767).astype(np.int16)
