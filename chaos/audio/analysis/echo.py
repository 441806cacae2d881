"""Echo: a delayed copy (30-1000 ms) of the speaker's signal in what a listener hears.

Why cross-correlation against the known test signal: the speaker sends white noise, whose
autocorrelation is a single spike, so every copy of it in the received audio shows up as
one sharp peak at its delay, and the ratio of two peaks is the ratio of the two copies'
amplitudes. Speech would give false peaks at every pitch period.

Why a coherence weighting: Opus keeps the waveform only where it has the bits (at 32 kbit/s
roughly below 12 kHz) and fills the rest with noise of the right energy. That noise carries
no correlation, only variance; weighting each frequency by its measured coherence with the
reference (after aligning on the direct path) drops it and lowers the correlation noise
floor by about 3 dB, without assuming a bitrate. Both copies pass through the same weighting,
so their ratio is unbiased.

Why the overlap normalisation: with finite windows a copy at a longer lag overlaps the
reference over fewer samples; dividing each lag by the reference energy it overlaps turns
the correlation into a gain estimate, so a 700 ms echo in 5 s of audio is not read ~1.3 dB
low.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from chaos.audio.analysis._signal import as_float, fast_len

SAMPLE_RATE = 48_000
_MAD_TO_SIGMA = 1.4826  # sigma of a normal variable from the median of its absolute value


@dataclass(frozen=True)
class EchoResult:
    """What the echo analysis found.

    ``strength_db`` and ``lag_ms`` describe the strongest copy 30-1000 ms after the direct
    path, whether or not it clears the floor; below the floor it is correlation noise and
    only says the echo, if any, is weaker. Use ``at_most_db`` for the SLI.
    """

    measured: bool          # the direct path was found; False: inconclusive, not "no echo"
    detected: bool          # a copy stronger than floor_db was found
    strength_db: float      # strongest copy relative to the direct path (nan if not measured)
    lag_ms: float           # its delay after the direct path (nan if not measured)
    floor_db: float         # detection floor used: max(absolute floor, noise_factor x noise)
    noise_db: float         # measured correlation noise (1 sigma) relative to the direct path
    direct_lag_ms: float    # received[n] ~ gain * reference[n - lag]: signed, codec delay included
    direct_gain: float      # amplitude of the direct path relative to the reference

    @property
    def at_most_db(self) -> float:
        """An upper bound on the echo: its strength if detected, else the floor (nan if not
        measured). A floor above the SLO threshold means the window could not tell."""
        return self.strength_db if self.detected else self.floor_db


def measure_echo(received: np.ndarray, reference: np.ndarray, *,
                 sample_rate: int = SAMPLE_RATE,
                 min_lag_ms: float = 30.0, max_lag_ms: float = 1000.0,
                 abs_floor_db: float = -35.0, noise_factor: float = 6.0,
                 min_direct_snr_db: float = 20.0, min_overlap: float = 0.5,
                 smooth_hz: float = 200.0) -> EchoResult:
    """Find the strongest delayed copy of ``reference`` in ``received`` (mono PCM, int16 or float).

    The direct path is the strongest correlation peak at any lag (so the two arrays need not
    be aligned: a codec or network delay is measured, not assumed), unless a weaker copy
    clears the floor 30-1000 ms before it: the earliest-arriving copy is the direct one, and
    then the echo is louder than the direct path (strength_db > 0).

    The floor is ``noise_factor`` times the correlation noise (a robust sigma over the echo
    window; for Gaussian noise 6 sigma is about one false alarm in 10^4 windows) and never below
    ``abs_floor_db``. ``min_overlap`` is the shortest overlap, as a share of the shorter
    array, at which a lag is considered. Costs a few FFTs of len(received) + len(reference).
    """
    if not 0 < min_lag_ms < max_lag_ms:
        raise ValueError(f"need 0 < min_lag_ms < max_lag_ms, got {min_lag_ms}, {max_lag_ms}")
    y = as_float(received, "received")
    r = as_float(reference, "reference")
    ny, nr = len(y), len(r)
    if ny == 0 or nr == 0:
        return _unmeasured(math.nan, math.nan)
    y -= y.mean()
    r -= r.mean()

    n = fast_len(ny + nr - 1)
    Y = np.fft.rfft(y, n)
    R = np.fft.rfft(r, n)
    S = Y * np.conj(R)
    lags = np.arange(-(nr - 1), ny)

    # Reference energy overlapping the received window at each lag: received[m + k] * ref[m]
    # for 0 <= m < nr and 0 <= m + k < ny.
    cs = np.concatenate(([0.0], np.cumsum(r * r)))
    lo = np.clip(-lags, 0, nr)
    hi = np.clip(ny - lags, 0, nr)
    energy = cs[hi] - cs[lo]
    valid = ((hi - lo) >= min_overlap * min(ny, nr)) & (energy > 0)
    if not valid.any():
        return _unmeasured(math.nan, math.nan)
    safe = np.where(valid, energy, 1.0)

    # Pass 1: plain correlation, to find the direct path and its true gain.
    c = _linear(np.fft.irfft(S, n), nr, ny)
    score = np.where(valid, np.abs(c) / np.sqrt(safe), 0.0)
    d = int(np.argmax(score))
    direct_gain = float(abs(c[d]) / safe[d])

    # Pass 2: coherence-weighted correlation, aligned on the direct path.
    w = _coherence(S, Y, R, int(lags[d]) % n, n, smooth_hz * n / sample_rate)
    g = np.where(valid, _linear(np.fft.irfft(S * w, n), nr, ny) / safe, 0.0)

    lag_lo = round(min_lag_ms * sample_rate / 1000)
    lag_hi = round(max_lag_ms * sample_rate / 1000)
    found = _after(g, valid, d, lag_lo, lag_hi, abs_floor_db, noise_factor)
    if found is None:
        return _unmeasured(_ms(lags[d], sample_rate), direct_gain)
    before = slice(max(0, d - lag_hi), max(0, d - lag_lo + 1))
    floor = found[3]
    if before.stop > before.start:
        a = np.where(valid[before], np.abs(g[before]), 0.0)
        if a.size and a.max() > 0 and 20 * math.log10(a.max() / abs(g[d])) > floor:
            # A weaker copy arrived first: that one is the direct path.
            d2 = before.start + int(np.argmax(a))
            found2 = _after(g, valid, d2, lag_lo, lag_hi, abs_floor_db, noise_factor)
            if found2 is not None:
                d, found = d2, found2
                direct_gain = float(abs(c[d]) / safe[d])
    k, strength, noise_db, floor = found
    if -noise_db < min_direct_snr_db:
        return _unmeasured(_ms(lags[d], sample_rate), direct_gain)
    return EchoResult(measured=True, detected=strength > floor, strength_db=strength,
                      lag_ms=_ms(k - d, sample_rate), floor_db=floor, noise_db=noise_db,
                      direct_lag_ms=_ms(lags[d], sample_rate), direct_gain=direct_gain)


def _after(g: np.ndarray, valid: np.ndarray, d: int, lag_lo: int, lag_hi: int,
           abs_floor_db: float, noise_factor: float) -> tuple[int, float, float, float] | None:
    """Strongest peak lag_lo..lag_hi samples after index d: (index, strength dB, noise dB, floor dB)."""
    win = slice(d + lag_lo, min(len(g), d + lag_hi + 1))
    if win.stop - win.start < 2 or not valid[win].any() or g[d] == 0:
        return None
    a = np.abs(g[win])[valid[win]]
    idx = np.flatnonzero(valid[win]) + win.start
    ref = abs(g[d])
    sigma = _MAD_TO_SIGMA * float(np.median(a))
    noise_db = 20 * math.log10(max(sigma, 1e-300) / ref)
    floor = max(abs_floor_db, noise_db + 20 * math.log10(noise_factor))
    j = int(np.argmax(a))
    return int(idx[j]), 20 * math.log10(max(float(a[j]), 1e-300) / ref), noise_db, floor


def _coherence(S: np.ndarray, Y: np.ndarray, R: np.ndarray, lag: int, n: int,
               smooth_bins: float) -> np.ndarray:
    """Magnitude coherence per frequency, from spectra smoothed over ``smooth_bins`` bins.

    The cross-spectrum is first rotated by the direct lag so that its coherent part is real
    and positive; smoothing then averages it and cancels the echo's ripple (period
    1/lag <= 33 Hz, far narrower than the ~200 Hz smoothing).
    """
    f = np.arange(len(S))
    aligned = (S * np.exp(2j * np.pi * f * lag / n)).real
    k = max(1, int(smooth_bins))
    sxy = _moving_mean(aligned, k)
    syy = _moving_mean(np.abs(Y) ** 2, k)
    srr = _moving_mean(np.abs(R) ** 2, k)
    den = np.sqrt(syy * srr)
    return np.clip(np.divide(sxy, den, out=np.zeros_like(sxy), where=den > 0), 0.0, 1.0)


def _moving_mean(v: np.ndarray, k: int) -> np.ndarray:
    cs = np.concatenate(([0.0], np.cumsum(v)))
    i = np.arange(len(v))
    lo = np.clip(i - k // 2, 0, len(v))
    hi = np.clip(i + k // 2 + 1, 0, len(v))
    return (cs[hi] - cs[lo]) / (hi - lo)


def _linear(circ: np.ndarray, nr: int, ny: int) -> np.ndarray:
    """Circular correlation of size n >= ny + nr - 1 as lags -(nr-1) .. ny-1."""
    return np.concatenate((circ[len(circ) - (nr - 1):], circ[:ny])) if nr > 1 else circ[:ny].copy()


def _ms(samples: int | np.integer, sample_rate: int) -> float:
    return float(samples) * 1000.0 / sample_rate


def _unmeasured(direct_lag_ms: float, direct_gain: float) -> EchoResult:
    nan = math.nan
    return EchoResult(measured=False, detected=False, strength_db=nan, lag_ms=nan, floor_db=nan,
                      noise_db=nan, direct_lag_ms=direct_lag_ms, direct_gain=direct_gain)
