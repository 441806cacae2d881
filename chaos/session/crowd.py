"""A probe's thin listeners, spread over processes (chaos.session.crowd_worker), as the
load generator spreads its storm: one event loop cannot hold a thousand real-rate
listeners beside the stack on a small machine, and a loop that falls behind makes a
healthy stack look slow.

``Crowd`` starts the processes, merges what they stream each second (per-second bins per
home DC, join states, each process's lag, CPU and memory) into the run's live view, and
at the end gathers every listener's record. Each process makes its listeners through the
target's audio adapter. ``LocalCrowd`` is the same view over listeners in this process,
for an adapter whose listeners need something only this process has (the speaker's own
capture times, for a stream that does not carry them: ``crowd_in_processes`` False).
"""

from __future__ import annotations

import asyncio
import math
import multiprocessing
import os
import time

from chaos.core.errors import ProbeError
from chaos.audio.child import reap_workers, signal_workers
from chaos.load.generator import POLL_S, READY_TIMEOUT_S
from chaos.session import crowd_worker
from chaos.audio.sli import PLAYOUT_DEADLINE_S
from chaos.audio.reception import SecondBins
from chaos.audio.record import ListenerRecord
from chaos.session.watch import ProcessHealth

LISTENERS_PER_PROCESS = 300       # about a third of what one process holds at real rate
DONE_TIMEOUT_S = 30.0


def processes_for(listeners: int) -> int:
    """Enough processes that each holds at most LISTENERS_PER_PROCESS listeners, at most
    one per core (more only share the same cores)."""
    return max(1, min(os.cpu_count() or 1, math.ceil(listeners / LISTENERS_PER_PROCESS)))


class Crowd:
    """``listeners``: (index, home DC) of each, listening in ``target``'s room ``space`` to
    ``speaker``."""

    def __init__(self, listeners: list[tuple[int, str]], target, space: str, speaker, retry,
                 join_timeout_s: float, epoch_ns: int, seconds: float,
                 processes: int | None = None) -> None:
        k = processes or processes_for(len(listeners))
        self.specs = [crowd_worker.CrowdSpec(
            i, tuple(listeners[i::k]), target.to_dict(), space, speaker.id, retry,
            join_timeout_s, epoch_ns, hard_stop_s=seconds + join_timeout_s + 120.0)
            for i in range(k)] if listeners else []
        self.records: dict[int, ListenerRecord] = {i: ListenerRecord(i, dc) for i, dc in listeners}
        self.bins = {dc: SecondBins(epoch_ns, PLAYOUT_DEADLINE_S) for dc in target.dcs}
        self.health = [ProcessHealth(f"listeners-{s.index}", 0, slis=frozenset(crowd_worker.THIN_SLIS))
                       for s in self.specs]
        self.procs: list = []
        self.conns: list = []
        self.sent_upto = [0] * len(self.specs)   # per process: seconds [0, this) merged here
        self._done: dict[int, bool] = {}
        self._reader: asyncio.Task | None = None

    async def start(self, session=None) -> None:
        ctx = multiprocessing.get_context("spawn")
        try:
            for spec in self.specs:
                parent_end, child_end = ctx.Pipe(duplex=True)
                p = ctx.Process(target=crowd_worker.main, args=(spec, child_end),
                                name=f"chaos-listeners-{spec.index}", daemon=True)
                p.start()
                child_end.close()
                self.procs.append(p)
                self.conns.append(parent_end)
            deadline = time.monotonic() + READY_TIMEOUT_S
            ready: set[int] = set()
            while len(ready) < len(self.conns):
                for i, c in enumerate(self.conns):
                    if i not in ready and c.poll():
                        msg = self._recv(i)
                        if msg[0] == "ready":
                            self.health[i].pid = msg[1]
                            ready.add(i)
                if time.monotonic() > deadline:
                    raise ProbeError(f"{len(self.conns) - len(ready)} listener processes were "
                                     f"not ready within {READY_TIMEOUT_S:g} s")
                await asyncio.sleep(POLL_S)
            for c in self.conns:
                c.send(("start",))
        except BaseException:
            signal_workers(self.procs, "terminate")
            await reap_workers(self.procs)
            raise
        self._reader = asyncio.create_task(self._read())

    def _recv(self, i: int):
        try:
            msg = self.conns[i].recv()
        except EOFError:
            self.procs[i].join(1.0)
            raise ProbeError(f"listener process {i} (pid {self.procs[i].pid}) exited with code "
                             f"{self.procs[i].exitcode}; see its stderr") from None
        if msg[0] == "error":
            raise ProbeError(f"listener process {i} failed:\n{msg[1]}")
        return msg

    async def _read(self) -> None:
        """Merge what the processes stream, until each has sent its last word."""
        while len(self._done) < len(self.conns):
            for i, c in enumerate(self.conns):
                while i not in self._done and c.poll():
                    self._take(i, self._recv(i))
                if i not in self._done and not self.procs[i].is_alive() and not c.poll():
                    raise ProbeError(f"listener process {i} (pid {self.procs[i].pid}) died "
                                     f"with code {self.procs[i].exitcode}")
            await asyncio.sleep(POLL_S)

    def _take(self, i: int, msg) -> None:
        if msg[0] == "tick":
            _, deltas, changed, (first_s, lag, cpu, rss) = msg
            for dc, d in deltas.items():
                self.bins[dc].merge_delta(d)
                self.sent_upto[i] = max(self.sent_upto[i], d["base"] + len(d["received"]) // 4)
            for idx, started, join_s, err, joined, edge, dc, reconnects in changed:
                r = self.records[idx]
                r.started_ns, r.join_s, r.join_error, r.joined_ns = started, join_s, err, joined
                r.edge, r.dc, r.reconnects = edge, dc, reconnects
            h = self.health[i]
            if not len(h.lag_ms):
                h.first_s = first_s
            h.lag_ms.extend(lag)
            h.cpu_pct.extend(cpu)
            h.rss_mb.extend(rss)
        elif msg[0] == "done":
            _, deltas, summaries, health = msg
            for dc, d in deltas.items():
                self.bins[dc].merge_delta(d)
            for s in summaries:
                self.records[s["index"]] = ListenerRecord.from_summary(s)
            self.health[i] = ProcessHealth.from_dict(health)
            self._done[i] = True

    async def stop(self) -> None:
        """Stop listening; gather every record and the last bins. Always reaps."""
        try:
            for c in self.conns:
                try:
                    c.send(("stop",))
                except OSError:
                    pass
            if self._reader is not None:
                await asyncio.wait_for(self._reader, DONE_TIMEOUT_S)
        except TimeoutError:
            raise ProbeError(f"{len(self.conns) - len(self._done)} listener processes sent no "
                             f"result within {DONE_TIMEOUT_S:g} s of the stop") from None
        finally:
            if self._reader is not None and not self._reader.done():
                self._reader.cancel()
            await reap_workers(self.procs)
            for c in self.conns:
                c.close()

    @property
    def closed_s(self) -> float:
        """Seconds before this are merged from every process (a live view must stop there:
        a second only some processes have sent would read as frames not delivered)."""
        return float(min(self.sent_upto)) if self.sent_upto else float("inf")

    def failed(self) -> BaseException | None:
        """The reader's error, if the processes' stream broke during the run."""
        if self._reader is not None and self._reader.done() and not self._reader.cancelled():
            return self._reader.exception()
        return None

    def list(self) -> list[ListenerRecord]:
        return [self.records[i] for i in sorted(self.records)]


class LocalCrowd:
    """The same view as ``Crowd`` over listeners that run in this process's event loop."""

    def __init__(self, listeners: list[tuple[int, str]], target, space: str, speaker, retry,
                 join_timeout_s: float, epoch_ns: int, seconds: float,
                 processes: int | None = None) -> None:
        self.listeners_at, self.target, self.space, self.speaker = listeners, target, space, speaker
        self.retry, self.join_timeout_s = retry, join_timeout_s
        self.bins = {dc: SecondBins(epoch_ns, PLAYOUT_DEADLINE_S) for dc in target.dcs}
        self.health: list[ProcessHealth] = []      # this process's own watch covers them
        self.listeners: list = []
        self._stop = asyncio.Event()
        self._tasks: list[asyncio.Task] = []

    async def start(self, session) -> None:
        from chaos import adapters
        adapter = adapters.get(self.target.adapter)
        self.listeners = [adapter.new_listener(session, i, dc, self.target, self.space,
                                               self.speaker.id, self.retry, self.join_timeout_s,
                                               bins=self.bins[dc])
                          for i, dc in self.listeners_at]
        self._tasks = [asyncio.create_task(lst.run(self._stop)) for lst in self.listeners]

    async def stop(self) -> None:
        self._stop.set()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    closed_s = float("inf")     # the bins are filled here, as frames arrive

    def failed(self) -> BaseException | None:
        return None

    def list(self) -> list[ListenerRecord]:
        return [lst.rec for lst in self.listeners]
