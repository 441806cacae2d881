"""One worker process of a join storm: fires its share of the arrivals on schedule, times
every join, holds the listeners, and reports a histogram and counters.

An arrival is a thin listener of the target's adapter (``Adapter.storm_client(spec)``): a
request to an entry address of its home DC (then the other DCs', as a geo-DNS fallback
would), a connection, and the first audio on it: join done. For the ``space`` adapter the
request is ``POST /spaces/<id>/join`` to a gateway and the connection a WebSocket to the
edge it was given (with no speaker, an open socket is joined); for ``http-stream`` the
connection is a GET of the mount at the DC's listen address, joined at its first audio
packet. Failures are retried with the client retry policy, honouring the stack's retry
hints, until the join timeout; a join that runs out of time counts as failed with the
last reason seen.

A storm client (``chaos.adapters.base.StormClient``) has ``hears_audio`` (whether a join
waits for ``first_audio``), ``async request(address, timeout_s) -> where`` (phase
``join_request``), ``async connect(where, timeout_s) -> connection`` (phase ``connect``)
and ``close()``; a connection (``StormConnection``) has ``first_audio`` (a future:
monotonic seconds), ``closed`` (a future, done when it is gone), ``close()`` and
``abort()``. Refusals raise ``Refused`` or
``HandshakeRefused`` (with ``error`` and ``retry_after_s``); a connection that breaks the
protocol raises ``ProtocolFault``.

The worker runs in its own process (spawned; see generator.py) and talks to the parent
over a pipe: ("ready", pid) <- ("start", wall time) ... ("drained",) <- ("release",)
("report", dict). "drained": every arrival has joined or failed and the schedule is over;
held listeners stay until every worker has drained, so that one worker's audience leaving
never makes room for another's late joins. It ignores Ctrl-C (the parent decides), dies
with its parent (PR_SET_PDEATHSIG, and EOF on the pipe), and stops at its own hard
deadline (the schedule's end plus the grace) whatever happens.
"""

from __future__ import annotations

import asyncio
import errno
import os
import random
import resource
import time
from array import array
from collections import Counter
from dataclasses import dataclass, field

from chaos import adapters
from chaos.adapters.base import StormClient
from chaos.audio import child
from chaos.audio.admission import Refused
from chaos.audio.leanws import HandshakeRefused, ProtocolFault
from chaos.audio.histogram import Histogram
from chaos.core.storm import StormOptions

DCS = ("dc-a", "dc-b", "dc-c")
PER_ATTEMPT_S = 3.0      # one request or handshake never waits longer (then the next gateway)
MIN_RETRY_S = 0.001      # an "immediate" retry still yields: a refused client cannot spin its worker
MAX_SAMPLES = 2_000_000  # per worker: 32 MB
MAX_ERRORS = 5


@dataclass(frozen=True)
class WorkerSpec:
    index: int
    workers: int
    offsets: bytes                      # array("d") of this worker's arrival offsets, sorted
    gateways: dict[str, tuple[str, ...]]  # home DC -> entry addresses (gateways), home first
    space: str                          # the room: a space id, a mount
    speaker_id: str | None              # space: None: a listener is joined when its socket is open
    options: StormOptions
    duration_s: float
    url_rewrite: tuple[tuple[str, str], ...] = ()   # (link address, edge address): edge_direct
    home_gateways: dict[str, int] = field(default_factory=dict)  # DC -> its own gateways (spread over)
    adapter: str = "space"              # the target's audio protocol: whose storm client

    def gateways_for(self, home_dc: str, i: int) -> tuple[str, ...]:
        """The gateways the i-th arrival tries: its DC's own in turn (a DC with several
        gateways behind one name spreads its listeners), then the other DCs'."""
        gws = self.gateways[home_dc]
        n = self.home_gateways.get(home_dc, 1)
        if n <= 1:
            return gws
        k = (i // max(len(self.gateways), 1)) % n
        return gws[k:n] + gws[:k] + gws[n:]

    def home_dc(self, i: int) -> str:
        """The home DC of this worker's i-th arrival: global index round-robin over the
        target's DCs (the keys of ``gateways``, in the target's order)."""
        dcs = tuple(self.gateways)
        return dcs[(self.index + i * self.workers) % len(dcs)]


class JoinFailed(Exception):
    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def _reason(e: BaseException, phase: str) -> str:
    if isinstance(e, (Refused, HandshakeRefused)):
        return f"refused:{e.error}"
    if isinstance(e, TimeoutError):
        return f"timeout:{phase}"
    if isinstance(e, ProtocolFault):
        return f"protocol:{phase}"
    if isinstance(e, OSError) and e.errno in (errno.EMFILE, errno.ENFILE):
        return "generator:too_many_open_files"
    if isinstance(e, OSError) and e.errno == errno.EADDRNOTAVAIL:
        return "generator:no_local_ports"
    if isinstance(e, OSError) and e.errno:
        return f"error:{phase}:{errno.errorcode.get(e.errno, e.errno)}"
    return f"error:{phase}:{type(e).__name__}"


class WorkerStorm:
    """The storm inside one process (one event loop)."""

    def __init__(self, spec: WorkerSpec, t0: float) -> None:
        self.spec, self.opt = spec, spec.options
        self.t0 = t0                                  # monotonic time of offset 0
        self.end = t0 + spec.duration_s
        self.hard_stop = self.end + self.opt.grace
        self.offsets = array("d")
        self.offsets.frombytes(spec.offsets)
        self.retry = self.opt.retry
        self.rng = random.Random()
        self.client: StormClient = adapters.get(spec.adapter).storm_client(spec)
        self.join = Histogram()
        self.rejoin = Histogram()
        self.lateness = Histogram()
        self.failures: Counter[str] = Counter()
        self.refusals: Counter[str] = Counter()
        self.reconnect_failures: Counter[str] = Counter()
        self.samples = array("d")
        self.errors: list[str] = []
        self.fired = self.joined = self.retries = self.retry_hints = 0
        self.reconnects = self.evicted = self.late_starts = 0
        self.in_flight = self.peak_in_flight = 0
        self.retry_hint_max_s = 0.0
        self.first_fire: float | None = None
        self.last_fire: float | None = None
        self.held: dict[object, str] = {}          # -> home DC; insertion order: oldest first
        self.leaving: set[object] = set()          # closed by us: not a reconnect
        self.held_max: dict[int, int] = {}             # second of the run -> most held in it
        self.pending: set[asyncio.Task] = set()        # arrivals not yet joined or failed
        self.tasks: set[asyncio.Task] = set()          # every task, rejoins too
        self.stopping = False

    # -- the schedule -------------------------------------------------------------------
    async def run(self, release: asyncio.Event, drained=lambda: None) -> dict:
        """The storm; calls drained() once every arrival is resolved and the schedule is
        over, then holds the audience until release is set (or the hard stop)."""
        loop = asyncio.get_running_loop()
        cpu0 = _cpu_s()
        self._release = release
        sched = asyncio.create_task(self._schedule())
        ticker = asyncio.create_task(self._tick())
        told = False
        try:
            async with asyncio.timeout_at(_loop_time(loop, self.hard_stop)):
                await sched
                # every arrival is fired: wait for joins in flight (each has its deadline)
                while self.pending:
                    await asyncio.sleep(0.05)
                await asyncio.sleep(max(0.0, self.end - time.monotonic()))  # the schedule's length
                drained()
                told = True
                await release.wait()
        except TimeoutError:
            pass
        finally:
            sched.cancel()
            ticker.cancel()
            self.stopping = True
        if not told:
            drained()
        unfired = len(self.offsets) - self.fired
        if unfired:
            self.failures["generator:not_fired"] += unfired
            self.join.record_failed(unfired)
        cut = [t for t in self.tasks if not t.done()]
        for t in cut:
            t.cancel()
        await asyncio.gather(*cut, return_exceptions=True)
        for sock in list(self.held):
            self._leave(sock)
        self.client.close()
        await asyncio.sleep(0.05)  # let the close frames go out
        return self._report(time.monotonic() - self.t0, _cpu_s() - cpu0)

    async def _schedule(self) -> None:
        """Fire the schedule. A release received before it is over can only be an early
        stop (the parent releases the workers only once every one of them has drained:
        ``run_storm(stop=...)``): no arrival is fired after it, the arrivals never fired are
        dropped from the schedule (not counted as failed), joins in flight finish within
        their join timeout, and the held audience leaves at once."""
        firing = asyncio.ensure_future(self._fire())
        stopping = asyncio.ensure_future(self._release.wait())
        try:
            await asyncio.wait({firing, stopping}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            stopping.cancel()
            if not firing.done():
                firing.cancel()
        try:
            await firing
            return
        except asyncio.CancelledError:
            if not self._release.is_set():
                raise  # cancelled from outside (the hard stop), not stopped
        # Every arrival task made before the cancel has run its first step by now (they were
        # queued first), so fired counts them all; the rest of the schedule is dropped.
        del self.offsets[self.fired:]
        self.end = time.monotonic()

    async def _fire(self) -> None:
        t0 = self.t0
        for i, off in enumerate(self.offsets):
            wait = t0 + off - time.monotonic()
            if wait > 0.0005:
                await asyncio.sleep(wait)
            task = asyncio.create_task(self._arrival(i, t0 + off))
            self.tasks.add(task)
            self.pending.add(task)
            task.add_done_callback(self._task_done)
            if i % 64 == 63:
                await asyncio.sleep(0)  # a burst must not starve the joins already in flight

    async def _tick(self) -> None:
        """The audience held in every second, also in seconds when nobody joins."""
        while True:
            self._note_held(time.monotonic())
            await asyncio.sleep(1.0 - ((time.monotonic() - self.t0) % 1.0) + 0.001)

    def _note_held(self, now: float) -> None:
        sec = int(now - self.t0)
        if sec >= 0:
            self.held_max[sec] = max(self.held_max.get(sec, 0), len(self.held))

    def _task_done(self, task: asyncio.Task) -> None:
        self.tasks.discard(task)
        self.pending.discard(task)

    async def _arrival(self, i: int, due: float) -> None:
        # counted here, not where the task is made: one cancelled before it ran was never fired
        self.fired += 1
        start = time.monotonic()
        lag = start - due
        self.lateness.record(max(0.0, lag))
        if lag * 1000 > self.opt.late_ms:
            self.late_starts += 1
        if self.first_fire is None:
            self.first_fire = start
        self.last_fire = start
        self.in_flight += 1
        self.peak_in_flight = max(self.peak_in_flight, self.in_flight)
        sock = None
        try:
            sock, done = await self._join(self.spec.home_dc(i), start + self.opt.join_timeout_s,
                                          self.spec.index + i * self.spec.workers)
        except JoinFailed as e:
            self.failures[e.reason] += 1
            self.join.record_failed()
            self._sample(start, float("inf"))
            return
        except asyncio.CancelledError:
            self.failures["cut_at_stop"] += 1
            self.join.record_failed()
            self._sample(start, float("inf"))
            raise
        finally:
            self.in_flight -= 1
        self.joined += 1
        self.join.record(done - start)
        self._sample(start, done - start)
        self._hold(sock, time.monotonic(), self.spec.home_dc(i))

    def _sample(self, start: float, value: float) -> None:
        if self.opt.keep_samples and len(self.samples) < 2 * MAX_SAMPLES:
            self.samples.append(start - self.t0)
            self.samples.append(value)

    # -- one join -----------------------------------------------------------------------
    async def _join(self, home_dc: str, deadline: float, turn: int = 0) -> tuple[object, float]:
        """An open connection that has heard audio, and the monotonic time it did."""
        gateways = self.spec.gateways_for(home_dc, turn)
        delays = self.retry.delays(self.rng)
        last = "timeout:join_request"
        attempts = 0
        while True:
            hint = 0.0
            for gw in gateways:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise JoinFailed(last)
                if attempts:
                    self.retries += 1
                attempts += 1
                phase = "join_request"
                budget = min(left, PER_ATTEMPT_S)
                try:
                    where = await self.client.request(gw, budget)
                    phase = "connect"
                    budget = max(0.001, min(deadline - time.monotonic(), PER_ATTEMPT_S))
                    sock = await self.client.connect(where, budget)
                except (Refused, HandshakeRefused) as e:
                    last = _reason(e, phase)
                    self.refusals[e.error] += 1
                    if e.retry_after_s is not None:
                        self.retry_hints += 1
                        self.retry_hint_max_s = max(self.retry_hint_max_s, e.retry_after_s)
                        hint = e.retry_after_s
                        break  # the stack asked us to wait: do, before the next gateway
                    continue
                except (OSError, TimeoutError, ProtocolFault) as e:
                    # an attempt the join's own deadline cut short says nothing new: the
                    # stack's last answer (a refusal) stays the reason the join failed
                    if not (isinstance(e, TimeoutError) and budget < PER_ATTEMPT_S
                            and last.startswith("refused:")):
                        last = _reason(e, phase)
                    self._error(gw, e)
                    continue
                if not self.client.hears_audio:
                    return sock, time.monotonic()
                try:
                    async with asyncio.timeout(max(0.0, deadline - time.monotonic())):
                        return sock, await sock.first_audio
                except TimeoutError:
                    sock.abort()
                    raise JoinFailed("no_audio") from None
                except (OSError, ProtocolFault) as e:   # the edge hung up before any audio
                    sock.abort()
                    last = _reason(e, "audio")
                    continue
                except BaseException:
                    sock.abort()
                    raise
            delay = next(delays, None)
            if delay is None:
                raise JoinFailed(last)  # the policy gave up
            wait = min(max(delay, hint, MIN_RETRY_S), deadline - time.monotonic())
            await asyncio.sleep(max(0.0, wait))

    def _error(self, gw: str, e: BaseException) -> None:
        if len(self.errors) < MAX_ERRORS:
            self.errors.append(f"{gw}: {type(e).__name__}: {e}"[:200])

    # -- holding --------------------------------------------------------------------------
    def _hold(self, sock, now: float, home_dc: str) -> None:
        hold = self.opt.hold_s
        if hold == 0 or self.stopping:
            self._leave(sock)
            return
        while len(self.held) >= self.opt.max_held_per_worker:
            self.evicted += 1
            self._leave(next(iter(self.held)))
        self.held[sock] = home_dc
        self._note_held(now)
        timer = None
        if hold is not None:
            loop = asyncio.get_running_loop()
            timer = loop.call_at(_loop_time(loop, now + hold), self._leave, sock)
        sock.closed.add_done_callback(lambda _f, s=sock, t=timer: self._closed(s, t))

    def _leave(self, sock) -> None:
        if self.held.pop(sock, None) is not None:
            self.leaving.add(sock)  # its close callback must not take it for a loss
        sock.close()

    def _closed(self, sock, timer: asyncio.TimerHandle | None) -> None:
        if timer is not None:
            timer.cancel()
        home_dc = self.held.pop(sock, None)
        if sock in self.leaving or home_dc is None:
            self.leaving.discard(sock)
            return
        if self.stopping:
            return
        self.reconnects += 1  # lost while held: come back, like an app would
        task = asyncio.create_task(self._rejoin(home_dc))
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    async def _rejoin(self, home_dc: str) -> None:
        start = time.monotonic()
        try:
            sock, done = await self._join(home_dc, start + self.opt.join_timeout_s)
        except JoinFailed as e:
            self.reconnect_failures[e.reason] += 1
            self.rejoin.record_failed()
            return
        except asyncio.CancelledError:
            self.reconnect_failures["cut_at_stop"] += 1
            self.rejoin.record_failed()
            raise
        self.rejoin.record(done - start)
        self._hold(sock, time.monotonic(), home_dc)

    # -- the report -------------------------------------------------------------------
    def _report(self, wall_s: float, cpu_s: float) -> dict:
        n = len(self.held_max) and max(self.held_max) + 1
        return {
            "index": self.spec.index, "pid": os.getpid(), "arrivals": len(self.offsets),
            "fired": self.fired, "joined": self.joined,
            "failures": dict(self.failures), "refusals": dict(self.refusals),
            "retries": self.retries, "retry_hints": self.retry_hints,
            "retry_hint_max_s": self.retry_hint_max_s,
            "reconnects": self.reconnects, "reconnect_failures": dict(self.reconnect_failures),
            "evicted": self.evicted, "late_starts": self.late_starts,
            "peak_in_flight": self.peak_in_flight,
            "held_by_s": [self.held_max.get(s, 0) for s in range(n)],
            "first_fire_s": None if self.first_fire is None else self.first_fire - self.t0,
            "last_fire_s": None if self.last_fire is None else self.last_fire - self.t0,
            "join": self.join.to_dict(), "rejoin": self.rejoin.to_dict(),
            "lateness": self.lateness.to_dict(), "samples": self.samples.tobytes(),
            "wall_s": wall_s, "cpu_s": cpu_s, "errors": self.errors,
        }


def _cpu_s() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def _loop_time(loop: asyncio.AbstractEventLoop, monotonic_s: float) -> float:
    """A time.monotonic() instant on the loop's clock (they are the same clock on Linux,
    but do not rely on it)."""
    return loop.time() + (monotonic_s - time.monotonic())


# -- the process ----------------------------------------------------------------------------

def _renice(change: int) -> None:
    os.nice(change)
    autogroup = "/proc/self/autogroup"  # with autogroups, nice only ranks within the group
    if os.path.exists(autogroup):
        with open(autogroup, "w") as f:
            f.write(str(change))


async def _serve(spec: WorkerSpec, start_wall: float, conn) -> dict:
    loop = asyncio.get_running_loop()
    release = asyncio.Event()
    child.on_parent(conn, "release", release)
    t0 = time.monotonic() + (start_wall - time.time())
    storm = WorkerStorm(spec, t0)
    if spec.options.worker_nice:
        try:
            _renice(spec.options.worker_nice)
        except OSError as e:
            storm.errors.append(f"worker_nice {spec.options.worker_nice} ignored: {e}")
    try:
        return await storm.run(release, lambda: conn.send(("drained",)))
    finally:
        loop.remove_reader(conn.fileno())


def main(spec: WorkerSpec, conn) -> None:
    """The worker process's entry point."""
    child.run(conn, lambda start: conn.send(("report", asyncio.run(_serve(spec, start[1], conn)))))
