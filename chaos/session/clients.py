"""The hub that plays client-side faults (``echo``, ``join_storm``) in one probe run.

An open probe session (``chaos.session.probe.open_session``) gives its driver a
``LiveRun``: the run's speaker, its aiohttp session, its space. A ``SessionClients`` made
from it, plugged into the run's ``ClientSlot`` (``chaos.faults.executors.client``), turns
the engine's inject and revert of a client fault into changes to those clients::

    slot = ClientSlot()
    engine = Engine(executors_for(state, {"client": ClientExecutor(state, slot)}), stack_id)
    async with open_session(topo, ...) as live:
        async with SessionClients(live, slot) as hub:      # plugged in, closed on the way out
            await asyncio.to_thread(engine.inject, actions)   # the engine blocks: a thread
            await asyncio.sleep(duration_s)
            await asyncio.to_thread(engine.revert, actions)

- ``echo``: ``Speaker.set_echo`` at the next frame boundary; mode ``double`` first
  connects a second publisher (speaker id ``<speaker>.echo``) and closes it on stop.
- ``join_storm``: ``chaos.load.run_storm`` against the run's space and speaker, from the
  inject (once its workers are started) to the revert (its ``stop``); its StormResult goes
  into ``live.storms`` when it ends, so its joins count in the run's join_time.

``start`` and ``stop`` are called from the engine's worker threads: they hand a coroutine
to the run's event loop (``asyncio.run_coroutine_threadsafe``) and wait for its effect,
with a timeout under the engine's deadline. Called from the loop's own thread they would
deadlock, so they refuse. Stopping what this hub does not play is a no-op.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
from dataclasses import dataclass, field

from chaos.core.retry import RetryPolicy

from chaos.core.errors import ProbeError
from chaos.faults.base import Action
from chaos.faults.engine import INJECT_DEADLINE_S, FaultError
from chaos.faults.executors.client import ClientSlot
from chaos.session.probe import LiveRun

START_TIMEOUT_S = INJECT_DEADLINE_S - 2.0   # under the engine's own deadline
STOP_TIMEOUT_S = 5.0
STORM_RESULT_SLACK_S = 30.0                  # after a stop: joins in flight + reaping workers
STORM_WORKER_RATE = 500.0                    # joins/s one load worker fires comfortably


@dataclass
class _Echo:
    copy: object | None = None     # the second publisher (an adapter speaker's twin)
    stop: asyncio.Event = field(default_factory=asyncio.Event)
    task: asyncio.Task | None = None


@dataclass
class _Storm:
    task: asyncio.Task
    stop: asyncio.Event


class SessionClients:
    """The hub of one probe run (see the module's docstring). Make it in the run's loop."""

    def __init__(self, live: LiveRun, slot: ClientSlot | None = None) -> None:
        self.live = live
        self.slot = slot
        self.loop = asyncio.get_running_loop()
        self.playing: dict[str, _Echo | _Storm] = {}   # action key -> what plays it
        self.storm_tasks: list[asyncio.Task] = []
        self.errors: list[str] = []
        self.closed = False
        self._attachment = None

    def __repr__(self) -> str:
        return f"SessionClients(space={self.live.space!r}, playing={sorted(self.playing)})"

    # -- the hub protocol (any thread but the loop's) ------------------------------------
    def start(self, action: Action) -> None:
        self._call(self._start(action), START_TIMEOUT_S, f"starting {action.describe()}", True)

    def stop(self, action: Action) -> None:
        self._call(self._stop(action), STOP_TIMEOUT_S, f"stopping {action.describe()}", False)

    def _call(self, coro, timeout_s: float, what: str, needed: bool) -> None:
        if self.loop.is_closed() or not self.loop.is_running():
            coro.close()
            if needed:
                raise FaultError(f"{what}: the probe run is over (its event loop has stopped)")
            return  # the clients are gone, and what they played with them
        if _running_loop() is self.loop:
            coro.close()
            raise FaultError(f"{what}: called from the run's event loop thread, which would "
                             "deadlock; call the engine in a thread (asyncio.to_thread)")
        future = asyncio.run_coroutine_threadsafe(coro, self.loop)
        try:
            future.result(timeout_s)
        except TimeoutError:
            future.cancel()
            raise FaultError(f"{what}: the run's clients did not answer within {timeout_s:g} s "
                             "(is the event loop blocked?)") from None

    # -- in the loop -------------------------------------------------------------------
    async def _start(self, a: Action) -> None:
        if a.key in self.playing:
            return  # idempotent
        if self.closed:
            raise FaultError(f"{a.describe()}: the run's clients are closing; nothing injected")
        if a.fault == "echo":
            await self._start_echo(a)
        elif a.fault == "join_storm":
            await self._start_storm(a)
        else:
            raise FaultError(f"{a.describe()}: the run's clients play echo and join_storm, "
                             f"not {a.fault}")

    async def _stop(self, a: Action) -> None:
        played = self.playing.pop(a.key, None)
        if isinstance(played, _Echo):
            await self._stop_echo(played)
        elif isinstance(played, _Storm):
            played.stop.set()
            await asyncio.sleep(0)  # the generator's stopper sends the stop to its workers

    # -- echo ----------------------------------------------------------------------------
    async def _start_echo(self, a: Action) -> None:
        spk = self.live.speaker
        if spk.echo is not None or any(isinstance(p, _Echo) for p in self.playing.values()):
            raise FaultError(f"{a.describe()}: the speaker already plays an echo; one at a time")
        p = a.params
        delay_s, gain, mode = p["delay_ms"] / 1000, 10 ** (p["gain_db"] / 20), p["mode"]
        played = _Echo()
        self.playing[a.key] = played
        try:
            if mode == "double":
                played.copy = spk.twin(f"{spk.id}.echo")
                played.task = asyncio.create_task(played.copy.hold(played.stop))
                await asyncio.wait_for(_first(played.copy.connected.wait(), played.task),
                                       START_TIMEOUT_S - 2.0)
                if not played.copy.connected.is_set():
                    raise FaultError(f"{a.describe()}: the second publisher could not connect: "
                                     f"{'; '.join(played.copy.errors[-2:]) or 'no answer'}")
            await asyncio.wait_for(spk.set_echo(delay_s, gain, mode, played.copy), 1.0)
        except BaseException as e:
            self.playing.pop(a.key, None)
            spk.clear_echo()  # supersedes an echo not yet taken (done at the next frame)
            with contextlib.suppress(Exception):
                await self._stop_echo(played)
            if isinstance(e, TimeoutError):
                raise FaultError(f"{a.describe()}: the speaker did not take the echo in time "
                                 "(is it still running?)") from None
            raise

    async def _stop_echo(self, played: _Echo) -> None:
        spk = self.live.speaker
        if spk.echo is not None and spk.echo.copy is played.copy:
            try:
                await asyncio.wait_for(spk.clear_echo(), 1.0)   # at a frame boundary
            except TimeoutError:
                raise FaultError("the speaker did not take the echo off within 1 s (is it "
                                 "still running?)") from None
        if played.copy is not None:
            played.stop.set()
            if played.task is not None:
                await asyncio.gather(played.task, return_exceptions=True)
            await played.copy.close()   # the origin's mixer drops it at once

    # -- join storm ----------------------------------------------------------------------
    async def _start_storm(self, a: Action) -> None:
        from chaos.load import ArrivalSchedule, Burst, StormOptions
        from chaos.scale.run import fire
        p, live = a.params, self.live
        max_s = float(p.get("max_s", 600.0))
        bursts = ((Burst(float(p["burst_at_s"]), int(p["burst"])),)
                  if p.get("burst") and p["burst_at_s"] < max_s else ())
        schedule = ArrivalSchedule(float(p["rate"]), max_s, bursts=bursts)
        retry = live.topo.client_retry if p["retry"] == "profile" else RetryPolicy(p["retry"])
        options = StormOptions(retry=retry, join_timeout_s=live.join_timeout_s,
                               hold_s=float(p["hold_s"]),
                               workers=_workers(float(p["rate"]) + int(p.get("burst") or 0)))
        stop, started = asyncio.Event(), asyncio.Event()
        task = asyncio.create_task(fire(live.scale, live.topo, live.space, live.speaker.id,
                                        schedule, options, stop=stop, started=started,
                                        pool=live.pool))
        task.add_done_callback(lambda t: self._storm_done(t, started.is_set()))
        self.storm_tasks.append(task)
        self.playing[a.key] = _Storm(task, stop)
        try:
            await asyncio.wait_for(_first(started.wait(), task), START_TIMEOUT_S)
            if not started.is_set():
                await task  # it ended before starting: its error
                raise FaultError(f"{a.describe()}: the storm ended before it started")
        except BaseException as e:
            self.playing.pop(a.key, None)
            stop.set()
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
            if isinstance(e, TimeoutError):
                raise FaultError(f"{a.describe()}: the load workers were not started within "
                                 f"{START_TIMEOUT_S:g} s") from None
            if isinstance(e, ProbeError):
                raise FaultError(f"{a.describe()}: {e}") from e
            raise

    def _storm_done(self, task: asyncio.Task, started: bool) -> None:
        if not started:
            return  # its inject failed (and said why): no joins to miss
        if task.cancelled():
            self.errors.append("a join storm was cancelled: its joins are not counted")
        elif task.exception() is not None:
            e = task.exception()
            self.errors.append(f"a join storm failed: {type(e).__name__}: {e}")
        else:
            self.live.storms.append(task.result())

    @property
    def storms(self) -> list:
        """The results of the storms that ended (also in ``live.storms``)."""
        return list(self.live.storms)

    # -- the end of the run --------------------------------------------------------------
    async def aclose(self) -> None:
        """Stop whatever still plays (echo off, storms stopped), wait for the storms'
        results (in ``live.storms``). A storm that failed or was lost raises ProbeError
        afterwards: the run's join_time would be missing its joins."""
        self.closed = True
        for key in list(self.playing):
            played = self.playing.pop(key)
            if isinstance(played, _Echo):
                with contextlib.suppress(Exception):
                    await self._stop_echo(played)
            else:
                played.stop.set()
        pending = [t for t in self.storm_tasks if not t.done()]
        if pending:
            _, late = await asyncio.wait(
                pending, timeout=self.live.join_timeout_s + STORM_RESULT_SLACK_S)
            for t in late:
                t.cancel()
            await asyncio.gather(*pending, return_exceptions=True)
        if self.errors:
            raise ProbeError("; ".join(self.errors))

    async def __aenter__(self) -> SessionClients:
        if self.slot is not None:
            self._attachment = self.slot.plugged(self)
            self._attachment.__enter__()
        return self

    async def __aexit__(self, *exc) -> None:
        try:
            await self.aclose()
        finally:
            if self._attachment is not None:
                self._attachment.__exit__(None, None, None)
                self._attachment = None


def _running_loop() -> asyncio.AbstractEventLoop | None:
    try:
        return asyncio.get_running_loop()
    except RuntimeError:
        return None


async def _first(awaitable, task: asyncio.Task) -> None:
    """Until ``awaitable`` is done or ``task`` ends, whichever first."""
    waiter = asyncio.ensure_future(awaitable)
    try:
        await asyncio.wait({waiter, task}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        waiter.cancel()


def _workers(rate: float) -> int:
    import os
    return max(1, min(os.cpu_count() or 1, math.ceil(rate / STORM_WORKER_RATE)))
