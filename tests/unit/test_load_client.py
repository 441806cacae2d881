"""The load generator's lean client against real servers on loopback: a websockets server
(the edge's library) for the thin socket, an aiohttp server (the gateway's) for joins."""

from __future__ import annotations

import asyncio
import json
from http import HTTPStatus

import pytest
from aiohttp import web
from websockets.asyncio.server import serve

from chaos.core.errors import ConfigError
from chaos.adapters.space.joinhttp import JoinClient
from chaos.core.storm import StormOptions
from chaos.adapters.space.thin import HandshakeRefused, open_socket
from chaos.audio.admission import Refused
from space import wire

pytestmark = pytest.mark.timeout(30)


def frame(speaker: str, seq: int, payload: bytes = b"\x00" * 40) -> bytes:
    return wire.single("s1", speaker, seq, 1, payload)


async def ws_server(handler, **kw):
    return await serve(handler, "127.0.0.1", 0, compression=None, **kw)


def url_of(server, path="/listen?space=s1&token=t") -> str:
    host, port = server.sockets[0].getsockname()[:2]
    return f"ws://{host}:{port}{path}"


def test_first_audio_is_the_awaited_speakers_first_frame():
    async def main():
        async def handler(ws):
            await ws.send(frame("someone-else", 1))
            await asyncio.sleep(0.05)
            await ws.send(frame("spk", 7, b"\x01" * 300))       # 16-bit extended length
            await ws.send(frame("spk", 8, b"\x02" * 70_000))    # 64-bit extended length
            await ws.wait_closed()
        async with await ws_server(handler, max_size=None) as server:
            sock = await open_socket(url_of(server), "spk", 2.0)
            t = await asyncio.wait_for(sock.first_audio, 2.0)
            await asyncio.sleep(0.1)
            frames = sock.frames
            sock.close()
            await asyncio.wait_for(sock.closed, 2.0)
            return t, frames
    t, frames = asyncio.run(main())
    assert t > 0
    assert frames == 3


def test_the_socket_answers_pings_so_the_edge_keeps_it():
    async def main():
        closed_by_server = asyncio.Event()

        async def handler(ws):
            await ws.wait_closed()
            if ws.close_code != 1000:
                closed_by_server.set()
        # pings every 50 ms, dropped after 100 ms without a pong: a silent client dies fast
        async with await ws_server(handler, ping_interval=0.05, ping_timeout=0.1) as server:
            sock = await open_socket(url_of(server), None, 2.0)
            await asyncio.sleep(0.6)
            alive = not sock.closed.done()
            sock.close()
            await asyncio.wait_for(sock.closed, 2.0)
            return alive, closed_by_server.is_set()
    alive, dropped = asyncio.run(main())
    assert alive and not dropped


def test_a_refused_upgrade_carries_the_reason_and_retry_hint():
    async def main():
        def refuse(connection, request):
            response = connection.respond(HTTPStatus.SERVICE_UNAVAILABLE, json.dumps(
                {"error": "edge_full", "message": "full", "retry_after_s": 2.0}))
            response.headers["Retry-After"] = "2"
            return response
        async with await ws_server(lambda ws: ws.wait_closed(), process_request=refuse) as server:
            with pytest.raises(HandshakeRefused) as exc:
                await open_socket(url_of(server), "spk", 2.0)
            return exc.value
    e = asyncio.run(main())
    assert (e.status, e.error, e.retry_after_s) == (503, "edge_full", 2.0)


def test_a_server_close_before_audio_fails_first_audio():
    async def main():
        async def handler(ws):
            await ws.close(1011, "going")
        async with await ws_server(handler) as server:
            sock = await open_socket(url_of(server), "spk", 2.0)
            with pytest.raises(OSError):
                await asyncio.wait_for(sock.first_audio, 2.0)
            await asyncio.wait_for(sock.closed, 2.0)
    asyncio.run(main())


def test_an_unreachable_edge_is_an_os_error():
    async def main():
        with pytest.raises(OSError):
            await open_socket("ws://127.0.0.1:1/listen", "spk", 1.0)
    asyncio.run(main())


# -- joins --------------------------------------------------------------------------------

async def gateway(behaviour: str):
    peers: list = []

    async def join(request: web.Request) -> web.Response:
        peers.append(request.transport.get_extra_info("peername"))  # one per connection
        body = await request.json()
        assert body == {"role": "listener"}
        space = request.match_info["space"]
        if behaviour == "busy":
            return web.json_response({"error": "gateway_busy", "message": "slow down",
                                      "retry_after_s": 0.25}, status=503, headers={"Retry-After": "1"})
        if behaviour == "missing":
            return web.json_response({"error": "no_such_space", "message": "create it"}, status=404)
        return web.json_response({"space": space, "url": f"ws://127.0.0.1:9/listen?space={space}",
                                  "edge": "edge-a", "dc": "dc-a"})
    app = web.Application()
    app.add_routes([web.post("/spaces/{space}/join", join)])
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]
    return runner, f"127.0.0.1:{port}", peers


@pytest.mark.parametrize("keepalive, connections", [(True, 1), (False, 5)])
def test_joins_reuse_a_kept_alive_connection_unless_told_not_to(keepalive, connections):
    async def main():
        runner, gw, peers = await gateway("ok")
        client = JoinClient("room-1", keepalive=keepalive)
        try:
            docs = [await client.join(gw, 2.0) for _ in range(5)]
        finally:
            client.close()
            await runner.cleanup()
        return docs, len(set(peers))
    docs, n = asyncio.run(main())
    assert all(d["url"].endswith("space=room-1") and d["edge"] == "edge-a" for d in docs)
    assert n == connections


@pytest.mark.parametrize("behaviour, status, error, hint", [
    ("busy", 503, "gateway_busy", 0.25), ("missing", 404, "no_such_space", None)])
def test_a_refused_join_carries_the_stacks_reason_and_hint(behaviour, status, error, hint):
    async def main():
        runner, gw, _ = await gateway(behaviour)
        client = JoinClient("room-1")
        try:
            with pytest.raises(Refused) as exc:
                await client.join(gw, 2.0)
            # the connection stays usable after a refusal
            with pytest.raises(Refused):
                await client.join(gw, 2.0)
        finally:
            client.close()
            await runner.cleanup()
        return exc.value
    e = asyncio.run(main())
    assert (e.status, e.error, e.retry_after_s) == (status, error, hint)


def test_a_join_to_nowhere_is_an_os_error():
    async def main():
        client = JoinClient("room-1")
        with pytest.raises(OSError):
            await client.join("127.0.0.1:1", 1.0)
    asyncio.run(main())


# -- options ------------------------------------------------------------------------------

@pytest.mark.parametrize("kwargs, match", [
    ({"workers": 0}, r"workers must be an integer from 1 to 64"),
    ({"join_timeout_s": 0}, r"join_timeout_s must be a finite number more than 0 s"),
    ({"join_timeout_s": float("nan")}, r"join_timeout_s"),
    ({"hold_s": -1}, r"hold_s must be a finite number of at least 0 s \(or None: until the storm ends\)"),
    ({"max_held_per_worker": 0}, r"max_held_per_worker must be an integer of at least 1"),
    ({"late_ms": -3}, r"late_ms .* ms"),
    ({"grace_s": float("inf")}, r"grace_s"),
    ({"retry": "exponential"}, r"RetryPolicy"),
])
def test_bad_storm_options_say_why(kwargs, match):
    with pytest.raises(ConfigError, match=match):
        StormOptions(**kwargs)


def test_storm_option_defaults():
    o = StormOptions()
    assert o.hold_s == 0 and o.grace == o.join_timeout_s + 2 and o.worker_count() >= 1
