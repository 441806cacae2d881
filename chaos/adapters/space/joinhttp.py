"""The gateway's join request, as lean as a client can send it: ``POST /spaces/<id>/join``
over HTTP/1.1 on a small keep-alive pool per gateway (or a fresh connection per join, as
600,000 phones would open), as an asyncio Protocol.

The request bytes are built once per gateway and space; the response is framed by its
Content-Length (what the gateway's aiohttp server sends). A refusal raises the probes'
``Refused`` with the stack's reason and retry hint, like ``chaos.adapters.space.joinapi.join``.
"""

from __future__ import annotations

import asyncio
import json

from chaos.core.retry import parse_retry_after

from chaos.audio.admission import Refused
from chaos.audio.leanws import ProtocolFault

MAX_RESPONSE_BYTES = 64 * 1024
LISTENER_BODY = b'{"role": "listener"}'


class _Conn(asyncio.Protocol):
    def __init__(self, pool: _Pool) -> None:
        self.pool = pool
        self.transport: asyncio.Transport | None = None
        self.response: asyncio.Future | None = None
        self._buf = bytearray()
        self._head: tuple[int, dict[str, str], int] | None = None
        self.reusable = False

    def connection_made(self, transport) -> None:
        self.transport = transport

    def send(self, request: bytes) -> asyncio.Future:
        self.response = asyncio.get_running_loop().create_future()
        self._buf.clear()
        self._head = None
        self.transport.write(request)
        return self.response

    def data_received(self, data: bytes) -> None:
        buf = self._buf
        buf += data
        fut = self.response
        if fut is None or fut.done():
            self.transport.abort()  # bytes nobody asked for: not a connection to keep
            return
        if self._head is None:
            end = buf.find(b"\r\n\r\n")
            if end < 0:
                if len(buf) > MAX_RESPONSE_BYTES:
                    self._fail(ProtocolFault("response head too long"))
                return
            lines = bytes(buf[:end]).decode("latin-1").split("\r\n")
            try:
                version, status = lines[0].split(" ", 2)[:2]
                status_code = int(status)
            except ValueError:
                self._fail(ProtocolFault(f"not an HTTP response: {lines[0][:80]!r}"))
                return
            headers = {}
            for line in lines[1:]:
                k, _, v = line.partition(":")
                headers[k.strip().lower()] = v.strip()
            if "content-length" not in headers:
                self._fail(ProtocolFault("a response without Content-Length"))
                return
            self.reusable = (version == "HTTP/1.1"
                             and headers.get("connection", "").lower() != "close")
            self._head = (status_code, headers, end + 4)
        status_code, headers, start = self._head
        length = int(headers["content-length"])
        if len(buf) - start < length:
            if length > MAX_RESPONSE_BYTES:
                self._fail(ProtocolFault(f"a response of {length} bytes"))
            return
        fut.set_result((status_code, headers, bytes(buf[start:start + length])))

    def connection_lost(self, exc: Exception | None) -> None:
        self.reusable = False
        self.pool.forget(self)
        fut = self.response
        if fut is not None and not fut.done():
            fut.set_exception(exc or ConnectionResetError("the gateway closed the connection"))
            fut.exception()

    def _fail(self, exc: Exception) -> None:
        if self.response is not None and not self.response.done():
            self.response.set_exception(exc)
            self.response.exception()
        self.transport.abort()


class _Pool:
    def __init__(self, host: str, port: int, max_idle: int) -> None:
        self.host, self.port, self.max_idle = host, port, max_idle
        self.idle: list[_Conn] = []

    async def acquire(self) -> _Conn:
        while self.idle:
            conn = self.idle.pop()
            if conn.transport is not None and not conn.transport.is_closing():
                return conn
        loop = asyncio.get_running_loop()
        _, conn = await loop.create_connection(lambda: _Conn(self), self.host, self.port)
        return conn

    def release(self, conn: _Conn) -> None:
        if conn.reusable and len(self.idle) < self.max_idle and not conn.transport.is_closing():
            self.idle.append(conn)
        else:
            conn.transport.close()

    def forget(self, conn: _Conn) -> None:
        try:
            self.idle.remove(conn)
        except ValueError:
            pass

    def close(self) -> None:
        for conn in self.idle:
            conn.transport.close()
        self.idle.clear()


class JoinClient:
    """Listener joins for one space. ``keepalive=False`` opens a connection per join."""

    def __init__(self, space: str, keepalive: bool = True, max_idle_per_gateway: int = 64) -> None:
        self.space, self.keepalive, self.max_idle = space, keepalive, max_idle_per_gateway
        self._pools: dict[str, _Pool] = {}
        self._requests: dict[str, bytes] = {}

    def _request(self, gateway: str) -> bytes:
        req = self._requests.get(gateway)
        if req is None:
            conn = "keep-alive" if self.keepalive else "close"
            req = self._requests[gateway] = (
                f"POST /spaces/{self.space}/join HTTP/1.1\r\nHost: {gateway}\r\n"
                f"Content-Type: application/json\r\nContent-Length: {len(LISTENER_BODY)}\r\n"
                f"Connection: {conn}\r\n\r\n").encode() + LISTENER_BODY
        return req

    async def join(self, gateway: str, timeout_s: float) -> dict:
        """The gateway's answer to a listener join (``url``, ``edge``, ``dc``, ...).
        Raises Refused (the stack said no), OSError or TimeoutError."""
        pool = self._pools.get(gateway)
        if pool is None:
            host, _, port = gateway.rpartition(":")
            pool = self._pools[gateway] = _Pool(host, int(port), self.max_idle if self.keepalive else 0)
        conn: _Conn | None = None
        try:
            async with asyncio.timeout(timeout_s):
                conn = await pool.acquire()
                status, headers, body = await conn.send(self._request(gateway))
        except BaseException:
            if conn is not None and conn.transport is not None:
                conn.transport.abort()
            raise
        pool.release(conn)
        try:
            doc = json.loads(body)
        except ValueError:
            doc = {"error": "bad_response", "message": body[:200].decode("utf-8", "replace")}
        if not isinstance(doc, dict):
            doc = {"error": "bad_response", "message": repr(doc)[:200]}
        if status >= 400:
            hint = doc.get("retry_after_s")
            if not isinstance(hint, (int, float)):
                hint = parse_retry_after(headers.get("retry-after"))
            raise Refused(status, str(doc.get("error", f"http_{status}")), str(doc.get("message", "")),
                          hint)
        if "url" not in doc:
            raise Refused(status, "bad_response", f"a join answer without a url: {str(doc)[:160]}", None)
        return doc

    def close(self) -> None:
        for pool in self._pools.values():
            pool.close()
