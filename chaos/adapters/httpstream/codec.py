"""Opus through libopus (PyAV): 20 ms mono frames in, one packet each out; and back.

The encoder's OpusHead (with its pre-skip, 312 samples for libopus) is what the speaker
puts on the first page, so that any player decodes the stream as sent.
"""

from __future__ import annotations

import av
import numpy as np

BITRATE = 32_000
SAMPLE_RATE = 48_000     # the test signal's (chaos.audio.testsignal)
FRAME_MS = 20
FRAME_SAMPLES = SAMPLE_RATE * FRAME_MS // 1000


class Encoder:
    def __init__(self, bitrate: int = BITRATE) -> None:
        self._ctx = av.CodecContext.create("libopus", "w")
        self._ctx.sample_rate = SAMPLE_RATE
        self._ctx.layout = "mono"
        self._ctx.format = "s16"
        self._ctx.bit_rate = bitrate
        self._ctx.open()
        self._pts = 0

    @property
    def head(self) -> bytes:
        """The OpusHead packet for this encoder's stream (from libopus, pre-skip included)."""
        return bytes(self._ctx.extradata)

    def encode(self, pcm: np.ndarray) -> bytes:
        if pcm.shape != (FRAME_SAMPLES,):
            raise ValueError(f"an Opus frame here is {FRAME_SAMPLES} samples, got {pcm.shape}")
        frame = av.AudioFrame.from_ndarray(
            np.ascontiguousarray(pcm, dtype=np.int16).reshape(1, -1), format="s16", layout="mono")
        frame.sample_rate = SAMPLE_RATE
        frame.pts = self._pts
        self._pts += FRAME_SAMPLES
        return b"".join(bytes(p) for p in self._ctx.encode(frame))


class Decoder:
    """Opus packets to int16 mono samples (48 kHz)."""

    def __init__(self) -> None:
        self._ctx = av.CodecContext.create("libopus", "r")
        self._ctx.sample_rate = SAMPLE_RATE
        self._ctx.layout = "mono"

    def decode(self, packet: bytes) -> np.ndarray:
        frames = self._ctx.decode(av.Packet(packet))
        if not frames:
            return np.zeros(0, dtype=np.int16)
        pcm = np.concatenate([f.to_ndarray().reshape(-1) for f in frames])
        if pcm.dtype != np.int16:  # float output on some builds
            pcm = np.clip(pcm * 32767.0, -32768, 32767).astype(np.int16)
        return pcm
