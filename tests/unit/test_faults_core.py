"""The fault model: selection, parameter checks, the ledger, and revert that always runs."""

import threading
import time

import pytest

from chaos.core.errors import ConfigError
from chaos.faults.base import Action, Param, Selector, check_params
from chaos.faults.engine import Engine, FaultError
from chaos.faults.ledger import Ledger
from chaos.adapters.space.reference import build

TOPO = build("local", "resilient")


def test_selectors_match_by_name_kind_dc_and_glob():
    assert [s.name for s in Selector(service="edge").services(TOPO)] == ["edge-a", "edge-b", "edge-c"]
    assert [s.name for s in Selector(dc="dc-a").services(TOPO, kinds=("redis", "origin"))] == ["origin-a", "redis-a"]
    assert [lk.name for lk in Selector(link="edge-*.origin-a").links(TOPO)] == [
        "edge-a.origin-a", "edge-b.origin-a", "edge-c.origin-a"]
    assert {lk.name for lk in Selector(dc="dc-b").links(TOPO, kinds=("listener_edge",))} == {"listener.edge-b"}


def test_blast_radius():
    assert len(Selector(service="edge", count="one").services(TOPO)) == 1
    assert len(Selector(service="edge", count="2").services(TOPO)) == 2
    assert len(Selector(service="edge", count="50%").services(TOPO)) == 2
    same = Selector(service="edge", count="one", seed=3)
    assert same.services(TOPO) == same.services(TOPO)
    with pytest.raises(ConfigError, match="only 3 match"):
        Selector(service="edge", count="4").services(TOPO)
    with pytest.raises(ConfigError, match="blast radius"):
        Selector(count="half")


def test_a_selector_that_matches_nothing_names_what_exists():
    with pytest.raises(ConfigError, match="no service of the stack matches service=mysql.*edge-a"):
        Selector(service="mysql").services(TOPO)
    with pytest.raises(ConfigError, match="no link of the stack matches link=db.*listener.edge-a"):
        Selector(link="db.*").links(TOPO)


class FakeKind:
    name = "fake"
    params = {"rate": Param(float, 0.0, 1.0, required=True), "mode": Param(str, choices=("kill", "stop"), default="kill")}


def test_parameters_are_checked_with_the_accepted_values():
    assert check_params(FakeKind(), {"rate": 0.5}) == {"rate": 0.5, "mode": "kill"}
    with pytest.raises(ConfigError, match=r"rate=1.5 is out of range; accepted: 0 to 1"):
        check_params(FakeKind(), {"rate": 1.5})
    with pytest.raises(ConfigError, match="rate is required"):
        check_params(FakeKind(), {})
    with pytest.raises(ConfigError, match="mode='nuke' is not accepted; use one of kill, stop"):
        check_params(FakeKind(), {"rate": 0.1, "mode": "nuke"})
    with pytest.raises(ConfigError, match="unknown parameter"):
        check_params(FakeKind(), {"rate": 0.1, "ratee": 1})


def action(i, mech="fake"):
    return Action("fake", "f-1", mech, f"edge-{i}", "dc-a", {"n": i})


class Recorder:
    mechanism = "fake"

    def __init__(self, fail_on=(), hang_on=()):
        self.injected, self.reverted = [], []
        self.fail_on, self.hang_on = fail_on, hang_on

    def inject(self, a):
        if a.target in self.fail_on:
            raise FaultError(f"cannot inject {a.target}")
        self.injected.append(a.target)

    def revert(self, a):
        if a.target in self.hang_on:
            threading.Event().wait(30)
        self.reverted.append(a.target)


def test_the_ledger_holds_actions_before_injection(tmp_path):
    ledger = Ledger(tmp_path / "active.json")
    seen_in_ledger = []

    class Peek(Recorder):
        def inject(self, a):
            seen_in_ledger.append([x.target for x in ledger.active()])
            super().inject(a)

    eng = Engine(lambda m: Peek(), "stack-1", ledger)
    eng.inject([action(1), action(2)])
    assert seen_in_ledger[0] == ["edge-1", "edge-2"], "both were on disk before the first inject"
    assert eng.revert_all().ok
    assert ledger.active() == []


def test_a_failed_injection_reverts_what_was_done(tmp_path):
    rec = Recorder(fail_on=("edge-2",))
    eng = Engine(lambda m: rec, "stack-1", Ledger(tmp_path / "a.json"))
    with pytest.raises(FaultError, match="cannot inject edge-2; reverted"):
        eng.inject([action(1), action(2), action(3)])
    assert rec.injected == ["edge-1"]
    assert set(rec.reverted) == {"edge-1", "edge-2", "edge-3"}  # revert is idempotent: all of them
    assert eng.ledger.active() == []


def test_a_hung_revert_has_a_deadline_and_does_not_stop_the_others(tmp_path):
    rec = Recorder(hang_on=("edge-2",))
    eng = Engine(lambda m: rec, "stack-1", Ledger(tmp_path / "a.json"))
    eng.inject([action(1), action(2), action(3)])
    t = time.monotonic()
    report = eng.revert([action(1), action(2), action(3)], deadline_s=0.3)
    assert time.monotonic() - t < 3
    assert [a.target for a in report.reverted] == ["edge-3", "edge-1"]
    assert [a.target for a, _ in report.failed] == ["edge-2"]
    assert [a.target for a in eng.ledger.active()] == ["edge-2"], "what failed stays for the next reset"


def test_ledger_is_per_stack(tmp_path):
    ledger = Ledger(tmp_path / "a.json")
    ledger.add([action(1)], "stack-1")
    ledger.add([action(2)], "stack-2")
    assert [a.target for a in ledger.active("stack-2")] == ["edge-2"]
    assert Action.from_dict(action(1).to_dict()) == action(1)


def test_ledger_and_revert_all_can_keep_to_one_process(tmp_path):
    """A runner's watchdog reverts the faults its runner injected, not another's."""
    import json
    import os
    path = tmp_path / "a.json"
    ledger = Ledger(path)
    ledger.add([action(1)], "stack-1")
    entries = json.loads(path.read_text())
    entries.append({**entries[0], "key": "other", "pid": os.getpid() + 1,
                    "action": {**entries[0]["action"], "target": "edge-9"}})
    path.write_text(json.dumps(entries))
    assert [a.target for a in ledger.active("stack-1", pid=os.getpid())] == ["edge-1"]
    assert len(ledger.active("stack-1")) == 2
    rec = Recorder()
    report = Engine(lambda m: rec, "stack-1", ledger).revert_all(pid=os.getpid())
    assert [a.target for a in report.reverted] == ["edge-1"]
    assert [a.target for a in ledger.active("stack-1")] == ["edge-9"]
