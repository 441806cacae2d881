"""The leanest listener socket a load generator can hold: the project's lean WebSocket
client (chaos.audio.leanws) with a sink that counts messages and watches for the speaker.

No per-message coroutine: each message is counted, and looked inside only until the
awaited speaker's first frame has arrived. Pings are answered and closes echoed by the
client (the edge's server pings every 20 s and drops a client that never answers).

Why not websockets' asyncio client (the probes' Listener): a join storm pays for the
client once per join and per frame held, on the cores the stack needs (bench/load_joins.py
reports the generator's CPU per join).
"""

from __future__ import annotations

import asyncio
import time

from space import wire

from chaos.audio.leanws import HandshakeRefused, LeanSocket, ProtocolFault

__all__ = ["HandshakeRefused", "MAX_MESSAGE_BYTES", "ProtocolFault", "ThinSocket", "open_socket"]

MAX_MESSAGE_BYTES = 1 << 20  # edges send 64 KiB at most; anything larger is not an edge


def _carries(payload: bytes, speaker: str) -> bool:
    try:
        frame = wire.decode(payload)
    except wire.WireError:
        return False
    return any(c.speaker == speaker for c in frame.contributors)


class ThinSocket(LeanSocket):
    """One listener's WebSocket. ``first_audio``: monotonic seconds of the first message
    carrying ``speaker`` (never set when speaker is None; fails if the connection ends
    first); ``closed``: done when the connection is gone, for whatever reason."""

    def __init__(self, url: str, speaker: str | None) -> None:
        super().__init__(url, MAX_MESSAGE_BYTES, self._message)
        self.speaker = speaker
        self.frames = 0
        self.first_audio: asyncio.Future[float] = asyncio.get_running_loop().create_future()

    def _message(self, msg: bytes, _recv_ns: int) -> bool:
        self.frames += 1
        fut = self.first_audio
        if self.speaker is not None and not fut.done() and _carries(msg, self.speaker):
            fut.set_result(time.monotonic())
        return True

    def connection_lost(self, exc: Exception | None) -> None:
        fut = self.first_audio
        if not fut.done():
            fut.set_exception(self.error or exc
                              or ConnectionResetError("the edge closed the connection"))
            fut.exception()  # retrieved: nobody may be awaiting it any more
        super().connection_lost(exc)


async def open_socket(url: str, speaker: str | None, timeout_s: float) -> ThinSocket:
    """Connect and upgrade (``ws://host:port/path``) within timeout_s; raises
    HandshakeRefused, ProtocolFault, InvalidURI, OSError or TimeoutError."""
    return await ThinSocket(url, speaker).open(timeout_s)
