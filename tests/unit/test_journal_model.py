"""The journal's one typed definition (chaos.core.journal): the runner writes it, reports
read it, and the JSON stays as it was.

journals/*.json are real journals written by runs of experiments/test_baseline.py,
experiments/test_latency.py (the halt), experiments/test_join_storm.py (a storm, whose
started_ns is past 10^18) and experiments/gameday_flaky_links.yaml (--auto) before the
runner built the typed journal: the typed model reads them and writes them back byte for
byte, and `chaos report` reads them.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
from pydantic import BaseModel, ValidationError

from chaos.core import journal as jm
from chaos import report
from chaos.experiment import Experiment
from chaos.experiment import fault
from chaos.runner import journal as jr
from chaos.runner.method import FaultRun, Timeline
from chaos.adapters.space.reference import build as reference_stack

JOURNALS = sorted((Path(__file__).parent / "journals").glob("*.json"))


def _extras(m, path: str = "") -> set[str]:
    """Fields of a parsed journal that the typed definition does not declare."""
    out: set[str] = set()
    if isinstance(m, BaseModel):
        out |= {f"{path}.{k}" for k in (m.model_extra or {})}
        for k in m.model_fields_set:
            out |= _extras(getattr(m, k), f"{path}.{k}")
    elif isinstance(m, list):
        for x in m:
            out |= _extras(x, f"{path}[]")
    elif isinstance(m, dict):
        for x in m.values():
            out |= _extras(x, f"{path}{{}}")
    return out


@pytest.mark.parametrize("path", JOURNALS, ids=[p.stem for p in JOURNALS])
def test_a_journal_written_before_the_typed_model_round_trips_byte_for_byte(path, tmp_path):
    text = path.read_text()
    record = jm.Journal.model_validate(json.loads(text), strict=True)
    assert _extras(record) == set()          # every field the runner writes is declared
    out = tmp_path / "run"
    out.mkdir()
    assert jr.write(record, out).read_text() == text
    assert jr.document(report.load(out / "journal.json")) == json.loads(text)


def test_reports_check_journals_against_the_same_models():
    from chaos.report import schema
    assert schema.Journal is jm.Journal


def _state_topo():
    return reference_stack("local", "resilient", 23500)


def _timeline(exp, topo):
    from chaos.faults.base import plan
    tl = Timeline([FaultRun(s, plan(s.spec, topo, None), started_s=6.0, ended_s=8.0, reverted=True)
                   for s in exp.steps()])
    tl.phases = {"before": [0.0, 6.0], "during": [6.0, 8.0], "after": [8.0, 12.0]}
    tl.event(8.0, "revert", "dc_loss(dc-a) reverted", fault="dc_loss(dc-a)", took_s=np.float64(0.25))
    tl.event(6.0, "inject", "dc_loss(dc-a) injected", fault="dc_loss(dc-a)", took_s=0.5)
    return tl


def test_the_runner_builds_typed_parts_and_writes_plain_json_once(tmp_path):
    exp = Experiment(name="typed", method=[fault("dc_loss", dc="dc-a", at_s=1, duration_s=2)])
    topo = _state_topo()
    tl = _timeline(exp, topo)
    slo = {"name": "join_time", "objective": "p95 <= 2.0 s", "verdict": "failed", "value": math.inf,
           "threshold": 2.0, "window": "during", "first_breach_s": np.float64(6.5),
           "samples": np.int64(40), "note": "", "phase": "during", "unit": "s", "op": "<=",
           "stat": "p95", "required": True, "recovered_s": None, "value_text": "∞ (failed joins)",
           "per_dc": {"dc-a": {"verdict": "failed", "value": float("nan"), "first_breach_s": 6.5,
                               "samples": 10}}}
    record = jr.build(exp=exp, run_id="r1", topo=topo, stack_id="s1", started_at="t0", ended_at="t1",
                      duration_s=12.0, verdict="failed", reason="join_time broke", tl=tl, slos=[slo],
                      breaking_point=None, series={}, audience={"listeners": np.int64(8), "joined": 8},
                      storms=[], scale={"audience": 1e-5, "described": "8 listeners"},
                      reproduce="pytest x", probe={"tolerated_lag_ms": {"join_time": 500.0},
                                                   "processes": [], "saturated_s": []})
    assert isinstance(record.slos[0], jm.Slo) and record.slos[0].value is None   # +inf: no JSON form
    assert record.slos[0].per_dc["dc-a"].value is None and record.slos[0].samples == 40
    assert [e.t_s for e in record.events] == [6.0, 8.0]                           # in time order
    assert isinstance(record.faults[0].target.services[0], jm.Named)
    assert _extras(record) == set()
    out = tmp_path / "run"
    out.mkdir()
    doc = json.loads(jr.write(record, out).read_text())
    assert doc == jr.document(record) and doc["schema"] == 1
    assert doc["slos"][0]["value"] is None and doc["slos"][0]["samples"] == 40
    assert doc["faults"][0]["target"]["selector"] == {"service": None, "dc": "dc-a", "link": None,
                                                      "count": "all"}
    assert doc["events"][1] == {"t_s": 8.0, "kind": "revert", "message": "dc_loss(dc-a) reverted",
                                "fault": "dc_loss(dc-a)", "took_s": 0.25}
    report.load(out / "journal.json")        # what it wrote, its readers accept


# the fields of the bare record, as they were when it was built as a dict
MINIMAL = {"schema", "run_id", "experiment", "target", "started_at", "ended_at", "duration_s",
           "verdict", "reason", "error", "phases", "slos", "faults", "events", "halt",
           "breaking_point", "series", "audience", "storms"}


def test_the_bare_record_is_written_whatever_the_run_holds(tmp_path):
    exp = Experiment(name="bare", method=[fault("dc_loss", dc="dc-a", at_s=1, duration_s=2)])
    topo = _state_topo()
    tl = _timeline(exp, topo)
    tl.event(float("nan"), "note", object(), who=b"\xff")          # junk a run should never hold
    tl.event(9.0, "note", "a lone \udcff surrogate")
    tl.halt = {"message": 42, "at_s": "soon"}
    record = jr.minimal(exp=exp, run_id="r\udcff", topo=topo, stack_id="s", started_at="t0",
                        ended_at="t1", duration_s=np.float32(12.0), verdict="passed", reason="r",
                        tl=tl, error="the full journal could not be built: X", slos="ignored")
    out = tmp_path / "run"
    out.mkdir()
    doc = json.loads(jr.write(record, out).read_text())
    assert set(doc) == MINIMAL
    assert doc["verdict"] == "inconclusive" and doc["reason"] == doc["error"]   # never passed
    assert set(doc["experiment"]) == {"name", "title", "expects"}
    assert set(doc["target"]) == {"runtime", "profile", "stack_id"}
    assert doc["faults"][0]["target"] == {} and doc["faults"][0]["reverted"] is True
    assert set(doc["faults"][0]) == {"name", "label", "target", "started_s", "ended_s", "reverted",
                                     "revert_error", "actions"}
    assert doc["audience"] == {} and doc["series"] == {} and doc["halt"]["message"] == "42"
    assert len(doc["events"]) == 4 and doc["events"][0]["t_s"] is None
    report.load(out / "journal.json")


def test_amending_a_journal_keeps_the_rest_and_writes_what_was_set(tmp_path):
    record = jm.Journal(experiment=jm.Experiment(name="x"), target=jm.Target(), slos=[], faults=[],
                        events=[], verdict="passed")
    amended = record.amended(error=None, experiment=record.experiment.amended(kind="gameday"))
    assert jr.document(record) == {"experiment": {"name": "x"}, "target": {}, "verdict": "passed",
                                   "slos": [], "faults": [], "events": []}
    assert jr.document(amended)["error"] is None and amended.experiment.kind == "gameday"
    with pytest.raises(ValidationError):
        record.verdict = "failed"            # frozen: parts change by amending a copy


def test_verdicts_and_run_phases_are_enums_and_the_json_keeps_their_words(tmp_path):
    from chaos.core.model import Phase, Verdict
    path = next(p for p in JOURNALS if p.stem == "latency_halted")
    text = path.read_text()
    record = report.load(path)
    assert record.verdict is Verdict(json.loads(text)["verdict"])
    assert all(isinstance(s.verdict, Verdict) for s in record.slos)
    assert all(isinstance(p.name, Phase) for p in record.phases)
    out = tmp_path / "run"
    out.mkdir()
    assert jr.write(record, out).read_text() == text          # the same words on disk
    step = jm.Slo.model_validate({"name": "join_time", "phase": "step 2", "verdict": "failed"}, strict=True)
    assert step.phase == "step 2" and not isinstance(step.phase, Phase)   # a span's own name stays text
    assert jm.Slo.model_validate({"phase": "during"}, strict=True).phase is Phase.DURING


def test_a_journal_on_disk_with_a_word_that_is_no_verdict_is_refused_naming_the_field(tmp_path):
    from chaos.core.errors import ConfigError
    doc = json.loads(JOURNALS[0].read_text())
    doc["slos"][0]["verdict"] = "fine"
    path = tmp_path / "journal.json"
    path.write_text(json.dumps(doc))
    with pytest.raises(ConfigError, match=r"slos\[0\]\.verdict.*not a verdict"):
        report.load(path)


def test_a_journal_handed_over_as_a_dict_is_read_leniently():
    from chaos.core.model import Verdict
    from chaos.report.schema import typed
    doc = {"verdict": "failed", "experiment": None,
           "slos": [{"name": "join_time", "verdict": "failed", "per_dc": {"dc-a": None,
                                                                          "dc-b": {"verdict": "passed"}}},
                    None, {"name": "echo", "value": "loud"}]}
    before = json.dumps(doc)
    j = typed(doc)
    assert json.dumps(doc) == before                          # the caller's dict is not changed
    assert j.verdict is Verdict.FAILED and j.experiment.name is None and j.faults == []
    assert [s.name for s in j.slos] == ["join_time", "echo"]  # what does not fit is left out
    assert set(j.slos[0].per_dc) == {"dc-b"} and j.slos[1].value is None
    assert typed(j) is j


def test_a_run_result_holds_the_typed_record_and_its_json_is_derived(tmp_path):
    from chaos.core.model import Phase, Verdict
    from chaos.runner import RunResult
    record = report.load(next(p for p in JOURNALS if p.stem == "latency_halted"))
    rr = RunResult(record, tmp_path)
    assert rr.verdict is record.verdict and rr.journal == jr.document(record)
    entry = rr.slo(record.slos[0].name, record.slos[0].phase)
    assert isinstance(entry, jm.Slo) and entry is record.slos[0]
    assert rr.slo(record.slos[0].name, Phase(record.slos[0].phase)) is entry
    assert rr.slo("no_such_sli", Phase.DURING) is None
    notes = rr.notes()
    assert notes[0].startswith(f"{record.experiment.name}: {record.verdict} - ")
    assert isinstance(rr.verdict, Verdict) and f"report: {tmp_path / 'report.html'}" in notes
