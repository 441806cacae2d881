"""The origin's mixer: a lone speaker is forwarded untouched, several are mixed."""

from __future__ import annotations

import asyncio

import numpy as np

from space import wire
from space.mixer import Mixer
from space.opus import Decoder, Encoder
from space.wire import FRAME_SAMPLES, SAMPLE_RATE

N_FRAMES = 50


def tone(hz: float, amplitude: float = 6000.0) -> np.ndarray:
    t = np.arange(N_FRAMES * FRAME_SAMPLES) / SAMPLE_RATE
    return (amplitude * np.sin(2 * np.pi * hz * t)).astype(np.int16)


def packets(pcm: np.ndarray) -> list[bytes]:
    enc = Encoder()
    return [enc.encode(pcm[i * FRAME_SAMPLES:(i + 1) * FRAME_SAMPLES]) for i in range(N_FRAMES)]


def published(speaker: str, seq: int, payload: bytes) -> wire.Frame:
    return wire.decode(wire.single("room", speaker, seq, 1_000_000 * seq, payload))


def best_correlation(x: np.ndarray, y: np.ndarray, max_lag: int = 2000) -> float:
    """Highest normalised correlation of y with x delayed by 0..max_lag samples (codec delay)."""
    x, y = x.astype(float), y.astype(float)
    best = -1.0
    for lag in range(0, max_lag, 8):
        a, b = x[:len(x) - lag], y[lag:lag + len(x) - lag]
        n = min(len(a), len(b))
        c = np.dot(a[:n], b[:n]) / (np.linalg.norm(a[:n]) * np.linalg.norm(b[:n]) + 1e-9)
        best = max(best, c)
    return best


def test_single_speaker_forwarded_unchanged():
    out: list[bytes] = []
    payloads = packets(tone(440))

    async def scenario():
        mixer = Mixer("room", out.append, first_seq=100)
        for seq, p in enumerate(payloads):
            mixer.push(published("alice", seq, p))
        mixer.close()

    asyncio.run(scenario())
    frames = [wire.decode(b) for b in out]
    assert len(frames) == N_FRAMES  # a lone speaker never waits for the slot timeout
    assert [f.seq for f in frames] == list(range(101, 101 + N_FRAMES))
    assert [f.payload for f in frames] == payloads  # byte-identical: no transcoding
    assert [f.contributors for f in frames] == [
        (wire.Contribution("alice", seq, 1_000_000 * seq),) for seq in range(N_FRAMES)]


def test_two_speakers_mixed():
    a, b = tone(440), tone(1250)
    out: list[bytes] = []

    async def scenario():
        mixer = Mixer("room", out.append)
        for seq, (pa, pb) in enumerate(zip(packets(a), packets(b))):
            mixer.push(published("alice", seq, pa))
            mixer.push(published("bob", seq, pb))
        mixer.close()

    asyncio.run(scenario())
    frames = [wire.decode(m) for m in out]
    # Before bob is heard, alice's first frame is alone; from then on every slot has both.
    mixed = [f for f in frames if len(f.contributors) == 2]
    assert len(mixed) >= N_FRAMES - 2
    first = mixed[0]
    assert {c.speaker for c in first.contributors} == {"alice", "bob"}
    assert all(c.capture_ns == 1_000_000 * c.seq for c in first.contributors)
    assert all(n.seq == p.seq + 1 for p, n in zip(frames, frames[1:]))

    dec = Decoder()
    heard = np.concatenate([dec.decode(f.payload) for f in mixed])
    skip = (N_FRAMES - len(mixed)) * FRAME_SAMPLES  # the input frames that were not mixed
    a, b = a[skip:], b[skip:]
    assert best_correlation((a.astype(int) + b).clip(-32768, 32767), heard) > 0.8
    # each voice is in the mix: a 440 Hz and a 1250 Hz tone are orthogonal, so alone
    # each explains about half of the sum
    assert best_correlation(a, heard) > 0.5
    assert best_correlation(b, heard) > 0.5


def test_quiet_speaker_delays_slot_at_most_the_timeout():
    out: list[bytes] = []
    p = packets(tone(440))

    async def scenario():
        mixer = Mixer("room", out.append)
        for seq in range(2):  # both speakers active, their slots in step
            mixer.push(published("alice", seq, p[seq]))
            mixer.push(published("bob", seq, p[seq]))
        mixer.flush()
        n = len(out)
        mixer.push(published("alice", 2, p[2]))  # bob stays quiet this time
        assert len(out) == n  # waits for bob...
        await asyncio.sleep(0.05)
        assert len(out) == n + 1  # ...but only for the slot timeout
        assert [c.speaker for c in wire.decode(out[-1]).contributors] == ["alice"]
        mixer.remove("bob")
        mixer.push(published("alice", 3, p[3]))
        assert len(out) == n + 2  # bob left: alice's frames go out at once again
        mixer.close()

    asyncio.run(scenario())
