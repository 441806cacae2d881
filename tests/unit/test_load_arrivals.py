"""Open-loop arrival schedules: rate, ramps, bursts, bounds, determinism, validation."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from chaos.core.errors import ConfigError
from chaos.core.arrivals import (INCIDENT_JOINS_PER_S, MAX_ARRIVALS, ArrivalSchedule, Burst, Ramp,
                                 parse_rate)


def counts_per_s(offsets, duration_s: float) -> np.ndarray:
    return np.histogram(offsets, bins=int(duration_s), range=(0, duration_s))[0]


# -- rate ---------------------------------------------------------------------------------

def test_even_arrivals_hit_the_rate_exactly():
    off = ArrivalSchedule(250, 4, process="even").offsets()
    assert len(off) == 1000
    assert off[0] == 0.0
    assert np.allclose(np.diff(off), 1 / 250)
    assert list(counts_per_s(off, 4)) == [250] * 4


def test_poisson_arrivals_hit_the_rate_within_four_sigma():
    rate, d = 1000.0, 60.0
    off = np.array(ArrivalSchedule(rate, d, seed=7).offsets())
    n = rate * d
    assert abs(len(off) - n) < 4 * math.sqrt(n)
    gaps = np.diff(off)
    # exponential gaps: mean 1/rate, coefficient of variation 1 (evenly spaced: 0)
    assert gaps.mean() == pytest.approx(1 / rate, rel=0.02)
    assert gaps.std() / gaps.mean() == pytest.approx(1.0, abs=0.03)
    per_s = counts_per_s(off, d)
    assert abs(per_s.mean() - rate) < 4 * math.sqrt(rate / d)
    assert per_s.var() == pytest.approx(rate, rel=0.5)  # Poisson: variance = mean


def test_the_incident_rate_is_50000_a_minute():
    assert INCIDENT_JOINS_PER_S == pytest.approx(833.33, abs=0.01)
    assert parse_rate("50000/min") == pytest.approx(INCIDENT_JOINS_PER_S)


# -- ramps --------------------------------------------------------------------------------

def test_a_linear_ramp_has_a_linear_rate_then_holds():
    s = ArrivalSchedule.ramp_up(1000, ramp_s=10, hold_s=5, process="even")
    per_s = counts_per_s(s.offsets(), 15)
    # second k of the ramp carries the integral of 100 t over [k, k+1]: 100 k + 50
    expected = [100 * k + 50 for k in range(10)] + [1000] * 5
    assert np.all(np.abs(per_s - expected) <= 1), per_s
    assert s.rate_at(5) == pytest.approx(500)
    assert s.rate_at(12) == pytest.approx(1000)
    assert s.expected_joins() == pytest.approx(5000 + 5000)
    assert s.peak_rate_per_s == 1000


def test_a_poisson_ramp_follows_the_same_shape():
    s = ArrivalSchedule.ramp_up(2000, ramp_s=20, hold_s=0, seed=3)
    per_s = counts_per_s(s.offsets(), 20)
    expected = np.array([100 * k + 50 for k in range(20)], dtype=float)
    assert np.all(np.abs(per_s - expected) < 5 * np.sqrt(expected) + 1), per_s
    # the first half has a quarter of the joins
    assert per_s[:10].sum() / per_s.sum() == pytest.approx(0.25, abs=0.02)


def test_a_ramp_down_and_a_step():
    s = ArrivalSchedule(100, 10, ramps=(Ramp(2, 4, 500, 0), Ramp(8, 0, 0, 300)), process="even")
    assert s.rate_at(1) == 100
    assert s.rate_at(4) == pytest.approx(250)
    assert s.rate_at(7) == 0  # held at the ramp's end
    assert s.rate_at(9) == 300  # a step: duration 0
    per_s = counts_per_s(s.offsets(), 10)
    assert per_s[6] == 0 and per_s[7] == 0
    assert abs(per_s[8] - 300) <= 1 and abs(per_s[0] - 100) <= 1
    assert len(s.offsets()) == pytest.approx(s.expected_joins(), abs=1)


# -- bursts ---------------------------------------------------------------------------------

def test_a_burst_adds_its_joins_at_its_time():
    base = ArrivalSchedule(100, 10, process="even")
    s = ArrivalSchedule(100, 10, bursts=(Burst(5.0, 2000),), process="even")
    off = np.array(s.offsets())
    assert len(off) == len(base.offsets()) + 2000
    assert np.count_nonzero(off == 5.0) == 2000 + 1  # and the regular arrival at 5.0
    assert np.all(np.diff(off) >= 0)


@pytest.mark.parametrize("process", ["even", "poisson"])
def test_a_spread_burst_stays_inside_its_window(process):
    s = ArrivalSchedule(1, 10, bursts=(Burst(3.0, 500, spread_s=0.5),), process=process, seed=1)
    off = np.array(s.offsets())
    inside = off[(off >= 3.0) & (off < 3.5)]
    assert 500 <= len(inside) <= 505
    assert s.expected_joins() == pytest.approx(510)


# -- bounds and determinism -------------------------------------------------------------

def test_max_joins_keeps_the_earliest_arrivals():
    full = ArrivalSchedule(1000, 5, seed=2).offsets()
    capped = ArrivalSchedule(1000, 5, seed=2, max_joins=1234).offsets()
    assert capped == full[:1234]
    assert ArrivalSchedule(1000, 5, max_joins=10).mean_rate_per_s == pytest.approx(2.0)


def test_offsets_are_sorted_and_inside_the_run():
    s = ArrivalSchedule(500, 3, bursts=(Burst(2.9, 100, spread_s=0.1),), seed=4)
    off = s.offsets()
    assert off == sorted(off)
    assert 0 <= off[0] and off[-1] < 3


def test_the_same_seed_gives_the_same_arrivals():
    a = ArrivalSchedule(300, 5, seed=11, bursts=(Burst(1, 50, 0.2),)).offsets()
    b = ArrivalSchedule(300, 5, seed=11, bursts=(Burst(1, 50, 0.2),)).offsets()
    c = ArrivalSchedule(300, 5, seed=12, bursts=(Burst(1, 50, 0.2),)).offsets()
    assert a == b
    assert a != c


@settings(max_examples=60, deadline=None)
@given(rate=st.floats(0.5, 2000), duration=st.floats(0.1, 20),
       ramp=st.one_of(st.none(), st.tuples(st.floats(0, 1), st.floats(0, 1), st.floats(0, 500),
                                           st.floats(0, 500))),
       burst=st.one_of(st.none(), st.tuples(st.floats(0, 0.99), st.integers(1, 300))),
       max_joins=st.one_of(st.none(), st.integers(1, 5000)))
def test_even_schedules_give_the_expected_count(rate, duration, ramp, burst, max_joins):
    ramps = ()
    if ramp is not None:
        start, length = ramp[0] * duration * 0.99, ramp[1] * duration * 0.5
        ramps = (Ramp(start, min(length, duration - start), ramp[2], ramp[3]),)
    bursts = () if burst is None else (Burst(burst[0] * duration, burst[1]),)
    s = ArrivalSchedule(rate, duration, ramps=ramps, bursts=bursts, process="even",
                        max_joins=max_joins)
    off = s.offsets()
    continuous = s.expected_joins() - sum(b.joins for b in bursts)
    n = math.ceil(continuous - 1e-9) + sum(b.joins for b in bursts)
    if max_joins is not None:
        n = min(n, max_joins)
    assert abs(len(off) - n) <= 1
    assert off == sorted(off)
    assert all(0 <= t < duration for t in off)


# -- validation ---------------------------------------------------------------------------

@pytest.mark.parametrize("kwargs, match", [
    ({"rate_per_s": 0, "duration_s": 1}, r"rate_per_s must be a finite number more than 0 \(joins/s\), got 0"),
    ({"rate_per_s": -5, "duration_s": 1}, r"rate_per_s must be a finite number more than 0 \(joins/s\), got -5"),
    ({"rate_per_s": float("nan"), "duration_s": 1}, r"rate_per_s must be a finite number more than 0 \(joins/s\), got nan"),
    ({"rate_per_s": float("inf"), "duration_s": 1}, r"rate_per_s must be a finite number"),
    ({"rate_per_s": "100", "duration_s": 1}, r"rate_per_s must be a finite number .*got '100'"),
    ({"rate_per_s": True, "duration_s": 1}, r"rate_per_s must be a finite number .*got True"),
    ({"rate_per_s": 10, "duration_s": None}, r"duration_s is required: .*bounded"),
    ({"rate_per_s": 10, "duration_s": 0}, r"duration_s must be a finite number more than 0 \(seconds\)"),
    ({"rate_per_s": 10, "duration_s": float("inf")}, r"duration_s must be a finite number"),
    ({"rate_per_s": 10, "duration_s": 5, "process": "uniform"}, r"use one of: poisson, even"),
    ({"rate_per_s": 10, "duration_s": 5, "max_joins": 0}, r"max_joins must be an integer of at least 1"),
    ({"rate_per_s": 10, "duration_s": 5, "seed": 1.5}, r"seed must be an integer"),
    ({"rate_per_s": 10, "duration_s": 5, "ramps": (Ramp(1, -2, 0, 10),)},
     r"ramp at 1 s: duration_s must be a finite number of at least 0 \(seconds; 0 is a step\), got -2"),
    ({"rate_per_s": 10, "duration_s": 5, "ramps": (Ramp(1, 1, -3, 10),)},
     r"from_per_s must be a finite number of at least 0 \(joins/s\)"),
    ({"rate_per_s": 10, "duration_s": 5, "ramps": (Ramp(1, 1, 0, float("nan")),)},
     r"to_per_s must be a finite number"),
    ({"rate_per_s": 10, "duration_s": 5, "ramps": (Ramp(4, 2, 0, 10),)},
     r"runs to 6 s, outside the run of 5 s"),
    ({"rate_per_s": 10, "duration_s": 5, "ramps": (Ramp(0, 3, 0, 10), Ramp(2, 1, 10, 0))},
     r"must not overlap"),
    ({"rate_per_s": 10, "duration_s": 5, "ramps": [Ramp(0, 1, 0, 1)]}, r"tuples"),
    ({"rate_per_s": 10, "duration_s": 5, "bursts": (Burst(5, 10),)},
     r"burst at 5 s .* outside the run of 5 s; a burst happens at 0 to 5 s"),
    ({"rate_per_s": 10, "duration_s": 5, "bursts": (Burst(-1, 10),)}, r"at_s must be a finite number of at least 0 \(seconds\)"),
    ({"rate_per_s": 10, "duration_s": 5, "bursts": (Burst(4, 10, 2),)}, r"outside the run"),
    ({"rate_per_s": 10, "duration_s": 5, "bursts": (Burst(1, 0),)}, r"joins must be an integer of at least 1"),
    ({"rate_per_s": 10, "duration_s": 5, "bursts": ((1, 10),)}, r"bursts\[0\] is a tuple, not a Burst"),
    ({"rate_per_s": 1e6, "duration_s": 3600}, r"at most 5,000,000: shorten the run"),
])
def test_bad_declarations_say_why_and_what_is_accepted(kwargs, match):
    with pytest.raises(ConfigError, match=match):
        ArrivalSchedule(**kwargs)


def test_a_huge_rate_is_fine_with_max_joins():
    s = ArrivalSchedule(1e6, 3600, max_joins=1000)
    assert len(s.offsets()) == 1000
    assert MAX_ARRIVALS == 5_000_000


@pytest.mark.parametrize("text, rate", [("833", 833.0), ("833/s", 833.0), ("50000/min", 833.333),
                                        ("3.6e6/h", 1000.0), (" 12 / minute ", 0.2)])
def test_parse_rate(text, rate):
    assert parse_rate(text) == pytest.approx(rate, rel=1e-4)


@pytest.mark.parametrize("text", ["", "fast", "-5", "0", "10/day", "nan"])
def test_parse_rate_refuses_what_is_not_a_rate(text):
    with pytest.raises(ConfigError, match=r"join rate"):
        parse_rate(text)


def test_describe_names_the_shape():
    s = ArrivalSchedule(833, 60, ramps=(Ramp(0, 30, 0, 833),), bursts=(Burst(45, 5000),))
    text = s.describe()
    assert "poisson arrivals at 833 joins/s for 60 s" in text
    assert "ramp 0->833 joins/s over 0-30 s" in text and "burst of 5000 at 45 s" in text
