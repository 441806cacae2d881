"""A speaker's clock, whatever protocol it publishes through: frames on an absolute
real-rate schedule, and echo changes that take effect at a frame boundary.

    echoes = EchoSwitch()
    async with aclosing(paced(stop, FRAME_MS, echoes)) as frames:
        async for seq, capture_ns in frames:      # one 20 ms frame after the other
            ... produce frame seq, playing echoes.state

A frame is due at ``t0 + seq x frame_ms`` whether or not the last one could be sent, so
a slow send or a reconnect costs frames, never the schedule.
"""

from __future__ import annotations

import asyncio
import dataclasses
import time
from collections.abc import AsyncIterator
from typing import Any

from chaos.audio.testsignal import FRAME_SAMPLES, SAMPLE_RATE
from chaos.audio.voice import HISTORY_FRAMES, MAX_ECHO_S, EchoState


class EchoSwitch:
    """The echo a speaker plays (``state``) and its next change, which takes effect at
    the start of a frame; every change is logged in ``log`` as (t_ns, seq, state)."""

    def __init__(self) -> None:
        self.state: EchoState | None = None
        self.log: list[tuple[int, int, EchoState | None]] = []
        self.running = False                  # frames are being produced
        self._next: tuple[EchoState | None, asyncio.Future] | None = None

    def change(self, state: EchoState | None, next_seq: int) -> asyncio.Future:
        """From the next frame on (``next_seq``, at once when no frame is being produced).
        Returns a future, done with the state once a frame carries it. Call from the
        event loop."""
        done = asyncio.get_running_loop().create_future()
        if self._next is not None and not self._next[1].done():
            self._next[1].cancel()            # superseded before any frame carried it
        self._next = (state, done)
        if not self.running:
            self.at_frame(next_seq, time.time_ns())
        return done

    def at_frame(self, seq: int, t_ns: int) -> None:
        """At a frame boundary: the pending change takes effect from frame ``seq``."""
        if self._next is None:
            return
        state, done = self._next
        self._next = None
        if state is not None:
            state = dataclasses.replace(state, seq=seq)
        if state != self.state:
            self.state = state
            self.log.append((t_ns, seq, state))
        if not done.done():
            done.set_result(state)


class EchoPlaying:
    """What a speaker shows of its ``echoes`` (an EchoSwitch)."""

    echoes: EchoSwitch

    @property
    def echo(self) -> EchoState | None:
        """The echo being played."""
        return self.echoes.state

    @property
    def echo_log(self) -> list[tuple[int, int, EchoState | None]]:
        """(t_ns, seq, state) of every change of the echo."""
        return self.echoes.log


def echo_state(mode: str, delay_s: float, gain: float, copy: Any = None) -> EchoState:
    """An echo to play, its delay rounded to a sample; ValueError on a delay or gain
    outside what the echo SLI can measure."""
    n = int(round(delay_s * SAMPLE_RATE))
    if not 0 < n <= (HISTORY_FRAMES - 2) * FRAME_SAMPLES:
        raise ValueError(f"echo delay {delay_s:g} s: use more than 0 and at most {MAX_ECHO_S:g} s")
    if not 0 <= gain <= 1:
        raise ValueError(f"echo gain {gain:g}: use 0 to 1 (amplitude)")
    return EchoState(mode, n / SAMPLE_RATE, float(gain), copy=copy)


async def paced(stop: asyncio.Event, frame_ms: float,
                echoes: EchoSwitch) -> AsyncIterator[tuple[int, int]]:
    """(seq, capture_ns) of every frame, each at its due time, until ``stop``; a pending
    echo change is applied at the boundary of the frame it yields. Close it (``aclosing``)
    so that a change asked for after the last frame applies as of then."""
    t0 = time.monotonic()
    seq = 0
    echoes.running = True
    try:
        while not stop.is_set():
            await asyncio.sleep(max(0.0, t0 + seq * frame_ms / 1000 - time.monotonic()))
            capture_ns = time.time_ns()
            echoes.at_frame(seq, capture_ns)
            yield seq, capture_ns
            seq += 1
    finally:
        echoes.running = False
        echoes.at_frame(seq, time.time_ns())   # nothing more is produced: as of now
