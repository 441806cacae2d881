"""The journal: the single result document of a run, written
atomically to ``reports/<run-id>/journal.json``. Reports read only this file.

The run's pieces are assembled here into the typed journal (chaos.core.journal) and
turned into JSON at one boundary, ``write``."""

from __future__ import annotations

import datetime as dt
import json
import os
import re
import uuid
from pathlib import Path

from pydantic import ValidationError

from chaos.core.target import Target

from chaos.core.errors import ConfigError
from chaos.experiment import Experiment, default_label
from chaos.core import atomic, journal as jm
from chaos.core.model import jsonable
from chaos.core.slo import DEFAULTS, Objective
from chaos.runner.history import declaration
from chaos.core.judge import PHASED, WHOLE_RUN, bins
from chaos.core.timeline import FaultRun, Timeline

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


def fault_doc(f: FaultRun, topo: Target) -> jm.Fault:
    spec = f.step.spec
    names = sorted({a.target for a in f.actions})
    services = [jm.Named(name=s.name, kind=s.kind, dc=s.dc) for n in names
                if (s := topo.services.get(n)) is not None]
    links = [jm.Named(name=lk.name, src=lk.src, dst=lk.dst) for n in names
             if (lk := topo.links.get(n)) is not None]
    sel = spec.target
    return jm.Fault(
        id=f.actions[0].fault_id if f.actions else "", name=spec.name, params=dict(spec.params),
        label=f.step.describe() or default_label(spec),
        target=jm.FaultTarget(
            selector=jm.Selector(service=sel.service, dc=sel.dc, link=sel.link, count=sel.count),
            services=services, links=links,
            others=[n for n in names if n not in topo.services and n not in topo.links]),
        planned_at_s=f.step.at_s, duration_s=f.step.duration_s,
        started_s=None if f.started_s is None else round(f.started_s, 3),
        ended_s=None if f.ended_s is None else round(f.ended_s, 3),
        reverted=f.reverted or f.started_s is None, revert_error=f.revert_error,
        inject_error=f.inject_error, step=f.step.step, actions=[a.describe() for a in f.actions])


def series_doc(exp: Experiment, overall, per_dc, end_s: float) -> dict[str, jm.SeriesDoc]:
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
        extra = {"note": f"failed joins are drawn at the join timeout ({cap:g} s)"} \
            if name == "join_time" else {}
        out[name] = jm.SeriesDoc(
            unit=o.unit, stat=o.stat, op=o.op, threshold=o.threshold, **bins(o, overall[name], end_s, c),
            per_dc={dc: jm.Points(**bins(o, per_dc[dc][name], end_s, c))
                    for dc in per_dc if name in per_dc.get(dc, {})}, **extra)
    return out


def _events(events: list[dict]) -> list[jm.Event]:
    return [jm.Event.model_validate(e) for e in sorted(events, key=lambda e: e["t_s"])]


def build(*, exp: Experiment, run_id: str, topo: Target, stack_id: str, started_at: str,
          ended_at: str, duration_s: float, verdict: str, reason: str, tl: Timeline,
          slos: list[jm.Slo], breaking_point: jm.BreakingPoint | None,
          series: dict[str, jm.SeriesDoc], audience: jm.Audience, storms: list[dict], scale: dict,
          reproduce: str, probe: dict | None = None) -> jm.Journal:
    """The run's journal from its typed parts (a part given as a dict is read through its
    model: the storms' and the probes' own to_dict(), a test's hand-made entry)."""
    return jm.Journal(
        schema_=SCHEMA, run_id=run_id,
        experiment=jm.Experiment(name=exp.name, title=exp.title, expects=exp.expects,
                                 declaration=declaration(exp), reproduce=reproduce),
        target=jm.Target(runtime=topo.runtime, profile=topo.profile, stack_id=stack_id,
                         scale_factor=jm.Scale.model_validate(scale), **topo.shape(),
                         source=topo.source, fingerprint=topo.fingerprint()),
        started_at=started_at, ended_at=ended_at, duration_s=round(duration_s, 3),
        verdict=verdict, reason=reason,
        phases=[jm.Phase(name=n, start_s=round(a, 3), end_s=round(b, 3))
                for n, (a, b) in tl.phases.items()],
        slos=[jm.Slo.model_validate(e) for e in slos], faults=[fault_doc(f, topo) for f in tl.faults],
        events=_events(tl.events),
        halt=None if tl.halt is None else jm.Halt.model_validate(tl.halt),
        breaking_point=None if breaking_point is None else jm.BreakingPoint.model_validate(breaking_point),
        series={k: jm.SeriesDoc.model_validate(v) for k, v in series.items()},
        audience=jm.Audience.model_validate(audience),
        storms=[jm.Storm.model_validate(x) for x in storms],
        # every probe process's lag, CPU and memory; the seconds it could not keep up
        probe=None if probe is None else jm.ProbeHealth.model_validate(probe))


def minimal(*, exp: Experiment, run_id: str, topo: Target, stack_id: str, started_at: str,
            ended_at: str, duration_s: float, verdict: str, reason: str, tl: Timeline,
            error: str, **_ignored) -> jm.Journal:
    """The bare record of a run whose full journal could not be built: what ran, when, which
    faults and whether they were reverted, and why the rest is missing. Never passed. Every
    value is made plain first (see jsonable) and a part that still does not fit is left
    out, so that this record is always written."""
    def text(v) -> str | None:
        return None if v is None else str(jsonable(v))

    def number(v) -> float | None:
        v = jsonable(v)
        return v if isinstance(v, (int, float)) and not isinstance(v, bool) else None

    faults = []
    for f in tl.faults:
        faults.append(jm.Fault(
            name=str(getattr(f.step.spec, "name", "?")), label=text(f.step.describe()),
            target=jm.FaultTarget(), started_s=number(f.started_s), ended_s=number(f.ended_s),
            reverted=bool(f.reverted or f.started_s is None), revert_error=text(f.revert_error),
            actions=[text(a.describe()) for a in f.actions]))
    events = []
    for e in sorted(tl.events, key=lambda e: number(e.get("t_s")) or 0.0):
        try:
            events.append(jm.Event.model_validate(jsonable(e)))
        except ValidationError:   # this line's extra fields are lost, not the journal
            events.append(jm.Event(t_s=number(e.get("t_s")), kind=text(e.get("kind")),
                                   message=text(e.get("message"))))
    try:
        halt = tl.halt if tl.halt is None or isinstance(tl.halt, jm.Halt) else \
            jm.Halt.model_validate(jsonable(tl.halt))
    except ValidationError:
        halt = jm.Halt(message=text(tl.halt.get("message")) if isinstance(tl.halt, dict) else None)
    if verdict == "passed":
        verdict, reason = "inconclusive", error
    return jm.Journal(
        schema_=SCHEMA, run_id=text(run_id),
        experiment=jm.Experiment(name=text(exp.name), title=text(exp.title), expects=text(exp.expects)),
        target=jm.Target(runtime=text(topo.runtime), profile=text(topo.profile), stack_id=text(stack_id)),
        started_at=text(started_at), ended_at=text(ended_at), duration_s=number(round(duration_s, 3)),
        verdict=text(verdict), reason=text(reason), error=text(error), phases=[], slos=[],
        faults=faults, events=events, halt=halt, breaking_point=None, series={},
        audience=jm.Audience(), storms=[])


def document(journal: jm.Journal) -> dict:
    """The journal as the JSON object written to disk (and read by reports): the one place
    where the typed journal becomes JSON. No NaN or Infinity, no lone surrogates, no
    number past what readers can hold (see jsonable)."""
    return jsonable(journal.dump())


def write(journal: jm.Journal, out_dir: Path) -> Path:
    """Atomically; whatever the journal holds (see jsonable), it is written."""
    path = out_dir / "journal.json"
    atomic.write(path, json.dumps(document(journal), indent=1, allow_nan=False), atomic.ARTIFACT)
    return path
