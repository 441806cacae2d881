"""Verdicts of a finished run: every SLI judged per phase, overall and per DC, recovery
times, the breaking point of a sweep, and the run's verdict with its reason.

The experiment's steady state is required before the method and after it (once the
recovery grace is over), its ``during`` objectives while faults are on, its ``after``
objectives after it too. The ``recovery`` grace is observed, and timed (``recovered_s``). Every other
SLI is judged too, against its default objective, as an observation (``required``:
false): it shows where the run broke without deciding the verdict.
"""

from __future__ import annotations

import math
from dataclasses import replace

import numpy as np


from chaos.core import journal as jm
from chaos.experiment import Experiment
from chaos.core.model import Verdict
from chaos.core.slo import DEFAULTS, SLIS, Objective, Saturation, Series
from chaos.runner.method import Timeline

PHASED = tuple(s.name for s in SLIS.values() if s.timing == "phased")   # in time
WHOLE_RUN = tuple(s.name for s in SLIS.values() if s.timing == "whole")  # judged over the run
RECOVERY_WINDOW_S = 2.0
SATURATED = "the probe, not the stack, was saturated"


def fitted(o: Objective, span_s: float) -> Objective:
    """A window longer than the span is judged over the whole span."""
    return replace(o, window_s=None) if o.window_s and o.window_s > span_s else o


def _entry(o: Objective, s: Series, per_dc: dict[str, Series], start: float, end: float,
           phase: str, required: bool, saturation: Saturation | None = None) -> jm.Slo:
    o = fitted(o, end - start)
    r = o.evaluate(s, start, end, phase=phase, saturation=saturation)
    dcs = {}
    if s.sli in per_dc_slis():
        for dc in per_dc:
            rd = o.evaluate(per_dc[dc][s.sli], start, end, phase=phase, saturation=saturation)
            dcs[dc] = jm.DcVerdict(verdict=str(rd.verdict), value=rd.value,
                                   first_breach_s=rd.first_breach_s, samples=rd.samples)
    # JSON has no infinity: the value is None, and the words say why
    shown = {"value_text": "∞ (failed joins)"} \
        if r.value is not None and not math.isfinite(r.value) else {}
    return jm.Slo(**r.to_dict(), unit=o.unit, op=o.op, stat=o.stat, required=required, per_dc=dcs,
                  recovered_s=None, **shown)


def per_dc_slis() -> tuple[str, ...]:
    return PHASED + WHOLE_RUN + ("audience_retained",)


def judge_slos(exp: Experiment, tl: Timeline, overall: dict[str, Series],
               per_dc: dict[str, dict[str, Series]], end_s: float,
               saturation: Saturation | None = None) -> list[jm.Slo]:
    """``saturation``: the seconds the probes could not keep up (chaos.session.watch); what
    they measured then is set aside, and a window judged without it is inconclusive."""
    required = {("before", o.sli): o for o in exp.steady_state}
    required |= {("after", o.sli): o for o in exp.steady_state}
    required |= {("during", o.sli): o for o in exp.during}
    required |= {("after", o.sli): o for o in exp.after}
    entries = []
    for phase, (start, end) in tl.phases.items():
        if end - start <= 0:
            continue
        for name in PHASED + ("audience_retained",):
            if name not in overall or (name == "audience_retained" and phase != "after"):
                continue
            o = required.get((phase, name))
            if name == "audience_retained":   # one sample, at the last fault's end
                start, end = 0.0, end_s + 1.0
            entries.append(_entry(o or DEFAULTS[name], overall[name], per_dc, start, end, phase,
                                  o is not None, saturation))
    whole = {o.sli: o for o in list(exp.steady_state) + list(exp.during) if o.sli in WHOLE_RUN}
    for name in WHOLE_RUN:   # one value per thick listener's whole listening: no time of breach
        o = whole.get(name)
        e = _entry(o or DEFAULTS[name], overall[name], per_dc, 0.0, end_s + 1.0, "run", o is not None,
                   saturation)
        entries.append(e.amended(
            first_breach_s=None,
            per_dc={dc: d.amended(first_breach_s=None) for dc, d in e.per_dc.items()},
            note=e.note or "each thick listener's whole listening; not resolved in time"))
    last_end = max((f.ended_s for f in tl.faults if f.ended_s is not None), default=None)
    if last_end is not None:
        for i, e in enumerate(entries):
            if e.phase in ("during", "recovery", "after") and e.name in PHASED:
                o = required.get(("after", e.name)) or DEFAULTS[e.name]
                entries[i] = e.amended(recovered_s=recovery_s(o, overall[e.name], last_end, end_s))
    return entries


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


def breaking_point(exp: Experiment, tl: Timeline, overall: dict[str, Series]) -> jm.BreakingPoint | None:
    sw = exp.sweep
    if sw is None:
        return None
    objectives = {o.sli: o for o in exp.steady_state} | {o.sli: o for o in exp.during}
    for name in PHASED:
        objectives.setdefault(name, DEFAULTS[name])
    steps, first = [], {name: None for name in objectives}
    for f in tl.faults:
        if f.step.step is None or f.started_s is None:
            continue
        end = f.ended_s if f.ended_s is not None else f.started_s
        value = f.step.spec.params.get(sw.param)
        slos = {}
        for name, o in objectives.items():
            if name not in overall:
                continue
            r = replace(o, window_s=None).evaluate(overall[name], f.started_s, end, phase=f"step {f.step.step}")
            slos[name] = jm.StepSlo(verdict=str(r.verdict), value=r.value)
            if r.verdict is Verdict.FAILED and first[name] is None:
                first[name] = jm.FirstBroken(step=f.step.step, value=value)
        steps.append(jm.Step(index=f.step.step, value=value, start_s=round(f.started_s, 3),
                             end_s=round(end, 3), label=f.step.describe(), slos=slos))
    where = ", ".join(v for v in (sw.service, sw.dc, sw.link) if v)
    label = f"{sw.name} on {where}" if where else sw.name
    return jm.BreakingPoint(param=sw.param, unit=sw.unit, fault=sw.name, label=label, steps=steps,
                            first_broken=first)


def verdict(tl: Timeline, slos: list[jm.Slo]) -> tuple[Verdict, str]:
    """The run's verdict and why (entries of a journal read back as dicts are read through
    the model too)."""
    if tl.interrupted:
        return Verdict.ABORTED, tl.abort
    if tl.halt is not None:
        return Verdict.ABORTED, jm.Halt.model_validate(tl.halt).message
    if tl.gate is not None:
        return Verdict.INCONCLUSIVE, tl.abort
    if tl.abort:
        return Verdict.INCONCLUSIVE, tl.abort
    unreverted = [f for f in tl.faults if f.started_s is not None and not f.reverted]
    if unreverted:
        return Verdict.FAILED, ("fault(s) not reverted: "
                                + "; ".join(f"{f.step.describe()}: {f.revert_error}" for f in unreverted))
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
