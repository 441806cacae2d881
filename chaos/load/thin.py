"""The leanest listener socket a load generator can hold: a WebSocket to an edge as an
asyncio Protocol.

No per-message coroutine, no message objects: ``data_received`` walks the frame headers,
answers pings (the edge's server pings every 20 s and drops a client that never answers),
answers a close, and looks inside a frame only until the awaited speaker's first frame
has arrived. A listener that only holds its socket costs a callback per TCP read.

Why not ``websockets`` (the probes' Listener): a join storm pays for the client once per
join and per frame held, on the cores the stack needs. Measured on the 2-core machine,
2000 joins (request, socket, first frame, leave) against the local stack: 2.6 ms of
client CPU a join with aiohttp + websockets, 1.4 ms with aiohttp + this socket, 0.9 ms
with joinhttp.py + this socket. The handshake is plain HTTP/1.1 on loopback;
``Sec-WebSocket-Accept`` is not checked (the edge is ours, and a wrong upgrade would
show as no audio).
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
import struct
import time

from space import wire

OP_CONT, OP_TEXT, OP_BINARY, OP_CLOSE, OP_PING, OP_PONG = 0x0, 0x1, 0x2, 0x8, 0x9, 0xA
MAX_HANDSHAKE_BYTES = 16 * 1024
MAX_FRAME_BYTES = 1 << 20  # edges send 64 KiB at most; anything larger is not an edge


class HandshakeRefused(Exception):
    """The edge answered the upgrade with something other than 101."""

    def __init__(self, status: int, error: str, retry_after_s: float | None) -> None:
        super().__init__(f"{status} {error}")
        self.status, self.error, self.retry_after_s = status, error, retry_after_s


class ProtocolFault(Exception):
    """The peer sent something that is not a WebSocket this client understands."""


def _masked(opcode: int, payload: bytes = b"") -> bytes:
    """A client frame (clients must mask; payloads here are control frames, < 126 bytes)."""
    mask = os.urandom(4)
    body = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
    return bytes((0x80 | opcode, 0x80 | len(payload))) + mask + body


def _carries(payload: bytes, speaker: str) -> bool:
    try:
        frame = wire.decode(payload)
    except wire.WireError:
        return False
    return any(c.speaker == speaker for c in frame.contributors)


class ThinSocket(asyncio.Protocol):
    """One listener's WebSocket. Await ``opened`` (101, or HandshakeRefused), then
    ``first_audio`` (monotonic seconds of the first frame carrying ``speaker``; never set
    when speaker is None), and ``closed`` (the connection is gone, for whatever reason)."""

    def __init__(self, host: str, path: str, speaker: str | None) -> None:
        loop = asyncio.get_running_loop()
        self.request = (f"GET {path} HTTP/1.1\r\nHost: {host}\r\nUpgrade: websocket\r\n"
                        "Connection: Upgrade\r\nSec-WebSocket-Key: "
                        f"{base64.b64encode(os.urandom(16)).decode()}\r\n"
                        "Sec-WebSocket-Version: 13\r\n\r\n").encode()
        self.speaker = speaker
        self.opened: asyncio.Future[None] = loop.create_future()
        self.first_audio: asyncio.Future[float] = loop.create_future()
        self.closed: asyncio.Future[None] = loop.create_future()
        self.frames = 0
        self.transport: asyncio.Transport | None = None
        self._buf = bytearray()
        self._open = False

    # -- asyncio.Protocol -------------------------------------------------------------
    def connection_made(self, transport) -> None:
        self.transport = transport
        transport.write(self.request)

    def data_received(self, data: bytes) -> None:
        buf = self._buf
        buf += data
        if not self._open:
            self._handshake()
            if not self._open:
                return
        try:
            self._frames()
        except ProtocolFault as e:
            self._fail(e)

    def eof_received(self):
        return False  # close our side too

    def connection_lost(self, exc: Exception | None) -> None:
        err = exc or ConnectionResetError("the edge closed the connection")
        for fut in (self.opened, self.first_audio):
            if not fut.done():
                fut.set_exception(err)
                fut.exception()  # retrieved: nobody may be awaiting it any more
        if not self.closed.done():
            self.closed.set_result(None)

    # -- parsing ------------------------------------------------------------------------
    def _handshake(self) -> None:
        buf = self._buf
        end = buf.find(b"\r\n\r\n")
        if end < 0:
            if len(buf) > MAX_HANDSHAKE_BYTES:
                self._fail(ProtocolFault("handshake response too long"))
            return
        head = bytes(buf[:end]).decode("latin-1").split("\r\n")
        try:
            status = int(head[0].split(" ", 2)[1])
        except (IndexError, ValueError):
            self._fail(ProtocolFault(f"not an HTTP response: {head[0][:80]!r}"))
            return
        headers = {}
        for line in head[1:]:
            k, _, v = line.partition(":")
            headers[k.strip().lower()] = v.strip()
        if status != 101:
            body = bytes(buf[end + 4:])
            length = int(headers.get("content-length", "0") or 0)
            if len(body) < length and len(buf) < MAX_HANDSHAKE_BYTES:
                return  # wait for the refusal's body: it names the reason
            self._fail(_refusal(status, headers, body))
            return
        del buf[:end + 4]
        self._open = True
        self.opened.set_result(None)

    def _frames(self) -> None:
        buf = self._buf
        at, n = 0, len(buf)
        while n - at >= 2:
            b0, b1 = buf[at], buf[at + 1]
            length = b1 & 0x7F
            head = 2
            if length == 126:
                if n - at < 4:
                    break
                length = (buf[at + 2] << 8) | buf[at + 3]
                head = 4
            elif length == 127:
                if n - at < 10:
                    break
                (length,) = struct.unpack_from(">Q", buf, at + 2)
                head = 10
            if b1 & 0x80:
                raise ProtocolFault("a server frame must not be masked")
            if length > MAX_FRAME_BYTES:
                raise ProtocolFault(f"a frame of {length} bytes")
            if n - at < head + length:
                break
            opcode = b0 & 0x0F
            start = at + head
            at = start + length
            if opcode == OP_BINARY or opcode == OP_CONT:
                self.frames += 1
                fut = self.first_audio
                if self.speaker is not None and not fut.done() and _carries(
                        bytes(buf[start:at]), self.speaker):
                    fut.set_result(time.monotonic())
            elif opcode == OP_PING:
                self.transport.write(_masked(OP_PONG, bytes(buf[start:at])))
            elif opcode == OP_CLOSE:
                self.transport.write(_masked(OP_CLOSE, bytes(buf[start:min(at, start + 2)])))
                self.transport.close()
                at = n
                break
        if at:
            del buf[:at]

    def _fail(self, exc: Exception) -> None:
        for fut in (self.opened, self.first_audio):
            if not fut.done():
                fut.set_exception(exc)
                fut.exception()
        if self.transport is not None:
            self.transport.abort()

    # -- the caller's side ------------------------------------------------------------
    def close(self) -> None:
        """Leave: a close frame (1000, going away politely), then the socket."""
        t = self.transport
        if t is not None and not t.is_closing():
            if self._open:
                t.write(_masked(OP_CLOSE, struct.pack(">H", 1000)))
            t.close()

    def abort(self) -> None:
        if self.transport is not None:
            self.transport.abort()


def _refusal(status: int, headers: dict[str, str], body: bytes) -> HandshakeRefused:
    error = f"http_{status}"
    hint = None
    try:
        doc = json.loads(body)
        if isinstance(doc, dict):
            error = str(doc.get("error") or error)
            hint = doc.get("retry_after_s")
    except ValueError:
        pass
    if hint is None and headers.get("retry-after"):
        try:
            hint = max(0.0, float(headers["retry-after"]))
        except ValueError:
            hint = None
    return HandshakeRefused(status, error, float(hint) if isinstance(hint, (int, float)) else None)


async def open_socket(url: str, speaker: str | None, timeout_s: float) -> ThinSocket:
    """Connect and upgrade (``ws://host:port/path``); raises HandshakeRefused, OSError or
    TimeoutError. The socket is open when this returns."""
    if not url.startswith("ws://"):
        raise ValueError(f"only ws:// URLs, not {url[:40]!r}")
    rest = url[5:]
    slash = rest.find("/")
    hostport, path = (rest, "/") if slash < 0 else (rest[:slash], rest[slash:])
    host, _, port = hostport.rpartition(":")
    loop = asyncio.get_running_loop()
    async with asyncio.timeout(timeout_s):
        _, proto = await loop.create_connection(lambda: ThinSocket(hostport, path, speaker),
                                                host, int(port))
        try:
            await proto.opened
        except BaseException:
            proto.abort()
            raise
    return proto
