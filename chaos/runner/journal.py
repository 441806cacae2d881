"""The journal: the single result document of a run, written
atomically to ``reports/<run-id>/journal.json``. Reports read only this file."""

from __future__ import annotations

import datetime as dt
import json
import os
import re
import uuid
from pathlib import Path

from ..targets.model import Target

from ..errors import ConfigError
from ..experiment import Experiment, default_label
from ..model import jsonable
from ..slo import DEFAULTS, Objective
from ..targets.state import write_atomic
from .history import declaration
from .judge import PHASED, WHOLE_RUN, bins
from .method import FaultRun, Timeline

SCHEMA = 1


def new_run_id(exp: Experiment, now: dt.datetime | None = None) -> str:
    now = now or dt.datetime.now(dt.timezone.utc)
    slug = re.sub(r"[^A-Za-z0-9_.-]+", "-", exp.name)[:48]
    return f"{now.strftime('%Y%m%dT%H%M%SZ')}-{slug}-{uuid.uuid4().hex[:4]}"


def prepare_dir(reports_dir: str | os.PathLike, run_id: str) -> Path:
    """Create reports/<run-id>/ and prove it is writable, before anything is injected."""
    out = Path(reports_dir) / run_id
    try:
        out.mkdir(parents=True, exist_ok=False)
        probe = out / ".writable"
        probe.write_text("")
        probe.unlink()
    except (OSError, ValueError) as e:   # ValueError: a NUL byte in the path
        raise ConfigError(f"cannot write the run's reports to {out!s:.200}: "
                          f"{getattr(e, 'strerror', None) or e}. Choose a "
                          "writable directory (pytest --chaos-reports DIR) or fix its permissions; "
                          "nothing was injected") from None
    return out


def fault_doc(f: FaultRun, topo: Target) -> dict:
    spec = f.step.spec
    names = sorted({a.target for a in f.actions})
    services = [{"name": s.name, "kind": s.kind, "dc": s.dc} for n in names
                if (s := topo.services.get(n)) is not None]
    links = [{"name": lk.name, "src": lk.src, "dst": lk.dst} for n in names
             if (lk := topo.links.get(n)) is not None]
    sel = spec.target
    return {"id": f.actions[0].fault_id if f.actions else "", "name": spec.name,
            "params": dict(spec.params), "label": f.step.describe() or default_label(spec),
            "target": {"selector": {"service": sel.service, "dc": sel.dc, "link": sel.link,
                                    "count": sel.count},
                       "services": services, "links": links,
                       "others": [n for n in names if n not in topo.services and n not in topo.links]},
            "planned_at_s": f.step.at_s, "duration_s": f.step.duration_s,
            "started_s": None if f.started_s is None else round(f.started_s, 3),
            "ended_s": None if f.ended_s is None else round(f.ended_s, 3),
            "reverted": f.reverted or f.started_s is None, "revert_error": f.revert_error,
            "inject_error": f.inject_error, "step": f.step.step,
            "actions": [a.describe() for a in f.actions]}


def series_doc(exp: Experiment, overall, per_dc, end_s: float) -> dict:
    declared: dict[str, Objective] = {}
    for group in (exp.during, exp.after, exp.steady_state):
        declared |= {o.sli: o for o in group}
    cap = exp.audience.join_timeout_s
    out = {}
    for name in PHASED + WHOLE_RUN + ("audience_retained",):
        if name not in overall:
            continue
        o = declared.get(name, DEFAULTS[name])
        c = cap if name == "join_time" else None
        doc = {"unit": o.unit, "stat": o.stat, "op": o.op, "threshold": o.threshold,
               **bins(o, overall[name], end_s, c), "per_dc": {}}
        if name == "join_time":
            doc["note"] = f"failed joins are drawn at the join timeout ({cap:g} s)"
        for dc in per_dc:
            if name in per_dc.get(dc, {}):
                doc["per_dc"][dc] = bins(o, per_dc[dc][name], end_s, c)
        out[name] = doc
    return out


def build(*, exp: Experiment, run_id: str, topo: Target, stack_id: str, started_at: str,
          ended_at: str, duration_s: float, verdict: str, reason: str, tl: Timeline,
          slos: list[dict], breaking_point: dict | None, series: dict, audience: dict,
          storms: list[dict], scale: dict, reproduce: str, probe: dict | None = None) -> dict:
    return jsonable({
        "schema": SCHEMA, "run_id": run_id,
        "experiment": {"name": exp.name, "title": exp.title, "expects": exp.expects,
                       "declaration": declaration(exp),
                       "reproduce": reproduce},
        "target": {"runtime": topo.runtime, "profile": topo.profile, "stack_id": stack_id,
                   "scale_factor": scale, **topo.shape(), "source": topo.source,
                   "fingerprint": topo.fingerprint()},
        "started_at": started_at, "ended_at": ended_at, "duration_s": round(duration_s, 3),
        "verdict": verdict, "reason": reason,
        "phases": [{"name": n, "start_s": round(a, 3), "end_s": round(b, 3)}
                   for n, (a, b) in tl.phases.items()],
        "slos": slos, "faults": [fault_doc(f, topo) for f in tl.faults],
        "events": sorted(tl.events, key=lambda e: e["t_s"]),
        "halt": tl.halt, "breaking_point": breaking_point, "series": series,
        "audience": audience, "storms": storms,
        # every probe process's lag, CPU and memory; the seconds it could not keep up
        "probe": probe,
    })


def minimal(*, exp: Experiment, run_id: str, topo: Target, stack_id: str, started_at: str,
            ended_at: str, duration_s: float, verdict: str, reason: str, tl: Timeline,
            error: str, **_ignored) -> dict:
    """The bare record of a run whose full journal could not be built: what ran, when, which
    faults and whether they were reverted, and why the rest is missing. Never passed."""
    faults = []
    for f in tl.faults:
        faults.append({"name": str(getattr(f.step.spec, "name", "?")), "label": str(f.step.describe()),
                       "target": {}, "started_s": f.started_s, "ended_s": f.ended_s,
                       "reverted": f.reverted or f.started_s is None,
                       "revert_error": f.revert_error, "actions": [a.describe() for a in f.actions]})
    if verdict == "passed":
        verdict, reason = "inconclusive", error
    return jsonable({
        "schema": SCHEMA, "run_id": run_id,
        "experiment": {"name": exp.name, "title": exp.title, "expects": exp.expects},
        "target": {"runtime": topo.runtime, "profile": topo.profile, "stack_id": stack_id},
        "started_at": started_at, "ended_at": ended_at, "duration_s": round(duration_s, 3),
        "verdict": verdict, "reason": reason, "error": error, "phases": [], "slos": [],
        "faults": faults, "events": sorted(tl.events, key=lambda e: e.get("t_s", 0.0)),
        "halt": tl.halt, "breaking_point": None, "series": {}, "audience": {}, "storms": [],
    })


def write(journal: dict, out_dir: Path) -> Path:
    """Atomically; whatever the document holds (see jsonable), it is written."""
    path = out_dir / "journal.json"
    try:
        text = json.dumps(journal, indent=1, allow_nan=False)
    except (TypeError, ValueError, RecursionError):
        text = json.dumps(jsonable(journal), indent=1, allow_nan=False)
    write_atomic(path, text)
    return path
