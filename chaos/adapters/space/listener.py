"""A thin listener: joins, holds the socket, checks sequence numbers and capture times.

It never decodes audio. The join is timed from the first join request to the first audio
frame of the speaker it follows; a join that fails or outlives its timeout is recorded as
failed, never dropped. After a loss it rejoins (with its retry policy) and records the gap.

Its socket is the project's lean receive-only WebSocket client (``chaos.audio.leanws``):
once joined, each message goes straight from the socket's parser to ``_heard`` without
waking the listener's task, and is aggregated at once (``chaos.audio.reception``: a
counter per second, the group's per-second latency bins), so that memory does not grow
with the run's length and a process holds hundreds of real-rate listeners.
"""

from __future__ import annotations

import asyncio
import time

import aiohttp
from websockets.exceptions import ConnectionClosed, WebSocketException

from space import wire

from chaos.audio.leanws import LeanSocket, connect
from chaos.audio.reception import SecondBins
from chaos.audio.rejoin import stay_joined
from chaos.audio.record import ListenerRecord
from chaos.core.retry import RetryPolicy
from chaos.audio.sli import PLAYOUT_DEADLINE_S
from chaos.adapters.space.joinapi import Refused, join
from chaos.adapters.space.speaker import _hint


class Listener:
    """``bins``: the per-second bins of the listener's group (its home DC, in this process);
    ``epoch_ns``: the run's t0, when no bins are given (a listener of its own)."""

    def __init__(self, session: aiohttp.ClientSession, index: int, home_dc: str,
                 gateways: list[str], space: str, speaker_id: str,
                 retry: RetryPolicy, join_timeout_s: float = 5.0,
                 bins: SecondBins | None = None) -> None:
        self.session, self.gateways, self.space, self.speaker = session, gateways, space, speaker_id
        self.retry, self.join_timeout_s = retry, join_timeout_s
        self.rec = ListenerRecord(index, home_dc)
        self.bins = bins if bins is not None else SecondBins(time.time_ns(), PLAYOUT_DEADLINE_S)
        self._sock: LeanSocket | None = None

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

    async def _open(self, url: str, timeout_s: float) -> LeanSocket:
        """Open the audio socket; once joined (a reconnect), messages go straight to _heard."""
        sock = await connect(url, timeout_s, max_size=2**16,
                             sink=self._heard if self.rec.join_s is not None else None)
        self._sock = sock
        return sock

    async def run(self, stop: asyncio.Event) -> None:
        await stay_joined(self.rec, stop, self.join_timeout_s, self._connect, self._read,
                          LeanSocket.close, (ConnectionClosed, OSError, wire.WireError))

    async def _read(self, ws: LeanSocket, t0: float, deadline: float) -> None:
        async for msg in ws:
            self._received(msg, time.time_ns(), t0)
            if self.rec.join_s is None and time.monotonic() > deadline:
                break

    def _received(self, msg: bytes, recv_ns: int, t0: float) -> None:
        """A message read from the socket's queue (before the join, or queued before the
        sink was set): times the join, then hands it to _heard. Raises WireError on a
        message that is not a frame. A hook for subclasses."""
        rec = self.rec
        if rec.join_s is None:
            frame = wire.decode(msg)
            if any(c.speaker == self.speaker for c in frame.contributors):
                rec.join_s = time.monotonic() - t0
                rec.joined_ns = recv_ns
                if self._sock is not None:
                    self._sock.sink = self._heard
        if not self._heard(msg, recv_ns):
            raise wire.WireError("not a space frame")

    def _heard(self, msg: bytes, recv_ns: int) -> bool:
        """The real-time path: one frame into the reception counters. False: not a frame
        (the socket then fails the connection, as a corrupt frame should)."""
        try:
            frame = wire.decode(msg)
        except wire.WireError:
            return False
        for c in frame.contributors:
            if c.speaker == self.speaker:
                self.rec.rx.heard(c.seq, c.capture_ns, recv_ns, self.bins)
        return True
