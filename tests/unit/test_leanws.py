"""The lean WebSocket client against real servers on loopback: websockets' own server (the
edges' library) for the protocol as peers speak it, and a raw asyncio server for the
responses and frames a correct server never sends."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import socket

import pytest
from websockets.asyncio.server import serve
from websockets.exceptions import InvalidStatus, InvalidURI

from chaos.audio import leanws
from chaos.audio.leanws import HandshakeRefused, LeanSocket, ProtocolFault, connect

pytestmark = pytest.mark.timeout(30)


def run(coro):
    return asyncio.run(asyncio.wait_for(coro, 10))


async def ws_server(handler, **kw):
    kw.setdefault("compression", None)
    server = await serve(handler, "127.0.0.1", 0, **kw)
    return server, f"ws://127.0.0.1:{server.sockets[0].getsockname()[1]}/listen?space=s&token=t"


def test_messages_of_every_length_encoding_fragmented_or_not_in_order():
    big = bytes(range(256)) * 300                                   # a 64-bit length
    sent = [b"", b"a" * 125, b"b" * 126, b"c" * 65535, big, "text too"]
    paths = []

    async def handler(ws):
        paths.append(ws.request.path)
        for m in sent:
            await ws.send(m)
        await ws.send([b"frag", b"men", b"ted"])                    # one message, three frames
        await ws.close()

    async def main():
        server, url = await ws_server(handler)
        async with server:
            sock = await connect(url, 3, max_size=2**17)
            got = [m async for m in sock]
            await asyncio.wait_for(sock.closed, 2)
            return got, sock.error

    got, error = run(main())
    assert got == sent[:-1] + [b"text too", b"fragmented"]
    assert all(type(m) is bytes for m in got)
    assert error is None and paths == ["/listen?space=s&token=t"]


def test_a_sink_takes_messages_as_they_come_and_can_refuse_one():
    codes = []

    async def handler(ws):
        try:
            await ws.send(b"queued")
            await asyncio.sleep(0.2)
            for m in (b"ok-1", b"ok-2", b"no", b"never seen"):
                await ws.send(m)
            await ws.wait_closed()
        finally:
            codes.append(ws.close_code)

    async def main():
        server, url = await ws_server(handler)
        async with server:
            sock = await connect(url, 3)
            first = await sock.__anext__()                      # no sink yet: the queue
            got = []
            sock.sink = lambda m, ns: got.append((m, ns > 0)) or m.startswith(b"ok")
            rest = [m async for m in sock]                      # ends when the sink refuses
            await asyncio.wait_for(sock.closed, 2)
            await asyncio.sleep(0.1)
            return first, got, rest, sock.error

    first, got, rest, error = run(main())
    assert first == b"queued" and rest == []
    assert got == [(b"ok-1", True), (b"ok-2", True), (b"no", True)]
    assert isinstance(error, ProtocolFault) and codes == [1007]


def test_pings_are_answered_so_the_server_keeps_the_socket():
    codes = []

    async def handler(ws):
        await ws.wait_closed()
        codes.append(ws.close_code)

    async def main():
        # pings every 50 ms, dropped after 100 ms without a pong
        server, url = await ws_server(handler, ping_interval=0.05, ping_timeout=0.1)
        async with server:
            sock = await connect(url, 3, sink=lambda m, ns: True)
            await asyncio.sleep(0.6)
            alive = not sock.closed.done()
            await sock.close()                                  # close() returns ``closed``
            assert sock.closed.done()
            sock.close()                                        # idempotent
            await asyncio.sleep(0.1)
            return alive

    assert run(main()) and codes == [1000]


def test_close_sends_the_code_and_ends_the_iteration():
    codes = []

    async def handler(ws):
        await ws.wait_closed()
        codes.append((ws.close_code, ws.close_reason))

    async def main():
        server, url = await ws_server(handler)
        async with server:
            sock = await connect(url, 3)
            async def first():
                return await anext(sock, None)
            reader = asyncio.create_task(first())
            await asyncio.sleep(0.05)
            sock.close(4001)
            assert await asyncio.wait_for(reader, 2) is None    # the iteration ended
            await asyncio.wait_for(sock.closed, 2)
            await asyncio.sleep(0.1)

    run(main())
    assert codes == [(4001, "")]


@pytest.mark.parametrize("body, header, error, hint", [
    ({"error": "edge_full", "retry_after_s": 0.5}, "2", "edge_full", 0.5),   # the body's hint first
    ({"error": "edge_full"}, "2", "edge_full", 2.0),
    (None, None, "http_503", None),
])
def test_a_refusal_is_invalid_status_with_the_response_reason_and_hint(body, header, error, hint):
    def refuse(connection, request):
        r = connection.respond(503, json.dumps(body) if body else "busy\n")
        if header:
            r.headers["Retry-After"] = header
        return r

    async def main():
        server, url = await ws_server(lambda ws: ws.wait_closed(), process_request=refuse)
        async with server:
            with pytest.raises(HandshakeRefused) as exc:
                await connect(url, 3)
        return exc.value

    e = run(main())
    assert isinstance(e, InvalidStatus) and e.response.status_code == e.status == 503
    assert e.response.body == (json.dumps(body) if body else "busy\n").encode()
    assert (e.error, e.retry_after_s) == (error, hint)


# -- a raw server: what a correct server never sends ------------------------------------

def accept_of(request: bytes) -> bytes:
    key = next(line.split(b":", 1)[1].strip() for line in request.split(b"\r\n")
               if line.lower().startswith(b"sec-websocket-key:"))
    return base64.b64encode(hashlib.sha1(key + b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11").digest())


def upgrade(accept: bytes) -> bytes:
    return (b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            b"Sec-WebSocket-Accept: " + accept + b"\r\n\r\n")


def frame(op: int, payload: bytes = b"", fin: bool = True, rsv: int = 0,
          mask: bool = False) -> bytes:
    assert len(payload) < 126
    return bytes(((0x80 if fin else 0) | rsv | op, (0x80 if mask else 0) | len(payload))) + \
        (b"\0\0\0\0" if mask else b"") + payload


def client_close_code(data: bytes) -> int | None:
    """The code of the client's first frame if it is a close (client frames are masked)."""
    if len(data) < 8 or data[0] & 0x0F != 0x8:
        return None
    mask, body = data[2:6], data[6:6 + (data[1] & 0x7F)]
    return int.from_bytes(bytes(b ^ mask[i % 4] for i, b in enumerate(body[:2])), "big")


async def raw_server(answer, hang_up: bool = False):
    """Answers each request with answer(request) (bytes), then records what the client sends
    until it closes (or hangs up at once). Returns (server, url, what each client sent)."""
    sent: list[bytes] = []

    async def handle(r, w):
        try:
            request = await r.readuntil(b"\r\n\r\n")
            w.write(answer(request))
            if not hang_up:
                sent.append(await asyncio.wait_for(r.read(), 3))
        except (OSError, asyncio.IncompleteReadError, TimeoutError):
            pass
        finally:
            w.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    return server, f"ws://127.0.0.1:{server.sockets[0].getsockname()[1]}/listen", sent


def test_frames_in_the_same_read_as_the_101_and_a_close_right_behind():
    async def main():
        server, url, sent = await raw_server(
            lambda req: upgrade(accept_of(req)) + frame(0x2, b"first") + frame(0x9, b"hi")
            + frame(0x8, (1001).to_bytes(2, "big")))
        async with server:
            sock = await connect(url, 3)
            got = [m async for m in sock]
            await asyncio.wait_for(sock.closed, 2)
            await asyncio.sleep(0.1)
        return got, sent

    got, sent = run(main())
    assert got == [b"first"]
    data = sent[0]
    assert data[0] == 0x8A and data[1] & 0x80 and data[1] & 0x7F == 2   # a masked pong, "hi"
    assert client_close_code(data[8:]) == 1001                           # the close echoed


@pytest.mark.parametrize("bad, code", [
    (frame(0x2, b"x", mask=True), 1002),                  # a server must not mask
    (frame(0x2, b"x", rsv=0x40), 1002),                   # RSV1: no extension was agreed
    (frame(0x0, b"x"), 1002),                             # a continuation of nothing
    (frame(0x2, b"a", fin=False) + frame(0x2, b"b"), 1002),  # a new message inside one
    (frame(0x9, b"x", fin=False), 1002),                  # a fragmented control frame
    (frame(0x3, b"x"), 1002),                             # a reserved opcode
    (bytes((0x82, 127)) + (70_000).to_bytes(8, "big"), 1009),  # over max_size
])
def test_a_frame_that_breaks_the_protocol_fails_the_connection(bad, code):
    async def main():
        server, url, sent = await raw_server(lambda req: upgrade(accept_of(req)) + bad)
        async with server:
            sock = await connect(url, 3)
            got = [m async for m in sock]
            await asyncio.wait_for(sock.closed, 2)
            await asyncio.sleep(0.1)
        return got, sent, sock.error

    got, sent, error = run(main())
    assert got == [] and isinstance(error, ProtocolFault)
    assert client_close_code(sent[0]) == code


@pytest.mark.parametrize("answer", [
    lambda req: upgrade(b"not-the-accept-key"),
    lambda req: upgrade(accept_of(req)).replace(b"Upgrade: websocket", b"Upgrade: h2c"),
    lambda req: b"SSH-2.0-OpenSSH_9.6\r\n\r\n",
    lambda req: b"HTTP/1.1 101 Switching Protocols\r\n" + b"X: " + b"y" * 20_000,
])
def test_a_bad_handshake_response_is_a_protocol_fault(answer):
    async def main():
        server, url, _ = await raw_server(answer)
        async with server:
            with pytest.raises(ProtocolFault):
                await connect(url, 3)

    run(main())


def test_a_refusal_without_content_length_and_a_close_during_the_handshake():
    async def main():
        server, url, _ = await raw_server(
            lambda req: b"HTTP/1.1 503 Busy\r\nRetry-After: 3\r\n\r\nfull")
        async with server:
            with pytest.raises(HandshakeRefused) as refused:
                await connect(url, 3)
        server, url, _ = await raw_server(lambda req: b"HTTP/1.1 101 Swi", hang_up=True)
        async with server:
            with pytest.raises(ConnectionResetError):
                await connect(url, 3)
        return refused.value

    e = run(main())
    assert (e.status, e.error, e.retry_after_s, e.response.body) == (503, "http_503", 3.0, b"full")


def test_timeouts_refused_connections_and_urls_it_does_not_speak():
    async def silent():
        srv = await asyncio.start_server(lambda r, w: None, "127.0.0.1", 0)  # never answers
        async with srv:
            with pytest.raises(TimeoutError):
                await connect(f"ws://127.0.0.1:{srv.sockets[0].getsockname()[1]}/", 0.3)

    run(silent())
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))                                  # bound, not listening
        with pytest.raises(OSError):
            run(connect(f"ws://127.0.0.1:{s.getsockname()[1]}/listen", 1))
    for url in ("wss://127.0.0.1:1/listen", "http://127.0.0.1:1/", "ws:///nohost", "ws://h:99999/"):
        with pytest.raises(InvalidURI):
            run(connect(url, 1))


def test_a_reader_that_falls_behind_pauses_the_socket_and_loses_nothing(monkeypatch):
    monkeypatch.setattr(leanws, "HIGH_WATER", 20)
    monkeypatch.setattr(leanws, "LOW_WATER", 5)
    n = 3000                                                      # 600 KB: several reads

    async def handler(ws):
        for i in range(n):
            await ws.send(i.to_bytes(2, "big") + bytes(198))
        await ws.wait_closed()

    async def main():
        server, url = await ws_server(handler)
        async with server:
            sock = await connect(url, 3)
            for _ in range(100):                                  # bounded: at most 1 s
                if sock._paused:
                    break
                await asyncio.sleep(0.01)
            paused, queued = sock._paused, len(sock._queue)
            got = []
            async for m in sock:
                got.append(int.from_bytes(m[:2], "big"))
                if len(got) == n:
                    break
            sock.close()
            return paused, queued, got

    paused, queued, got = run(main())
    assert paused and 20 < queued < n
    assert got == list(range(n))


def test_a_subclass_sees_the_end_and_why():
    class Watched(LeanSocket):
        ended: list = []

        def connection_lost(self, exc):
            self.ended.append((self.error, exc))
            super().connection_lost(exc)

    async def handler(ws):
        await ws.close(1012, "restart")

    async def main():
        server, url = await ws_server(handler)
        async with server:
            sock = await Watched(url).open(3)
            await asyncio.wait_for(sock.closed, 2)
            return Watched.ended

    assert run(main()) == [(None, None)]
