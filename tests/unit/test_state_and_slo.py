import math

import pytest

from chaos.errors import ConfigError
from chaos.model import Verdict
from chaos.slo import DEFAULTS, Objective, percentile
from chaos.targets.state import StackState
from space.topology import build


def test_state_round_trips_and_clears(tmp_path, monkeypatch):
    monkeypatch.setenv("CHAOS_HOME", str(tmp_path))
    assert StackState.load() is None
    s = StackState("space-1", "local", "fragile", "2026-01-01T00:00:00+00:00", build("local", "fragile"),
                   {"procs": [{"service": "edge-a", "pid": 1, "start_ticks": 2, "log": "x"}]})
    s.save()
    assert StackState.load() == s
    assert not list(tmp_path.glob(".stack.json.*")), "no temporary file left behind"
    StackState.clear()
    assert StackState.load() is None


def test_nothing_measured_is_inconclusive_never_passed():
    r = DEFAULTS["join_time"].judge(None, 0, "whole run")
    assert r.verdict is Verdict.INCONCLUSIVE and r.value is None


def test_a_failed_join_counts_as_infinitely_slow():
    joins = [0.1] * 18 + [math.inf] * 2
    r = DEFAULTS["join_time"].judge(percentile(joins, 95), len(joins), "w")
    assert r.verdict is Verdict.FAILED and r.value == math.inf


def test_verdict_carries_value_threshold_and_window():
    r = DEFAULTS["audio_delivered"].judge(0.999, 1000, "whole run (5 s)")
    assert (r.verdict, r.value, r.threshold, r.window) == (Verdict.PASSED, 0.999, 0.995, "whole run (5 s)")
    assert r.objective == "ratio >= 0.995"


@pytest.mark.parametrize("kw", [{"op": "<"}, {"threshold": "2s"}, {"threshold": float("nan")}])
def test_bad_objectives_are_rejected(kw):
    with pytest.raises(ConfigError):
        Objective(**{"sli": "join_time", "stat": "p95", "op": "<=", "threshold": 2.0} | kw)


def test_percentile_nearest_rank():
    assert percentile(list(range(1, 101)), 95) == 95
    assert percentile([], 95) is None
