"""Where it broke, in sentences, from the journal alone.

    join_time p95 rose to 4.8 s (limit 2 s) at t=31 s, 6 s after dc_loss(dc-a) started;
    joins failed in all three DCs because redis lives in dc-a; ...

A sentence names the SLO, its value against the threshold, when, under which fault (the
one active at that moment, else the last one started before it), which DCs broke, why
when the fault's matched services say so, and how long recovery took.

The "why" comes from the target's shape that the journal keeps (``target.paths``,
``target.depends``): DCs the fault did not touch broke because the SLI's client path in
those DCs depends, directly or not, on a service the fault hit, whatever the target.
"""

from __future__ import annotations

from chaos.core import journal as jm
from chaos.core.journal import Journal
from chaos.core.model import Verdict
from chaos.core.slo import SLIS
from chaos.report import fmt
from chaos.report.schema import typed

_DC_FAULTS = {"dc_loss": "the DC that was lost", "dc_partition": "the DC that was cut off"}


def sentences(journal: Journal | dict) -> list[str]:
    """Everything worth saying about a run, most important first."""
    journal = typed(journal)
    out: list[str] = []
    out += _halt(journal)
    out += _aborted(journal)
    out += _inconclusive(journal)
    out += _saturated(journal)
    out += _breaking_point(journal)
    out += _breaches(journal, required=True)
    out += _unmeasured(journal)
    out += _breaches(journal, required=False)
    out += _fault_problems(journal)
    if not out and fmt.verdict_of(journal) is Verdict.PASSED:
        out.append("every SLO held; nothing broke")
    if not out:
        reason = journal.reason or "the journal gives no reason"
        out.append(f"the verdict is {fmt.verdict_of(journal)}: {reason}")
    return out


def headline(journal: Journal | dict) -> str:
    """One line: the verdict and the first thing to know."""
    journal = typed(journal)
    return f"{fmt.verdict_of(journal).upper()}: {sentences(journal)[0]}"


# -- the pieces ----------------------------------------------------------------------------
def decides(slo: jm.Slo) -> bool:
    """Whether an SLO entry decides the verdict (an entry that does not say, does)."""
    return slo.required is not False


def _breaches(journal: Journal, required: bool) -> list[str]:
    by_name: dict[str, list[jm.Slo]] = {}
    for s in journal.slos:
        if s.first_breach_s is None or decides(s) != required:
            continue
        by_name.setdefault(str(s.name), []).append(s)
    out = []
    for name, entries in sorted(by_name.items(), key=lambda kv: min(e.first_breach_s for e in kv[1])):
        entries.sort(key=lambda e: e.first_breach_s)
        text = breach_sentence(journal, entries[0])
        if len(entries) > 1:
            text += f" (it failed in the {fmt.join_and([str(e.phase) for e in entries])} phases)"
        if not required:
            text += "; observed only, it does not decide the verdict"
        out.append(text)
    return out


def breach_sentence(journal: Journal | dict, slo: jm.Slo) -> str:
    """The where-it-broke sentence for one breached SLO entry."""
    journal = typed(journal)
    name, unit = str(slo.name), str(slo.unit or "")
    at = float(slo.first_breach_s)
    op = slo.op or ("<=" if "<=" in str(slo.objective or "") else ">=")
    stat = slo.stat or ""
    subject = f"{name} {stat}" if stat.startswith("p") else name
    verb, side = ("rose to", "limit") if op == "<=" else ("fell to", "minimum")
    text = (f"{subject} {verb} {fmt.entry_value(slo)} "
            f"({side} {fmt.value(name, unit, slo.threshold)}) at {fmt.t(at)}")
    fault = fault_at(journal, at)
    if fault is None:
        text += ", before any fault was injected"
    else:
        ended = fault.ended_s
        if ended is not None and float(ended) < at:   # it broke once the fault was over
            text += f", {fmt.dur(at - float(ended))} after {_label(fault)} ended"
        else:
            text += f", {fmt.dur(at - float(fault.started_s))} after {_label(fault)} started"
    where = _where(journal, slo, fault)
    if where:
        text += f"; {where}"
    recovery = _recovery(journal, slo, fault)
    if recovery:
        text += f"; {recovery}"
    return text


def fault_at(journal: Journal | dict, t_s: float) -> jm.Fault | None:
    """The fault active at t_s (the latest started, if several), else the last one started before."""
    journal = typed(journal)
    started = [f for f in journal.faults if f.started_s is not None and float(f.started_s) <= t_s + 1e-9]
    if not started:
        return None
    active = [f for f in started if f.ended_s is None or float(f.ended_s) >= t_s]
    return max(active or started, key=lambda f: float(f.started_s))


def _where(journal: Journal, slo: jm.Slo, fault: jm.Fault | None) -> str:
    per_dc = slo.per_dc or {}
    failed = sorted(dc for dc, d in per_dc.items() if d.verdict is Verdict.FAILED)
    if not failed:
        return ""
    all_dcs = sorted(per_dc) or _all_dcs(journal)
    name = str(slo.name)
    spec = SLIS.get(name)
    text = f"{spec.broke if spec else name + ' broke'} {fmt.dcs(failed, all_dcs)}"
    why = _why(journal.target, name, failed, fault)
    return f"{text} {why}" if why else text


def _why(shape: jm.Target, sli: str, failed: list[str], fault: jm.Fault | None) -> str:
    """Why the breach spread where it did, from what the fault matched."""
    if fault is None:
        return ""
    target = fault.target or jm.FaultTarget()
    services = target.services or []
    hit_dcs = {s.dc for s in services if s.dc}
    sel_dc = target.selector.dc if target.selector else None
    if sel_dc:
        hit_dcs.add(sel_dc)
    spread = [dc for dc in failed if dc not in hit_dcs]
    if spread:  # DCs the fault did not touch broke too: a service they depend on explains it
        cause = shared_cause(shape, sli, spread, {str(s.name) for s in services})
        if cause is None:
            return ""
        hit = [s for s in services if s.kind == cause]
        where = fmt.join_and(sorted({str(s.dc) for s in hit}))
        noun = (shape.nouns or {}).get(cause, cause)
        how = "cut off from the other DCs" if fault.name == "dc_partition" else ""
        return f"because {noun} lives in {where}" + (f", {how}" if how else "")
    if fault.name in _DC_FAULTS and set(failed) <= hit_dcs:
        return f"({_DC_FAULTS[fault.name]})"
    names = sorted({str(s.name) for s in services if s.dc in failed})
    if names and len(names) <= 3:
        return f"(where {fmt.join_and(names)} {'lives' if len(names) == 1 else 'live'})"
    return ""


def _recovery(journal: Journal, slo: jm.Slo, fault: jm.Fault | None) -> str:
    name = str(slo.name)
    rec = [s.recovered_s for s in journal.slos if s.name == name and s.recovered_s is not None]
    if rec:
        return f"it recovered {fmt.dur(float(rec[0]))} after the last fault ended"
    if fault is None:
        return ""
    later = _phases_after(journal, str(slo.phase))
    held = [s for s in journal.slos if s.name == name and s.phase in later]
    if held and all(s.verdict is Verdict.PASSED for s in held):
        return f"it held again in the {fmt.join_and([str(s.phase) for s in held])} phase"
    if fault.ended_s is None:
        return f"{_label(fault)} was still active when the run ended"
    return "it had not recovered by the end of the run"


def _breaking_point(journal: Journal) -> list[str]:
    bp = journal.breaking_point
    if bp is None:
        return []
    label = bp.label or bp.fault or "the swept fault"
    steps = {s.index: s for s in bp.steps or []}
    sweep_unit = bp.unit or ""
    out = []
    for name, broke in (bp.first_broken or {}).items():
        slo = first_entry(journal, name)
        unit, op = str(slo.unit or ""), slo.op or ">="
        if broke is None:
            top = max((s.value for s in steps.values() if s.value is not None), default=None)
            if top is not None:
                out.append(f"{name} held at every step, up to {fmt.param(top, sweep_unit)} {label}")
            continue
        edge = "fell below" if op == ">=" else "rose above"
        text = (f"{name} {edge} {fmt.value(name, unit, slo.threshold)} at "
                f"{fmt.param(broke.value, sweep_unit)} {label}")
        step = steps.get(broke.step)
        if step:
            got = (step.slos or {}).get(name)
            if got is not None and got.value is not None:
                text += f" ({fmt.value(name, unit, got.value)})"
        prev = steps.get((broke.step or 0) - 1)
        if prev and prev.value is not None:
            text += f"; it held at {fmt.param(prev.value, sweep_unit)}"
        out.append(text)
    return out


def _halt(journal: Journal) -> list[str]:
    h = journal.halt
    if h is None:
        return []
    sli = str(h.sli or "an SLO")
    unit = str(first_entry(journal, sli).unit or "")
    text = (f"the run was halted at {fmt.t(h.at_s)}: {sli} reached "
            f"{fmt.value(sli, unit, h.value)}, past the halt limit ({h.objective or '?'})")
    if h.detected_after_s is not None:
        text += f", detected {fmt.dur(h.detected_after_s)} after the fault began"
    if h.halted_after_s is not None:
        text += f" and stopped {fmt.dur(h.halted_after_s)} later"
    return [text]


def _aborted(journal: Journal) -> list[str]:
    if fmt.verdict_of(journal) is not Verdict.ABORTED:
        return []
    reason = str(journal.reason or "no reason recorded")
    if journal.halt is not None and reason.lower().startswith("halt"):
        return []  # the halt sentence says it
    return [f"the run was aborted: {reason}"]


def _inconclusive(journal: Journal) -> list[str]:
    if fmt.verdict_of(journal) is not Verdict.INCONCLUSIVE:
        return []
    reason = str(journal.reason or "")
    gate = any(e.kind == "gate" and "did not hold" in str(e.message) for e in journal.events)
    if gate or "steady state" in reason:
        text = "the steady-state gate did not pass, so no fault was injected"
    else:
        text = "the run was inconclusive"
    return [f"{text}: {reason}" if reason else text]


SATURATED = "the probe, not the stack, was saturated"


def _saturated(journal: Journal) -> list[str]:
    """Where the measuring side could not keep up: which SLOs it left undecided, and the
    probe process that lagged most."""
    hit = [s for s in journal.slos if s.verdict is Verdict.INCONCLUSIVE and SATURATED in str(s.note or "")]
    seconds = (journal.probe.saturated_s if journal.probe else None) or []
    if not hit and not seconds:
        return []
    out = []
    if hit:
        names = sorted({f"{s.name} [{s.phase}]" for s in hit})
        out.append(f"{SATURATED} for {', '.join(names)}: {_after(hit[0].note)}")
    if seconds:
        worst = max(seconds, key=lambda x: x.lag_ms or 0)
        out.append(f"the probe lagged in {len(seconds)} s of the run (worst: {worst.process} "
                   f"{_num(worst.lag_ms, '.0f')} ms behind at t={worst.t_s} s, CPU "
                   f"{_num(worst.cpu_pct, '.0f')} %); what it measured then was set aside, not "
                   "blamed on the stack")
    return out


def _num(v: float | None, spec: str) -> str:
    return "?" if v is None else format(v, spec)


def _after(note: str) -> str:
    return note.split(f"{SATURATED}: ", 1)[-1]


def _unmeasured(journal: Journal) -> list[str]:
    missing = [f"{s.name} [{s.phase}]" for s in journal.slos
               if s.verdict is Verdict.INCONCLUSIVE and decides(s) and SATURATED not in str(s.note or "")]
    return [f"not measured: {', '.join(missing)}"] if missing else []


def _fault_problems(journal: Journal) -> list[str]:
    out = []
    for f in journal.faults:
        if f.inject_error:
            out.append(f"{_label(f)} could not be injected: {f.inject_error}")
        if f.reverted is False:
            err = f.revert_error or "no error recorded"
            out.append(f"{_label(f)} was NOT reverted ({err}); run `chaos stack reset`")
    return out


# -- helpers ---------------------------------------------------------------------------------
def _label(fault: jm.Fault) -> str:
    return str(fault.label or fault.name or fault.id or "a fault")


def first_entry(journal: Journal, name: str) -> jm.Slo:
    """The first SLO entry of an SLI; else what its series says of it (unit, op, threshold)."""
    for s in journal.slos:
        if s.name == name:
            return s
    series = (journal.series or {}).get(name) or jm.SeriesDoc()
    return jm.Slo(name=name, unit=series.unit or "", op=series.op or ">=", threshold=series.threshold)


def _phases_after(journal: Journal, phase: str) -> list[str]:
    names = [str(p.name) for p in journal.phases or []]
    return names[names.index(phase) + 1:] if phase in names else []


def _all_dcs(journal: Journal) -> list[str]:
    return sorted(((journal.audience.per_dc if journal.audience else None) or {}).keys())


def shared_cause(shape: jm.Target | dict, sli: str, dcs: list[str], hit: set[str]) -> str | None:
    """The kind of a hit service that the SLI's client path in ``dcs`` depends on, from
    the target's shape (the journal's target, or ``Target.shape()``): the first found
    walking the path's kinds in order (a join goes through the gateway before the edge),
    each service's dependencies breadth first."""
    if not isinstance(shape, jm.Target):
        shape = jm.Target.model_validate(shape)
    spec = SLIS.get(sli)
    path = ((shape.paths or {}).get(spec.path if spec else "audio")) or []
    depends = shape.depends or {}
    services = shape.services or []
    kind_of = {str(s.name): str(s.kind) for s in services}
    for dc in dcs:
        for kind in path:
            pool = [s for s in services if s.kind == kind]
            for s in [s for s in pool if s.dc == dc] or pool:
                todo, seen = list(depends.get(str(s.name)) or []), set()
                while todo:
                    d = str(todo.pop(0))
                    if d in seen:
                        continue
                    seen.add(d)
                    if d in hit:
                        return kind_of.get(d)
                    todo += list(depends.get(d) or [])
    return None
