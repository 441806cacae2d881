"""One probe run: a speaker, N thin listeners spread over the DCs, and the SLIs they measured."""

from __future__ import annotations

import asyncio
import time
import uuid
from dataclasses import dataclass, field

import aiohttp

from space.retry import RetryPolicy
from space.topology import DCS, Topology

from ..errors import ConfigError, ProbeError
from ..model import SloResult
from ..slo import DEFAULTS, percentile
from .joinapi import Refused, create_space
from .listener import Listener, ListenerRecord
from .speaker import Speaker

INCIDENT_AUDIENCE = 600_000
DRAIN_S = 0.5  # listening after the speaker stops, for frames still in flight


@dataclass
class ProbeResult:
    listeners_requested: int
    seconds: float
    space: str
    records: list[ListenerRecord]
    produced: list[tuple[int, int]]
    speaker_origin: str | None
    slos: list[SloResult] = field(default_factory=list)

    @property
    def listeners_joined(self) -> int:
        return sum(1 for r in self.records if r.join_s is not None)

    def to_dict(self, topo: Topology | None = None) -> dict:
        per_dc = {}
        for dc in DCS:
            recs = [r for r in self.records if r.home_dc == dc]
            per_dc[dc] = {"listeners": len(recs), "joined": sum(r.join_s is not None for r in recs),
                          "audio_delivered": delivered_ratio(recs, self.produced)[0]}
        d = {"listeners_requested": self.listeners_requested,
             "listeners_joined": self.listeners_joined,
             "seconds": self.seconds, "space": self.space,
             "scale_factor": self.listeners_requested / INCIDENT_AUDIENCE,
             "frames_produced": len(self.produced),
             "slos": [s.to_dict() for s in self.slos], "per_dc": per_dc,
             "join_errors": sorted({r.join_error for r in self.records if r.join_error})[:5]}
        if topo is not None:
            d["target"] = {"runtime": topo.runtime, "profile": topo.profile}
        return d


def gateway_order(topo: Topology, home_dc: str) -> list[str]:
    """Gateways' public addresses, the home DC's first (what a geo-DNS would give)."""
    gws = sorted(topo.of_kind("gateway"), key=lambda s: (s.dc != home_dc, s.dc))
    return [g.public for g in gws if g.public]


def delivered_ratio(records: list[ListenerRecord], produced: list[tuple[int, int]]) -> tuple[float | None, int]:
    """Share of the speaker's frames, produced while each listener was joined, that it received.

    A listener is joined from its first frame to the end of the run; out-of-order frames
    count as lost. Returns (ratio, frames expected).
    """
    if not produced:
        return None, 0
    last_seq = produced[-1][0]
    expected = got = 0
    for r in records:
        if r.join_s is None or not r.seqs:
            continue
        first = r.seqs[0]
        expected += last_seq - first + 1
        got += len(r.seqs)
    return (got / expected if expected else None), expected


def compute_slos(result: ProbeResult) -> list[SloResult]:
    recs = result.records
    window = f"whole run ({result.seconds:g} s)"
    joins = [r.join_s if r.join_s is not None else float("inf") for r in recs]
    p95_join = percentile(joins, 95)
    failed = sum(r.join_s is None for r in recs)
    out = [DEFAULTS["join_time"].judge(p95_join, len(joins), window,
                                       f"{failed} of {len(joins)} joins failed" if failed else "")]
    ratio, expected = delivered_ratio(recs, result.produced)
    out.append(DEFAULTS["audio_delivered"].judge(ratio, expected, window))
    lat = [ns / 1e9 for r in recs for ns in r.latency_ns]
    out.append(DEFAULTS["mouth_to_ear"].judge(percentile(lat, 95), len(lat), window))
    return out


def validate(listeners: int, seconds: float, join_timeout_s: float) -> None:
    if listeners < 1:
        raise ConfigError(f"--listeners must be at least 1, got {listeners}")
    if not seconds > 0:
        raise ConfigError(f"--seconds must be more than 0, got {seconds:g}")
    if not join_timeout_s > 0:
        raise ConfigError(f"--join-timeout must be more than 0 s, got {join_timeout_s:g}")


async def run_probe(topo: Topology, listeners: int = 20, seconds: float = 5.0,
                    join_timeout_s: float = 5.0, retry: RetryPolicy | None = None,
                    space: str | None = None) -> ProbeResult:
    validate(listeners, seconds, join_timeout_s)
    retry = retry or topo.settings.retry
    space = space or f"probe-{uuid.uuid4().hex[:8]}"
    stop = asyncio.Event()
    connector = aiohttp.TCPConnector(limit=0, force_close=False)
    async with aiohttp.ClientSession(connector=connector) as session:
        try:
            space = await create_space(session, gateway_order(topo, DCS[0]), space)
        except Refused as e:
            raise ProbeError(f"could not create a space through any gateway: {e}. "
                             "Is the stack up and healthy? See `chaos stack status`.") from e
        speaker = Speaker(session, gateway_order(topo, DCS[0]), space, retry=retry)
        speaker_task = asyncio.create_task(speaker.run(stop))
        try:
            await asyncio.wait_for(speaker.connected.wait(), timeout=join_timeout_s)
        except TimeoutError:
            stop.set()
            await speaker_task
            await speaker.close()
            raise ProbeError("the probe's speaker could not publish to any origin within "
                             f"{join_timeout_s:g} s: {'; '.join(speaker.errors[-3:]) or 'no answer'}") from None
        ls = [Listener(session, i, DCS[i % len(DCS)], gateway_order(topo, DCS[i % len(DCS)]),
                       space, speaker.id, retry, join_timeout_s) for i in range(listeners)]
        stop_listeners = asyncio.Event()
        tasks = [asyncio.create_task(lst.run(stop_listeners)) for lst in ls]
        t_start = time.monotonic()
        await asyncio.sleep(seconds)
        stop.set()
        await speaker_task
        await asyncio.sleep(DRAIN_S)
        stop_listeners.set()
        await asyncio.gather(*tasks, return_exceptions=True)
        await speaker.close()
        elapsed = time.monotonic() - t_start
    result = ProbeResult(listeners, round(elapsed, 3), space, [lst.rec for lst in ls],
                         speaker.produced, speaker.origin)
    result.slos = compute_slos(result)
    return result
