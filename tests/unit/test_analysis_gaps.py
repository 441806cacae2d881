"""Freezes from the frame timeline and silences from decoded audio, through real Opus."""

import math

import numpy as np
import pytest

from chaos.audio.analysis.gaps import Interval, freezes, heard_slots, silences
from chaos.audio.analysis.reference import reference
from chaos.audio.analysis.sequence import identify_frame
from space.opus import Decoder, Encoder
from space.wire import FRAME_SAMPLES

FRAMES = 150  # 3 s


def encode_all(pcm: np.ndarray) -> list[bytes]:
    enc = Encoder()
    return [enc.encode(pcm[i:i + FRAME_SAMPLES]) for i in range(0, len(pcm), FRAME_SAMPLES)]


# -- freezes -----------------------------------------------------------------------------

def test_dropped_frames_are_a_freeze_at_their_slot():
    seqs = [s for s in range(1000, 1000 + FRAMES) if not 1100 <= s < 1115 and not 1040 <= s < 1046]
    r = freezes(heard_slots(seqs, first_seq=1000, last_seq=1000 + FRAMES - 1))
    assert r.intervals == (Interval(2.0, 0.3),)   # 15 frames from slot 100; 6 frames are no freeze
    assert r.share == pytest.approx(15 / FRAMES)
    assert (r.listening_s, r.missing_slots) == (3.0, 21)


@pytest.mark.parametrize("missing, frozen", [(10, False), (11, True)])
def test_a_freeze_is_over_200_ms(missing, frozen):
    heard = np.ones(100, dtype=bool)
    heard[20:20 + missing] = False
    assert bool(freezes(heard).intervals) is frozen


def test_frames_lost_at_either_end_count_when_the_range_is_given():
    r = freezes(heard_slots(range(20, 80), first_seq=0, last_seq=99))
    assert r.intervals == (Interval(0.0, 0.4), Interval(1.6, 0.4))
    assert r.share == pytest.approx(0.8 / 2.0)


def test_late_frames_miss_their_deadline():
    # A stall: frames 50..70 arrive in a burst 1 s late. Played with a 400 ms deadline.
    seqs = list(range(FRAMES))
    latency = [1.0 if 50 <= s <= 70 else 0.08 for s in seqs]
    r = freezes(heard_slots(seqs, latency_s=latency, deadline_s=0.4), t0_s=10.0)
    assert r.intervals == (Interval(11.0, 0.42),)
    assert freezes(heard_slots(seqs, latency_s=latency, deadline_s=1.5)).intervals == ()


def test_reordering_and_duplicates_are_not_gaps():
    seqs = list(range(FRAMES))
    rng = np.random.default_rng(3)
    for i in range(0, FRAMES - 4, 5):
        seqs[i:i + 4] = rng.permutation(seqs[i:i + 4]).tolist()
    r = freezes(heard_slots(seqs + seqs[10:20]))
    assert r.intervals == () and r.missing_slots == 0 and r.share == 0.0


def test_freeze_located_from_the_audio_itself():
    # Packets 60..74 (300 ms) never reach the decoder; the listener works out which frame
    # each decoded packet carried from the audio, not from any header.
    packets = encode_all(reference(0, FRAMES))
    dec = Decoder()
    found, guess = [], 0
    for seq, pkt in enumerate(packets):
        if 60 <= seq < 75:
            continue
        m = identify_frame(dec.decode(pkt), guess, span=20)
        assert m is not None
        found.append(m.seq)
        guess = m.seq + 1
    r = freezes(heard_slots(found, first_seq=0, last_seq=FRAMES - 1))
    assert r.intervals == (Interval(1.2, 0.3),)


def test_heard_slots_needs_a_range_when_nothing_arrived():
    with pytest.raises(ValueError):
        heard_slots([])
    assert freezes(heard_slots([], first_seq=0, last_seq=49)).intervals == (Interval(0.0, 1.0),)


# -- silences ----------------------------------------------------------------------------

def decoded(pcm: np.ndarray) -> np.ndarray:
    dec = Decoder()
    return np.concatenate([dec.decode(p) for p in encode_all(pcm)])


REF = reference(0, FRAMES)


@pytest.mark.parametrize("delay_samples", [0, 312])
@pytest.mark.parametrize("start, count", [(80, 60), (20, 10), (100, 51)])
def test_dead_air_is_located_within_a_frame(start, count, delay_samples):
    sent = REF.copy()
    sent[start * FRAME_SAMPLES:(start + count) * FRAME_SAMPLES] = 0  # e.g. a mixer drops the input
    r = silences(decoded(sent), REF, delay_samples=delay_samples)
    assert len(r.intervals) == 1
    (got,) = r.intervals
    assert abs(got.start_s - start * 0.02) <= 0.02 + 1e-9
    assert abs(got.end_s - (start + count) * 0.02) <= 0.02 + 1e-9
    assert r.longest_s == pytest.approx(got.duration_s)
    assert r.talking_s == 3.0


def test_a_clean_stream_has_no_dead_air():
    r = silences(decoded(REF), REF)
    assert r.intervals == () and r.longest_s == 0.0 and r.dead_s == 0.0


def test_a_speaker_pause_is_not_dead_air():
    sent = REF.copy()
    sent[50 * FRAME_SAMPLES:100 * FRAME_SAMPLES] = 0
    r = silences(decoded(sent), sent)  # the reference pauses too
    assert r.intervals == () and r.talking_s == pytest.approx(2.0)


def test_a_quiet_but_audible_stream_is_not_dead_air():
    r = silences(decoded((REF * 10 ** (-20 / 20)).astype(np.int16)), REF)
    assert r.intervals == () and r.longest_s == 0.0


def test_listener_that_stopped_early_heard_nothing_after():
    r = silences(decoded(REF)[:100 * FRAME_SAMPLES], REF, delay_samples=312)
    assert r.intervals[-1].end_s == pytest.approx(3.0)
    assert r.intervals[-1].start_s == pytest.approx(2.0, abs=0.02)


def test_float_and_int16_mix():
    sent = REF.copy()
    sent[30 * FRAME_SAMPLES:90 * FRAME_SAMPLES] = 0
    r = silences(decoded(sent) / 32768.0, REF, delay_samples=312)
    assert r.intervals == (Interval(0.6, 1.2),)
    assert not math.isnan(r.dead_s)
