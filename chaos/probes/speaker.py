"""A speaker that publishes the test signal as Opus at real rate, and reconnects.

Every frame is produced on an absolute 20 ms schedule whether or not it can be sent:
a frame produced while the speaker is cut off counts as produced and not delivered.
"""

from __future__ import annotations

import asyncio
import time

import aiohttp
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed, InvalidStatus, WebSocketException

from space import wire
from space.opus import Encoder
from space.retry import RetryPolicy, parse_retry_after

from . import testsignal
from .joinapi import Refused, join


class Speaker:
    def __init__(self, session: aiohttp.ClientSession, gateways: list[str], space: str,
                 speaker_id: str = "spk-1", retry: RetryPolicy | None = None, seed: int = 0,
                 timeout_s: float = 3.0) -> None:
        self.session, self.gateways, self.space = session, gateways, space
        self.id, self.seed, self.timeout_s = speaker_id, seed, timeout_s
        self.retry = retry or RetryPolicy("exponential_jitter", 0.1, 1.0)
        self.produced: list[tuple[int, int]] = []   # (seq, capture_ns) of every frame
        self.sent = 0
        self.origin: str | None = None              # url of the origin it publishes to
        self.connections = 0
        self.errors: list[str] = []
        self._ws = None
        self.connected = asyncio.Event()

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

    async def run(self, stop: asyncio.Event) -> None:
        maintainer = asyncio.create_task(self._maintain(stop))
        encoder = Encoder()
        t0 = time.monotonic()
        seq = 0
        try:
            while not stop.is_set():
                await asyncio.sleep(max(0.0, t0 + seq * wire.FRAME_MS / 1000 - time.monotonic()))
                capture_ns = time.time_ns()
                payload = encoder.encode(testsignal.frame(seq, self.seed))
                self.produced.append((seq, capture_ns))
                ws = self._ws
                if ws is not None:
                    try:
                        await ws.send(wire.single(self.space, self.id, seq, capture_ns, payload))
                        self.sent += 1
                    except ConnectionClosed:
                        pass
                seq += 1
        finally:
            maintainer.cancel()

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
