"""The journal's one typed definition: what ``reports/<run-id>/journal.json`` holds.

The runner builds these models (``chaos.runner.journal``) and turns them into JSON at one
boundary (``chaos.runner.journal.write``); readers check a journal on disk against the same
models, strictly (``chaos.report.schema``). Writing validates leniently (a numpy number is
a number) and reading strictly (a number is a number, not "1.5"; no bools for numbers).

Beside the journal's stable parts (experiment, target, slos, faults, events) every field is
optional, and a field the runner did not set is left out of the file (``dump``), so the bare
record of a run (``minimal``) and older journals keep their shape. Unknown fields are kept:
more fields are welcome, these stay.
"""

from __future__ import annotations

import math
import numbers
from typing import Annotated, Any, Self, Union

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field

from chaos.core import model


def _plain(v: Any) -> Any:
    """numpy and other numeric types as the plain int or float JSON holds (never a bool:
    strict reading refuses those as numbers)."""
    if isinstance(v, (bool, int, float)) or not isinstance(v, numbers.Real):
        return v
    if isinstance(v, numbers.Integral):
        return int(v)
    return float(v)


def _finite(v: Any) -> Any:
    """JSON has no infinity: a value that is not finite (a failed join's +inf) is None."""
    v = _plain(v)
    return None if isinstance(v, float) and not math.isfinite(v) else v


Num = Annotated[Union[int, float], BeforeValidator(_plain)]
OptNum = Annotated[Union[int, float, None], BeforeValidator(_finite)]
OptStr = Union[str, None]
OptInt = Annotated[Union[int, None], BeforeValidator(_plain)]
OptBool = Union[bool, None]
Scalar = Annotated[Union[str, int, float, bool, None], BeforeValidator(_plain)]


def _verdict(v: Any) -> Any:
    """A verdict's text as the enum (strict reading would otherwise ask for the enum itself);
    text that is no verdict is refused, naming the field."""
    if isinstance(v, str) and not isinstance(v, model.Verdict):
        try:
            return model.Verdict(v)
        except ValueError:
            raise ValueError(f"{v[:40]!r} is not a verdict (one of "
                             f"{', '.join(x.value for x in model.Verdict)})") from None
    return v


def _phase(v: Any) -> Any:
    """A run phase's name as the enum; any other span's name ("step 2") stays text."""
    if isinstance(v, str) and not isinstance(v, model.Phase):
        try:
            return model.Phase(v)
        except ValueError:
            return v
    return v


OptVerdict = Annotated[Union[model.Verdict, None], BeforeValidator(_verdict)]
PhaseName = Annotated[Union[model.Phase, str, None], BeforeValidator(_phase)]


class Part(BaseModel):
    """A part of the journal: frozen once built; extra fields kept as they came."""
    model_config = ConfigDict(extra="allow", frozen=True, populate_by_name=True)

    def amended(self, **fields) -> Self:
        """A copy with ``fields`` set (written even when None). Not validated again: it
        cannot fail, which the runner needs after a run (the journal is never lost)."""
        return self.model_copy(update=fields)

    def dump(self) -> dict:
        """The JSON object: fields by their journal names, unset ones left out."""
        return self.model_dump(mode="python", by_alias=True, exclude_unset=True)


class ObjectiveDoc(Part):
    sli: OptStr = None
    stat: OptStr = None
    op: OptStr = None
    threshold: OptNum = None
    window_s: OptNum = None
    step_s: OptNum = None


class Experiment(Part):
    name: OptStr = None
    title: OptStr = None
    expects: OptStr = None
    declaration: Union[dict[str, list[ObjectiveDoc]], None] = None   # what rejudging needs
    reproduce: OptStr = None
    kind: OptStr = None                   # "gameday" for a game day's run


class Scale(Part):
    audience: OptNum = None               # share of the incident's audience
    join_rate: OptNum = None              # share of its join rate
    described: OptStr = None
    engine: OptStr = None                 # where join storms were fired from
    shards: OptInt = None


class Named(Part):
    name: OptStr = None
    kind: OptStr = None
    dc: OptStr = None
    src: OptStr = None
    dst: OptStr = None


class Target(Part):
    runtime: OptStr = None
    profile: OptStr = None
    stack_id: OptStr = None
    scale_factor: Union[Scale, str, int, float, None] = None
    name: OptStr = None
    adapter: OptStr = None
    dcs: Union[list[str], None] = None
    services: Union[list[Named], None] = None
    depends: Union[dict[str, list[str]], None] = None
    paths: Union[dict[str, list[str]], None] = None
    nouns: Union[dict[str, str], None] = None
    source: OptStr = None
    fingerprint: OptStr = None


class Phase(Part):
    name: PhaseName = None
    start_s: OptNum = None
    end_s: OptNum = None


class DcVerdict(Part):
    verdict: OptVerdict = None
    value: OptNum = None
    first_breach_s: OptNum = None
    samples: OptNum = None


class Slo(Part):
    name: OptStr = None
    objective: OptStr = None
    verdict: OptVerdict = None
    value: OptNum = None
    threshold: OptNum = None
    window: OptStr = None
    first_breach_s: OptNum = None
    samples: OptNum = None
    note: OptStr = None
    phase: PhaseName = None
    unit: OptStr = None
    op: OptStr = None
    stat: OptStr = None
    required: OptBool = None
    per_dc: Union[dict[str, DcVerdict], None] = None
    recovered_s: OptNum = None
    value_text: OptStr = None


class Selector(Part):
    service: OptStr = None
    dc: OptStr = None
    link: OptStr = None
    count: Union[str, OptInt] = None      # "all", "1", "50%": the blast radius


class FaultTarget(Part):
    selector: Union[Selector, None] = None
    services: Union[list[Named], None] = None
    links: Union[list[Named], None] = None
    others: Union[list[str], None] = None


class Fault(Part):
    id: OptStr = None
    name: OptStr = None
    params: Union[dict[str, Union[Scalar, list[Scalar]]], None] = None
    label: OptStr = None
    target: Union[FaultTarget, None] = None
    planned_at_s: OptNum = None
    duration_s: OptNum = None
    started_s: OptNum = None
    ended_s: OptNum = None
    reverted: OptBool = None
    revert_error: OptStr = None
    inject_error: OptStr = None
    step: OptInt = None
    actions: Union[list[str], None] = None


class Event(Part):
    """One line of the run's timeline; some kinds add fields of their own."""
    t_s: OptNum = None
    kind: OptStr = None
    message: OptStr = None
    fault: OptStr = None                  # inject, revert: which fault
    took_s: OptNum = None                 # inject, revert: how long it took
    # a game day's: its step, who did it and when (wall clock), prompts and answers
    step: Union[str, OptInt] = None
    step_kind: OptStr = None
    who: OptStr = None
    at: OptStr = None
    reason: OptStr = None
    role: OptStr = None
    choices: Union[list[str], None] = None
    choice: OptStr = None
    timeout_s: OptNum = None
    waited_s: OptNum = None
    on_timeout: OptStr = None
    paused_s: OptNum = None
    verdict: OptStr = None


class Halt(Part):
    sli: OptStr = None
    objective: OptStr = None
    value: OptNum = None
    at_s: OptNum = None
    onset_s: OptNum = None
    detected_after_s: OptNum = None
    halted_after_s: OptNum = None
    message: OptStr = None


class StepSlo(Part):
    verdict: OptVerdict = None
    value: OptNum = None


class Step(Part):
    index: OptInt = None
    value: OptNum = None
    start_s: OptNum = None
    end_s: OptNum = None
    label: OptStr = None
    slos: Union[dict[str, StepSlo], None] = None


class FirstBroken(Part):
    step: OptInt = None
    value: OptNum = None


class BreakingPoint(Part):
    param: OptStr = None
    unit: OptStr = None
    fault: OptStr = None
    label: OptStr = None
    steps: Union[list[Step], None] = None
    first_broken: Union[dict[str, Union[FirstBroken, None]], None] = None


class Points(Part):
    t_s: Union[list[Num], None] = None
    value: Union[list[OptNum], None] = None


class SeriesDoc(Part):
    """One SLI, one point per second (the objective's statistic), overall and per DC."""
    unit: OptStr = None
    stat: OptStr = None
    op: OptStr = None
    threshold: OptNum = None
    t_s: Union[list[Num], None] = None
    value: Union[list[OptNum], None] = None
    per_dc: Union[dict[str, Points], None] = None
    note: OptStr = None


class AudienceDc(Part):
    listeners: OptNum = None
    joined: OptNum = None


class Audience(Part):
    listeners: OptNum = None
    thick: OptNum = None
    joined: OptNum = None
    thick_joined: OptNum = None
    join_probes: OptNum = None
    join_probes_failed: OptNum = None
    per_dc: Union[dict[str, AudienceDc], None] = None


class Was(Part):
    verdict: OptVerdict = None
    reason: OptStr = None


class Rejudged(Part):
    """A journal judged again (``chaos report --rejudge``): with which objectives, and what
    it said before."""
    objectives: Union[list[ObjectiveDoc], None] = None
    was: Union[Was, None] = None


class Against(Part):
    joins_per_s: OptNum = None
    audience: OptNum = None


class StormScale(Part):
    """A storm against the incident: shares of its join rate and of its audience."""
    rate: OptNum = None
    audience: OptNum = None
    against: Union[Against, None] = None


class JoinSummary(Part):
    """A join-time histogram's summary (chaos.audio.histogram.Histogram.summary)."""
    count: OptNum = None
    failed: OptNum = None
    min_s: OptNum = None
    max_s: OptNum = None
    mean_s: OptNum = None
    p50_s: OptNum = None
    p95_s: OptNum = None
    p99_s: OptNum = None


class Shard(Part):
    index: OptInt = None
    host: OptStr = None
    pid: OptInt = None
    arrivals: OptNum = None
    fired: OptNum = None
    joined: OptNum = None
    failed: OptNum = None
    late: OptNum = None
    clock_offset_ms: OptNum = None
    rtt_ms: OptNum = None
    dead: OptBool = None


class DeadShard(Part):
    index: OptInt = None
    at_s: OptNum = None
    share: OptNum = None
    arrivals: OptNum = None
    resolved: OptNum = None
    lost: OptNum = None


class StormHalt(Part):
    reason: OptStr = None
    at_s: OptNum = None
    stopped_within_s: OptNum = None
    shards_stopped: OptInt = None


class StormObjective(Part):
    quantile: OptNum = None
    threshold_s: OptNum = None
    value_s: OptNum = None
    verdict: OptVerdict = None


class Storm(Part):
    """A join storm's result: a machine's (chaos.load.result.StormResult.to_dict) or a
    scale-out's over shards (chaos.scale.coordinator.ScaledResult.to_dict), which adds the
    engine, the shards and the dead ones and leaves out the generator's own details."""
    schedule: OptStr = None
    rate_requested_per_s: OptNum = None
    peak_rate_requested_per_s: OptNum = None
    arrivals: OptNum = None
    fired: OptNum = None
    achieved_rate_per_s: OptNum = None
    joined: OptNum = None
    failed: OptNum = None
    failures: Union[dict[str, Num], None] = None
    join_p50_s: OptNum = None
    join_p95_s: OptNum = None
    join_p99_s: OptNum = None
    join_mean_s: OptNum = None
    refusals: Union[dict[str, Num], None] = None
    retry_hints: OptNum = None
    retry_hint_max_s: OptNum = None
    retries: OptNum = None
    reconnects: OptNum = None
    reconnect_failures: Union[dict[str, Num], None] = None
    evicted: OptNum = None
    late_starts: OptNum = None
    late_ms: OptNum = None
    lateness_p99_s: OptNum = None
    lateness_max_s: OptNum = None
    peak_concurrent: OptNum = None
    peak_in_flight: OptNum = None
    scheduled_s: OptNum = None
    duration_s: OptNum = None
    workers: OptInt = None
    generator_cpu_s: OptNum = None
    worker_cpu: Union[list[Num], None] = None
    worker_pids: Union[list[int], None] = None
    started_ns: OptNum = None             # wall clock of its offset 0 (past 2^53: a float)
    errors: Union[list[str], None] = None
    scale_factor: Union[StormScale, None] = None
    join_time: Union[JoinSummary, None] = None
    # a scale-out's
    engine: OptStr = None
    shards: OptInt = None
    join: Union[JoinSummary, None] = None
    per_shard: Union[list[Shard], None] = None
    dead: Union[list[DeadShard], None] = None
    halt: Union[StormHalt, None] = None
    objective: Union[StormObjective, None] = None
    rate_by_s: Union[list[Num], None] = None
    scheduled_arrivals: OptNum = None


class ProcessHealth(Part):
    """One probe process over the run (chaos.session.watch.ProcessHealth.summary)."""
    label: OptStr = None
    pid: OptInt = None
    seconds: OptInt = None
    lag_ms_max: OptNum = None
    lag_ms_max_at_s: OptNum = None
    lag_ms_p95: OptNum = None
    cpu_pct_mean: OptNum = None
    cpu_pct_max: OptNum = None
    rss_mb_start: OptNum = None
    rss_mb_at_1min: OptNum = None
    rss_mb_max_after_1min: OptNum = None
    rss_mb_end: OptNum = None


class SaturatedSecond(Part):
    t_s: OptNum = None
    process: OptStr = None
    lag_ms: OptNum = None
    cpu_pct: OptNum = None


class ProbeHealth(Part):
    """Every probe process's lag, CPU and memory; the seconds it could not keep up
    (chaos.session.watch.Saturation.to_dict); or why that could not be recorded."""
    tolerated_lag_ms: Union[dict[str, Num], None] = None
    processes: Union[list[ProcessHealth], None] = None
    saturated_s: Union[list[SaturatedSecond], None] = None
    error: OptStr = None


class GamedayStep(Part):
    index: OptInt = None
    id: OptStr = None
    kind: OptStr = None
    summary: OptStr = None
    status: OptStr = None


class Prompt(Part):
    step: OptStr = None
    question: OptStr = None
    role: OptStr = None
    asked_s: OptNum = None
    choices: Union[list[str], None] = None
    outcome: OptStr = None
    choice: OptStr = None
    who: OptStr = None
    answered_s: OptNum = None
    waited_s: OptNum = None
    at: OptStr = None


class Note(Part):
    t_s: OptNum = None
    who: OptStr = None
    text: OptStr = None
    at: OptStr = None


class Check(Part):
    step: OptStr = None
    t_s: OptNum = None
    over_s: OptNum = None
    dc: OptStr = None
    required: OptBool = None
    results: Union[list[Slo], None] = None
    verdict: OptVerdict = None


class Pause(Part):
    at_s: OptNum = None
    by: OptStr = None
    ended_s: OptNum = None
    resumed_by: OptStr = None


class Stop(Part):
    """Who or which step stopped a game day early, and why."""
    who: OptStr = None
    step: OptStr = None
    reason: OptStr = None
    at_s: OptNum = None
    at: OptStr = None


class Gameday(Part):
    """The human side of a game day (chaos.gameday.player.Player.record)."""
    runbook: OptStr = None
    title: OptStr = None
    hypothesis: OptStr = None
    roles: Union[dict[str, str], None] = None
    auto: OptBool = None
    operator: OptStr = None
    steps: Union[list[GamedayStep], None] = None
    skipped: Union[list[str], None] = None
    prompts: Union[list[Prompt], None] = None
    notes: Union[list[Note], None] = None
    checks: Union[list[Check], None] = None
    pauses: Union[list[Pause], None] = None
    aborted_by: Union[Stop, None] = None
    stopped_by_step: Union[Stop, None] = None


class Journal(Part):
    schema_: Union[int, str, None] = Field(default=None, alias="schema")
    run_id: OptStr = None
    experiment: Experiment
    target: Target
    started_at: OptStr = None
    ended_at: OptStr = None
    duration_s: OptNum = None
    verdict: OptVerdict = None
    reason: OptStr = None
    phases: Union[list[Phase], None] = None
    slos: list[Slo]
    faults: list[Fault]
    events: list[Event]
    halt: Union[Halt, None] = None
    breaking_point: Union[BreakingPoint, None] = None
    series: Union[dict[str, SeriesDoc], None] = None
    audience: Union[Audience, None] = None
    storms: Union[list[Storm], None] = None
    probe: Union[ProbeHealth, None] = None
    error: OptStr = None                  # what went wrong in the run or in recording it
    gameday: Union[Gameday, None] = None  # the human side of a game day
    report_error: OptStr = None           # the report could not be rendered (the journal stands)
    rejudged: Union[Rejudged, None] = None
    trace_id: OptStr = None               # the run's OpenTelemetry trace (chaos.report.otel)
    trace_error: OptStr = None            # why the trace could not be sent

