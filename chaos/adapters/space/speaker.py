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
import collections
import time
from dataclasses import dataclass

import aiohttp
import numpy as np
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed, InvalidStatus, WebSocketException

from space import wire
from space.opus import Encoder
from ...retry import RetryPolicy, parse_retry_after

from ...probes import testsignal
from .joinapi import Refused, join
from ...probes.reception import Produced

ECHO_MODES = ("hot_mic", "double")
MAX_ECHO_S = 1.0                   # the echo SLI looks 30-1000 ms after the direct path
HISTORY_FRAMES = int(MAX_ECHO_S * 1000) // wire.FRAME_MS + 2  # the signal an echo reaches back to


@dataclass(frozen=True)
class EchoState:
    """An echo being played: ``mode``, ``delay_s`` (a whole number of samples), ``gain``
    (amplitude, of the delayed copy), ``seq``: the first frame it is in. ``copy`` is the
    second publisher of mode "double"."""
    mode: str
    delay_s: float
    gain: float
    seq: int = -1
    copy: Speaker | None = None

    @property
    def delay_samples(self) -> int:
        return int(round(self.delay_s * wire.SAMPLE_RATE))

    def describe(self) -> dict:
        return {"mode": self.mode, "delay_s": self.delay_s, "gain": self.gain, "seq": self.seq,
                **({"copy": self.copy.id} if self.copy is not None else {})}


class Voice:
    """What the speaker's microphone picks up, one 20 ms frame at a time: the test signal
    of each seq, and the signal it said ``n`` samples ago (for an echo). Keeps the last
    HISTORY_FRAMES frames, as float32; seqs must come in order, one after the other."""

    def __init__(self, seed: int = 0) -> None:
        self.seed = seed
        self._frames: collections.deque[np.ndarray] = collections.deque(maxlen=HISTORY_FRAMES)
        self._zeros = np.zeros(wire.FRAME_SAMPLES, dtype=np.float32)

    def frame(self, seq: int) -> np.ndarray:
        """The test signal of frame ``seq`` (int16), remembered for the echoes to come."""
        pcm = testsignal.frame(seq, self.seed)
        self._frames.append(pcm.astype(np.float32))
        return pcm

    def delayed(self, n: int) -> np.ndarray:
        """The signal ``n`` samples (>= 0, <= HISTORY_FRAMES - 1 frames) before the frame
        just produced, float32; silence before the first frame."""
        size = wire.FRAME_SAMPLES
        q, r = divmod(n, size)           # sample i of the frame is sample i - r of frame -q
        if r == 0:
            return self._back(q).copy()
        return np.concatenate((self._back(q + 1)[size - r:], self._back(q)[:size - r]))

    def _back(self, k: int) -> np.ndarray:
        return self._frames[-1 - k] if k < len(self._frames) else self._zeros


def clip16(x: np.ndarray) -> np.ndarray:
    """float samples -> int16, rounded and clipped (what a saturating ADC gives)."""
    return np.clip(np.rint(x), -32768, 32767).astype(np.int16)


def hot_mic(pcm: np.ndarray, delayed: np.ndarray, gain: float) -> np.ndarray:
    """A hot microphone: the frame plus gain x the delayed signal, int16."""
    return clip16(pcm.astype(np.float32) + np.float32(gain) * delayed)


class Speaker:
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
        self.echo: EchoState | None = None          # the echo being played
        self.echo_log: list[tuple[int, int, EchoState | None]] = []  # (t_ns, seq, state) changes
        self._echo_next: tuple[EchoState | None, asyncio.Future] | None = None
        self._running = False

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
                    await _sleep_or_stop(stop, max(delay, hint or 0.0) or 0.01)
            if self._ws is not None:
                ws = self._ws
                waiter = asyncio.ensure_future(ws.wait_closed())
                stopper = asyncio.ensure_future(stop.wait())
                await asyncio.wait({waiter, stopper}, return_when=asyncio.FIRST_COMPLETED)
                waiter.cancel()
                stopper.cancel()
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
        t0 = time.monotonic()
        seq = 0
        self._running = True
        try:
            while not stop.is_set():
                await asyncio.sleep(max(0.0, t0 + seq * wire.FRAME_MS / 1000 - time.monotonic()))
                capture_ns = time.time_ns()
                if self._echo_next is not None:
                    self._switch_echo(seq, capture_ns)
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
                seq += 1
        finally:
            self._running = False
            maintainer.cancel()
            if self._echo_next is not None:  # nothing more is produced: applied as of now
                self._switch_echo(seq, time.time_ns())

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
        n = int(round(delay_s * wire.SAMPLE_RATE))
        if not 0 < n <= (HISTORY_FRAMES - 2) * wire.FRAME_SAMPLES:
            raise ValueError(f"echo delay {delay_s:g} s: use more than 0 and at most "
                             f"{MAX_ECHO_S:g} s")
        if not 0 <= gain <= 1:
            raise ValueError(f"echo gain {gain:g}: use 0 to 1 (amplitude)")
        if (mode == "double") != (copy is not None):
            raise ValueError("mode double needs the second publisher (copy=); hot_mic takes none")
        return self._next_echo(EchoState(mode, n / wire.SAMPLE_RATE, float(gain), copy=copy))

    def clear_echo(self) -> asyncio.Future:
        """Stop the echo from the next frame on (at once if the speaker is not running).
        Returns a future done once it is off."""
        return self._next_echo(None)

    def _next_echo(self, state: EchoState | None) -> asyncio.Future:
        done = asyncio.get_running_loop().create_future()
        if self._echo_next is not None and not self._echo_next[1].done():
            self._echo_next[1].cancel()  # superseded before any frame carried it
        self._echo_next = (state, done)
        if not self._running:
            self._switch_echo(self.produced[-1][0] + 1 if self.produced else 0, time.time_ns())
        return done

    def _switch_echo(self, seq: int, t_ns: int) -> None:
        """At a frame boundary: the pending change takes effect from frame ``seq``."""
        state, done = self._echo_next
        self._echo_next = None
        if state is not None:
            state = EchoState(state.mode, state.delay_s, state.gain, seq, state.copy)
        if state != self.echo:
            self.echo = state
            self.echo_log.append((t_ns, seq, state))
        if not done.done():
            done.set_result(state)

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


async def _sleep_or_stop(stop: asyncio.Event, delay_s: float) -> None:
    try:
        await asyncio.wait_for(stop.wait(), timeout=delay_s)
    except TimeoutError:
        pass
