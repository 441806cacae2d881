"""The coordinator: one set of results from many shards.

A ShardPool listens for the shards and keeps their connections for a run (one storm at a
time). For each storm a Coordinator measures each live shard's clock offset (NTP-style
pings, the sample with the shortest round trip), agrees a T0 with all of them before any
arrival (sent to each on its own clock), then merges their per-second snapshots
(HdrHistograms and counters), judges the join-time objective over the whole audience once
a second, and on a breach halts every shard at once. A shard whose connection ends
before its final report, or that is silent for ``silence_s``, is dead: a recorded event
with the share of the audience it carried and what of it was never resolved, never a
silent loss.
"""

from __future__ import annotations

import asyncio
import base64
import time
from dataclasses import dataclass, field

import numpy as np

from chaos.core.errors import ConfigError, ProbeError
from chaos.core.arrivals import INCIDENT_JOINS_PER_S
from chaos.load.result import INCIDENT_AUDIENCE, ScaleFactor
from chaos.scale import wire
from chaos.audio.histogram import Histogram
from chaos.scale.plan import StormPlan
from chaos.scale.shard import segment_sizes

PINGS = 5
LEAD_S = 0.5            # T0 is this far after the start messages go out (remote shards;
                        # a start that comes later only makes the first arrivals late starts)
LOCAL_LEAD_S = 0.3      # shards on this machine
SLACK_S = 10.0          # past the shards' own hard stop


@dataclass(frozen=True)
class JoinObjective:
    """Halt when the join time's quantile over the whole audience, over the last
    window_s seconds, exceeds threshold_s (judged once at least min_joins are in it)."""
    threshold_s: float
    quantile: float = 0.95
    window_s: int = 10
    min_joins: int = 50

    def __post_init__(self) -> None:
        if not (isinstance(self.threshold_s, (int, float)) and self.threshold_s > 0):
            raise ConfigError(f"threshold_s must be more than 0 s, got {self.threshold_s!r}")
        if not 0 < self.quantile <= 1:
            raise ConfigError(f"quantile must be in (0, 1], e.g. 0.95, got {self.quantile!r}")


@dataclass
class ShardState:
    index: int
    arrivals: int
    host: str = ""
    pid: int = 0
    offset_s: float | None = None      # shard clock - coordinator clock
    rtt_s: float | None = None
    fired: int = 0
    joined: int = 0
    failed: int = 0
    late: int = 0
    drained: bool = False
    final: dict | None = None
    dead_at_s: float | None = None
    halted_at_s: float | None = None   # on the coordinator's clock, since T0
    last_seen: float = 0.0
    samples: np.ndarray | None = field(default=None, repr=False)   # from the final report
    writer: asyncio.StreamWriter | None = field(default=None, repr=False)
    pongs: asyncio.Queue = field(default_factory=asyncio.Queue, repr=False)

    @property
    def resolved(self) -> int:
        return self.joined + self.failed


@dataclass(frozen=True)
class ScaledResult:
    engine: str
    shards: int
    arrivals: int                      # due: the schedule's, or up to a halt
    fired: int
    joined: int
    failed: int
    late_starts: int
    rate_requested_per_s: float
    achieved_rate_per_s: float
    scheduled_s: float
    join: dict                         # the merged HdrHistogram's summary
    per_shard: tuple[dict, ...]
    dead: tuple[dict, ...]             # {index, at_s, share, arrivals, resolved, lost}
    halt: dict | None                  # {reason, at_s, stopped_within_s}
    objective: dict | None             # {quantile, threshold_s, value_s, verdict}
    rate_by_s: tuple[int, ...]         # arrivals fired in each second, all shards
    scale_factor: ScaleFactor
    peak_concurrent: int = 0
    scheduled_arrivals: int = 0        # the whole schedule's
    started_ns: int = 0                # T0 on the coordinator's clock
    merged: Histogram = field(repr=False, compare=False, default_factory=Histogram)
    by_s: dict = field(repr=False, compare=False, default_factory=dict)
    samples: np.ndarray = field(repr=False, compare=False, default_factory=lambda: np.empty((0, 2)))

    def join_samples(self, t0_ns: int | None = None):
        """(request time since t0_ns, join time or +inf) per join, sorted: the shards' own
        samples; a dead shard's joins from its per-second histograms (1 s, 0.1 %)."""
        shift = 0.0 if t0_ns is None else (self.started_ns - t0_ns) / 1e9
        if len(self.samples) and not self.dead:
            order = np.argsort(self.samples[:, 0], kind="stable")
            return self.samples[order, 0] + shift, self.samples[order, 1]
        t, v = [], []
        for sec in sorted(self.by_s):
            for value, n in self.by_s[sec].values_s():
                t += [sec + 0.5 + shift] * n
                v += [value] * n
        return np.array(t, dtype=float), np.array(v, dtype=float)

    @property
    def accounted(self) -> bool:
        """Every arrival of a live shard joined or failed; a dead shard's are in dead."""
        lost = sum(d["lost"] for d in self.dead)
        return self.joined + self.failed + lost == self.arrivals

    def histogram_of_samples(self) -> Histogram:
        """One histogram of every join the shards sampled (a check on the merge)."""
        h = Histogram()
        for v in self.samples[:, 1]:
            h.record(float(v))
        return h

    def describe(self) -> str:
        lines = [f"{self.engine} engine, {self.shards} shards: {self.fired:,} of {self.arrivals:,} "
                 f"arrivals fired at {self.achieved_rate_per_s:,.1f} joins/s (requested "
                 f"{self.rate_requested_per_s:,.1f}); {self.joined:,} joined, {self.failed:,} failed",
                 f"scale: {self.scale_factor.describe()}"]
        j = self.join
        if j["count"]:
            lines.append(f"join time p50 {j['p50_s']:.3f} s, p95 {j['p95_s']:.3f} s, "
                         f"p99 {j['p99_s']:.3f} s (all shards merged)")
        for d in self.dead:
            lines.append(f"shard {d['index']} died at {d['at_s']:.1f} s: it carried "
                         f"{d['share']:.1%} of the audience ({d['arrivals']:,} arrivals); "
                         f"{d['lost']:,} of them never resolved")
        if self.halt:
            lines.append(f"halted at {self.halt['at_s']:.2f} s ({self.halt['reason']}); every "
                         f"shard stopped firing within {self.halt['stopped_within_s']:.3f} s")
        return "\n".join(lines)

    def to_dict(self) -> dict:
        d = {k: getattr(self, k) for k in self.__dataclass_fields__ if k not in ("merged", "by_s", "samples")}
        d["scale_factor"] = self.scale_factor.to_dict()
        d["per_shard"], d["dead"], d["rate_by_s"] = list(self.per_shard), list(self.dead), \
            list(self.rate_by_s)
        return d


@dataclass
class Conn:
    """One shard's connection to the pool, alive across storms."""
    index: int
    writer: asyncio.StreamWriter = field(repr=False)
    host: str = ""
    pid: int = 0
    alive: bool = True
    pongs: asyncio.Queue = field(default_factory=asyncio.Queue, repr=False)


class ShardPool:
    """The shards of one engine, connected to this process: started once (a probe run's
    or a single storm's), then given one storm at a time, so that their start-up is not
    paid inside a storm's window. A shard that dies stays dead for the storms after."""

    def __init__(self, count: int, *, engine: str = "local", host: str = "127.0.0.1",
                 port: int = 0, advertise: str | None = None,
                 connect_timeout_s: float = 60.0) -> None:
        self.count, self.engine = count, engine
        self.host, self.port, self.advertise = host, port, advertise
        self.connect_timeout_s = connect_timeout_s
        self.conns: dict[int, Conn] = {}
        self.storm: Coordinator | None = None
        self._server: asyncio.base_events.Server | None = None

    async def serve(self) -> str:
        """Start listening; returns the sink address (host:port) shards send to."""
        self._server = await asyncio.start_server(self._handle, self.host, self.port,
                                                  limit=wire.MAX_LINE)
        self.port = self._server.sockets[0].getsockname()[1]
        return self.advertise or f"{self.host}:{self.port}"

    async def connected(self, check_engine=None) -> None:
        end = time.monotonic() + self.connect_timeout_s
        while len(self.conns) < self.count:
            if check_engine is not None:
                check_engine()
            if time.monotonic() > end:
                missing = [i for i in range(self.count) if i not in self.conns]
                raise ProbeError(f"{len(missing)} of {self.count} shards never connected to the "
                                 f"coordinator at {self.host}:{self.port} in "
                                 f"{self.connect_timeout_s:g} s (missing: {missing[:10]}); can "
                                 "the shards reach that address?")
            await asyncio.sleep(0.05)

    async def close(self) -> None:
        """The shards exit when their connection ends."""
        if self._server is not None:
            self._server.close()
        for c in self.conns.values():
            c.writer.close()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        hello = await wire.recv(reader)
        if not hello or hello.get("kind") != "hello" or hello.get("count") != self.count \
                or not 0 <= int(hello.get("index", -1)) < self.count \
                or hello["index"] in self.conns:
            writer.close()  # a stray or duplicate shard: not part of this run
            return
        c = Conn(hello["index"], writer, hello.get("host", ""), hello.get("pid", 0))
        self.conns[c.index] = c
        try:
            while (msg := await wire.recv(reader)) is not None:
                storm = self.storm
                if msg["kind"] == "pong":
                    c.pongs.put_nowait((msg, time.time()))
                elif storm is not None:
                    st = storm.state[c.index]
                    st.last_seen = time.monotonic()
                    storm._on(st, msg)
        except (ConnectionError, ValueError):
            pass
        finally:
            c.alive = False
            storm = self.storm
            if storm is not None:
                st = storm.state[c.index]
                if st.final is None and st.dead_at_s is None:
                    storm._dead(st)
                storm._changed.set()


class Coordinator:
    """One storm over a pool's shards."""

    def __init__(self, plan: StormPlan, pool: ShardPool, *,
                 objective: JoinObjective | None = None, silence_s: float = 10.0) -> None:
        self.plan, self.pool, self.count, self.engine = plan, pool, pool.count, pool.engine
        self.objective = objective
        self.silence_s = silence_s
        self.lead_s = LOCAL_LEAD_S if self.engine == "local" else LEAD_S
        sizes = segment_sizes(len(plan.schedule.offsets_array()), self.count)
        self.state = {i: ShardState(i, n) for i, n in enumerate(sizes)}
        self.total = sum(sizes)
        self.by_s: dict[int, Histogram] = {}
        self.fired_by_s: dict[int, int] = {}
        self.reported_by_s: dict[int, int] = {}
        self.merged = Histogram()
        self.t0_wall: float | None = None
        self.halt: dict | None = None
        self.judged: dict | None = None
        self._changed = asyncio.Event()

    def _on(self, s: ShardState, msg: dict) -> None:
        kind = msg["kind"]
        if kind == "snap":
            part = Histogram.from_dict(msg["join"])
            sec = int(msg["sec"])
            self.by_s.setdefault(sec, Histogram()).merge(part)
            self.merged.merge(part)
            self.fired_by_s[sec] = self.fired_by_s.get(sec, 0) + msg["fired"]
            self.reported_by_s[sec] = self.reported_by_s.get(sec, 0) + 1
            s.fired += msg["fired"]
            s.joined += msg["joined"]
            s.failed += msg["failed"]
            s.late += msg["late"]
            live = sum(x.dead_at_s is None for x in self.state.values())
            if self.reported_by_s[sec] >= live:
                self._judge(sec)   # once a second, when every live shard has reported it
        elif kind == "drained":
            s.drained = True
        elif kind == "halted":
            s.halted_at_s = msg["shard_wall"] - (s.offset_s or 0.0) - self.t0_wall
        elif kind == "final":
            s.final = msg["report"]
            raw = base64.b64decode(s.final.pop("samples", "") or b"")
            s.samples = np.frombuffer(raw, dtype=float).reshape(-1, 2)
        self._changed.set()

    def _dead(self, s: ShardState) -> None:
        s.dead_at_s = time.time() - (self.t0_wall or time.time())
        if s.writer is not None:
            s.writer.close()

    # -- judging and halting ------------------------------------------------------------
    def _judge(self, sec: int) -> None:
        o = self.objective
        if o is None or self.halt is not None:
            return
        window = Histogram.merged(h for t, h in self.by_s.items() if sec - o.window_s < t <= sec)
        if window.total < o.min_joins:
            return
        value = window.quantile(o.quantile)
        if value is not None and value > o.threshold_s:
            self.judged = {"quantile": o.quantile, "threshold_s": o.threshold_s,
                           "value_s": value, "verdict": "failed", "at_s": sec + 1}
            asyncio.ensure_future(self.halt_all(f"join time p{o.quantile * 100:g} {value:.3f} s "
                                                f"> {o.threshold_s:g} s over the whole audience"))

    async def halt_all(self, reason: str) -> None:
        """Tell every live shard to stop firing now."""
        if self.halt is not None:
            return
        self.halt = {"reason": reason, "at_s": time.time() - self.t0_wall}
        await self._broadcast("halt")

    async def _broadcast(self, kind: str) -> None:
        for s in self.state.values():
            if s.writer is not None and s.dead_at_s is None and not s.writer.is_closing():
                try:
                    await wire.send(s.writer, kind)
                except ConnectionError:
                    self._dead(s)

    # -- the run --------------------------------------------------------------------------
    async def run(self) -> ScaledResult:
        """Agree T0 with the pool's live shards, collect until every shard is final or dead.
        A shard dead before the storm carries its share into the result's dead list."""
        if self.pool.storm is not None:
            raise ProbeError("a shard pool runs one storm at a time; this one is busy")
        self.pool.storm = self
        try:
            return await self._run()
        finally:
            self.pool.storm = None

    async def _run(self) -> ScaledResult:
        now = time.monotonic()
        for i, s in self.state.items():
            c = self.pool.conns.get(i)
            if c is None or not c.alive:
                s.dead_at_s = 0.0
            else:
                s.writer, s.host, s.pid, s.last_seen, s.pongs = c.writer, c.host, c.pid, now, c.pongs
        live = [s for s in self.state.values() if s.dead_at_s is None]
        if not live:
            raise ProbeError(f"every one of the {self.count} shards is dead: nothing can fire")
        await asyncio.gather(*(self._clock(s) for s in live))
        self.t0_wall = time.time() + self.lead_s
        for s in live:
            await wire.send(s.writer, "start", t0_wall=self.t0_wall + s.offset_s,
                            plan=self.plan.to_json())
        opts = self.plan.options
        deadline = time.monotonic() + self.lead_s + self.plan.schedule.duration_s + opts.grace + SLACK_S
        released = False
        while time.monotonic() < deadline:
            live = [s for s in self.state.values() if s.dead_at_s is None]
            now = time.monotonic()
            for s in live:
                if s.final is None and now - s.last_seen > self.silence_s:
                    self._dead(s)
            if all(s.final is not None or s.dead_at_s is not None for s in self.state.values()):
                break
            if not released and all(s.drained or s.dead_at_s is not None for s in live):
                released = True   # every shard's audience stays until all have drained
                await self._broadcast("release")
            self._changed.clear()
            try:
                await asyncio.wait_for(self._changed.wait(), 0.25)
            except TimeoutError:
                pass
        return self.result()

    async def _clock(self, s: ShardState) -> None:
        """The shard's clock offset from the round trip with the least delay."""
        best = None
        for _ in range(PINGS):
            t_send = time.time()
            await wire.send(s.writer, "ping", t=t_send)
            msg, t_recv = await asyncio.wait_for(s.pongs.get(), self.silence_s)
            rtt = t_recv - t_send
            offset = msg["shard_wall"] - (t_send + t_recv) / 2
            if best is None or rtt < best[0]:
                best = (rtt, offset)
        s.rtt_s, s.offset_s = best

    # -- the result -----------------------------------------------------------------------
    def result(self) -> ScaledResult:
        sched = self.plan.schedule
        dead = []
        for s in self.state.values():
            if s.dead_at_s is not None:
                dead.append({"index": s.index, "at_s": round(s.dead_at_s, 3),
                             "share": s.arrivals / self.total if self.total else 0.0,
                             "arrivals": s.arrivals, "resolved": s.resolved,
                             "lost": s.arrivals - s.resolved, "host": s.host})
        fired = sum(s.fired for s in self.state.values())
        firsts = [s.final["first_fire_s"] for s in self.state.values()
                  if s.final and s.final.get("first_fire_s") is not None]
        lasts = [s.final["last_fire_s"] for s in self.state.values()
                 if s.final and s.final.get("last_fire_s") is not None]
        scheduled_s = sched.duration_s
        if self.halt is not None and self.halt["at_s"] < sched.duration_s:
            scheduled_s = max(self.halt["at_s"], 1e-3)
        span = (max([scheduled_s] + lasts) - min([0.0] + firsts)) if firsts else scheduled_s
        achieved = fired / span if span > 0 else 0.0
        halt = None
        if self.halt is not None:
            stops = [s.halted_at_s for s in self.state.values()
                     if s.halted_at_s is not None and s.dead_at_s is None]
            halt = {**self.halt, "stopped_within_s": (max(stops) - self.halt["at_s"]) if stops
                    else None, "shards_stopped": len(stops)}
        objective = self.judged
        if objective is None and self.objective is not None:
            v = self.merged.quantile(self.objective.quantile)
            objective = {"quantile": self.objective.quantile,
                         "threshold_s": self.objective.threshold_s, "value_s": v,
                         "verdict": "inconclusive" if v is None else
                         ("passed" if v <= self.objective.threshold_s else "failed")}
        per_shard = tuple({"index": s.index, "host": s.host, "pid": s.pid,
                           "arrivals": s.final["arrivals"] if s.final and s.dead_at_s is None
                           else s.arrivals, "fired": s.fired, "joined": s.joined,
                           "failed": s.failed, "late": s.late,
                           "clock_offset_ms": None if s.offset_s is None else s.offset_s * 1e3,
                           "rtt_ms": None if s.rtt_s is None else s.rtt_s * 1e3,
                           "dead": s.dead_at_s is not None} for s in self.state.values())
        n = max(self.fired_by_s, default=-1) + 1
        peak = max((sum(r["held_by_s"][i] for r in
                        (s.final for s in self.state.values() if s.final)
                        if i < len(r["held_by_s"])) for i in range(n)), default=0)
        # a halt drops the arrivals not yet due from each live shard's schedule
        due = sum(s.final["arrivals"] if s.final and s.dead_at_s is None else s.arrivals
                  for s in self.state.values())
        return ScaledResult(
            engine=self.engine, shards=self.count, arrivals=due, fired=fired,
            joined=sum(s.joined for s in self.state.values()),
            failed=sum(s.failed for s in self.state.values()),
            late_starts=sum(s.late for s in self.state.values()),
            rate_requested_per_s=self.total / sched.duration_s, achieved_rate_per_s=achieved,
            scheduled_s=scheduled_s, join=self.merged.summary(), per_shard=per_shard,
            dead=tuple(dead), halt=halt, objective=objective,
            rate_by_s=tuple(self.fired_by_s.get(i, 0) for i in range(n)),
            scale_factor=ScaleFactor(achieved / INCIDENT_JOINS_PER_S, peak / INCIDENT_AUDIENCE),
            peak_concurrent=peak, scheduled_arrivals=self.total, started_ns=int((self.t0_wall or 0.0) * 1e9),
            merged=self.merged, by_s=dict(self.by_s),
            samples=np.concatenate([s.samples for s in self.state.values()
                                    if s.samples is not None] or [np.empty((0, 2))]))
