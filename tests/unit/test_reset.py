"""`chaos stack reset` as an orchestrator: it finds every executor's sweep through the
registry and runs them stage by stage around the ledger's reverts; one sweep failing is
reported and the others still run. The sweeps themselves are fakes here (the seam is the
point); the real ones run in tests/integration/test_faults_dc.py."""

from __future__ import annotations

import dataclasses

import pytest

from chaos.adapters.space.reference import build
from chaos.core.errors import StackError
from chaos.faults.executors import iptables as exec_iptables
from chaos.faults import executors, reset
from chaos.faults.base import SweepStage, Swept
from chaos.targets.state import StackState

LOCAL = build("local", "resilient")
DOCKER = build("docker", "resilient")


@pytest.fixture
def home(tmp_path, monkeypatch):
    monkeypatch.setenv("CHAOS_HOME", str(tmp_path))
    return tmp_path


def fake_stack(topo, stack_id="space-reset0000") -> StackState:
    state = StackState(stack_id, topo.runtime, topo.profile, "2024-01-01T00:00:00+00:00", topo, {})
    state.save()
    return state


class Recorder:
    """Fake sweeps of every registered module; each records (stage, module) when called."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, str]] = []
        self.behaviour: dict[tuple[str, SweepStage], object] = {}

    def sweeper(self, module: str, state: StackState):
        rec = self

        class Fake:
            def sweep(self, stage: SweepStage, step) -> None:
                rec.calls.append((str(stage), module))
                how = rec.behaviour.get((module, stage))
                if isinstance(how, BaseException):
                    raise how              # a bug in the sweep itself, outside any step
                if callable(how):
                    step(f"{module} at {stage}", how)
        return Fake()


@pytest.fixture
def recorded(home, monkeypatch):
    rec = Recorder()
    monkeypatch.setattr(executors, "sweeper", rec.sweeper)
    ledger = reset._revert_ledger

    def revert_ledger(stack_id, again=False):
        rec.calls.append(("ledger", "again" if again else "first"))
        return ledger(stack_id, again)          # the real one: an empty ledger, nothing to do
    monkeypatch.setattr(reset, "_revert_ledger", revert_ledger)
    monkeypatch.setattr(reset, "_wait_healthy",
                        lambda stack_id, within_s: rec.calls.append(("wait", f"{within_s:g}")) or [])
    return rec


def test_every_registered_executor_sweeps_on_both_runtimes(home):
    assert set(executors.modules()) == set(executors.MECHANISMS.values())
    assert len(executors.modules()) == len(set(executors.modules())), "each module once"
    for topo in (LOCAL, DOCKER):
        state = fake_stack(topo)
        for module in executors.modules():
            assert callable(executors.sweeper(module, state).sweep), (module, topo.runtime)


def test_reset_runs_every_sweep_stage_in_order_around_the_ledger(recorded, home):
    state = fake_stack(LOCAL)
    said = []
    rep = reset.reset(state, said.append)
    mods = executors.modules()
    stages = lambda *ss: [(str(s), m) for s in ss for m in mods]  # noqa: E731
    assert recorded.calls == [*stages(SweepStage.HELPERS, SweepStage.RUN, SweepStage.CLEAR),
                              ("ledger", "first"),
                              *stages(SweepStage.START, SweepStage.CLEAR_AGAIN),
                              ("ledger", "again"), ("wait", "60")]
    assert list(SweepStage) == [SweepStage.HELPERS, SweepStage.RUN, SweepStage.CLEAR,
                                SweepStage.START, SweepStage.CLEAR_AGAIN], "the documented order"
    assert said == ["reverting the ledger", "reverting what is left in the ledger",
                    "waiting until every service is healthy"]
    assert rep.healthy and rep.problems == []
    assert rep.did == ["nothing: no fault was found on the stack"]


def test_within_a_stage_a_drop_rule_goes_before_toxiproxy_is_reset_or_restarted():
    mods = executors.modules()
    assert mods.index("iptables") < mods.index("toxi")


def test_what_the_steps_swept_is_reported_in_order(recorded, home):
    recorded.behaviour[("cpu", SweepStage.HELPERS)] = lambda: Swept(did=["stopped 1 helper"])
    recorded.behaviour[("toxi", SweepStage.CLEAR)] = lambda: Swept(
        did=["removed 1 toxic(s): t on a.b"], problems=["toxiproxy has no proxy for c.d"])
    recorded.behaviour[("lifecycle", SweepStage.START)] = lambda: None   # nothing to report
    said = []
    rep = reset.reset(fake_stack(LOCAL), said.append, healthy_wait_s=5)
    assert rep.did == ["stopped 1 helper", "removed 1 toxic(s): t on a.b"]
    assert rep.problems == ["toxiproxy has no proxy for c.d"]
    assert said[:3] == ["cpu at helpers", "toxi at clear", "reverting the ledger"]
    assert said[3] == "lifecycle at start"
    assert ("wait", "5") in recorded.calls


def test_one_sweep_failing_still_lets_the_others_run_and_is_reported(recorded, home, monkeypatch):
    def refused():
        raise StackError("toxiproxy did not answer within 20 s of its restart")

    def crashed():
        raise OSError(5, "Input/output error")
    recorded.behaviour[("iptables", SweepStage.CLEAR)] = crashed
    recorded.behaviour[("toxi", SweepStage.CLEAR)] = refused
    recorded.behaviour[("cpu", SweepStage.HELPERS)] = RuntimeError("a bug in the sweep")
    recorded.behaviour[("lifecycle", SweepStage.RUN)] = lambda: Swept(did=["resumed 1 stopped process(es): edge-a (pid 7)"])
    rep = reset.reset(fake_stack(LOCAL))
    assert rep.problems == [
        "cpu: sweeping (helpers) failed: RuntimeError: a bug in the sweep",
        "iptables at clear: OSError: [Errno 5] Input/output error",
        "toxi at clear: toxiproxy did not answer within 20 s of its restart",
    ]
    assert rep.did == ["resumed 1 stopped process(es): edge-a (pid 7)"]
    mods = executors.modules()
    for stage in SweepStage:              # every other sweep of every stage still ran
        assert [m for s, m in recorded.calls if s == str(stage)] == mods
    assert recorded.calls[-1][0] == "wait"


def test_an_executor_that_cannot_be_loaded_is_reported_and_the_others_sweep(recorded, home,
                                                                            monkeypatch):
    fake = recorded.sweeper

    def sweeper(module, state):
        if module == "network":
            raise ImportError("No module named 'docker'")
        return fake(module, state)
    monkeypatch.setattr(executors, "sweeper", sweeper)
    rep = reset.reset(fake_stack(DOCKER))
    assert rep.problems == ["network: could not be loaded to sweep: ImportError: "
                            "No module named 'docker'"]
    swept = {m for s, m in recorded.calls if s == str(SweepStage.RUN)}
    assert swept == set(executors.modules()) - {"network"}
    assert ("wait", "120") in recorded.calls, "docker's healthy deadline"


def test_the_real_sweeps_with_nothing_to_sweep_report_nothing(home, monkeypatch):
    """The real executors on a described target whose services, toxiproxy and containers
    are not there: no fault found, no restart tried (a described target is the user's),
    and toxiproxy not answering is reported once, after the ledger."""
    topo = dataclasses.replace(LOCAL, source="described.yaml", toxiproxy="127.0.0.1:9")
    state = fake_stack(topo)
    monkeypatch.setattr(reset, "_wait_healthy", lambda stack_id, within_s: [])
    # the host's rules are the machine's: a test does not sweep them (another run's may be there)
    monkeypatch.setattr(exec_iptables, "_variants", lambda: [])
    said = []
    rep = reset.reset(state, said.append)
    assert "restarting a toxiproxy that does not answer" not in said
    assert "restarting services that are not running" not in said
    assert said == ["stopping duty-cycle helpers", "resuming stopped processes",
                    "removing chaos iptables rules", "resetting toxiproxy", "reverting the ledger",
                    "resetting toxiproxy", "reverting what is left in the ledger",
                    "waiting until every service is healthy"]
    [problem] = rep.problems
    assert problem.startswith("resetting toxiproxy: ")
    assert rep.did == ["nothing: no fault was found on the stack"]
