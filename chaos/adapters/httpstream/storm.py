"""The ``http-stream`` adapter's join storm client: what one arrival of ``chaos.load`` does
against an Icecast-compatible server.

An arrival is a listener of the mount: a GET at its home DC's listen address (then the
other DCs', as a geo-DNS fallback would), joined at the first *audio* packet of the
stream (Ogg header pages do not count; for a stream that is not Ogg, MP3, the first body
byte), like the adapter's thin listener times its join. It is then held: the bytes are
read and dropped (a server drops a listener that does not read), in one read a
``HOLD_READ_S`` (what the kernel buffered meanwhile: a player's buffer, and the
generator's cost per held listener is one wake-up a second rather than one per page);
a stream that stalls for ``STALL_S`` is taken for lost, as the thin listener does, and a
stream the server ends is seen at the next read. The worker then counts a reconnect and
joins again.

Each connection is one asyncio Protocol (``StreamSocket``): no task, no aiohttp session,
a few bytes of state, so that a worker holds thousands. A non-200 answer is a refusal
(``Refused``: ``http_<status>``, with the Retry-After header's hint); an answer that is
not HTTP is a ``ProtocolFault``.
"""

from __future__ import annotations

import asyncio
import time

from chaos.core.errors import ConfigError
from chaos.audio.admission import Refused
from chaos.audio.leanws import ProtocolFault, open_within
from chaos.core.retry import parse_retry_after
from chaos.adapters.httpstream.listener import STALL_S, _Follow

MAX_HEAD = 16 * 1024       # bytes of a response head
HOLD_READ_S = 1.0          # a held listener reads once this often


def routes(target, options) -> dict:
    """Where the arrivals go, as ``WorkerSpec`` fields: per home DC the DCs' listen
    addresses (the target's ``listener.*`` links), the home DC's first."""
    from chaos.adapters.httpstream import endpoints
    if options.edge_direct:
        raise ConfigError("edge_direct is for the space adapter's edges; an http-stream "
                          "target's listeners join at its listen addresses: leave it off")
    listen = endpoints(target).listen
    dcs = [dc for dc in target.dcs if dc in listen] + sorted(set(listen) - set(target.dcs))
    return {"gateways": {dc: (listen[dc], *(listen[o] for o in dcs if o != dc)) for dc in dcs}}


def _split(address: str) -> tuple[str, int]:
    host, _, port = address.rpartition(":")
    return host.strip("[]"), int(port)


class StreamSocket(asyncio.Protocol):
    """One listener's GET of the mount, read and dropped. ``first_audio``: monotonic
    seconds of the first audio packet (fails if the connection ends first); ``closed``:
    done once the connection is gone, for whatever reason; ``error``: why this side
    dropped it (a stall), else None."""

    def __init__(self, host: str, port: int, mount: str, stall_s: float = STALL_S) -> None:
        loop = asyncio.get_running_loop()
        self.host, self.port, self.stall_s = host, port, stall_s
        self._request = (f"GET {mount} HTTP/1.0\r\nHost: {host}:{port}\r\n"
                         "User-Agent: chaos-storm\r\nAccept: */*\r\nIcy-MetaData: 0\r\n\r\n").encode()
        self.opened: asyncio.Future[None] = loop.create_future()
        self.first_audio: asyncio.Future[float] = loop.create_future()
        self.closed: asyncio.Future[None] = loop.create_future()
        self.error: Exception | None = None
        self.transport: asyncio.Transport | None = None
        self.content_type = ""
        self.received = 0              # body bytes
        self._head: bytearray | None = bytearray()
        self._follow: _Follow | None = None
        self._last_rx = time.monotonic()
        self._stall: asyncio.TimerHandle | None = None

    async def open(self, timeout_s: float) -> StreamSocket:
        """Connect and get a 200 within timeout_s, or raise (Refused, ProtocolFault,
        OSError, TimeoutError)."""
        return await open_within(self, timeout_s)

    # -- asyncio.Protocol ---------------------------------------------------------------
    def connection_made(self, transport) -> None:
        self.transport = transport
        transport.write(self._request)
        self._arm()

    def data_received(self, data: bytes) -> None:
        self._last_rx = time.monotonic()
        if self._head is not None:
            data = self._read_head(data)
            if not data:
                return
        self.received += len(data)
        fut = self.first_audio
        if fut.done():                  # held: read and dropped, once a HOLD_READ_S
            self.transport.pause_reading()
            return
        if self._follow is None:        # not Ogg: the first body byte is audio
            fut.set_result(self._last_rx)
            return
        for _ in self._follow.audio(data):
            fut.set_result(self._last_rx)
            self._follow = None         # nothing more to parse
            return

    def eof_received(self) -> bool:
        return False

    def connection_lost(self, exc: Exception | None) -> None:
        why = self.error or exc or ConnectionResetError("the server closed the stream")
        for fut in (self.opened, self.first_audio):
            if not fut.done():
                fut.set_exception(why)
                fut.exception()         # retrieved: nobody may be awaiting it any more
        if self._stall is not None:
            self._stall.cancel()
        if not self.closed.done():
            self.closed.set_result(None)

    # -- the caller's side --------------------------------------------------------------
    def close(self) -> asyncio.Future[None]:
        """Leave (idempotent); returns ``closed``."""
        if self.transport is not None:
            self.transport.close()
        elif not self.closed.done():
            self.closed.set_result(None)
        return self.closed

    def abort(self) -> None:
        if self.transport is not None:
            self.transport.abort()

    # -- internals ----------------------------------------------------------------------
    def _read_head(self, data: bytes) -> bytes:
        """Take the response head; what follows it is body (returned)."""
        head = self._head
        head += data
        end = head.find(b"\r\n\r\n")
        if end < 0:
            if len(head) > MAX_HEAD:
                self._fail(ProtocolFault(f"a response head over {MAX_HEAD} bytes"))
            return b""
        lines = bytes(head[:end]).decode("latin-1").split("\r\n")
        body = bytes(head[end + 4:])
        self._head = None
        parts = lines[0].split(" ", 2)
        if len(parts) < 2 or not parts[0].startswith(("HTTP/", "ICY")) or not parts[1].isdigit():
            self._fail(ProtocolFault(f"not an HTTP answer: {lines[0][:80]!r}"))
            return b""
        status, reason = int(parts[1]), parts[2] if len(parts) > 2 else ""
        headers = {}
        for line in lines[1:]:
            name, sep, value = line.partition(":")
            if sep:
                headers[name.strip().lower()] = value.strip()
        if status != 200:
            self._fail(Refused(status, f"http_{status}", reason or "refused",
                               parse_retry_after(headers.get("retry-after"))))
            return b""
        self.content_type = headers.get("content-type", "")
        if "ogg" in self.content_type or not self.content_type:
            self._follow = _Follow()
        self.opened.set_result(None)
        return body

    def _fail(self, exc: Exception) -> None:
        self.error = exc
        for fut in (self.opened, self.first_audio):
            if not fut.done():
                fut.set_exception(exc)
                fut.exception()
        self.abort()

    def _arm(self) -> None:
        loop = asyncio.get_running_loop()
        self._stall = loop.call_at(loop.time() + min(HOLD_READ_S, self.stall_s), self._tick)

    def _tick(self) -> None:
        """Once a HOLD_READ_S: a stream silent for stall_s is lost; else read what came."""
        idle = time.monotonic() - self._last_rx
        if idle >= self.stall_s:
            self.error = TimeoutError(f"no bytes for {idle:.1f} s: the stream stalled")
            self.abort()
            return
        if self.transport is not None and not self.transport.is_reading():
            self.transport.resume_reading()
        self._arm()


class StreamStormClient:
    """One worker's client: the GET is the whole join (no join request)."""

    hears_audio = True                  # joined at the first audio packet, always
    stall_s = STALL_S                   # a held stream silent this long is lost

    def __init__(self, spec) -> None:
        self.mount = spec.space

    async def request(self, address: str, timeout_s: float) -> str:
        return address                  # an Icecast listener has nothing to ask first

    async def connect(self, address: str, timeout_s: float) -> StreamSocket:
        host, port = _split(address)
        return await StreamSocket(host, port, self.mount, self.stall_s).open(timeout_s)

    def close(self) -> None:
        pass


def storm_client(spec) -> StreamStormClient:
    return StreamStormClient(spec)
