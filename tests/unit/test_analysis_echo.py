"""Echo analysis on real Opus round trips of the speaker's test signal."""

import math

import numpy as np
import pytest

from chaos.audio.analysis.echo import measure_echo
from chaos.audio.analysis.reference import reference
from space.opus import Decoder, Encoder
from space.wire import FRAME_SAMPLES

MS = 48  # samples per ms
FRAMES = 300  # 6 s sent; the listener's window is the last 5 s
WINDOW_FROM = 50
REF = reference(0, FRAMES).astype(np.float64)


def opus_round_trip(x: np.ndarray) -> np.ndarray:
    pcm = np.clip(np.round(x), -32768, 32767).astype(np.int16)
    enc, dec = Encoder(), Decoder()
    return np.concatenate([dec.decode(enc.encode(pcm[i:i + FRAME_SAMPLES]))
                           for i in range(0, len(pcm), FRAME_SAMPLES)])


def with_echo(x: np.ndarray, db: float, lag_ms: float) -> np.ndarray:
    """The mix a faulty room would send: the signal plus a copy lag_ms later at db."""
    lag = round(lag_ms * MS)
    y = x.copy()
    y[lag:] += 10 ** (db / 20) * x[:-lag]
    return y


def heard(x: np.ndarray) -> np.ndarray:
    """What a thick listener that joined at frame 50 decodes: 5 s, int16."""
    return opus_round_trip(x)[WINDOW_FROM * FRAME_SAMPLES:]


@pytest.mark.parametrize("lag_ms", [60, 250, 700])
@pytest.mark.parametrize("db", [-6.0, -12.0, -20.0])
def test_echo_found_at_its_lag_and_strength(db, lag_ms):
    r = measure_echo(heard(with_echo(REF, db, lag_ms)), REF)
    assert r.measured and r.detected
    assert abs(r.lag_ms - lag_ms) <= 20.0
    assert abs(r.strength_db - db) <= 2.0
    assert r.at_most_db == r.strength_db
    # The listener's window starts 1 s into the reference; libopus adds 312 samples.
    assert r.direct_lag_ms == pytest.approx(-1000.0 + 312 / MS, abs=0.1)


def test_echo_at_the_slo_threshold_is_resolved():
    r = measure_echo(heard(with_echo(REF, -25.0, 250)), REF)
    assert r.detected and abs(r.lag_ms - 250) <= 20 and abs(r.strength_db + 25) <= 2.0


def test_clean_signal_has_no_echo():
    r = measure_echo(heard(REF), REF)
    assert r.measured and not r.detected
    assert r.strength_db < r.floor_db <= -28.0   # 5 s after Opus resolves about -30 dB
    assert r.floor_db >= -35.0                    # never below the absolute floor
    assert r.noise_db < -40.0
    assert r.at_most_db == r.floor_db < -25.0     # so the SLI passes, with a bound
    assert 0.1 < r.direct_gain < 1.0              # Opus at 32 kbit/s keeps ~0.26 of noise


def test_float_pcm_gives_the_same_answer_as_int16():
    y = heard(with_echo(REF, -12.0, 250))
    a = measure_echo(y, REF)
    b = measure_echo(y / 32768.0, REF / 32768.0)
    assert b.detected and b.lag_ms == a.lag_ms
    assert b.strength_db == pytest.approx(a.strength_db, abs=1e-6)


def test_delayed_direct_path_is_aligned_first():
    # 300 ms of network delay before the listener hears anything, then an echo 250 ms later.
    x = with_echo(REF, -12.0, 250)
    delayed = np.concatenate((np.zeros(300 * MS), x))[:len(x)]
    r = measure_echo(opus_round_trip(delayed), REF)
    assert r.direct_lag_ms == pytest.approx(300 + 312 / MS, abs=0.1)
    assert r.detected and abs(r.lag_ms - 250) <= 20 and abs(r.strength_db + 12) <= 2


def test_a_copy_louder_than_the_direct_path_is_an_echo_above_zero_db():
    # A relay doubling the stream with gain: the first arrival is still the direct path.
    x = 0.5 * REF
    x = with_echo(x, 6.0, 100)
    r = measure_echo(heard(x), REF)
    assert r.detected and abs(r.lag_ms - 100) <= 20 and abs(r.strength_db - 6.0) <= 2.0


def test_unrelated_audio_is_inconclusive_not_echo_free():
    other = reference(0, 250, seed=7)  # another speaker's signal
    r = measure_echo(opus_round_trip(other), REF)
    assert not r.measured and not r.detected and math.isnan(r.at_most_db)


def test_silence_is_inconclusive():
    r = measure_echo(np.zeros(5 * 48_000, dtype=np.int16), REF)
    assert not r.measured and not r.detected


def test_bad_lag_window_is_refused():
    with pytest.raises(ValueError):
        measure_echo(REF, REF, min_lag_ms=500, max_lag_ms=100)
