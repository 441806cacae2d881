"""A speaker that publishes the test signal as Opus at real rate, and reconnects.

Every frame is produced on an absolute 20 ms schedule whether or not it can be sent:
a frame produced while the speaker is cut off counts as produced and not delivered.

The ``echo`` fault is played here (``set_echo`` / ``clear_echo``), from a frame boundary:

- ``hot_mic``: the microphone hears the speaker's own playback. What it publishes is its
  signal plus ``gain`` x its own signal ``delay_s`` earlier, mixed sample-accurately in
  the PCM domain before the Opus encoder, clipped to int16.
- ``double``: the speaker is published twice. A second publisher (``copy``: a Speaker
  with its own id and its own connection to an origin, kept by ``hold``) sends, with each
  of this speaker's frames, ``gain`` x the signal ``delay_s`` earlier, same seq and
  capture time; the origin's mixer adds the two. Listeners follow this speaker's id, so
  their accounting stays about it.

Every change takes effect at the start of a frame and is logged in ``echo_log``.
"""

from __future__ import annotations

import asyncio
from contextlib import aclosing

import aiohttp
import numpy as np
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed, InvalidStatus, WebSocketException

from space import wire
from space.opus import Encoder
from chaos.core.retry import RetryPolicy, parse_retry_after

from chaos.audio.pacing import EchoPlaying, EchoSwitch, echo_state, paced
from chaos.audio.rejoin import gone_or_stopped, sleep_or_stop
from chaos.audio.voice import EchoState, Voice, clip16, hot_mic
from chaos.adapters.space.joinapi import Refused, join
from chaos.audio.reception import Produced

ECHO_MODES = ("hot_mic", "double")
class Speaker(EchoPlaying):
    def __init__(self, session: aiohttp.ClientSession, gateways: list[str], space: str,
                 speaker_id: str = "spk-1", retry: RetryPolicy | None = None, seed: int = 0,
                 timeout_s: float = 3.0) -> None:
        self.session, self.gateways, self.space = session, gateways, space
        self.id, self.seed, self.timeout_s = speaker_id, seed, timeout_s
        self.retry = retry or RetryPolicy("exponential_jitter", 0.1, 1.0)
        self.produced = Produced()   # (seq, capture_ns) of every frame, 16 bytes each
        self.sent = 0
        self.origin: str | None = None              # url of the origin it publishes to
        self.connections = 0
        self.errors: list[str] = []
        self._ws = None
        self.connected = asyncio.Event()
        self.voice = Voice(seed)
        self.echoes = EchoSwitch()

    def twin(self, speaker_id: str) -> Speaker:
        """A second publisher of the same signal into the same room (the ``double`` echo)."""
        return Speaker(self.session, self.gateways, self.space, speaker_id=speaker_id,
                       retry=self.retry, seed=self.seed, timeout_s=self.timeout_s)

    async def _connect_once(self) -> None:
        last: Exception | None = None
        for gw in self.gateways:
            try:
                j = await join(self.session, gw, self.space, "speaker", self.timeout_s, self.id)
            except (Refused, aiohttp.ClientError, TimeoutError) as e:
                last = e
                continue
            for url in j.body.get("origins", []):
                try:
                    self._ws = await connect(url, open_timeout=self.timeout_s, max_size=2**16,
                                             ping_interval=None)
                    self.origin = url
                    self.connections += 1
                    self.connected.set()
                    return
                except (OSError, TimeoutError, WebSocketException) as e:
                    last = e
        raise last or RuntimeError("no gateway answered")

    async def _maintain(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            delays = self.retry.delays()
            while not stop.is_set():
                try:
                    await self._connect_once()
                    break
                except Exception as e:  # noqa: BLE001 - every failure is retried
                    self.errors.append(f"{type(e).__name__}: {e}"[:200])
                    hint = _hint(e)
                    delay = next(delays, None)
                    if delay is None:
                        return
                    await sleep_or_stop(stop, max(delay, hint or 0.0) or 0.01)
            if self._ws is not None:
                await gone_or_stopped(self._ws.wait_closed(), stop)
                if stop.is_set():
                    return  # keep the socket for the last frame; close() hangs up
                self._ws = None
                self.connected.clear()

    async def hold(self, stop: asyncio.Event) -> None:
        """Keep a connection to an origin (reconnecting) without producing frames: a second
        publisher, fed by another speaker's ``set_echo(mode="double", copy=self)``."""
        await self._maintain(stop)

    async def run(self, stop: asyncio.Event) -> None:
        maintainer = asyncio.create_task(self._maintain(stop))
        encoder = Encoder()
        copy_encoder: tuple[EchoState, Encoder] | None = None
        try:
            async with aclosing(paced(stop, wire.FRAME_MS, self.echoes)) as frames:
                async for seq, capture_ns in frames:
                    pcm = self.voice.frame(seq)
                    echo = self.echo
                    copy_payload = None
                    if echo is not None:
                        delayed = self.voice.delayed(echo.delay_samples)
                        if echo.mode == "hot_mic":
                            pcm = hot_mic(pcm, delayed, echo.gain)
                        else:
                            if copy_encoder is None or copy_encoder[0] is not echo:
                                copy_encoder = (echo, Encoder())  # a fresh stream per echo
                            copy_payload = copy_encoder[1].encode(
                                clip16(np.float32(echo.gain) * delayed))
                    await self._publish(seq, capture_ns, encoder.encode(pcm))
                    if copy_payload is not None:
                        await echo.copy._publish(seq, capture_ns, copy_payload)
        finally:
            maintainer.cancel()

    async def _publish(self, seq: int, capture_ns: int, payload: bytes) -> None:
        """One frame: counted as produced, sent if connected (a frame produced while cut off
        counts as produced and not delivered)."""
        self.produced.append((seq, capture_ns))
        ws = self._ws
        if ws is not None:
            try:
                await ws.send(wire.single(self.space, self.id, seq, capture_ns, payload))
                self.sent += 1
            except ConnectionClosed:
                pass

    # -- the echo fault ---------------------------------------------------------------
    def set_echo(self, delay_s: float, gain: float, mode: str = "hot_mic",
                 copy: Speaker | None = None) -> asyncio.Future:
        """Play an echo from the next frame on (see the module's docstring). Returns a
        future, done with the EchoState once a frame carries it. Call from the event loop."""
        if mode not in ECHO_MODES:
            raise ValueError(f"echo mode {mode!r}: use one of {', '.join(ECHO_MODES)}")
        state = echo_state(mode, delay_s, gain, copy)
        if (mode == "double") != (copy is not None):
            raise ValueError("mode double needs the second publisher (copy=); hot_mic takes none")
        return self.echoes.change(state, self._next_seq())

    def clear_echo(self) -> asyncio.Future:
        """Stop the echo from the next frame on (at once if the speaker is not running).
        Returns a future done once it is off."""
        return self.echoes.change(None, self._next_seq())

    def _next_seq(self) -> int:
        return self.produced[-1][0] + 1 if self.produced else 0

    async def close(self) -> None:
        """Hang up. Separate from stopping, so that the last frames can drain first."""
        if self._ws is not None:
            await self._ws.close()


def _hint(e: Exception) -> float | None:
    if isinstance(e, Refused):
        return e.retry_after_s
    if isinstance(e, InvalidStatus):
        return parse_retry_after(e.response.headers.get("Retry-After"))
    return None

