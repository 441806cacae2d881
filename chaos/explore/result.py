"""An exploration's result, the way Hypothesis reports a failure: the minimal example to
paste, how often it reproduced, where it broke, the evidence, and a line to reproduce it;
or, when nothing broke, how much was tried and what it covered."""

from __future__ import annotations

from pathlib import Path

from chaos.explore.schedule import Schedule
from chaos.explore.search import Exploration


def _mins(s: float) -> str:
    return f"{s / 60:.1f} min" if s >= 90 else f"{s:.0f} s"


def render(r: Exploration, *, name: str = "explored_minimal", run_shape: dict | None = None,
           audience=None, reproduce: str = "") -> str:
    slos = ", ".join(o.sli for o in r.steady_state)
    tried = (f"{r.tried} schedule(s), {r.runs} run(s), {_mins(r.elapsed_s)} of a "
             f"{_mins(r.budget_s)} budget")
    if not r.found and r.verdict == "inconclusive":
        return "\n".join(_inconclusive(r, slos))
    if not r.found:
        lines = [f"No schedule broke {slos}: {tried}"
                 + (" (the budget ended the search)." if r.stopped_early else ".")]
        if r.unmeasured:
            lines.append(f"{r.unmeasured} of the {r.tried} schedule(s) could not be judged (every "
                         f"run of them was inconclusive): {_why(r.silences)}.")
        lines.append("Spread of what was tried:")
        lines += [f"  faults per schedule: {_counts(r.spread.get('faults_per_schedule', {}))}",
                  f"  kinds: {_counts(r.spread.get('kinds', {}))}",
                  f"  targets: {_counts(r.spread.get('targets', {}))}"]
        if r.closest is not None:
            s, sli, score = r.closest
            lines.append(f"Closest: {sli} reached {score:.0%} of its limit under {s.describe()}.")
        return "\n".join(lines)
    broke, runs = r.rate
    o = r.outcome
    which = ", ".join(o.broke) if o else slos
    kw = dict(run_shape or {})
    if audience is not None:
        kw["audience"] = audience
    k, n = r.needed, r.repeats
    lines = [f"Falsifying schedule: {broke} of {runs} run(s) broke {which} "
             f"({'reproducible' if broke == runs else 'intermittent'}); found in {tried}.",
             f"Each reduction step was taken only if it broke at least {k} of {n} runs; this "
             + ("schedule meets that rule." if r.reproduces else
                f"schedule does not ({broke} of {runs}): no schedule was shown to break that "
                "reliably, so it may not be the smallest one that does.")]
    if r.stopped_early:
        lines.append("The budget ended the search before the reduction finished: this is the "
                     "smallest breaking schedule found so far, not necessarily the smallest."
                     if not r.reduced else "The budget was spent by the end.")
    if r.first is not None and r.first != r.minimal:
        lines.append(f"Shrunk from: {r.first.describe()}")
    lines += ["", r.minimal.to_python(name, r.steady_state, **kw), ""]
    if o is not None:
        lines.append("Where it broke:")
        lines += [f"  {t}" for t in o.sentences]
        if o.run_dir:
            lines += [f"Journal: {Path(o.run_dir) / 'journal.json'}",
                      f"Report:  {Path(o.run_dir) / 'report.html'}"]
            if not reproduce:
                reproduce = f"chaos explore --replay {Path(o.run_dir) / 'schedule.json'} --repeats {runs or 3}"
    if reproduce:
        lines.append(f"Reproduce: {reproduce}")
    return "\n".join(lines)


def _why(silences: dict) -> str:
    return "; ".join(f"{why} ({n} run{'s' if n != 1 else ''})" for why, n in silences.items()) \
        or "no reason was recorded"


def _inconclusive(r: Exploration, slos: str) -> list[str]:
    """Every run said nothing: what was not measured, why, and what to do."""
    return [f"Inconclusive: {slos} could not be judged under any of the {r.tried} schedule(s) "
            f"tried: all {r.runs} run(s) were inconclusive, so nothing was measured "
            f"({_mins(r.elapsed_s)} of a {_mins(r.budget_s)} budget"
            + ("; the budget ended the search" if r.stopped_early else "") + ").",
            f"Why the runs said nothing: {_why(r.silences)}.",
            "No schedule was shown to hold or to break: make the stack healthy (`chaos stack "
            "status`; a run's gate must pass) and search again."]


def _counts(d: dict) -> str:
    return ", ".join(f"{k}: {v}" for k, v in d.items()) or "none"


def to_dict(r: Exploration) -> dict:
    def sched(s: Schedule | None):
        return None if s is None else {**s.to_dict(), "describe": s.describe()}
    o = r.outcome
    return {"verdict": r.verdict, "found": r.found, "steady_state": [x.sli for x in r.steady_state],
            "budget_s": r.budget_s, "elapsed_s": round(r.elapsed_s, 1), "tried": r.tried,
            "runs": r.runs, "replayed": r.replayed, "stopped_early": r.stopped_early,
            "reduced": r.reduced, "minimal": sched(r.minimal), "first": sched(r.first),
            "reproduced": {"broke": r.rate[0], "runs": r.rate[1], "needed": r.needed,
                           "of": r.repeats, "reproduces": r.reproduces},
            "unmeasured": r.unmeasured, "inconclusive_runs": dict(r.silences),
            "broke": list(o.broke) if o else [], "sentences": list(o.sentences) if o else [],
            "run_dir": o.run_dir if o else None, "spread": r.spread,
            "closest": None if r.closest is None else
            {"schedule": sched(r.closest[0]), "slo": r.closest[1], "closeness": round(r.closest[2], 3)}}
