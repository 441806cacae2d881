"""Identifying test-signal frames from decoded Opus audio."""

import numpy as np
import pytest

from chaos.audio.analysis.reference import reference
from chaos.audio.analysis.sequence import identify_frame
from chaos.audio import testsignal
from space.opus import Decoder, Encoder

N = 60


@pytest.fixture(scope="module")
def packets() -> list[bytes]:
    enc = Encoder()
    return [enc.encode(testsignal.frame(s)) for s in range(N)]


def test_reference_is_the_speakers_signal():
    r = reference(5, 3)
    assert r.dtype == np.int16 and len(r) == 3 * 960
    assert np.array_equal(r[960:1920], testsignal.frame(6))
    assert len(reference(0, 0)) == 0


def test_every_decoded_frame_is_identified(packets):
    dec = Decoder()
    for seq, pkt in enumerate(packets):
        m = identify_frame(dec.decode(pkt), seq + 3)  # a guess off by 3 frames
        assert m is not None and m.seq == seq, seq
        assert abs(m.offset_samples + 312) <= 2   # libopus decodes 6.5 ms late
        assert m.z >= 6.0


def test_reordered_packets_are_seen_in_the_audio(packets):
    order = list(range(10)) + [12, 10, 11] + list(range(13, 20))
    dec = Decoder()
    seen = [identify_frame(dec.decode(packets[s]), s, span=4) for s in order]
    assert [m.seq for m in seen] == order


@pytest.mark.parametrize("pcm", [np.zeros(960, dtype=np.int16),          # silence
                                 testsignal.frame(30, seed=9),            # another speaker
                                 testsignal.frame(500)])                  # outside the span
def test_no_match_is_none(pcm):
    assert identify_frame(pcm, 30, span=8) is None


def test_seed_and_longer_runs():
    pcm = reference(40, 3, seed=4)[100:2500]
    m = identify_frame(pcm, 45, seed=4)
    assert m is not None and (m.seq, m.offset_samples) == (40, 100)
