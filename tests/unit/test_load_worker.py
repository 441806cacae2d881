"""One worker's storm, in-process, against a small gateway (aiohttp) and edge (websockets)
on loopback: accounting, retry hints, holding, eviction, drops and rejoins."""

from __future__ import annotations

import asyncio
import time
from array import array

import pytest
from aiohttp import web
from websockets.asyncio.server import serve

from chaos.audio.histogram import Histogram
from chaos.core.storm import StormOptions
from chaos.load.worker import DCS, WorkerSpec, WorkerStorm
from space import wire
from chaos.core.retry import RetryPolicy

pytestmark = pytest.mark.timeout(60)
SPEAKER = "spk"


class FakeStack:
    """A gateway that answers joins (or refuses them) and an edge that sends the speaker's
    frames every 20 ms (or nothing), optionally dropping each listener's first socket."""

    def __init__(self, refuse: int = 0, audio: bool = True, drop_first_after_s: float | None = None,
                 hang: bool = False):
        self.refuse, self.audio, self.drop_after = refuse, audio, drop_first_after_s
        self.hang = hang  # past its refusals the gateway never answers
        self.joins = 0
        self.connections = 0
        self.open = 0

    async def __aenter__(self):
        async def join(request: web.Request) -> web.Response:
            self.joins += 1
            if self.joins <= self.refuse:
                return web.json_response({"error": "gateway_busy", "message": "slow down",
                                          "retry_after_s": 0.05}, status=503,
                                         headers={"Retry-After": "1"})
            if self.hang:
                await asyncio.sleep(30)
            return web.json_response({"url": f"ws://127.0.0.1:{self.edge_port}/listen?space=s1",
                                      "edge": "edge-a", "dc": "dc-a"})

        async def listen(ws):
            self.connections += 1
            first = self.connections
            self.open += 1
            try:
                if not self.audio:
                    await ws.wait_closed()
                    return
                seq = 0
                t = time.monotonic()
                while True:
                    await ws.send(wire.single("s1", SPEAKER, seq, time.time_ns(), b"\0" * 20))
                    seq += 1
                    await asyncio.sleep(0.02)
                    if self.drop_after is not None and first % 2 == 1 \
                            and time.monotonic() - t > self.drop_after:
                        await ws.close(1012, "restart")
                        return
            except Exception:  # noqa: BLE001 - the listener left
                pass
            finally:
                self.open -= 1

        app = web.Application()
        app.add_routes([web.post("/spaces/{space}/join", join)])
        self.runner = web.AppRunner(app, access_log=None)
        await self.runner.setup()
        site = web.TCPSite(self.runner, "127.0.0.1", 0)
        await site.start()
        self.gateway = f"127.0.0.1:{site._server.sockets[0].getsockname()[1]}"
        self.edge = await serve(listen, "127.0.0.1", 0, compression=None)
        self.edge_port = self.edge.sockets[0].getsockname()[1]
        return self

    async def __aexit__(self, *exc):
        self.edge.close()
        await self.edge.wait_closed()
        await self.runner.cleanup()


def spec(stack: FakeStack, offsets: list[float], duration_s: float, **options) -> WorkerSpec:
    opts = StormOptions(retry=RetryPolicy("fixed", 0.02), **options)
    return WorkerSpec(index=0, workers=1, offsets=array("d", offsets).tobytes(),
                      gateways={dc: (stack.gateway,) for dc in DCS}, space="s1",
                      speaker_id=SPEAKER, options=opts, duration_s=duration_s)


async def storm(stack: FakeStack, offsets, duration_s, release_after_s: float = 0.0, **options):
    release = asyncio.Event()
    drained_at = []

    def drained():
        drained_at.append(time.monotonic())
        asyncio.get_running_loop().call_later(release_after_s, release.set)

    w = WorkerStorm(spec(stack, offsets, duration_s, **options), time.monotonic() + 0.05)
    report = await w.run(release, drained)
    return report, w


def test_every_arrival_joins_and_is_timed():
    async def main():
        async with FakeStack() as stack:
            return await storm(stack, [i * 0.01 for i in range(50)], 0.6)
    report, _ = asyncio.run(main())
    assert report["arrivals"] == report["fired"] == report["joined"] == 50
    assert report["failures"] == {}
    assert report["join"]["count"] == 50 and report["join"]["failed"] == 0
    # every start is timed against its schedule; a late one (over late_ms, 20 ms) is counted,
    # which a busy machine may cause: the count agrees with the lateness measured
    lateness = Histogram.from_dict(report["lateness"])
    assert lateness.count == 50
    assert (report["late_starts"] > 0) == (lateness.max_s * 1000 > 20.0), report["late_starts"]
    assert len(report["samples"]) == 50 * 2 * 8


def test_refusals_are_retried_after_the_hint_and_counted():
    async def main():
        async with FakeStack(refuse=10) as stack:
            return await storm(stack, [0.0] * 5, 0.2, join_timeout_s=3.0)
    report, _ = asyncio.run(main())
    assert report["joined"] == 5
    assert report["refusals"] == {"gateway_busy": 10}
    assert report["retry_hints"] == 10 and report["retry_hint_max_s"] == 0.05
    assert report["retries"] == 10


def test_joins_that_never_hear_audio_fail_with_the_reason():
    async def main():
        async with FakeStack(audio=False) as stack:
            return await storm(stack, [0.0, 0.1, 0.2], 0.3, join_timeout_s=0.5)
    report, _ = asyncio.run(main())
    assert report["joined"] == 0
    assert report["failures"] == {"no_audio": 3}
    assert report["join"]["failed"] == 3  # +inf in every quantile, never dropped


def test_a_stack_that_always_refuses_fails_every_join_at_its_timeout():
    async def main():
        async with FakeStack(refuse=10**6) as stack:
            t = time.monotonic()
            report, _ = await storm(stack, [0.0, 0.0], 0.1, join_timeout_s=0.4)
            return report, time.monotonic() - t
    report, took = asyncio.run(main())
    assert report["failures"] == {"refused:gateway_busy": 2}
    assert report["joined"] == 0 and report["retry_hints"] >= 4
    assert took < 2.0


def test_a_join_its_deadline_cuts_mid_attempt_fails_with_the_stacks_last_answer():
    # refused once, then the next request hangs until the join's deadline: the stack's answer
    # (a refusal) is why the join failed, not the deadline that cut the attempt after it
    async def main():
        async with FakeStack(refuse=1, hang=True) as stack:
            report, _ = await storm(stack, [0.0], 0.1, join_timeout_s=0.4)
            return report
    report = asyncio.run(main())
    assert report["failures"] == {"refused:gateway_busy": 1}, report
    assert report["joined"] == 0 and report["retries"] >= 1


def test_a_join_that_only_ever_timed_out_fails_with_the_timeout():
    async def main():
        async with FakeStack(hang=True) as stack:
            report, _ = await storm(stack, [0.0], 0.1, join_timeout_s=0.3)
            return report
    report = asyncio.run(main())
    assert report["failures"] == {"timeout:join_request": 1}, report


def test_held_listeners_are_evicted_past_the_cap_and_released_together():
    async def main():
        async with FakeStack() as stack:
            report, w = await storm(stack, [i * 0.01 for i in range(20)], 0.4,
                                    release_after_s=0.3, hold_s=None, max_held_per_worker=5)
            await asyncio.sleep(0.2)
            return report, stack.open
    report, still_open = asyncio.run(main())
    assert report["joined"] == 20 and report["evicted"] == 15
    assert max(report["held_by_s"]) == 5
    assert report["reconnects"] == 0  # an eviction is not a loss
    assert still_open == 0  # everyone left at the end


def test_a_held_listener_that_is_dropped_comes_back():
    async def main():
        async with FakeStack(drop_first_after_s=0.1) as stack:
            return await storm(stack, [0.0, 0.05, 0.1, 0.15], 1.2, hold_s=None)
    report, _ = asyncio.run(main())
    assert report["joined"] == 4
    assert report["reconnects"] >= 2
    assert report["rejoin"]["count"] == report["reconnects"]
    assert report["reconnect_failures"] == {}


def test_hold_for_a_while_then_leave():
    async def main():
        async with FakeStack() as stack:
            task = asyncio.create_task(storm(stack, [0.0, 0.0, 0.0], 1.0, hold_s=0.3))
            await asyncio.sleep(0.25)
            during = stack.open
            await asyncio.sleep(0.4)
            after = stack.open
            report, _ = await task
            return report, during, after
    report, during, after = asyncio.run(main())
    assert during == 3 and after == 0
    assert report["joined"] == 3 and report["evicted"] == 0


def test_the_hard_stop_accounts_for_what_was_cut_and_never_fired():
    async def main():
        async with FakeStack(audio=False) as stack:
            # the schedule is 0.2 s, the grace 0.3 s: joins waiting for audio (timeout 5 s)
            # are cut at the hard stop; nothing is left uncounted
            return await storm(stack, [0.0, 0.1], 0.2, join_timeout_s=5.0, grace_s=0.3)
    report, _ = asyncio.run(main())
    assert report["failures"] == {"cut_at_stop": 2}
    assert report["joined"] + sum(report["failures"].values()) == report["arrivals"] == 2
