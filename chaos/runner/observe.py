"""SLI series from a run's records: live (while it goes on: the gate and halt conditions)
and after it (every SLI, overall and per DC). Times are seconds since the run's t0."""

from __future__ import annotations

import math
import time
from dataclasses import replace


from chaos.audio import sli
from chaos.session.probe import LiveRun, ProbeResult, series
from chaos.audio.sli import PLAYOUT_DEADLINE_S
from chaos.core.slo import Series

SETTLE_S = 0.2          # a frame is judged once its playout deadline and this have passed


def _rel(ns: int, t0_ns: int) -> float:
    return (ns - t0_ns) / 1e9


def now_s(t0_ns: int) -> float:
    return _rel(time.time_ns(), t0_ns)


def live_join_time(records, t0_ns: int, at_s: float) -> Series:
    """Joins so far: timed, failed (+inf), or still in flight (their age so far: a lower
    bound that already counts against a slow join path)."""
    samples = []
    for r in records:
        if not r.started_ns:
            continue
        t = _rel(r.started_ns, t0_ns)
        if r.join_s is not None:
            samples.append((t, r.join_s))
        elif r.join_error:
            samples.append((t, math.inf))
        else:
            samples.append((t, max(0.0, at_s - t)))
    return Series.of("join_time", samples)


def live_horizon(live: LiveRun) -> float:
    """The live frame SLIs are final up to this second: their playout deadline has passed
    and every listener process has sent them (processes send once a second, so the horizon
    trails the clock by one to three seconds, more on a busy machine)."""
    upto = min(now_s(live.t0_ns) - PLAYOUT_DEADLINE_S - SETTLE_S,
               getattr(live.thin, "closed_s", float("inf")))
    return float(max(0, math.floor(upto)))


def live_window_end(live: LiveRun, sli: str, at_s: float) -> float:
    """Where a live window of ``sli`` that looks back from ``at_s`` must end: the frame SLIs
    at the horizon (a window ending at the clock would hold seconds not yet sent, and read
    as nothing measured), join_time once its joins are settled."""
    end = at_s - SETTLE_S
    return end if sli == "join_time" else min(end, live_horizon(live))


def live_series(live: LiveRun, dc: str | None = None, since_s: float = 0.0) -> dict[str, Series]:
    """The live SLIs (join_time, audio_delivered, mouth_to_ear) as they stand now, from
    every listener's per-second bins (the seconds whose playout deadline has passed) and
    every listener's join. ``since_s``: the frame SLIs from this second on only (a halt
    condition looks at its last window; a long run's every second costs)."""
    at = now_s(live.t0_ns)
    records = live.records()
    if dc is not None:
        records = [r for r in records if r.home_dc == dc]
    upto = live_horizon(live)
    groups = live.bins(dc) if hasattr(live, "bins") else []
    return {                 # LIVE_SLIS (chaos.core.slo): the SLIs known while the run goes on
        "join_time": live_join_time(records, live.t0_ns, at),
        "audio_delivered": sli.audio_delivered(groups, live.speaker.produced, upto_s=upto,
                                               since_s=since_s),
        "mouth_to_ear": sli.mouth_to_ear(groups, upto_s=upto, since_s=since_s),
    }


def dc_view(result: ProbeResult, dc: str) -> ProbeResult:
    """The run as seen by the listeners whose home is ``dc`` (storms have no home DC)."""
    return replace(result, records=[r for r in result.records if r.home_dc == dc],
                   thick=[t for t in result.thick if t.home_dc == dc],
                   thick_records=[r for r in result.thick_records if r.home_dc == dc],
                   joins=[r for r in result.joins if r.home_dc == dc], storm=None, storms=[],
                   bins={dc: result.bins.get(dc, [])})


def all_series(result: ProbeResult, onset_s: float | None,
               recovered_by_s: float | None) -> tuple[dict[str, Series], dict[str, dict[str, Series]]]:
    """Every SLI overall and per DC. audience_retained follows the listeners hearing audio
    before the first fault's onset to within 30 s after the last fault ended."""
    def one(view: ProbeResult) -> dict[str, Series]:
        return series(view, onset_s, recovered_by_s,
                      retention=onset_s is not None and recovered_by_s is not None)
    return one(result), {dc: one(dc_view(result, dc)) for dc in result.dcs}
