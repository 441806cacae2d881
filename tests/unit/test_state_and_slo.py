import math

import numpy as np
import pytest
from hypothesis import given, strategies as st

from chaos.core.errors import ConfigError
from chaos.core.model import Verdict
from chaos.core.slo import DEFAULTS, SLIS, Objective, Series, objective, percentile, validate
from chaos.targets.state import StackState
from chaos.adapters.space.reference import build


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


def test_every_design_sli_has_a_default_objective():
    assert set(DEFAULTS) == set(SLIS) == {"join_time", "audio_delivered", "freeze", "mouth_to_ear",
                                          "echo", "silence", "mos", "audience_retained"}
    assert DEFAULTS["join_time"].describe() == "p95 <= 2 s"
    assert DEFAULTS["audio_delivered"].describe() == "mean >= 0.995 per 5 s window"
    assert DEFAULTS["echo"].describe() == "max <= -25 dB"


def test_nothing_measured_is_inconclusive_never_passed():
    assert DEFAULTS["join_time"].judge(None, 0, "whole run").verdict is Verdict.INCONCLUSIVE
    empty = Series.of("join_time", [])
    r = DEFAULTS["join_time"].evaluate(empty, 0, 10)
    assert r.verdict is Verdict.INCONCLUSIVE and r.value is None and r.first_breach_s is None


def test_a_failed_join_counts_as_infinitely_slow():
    joins = [(i * 0.1, 0.1) for i in range(18)] + [(1.9, math.inf), (2.0, math.inf)]
    r = DEFAULTS["join_time"].evaluate(Series.of("join_time", joins), 0, 3)
    assert r.verdict is Verdict.FAILED and r.value == math.inf


def test_sliding_windows_find_the_first_breach_and_the_worst_window():
    # 50 frames a second for 20 s; from t=12 s to 14 s one frame in ten is lost
    samples = [(k / 50, 0.0 if 12 <= k / 50 < 14 and k % 10 == 0 else 1.0) for k in range(1000)]
    r = DEFAULTS["audio_delivered"].evaluate(Series.of("audio_delivered", samples), 0, 20, phase="fault")
    assert r.verdict is Verdict.FAILED
    assert r.first_breach_s == pytest.approx(13.0)  # the first 5 s window that holds enough loss closes then
    assert r.value == pytest.approx(0.96)           # worst window: [10, 15) has 20 lost of 250
    assert r.phase == "fault" and "5 s windows" in r.window and r.threshold == 0.995


def test_whole_phase_breach_time_is_when_it_broke():
    samples = [(t, 0.1) for t in range(10)] + [(t, 3.0) for t in range(10, 20)]
    r = DEFAULTS["join_time"].evaluate(Series.of("join_time", samples), 0, 20)
    assert r.verdict is Verdict.FAILED and 10 <= r.first_breach_s <= 11


def test_phases_are_judged_separately():
    s = Series.of("mouth_to_ear", [(t / 10, 0.05 if t < 100 else 0.9) for t in range(200)])
    assert DEFAULTS["mouth_to_ear"].evaluate(s, 0, 10, "before").verdict is Verdict.PASSED
    assert DEFAULTS["mouth_to_ear"].evaluate(s, 10, 20, "fault").verdict is Verdict.FAILED


def test_overrides_and_their_validation():
    assert objective("audio_delivered", threshold=0.99).threshold == 0.99
    with pytest.raises(ConfigError, match="unknown SLI 'latency'.*join_time"):
        objective("latency")
    with pytest.raises(ConfigError, match="unknown setting"):
        objective("echo", thresold=-30)


@pytest.mark.parametrize("sli, threshold, match", [
    ("join_time", -1.0, "out of range; accepted: 0 to 600 s"),
    ("audio_delivered", 1.5, "out of range; accepted: 0 to 1"),
    ("echo", 6.0, "out of range; accepted: -120 to 0 dB"),
    ("mos", "good", "not a number"),
    ("join_time", True, "not a number"),
    ("mouth_to_ear", float("nan"), "not a finite number"),
    ("join_time", 10**400, "integer of 401 digits is out of range"),
])
def test_thresholds_of_the_wrong_type_or_sign_are_rejected(sli, threshold, match):
    with pytest.raises(ConfigError, match=match):
        objective(sli, threshold=threshold)


def test_a_window_longer_than_the_run_is_rejected_before_it_runs():
    with pytest.raises(ConfigError, match="window_s=30.0 is longer than the run"):
        validate([objective("audio_delivered", window_s=30.0)], run_s=10)
    with pytest.raises(ConfigError, match="window_s=-5 is out of range"):
        objective("freeze", window_s=-5)
    with pytest.raises(ConfigError, match="declare each SLI once"):
        validate([DEFAULTS["echo"], DEFAULTS["echo"]], run_s=10)


@given(st.lists(st.floats(0, 1e6, allow_nan=False), min_size=1, max_size=200), st.sampled_from([50, 95, 99]))
def test_percentile_is_a_sample_with_the_right_rank(values, q):
    p = percentile(values, q)
    assert p in values
    assert np.mean(np.array(values) <= p) >= q / 100 - 1e-9


def test_bad_objectives_are_rejected():
    for kw in ({"op": "<"}, {"stat": "median"}):
        with pytest.raises(ConfigError):
            Objective(**{"sli": "join_time", "stat": "p95", "op": "<=", "threshold": 2.0} | kw)
