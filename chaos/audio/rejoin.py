"""Connections held until the run stops, whatever the protocol: a listener's join and
rejoin loop, and the waits that end early when the run stops.

A join is timed from the first attempt (``ListenerRecord.started_ns``); one that fails or
outlives its timeout is recorded as failed (``join_error``), never dropped. Once joined, a
lost connection is rejoined with a fresh timeout and counted in ``reconnects``.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from chaos.audio.record import ListenerRecord

C = TypeVar("C")


async def sleep_or_stop(stop: asyncio.Event, delay_s: float) -> None:
    try:
        await asyncio.wait_for(stop.wait(), timeout=delay_s)
    except TimeoutError:
        pass


async def gone_or_stopped(gone: Awaitable[Any], stop: asyncio.Event) -> None:
    """Until the connection is gone (``gone`` done) or the run stops, whichever first."""
    waiter = asyncio.ensure_future(gone)
    stopper = asyncio.ensure_future(stop.wait())
    try:
        await asyncio.wait({waiter, stopper}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        waiter.cancel()
        stopper.cancel()


async def stay_joined(rec: ListenerRecord, stop: asyncio.Event, join_timeout_s: float,
                 open_: Callable[[float], Awaitable[C]],
                 read: Callable[[C, float, float], Awaitable[None]],
                 close: Callable[[C], Awaitable[None]],
                 lost: tuple[type[BaseException], ...]) -> None:
    """A listener's life until ``stop``.

    ``open_(deadline)`` joins, raising TimeoutError once the monotonic deadline passes;
    ``read(conn, t0, deadline)`` takes in the connection until it ends (raising one of
    ``lost`` or returning), and returns early if nothing was heard by the deadline before
    the join; ``close(conn)`` hangs up, and is what ends ``read`` when the run stops."""
    rec.started_ns = time.time_ns()
    t0 = time.monotonic()
    deadline = t0 + join_timeout_s
    while not stop.is_set():
        try:
            conn = await open_(deadline)
        except TimeoutError as e:
            if rec.join_s is None:
                rec.join_error = f"no audio within {join_timeout_s:g} s: {e}"
                return
            await sleep_or_stop(stop, 0.2)
            deadline = time.monotonic() + join_timeout_s
            continue
        closer = asyncio.create_task(_close_on(stop, conn, close))
        try:
            await read(conn, t0, deadline)
        except lost:
            pass
        finally:
            closer.cancel()
            await close(conn)
        if rec.join_s is None and time.monotonic() > deadline:
            rec.join_error = f"connected but no audio within {join_timeout_s:g} s"
            return
        if not stop.is_set():
            rec.reconnects += 1
            deadline = time.monotonic() + join_timeout_s


async def _close_on(stop: asyncio.Event, conn, close: Callable[[Any], Awaitable[None]]) -> None:
    await stop.wait()
    await close(conn)
