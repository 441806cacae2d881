"""Judging a recorded history: every SLI per phase, overall and per DC, recovery times, the
breaking point of a sweep, and the run's verdict with its reason. One pure function,
``judge(history, objectives=None)``, over a recorded history (chaos.core.history); every
verdict rule is in ``verdict``: the run's and ``chaos report --rejudge`` alike.

The experiment's steady state is required before the method and after it (once the
recovery grace is over), its ``during`` objectives while faults are on, its ``after``
objectives after it too. The ``recovery`` grace is observed, and timed (``recovered_s``).
Every other SLI is judged too, against its default objective, as an observation
(``required``: false): it shows where the run broke without deciding the verdict.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

import numpy as np

from chaos.core import journal as jm
from chaos.core.history import History, Objectives
from chaos.core.model import Verdict, value_words as _fmt
from chaos.core.slo import DEFAULTS, SLIS, Objective, Saturation, Series

PHASED = tuple(s.name for s in SLIS.values() if s.timing == "phased")   # in time
WHOLE_RUN = tuple(s.name for s in SLIS.values() if s.timing == "whole")  # judged over the run
RECOVERY_WINDOW_S = 2.0
SATURATED = "the probe, not the stack, was saturated"


@dataclass(frozen=True)
class Judgement:
    verdict: Verdict
    reason: str
    slos: tuple[jm.Slo, ...]
    breaking_point: jm.BreakingPoint | None


def judge(history: History, objectives: Objectives | None = None) -> Judgement:
    """The history judged against its own objectives, or against ``objectives``: the same
    rules whichever (no objective undoes a halt, a lost shard or a broken required check)."""
    h = history.judged_with(objectives)
    slos = judge_slos(h)
    v, reason = verdict(h, slos)
    return Judgement(v, reason, tuple(slos), breaking_point(h))


def fitted(o: Objective, span_s: float) -> Objective:
    """A window longer than the span is judged over the whole span."""
    return replace(o, window_s=None) if o.window_s and o.window_s > span_s else o


def _entry(o: Objective, s: Series, per_dc, start: float, end: float,
           phase: str, required: bool, saturation: Saturation | None = None) -> jm.Slo:
    o = fitted(o, end - start)
    r = o.evaluate(s, start, end, phase=phase, saturation=saturation)
    dcs = {}
    if s.sli in per_dc_slis():
        for dc in per_dc:
            rd = o.evaluate(_samples(per_dc[dc], s.sli), start, end, phase=phase, saturation=saturation)
            dcs[dc] = jm.DcVerdict(verdict=str(rd.verdict), value=rd.value,
                                   first_breach_s=rd.first_breach_s, samples=rd.samples)
    # JSON has no infinity: the value is None, and the words say why
    shown = {"value_text": "∞ (failed joins)"} \
        if r.value is not None and not math.isfinite(r.value) else {}
    return jm.Slo(**r.to_dict(), unit=o.unit, op=o.op, stat=o.stat, required=required, per_dc=dcs,
                  recovered_s=None, **shown)


def per_dc_slis() -> tuple[str, ...]:
    return PHASED + WHOLE_RUN + ("audience_retained",)


def judge_slos(h: History) -> list[jm.Slo]:
    """Every SLI per phase. What the probes measured while they could not keep up
    (``h.saturation``) is set aside, and a window judged without it is inconclusive."""
    ob, overall, per_dc, end_s, saturation = h.objectives, h.overall, h.per_dc, h.end_s, h.saturation
    required = {("before", o.sli): o for o in ob.steady_state}
    required |= {("after", o.sli): o for o in ob.steady_state}
    required |= {("during", o.sli): o for o in ob.during}
    required |= {("after", o.sli): o for o in ob.after}
    entries = []
    for p in h.phases:
        phase, start, end = p.name, p.start_s, p.end_s
        if end - start <= 0:
            continue
        for name in PHASED + ("audience_retained",):
            # no audience to follow without a fault; any other SLI missing is nothing measured
            if (name == "audience_retained" and (phase != "after" or name not in overall)):
                continue
            o = required.get((phase, name))
            if name == "audience_retained":   # one sample, at the last fault's end
                start, end = 0.0, end_s + 1.0
            entries.append(_entry(o or DEFAULTS[name], _samples(overall, name), per_dc, start, end, phase,
                                  o is not None, saturation))
    whole = {o.sli: o for o in list(ob.steady_state) + list(ob.during) if o.sli in WHOLE_RUN}
    for name in WHOLE_RUN:   # one value per thick listener's whole listening: no time of breach
        o = whole.get(name)
        e = _entry(o or DEFAULTS[name], _samples(overall, name), per_dc, 0.0, end_s + 1.0, "run", o is not None,
                   saturation)
        entries.append(e.amended(
            first_breach_s=None,
            per_dc={dc: d.amended(first_breach_s=None) for dc, d in e.per_dc.items()},
            note=e.note or "each thick listener's whole listening; not resolved in time"))
    last_end = max((f.ended_s for f in h.faults if f.ended_s is not None), default=None)
    if last_end is not None:
        for i, e in enumerate(entries):
            if e.phase in ("during", "recovery", "after") and e.name in PHASED:
                o = required.get(("after", e.name)) or DEFAULTS[e.name]
                entries[i] = e.amended(recovered_s=recovery_s(o, _samples(overall, e.name), last_end, end_s))
    return entries


def _samples(by, name: str) -> Series:
    """An SLI's samples; none if the history has none of it."""
    return by[name] if name in by else Series(name, np.zeros(0), np.zeros(0))


def recovery_s(o: Objective, s: Series, fault_end_s: float, end_s: float) -> float | None:
    """Seconds from the last fault's end until the SLI held for good (every later window
    of RECOVERY_WINDOW_S holds); None if it still did not hold at the end of the run."""
    w = RECOVERY_WINDOW_S
    last_bad = None
    any_window = False
    for lo in np.arange(fault_end_s, max(fault_end_s, end_s - w) + 1e-9, 0.5):
        t, v, wt = s.between_weighted(lo, lo + w)
        if not len(v):
            continue
        any_window = True
        if not o.holds(_stat(o, v, wt)):
            last_bad = lo + w
    if not any_window:
        return None
    if last_bad is None:
        return 0.0
    if last_bad >= end_s - 1e-6:
        return None
    return round(last_bad - fault_end_s, 3)


def _stat(o: Objective, v: np.ndarray, w: np.ndarray | None = None) -> float:
    from chaos.core.slo import _stat as stat
    return stat(o.stat, v, w)


def breaking_point(h: History) -> jm.BreakingPoint | None:
    """Each step of a sweep judged on its own window; the first step that broke each SLI."""
    sw = h.sweep
    if sw is None:
        return None
    objectives = {o.sli: o for o in h.objectives.steady_state} | {o.sli: o for o in h.objectives.during}
    for name in PHASED:
        objectives.setdefault(name, DEFAULTS[name])
    steps, first = [], {name: None for name in objectives}
    for f in h.faults:
        if f.step is None or f.started_s is None:
            continue
        end = f.ended_s if f.ended_s is not None else f.started_s
        slos = {}
        for name, o in objectives.items():
            if name not in h.overall:
                continue
            r = replace(o, window_s=None).evaluate(h.overall[name], f.started_s, end, phase=f"step {f.step}")
            slos[name] = jm.StepSlo(verdict=str(r.verdict), value=r.value)
            if r.verdict is Verdict.FAILED and first[name] is None:
                first[name] = jm.FirstBroken(step=f.step, value=f.value)
        steps.append(jm.Step(index=f.step, value=f.value, start_s=round(f.started_s, 3),
                             end_s=round(end, 3), label=f.label, slos=slos))
    return jm.BreakingPoint(param=sw.param, unit=sw.unit, fault=sw.fault, label=sw.label, steps=steps,
                            first_broken=first)


def verdict(h: History, slos) -> tuple[Verdict, str]:
    """The run's verdict and why: every rule, in the order they decide. ``slos``: the
    history's judged entries (entries read back as dicts are read through the model)."""
    v, reason = _verdict(h, slos)
    lost = [s.describe() for s in h.lost_shards]
    if lost:  # the audience declared did not all arrive: say how much of it was missing
        v = Verdict.INCONCLUSIVE if v is Verdict.PASSED else v
        reason = "; ".join([reason] + lost)
    if not h.measured and v is Verdict.PASSED:
        v, reason = Verdict.INCONCLUSIVE, "the probe did not finish: nothing was measured"
    if h.judge_error and v is Verdict.PASSED:
        v, reason = Verdict.INCONCLUSIVE, f"the run could not be judged: {h.judge_error}"
    v, reason = _checks(h, v, reason)
    return v, reason


def _checks(h: History, v: Verdict, reason: str) -> tuple[Verdict, str]:
    """A game day's required checks: one that broke fails a run that would have passed or
    been inconclusive; one that measured nothing (or says nothing a check can say) leaves
    a run that would have passed inconclusive. No required check is passed by default."""
    required = [c for c in h.checks if c.required]
    failed = [c for c in required if c.verdict == "failed"]
    if failed and v in (Verdict.PASSED, Verdict.INCONCLUSIVE):
        said = "; ".join(f"check {c.step} at t={c.t_s:g} s: " + (", ".join(
            f"{b.name} {b.objective} was {_fmt(b.value)}" for b in c.broken) or "did not hold")
            for c in failed)
        return Verdict.FAILED, said if v is Verdict.PASSED else f"{said}; also {reason}"
    unsure = [c for c in required if c.verdict not in ("passed", "failed")]
    if unsure and v is Verdict.PASSED:
        return Verdict.INCONCLUSIVE, "; ".join(
            f"required check {c.step} at t={c.t_s:g} s measured nothing: " + (", ".join(
                f"{u.name} {u.objective} not judged ({u.why})" for u in c.unmeasured)
                or f"its verdict was {c.verdict or 'not recorded'}") for c in unsure)
    return v, reason


def _verdict(h: History, slos) -> tuple[Verdict, str]:
    stop = h.stop
    if stop.aborted:
        return Verdict.ABORTED, stop.aborted
    if stop.halt:
        return Verdict.ABORTED, stop.halt
    if stop.stopped:
        return Verdict.INCONCLUSIVE, stop.stopped
    unreverted = [f for f in h.faults if f.started_s is not None and not f.reverted]
    if unreverted:
        return Verdict.FAILED, ("fault(s) not reverted: "
                                + "; ".join(f"{f.label}: {f.revert_error}" for f in unreverted))
    req = [e for e in map(jm.Slo.model_validate, slos) if e.required]
    failed = [e for e in req if e.verdict == "failed"]
    if failed:
        return Verdict.FAILED, "; ".join(
            f"{e.name} {e.objective} broke {e.phase} the method" if e.phase != "run"
            else f"{e.name} {e.objective} broke" for e in failed)
    unsure = [e for e in req if e.verdict == "inconclusive"]
    saturated = [e for e in unsure if SATURATED in (e.note or "")]
    if saturated:
        e = saturated[0]
        return Verdict.INCONCLUSIVE, (
            f"{e.name} ({e.phase}): {e.note}"
            + (f"; also {', '.join(x.name + ' (' + x.phase + ')' for x in unsure if x is not e)}"
               if len(unsure) > 1 else ""))
    if unsure:
        return Verdict.INCONCLUSIVE, "nothing measured for " + ", ".join(
            f"{e.name} ({e.phase})" for e in unsure)
    return Verdict.PASSED, "every required SLO held"


def bins(o: Objective, s: Series, end_s: float, cap: float | None = None) -> dict:
    """One point per second for the charts: the objective's statistic over each second."""
    t_out, v_out = [], []
    for lo in range(int(math.ceil(end_s))):
        _, v, wt = s.between_weighted(lo, lo + 1)
        t_out.append(float(lo))
        if not len(v):
            v_out.append(None)
            continue
        if cap is not None:
            v = np.minimum(v, cap)
        x = _stat(o, v, wt)
        v_out.append(round(x, 6) if math.isfinite(x) else None)
    return {"t_s": t_out, "value": v_out}
