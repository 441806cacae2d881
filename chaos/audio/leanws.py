"""The project's lean receive-only WebSocket client (RFC 6455, no extensions), for
listeners by the hundred or thousand: the thick listener (chaos.adapters.space.thick) and the join
storms' thin sockets (chaos.adapters.space.thin). Everything else uses the websockets library.

``LeanSocket`` is an asyncio Protocol: frames are cut out of the bytes in
``data_received``, pings answered, a close echoed, fragments joined, limits enforced. Each
complete data message goes either

* to ``sink(msg, receive_ns)`` at once, without waking any task (a false return fails
  the connection with 1007), or
* when no sink is set, to a queue read with ``async for msg in sock`` (reading pauses
  while more than HIGH_WATER messages wait, as websockets' client does).

Failures are websockets' exceptions, so callers treat this socket and websockets'
``connect`` alike: ``HandshakeRefused`` (an ``InvalidStatus``: the response, and the
stack's reason and retry hint) for a non-101 answer; ``ProtocolFault`` (a
``WebSocketException``) for a response or frame that breaks the protocol; ``InvalidURI``;
``TimeoutError``; ``OSError``.

Why hand-written rather than websockets' sans-I/O ``ClientProtocol`` driven by the same
Protocol: that was built and measured (2-core machine, local stack). Its generator-based
parser costs 9-10 us of CPU per frame over 250-500 sockets where this receive path costs
about 2, which took bench/thick_listeners.py's listener CPU per frame from 20.9 to 31 us
at 250 listeners (+48 %) and from 15.8 to 18 us at 500 (+14 %; medians of 8-14 runs),
and a storm worker's CPU per join (bench/load_joins.py) from 1.56 to 1.92 ms at 100
joins/s (+23 %) and from 1.18 to 1.52 ms at 200 (+29 %).
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import os
import time
from collections import deque
from collections.abc import Callable
from urllib.parse import urlsplit

from websockets.datastructures import Headers
from websockets.exceptions import InvalidStatus, InvalidURI, WebSocketException
from websockets.http11 import Response

from chaos.core.retry import parse_retry_after

MAX_SIZE = 2**16            # bytes in a message (as the thin listener's websockets max_size)
MAX_HEAD = 16 * 1024        # bytes in the handshake response's head
MAX_REFUSAL = 64 * 1024     # bytes of a refusal kept (head and body)
HIGH_WATER = 2048           # queued messages before reading pauses
LOW_WATER = 512
_GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
_CONT, _TEXT, _BINARY, _CLOSE, _PING, _PONG = 0x0, 0x1, 0x2, 0x8, 0x9, 0xA

Sink = Callable[[bytes, int], bool]


async def open_within(proto, timeout_s: float):
    """Connect a client Protocol (``host``, ``port``, an ``opened`` future it settles and
    ``abort()``) and wait until it is open, within timeout_s; on any failure, timeout or
    cancellation it is aborted and the error raised. Returns the protocol."""
    loop = asyncio.get_running_loop()
    try:
        async with asyncio.timeout(timeout_s):
            await loop.create_connection(lambda: proto, proto.host, proto.port)
            await proto.opened
    except BaseException:
        proto.abort()
        raise
    return proto


class ProtocolFault(WebSocketException):
    """The peer sent something this client does not take (a handshake response or a frame
    that breaks the protocol, or an HTTP answer chaos.adapters.space.joinhttp cannot frame)."""


class HandshakeRefused(InvalidStatus):
    """The server answered the upgrade with something other than 101.

    websockets' ``InvalidStatus`` (``response``: status, headers, body), plus what the
    stack's refusals carry: ``status``, ``error`` (the JSON body's ``error``, else
    ``http_<status>``) and ``retry_after_s`` (the body's ``retry_after_s``, else the
    Retry-After header's seconds, else None).
    """

    def __init__(self, response: Response) -> None:
        super().__init__(response)
        self.status = response.status_code
        self.error = f"http_{self.status}"
        hint = None
        try:
            doc = json.loads(response.body)
        except ValueError:
            doc = None
        if isinstance(doc, dict):
            self.error = str(doc.get("error") or self.error)
            hint = doc.get("retry_after_s")
        if not isinstance(hint, (int, float)) or isinstance(hint, bool):
            hint = parse_retry_after(response.headers.get("Retry-After"))
        self.retry_after_s = None if hint is None else float(hint)


async def connect(url: str, timeout_s: float, *, max_size: int = MAX_SIZE,
                  sink: Sink | None = None) -> LeanSocket:
    """A ``LeanSocket`` to ``ws://host[:port]/path?query``, open (101 received) within
    timeout_s. Raises HandshakeRefused, ProtocolFault, InvalidURI, TimeoutError, OSError."""
    return await LeanSocket(url, max_size, sink).open(timeout_s)


class LeanSocket(asyncio.Protocol):
    """The receiving end of a WebSocket. Create it, then ``await sock.open(timeout_s)`` (or
    use ``connect``). Subclasses may extend ``connection_lost`` (calling this one).

    ``sink`` may be set or changed at any time. ``closed`` is a future done once the TCP
    connection is gone (it never fails); ``error`` says why this side failed it (None: a
    clean close by either side, or a lost connection). ``close()`` sends a close frame
    and closes the connection; it returns ``closed``, so ``await sock.close()`` works too.
    ``abort()`` drops the connection at once.
    """

    def __init__(self, url: str, max_size: int = MAX_SIZE, sink: Sink | None = None) -> None:
        u = urlsplit(url)
        host = u.hostname
        try:
            port = u.port or 80
        except ValueError:
            port = 0
        if u.scheme != "ws" or not host or not port:
            raise InvalidURI(url, "the lean socket speaks ws://host[:port]/path only")
        self.host, self.port, self.max_size, self.sink = host, port, max_size, sink
        key = base64.b64encode(os.urandom(16))
        self._accept = base64.b64encode(hashlib.sha1(key + _GUID).digest()).decode()
        self._request = (f"GET {u.path or '/'}{'?' + u.query if u.query else ''} HTTP/1.1\r\n"
                         f"Host: {u.netloc}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                         f"Sec-WebSocket-Key: {key.decode()}\r\nSec-WebSocket-Version: 13\r\n"
                         "User-Agent: chaos-leanws\r\n\r\n").encode()
        loop = asyncio.get_running_loop()
        self.opened: asyncio.Future[None] = loop.create_future()
        self.closed: asyncio.Future[None] = loop.create_future()
        self.error: Exception | None = None
        self.transport: asyncio.Transport | None = None
        self._open = False                    # the 101 came
        self._ended = False                   # no more messages will come
        self._buf = b""                       # bytes not yet cut into frames
        self._head: tuple[int, list[str], dict[str, str], int] | None = None  # a response head
        self._parts: list[bytes] | None = None  # a fragmented message so far
        self._queue: deque[bytes] = deque()
        self._waiter: asyncio.Future | None = None
        self._paused = False

    async def open(self, timeout_s: float) -> LeanSocket:
        """Connect and complete the opening handshake within timeout_s, or raise."""
        return await open_within(self, timeout_s)

    # -- asyncio.Protocol ---------------------------------------------------------------
    def connection_made(self, transport) -> None:
        self.transport = transport
        transport.write(self._request)

    def data_received(self, data: bytes) -> None:
        buf = self._buf + data if self._buf else data
        if not self._open:
            buf = self._read_head(buf)
            if not self._open:
                self._buf = buf
                return
        # The fast path: one pass over the frames in this read, no per-frame objects.
        at, n, queue, sink, limit = 0, len(buf), self._queue, self.sink, self.max_size
        now = time.time_ns() if sink is not None else 0
        while n - at >= 2:
            b0, b1 = buf[at], buf[at + 1]
            size, head = b1 & 0x7F, 2
            if size == 126:
                if n - at < 4:
                    break
                size, head = int.from_bytes(buf[at + 2:at + 4], "big"), 4
            elif size == 127:
                if n - at < 10:
                    break
                size, head = int.from_bytes(buf[at + 2:at + 10], "big"), 10
            if size > limit:
                self._fail(1009, f"a frame of {size} bytes")
                return
            if b1 & 0x80 or b0 & 0x70:  # a server never masks; no extension: no RSV bits
                self._fail(1002, "a masked frame or RSV bits set")
                return
            end = at + head + size
            if end > n:
                break
            payload = buf[at + head:end]
            at = end
            op = b0 & 0x0F
            if op == _BINARY or op == _TEXT:
                if self._parts is not None:
                    self._fail(1002, "a new message inside a fragmented one")
                    return
                if not b0 & 0x80:
                    self._parts = [payload]
                    continue
                msg = payload
            elif op == _CONT and self._parts is not None:
                parts = self._parts
                parts.append(payload)
                if sum(map(len, parts)) > limit:
                    self._fail(1009, "a fragmented message over the size limit")
                    return
                if not b0 & 0x80:
                    continue
                msg, self._parts = b"".join(parts), None
            elif op >= _CLOSE and (size > 125 or not b0 & 0x80):
                self._fail(1002, "a fragmented or oversized control frame")
                return
            elif op == _PING:
                self._send(_PONG, payload)
                continue
            elif op == _CLOSE:
                self._send(_CLOSE, payload[:2])  # echo the code, as websockets does
                self._shut()
                return
            elif op == _PONG:
                continue
            else:
                self._fail(1002, f"an unexpected frame (opcode {op})")
                return
            if sink is None:
                queue.append(msg)
            elif not sink(msg, now):
                self._fail(1007, "a message the receiver refused")
                return
        self._buf = buf[at:] if at < n else b""
        if queue:
            self._wake()
            if len(queue) > HIGH_WATER and not self._paused:
                self._paused = True
                self.transport.pause_reading()

    def eof_received(self) -> bool:
        return False  # close our side too

    def connection_lost(self, exc: Exception | None) -> None:
        self._ended = True
        if not self.opened.done():  # a refusal whose body ran to EOF, or nothing usable
            self._reject(self._refusal(self._buf) if self._head else
                         exc or ConnectionResetError("closed during the opening handshake"))
        if not self.closed.done():
            self.closed.set_result(None)
        self._wake()

    # -- the caller's side --------------------------------------------------------------
    def __aiter__(self) -> LeanSocket:
        return self

    async def __anext__(self) -> bytes:
        while not self._queue:
            if self._ended:
                raise StopAsyncIteration
            self._waiter = asyncio.get_running_loop().create_future()
            try:
                await self._waiter
            finally:
                self._waiter = None
        if self._paused and len(self._queue) < LOW_WATER and not self._ended:
            self._paused = False
            self.transport.resume_reading()
        return self._queue.popleft()

    def close(self, code: int = 1000) -> asyncio.Future[None]:
        """Leave: a close frame (if open), then the TCP connection. Idempotent."""
        if self._open:
            self._send(_CLOSE, code.to_bytes(2, "big"))
        self._shut()
        return self.closed

    def abort(self) -> None:
        self._ended = True
        if self.transport is not None:
            self.transport.abort()
        self._wake()

    # -- internals ----------------------------------------------------------------------
    def _read_head(self, buf: bytes) -> bytes:
        """The handshake response: once a valid 101 is in, sets _open and returns the bytes
        after it; a refusal or a bad response rejects ``opened`` and aborts."""
        if self._head is None:
            end = buf.find(b"\r\n\r\n")
            if end < 0:
                if len(buf) > MAX_HEAD:
                    self._fail_handshake(ProtocolFault("a handshake response head over 16 KiB"))
                return buf
            lines = buf[:end].decode("latin-1").split("\r\n")
            parts = lines[0].split(" ", 2)
            try:
                status = int(parts[1])
            except (IndexError, ValueError):
                self._fail_handshake(ProtocolFault(f"not an HTTP response: {lines[0][:80]!r}"))
                return b""
            fields: dict[str, str] = {}  # lower-case name -> value (repeats joined, as HTTP does)
            for line in lines[1:]:
                name, _, value = line.partition(":")
                name, value = name.strip().lower(), value.strip()
                fields[name] = f"{fields[name]}, {value}" if name in fields else value
            self._head = (status, lines, fields, end + 4)
        status, _, fields, body_at = self._head
        if status == 101:
            if (fields.get("upgrade", "").lower() != "websocket"
                    or "upgrade" not in fields.get("connection", "").lower()
                    or fields.get("sec-websocket-accept") != self._accept
                    or "sec-websocket-extensions" in fields):
                self._fail_handshake(ProtocolFault("a 101 that is not a valid WebSocket upgrade"))
                return b""
            self._open = True
            self.opened.set_result(None)
            return buf[body_at:]
        length = fields.get("content-length", "0")
        if not length.isdigit() or len(buf) - body_at >= int(length) or len(buf) > MAX_REFUSAL:
            self._fail_handshake(self._refusal(buf))  # the body (the reason) is in, or won't be
        return buf

    def _refusal(self, buf: bytes) -> HandshakeRefused:
        """websockets' Response for a non-101 head (and what came of its body)."""
        status, lines, _, body_at = self._head
        headers = Headers()
        for line in lines[1:]:
            name, _, value = line.partition(":")
            headers[name.strip()] = value.strip()
        parts = lines[0].split(" ", 2)
        return HandshakeRefused(Response(status, parts[2] if len(parts) > 2 else "", headers,
                                         bytes(buf[body_at:MAX_REFUSAL])))

    def _reject(self, exc: Exception) -> None:
        if not self.opened.done():
            self.opened.set_exception(exc)
            self.opened.exception()  # retrieved: the opener may have timed out already

    def _fail_handshake(self, exc: Exception) -> None:
        self._reject(exc)
        self.abort()

    def _send(self, opcode: int, payload: bytes = b"") -> None:
        """A control frame (payload <= 125 bytes), masked as a client's must be."""
        t = self.transport
        if t is None or t.is_closing():
            return
        n, mask = len(payload), os.urandom(4)
        masked = int.from_bytes(payload, "big") ^ int.from_bytes((mask * 32)[:n], "big")
        body = masked.to_bytes(n, "big")
        t.write(bytes((0x80 | opcode, 0x80 | n)) + mask + body)

    def _fail(self, code: int, why: str) -> None:
        """Fail the connection (RFC 6455 7.1.7): a close frame with the code, then close."""
        self.error = ProtocolFault(why)
        self._send(_CLOSE, code.to_bytes(2, "big"))
        self._shut()

    def _shut(self) -> None:
        """Close the TCP connection right after our close frame (rather than waiting for
        the server's side): a listener that leaves has nothing more to read."""
        self._ended = True
        if self.transport is not None and not self.transport.is_closing():
            self.transport.close()
        self._wake()

    def _wake(self) -> None:
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_result(None)
