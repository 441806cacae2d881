"""The http-stream adapter's join storm client, in-process: one load worker's storm against
a small Icecast-like server on loopback (Ogg/Opus header pages, then an audio page every
20 ms; or refusals, silence, drops, stalls, MP3, garbage), and its routes and planning."""

from __future__ import annotations

import asyncio
import time
from array import array
from dataclasses import replace
from pathlib import Path

import pytest

from chaos.adapters import httpstream
from chaos.adapters.httpstream import ogg, storm
from chaos.core.errors import ConfigError
from chaos.faults.base import Selector
from chaos.faults.kinds.client import JoinStorm
from chaos.core.storm import StormOptions
from chaos.load.worker import WorkerSpec, WorkerStorm
from chaos.core.retry import RetryPolicy
from chaos.targets.file import load as load_target

pytestmark = pytest.mark.timeout(60)
ROOT = Path(__file__).resolve().parents[2]
MOUNT = "/live.opus"
TOC_CELT_20MS = b"\xf8"        # config 31 (CELT, 20 ms), one frame


class FakeIcecast:
    """GET ``MOUNT``: 200 and an Ogg/Opus stream, live (a listener joins at the live edge:
    header pages, then the current audio pages). Knobs: ``refuse`` first requests get 404
    with Retry-After; ``audio=False`` sends headers only; ``drop`` lists the connections (by number,
    from 1) ended after ``drop_after_s``; ``stall_after_s`` stops sending on every
    connection (kept open); ``mp3`` answers audio/mpeg bytes; ``garbage`` answers no HTTP."""

    def __init__(self, refuse: int = 0, audio: bool = True, drop: tuple[int, ...] = (),
                 drop_after_s: float = 0.3,
                 stall_after_s: float | None = None, mp3: bool = False, garbage: bool = False):
        self.refuse, self.audio, self.drop, self.drop_after = refuse, audio, drop, drop_after_s
        self.stall_after, self.mp3, self.garbage = stall_after_s, mp3, garbage
        self.requests = self.connections = self.open = 0
        self.paths: list[str] = []

    async def __aenter__(self) -> FakeIcecast:
        self.server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        self.address = f"127.0.0.1:{self.server.sockets[0].getsockname()[1]}"
        return self

    async def __aexit__(self, *exc) -> None:
        self.server.close()
        await asyncio.wait_for(self.server.wait_closed(), 5)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.requests += 1
        serving = False
        try:
            head = await reader.readuntil(b"\r\n\r\n")
            self.paths.append(head.split(b" ")[1].decode())
            if self.garbage:
                writer.write(b"SSH-2.0-nope\r\n\r\n")
                await writer.drain()
                return
            if self.requests <= self.refuse:
                writer.write(b"HTTP/1.0 404 File Not Found\r\nRetry-After: 0\r\n"
                             b"Content-Type: text/html\r\n\r\n<b>The file you requested could not be found</b>")
                await writer.drain()
                return
            self.connections += 1
            n = self.connections
            self.open += 1
            serving = True
            kind = b"audio/mpeg" if self.mp3 else b"application/ogg"
            writer.write(b"HTTP/1.0 200 OK\r\nContent-Type: " + kind + b"\r\nicy-name: fake\r\n\r\n")
            if not self.mp3:
                writer.write(ogg.page([ogg.opus_head()], serial=9, page_no=0, granule=0, flags=ogg.BOS))
                writer.write(ogg.page([ogg.opus_tags()], serial=9, page_no=1, granule=0))
            await writer.drain()
            t0 = time.monotonic()
            page_no = 2
            while True:
                if self.stall_after is not None and time.monotonic() - t0 > self.stall_after:
                    await reader.read()             # silent, but kept open until the client goes
                    return
                if self.audio:
                    g = int(time.time() * 50) * 960
                    writer.write(b"\xff\xfb" + b"\0" * 100 if self.mp3 else
                                 ogg.page([TOC_CELT_20MS + b"\0" * 40], serial=9, page_no=page_no,
                                          granule=g))
                    page_no += 1
                    await writer.drain()
                await asyncio.sleep(0.02)
                if n in self.drop and time.monotonic() - t0 > self.drop_after:
                    return
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            self.open -= serving
            writer.close()


def spec(server: FakeIcecast, offsets: list[float], duration_s: float, **options) -> WorkerSpec:
    opts = StormOptions(retry=RetryPolicy("fixed", 0.02), **options)
    dcs = ("dc-a", "dc-b")
    return WorkerSpec(index=0, workers=1, offsets=array("d", offsets).tobytes(),
                      gateways={dc: (server.address,) for dc in dcs}, space=MOUNT,
                      speaker_id=None, options=opts, duration_s=duration_s, adapter="http-stream")


async def storm_against(server: FakeIcecast, offsets, duration_s, release_after_s: float = 0.0,
                        **options):
    release = asyncio.Event()

    def drained():
        asyncio.get_running_loop().call_later(release_after_s, release.set)

    w = WorkerStorm(spec(server, offsets, duration_s, **options), time.monotonic() + 0.05)
    return await w.run(release, drained), w


def test_every_arrival_gets_the_mount_and_joins_at_its_first_audio_page():
    async def main():
        async with FakeIcecast() as server:
            report, w = await storm_against(server, [i * 0.02 for i in range(30)], 0.7)
            return report, server
    report, server = asyncio.run(main())
    assert report["arrivals"] == report["fired"] == report["joined"] == 30, report
    assert report["failures"] == {} and report["refusals"] == {}
    assert set(server.paths) == {MOUNT}
    # joined at an audio page: the first one comes on the next 20 ms tick, never at once
    assert report["join"]["count"] == 30 and report["join"]["failed"] == 0
    assert report["reconnects"] == 0


def test_a_join_waits_for_audio_not_for_the_header_pages():
    async def main():
        async with FakeIcecast(audio=False) as server:
            return await storm_against(server, [0.0, 0.05], 0.1, join_timeout_s=0.5)
    report, _ = asyncio.run(main())
    assert report["joined"] == 0
    assert report["failures"] == {"no_audio": 2}
    assert report["join"]["failed"] == 2


def test_a_404_is_a_refusal_retried_until_the_mount_is_there():
    async def main():
        async with FakeIcecast(refuse=6) as server:
            return await storm_against(server, [0.0, 0.0, 0.0], 0.2, join_timeout_s=3.0)
    report, _ = asyncio.run(main())
    assert report["joined"] == 3, report
    assert report["refusals"] == {"http_404": 6}
    assert report["retry_hints"] == 6 and report["retries"] == 6


@pytest.mark.parametrize(("server", "reason"), [
    ({"refuse": 10**6}, "refused:http_404"),      # a mount never served
    ({"garbage": True}, "protocol:connect"),      # an answer that is not HTTP
])
def test_a_join_that_cannot_succeed_fails_with_its_reason(server, reason):
    async def main():
        async with FakeIcecast(**server) as fake:
            return await storm_against(fake, [0.0], 0.1, join_timeout_s=0.4)
    report, _ = asyncio.run(main())
    assert report["joined"] == 0
    assert report["failures"] == {reason: 1}


def test_an_mp3_stream_joins_at_its_first_body_bytes():
    async def main():
        async with FakeIcecast(mp3=True) as server:
            return await storm_against(server, [0.0, 0.01, 0.02], 0.1)
    report, _ = asyncio.run(main())
    assert report["joined"] == 3 and report["failures"] == {}


def test_held_listeners_whose_stream_ends_come_back_and_are_counted():
    async def main():
        async with FakeIcecast(drop=(1, 3)) as server:
            report, w = await storm_against(server, [0.0, 0.0, 0.0, 0.0], 0.1,
                                            release_after_s=2.5, hold_s=None)
            return report, server
    report, server = asyncio.run(main())
    assert report["joined"] == 4
    assert report["reconnects"] == 2, report          # connections 1 and 3 were dropped
    assert report["rejoin"]["count"] == 2 and report["rejoin"]["failed"] == 0
    assert report["reconnect_failures"] == {}
    assert server.connections == 6
    assert max(report["held_by_s"]) == 4


def test_a_stalled_stream_is_taken_for_lost(monkeypatch):
    monkeypatch.setattr(storm.StreamStormClient, "stall_s", 0.3)

    async def main():
        async with FakeIcecast(stall_after_s=0.1) as server:
            report, w = await storm_against(server, [0.0, 0.0], 0.1, release_after_s=0.8,
                                            hold_s=None)
            return report, server
    report, server = asyncio.run(main())
    assert report["joined"] == 2
    assert report["reconnects"] >= 2, report          # each stalled, was dropped and came back
    assert report["rejoin"]["count"] >= 2


def test_listeners_leave_after_their_hold_and_nothing_stays_open():
    async def main():
        async with FakeIcecast() as server:
            report, _ = await storm_against(server, [0.0] * 5, 0.1, release_after_s=0.1, hold_s=0)
            await asyncio.sleep(0.2)
            return report, server.open
    report, still_open = asyncio.run(main())
    assert report["joined"] == 5 and report["reconnects"] == 0
    assert still_open == 0


# --- routes and planning ------------------------------------------------------------------

def _icecast_target():
    return load_target(ROOT / "fixtures/icecast/chaos-target.yaml")


def test_routes_give_each_dc_its_own_listen_address_first():
    got = httpstream.HttpStreamAdapter().storm_routes(_icecast_target(), StormOptions())
    assert got == {"gateways": {
        "dc-a": ("127.0.0.1:21101", "127.0.0.1:21102", "127.0.0.1:21103"),
        "dc-b": ("127.0.0.1:21102", "127.0.0.1:21101", "127.0.0.1:21103"),
        "dc-c": ("127.0.0.1:21103", "127.0.0.1:21101", "127.0.0.1:21102")}}
    with pytest.raises(ConfigError, match="edge_direct"):
        httpstream.HttpStreamAdapter().storm_routes(_icecast_target(), StormOptions(edge_direct=True))


def test_a_join_storm_on_an_icecast_target_is_planned_at_its_listen_addresses():
    [a] = JoinStorm().actions(_icecast_target(), Selector(), {"rate": 20.0}, "s-1")
    assert (a.mechanism, a.target) == ("client", "audience")


def test_a_join_storm_at_a_listen_address_off_this_machine_is_refused():
    t = _icecast_target()
    far = replace(t.links["listener.relay-b"], connect="10.1.2.3:8000")
    t = replace(t, links={**t.links, "listener.relay-b": far})
    with pytest.raises(ConfigError, match="10.1.2.3:8000"):
        JoinStorm().actions(t, Selector(), {"rate": 20.0}, "s-1")
