"""The clock every speaker publishes by (real-rate frames, echo changes at a frame
boundary) and the loop every listener stays joined by (timed join, rejoin on a loss)."""

from __future__ import annotations

import asyncio
import time
from contextlib import aclosing

import pytest

from chaos.audio.pacing import EchoSwitch, echo_state, paced
from chaos.audio.record import ListenerRecord
from chaos.audio.rejoin import gone_or_stopped, stay_joined


def test_frames_keep_their_absolute_schedule_and_an_echo_starts_at_a_boundary():
    async def main():
        stop, echoes = asyncio.Event(), EchoSwitch()
        got, done = [], None
        t0 = time.monotonic()
        async with aclosing(paced(stop, 10, echoes)) as frames:
            async for seq, capture_ns in frames:
                got.append((seq, time.monotonic() - t0, echoes.state))
                if seq == 3:
                    done = echoes.change(echo_state("hot_mic", 0.25, 0.5), seq + 1)
                if seq == 4:
                    await asyncio.sleep(0.035)        # a slow send: frames 5-7 come at once
                if seq == 9:
                    stop.set()
        return got, await done, echoes

    got, state, echoes = asyncio.run(main())
    assert [s for s, _, _ in got] == list(range(10))
    assert got[7][1] - got[5][1] < 0.015 < got[5][1] - got[4][1]   # late frames catch up at once
    assert got[3][2] is None and got[4][2] == state and state.seq == 4
    assert state.delay_s == 0.25 and state.gain == 0.5
    assert [(seq, s) for _, seq, s in echoes.log] == [(4, state)]
    assert not echoes.running


def test_a_change_asked_while_no_frame_is_produced_applies_at_once():
    async def main():
        echoes = EchoSwitch()
        on = await echoes.change(echo_state("hot_mic", 0.1, 1.0), 7)
        off = await echoes.change(None, 7)
        return on, off, echoes
    on, off, echoes = asyncio.run(main())
    assert on.seq == 7 and off is None and echoes.state is None
    assert [s for _, _, s in echoes.log] == [on, None]


@pytest.mark.parametrize("delay_s, gain, says", [(0.0, 0.5, "echo delay 0 s"), (1.5, 0.5, "at most 1 s"),
                                                 (0.2, 1.5, "echo gain 1.5: use 0 to 1")])
def test_an_echo_the_sli_cannot_measure_is_refused(delay_s, gain, says):
    with pytest.raises(ValueError, match=says):
        echo_state("hot_mic", delay_s, gain)


class Conn:
    def __init__(self, frames: int) -> None:
        self.frames, self.closed = frames, asyncio.Event()

    async def close(self) -> None:
        self.closed.set()


def test_a_listener_rejoins_a_lost_connection_and_counts_it():
    async def main():
        rec, stop, opened = ListenerRecord(0, "dc-a"), asyncio.Event(), []

        async def open_(deadline):
            opened.append(Conn(2 if len(opened) < 2 else 10_000))
            return opened[-1]

        async def read(conn, t0, deadline):
            for _ in range(conn.frames):
                if conn.closed.is_set():
                    return
                if rec.join_s is None:
                    rec.join_s = time.monotonic() - t0
                await asyncio.sleep(0.001)
            raise ConnectionResetError("lost")

        task = asyncio.create_task(stay_joined(rec, stop, 1.0, open_, read, Conn.close,
                                               (ConnectionResetError,)))
        await asyncio.sleep(0.1)
        stop.set()
        await asyncio.wait_for(task, 2.0)
        return rec, opened

    rec, opened = asyncio.run(main())
    assert rec.join_s is not None and rec.join_error == "" and rec.started_ns > 0
    assert rec.reconnects == 2 and len(opened) == 3 and all(c.closed.is_set() for c in opened)


def test_a_join_that_outlives_its_timeout_is_recorded_as_failed():
    async def main(heard_nothing: bool):
        rec = ListenerRecord(0, "dc-a")

        async def open_(deadline):
            if not heard_nothing:
                await asyncio.sleep(max(0.0, deadline - time.monotonic()))
                raise TimeoutError("HTTP 503 Service Unavailable")
            return Conn(0)

        async def read(conn, t0, deadline):
            await asyncio.sleep(max(0.0, deadline - time.monotonic()) + 0.01)

        await asyncio.wait_for(stay_joined(rec, asyncio.Event(), 0.05, open_, read, Conn.close,
                                           (OSError,)), 2.0)
        return rec

    rec = asyncio.run(main(False))
    assert rec.join_s is None and rec.join_error == "no audio within 0.05 s: HTTP 503 Service Unavailable"
    rec = asyncio.run(main(True))
    assert rec.join_error == "connected but no audio within 0.05 s"


def test_gone_or_stopped_ends_with_whichever_comes_first():
    async def main():
        stop, gone = asyncio.Event(), asyncio.get_running_loop().create_future()
        asyncio.get_running_loop().call_later(0.01, stop.set)
        t0 = time.monotonic()
        await asyncio.wait_for(gone_or_stopped(gone, stop), 1.0)
        return time.monotonic() - t0, gone.cancelled()
    took_s, cancelled = asyncio.run(main())
    assert took_s < 0.5 and cancelled
