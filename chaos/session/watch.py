"""A probe process watching itself: each second, its event loop's worst lag, its CPU and
its memory; and, from every probe process's record, the seconds in which the measuring
side (not the stack) was the limit.

A listener stamps a frame when its event loop gets to it. When the loop is late by L ms,
every frame in that second looks L ms later than it was: a probe that cannot keep up
makes a healthy stack look slow. ``ProbeHealth`` tells the judging which seconds to set
aside, per SLI (``TOLERATED_LAG_MS``): the same rule as the load generator's, a tool that
could not keep up never passes or fails the stack.

Nothing here knows the stack under test: any adapter's probe processes use it.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import resource
import time
from array import array
from collections.abc import Iterable
from dataclasses import dataclass, field

from chaos.core.slo import Saturation

TICK_S = 0.05                 # the watch wakes this often; a late wake-up is the loop's lag
# How late the measuring loop may be in a second before an SLI's samples in it are not
# trusted: about a tenth of what the default objective tolerates (a p95 <= 400 ms
# mouth_to_ear cannot be told from 40 ms of probe lag added to it; a 200 ms freeze from
# 100 ms of it; a 2 s join from 200 ms).
TOLERATED_LAG_MS: dict[str, float] = {
    "join_time": 200.0, "audio_delivered": 100.0, "mouth_to_ear": 40.0, "freeze": 100.0,
    "silence": 200.0, "echo": 200.0, "mos": 100.0, "audience_retained": 1000.0,
}
MARGIN_S = 1.0                # samples are stamped at capture: a lagged second taints the one before
_PAGE = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096


def _cpu_s() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def rss_mb() -> float:
    """This process's resident memory, MB (Linux /proc; else the peak from getrusage)."""
    try:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * _PAGE / 1e6
    except OSError:
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e3


@dataclass
class ProcessHealth:
    """One probe process, one entry per second since the run's epoch (``first_s`` on)."""
    label: str
    pid: int
    first_s: int = 0
    lag_ms: array = field(default_factory=lambda: array("f"))
    cpu_pct: array = field(default_factory=lambda: array("f"))
    rss_mb: array = field(default_factory=lambda: array("f"))
    slis: frozenset[str] | None = None       # the SLIs it measures; None: every one
    rss_mb_final: float | None = None        # at the watch's stop, once the work is done

    def measures(self, sli: str) -> bool:
        return self.slis is None or sli in self.slis

    def to_dict(self) -> dict:
        return {"label": self.label, "pid": self.pid, "first_s": self.first_s,
                "lag_ms": [round(x, 1) for x in self.lag_ms],
                "cpu_pct": [round(x, 1) for x in self.cpu_pct],
                "rss_mb": [round(x, 1) for x in self.rss_mb],
                "slis": None if self.slis is None else sorted(self.slis),
                "rss_mb_final": self.rss_mb_final}

    @classmethod
    def from_dict(cls, d: dict) -> ProcessHealth:
        return cls(d["label"], int(d["pid"]), int(d["first_s"]), array("f", d["lag_ms"]),
                   array("f", d["cpu_pct"]), array("f", d["rss_mb"]),
                   None if d.get("slis") is None else frozenset(d["slis"]), d.get("rss_mb_final"))

    def summary(self) -> dict:
        """Worst lag and CPU, memory after the first minute and at the end."""
        n = len(self.lag_ms)
        if not n:
            return {"label": self.label, "pid": self.pid, "seconds": 0}
        minute = min(n - 1, 60)
        worst = max(range(n), key=lambda i: self.lag_ms[i])
        return {"label": self.label, "pid": self.pid, "seconds": n,
                "lag_ms_max": round(self.lag_ms[worst], 1), "lag_ms_max_at_s": self.first_s + worst,
                "lag_ms_p95": round(sorted(self.lag_ms)[max(0, int(0.95 * n) - 1)], 1),
                "cpu_pct_mean": round(sum(self.cpu_pct) / n, 1),
                "cpu_pct_max": round(max(self.cpu_pct), 1),
                "rss_mb_start": round(self.rss_mb[0], 1),
                "rss_mb_at_1min": round(self.rss_mb[minute], 1),
                "rss_mb_max_after_1min": round(max(self.rss_mb[minute:]), 1),
                "rss_mb_end": round(self.rss_mb[-1] if self.rss_mb_final is None
                                    else self.rss_mb_final, 1)}


class LoopWatch:
    """Samples the running loop's lag, the process's CPU and memory, once a second.

    ``start()`` in the loop to watch; ``stop()`` (or cancel) at the end; ``health`` holds
    the seconds so far (bounded: three floats a second)."""

    def __init__(self, epoch_ns: int, label: str, slis: Iterable[str] | None = None) -> None:
        self.epoch_ns = epoch_ns
        self.health = ProcessHealth(label, os.getpid(),
                                    slis=None if slis is None else frozenset(slis))
        self._task: asyncio.Task | None = None

    def start(self) -> LoopWatch:
        self._task = asyncio.get_running_loop().create_task(self._run())
        return self

    async def stop(self) -> ProcessHealth:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
            self.health.rss_mb_final = rss_mb()
        return self.health

    def _second(self) -> int:
        return int((time.time_ns() - self.epoch_ns) // 1_000_000_000)

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        h = self.health
        sec = self._second()
        h.first_s = sec
        worst = 0.0
        cpu0, wall0 = _cpu_s(), time.monotonic()
        while True:
            due = loop.time() + TICK_S
            await asyncio.sleep(TICK_S)
            lag = (loop.time() - due) * 1000
            worst = max(worst, lag)
            now = self._second()
            if now == sec:
                continue
            cpu, wall = _cpu_s(), time.monotonic()
            pct = 100 * (cpu - cpu0) / max(wall - wall0, 1e-6)
            mem = rss_mb()
            # a stall counts in every second it overlapped: those it began in or slept
            # through, and the one it ended in (where this wake-up is)
            for _ in range(sec, now):
                h.lag_ms.append(worst)
                h.cpu_pct.append(pct)
                h.rss_mb.append(mem)
            sec, worst, cpu0, wall0 = now, lag, cpu, wall


@dataclass
class ProbeHealth(Saturation):
    """Every probe process's seconds; what judging sets aside (``chaos.core.slo.Saturation``)."""
    processes: list[ProcessHealth] = field(default_factory=list)
    tolerated_lag_ms: dict[str, float] = field(default_factory=lambda: dict(TOLERATED_LAG_MS))

    def _lagged(self, sli: str, start_s: float, end_s: float):
        """(second, lag ms, CPU %, process) of every second past the SLI's tolerance."""
        limit = self.tolerated_lag_ms.get(sli)
        if limit is None:
            return []
        out = []
        for p in self.processes:
            if not p.measures(sli):
                continue
            for i, lag in enumerate(p.lag_ms):
                s = p.first_s + i
                if lag > limit and s + 1 > start_s - MARGIN_S and s < end_s:
                    out.append((s, lag, p.cpu_pct[i], p))
        return out

    def blind(self, sli: str, start_s: float, end_s: float) -> list[tuple[float, float]]:
        spans: list[list[float]] = []
        for s in sorted({s for s, *_ in self._lagged(sli, start_s, end_s)}):
            lo, hi = max(start_s, s - MARGIN_S), min(end_s, s + 1.0)
            if hi <= lo:
                continue
            if spans and lo <= spans[-1][1]:
                spans[-1][1] = max(spans[-1][1], hi)
            else:
                spans.append([lo, hi])
        return [(lo, hi) for lo, hi in spans]

    def describe(self, sli: str, start_s: float, end_s: float) -> str:
        lagged = self._lagged(sli, start_s, end_s)
        if not lagged:
            return ""
        s, lag, cpu, p = max(lagged, key=lambda x: x[1])
        aside = sum(hi - lo for lo, hi in self.blind(sli, start_s, end_s))
        return (f"the probe, not the stack, was saturated: lag {lag:.0f} ms, CPU {cpu:.0f} % "
                f"({p.label} at t={s} s; {len({x[0] for x in lagged})} s over the "
                f"{self.tolerated_lag_ms[sli]:g} ms {sli} tolerates, {aside:g} s of samples set aside)")

    def saturated_seconds(self) -> list[dict]:
        """Every second in which some process lagged past the least tolerant SLI's limit."""
        limit = min(self.tolerated_lag_ms.values())
        return [{"t_s": p.first_s + i, "process": p.label, "lag_ms": round(lag, 1),
                 "cpu_pct": round(p.cpu_pct[i], 1)}
                for p in self.processes for i, lag in enumerate(p.lag_ms) if lag > limit]

    def to_dict(self) -> dict:
        return {"tolerated_lag_ms": self.tolerated_lag_ms,
                "processes": [p.summary() for p in self.processes],
                "saturated_s": self.saturated_seconds()[:200]}
