"""A run exported as an OpenTelemetry trace: built from the journal, sent over OTLP/HTTP to a
real receiver on loopback (the protocol's own protobuf messages decoded here), off unless the
standard OTEL_* environment asks for it."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path

import pytest

pytest.importorskip("opentelemetry.sdk", reason="the otel extra (fixtures/setup.sh installs it)")

from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter  # noqa: E402

from chaos.report import otel  # noqa: E402
from chaos.report.schema import typed  # noqa: E402

JOURNALS = Path(__file__).parent / "journals"


def journal(name: str):
    return typed(json.loads((JOURNALS / f"{name}.json").read_text()))


@pytest.mark.parametrize("env, on", [
    ({}, False),
    ({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:4318"}, True),
    ({"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://127.0.0.1:4318/v1/traces"}, True),
    ({"OTEL_TRACES_EXPORTER": "otlp"}, True),
    ({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:4318", "OTEL_TRACES_EXPORTER": "none"}, False),
    ({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:4318", "OTEL_SDK_DISABLED": "true"}, False),
])
def test_off_unless_the_standard_environment_asks(env, on):
    assert otel.enabled(env) is on


def test_not_configured_sends_nothing(monkeypatch):
    for v in ("OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "OTEL_TRACES_EXPORTER"):
        monkeypatch.delenv(v, raising=False)
    assert otel.export(journal("baseline")) == (None, None)


def test_a_halted_run_is_one_trace_with_phases_faults_a_breach_and_the_halt():
    j = journal("latency_halted")
    mem = InMemorySpanExporter()
    trace_id, why = otel.export(j, exporter=mem)
    assert why is None and len(trace_id) == 32
    spans = mem.get_finished_spans()
    (root,) = [s for s in spans if s.parent is None]
    assert format(root.context.trace_id, "032x") == trace_id
    assert all(s.context.trace_id == root.context.trace_id for s in spans)
    assert all(s.parent.span_id == root.context.span_id for s in spans if s is not root)
    assert root.attributes["test.case.name"] == j.experiment.name
    assert root.attributes["chaos.run.verdict"] == str(j.verdict)
    assert root.attributes["test.case.result.status"] == ("pass" if str(j.verdict) == "passed" else "fail")
    assert {f"phase {p.name}" for p in j.phases} <= {s.name for s in spans}
    faults = [s for s in spans if s.name.startswith("fault ")]
    assert len(faults) == len(j.faults)
    f0, s0 = j.faults[0], faults[0]
    assert s0.attributes["chaos.fault.name"] == f0.name and s0.attributes["chaos.fault.reverted"] is True
    for k, v in (f0.params or {}).items():
        assert s0.attributes[f"chaos.fault.param.{k}"] == v
    # the fault's window is the journal's, on the run's clock
    assert abs((s0.start_time - root.start_time) / 1e9 - f0.started_s) < 1e-3
    assert abs((s0.end_time - s0.start_time) / 1e9 - (f0.ended_s - f0.started_s)) < 1e-3
    events = {e.name: e for e in root.events}
    assert "halt" in events and events["halt"].attributes["chaos.slo.name"] == j.halt.sli
    assert abs((events["halt"].timestamp - root.start_time) / 1e9 - j.halt.at_s) < 1e-3


def test_a_game_day_has_a_span_per_step():
    j = journal("gameday_flaky_links")
    mem = InMemorySpanExporter()
    assert otel.export(j, exporter=mem)[1] is None
    steps = [s for s in mem.get_finished_spans() if s.name.startswith("step ")]
    assert [s.attributes["chaos.gameday.step"] for s in steps] == \
        [e.step for e in j.events if e.kind == "step"]
    (root,) = [s for s in mem.get_finished_spans() if s.parent is None]
    assert root.attributes["chaos.gameday.runbook"] == j.gameday.runbook


class _Receiver(BaseHTTPRequestHandler):
    got: list = []

    def do_POST(self):  # noqa: N802 - the http.server API
        from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
        body = self.rfile.read(int(self.headers["Content-Length"]))
        req = ExportTraceServiceRequest()
        req.ParseFromString(body)
        type(self).got.append((self.path, self.headers.get("Content-Type"), req))
        self.send_response(200)
        self.send_header("Content-Type", "application/x-protobuf")
        self.end_headers()

    def log_message(self, *a):  # quiet
        pass


def test_sent_over_otlp_http_to_a_receiver_as_the_protocol_says(monkeypatch):
    _Receiver.got = []
    server = HTTPServer(("127.0.0.1", 0), _Receiver)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", f"http://127.0.0.1:{server.server_port}")
        monkeypatch.setenv("OTEL_SERVICE_NAME", "rooms-rehearsal")
        j = journal("latency_halted")
        trace_id, why = otel.export(j)
    finally:
        server.shutdown()
        server.server_close()
    assert why is None
    ((path, ctype, req),) = _Receiver.got
    assert path == "/v1/traces" and ctype == "application/x-protobuf"
    (rs,) = req.resource_spans
    resource = {a.key: a.value.string_value for a in rs.resource.attributes}
    assert resource["service.name"] == "rooms-rehearsal"
    spans = [s for ss in rs.scope_spans for s in ss.spans]
    assert {s.trace_id.hex() for s in spans} == {trace_id}
    root = next(s for s in spans if not s.parent_span_id)
    assert root.name == f"chaos run {j.experiment.name}"
    assert all(s.parent_span_id == root.span_id for s in spans if s is not root)


def test_an_unreachable_collector_is_said_not_raised(monkeypatch):
    import socket
    with socket.socket() as s:      # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", f"http://127.0.0.1:{port}")
    monkeypatch.setattr(otel, "EXPORT_TIMEOUT_S", 1.0)
    trace_id, why = otel.export(journal("baseline"))
    assert trace_id is None and why


def test_the_runner_records_the_trace_id_in_the_journal(monkeypatch, tmp_path):
    from chaos import runner
    seen = []
    monkeypatch.setattr(otel, "enabled", lambda env=None: True)
    monkeypatch.setattr(otel, "export", lambda doc, exporter=None: seen.append(doc) or ("ab" * 16, None))
    doc = journal("baseline")
    out = tmp_path / "run"
    out.mkdir()
    done = runner._trace(doc, out)
    assert seen == [doc] and done.trace_id == "ab" * 16
    assert json.loads((out / "journal.json").read_text())["trace_id"] == "ab" * 16
    monkeypatch.setattr(otel, "export", lambda doc, exporter=None: (None, "collector down"))
    assert runner._trace(doc, out).trace_error == "collector down"
