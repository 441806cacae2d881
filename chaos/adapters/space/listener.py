"""A thin listener: joins, holds the socket, checks sequence numbers and capture times.

It never decodes. The join is timed from the first join request to the first audio frame
of the speaker it follows; a join that fails or outlives its timeout is recorded as failed,
never dropped. After a loss it rejoins (with its retry policy) and records the gap.
"""

from __future__ import annotations

import asyncio
import time

import aiohttp
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed, WebSocketException

from space import wire
from ...retry import RetryPolicy

from ...probes.record import ListenerRecord
from .joinapi import Refused, join
from .speaker import _hint, _sleep_or_stop


class Listener:
    def __init__(self, session: aiohttp.ClientSession, index: int, home_dc: str,
                 gateways: list[str], space: str, speaker_id: str,
                 retry: RetryPolicy, join_timeout_s: float = 5.0) -> None:
        self.session, self.gateways, self.space, self.speaker = session, gateways, space, speaker_id
        self.retry, self.join_timeout_s = retry, join_timeout_s
        self.rec = ListenerRecord(index, home_dc)

    async def _connect(self, deadline: float):
        """Join through the gateways (home DC first) until a socket is open or the deadline."""
        delays = self.retry.delays()
        last = "no attempt"
        hint_s = 0.0
        while time.monotonic() < deadline:
            for gw in self.gateways:
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                try:
                    j = await join(self.session, gw, self.space, "listener", min(left, 3.0))
                    ws = await self._open(j.url, max(0.1, min(left, 3.0)))
                    self.rec.edge, self.rec.dc = j.body.get("edge", ""), j.body.get("dc", "")
                    self.rec.edges_seen.append(self.rec.edge)
                    return ws
                except (Refused, aiohttp.ClientError, TimeoutError, OSError, WebSocketException) as e:
                    last = f"{type(e).__name__}: {e}"[:200]
                    hint = _hint(e)
                    if hint is not None:
                        hint_s = hint
                        break  # the stack asked us to wait: do, before the next gateway
            delay = next(delays, None)
            if delay is None:
                break
            await asyncio.sleep(max(0.0, min(max(delay, hint_s), deadline - time.monotonic())))
            hint_s = 0.0
        raise TimeoutError(last)

    async def _open(self, url: str, timeout_s: float):
        """Open the audio socket (a hook: the thick listener uses a leaner receiver)."""
        return await connect(url, open_timeout=timeout_s, max_size=2**16, ping_interval=None)

    async def run(self, stop: asyncio.Event) -> None:
        rec = self.rec
        rec.started_ns = time.time_ns()
        t0 = time.monotonic()
        deadline = t0 + self.join_timeout_s
        last_seq = -1
        while not stop.is_set():
            try:
                ws = await self._connect(deadline)
            except TimeoutError as e:
                if rec.join_s is None:
                    rec.join_error = f"no audio within {self.join_timeout_s:g} s: {e}"
                    return
                await _sleep_or_stop(stop, 0.2)
                deadline = time.monotonic() + self.join_timeout_s
                continue
            closer = asyncio.create_task(_close_on(stop, ws))
            try:
                async for msg in ws:
                    last_seq = self._received(msg, time.time_ns(), t0, last_seq)
                    if rec.join_s is None and time.monotonic() > deadline:
                        break
            except (ConnectionClosed, OSError, wire.WireError):
                pass
            finally:
                closer.cancel()
                await ws.close()
            if rec.join_s is None and time.monotonic() > deadline:
                rec.join_error = f"connected but no audio within {self.join_timeout_s:g} s"
                return
            if not stop.is_set():
                rec.reconnects += 1
                deadline = time.monotonic() + self.join_timeout_s

    def _received(self, msg: bytes, recv_ns: int, t0: float, last_seq: int) -> int:
        """One message off the socket (the real-time path): times the join, records the
        in-order seqs and latencies. Returns the new last in-order seq. A hook for
        subclasses (the thick listener also keeps the message)."""
        rec = self.rec
        frame = wire.decode(msg)
        for c in frame.contributors:
            if c.speaker != self.speaker:
                continue
            if rec.join_s is None:
                rec.join_s = time.monotonic() - t0
                rec.joined_ns = recv_ns
            if c.seq > last_seq:
                rec.seqs.append(c.seq)
                rec.latency_ns.append(recv_ns - c.capture_ns)
                last_seq = c.seq
            else:
                rec.out_of_order += 1
        return last_seq


async def _close_on(stop: asyncio.Event, ws) -> None:
    await stop.wait()
    await ws.close()
