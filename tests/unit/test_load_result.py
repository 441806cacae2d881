"""Merging the workers' reports into one storm result, and its scale against the incident."""

from __future__ import annotations

import math
from array import array

import pytest

from chaos.audio.histogram import Histogram
from chaos.load.result import INCIDENT_AUDIENCE, merge


def report(index: int, joins: list[float], failed: dict[str, int], held_by_s: list[int],
           first: float, last: float, late: int = 0) -> dict:
    h = Histogram()
    samples = array("d")
    for k, v in enumerate(joins):
        h.record(v)
        samples.extend((first + k * 0.01, v))
    for reason, n in failed.items():
        h.record_failed(n)
        for _ in range(n):
            samples.extend((last, math.inf))
    lateness = Histogram()
    lateness.record(0.001)
    return {"index": index, "pid": 100 + index, "arrivals": len(joins) + sum(failed.values()),
            "fired": len(joins) + sum(failed.values()), "joined": len(joins), "failures": failed,
            "refusals": {"edge_full": 2}, "retries": 3, "retry_hints": 2, "retry_hint_max_s": 2.0,
            "reconnects": 1, "reconnect_failures": {}, "evicted": 0, "late_starts": late,
            "peak_in_flight": 4, "held_by_s": held_by_s, "first_fire_s": first,
            "last_fire_s": last, "join": h.to_dict(), "rejoin": Histogram().to_dict(),
            "lateness": lateness.to_dict(), "samples": samples.tobytes(), "wall_s": 10.0,
            "cpu_s": 1.0, "errors": [f"e{index}"]}


def test_reports_merge_into_one_accounted_result():
    a = report(0, [0.1] * 90, {"no_audio": 5}, [10, 300, 200], 0.0, 9.9, late=3)
    b = report(1, [0.2] * 95, {"refused:edge_full": 10}, [20, 250], 0.05, 9.95)
    r = merge([a, b], schedule="s", scheduled_s=10.0, peak_rate_per_s=20.0, late_ms=20.0,
              started_ns=1_000_000_000, duration_s=10.5)
    assert r.arrivals == 200 and r.joined == 185 and r.failed == 15 and r.accounted
    assert r.failures == {"refused:edge_full": 10, "no_audio": 5}
    assert r.refusals == {"edge_full": 4} and r.retries == 6 and r.late_starts == 3
    assert r.join_p50_s == pytest.approx(0.2, rel=0.01)
    assert r.join_p95_s == math.inf  # 15 of 200 failed: p95 lands on a failed join
    assert r.peak_concurrent == 550  # second 1: 300 + 250
    assert r.rate_requested_per_s == 20.0 and r.achieved_rate_per_s == pytest.approx(20.0)
    assert r.scale_factor.rate == pytest.approx(20 / (50_000 / 60))
    assert r.scale_factor.audience == pytest.approx(550 / INCIDENT_AUDIENCE)
    assert "of 833 joins/s" in r.scale_factor.describe()
    assert r.worker_cpu == (0.1, 0.1) and r.worker_pids == (100, 101)
    t, v = r.join_samples()
    assert len(t) == 200 and (t[1:] >= t[:-1]).all() and (v == math.inf).sum() == 15
    shifted, _ = r.join_samples(t0_ns=0)
    assert shifted[0] == pytest.approx(t[0] + 1.0)
    d = r.to_dict()
    assert d["join_time"]["count"] == 185 and d["scale_factor"]["against"]["audience"] == 600_000


def test_a_late_generator_stretches_the_span_and_lowers_the_achieved_rate():
    a = report(0, [0.1] * 100, {}, [1], 0.0, 12.5)
    r = merge([a], schedule="s", scheduled_s=10.0, peak_rate_per_s=10.0, late_ms=20.0,
              started_ns=0, duration_s=13.0)
    assert r.achieved_rate_per_s == pytest.approx(100 / 12.5)
