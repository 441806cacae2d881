"""One probe run: a speaker, thin listeners spread over the DCs, a few thick listeners per
DC, optionally an open-loop audience arriving at a rate; then every SLI, judged.

Listening is aggregated as it goes, so that no probe process grows with the run's length:
thin listeners run in processes of their own (chaos.session.crowd) and stream per-second
bins; thick listeners' audio is decoded and analysed as it comes (the reference adapter:
a segment at a time as each closes). Everything protocol-specific (the room, the speaker,
the listeners, the analysis) comes from the target's audio adapter (chaos.adapters). Every probe process watches its own event loop (chaos.session.watch):
a second in which the measuring side lagged past what an SLI tolerates is set aside, and
what was judged in part without it is ``inconclusive``, never ``passed`` or ``failed``.
Times are seconds since the run's t0, so SLO windows and breaches read as "t=31 s".
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field, replace
from typing import Any

import aiohttp
import numpy as np

from chaos.audio import sli
from chaos.core import validate as v
from chaos.core.errors import ConfigError, ProbeError
from chaos.core.arrivals import INCIDENT_JOINS_PER_S
from chaos.load.result import INCIDENT_AUDIENCE
from chaos.core.model import SloResult, finite as _finite
from chaos.core.retry import RetryPolicy
from chaos.audio.sli import ECHO_RESOLVE_DB
from chaos.core.slo import DEFAULTS, Objective, Series, validate as validate_objectives
from chaos.core.target import Target
from chaos.session.crowd import Crowd, LocalCrowd
from chaos.audio.reception import Produced, SecondBins
from chaos.audio.record import ListenerRecord
from chaos.session.watch import LoopWatch, ProbeHealth

DRAIN_S = 0.5  # listening after the speaker stops, for frames still in flight


@dataclass
class LiveRun:
    """An open probe session's live view (:func:`open_session`): what whoever drives the
    session (the runner's method, a test) reads while the listeners listen.

    It may add storms' results to ``storms`` and short-lived join records to ``joins``;
    ``stop`` asks the driver to end the listening early (an abort). When the session
    closes, ``result`` holds what it measured."""
    topo: Target
    session: aiohttp.ClientSession
    space: str
    speaker: Any                 # the adapter's speaker
    retry: RetryPolicy
    join_timeout_s: float
    t0_ns: int
    thin: Crowd | LocalCrowd | list   # the thin listeners (in processes, here, or none)
    thick: list                  # the adapter's thick listeners
    stop: asyncio.Event
    storms: list = field(default_factory=list)
    scale: Any = None             # chaos.scale.ScaleOut: where join storms are fired from
    pool: Any = None              # its shards, started for the run (chaos.scale.shard_pool)
    joins: list[ListenerRecord] = field(default_factory=list)
    thick_bins: dict[str, SecondBins] = field(default_factory=dict)  # home DC -> thick's bins
    adapter: Any = None          # the target's audio adapter (chaos.adapters)
    result: ProbeResult | None = None   # set when the session has closed normally

    def thin_records(self) -> list[ListenerRecord]:
        return self.thin.list() if isinstance(self.thin, (Crowd, LocalCrowd)) else [t.rec for t in self.thin]

    def bins(self, dc: str | None = None) -> list[SecondBins]:
        """Every group's per-second bins so far (thin and thick), of one home DC or all."""
        groups = dict(self.thin.bins) if isinstance(self.thin, (Crowd, LocalCrowd)) else {}
        out = [b for d, b in groups.items() if dc is None or d == dc]
        return out + [b for d, b in self.thick_bins.items()
                      if (dc is None or d == dc) and not any(b is o for o in out)]

    def records(self) -> list[ListenerRecord]:
        """Every listener's record so far (thin, thick and join probes), live."""
        return self.thin_records() + [t.rec for t in self.thick] + list(self.joins)


@dataclass
class ProbeResult:
    listeners_requested: int
    seconds: float
    space: str
    t0_ns: int
    records: list[ListenerRecord]
    thick: list                           # the adapter's reports of its thick listeners
    produced: Produced
    speaker_origin: str | None
    thick_records: list[ListenerRecord] = field(default_factory=list)  # headers count like thin
    storm: object | None = None           # chaos.load.StormResult when an arrival rate was set
    slos: list[SloResult] = field(default_factory=list)
    storms: list = field(default_factory=list)  # storms started during the run (join_storm faults)
    joins: list[ListenerRecord] = field(default_factory=list)  # short join probes (join_time only)
    bins: dict[str, list[SecondBins]] = field(default_factory=dict)  # home DC -> groups' bins
    health: ProbeHealth = field(default_factory=ProbeHealth)         # every probe process

    def groups(self) -> list[SecondBins]:
        return [b for bs in self.bins.values() for b in bs]

    @property
    def dcs(self) -> tuple[str, ...]:
        """The target's data centers (every home DC has its bins)."""
        return tuple(self.bins)

    @property
    def listeners_joined(self) -> int:
        return sum(1 for r in self.records if r.join_s is not None)

    def scale_factor(self) -> dict:
        audience = self.listeners_requested + (self.storm.peak_concurrent if self.storm else 0)
        rate = self.storm.achieved_rate_per_s if self.storm else None
        return {"audience": audience / INCIDENT_AUDIENCE,
                "join_rate": None if rate is None else rate / INCIDENT_JOINS_PER_S,
                "described": f"{audience} listeners = {audience / INCIDENT_AUDIENCE:.2e} of the "
                             f"incident's {INCIDENT_AUDIENCE:,}"
                             + (f"; {rate:g} joins/s = {rate / INCIDENT_JOINS_PER_S:.2e} of its "
                                f"~{INCIDENT_JOINS_PER_S:.0f}/s" if rate else "")}

    def to_dict(self, topo: Target | None = None) -> dict:
        per_dc = {}
        for dc in self.bins:
            recs = [r for r in self.records if r.home_dc == dc]
            per_dc[dc] = {"listeners": len(recs), "joined": sum(r.join_s is not None for r in recs),
                          "audio_delivered": delivered_ratio(recs, self.produced)[0]}
        d = {"listeners_requested": self.listeners_requested,
             "listeners_joined": self.listeners_joined,
             "thick_listeners": len(self.thick),
             "seconds": self.seconds, "space": self.space,
             "scale_factor": self.scale_factor()["audience"],
             "scale": self.scale_factor(),
             "frames_produced": len(self.produced),
             "slos": [_finite(s.to_dict()) for s in self.slos], "per_dc": per_dc,
             "join_errors": sorted({r.join_error for r in self.records if r.join_error})[:5],
             "probe": self.health.to_dict()}
        if self.storm is not None:
            d["storm"] = _finite(self.storm.to_dict())
        if topo is not None:
            d["target"] = {"runtime": topo.runtime, "profile": topo.profile}
        return d


def delivered_ratio(records: list[ListenerRecord], produced: Produced) -> tuple[float | None, int]:
    """Share of the speaker's frames, from each listener's first frame to the end, received
    in order (no deadline). Returns (ratio, frames expected)."""
    if not produced:
        return None, 0
    last_seq = produced[-1][0]
    expected = got = 0
    for r in records:
        if r.join_s is None or r.first_seq is None:
            continue
        expected += last_seq - r.first_seq + 1
        got += r.frames_heard
    return (got / expected if expected else None), expected


def _thick_series(reports: list, name: str) -> Series:
    """Thick listeners' SLIs in time: freeze share and dead air per second of listening;
    echo per analysis window, stamped at the window's middle (a window straddling a
    fault's onset counts where most of it lies); MOS one sample per listener (its whole
    listening), stamped when it started hearing."""
    samples = []
    for r in reports:
        if name in ("freeze", "silence") and r.freeze is not None and r.t0_s is not None:
            span = r.freeze.listening_s   # both resolved in time over the listening
            samples += (sli.freeze_share(r.freeze.intervals, r.t0_s, span) if name == "freeze"
                        else sli.dead_air(r.silence.intervals if r.silence else (), r.t0_s, span))
            continue
        if name == "echo":  # a window counts if it found an echo or could have seen one
            samples += [(w.start_s + w.duration_s / 2, w.result.at_most_db) for w in r.echo_windows
                        if w.result.measured and (w.result.detected or w.result.floor_db <= ECHO_RESOLVE_DB)]
            continue
        value = r.slo_values().get(name)
        if value is not None and r.t0_s is not None:
            samples.append((r.t0_s, value))
    return Series.of(name, samples)


def series(result: ProbeResult, onset_s: float | None = None,
           recovered_by_s: float | None = None, *, retention: bool = True) -> dict[str, Series]:
    """Every SLI of the run as timed samples: the one map from an SLI's name to how it is
    computed (``chaos.core.slo.SLIS`` names them). audience_retained follows the listeners
    hearing audio before ``onset_s`` to within 30 s after ``recovered_by_s`` (a run without
    a fault: from the moment everyone had joined); ``retention=False`` leaves it out."""
    listeners = result.records + result.thick_records
    joins = sli.join_time(listeners + result.joins, result.t0_ns)
    for storm in ([result.storm] if result.storm is not None else []) + result.storms:
        t, v = storm.join_samples(result.t0_ns)
        joins = Series("join_time", *_merge_sorted(joins, t, v))
    out = {
        "join_time": joins,
        "audio_delivered": sli.audio_delivered(result.groups(), result.produced),
        "mouth_to_ear": sli.mouth_to_ear(result.groups()),
        "freeze": _thick_series(result.thick, "freeze"),
        "silence": _thick_series(result.thick, "silence"),
        "echo": _thick_series(result.thick, "echo"),
        "mos": _thick_series(result.thick, "mos"),
    }
    if retention:
        if onset_s is None or recovered_by_s is None:
            joined_at = [((r.joined_ns - result.t0_ns) / 1e9) for r in listeners if r.joined_ns]
            onset_s = recovered_by_s = max(joined_at) if joined_at else 0.0
        out["audience_retained"] = sli.audience_retained(listeners, onset_s=onset_s,
                                                         recovered_by_s=recovered_by_s)
    return out


def _merge_sorted(s: Series, t: np.ndarray, v: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    tt, vv = np.concatenate([s.t_s, t]), np.concatenate([s.values, v])
    order = np.argsort(tt, kind="stable")
    return tt[order], vv[order]


def compute_slos(result: ProbeResult, objectives: list[Objective] | None = None) -> list[SloResult]:
    objectives = objectives or list(DEFAULTS.values())
    by_sli = series(result)
    return [o.evaluate(by_sli[o.sli], 0.0, result.seconds + DRAIN_S + 1.0,
                       saturation=result.health) for o in objectives]


def defaults_for(seconds: float) -> list[Objective]:
    """The default objectives, a window longer than the run judged over the whole run."""
    return [replace(o, window_s=None) if o.window_s and o.window_s > seconds else o
            for o in DEFAULTS.values()]


def validate(listeners: int, seconds: float, join_timeout_s: float, thick_per_dc: int = 1,
             rate: float | None = None, objectives: list[Objective] | None = None) -> None:
    v.integer("listeners", listeners, lo=1, hi=v.MAX_LISTENERS)
    v.seconds("seconds", seconds, positive=True)
    v.seconds("join_timeout_s", join_timeout_s, positive=True, hi=600.0)
    v.integer("thick_per_dc", thick_per_dc, lo=0, hi=v.MAX_THICK_PER_DC)
    v.optional(v.number, "rate", rate, lo=0.0, lo_open=True, unit="joins/s")
    validate_objectives(objectives or defaults_for(seconds), seconds)


@asynccontextmanager
async def open_session(topo: Target, listeners: int = 20, seconds: float = 5.0,
                       join_timeout_s: float = 5.0, retry: RetryPolicy | None = None,
                       space: str | None = None, thick_per_dc: int = 1, rate: float | None = None,
                       objectives: list[Objective] | None = None, seed: int = 0,
                       processes: int | None = None, scale=None) -> AsyncIterator[LiveRun]:
    """Open a probe session against ``topo``: the speaker publishing, thin listeners spread
    over the DCs, ``thick_per_dc`` thick listeners per DC, optionally an arriving audience
    (``rate``). Yields its live view; whoever opened it drives it (listens, injects faults)
    for at most ``seconds``. When the ``async with`` ends, everything is stopped and drained,
    and ``live.result`` holds the judged ProbeResult (an error inside leaves none).

    ``processes``: how many processes hold the thin listeners (default: one per 300
    listeners, at most one per core). ``scale`` (chaos.scale.ScaleOut): the engine and
    shards the arriving audience (rate) and the run's join storms are fired from; None:
    this machine's load generator. Its shards are started before the session, so that
    their start-up is not inside a storm."""
    validate(listeners, seconds, join_timeout_s, thick_per_dc, rate, objectives)
    if scale is None or not scale.scaled:
        async with _session(topo, listeners, seconds, join_timeout_s, retry, space,
                            thick_per_dc, rate, objectives, seed, processes) as live:
            yield live
        return
    from chaos.scale.run import shard_pool
    async with shard_pool(scale, run_s=seconds + 60.0) as pool:
        async with _session(topo, listeners, seconds, join_timeout_s, retry, space,
                            thick_per_dc, rate, objectives, seed, processes, scale, pool) as live:
            yield live


async def run_probe(topo: Target, listeners: int = 20, seconds: float = 5.0,
                    join_timeout_s: float = 5.0, retry: RetryPolicy | None = None,
                    space: str | None = None, thick_per_dc: int = 1, rate: float | None = None,
                    objectives: list[Objective] | None = None, seed: int = 0,
                    processes: int | None = None, scale=None) -> ProbeResult:
    """A probe session that only listens, for ``seconds`` (see :func:`open_session`); a
    listener process that breaks ends it with its error."""
    async with open_session(topo, listeners, seconds, join_timeout_s, retry, space,
                            thick_per_dc, rate, objectives, seed, processes, scale) as live:
        await _listen(live.thin, seconds)
    return live.result


@asynccontextmanager
async def _session(topo, listeners, seconds, join_timeout_s, retry, space, thick_per_dc, rate,
                   objectives, seed, processes=None, scale=None, pool=None) -> AsyncIterator[LiveRun]:
    objectives = objectives or defaults_for(seconds)
    from chaos import adapters
    adapter = adapters.get(topo.adapter)
    if rate is not None and not adapter.storms:
        raise ConfigError(f"an arriving audience (rate) needs a join storm client, which the "
                          f"{topo.adapter} adapter does not have; leave the rate out")
    retry = retry or topo.client_retry
    dcs = topo.dcs
    space = space or f"probe-{uuid.uuid4().hex[:8]}"
    stop = asyncio.Event()
    connector = aiohttp.TCPConnector(limit=0)
    storm_task = None
    watch = None
    try:
        async with aiohttp.ClientSession(connector=connector) as session:
            space = await adapter.open_room(session, topo, space)
            speaker = adapter.new_speaker(session, topo, space, retry, seed)
            speaker_task = asyncio.create_task(speaker.run(stop))
            try:
                await asyncio.wait_for(speaker.connected.wait(), timeout=join_timeout_s)
            except TimeoutError:
                stop.set()
                await speaker_task
                await speaker.close()
                raise ProbeError("the probe's speaker could not publish to any origin within "
                                 f"{join_timeout_s:g} s: {'; '.join(speaker.errors[-3:]) or 'no answer'}") from None
            t0_ns = time.time_ns()
            watch = LoopWatch(t0_ns, "probe").start()   # the speaker, thick listeners, the runner
            # thin listeners in processes of their own where the adapter's can run there
            kind = Crowd if adapter.crowd_in_processes else LocalCrowd
            crowd = kind([(i, dcs[i % len(dcs)]) for i in range(listeners)], topo, space, speaker,
                         retry, join_timeout_s, t0_ns, seconds, processes)
            try:
                await adapter.warm_up(session, topo, space)   # a target's cold start is not its steady state
                await crowd.start(session)
            except BaseException:
                stop.set()
                await speaker_task
                await speaker.close()
                raise
            thick_bins = crowd.bins     # one group per home DC: thick listeners count like thin
            analyst = adapter.new_analyst(speaker.produced, seed, t0_ns)
            thick = [adapter.new_listener(session, listeners + k, dc, topo, space, speaker.id, retry,
                                          join_timeout_s, thick=True, bins=thick_bins[dc],
                                          analyst=analyst)
                     for k, dc in enumerate(dc for dc in dcs for _ in range(thick_per_dc))]
            stop_listeners = asyncio.Event()
            if rate is not None:
                from chaos.load import ArrivalSchedule, StormOptions
                from chaos.scale.run import fire
                storm_task = asyncio.create_task(fire(
                    scale, topo, space, speaker.id, ArrivalSchedule(rate, seconds),
                    StormOptions(retry=retry, join_timeout_s=join_timeout_s, hold_s=None), pool=pool))
            tasks = [asyncio.create_task(lst.run(stop_listeners)) for lst in thick]
            t_start = time.monotonic()
            storm = None
            live = LiveRun(topo, session, space, speaker, retry, join_timeout_s, t0_ns, crowd,
                           thick, asyncio.Event(), thick_bins=thick_bins, adapter=adapter,
                           scale=scale, pool=pool)
            try:
                yield live
                if storm_task is not None:  # the speaker talks until the last arrival is judged
                    storm = await storm_task
            finally:
                if storm_task is not None and not storm_task.done():
                    storm_task.cancel()  # interrupted: the generator stops its workers
                    await asyncio.gather(storm_task, return_exceptions=True)
                stop.set()
                await speaker_task
                await asyncio.sleep(DRAIN_S)
                stop_listeners.set()
                await asyncio.gather(*tasks, return_exceptions=True)
                await crowd.stop()
                await speaker.close()
            elapsed = time.monotonic() - t_start
            try:
                reports = [await t.finish(analyst) for t in thick]
            finally:
                analyst.close()
    finally:
        if watch is not None:
            await watch.stop()
    health = watch.health
    bins = {dc: [crowd.bins[dc]] for dc in dcs}
    result = ProbeResult(listeners, round(elapsed, 3), space, t0_ns, crowd.list(),
                         reports, speaker.produced, speaker.origin, [t.rec for t in thick], storm,
                         storms=live.storms, joins=live.joins, bins=bins,
                         health=ProbeHealth([health, *crowd.health]))
    notes = slo_notes(topo)
    result.slos = [_noted(s, notes) for s in compute_slos(result, objectives)]
    live.result = result


def slo_notes(topo: Target) -> dict[str, str]:
    """Why the target's adapter cannot measure some SLIs (a stream not fed by our speaker)."""
    from chaos import adapters
    return adapters.get(topo.adapter).slo_notes(topo)


def _noted(s: SloResult, notes: dict[str, str]) -> SloResult:
    if s.verdict == "inconclusive" and notes.get(s.name) and not s.note:
        return replace(s, note=notes[s.name])
    return s


async def _listen(crowd: Crowd, seconds: float) -> None:
    """Listen for ``seconds``; a listener process that breaks ends the run with its error."""
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        await asyncio.sleep(min(0.5, max(0.0, end - time.monotonic())))
        err = crowd.failed()
        if err is not None:
            raise err
