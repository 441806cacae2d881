"""Run an experiment against the stack and write its results to ``reports/<run-id>/``.

    result = run(experiment, state)          # state: chaos.targets.stack.current()
    result.verdict, result.record, result.dir      # record: the typed journal

Lifecycle: everything is validated and the faults planned against
the stack first (a bad declaration, a sick stack or an unwritable report directory fail
here, before anything is injected); a watchdog is started; then the runner opens one probe
session (chaos.session.probe.open_session) and drives it with the method's timeline
(chaos.runner.method): steady state and its gate, the method with halt
conditions, revert, recovery. The run is judged (chaos.runner.judge), the journal written
atomically, and the report rendered from it. Ctrl-C: faults reverted, the journal written
with verdict ``aborted``, then KeyboardInterrupt is raised again for the caller.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import time
from dataclasses import dataclass, field
from pathlib import Path

from chaos.core.retry import RetryPolicy

from chaos.core.errors import ConfigError, ProbeError
from chaos.experiment import Experiment, validate
from chaos.faults.base import plan
from chaos.faults import overlap
from chaos.faults.engine import Engine
from chaos.faults.ledger import Ledger
from chaos.core import journal as jm
from chaos.core.journal import Journal
from chaos.core.model import Verdict
from chaos.targets.state import StackState
from chaos.runner import journal as jr
from chaos.runner.judge import breaking_point, judge_slos, verdict as run_verdict
from chaos.runner.method import Method, play_within

STOP_SLACK_S = 60.0       # the probe session's bound past the experiment's own length


@dataclass
class RunResult:
    """What ``chaos.run`` returns: the run's typed journal (``record``), its folder
    (``dir``, ``reports/<run-id>/``) and the files written there."""

    record: Journal              # the typed journal: what reports, checks and tests read
    dir: Path
    files: dict[str, Path] = field(default_factory=dict)

    @property
    def journal(self) -> dict:
        """The journal as JSON, the same as written to journal.json."""
        return jr.document(self.record)

    @property
    def verdict(self) -> Verdict:
        return Verdict(self.record.verdict)

    def slo(self, name: str, phase: str) -> jm.Slo | None:
        """The SLO entry of ``name`` judged in ``phase`` (a Phase, or a span's name)."""
        return next((s for s in self.record.slos if s.name == name and s.phase == phase), None)

    def notes(self) -> list[str]:
        """Why it failed, in lines a red test shows: the SLO, value against threshold, when,
        under which faults, which DC, and how to reproduce."""
        from chaos.report import narrative
        j = self.record
        lines = [f"{j.experiment.name}: {j.verdict} - {j.reason}"]
        lines += narrative.sentences(j)
        lines.append(f"report: {self.files.get('html', self.dir / 'report.html')}")
        if j.experiment.reproduce:
            lines.append(f"reproduce: {j.experiment.reproduce}")
        return lines


def retry_policy(exp: Experiment, state: StackState) -> RetryPolicy:
    """The clients' retry policy of a run: the audience's declared kind, else the stack's."""
    kind = exp.audience.retry
    if kind is None:
        return state.topology.client_retry
    try:
        return RetryPolicy(kind, 0.1, 2.0)
    except ConfigError as e:
        raise ConfigError(f"experiment {exp.name}: audience retry: {e}") from None


def preflight(exp: Experiment, state: StackState):
    """Everything checked before anything is touched: the declaration, the faults planned
    against this stack, the stack's health."""
    validate(exp)
    retry = retry_policy(exp, state)
    plans = []
    for step in exp.steps():
        try:
            plans.append((step, plan(step.spec, state.topology, None)))
        except ConfigError as e:
            raise ConfigError(f"experiment {exp.name}: {step.describe()}: {e}") from None
    try:
        overlap.check(overlap.Scheduled(step.describe(), step.at_s, step.at_s + step.duration_s,
                                        actions) for step, actions in plans)
        active = Ledger().active(state.stack_id)
        for step, actions in plans:
            overlap.check_active(actions, active, step.describe())
    except ConfigError as e:
        raise ConfigError(f"experiment {exp.name}: {e}") from None
    from chaos.targets import stack
    stack.require_healthy(state)
    return plans, retry


class Run:
    """One run's lifecycle, owned here: its report directory, its fault engine (with the
    run's own client slot), the probe session it opens and drives with a method, and its
    finish (judged, journal written, report rendered). An experiment's run plays a
    :class:`Method`; a game day's plays its player (a Method too)::

        r = Run(exp, state, "reports", retry=retry)
        method = Method(exp, r.engine, plans, clients=r.clients)
        r.play(method)                 # in this thread; Ctrl-C and errors go on its timeline
        result = r.finish(method)
    """

    def __init__(self, exp: Experiment, state: StackState, reports_dir: str | Path = "reports",
                 *, retry: RetryPolicy, seconds: float | None = None, space_prefix: str = "exp",
                 seed: int | None = None, scale=None, reproduce: str = "") -> None:
        from chaos.faults.executors import executors_for
        from chaos.faults.executors.client import ClientExecutor, ClientSlot
        from chaos.runner import metrics
        self._metrics_at = metrics.configured()   # CHAOS_METRICS_PORT: live SLIs on /metrics
        self.exp, self.state, self.retry, self.scale, self.reproduce = exp, state, retry, scale, reproduce
        self.seconds = exp.total_s + STOP_SLACK_S if seconds is None else seconds
        self.space = f"{space_prefix}-{exp.name[:40]}-{time.time_ns() % 10**6}"
        self.seed = exp.seed if seed is None else seed
        self.started = dt.datetime.now(dt.timezone.utc)
        self.run_id = jr.new_run_id(exp, self.started)
        self.out = jr.prepare_dir(reports_dir, self.run_id)
        self.clients = ClientSlot()
        self.engine = Engine(executors_for(state, {"client": ClientExecutor(state, self.clients)}),
                             state.stack_id)
        self.result = None             # the probe session's result, once it closed
        self._t_start = time.monotonic()

    def play(self, method: Method) -> None:
        """Open the probe session and drive it with ``method``, in this thread. What stops
        the run (the probe could not run, Ctrl-C, an error) goes on the method's timeline."""
        tl = method.tl
        metrics = None
        try:
            if self._metrics_at is not None:
                from chaos.runner.metrics import LiveMetrics
                metrics = LiveMetrics(self.exp.name, self.run_id, self.state.topology.dcs)
                metrics.serve(*self._metrics_at)
            self.result = asyncio.run(self._session(method, metrics))
        except ProbeError as e:
            tl.error = str(e)
            tl.abort = f"the probe could not run: {e}"
        except KeyboardInterrupt:
            tl.interrupted = True
            tl.abort = tl.abort or "interrupted (Ctrl-C)"
        except Exception as e:  # noqa: BLE001 - whatever failed, the run happened: record it
            tl.error = tl.error or f"{type(e).__name__}: {e}"
            tl.abort = tl.abort or f"the run failed: {type(e).__name__}: {e}"
        finally:
            if metrics is not None:
                metrics.close()

    async def _session(self, method: Method, metrics=None):
        from chaos.session.probe import open_session
        a = self.exp.audience
        async with open_session(self.state.topology, listeners=a.listeners, seconds=self.seconds,
                                join_timeout_s=a.join_timeout_s, retry=self.retry,
                                thick_per_dc=a.thick_per_dc, seed=self.seed, space=self.space,
                                scale=self.scale) as live:
            stop = asyncio.Event()
            follow = (asyncio.create_task(metrics.follow(method.tl, live, stop))
                      if metrics is not None else None)
            try:
                await play_within(method, live, self.seconds)
            finally:
                stop.set()
                if follow is not None:
                    await asyncio.gather(follow, return_exceptions=True)
        return live.result

    def finish(self, method: Method, amend=None) -> RunResult:
        """Judge the run and write its journal and report (see :func:`finish`)."""
        return finish(self.exp, self.state, self.run_id, self.out, self.started,
                      time.monotonic() - self._t_start, method, self.result, self.reproduce,
                      self.scale, amend)


def run(exp: Experiment, state: StackState, reports_dir: str | Path = "reports",
        progress=None, reproduce: str = "", scale=None) -> RunResult:
    """``scale`` (chaos.scale.ScaleOut): the engine and shards its join storms are fired
    from (None: this machine's load generator); the journal states it."""
    plans, retry = preflight(exp, state)
    r = Run(exp, state, reports_dir, retry=retry, scale=scale, reproduce=reproduce)
    method = Method(exp, r.engine, plans, progress, clients=r.clients)
    from chaos.faults.watchdog import guard
    try:
        with guard(state) if plans else contextlib.nullcontext():
            r.play(method)
    except Exception as e:  # noqa: BLE001 - the watchdog failed: the run still gets its journal
        method.tl.error = method.tl.error or f"{type(e).__name__}: {e}"
        method.tl.abort = method.tl.abort or f"the run failed: {type(e).__name__}: {e}"
    rr = r.finish(method)
    if method.tl.interrupted:
        raise KeyboardInterrupt(f"experiment {exp.name} interrupted; faults reverted; journal "
                                f"{rr.files['journal.json']}")
    return rr


def finish(exp, state, run_id, out, started, elapsed, method, result, reproduce,
            scale=None, amend=None) -> RunResult:
    """Judge the run and write its journal, then the report. Judging or rendering may fail
    (a bug, a value nobody foresaw): the failure goes into the journal, which is written
    whatever happens. ``amend(journal) -> journal`` (a game day's) adds to the journal before
    it is written."""
    tl = method.tl
    topo = state.topology
    end_s = max([span[1] for span in tl.phases.values()] + [0.0])
    slos, bp, series, audience, storms, scale_factor = [], None, {}, {}, [], {}
    judge_error = ""
    if result is not None:
        try:
            slos, bp, series, audience, storms, scale_factor = _judge(exp, tl, result, end_s, out, topo)
        except Exception as e:  # noqa: BLE001 - recorded; the verdict cannot be passed
            judge_error = f"{type(e).__name__}: {e}"
            slos, bp, series, audience, storms, scale_factor = [], None, {}, {}, [], {}
            tl.event(end_s, "error", f"the run could not be judged: {judge_error}")
    from chaos.scale.config import ScaleOut
    scale_factor = {**scale_factor, **(scale or ScaleOut()).to_dict()}  # which engine, how many shards
    from chaos.scale.verdict import dead_shards
    for line in dead_shards(storms):
        tl.event(end_s, "shard_dead", line)
    # every rule (chaos.core.judge.verdict) over what the run recorded
    v, reason = run_verdict(tl, slos, exp, storms=storms, measured=result is not None,
                            judge_error=judge_error)
    fields = dict(exp=exp, run_id=run_id, topo=topo, stack_id=state.stack_id,
                  started_at=started.isoformat(timespec="milliseconds"),
                  ended_at=dt.datetime.now(dt.timezone.utc).isoformat(timespec="milliseconds"),
                  duration_s=elapsed, verdict=str(v), reason=reason, tl=tl, slos=slos,
                  breaking_point=bp, series=series, audience=audience, storms=storms,
                  scale=scale_factor, reproduce=reproduce,
                  probe=_health(result))
    try:
        doc = jr.build(**fields)
    except Exception as e:  # noqa: BLE001 - the bare record instead of none
        doc = jr.minimal(**fields, error=f"the full journal could not be built: {type(e).__name__}: {e}")
    errors = [x for x in (tl.error, judge_error and f"judging: {judge_error}") if x]
    if errors:
        doc = doc.amended(error="; ".join(errors))
    if amend is not None:
        try:
            doc = amend(doc)
        except Exception as e:  # noqa: BLE001 - the run's own record stands without it
            why = f"game day record: {type(e).__name__}: {e}"
            doc = doc.amended(error="; ".join(x for x in (doc.error, why) if x))
    files = {"journal.json": jr.write(doc, out)}
    try:
        from chaos.report import render
        files.update(render(jr.document(doc), out))
    except Exception as e:  # noqa: BLE001 - the journal stands; `chaos report` re-renders it
        doc = doc.amended(report_error=f"{type(e).__name__}: {e}")
        jr.write(doc, out)
        files["report_error"] = out / "report-error.txt"
        files["report_error"].write_text(f"{type(e).__name__}: {e}\n")
    doc = _trace(doc, out)
    return RunResult(doc, out, files)


def _trace(doc, out):
    """The run as an OpenTelemetry trace, when the OTEL_* environment asks for one; its id (or
    why it could not be sent) is added to the journal."""
    from chaos.report import otel
    if not otel.enabled():
        return doc
    trace_id, why = otel.export(doc)
    doc = doc.amended(trace_id=trace_id) if trace_id else doc.amended(trace_error=why)
    jr.write(doc, out)
    return doc


def _health(result) -> dict | None:
    """Every probe process's lag, CPU and memory, for the journal (never in the way of it)."""
    if result is None:
        return None
    try:
        return result.health.to_dict()
    except Exception as e:  # noqa: BLE001 - recorded instead
        return {"error": f"{type(e).__name__}: {e}"}


def _judge(exp, tl, result, end_s, out, topo):
    from chaos.session.probe import slo_notes
    from chaos.runner.history import save
    from chaos.runner.observe import all_series
    end_s = max(end_s, result.seconds)
    onset = min((f.started_s for f in tl.faults if f.started_s is not None), default=None)
    last = max((f.ended_s for f in tl.faults if f.ended_s is not None), default=None)
    overall, per_dc = all_series(result, onset, last)
    save(out, overall, per_dc, result.health)   # what judging rests on: `chaos report --rejudge`
    slos = judge_slos(exp, tl, overall, per_dc, end_s, saturation=result.health)
    notes = slo_notes(topo)
    slos = [e.amended(note=notes[e.name])
            if notes.get(e.name) and e.verdict == "inconclusive" and not e.note else e for e in slos]
    bp = breaking_point(exp, tl, overall)
    series = jr.series_doc(exp, overall, per_dc, end_s)
    audience = _audience(result)
    storms = [s.to_dict() for s in ([result.storm] if result.storm else []) + result.storms]
    return slos, bp, series, audience, storms, _scale(result, exp, end_s)


def _audience(result) -> jm.Audience:
    recs = result.records + result.thick_records
    per_dc = {dc: jm.AudienceDc(listeners=sum(r.home_dc == dc for r in recs),
                                joined=sum(r.home_dc == dc and r.join_s is not None for r in recs))
              for dc in result.dcs}
    return jm.Audience(listeners=len(result.records), thick=len(result.thick),
                       joined=sum(r.join_s is not None for r in result.records),
                       thick_joined=sum(r.join_s is not None for r in result.thick_records),
                       join_probes=len(result.joins),
                       join_probes_failed=sum(r.join_s is None for r in result.joins), per_dc=per_dc)


def _scale(result, exp: Experiment, end_s: float) -> dict:
    from chaos.core.arrivals import INCIDENT_JOINS_PER_S
    from chaos.load.result import INCIDENT_AUDIENCE
    storms = ([result.storm] if result.storm else []) + result.storms
    audience = len(result.records) + len(result.thick) + sum(s.peak_concurrent for s in storms)
    rate = max([len(result.joins) / end_s if end_s else 0.0]
               + [s.achieved_rate_per_s for s in storms])
    return {"audience": audience / INCIDENT_AUDIENCE, "join_rate": rate / INCIDENT_JOINS_PER_S,
            "described": f"{audience} listeners = {audience / INCIDENT_AUDIENCE:.2e} of the "
                         f"incident's {INCIDENT_AUDIENCE:,}; {rate:.3g} joins/s = "
                         f"{rate / INCIDENT_JOINS_PER_S:.2e} of its ~{INCIDENT_JOINS_PER_S:.0f}/s"}
