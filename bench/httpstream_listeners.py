"""Benchmark: what one http-stream thin listener costs, so a probe knows how many fit a core.

Two figures:

- parse: the real-time path alone (Ogg pages split, each Opus packet mapped to its seq
  through the granule, latency recorded), over a minute of our speaker's stream, in
  microseconds per page (one page = one 20 ms frame).
- end to end: N thin listeners in this process GET a stream served at real rate from a
  local fan-out server (a stand-in for an Icecast relay, in a separate process so that its
  CPU is not counted), for S seconds; the listeners' process CPU per listener, and how many
  listeners that makes per core at real rate.

Loopback only; bounded in listeners and seconds.

    .venv/bin/python bench/httpstream_listeners.py [--listeners 200] [--seconds 10]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing as mp
import resource
import time

import aiohttp

from chaos.adapters.httpstream import ogg
from chaos.adapters.httpstream.codec import FRAME_SAMPLES, Encoder
from chaos.adapters.httpstream.endpoints import StreamEndpoints
from chaos.adapters.httpstream.listener import StreamListener, _Follow
from chaos.audio import testsignal

MAX_LISTENERS = 2000
MAX_SECONDS = 120.0


def speaker_pages(frames: int) -> tuple[bytes, list[bytes]]:
    enc = Encoder()
    head = ogg.page([enc.head], serial=1, page_no=0, granule=0, flags=ogg.BOS) + \
        ogg.page([ogg.opus_tags()], serial=1, page_no=1, granule=0)
    pages = [ogg.page([enc.encode(testsignal.frame(s))], serial=1, page_no=2 + s,
                      granule=FRAME_SAMPLES * (s + 1)) for s in range(frames)]
    return head, pages


def bench_parse(frames: int = 3000) -> float:
    head, pages = speaker_pages(frames)
    lst = StreamListener(None, 0, "dc-a", StreamEndpoints("/m", {"dc-a": "127.0.0.1:1"}),
                         lambda s: 0)
    follow = _Follow()
    last = lst._received(follow, head, 0, 0.0, -1)
    t = time.perf_counter()
    for p in pages:
        last = lst._received(follow, p, 1, 0.0, last)
    per_page_us = (time.perf_counter() - t) / len(pages) * 1e6
    assert lst.rec.frames_heard == frames and lst.rec.first_seq == 0
    return per_page_us


def _serve(port_q: mp.Queue, seconds: float) -> None:
    """A fan-out relay stand-in: every GET gets the headers, then one page every 20 ms."""
    async def main() -> None:
        head, pages = speaker_pages(int(seconds / 0.02) + 100)
        clients: list[asyncio.StreamWriter] = []

        async def handle(reader, writer):
            await reader.readuntil(b"\r\n\r\n")
            writer.write(b"HTTP/1.0 200 OK\r\nContent-Type: application/ogg\r\n\r\n" + head)
            clients.append(writer)

        server = await asyncio.start_server(handle, "127.0.0.1", 0)
        port_q.put(server.sockets[0].getsockname()[1])
        t0 = time.monotonic()
        for i, p in enumerate(pages):
            await asyncio.sleep(max(0.0, t0 + i * 0.02 - time.monotonic()))
            for w in list(clients):
                if w.is_closing():
                    clients.remove(w)
                else:
                    w.write(p)
            if time.monotonic() - t0 > seconds + 30:
                break
        server.close()
    asyncio.run(main())


async def bench_listeners(n: int, seconds: float, port: int) -> dict:
    ep = StreamEndpoints("/live.opus", {"dc-a": f"127.0.0.1:{port}"})
    stop = asyncio.Event()
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as session:
        # every seq maps to a capture time: the listeners do the whole real-time path
        ls = [StreamListener(session, i, "dc-a", ep, lambda s: time.time_ns(), None, 30.0)
              for i in range(n)]
        tasks = [asyncio.create_task(x.run(stop)) for x in ls]
        await asyncio.sleep(2.0)                      # joins settle
        r0, t0 = resource.getrusage(resource.RUSAGE_SELF), time.monotonic()
        before = sum(x.rec.frames_heard for x in ls)
        await asyncio.sleep(seconds)
        r1, t1 = resource.getrusage(resource.RUSAGE_SELF), time.monotonic()
        after = sum(x.rec.frames_heard for x in ls)
        stop.set()
        await asyncio.gather(*tasks)
    cpu = (r1.ru_utime - r0.ru_utime) + (r1.ru_stime - r0.ru_stime)
    wall = t1 - t0
    per_listener = cpu / wall / n
    return {"listeners": n, "joined": sum(x.rec.join_s is not None for x in ls),
            "seconds": round(wall, 2), "frames_per_s": round((after - before) / wall, 1),
            "cpu_share": round(cpu / wall, 3), "cpu_per_listener": round(per_listener, 6),
            "listeners_per_core": int(1 / per_listener) if per_listener else None}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--listeners", type=int, default=200)
    ap.add_argument("--seconds", type=float, default=10.0)
    args = ap.parse_args()
    n = max(1, min(args.listeners, MAX_LISTENERS))
    seconds = max(1.0, min(args.seconds, MAX_SECONDS))
    out = {"parse_us_per_page": round(bench_parse(), 2)}
    q: mp.Queue = mp.Queue()
    server = mp.Process(target=_serve, args=(q, seconds + 5), daemon=True)
    server.start()
    try:
        port = q.get(timeout=30)
        out["end_to_end"] = asyncio.run(bench_listeners(n, seconds, port))
    finally:
        server.terminate()
        server.join(5)
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
