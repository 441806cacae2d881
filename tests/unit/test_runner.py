"""The runner's core without a stack: declarations, the timeline with a fake engine (the
seam), verdicts, recovery, breaking points, the journal."""

from __future__ import annotations

import asyncio
import json
import math
import os
import stat

import numpy as np
import pytest

from chaos.core.errors import ConfigError
from chaos.experiment import Audience, Experiment, FaultStep, Sweep, fault, validate
from chaos.faults.base import Action
from chaos.faults.engine import RevertReport
from chaos.core.model import Verdict
from chaos.runner import journal as jr
from chaos.runner import preflight
from chaos.runner.judge import breaking_point, recovery_s, verdict
from chaos.runner.method import FaultRun, Method, Timeline
from chaos.core.slo import Series, objective
from chaos.targets.state import StackState
from chaos.adapters.space.reference import build


def _state(profile="resilient") -> StackState:
    return StackState("space-test", "local", profile, "now", build("local", profile, 18000), {})


# -- declarations ------------------------------------------------------------------------

@pytest.mark.parametrize("exp, words", [
    (Experiment(name="bad name!"), "experiment name"),
    (Experiment(name="x", method=[fault("latency", at_s=5, duration_s=0, latency_ms=10)]),
     "ends before it starts"),
    (Experiment(name="x", method=[fault("latency", at_s=5, duration_s=-3, latency_ms=10)]),
     "ends before it starts"),
    (Experiment(name="x", sweep=Sweep("packet_drop", "share", ())), "has no steps"),
    (Experiment(name="x", halts=[objective("echo")]), "cannot be judged while the run goes on"),
    (Experiment(name="x", during=[objective("join_time")]), "method that has no fault"),
    (Experiment(name="x", steady_state=[objective("join_time"), objective("join_time")]), "twice"),
    (Experiment(name="x", before_s=0), "before_s"),
    (Experiment(name="x", audience=Audience(listeners=0)), "audience.listeners"),
    (Experiment(name="x", steady_state=["join_time"]), r"steady_state\[0\]='join_time' is not an Objective"),
])
def test_malformed_experiments_are_refused(exp, words):
    with pytest.raises(ConfigError, match=words):
        validate(exp)


def test_unknown_slo_is_refused_where_it_is_declared():
    with pytest.raises(ConfigError, match="unknown SLI 'joins'"):
        objective("joins")


@pytest.mark.parametrize("step, words", [
    (fault("no_such_fault"), "unknown fault 'no_such_fault'"),
    (fault("packet_drop", service="edge-b", share=1.5), "out of range"),
    (fault("latency", link="edge-b.origin-a", latency_ms=-5), "out of range"),
    (fault("latency", link="nowhere.*", latency_ms=5), "no link of the stack matches"),
    (fault("dc_loss", dc="dc-z"), "no data center .dc-z. in the stack"),
    (fault("packet_drop", service="postgres", share=0.1), "no service of the stack matches"),
])
def test_preflight_refuses_bad_faults_before_touching_anything(step, words, monkeypatch):
    touched = []
    monkeypatch.setattr("chaos.targets.stack.require_healthy", lambda s: touched.append(s))
    with pytest.raises(ConfigError, match=words):
        preflight(Experiment(name="x", method=[step]), _state())
    assert touched == []   # refused before even asking the stack


def test_sweep_makes_one_step_per_magnitude_in_order():
    sw = Sweep("packet_drop", "share", (0.01, 0.05, 0.2), step_s=4, gap_s=1, service="edge-b")
    steps = sw.fault_steps()
    assert [s.at_s for s in steps] == [0, 5, 10]
    assert [s.spec.params["share"] for s in steps] == [0.01, 0.05, 0.2]
    assert [s.step for s in steps] == [0, 1, 2]
    assert steps[1].describe() == "packet_drop(edge-b, share=0.05)"
    exp = Experiment(name="x", before_s=3, after_s=2, sweep=sw)
    assert exp.method_s == 14 and exp.total_s == 19


# -- the timeline, with a fake engine ----------------------------------------------------

class FakeEngine:
    def __init__(self):
        self.calls = []

    def inject(self, actions):
        self.calls.append(("inject", actions[0].target))

    def revert(self, actions):
        self.calls.append(("revert", actions[0].target))
        return RevertReport(reverted=list(actions))


class FakeSpeaker:
    id = "spk"
    produced: list = []


class FakeLive:
    def __init__(self):
        import time
        self.t0_ns = time.time_ns()
        self.thin, self.thick, self.joins = [], [], []
        self.speaker = FakeSpeaker()
        self.topo = build("local", "resilient", 18000)
        self.session = self.space = self.retry = None
        self.join_timeout_s = 1.0
        self.stop = asyncio.Event()

    def records(self):
        return []

    def bins(self, dc=None):
        return []


def _plans(*steps):
    return [(s, [Action(s.spec.name, f"{s.spec.name}-{i}", "toxic", f"target-{i}", None, {})])
            for i, s in enumerate(steps)]


def _method(exp, steps):
    engine = FakeEngine()
    m = Method(exp, engine, _plans(*steps))
    m_attach = pytest.MonkeyPatch()
    return m, engine, m_attach


def test_schedule_injects_and_reverts_in_time_order():
    a = fault("latency", at_s=0.0, duration_s=0.6, latency_ms=1)
    b = fault("latency", at_s=0.2, duration_s=0.2, latency_ms=1)
    exp = Experiment(name="x", before_s=0.2, after_s=0.2, gate=False, method=[a, b],
                     audience=Audience(join_every_s=0))
    m, engine, mp = _method(exp, [a, b])
    try:
        asyncio.run(m.play(FakeLive()))
    finally:
        mp.undo()
    assert engine.calls == [("inject", "target-0"), ("inject", "target-1"),
                            ("revert", "target-1"), ("revert", "target-0")]
    f0, f1 = m.tl.faults
    assert f0.reverted and f1.reverted
    assert f0.started_s < f1.started_s < f1.ended_s < f0.ended_s
    assert [e["kind"] for e in m.tl.events].count("inject") == 2
    assert set(m.tl.phases) == {"before", "during", "recovery", "after"}


def test_an_abort_mid_method_reverts_what_is_on_and_skips_the_rest():
    a = fault("latency", at_s=0.0, duration_s=5.0, latency_ms=1)
    b = fault("latency", at_s=3.0, duration_s=1.0, latency_ms=1)
    exp = Experiment(name="x", before_s=0.1, after_s=0.1, gate=False, method=[a, b],
                     audience=Audience(join_every_s=0))
    m, engine, mp = _method(exp, [a, b])

    async def go():
        task = asyncio.create_task(m.play(FakeLive()))
        await asyncio.sleep(0.5)
        m._on_sigint()                 # what Ctrl-C does
        await task
    try:
        asyncio.run(go())
    finally:
        mp.undo()
    assert engine.calls == [("inject", "target-0"), ("revert", "target-0")]
    assert m.tl.interrupted and "Ctrl-C" in m.tl.abort
    assert m.tl.faults[0].reverted and m.tl.faults[1].started_s is None
    v, reason = verdict(m.tl, [])
    assert v is Verdict.ABORTED and "Ctrl-C" in reason


def test_a_failed_gate_injects_nothing(monkeypatch):
    from chaos.runner import method
    monkeypatch.setattr(method, "GATE_WAIT_S", 1.0)    # it waits for a steady state this long
    a = fault("latency", at_s=0.0, duration_s=1.0, latency_ms=1)
    exp = Experiment(name="x", before_s=0.3, after_s=0.1, method=[a],
                     audience=Audience(join_every_s=0))
    m, engine, mp = _method(exp, [a])
    try:
        asyncio.run(m.play(FakeLive()))        # no listener at all: nothing measured, not healthy
    finally:
        mp.undo()
    assert engine.calls == []
    assert m.tl.gate is not None
    v, reason = verdict(m.tl, [])
    assert v is Verdict.INCONCLUSIVE and "steady state did not hold" in reason


# -- verdicts, recovery, breaking point --------------------------------------------------

def _entry(name, phase, v, required=True):
    return {"name": name, "phase": phase, "verdict": v, "objective": "p95 <= 2 s", "required": required}


def test_verdict_rules():
    tl = Timeline([])
    assert verdict(tl, [_entry("join_time", "before", "passed")])[0] is Verdict.PASSED
    assert verdict(tl, [_entry("join_time", "during", "failed")])[0] is Verdict.FAILED
    assert verdict(tl, [_entry("join_time", "during", "failed", required=False)])[0] is Verdict.PASSED
    assert verdict(tl, [_entry("echo", "after", "inconclusive")])[0] is Verdict.INCONCLUSIVE
    tl.halt = {"message": "halted: x"}
    assert verdict(tl, [_entry("join_time", "during", "failed")]) == (Verdict.ABORTED, "halted: x")


def test_recovery_is_the_end_of_the_last_bad_window_after_the_fault():
    t = np.arange(0, 30, 0.1)
    v = np.where((t > 10) & (t < 14), 5.0, 0.1)         # slow joins until t=14
    s = Series("join_time", t, v)
    o = objective("join_time")
    rec = recovery_s(o, s, fault_end_s=12.0, end_s=30.0)
    assert 1.5 <= rec <= 4.0
    assert recovery_s(o, Series("join_time", t, np.full_like(t, 0.1)), 12.0, 30.0) == 0.0
    assert recovery_s(o, Series("join_time", t, np.where(t > 10, 9.0, 0.1)), 12.0, 30.0) is None


def test_breaking_point_names_the_first_step_that_broke():
    sw = Sweep("packet_drop", "share", (0.01, 0.1, 0.3), step_s=5, service="edge-b")
    exp = Experiment(name="x", sweep=sw, steady_state=[objective("audio_delivered")])
    steps = sw.fault_steps()
    tl = Timeline([FaultRun(s, [], started_s=5 + 5 * i, ended_s=10 + 5 * i, reverted=True)
                   for i, s in enumerate(steps)])
    t = np.arange(0, 25, 0.02)
    delivered = np.where(t >= 15, 0.9, 1.0)               # broke at the third step
    overall = {"audio_delivered": Series("audio_delivered", t, delivered)}
    bp = breaking_point(exp, tl, overall)
    assert bp.first_broken["audio_delivered"].dump() == {"step": 2, "value": 0.3}
    assert [s.slos["audio_delivered"].verdict for s in bp.steps] == ["passed", "passed", "failed"]


# -- the journal ---------------------------------------------------------------------------

def test_journal_is_strict_json_written_atomically(tmp_path):
    exp = Experiment(name="j", method=[fault("dc_loss", dc="dc-a", at_s=1, duration_s=2)])
    st = _state("fragile")
    plans, _ = preflight_no_health(exp, st)
    tl = Timeline([FaultRun(s, acts, started_s=6.0, ended_s=8.0, reverted=True) for s, acts in plans])
    doc = jr.build(exp=exp, run_id="r1", topo=st.topology, stack_id=st.stack_id, started_at="t",
                   ended_at="t", duration_s=10.0, verdict="failed", reason="r", tl=tl,
                   slos=[{"name": "join_time", "value": math.inf}], breaking_point=None, series={},
                   audience={}, storms=[], scale={}, reproduce="pytest x")
    out = tmp_path / "run"
    out.mkdir()
    path = jr.write(doc, out)
    loaded = json.loads(path.read_text())
    assert loaded["slos"][0]["value"] is None                  # +inf has no JSON form
    f = loaded["faults"][0]
    assert f["label"] == "dc_loss(dc-a)" and f["started_s"] == 6.0 and f["reverted"]
    assert {"name": "redis-a", "kind": "redis", "dc": "dc-a"} in f["target"]["services"]
    for key in ("experiment", "target", "started_at", "verdict", "slos", "faults", "events",
                "breaking_point"):
        assert key in loaded
    assert [p.name for p in out.iterdir()] == ["journal.json"]  # no temp file left


def preflight_no_health(exp, st):
    mp = pytest.MonkeyPatch()
    mp.setattr("chaos.targets.stack.require_healthy", lambda s: None)
    try:
        return preflight(exp, st)
    finally:
        mp.undo()


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes anywhere")
def test_an_unwritable_report_dir_is_refused(tmp_path):
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(stat.S_IRUSR | stat.S_IXUSR)
    with pytest.raises(ConfigError, match="cannot write the run's reports"):
        jr.prepare_dir(ro, "run-1")


def test_a_report_dir_under_a_file_is_refused(tmp_path):
    (tmp_path / "file").write_text("x")
    with pytest.raises(ConfigError, match="nothing was injected"):
        jr.prepare_dir(tmp_path / "file", "run-1")
    assert (tmp_path / "file").read_text() == "x"


def test_fault_step_label_defaults_to_kind_and_target():
    s = FaultStep(fault("packet_drop", service="edge-b", share=0.05).spec)
    assert s.describe() == "packet_drop(edge-b, share=0.05)"


def _gate_method(results, monkeypatch):
    """A Method whose gate sees ``results`` in turn (the last one from then on)."""
    a = fault("latency", at_s=0.0, duration_s=0.2, latency_ms=1)
    exp = Experiment(name="x", before_s=0.2, after_s=0.2, method=[a],
                     audience=Audience(join_every_s=0))
    m, engine, mp = _method(exp, [a])
    seen = iter(results)
    last = [None]

    def fake(t):
        last[0] = next(seen, last[0])
        return last[0]
    monkeypatch.setattr(m, "_gate_results", fake)
    monkeypatch.setattr("chaos.runner.method.GATE_RETRY_S", 0.05)
    return m, engine, mp


def test_the_gate_waits_for_a_steady_state_not_measured_yet(monkeypatch):
    unmeasured = objective("audio_delivered").evaluate(Series.of("audio_delivered", []), 0, 1)
    assert unmeasured.verdict is Verdict.INCONCLUSIVE and not unmeasured.samples
    m, engine, mp = _gate_method([[unmeasured]] * 12 + [[]], monkeypatch)
    planned_end = m.end_s
    try:
        asyncio.run(m.play(FakeLive()))
    finally:
        mp.undo()
    assert ("inject", "target-0") in engine.calls and not m.tl.abort
    assert any("measured" in e["message"] and "late" in e["message"] for e in m.tl.events)
    assert m.end_s > planned_end + 0.4


def test_the_gate_judges_a_breach_at_once(monkeypatch):
    bad = objective("audio_delivered").evaluate(
        Series.of("audio_delivered", [(0.5, 0.2), (1.5, 0.1)]), 0, 2)
    assert bad.verdict is Verdict.FAILED
    m, engine, mp = _gate_method([[bad]], monkeypatch)
    try:
        asyncio.run(m.play(FakeLive()))
    finally:
        mp.undo()
    assert engine.calls == [] and "did not hold" in m.tl.abort
    assert not any("late" in e["message"] for e in m.tl.events)
