"""Small array helpers shared by the analysers (not part of the public API)."""

from __future__ import annotations

import numpy as np


def as_float(x: np.ndarray | list[float], name: str) -> np.ndarray:
    """A 1-D float64 copy: int16 PCM and float PCM are analysed alike (levels are relative)."""
    a = np.asarray(x)
    if a.ndim != 1:
        raise ValueError(f"{name}: expected mono samples (1-D), got shape {a.shape}")
    if not np.issubdtype(a.dtype, np.number):
        raise ValueError(f"{name}: expected numbers, got {a.dtype}")
    return a.astype(np.float64)


def full_scale(x: np.ndarray | list[float], name: str) -> np.ndarray:
    """1-D float64 with full scale at 1.0: integer PCM is divided by its type's full scale
    (2^15 for int16), float PCM is taken as already in [-1, 1]. Absolute levels (dBFS)
    then mean the same for the decoder's int16 and a float pipeline."""
    a = np.asarray(x)
    f = as_float(a, name)
    if np.issubdtype(a.dtype, np.integer):
        f /= 2.0 ** (8 * a.dtype.itemsize - 1)
    return f


def fast_len(n: int) -> int:
    """The smallest 2^a 3^b 5^c >= n: FFT sizes pocketfft is fast at, without padding to 2^k
    (which can almost double the work for 5 s + 6 s of audio)."""
    best = 1 << max(0, (n - 1).bit_length())
    p5 = 1
    while p5 < best:
        p35 = p5
        while p35 < best:
            m = p35
            while m < n:
                m *= 2
            best = min(best, m)
            p35 *= 3
        p5 *= 5
    return best


def runs(mask: np.ndarray) -> list[tuple[int, int]]:
    """(first index, length) of every run of True in a boolean array, in order."""
    m = np.asarray(mask, dtype=bool)
    if m.size == 0:
        return []
    edges = np.diff(np.concatenate(([0], m.astype(np.int8), [0])))
    starts = np.flatnonzero(edges == 1)
    ends = np.flatnonzero(edges == -1)
    return [(int(s), int(e - s)) for s, e in zip(starts, ends)]
