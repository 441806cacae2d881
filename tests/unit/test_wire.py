import pytest
from hypothesis import given, strategies as st

from space import wire

names = st.text(st.characters(codec="utf-8", exclude_categories=("Cs",)), min_size=1, max_size=40).filter(
    lambda s: len(s.encode()) < 256)


@given(space=names, seq=st.integers(0, 2**32 - 1),
       contribs=st.lists(st.tuples(names, st.integers(0, 2**32 - 1), st.integers(0, 2**64 - 1)),
                         min_size=1, max_size=8),
       payload=st.binary(max_size=400))
def test_encode_decode_round_trip(space, seq, contribs, payload):
    frame = wire.Frame(space, seq, tuple(wire.Contribution(*c) for c in contribs), payload)
    assert wire.decode(wire.encode(frame)) == frame


def test_single_speaker_frame_carries_capture_time():
    f = wire.decode(wire.single("s1", "spk", 7, 123_456_789, b"\x01\x02"))
    assert (f.space, f.seq, f.capture_ns, f.payload) == ("s1", 7, 123_456_789, b"\x01\x02")
    assert f.contributors == (wire.Contribution("spk", 7, 123_456_789),)


@pytest.mark.parametrize("data", [b"", b"XX\x01\x01\x00\x01s", wire.single("s", "a", 1, 2, b"")[:12]])
def test_garbage_is_a_wire_error(data):
    with pytest.raises(wire.WireError):
        wire.decode(data)


def test_frame_constants():
    assert (wire.SAMPLE_RATE, wire.FRAME_SAMPLES, wire.FRAMES_PER_S) == (48_000, 960, 50)
