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

from chaos.core.slo import SLIS
from chaos.report import fmt

_DC_FAULTS = {"dc_loss": "the DC that was lost", "dc_partition": "the DC that was cut off"}


def sentences(journal: dict) -> list[str]:
    """Everything worth saying about a run, most important first."""
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
    if not out and fmt.verdict_of(journal) == "passed":
        out.append("every SLO held; nothing broke")
    if not out:
        reason = journal.get("reason") or "the journal gives no reason"
        out.append(f"the verdict is {fmt.verdict_of(journal)}: {reason}")
    return out


def headline(journal: dict) -> str:
    """One line: the verdict and the first thing to know."""
    return f"{fmt.verdict_of(journal).upper()}: {sentences(journal)[0]}"


# -- the pieces ----------------------------------------------------------------------------
def _breaches(journal: dict, required: bool) -> list[str]:
    by_name: dict[str, list[dict]] = {}
    for s in journal.get("slos") or []:
        if s.get("first_breach_s") is None or bool(s.get("required", True)) != required:
            continue
        by_name.setdefault(str(s.get("name")), []).append(s)
    out = []
    for name, entries in sorted(by_name.items(), key=lambda kv: min(e["first_breach_s"] for e in kv[1])):
        entries.sort(key=lambda e: e["first_breach_s"])
        text = breach_sentence(journal, entries[0])
        if len(entries) > 1:
            text += f" (it failed in the {fmt.join_and([str(e.get('phase')) for e in entries])} phases)"
        if not required:
            text += "; observed only, it does not decide the verdict"
        out.append(text)
    return out


def breach_sentence(journal: dict, slo: dict) -> str:
    """The where-it-broke sentence for one breached SLO entry."""
    name, unit = str(slo.get("name")), str(slo.get("unit") or "")
    at = float(slo["first_breach_s"])
    op = slo.get("op") or ("<=" if "<=" in str(slo.get("objective", "")) else ">=")
    stat = slo.get("stat") or ""
    subject = f"{name} {stat}" if stat.startswith("p") else name
    verb, side = ("rose to", "limit") if op == "<=" else ("fell to", "minimum")
    text = (f"{subject} {verb} {fmt.entry_value(slo)} "
            f"({side} {fmt.value(name, unit, slo.get('threshold'))}) at {fmt.t(at)}")
    fault = fault_at(journal, at)
    if fault is None:
        text += ", before any fault was injected"
    else:
        ended = fault.get("ended_s")
        if ended is not None and float(ended) < at:   # it broke once the fault was over
            text += f", {fmt.dur(at - float(ended))} after {_label(fault)} ended"
        else:
            text += f", {fmt.dur(at - float(fault['started_s']))} after {_label(fault)} started"
    where = _where(journal, slo, fault)
    if where:
        text += f"; {where}"
    recovery = _recovery(journal, slo, fault)
    if recovery:
        text += f"; {recovery}"
    return text


def fault_at(journal: dict, t_s: float) -> dict | None:
    """The fault active at t_s (the latest started, if several), else the last one started before."""
    started = [f for f in journal.get("faults") or [] if f.get("started_s") is not None
               and float(f["started_s"]) <= t_s + 1e-9]
    if not started:
        return None
    active = [f for f in started if f.get("ended_s") is None or float(f["ended_s"]) >= t_s]
    return max(active or started, key=lambda f: float(f["started_s"]))


def _where(journal: dict, slo: dict, fault: dict | None) -> str:
    per_dc = slo.get("per_dc") or {}
    failed = sorted(dc for dc, d in per_dc.items() if (d or {}).get("verdict") == "failed")
    if not failed:
        return ""
    all_dcs = sorted(per_dc) or _all_dcs(journal)
    name = str(slo.get("name"))
    spec = SLIS.get(name)
    text = f"{spec.broke if spec else name + ' broke'} {fmt.dcs(failed, all_dcs)}"
    why = _why(journal.get("target") or {}, name, failed, fault)
    return f"{text} {why}" if why else text


def _why(shape: dict, sli: str, failed: list[str], fault: dict | None) -> str:
    """Why the breach spread where it did, from what the fault matched."""
    if fault is None:
        return ""
    services = (fault.get("target") or {}).get("services") or []
    hit_dcs = {s.get("dc") for s in services if s.get("dc")}
    sel_dc = ((fault.get("target") or {}).get("selector") or {}).get("dc")
    if sel_dc:
        hit_dcs.add(sel_dc)
    spread = [dc for dc in failed if dc not in hit_dcs]
    if spread:  # DCs the fault did not touch broke too: a service they depend on explains it
        cause = shared_cause(shape, sli, spread, {str(s.get("name")) for s in services})
        if cause is None:
            return ""
        hit = [s for s in services if s.get("kind") == cause]
        where = fmt.join_and(sorted({str(s.get("dc")) for s in hit}))
        noun = (shape.get("nouns") or {}).get(cause, cause)
        how = "cut off from the other DCs" if fault.get("name") == "dc_partition" else ""
        return f"because {noun} lives in {where}" + (f", {how}" if how else "")
    if fault.get("name") in _DC_FAULTS and set(failed) <= hit_dcs:
        return f"({_DC_FAULTS[fault['name']]})"
    names = sorted({str(s.get("name")) for s in services if s.get("dc") in failed})
    if names and len(names) <= 3:
        return f"(where {fmt.join_and(names)} {'lives' if len(names) == 1 else 'live'})"
    return ""


def _recovery(journal: dict, slo: dict, fault: dict | None) -> str:
    name = str(slo.get("name"))
    rec = [s.get("recovered_s") for s in journal.get("slos") or []
           if s.get("name") == name and s.get("recovered_s") is not None]
    if rec:
        return f"it recovered {fmt.dur(float(rec[0]))} after the last fault ended"
    if fault is None:
        return ""
    later = _phases_after(journal, str(slo.get("phase")))
    held = [s for s in journal.get("slos") or [] if s.get("name") == name and s.get("phase") in later]
    if held and all(s.get("verdict") == "passed" for s in held):
        return f"it held again in the {fmt.join_and([str(s.get('phase')) for s in held])} phase"
    if fault.get("ended_s") is None:
        return f"{_label(fault)} was still active when the run ended"
    return "it had not recovered by the end of the run"


def _breaking_point(journal: dict) -> list[str]:
    bp = journal.get("breaking_point")
    if not isinstance(bp, dict):
        return []
    label = bp.get("label") or bp.get("fault") or "the swept fault"
    steps = {s.get("index"): s for s in bp.get("steps") or []}
    out = []
    for name, broke in (bp.get("first_broken") or {}).items():
        slo = first_entry(journal, name)
        unit, op = str(slo.get("unit") or ""), slo.get("op", ">=")
        if broke is None:
            top = max((s.get("value") for s in steps.values() if s.get("value") is not None), default=None)
            if top is not None:
                out.append(f"{name} held at every step, up to {fmt.param(top, bp.get('unit', ''))} {label}")
            continue
        edge = "fell below" if op == ">=" else "rose above"
        text = (f"{name} {edge} {fmt.value(name, unit, slo.get('threshold'))} at "
                f"{fmt.param(broke.get('value'), bp.get('unit', ''))} {label}")
        step = steps.get(broke.get("step"))
        if step:
            got = (step.get("slos") or {}).get(name) or {}
            if got.get("value") is not None:
                text += f" ({fmt.value(name, unit, got['value'])})"
        prev = steps.get((broke.get("step") or 0) - 1)
        if prev and prev.get("value") is not None:
            text += f"; it held at {fmt.param(prev['value'], bp.get('unit', ''))}"
        out.append(text)
    return out


def _halt(journal: dict) -> list[str]:
    h = journal.get("halt")
    if not isinstance(h, dict):
        return []
    sli = str(h.get("sli", "an SLO"))
    unit = str(first_entry(journal, sli).get("unit") or "")
    text = (f"the run was halted at {fmt.t(h.get('at_s'))}: {sli} reached "
            f"{fmt.value(sli, unit, h.get('value'))}, past the halt limit ({h.get('objective', '?')})")
    if h.get("detected_after_s") is not None:
        text += f", detected {fmt.dur(h['detected_after_s'])} after the fault began"
    if h.get("halted_after_s") is not None:
        text += f" and stopped {fmt.dur(h['halted_after_s'])} later"
    return [text]


def _aborted(journal: dict) -> list[str]:
    if fmt.verdict_of(journal) != "aborted":
        return []
    reason = str(journal.get("reason") or "no reason recorded")
    if journal.get("halt") and reason.lower().startswith("halt"):
        return []  # the halt sentence says it
    return [f"the run was aborted: {reason}"]


def _inconclusive(journal: dict) -> list[str]:
    if fmt.verdict_of(journal) != "inconclusive":
        return []
    reason = str(journal.get("reason") or "")
    gate = any(e.get("kind") == "gate" and "did not hold" in str(e.get("message"))
               for e in journal.get("events") or [])
    if gate or "steady state" in reason:
        text = "the steady-state gate did not pass, so no fault was injected"
    else:
        text = "the run was inconclusive"
    return [f"{text}: {reason}" if reason else text]


SATURATED = "the probe, not the stack, was saturated"


def _saturated(journal: dict) -> list[str]:
    """Where the measuring side could not keep up: which SLOs it left undecided, and the
    probe process that lagged most."""
    hit = [s for s in journal.get("slos") or []
           if s.get("verdict") == "inconclusive" and SATURATED in str(s.get("note") or "")]
    probe = journal.get("probe") or {}
    seconds = probe.get("saturated_s") or []
    if not hit and not seconds:
        return []
    out = []
    if hit:
        names = sorted({f"{s.get('name')} [{s.get('phase')}]" for s in hit})
        out.append(f"{SATURATED} for {', '.join(names)}: {_after(hit[0]['note'])}")
    if seconds:
        worst = max(seconds, key=lambda x: x.get("lag_ms") or 0)
        out.append(f"the probe lagged in {len(seconds)} s of the run (worst: {worst.get('process')} "
                   f"{worst.get('lag_ms'):.0f} ms behind at t={worst.get('t_s')} s, CPU "
                   f"{worst.get('cpu_pct'):.0f} %); what it measured then was set aside, not "
                   "blamed on the stack")
    return out


def _after(note: str) -> str:
    return note.split(f"{SATURATED}: ", 1)[-1]


def _unmeasured(journal: dict) -> list[str]:
    missing = [f"{s.get('name')} [{s.get('phase')}]" for s in journal.get("slos") or []
               if s.get("verdict") == "inconclusive" and s.get("required", True)
               and SATURATED not in str(s.get("note") or "")]
    return [f"not measured: {', '.join(missing)}"] if missing else []


def _fault_problems(journal: dict) -> list[str]:
    out = []
    for f in journal.get("faults") or []:
        if f.get("inject_error"):
            out.append(f"{_label(f)} could not be injected: {f['inject_error']}")
        if not f.get("reverted", True):
            err = f.get("revert_error") or "no error recorded"
            out.append(f"{_label(f)} was NOT reverted ({err}); run `chaos stack reset`")
    return out


# -- helpers ---------------------------------------------------------------------------------
def _label(fault: dict) -> str:
    return str(fault.get("label") or fault.get("name") or fault.get("id") or "a fault")


def first_entry(journal: dict, name: str) -> dict:
    for s in journal.get("slos") or []:
        if s.get("name") == name:
            return s
    series = (journal.get("series") or {}).get(name) or {}
    return {"unit": series.get("unit", ""), "op": series.get("op", ">="), "threshold": series.get("threshold")}


def _phases_after(journal: dict, phase: str) -> list[str]:
    names = [str(p.get("name")) for p in journal.get("phases") or []]
    return names[names.index(phase) + 1:] if phase in names else []


def _all_dcs(journal: dict) -> list[str]:
    return sorted(((journal.get("audience") or {}).get("per_dc") or {}).keys())


def shared_cause(shape: dict, sli: str, dcs: list[str], hit: set[str]) -> str | None:
    """The kind of a hit service that the SLI's client path in ``dcs`` depends on, from
    the target's shape: the first found walking the path's kinds in order (a join goes
    through the gateway before the edge), each service's dependencies breadth first."""
    spec = SLIS.get(sli)
    path = ((shape.get("paths") or {}).get(spec.path if spec else "audio")) or []
    depends = shape.get("depends") or {}
    services = [s for s in shape.get("services") or [] if isinstance(s, dict)]
    kind_of = {str(s.get("name")): str(s.get("kind")) for s in services}
    for dc in dcs:
        for kind in path:
            pool = [s for s in services if s.get("kind") == kind]
            for s in [s for s in pool if s.get("dc") == dc] or pool:
                todo, seen = list(depends.get(str(s.get("name"))) or []), set()
                while todo:
                    d = str(todo.pop(0))
                    if d in seen:
                        continue
                    seen.add(d)
                    if d in hit:
                        return kind_of.get(d)
                    todo += list(depends.get(d) or [])
    return None
