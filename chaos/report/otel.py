"""A run as an OpenTelemetry trace: where SREs already look (their tracing backend, Grafana).

One trace per run, built from its journal once the run is over (so the spans carry the run's
own measured times, and a trace can never disagree with the journal): a root span for the
run, a child for each phase (the gate's ``before``, ``during``, ``after``, ``recovery``), for
each fault's window, for each game-day step and each prompt to a person. Breaches and a halt
are events on the run's span. Attributes: the semantic conventions' ``test.*`` (suite, case,
result) and ``chaos.*`` of our own (``chaos.fault.*``, ``chaos.slo.*``, ``chaos.run.*``).

Off unless configured by the standard OpenTelemetry environment variables: an OTLP endpoint
(``OTEL_EXPORTER_OTLP_ENDPOINT`` or ``OTEL_EXPORTER_OTLP_TRACES_ENDPOINT``) or
``OTEL_TRACES_EXPORTER=otlp``; ``OTEL_TRACES_EXPORTER=none`` turns it off; headers, protocol
details, ``OTEL_SERVICE_NAME`` and ``OTEL_RESOURCE_ATTRIBUTES`` are read by the SDK as usual.
Needs the ``otel`` extra (``pip install 'chaos-audio[otel]'``). Exporting never fails a run:
what went wrong is returned as text for the caller to record.
"""

from __future__ import annotations

import datetime as dt
import os
from collections.abc import Mapping

from chaos.core.journal import Journal

ENDPOINT_VARS = ("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "OTEL_EXPORTER_OTLP_ENDPOINT")
EXPORT_TIMEOUT_S = 10.0
SCOPE = "chaos-audio"
# the semantic conventions' test result values
TEST_STATUS = {"passed": "pass", "failed": "fail", "aborted": "fail", "inconclusive": "fail"}


def enabled(env: Mapping[str, str] | None = None) -> bool:
    """Whether the environment asks for traces (the standard ``OTEL_*`` variables)."""
    env = os.environ if env is None else env
    exporter = env.get("OTEL_TRACES_EXPORTER", "").strip().lower()
    if exporter == "none" or env.get("OTEL_SDK_DISABLED", "").strip().lower() == "true":
        return False
    return exporter == "otlp" or any(env.get(v, "").strip() for v in ENDPOINT_VARS)


def export(journal: Journal, exporter=None) -> tuple[str | None, str | None]:
    """Send the run's trace: (trace id in hex, None), or (None, why not) when it could not be
    sent, or (None, None) when tracing is not configured. ``exporter``: a span exporter to use
    instead of OTLP over HTTP from the environment (a test's in-memory one)."""
    if exporter is None and not enabled():
        return None, None
    try:
        from opentelemetry.sdk.resources import Resource
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import SimpleSpanProcessor, SpanExportResult
        from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
    except ImportError:
        return None, ("the OpenTelemetry SDK is not installed: pip install 'chaos-audio[otel]' "
                      "(or unset OTEL_EXPORTER_OTLP_ENDPOINT to export no trace)")
    try:
        if exporter is None:
            from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
            env = os.environ
            timeout = None if env.get("OTEL_EXPORTER_OTLP_TIMEOUT") else EXPORT_TIMEOUT_S
            exporter = OTLPSpanExporter(timeout=timeout)
        resource = Resource.create({"service.name": os.getenv("OTEL_SERVICE_NAME") or SCOPE})
        # the spans are built first, then sent in one request whose answer is checked
        built = InMemorySpanExporter()
        provider = TracerProvider(resource=resource)
        provider.add_span_processor(SimpleSpanProcessor(built))
        trace_id = _emit(provider.get_tracer(SCOPE), journal)
        provider.shutdown()
        try:
            result = exporter.export(list(built.get_finished_spans()))
        finally:
            exporter.shutdown()
        if result is not SpanExportResult.SUCCESS:
            return None, "the trace collector did not take the trace (see the log for why)"
        return trace_id, None
    except Exception as e:  # noqa: BLE001 - a trace never breaks a run; the caller records why
        return None, f"{type(e).__name__}: {e}"


def _ns(start: dt.datetime, t_s: float | None, default: float = 0.0) -> int:
    return int((start.timestamp() + float(default if t_s is None else t_s)) * 1e9)


def _started(journal: Journal) -> dt.datetime:
    try:
        return dt.datetime.fromisoformat(str(journal.started_at))
    except (TypeError, ValueError):
        return dt.datetime.now(dt.timezone.utc)


def _clean(attrs: Mapping[str, object]) -> dict:
    """Attributes as OpenTelemetry takes them: str, bool, int, float (None left out)."""
    out = {}
    for k, v in attrs.items():
        if v is None:
            continue
        if v == "":
            continue
        out[k] = v if isinstance(v, (str, bool, int, float)) else str(v)
    return out


def _emit(tracer, journal: Journal) -> str:
    from opentelemetry import trace
    from opentelemetry.trace import Status, StatusCode

    start = _started(journal)
    end_s = float(journal.duration_s or 0.0)
    for p in journal.phases or []:
        end_s = max(end_s, float(p.end_s or 0.0))
    name = str(journal.experiment.name or "experiment")
    verdict = str(journal.verdict or "inconclusive")
    root = tracer.start_span(
        f"chaos run {name}", start_time=_ns(start, 0.0),
        attributes=_clean({
            "test.suite.name": "chaos-audio", "test.case.name": name,
            "test.case.result.status": TEST_STATUS.get(verdict, "fail"),
            "chaos.run.id": journal.run_id, "chaos.run.verdict": verdict,
            "chaos.run.reason": journal.reason, "chaos.target.name": journal.target.name,
            "chaos.target.runtime": journal.target.runtime, "chaos.target.stack": journal.target.stack_id,
            "chaos.gameday.runbook": journal.gameday.runbook if journal.gameday else None}))
    ctx = trace.set_span_in_context(root)

    def child(span_name: str, a: float | None, b: float | None, attrs: Mapping[str, object],
              error: str | None = None) -> None:
        span = tracer.start_span(span_name, context=ctx, start_time=_ns(start, a),
                                 attributes=_clean(attrs))
        if error:
            span.set_status(Status(StatusCode.ERROR, error))
        span.end(end_time=_ns(start, b if b is not None else end_s))

    for p in journal.phases or []:
        child(f"phase {p.name}", p.start_s, p.end_s, {"chaos.phase": str(p.name),
                                                       "chaos.phase.gate": str(p.name) == "before"})
    for f in journal.faults:
        if f.started_s is None:
            child(f"fault {f.label or f.name}", f.planned_at_s or 0.0, f.planned_at_s or 0.0,
                  {"chaos.fault.name": f.name, "chaos.fault.id": f.id, "chaos.fault.injected": False},
                  error=f.inject_error or "not injected")
            continue
        tgt = f.target
        attrs = {"chaos.fault.name": f.name, "chaos.fault.id": f.id, "chaos.fault.label": f.label,
                 "chaos.fault.reverted": bool(f.reverted), "chaos.fault.step": f.step,
                 "chaos.fault.services": ", ".join(str(s.name) for s in (tgt.services or [])) if tgt else "",
                 "chaos.fault.links": ", ".join(str(lk.name) for lk in (tgt.links or [])) if tgt else ""}
        attrs.update({f"chaos.fault.param.{k}": v if isinstance(v, (str, bool, int, float)) else str(v)
                      for k, v in (f.params or {}).items()})
        child(f"fault {f.label or f.name}", f.started_s, f.ended_s, attrs,
              error=None if f.reverted else f"not reverted: {f.revert_error or 'no error recorded'}")
    steps = [e for e in journal.events if e.kind == "step" and e.t_s is not None]
    for i, e in enumerate(steps):
        b = steps[i + 1].t_s if i + 1 < len(steps) else end_s
        child(f"step {e.step}", e.t_s, b, {"chaos.gameday.step": e.step, "chaos.gameday.step_kind": e.step_kind,
                                           "chaos.gameday.summary": e.message})
    for p in (journal.gameday.prompts if journal.gameday else None) or []:
        if p.asked_s is None:
            continue
        b = p.answered_s if p.answered_s is not None else (
            p.asked_s + p.waited_s if p.waited_s is not None else None)
        child(f"prompt {p.step}", p.asked_s, b, {"chaos.gameday.step": p.step, "chaos.prompt.question": p.question,
                                                 "chaos.prompt.role": p.role, "chaos.prompt.answer": p.choice or p.outcome,
                                                 "chaos.prompt.who": p.who})
    for s in journal.slos:
        if s.first_breach_s is not None:
            root.add_event("breach", timestamp=_ns(start, s.first_breach_s), attributes=_clean({
                "chaos.slo.name": s.name, "chaos.slo.phase": str(s.phase) if s.phase else None,
                "chaos.slo.objective": s.objective, "chaos.slo.value": s.value,
                "chaos.slo.verdict": str(s.verdict) if s.verdict else None,
                "chaos.slo.required": s.required is not False}))
    if journal.halt is not None and journal.halt.at_s is not None:
        h = journal.halt
        root.add_event("halt", timestamp=_ns(start, h.at_s), attributes=_clean({
            "chaos.slo.name": h.sli, "chaos.slo.objective": h.objective, "chaos.slo.value": h.value,
            "chaos.halt.detected_after_s": h.detected_after_s}))
    if verdict == "passed":
        root.set_status(Status(StatusCode.OK))
    else:
        root.set_status(Status(StatusCode.ERROR, f"{verdict}: {journal.reason or ''}".strip(": ")))
    trace_id = format(root.get_span_context().trace_id, "032x")
    root.end(end_time=_ns(start, end_s))
    return trace_id
