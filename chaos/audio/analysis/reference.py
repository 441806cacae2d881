"""The speaker's test signal as sent, regenerated for a run of sequence numbers.

Analysers compare what a listener hears with what the speaker produced; the speaker's
signal is a pure function of (seed, seq), so the reference needs no recording.
"""

from __future__ import annotations

import numpy as np

from chaos.audio import testsignal


def reference(first_seq: int, count: int, seed: int = 0) -> np.ndarray:
    """int16 PCM of frames first_seq .. first_seq + count - 1, back to back."""
    if count < 0:
        raise ValueError(f"count must be >= 0, got {count}")
    if count == 0:
        return np.zeros(0, dtype=np.int16)
    return np.concatenate([testsignal.frame(s, seed) for s in range(first_seq, first_seq + count)])
