"""The mergeable latency histogram: quantiles against numpy, merging, failed joins as +inf."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from chaos.audio.histogram import Histogram
from chaos.core.slo import percentile

latencies = st.lists(st.floats(min_value=1e-5, max_value=600.0, allow_nan=False), min_size=1,
                     max_size=400)
QS = (0.5, 0.9, 0.95, 0.99, 1.0)


def of(values, failed: int = 0) -> Histogram:
    h = Histogram()
    for v in values:
        h.record(v)
    h.record_failed(failed)
    return h


@settings(max_examples=200, deadline=None)
@given(values=latencies)
@example(values=[1.0, 1.7267e-05, 1e-05])      # 17.267 us is recorded as 17 us
def test_quantiles_are_within_one_percent_of_numpy(values):
    h = of(values)
    arr = np.asarray(values)
    for q in QS:
        want = float(np.quantile(arr, q, method="inverted_cdf"))  # nearest rank
        got = h.quantile(q)
        # 0.1 % above 1 ms; below it the unit, one microsecond, is the resolution
        assert got == pytest.approx(want, rel=0.01, abs=1e-6), (q, got, want)
    assert h.count == len(values) and h.failed == 0
    assert h.min_s == min(values) and h.max_s == max(values)
    assert h.mean_s == pytest.approx(float(arr.mean()), rel=1e-9)


@settings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), n=st.integers(1, 8000), sigma=st.floats(0.1, 3.0),
       shape=st.sampled_from(["lognormal", "exponential", "bimodal"]))
def test_quantiles_on_large_random_data(seed, n, sigma, shape):
    rng = np.random.default_rng(seed)
    if shape == "lognormal":
        values = rng.lognormal(-3.0, sigma, n)
    elif shape == "exponential":
        values = rng.exponential(sigma, n)
    else:  # fast joins and a slow retrying tail
        values = np.where(rng.random(n) < 0.9, rng.normal(0.03, 0.005, n).clip(1e-4),
                          rng.uniform(1.0, 5.0, n))
    h = of(values.tolist())
    for q in QS:
        assert h.quantile(q) == pytest.approx(float(np.quantile(values, q, method="inverted_cdf")),
                                              rel=0.01)


def test_lognormal_join_times_match_numpy_closely():
    rng = np.random.default_rng(5)
    values = rng.lognormal(mean=-3.0, sigma=1.0, size=100_000)
    h = of(values.tolist())
    for q in QS:
        assert h.quantile(q) == pytest.approx(float(np.quantile(values, q, method="inverted_cdf")),
                                              rel=0.005)


@settings(max_examples=300, deadline=None)
@given(v=st.floats(min_value=1e-6, max_value=3600.0, allow_nan=False))
def test_a_single_value_reads_back_within_a_tenth_of_a_percent(v):
    h = of([v, v * 2])          # the median is the first value, read from its bucket
    assert h.quantile(0.5) == pytest.approx(v, rel=1e-3, abs=1e-6)


def test_the_wire_form_is_hdrhistograms_standard_encoding():
    from hdrh.histogram import HdrHistogram
    d = of([0.010, 0.020, 0.5], failed=2).to_dict()
    other = HdrHistogram.decode(d["hdr"].encode())      # any HdrHistogram reader
    assert other.get_total_count() == 3 and d["failed"] == 2
    assert other.get_max_value() == pytest.approx(500_000, rel=1e-3)


@settings(max_examples=100, deadline=None)
@given(values=latencies, cut=st.integers(0, 400), failed=st.tuples(st.integers(0, 20), st.integers(0, 20)))
def test_merged_equals_recorded_together(values, cut, failed):
    a, b = values[:cut], values[cut:]
    merged = Histogram.merged([of(a, failed[0]), of(b, failed[1])])
    together = of(values, sum(failed))
    assert merged == together
    assert merged.counts == together.counts
    assert merged.sum_s == pytest.approx(together.sum_s)
    for q in QS:
        assert merged.quantile(q) == together.quantile(q)


def test_merge_into_an_empty_histogram_and_of_empties():
    assert Histogram.merged([]).quantile(0.5) is None
    h = Histogram().merge(of([0.1, 0.2]))
    assert h.count == 2 and h.min_s == 0.1 and h.max_s == 0.2


# -- failed joins ------------------------------------------------------------------------

def test_failed_joins_count_as_slower_than_any_value():
    h = of([0.1] * 90, failed=10)
    assert h.total == 100 and h.count == 90 and h.failed == 10
    assert h.p50_s == pytest.approx(0.1, rel=0.01)
    assert h.quantile(0.90) == pytest.approx(0.1, rel=0.01)   # rank 90: the last timed one
    assert h.p95_s == math.inf and h.p99_s == math.inf
    assert h.mean_s == pytest.approx(0.1)                     # of the timed joins only


def test_failed_joins_agree_with_the_slo_percentile_of_inf_values():
    timed = [0.05 * k for k in range(1, 96)]
    for failed in (0, 4, 5, 6, 50):
        h = of(timed, failed)
        values = timed + [math.inf] * failed
        for q in QS:
            assert h.quantile(q) == pytest.approx(percentile(values, 100 * q), rel=0.01)


def test_recording_inf_is_a_failed_join_and_bad_values_are_refused():
    h = Histogram()
    h.record(math.inf)
    assert h.failed == 1 and h.count == 0 and h.p50_s == math.inf
    for bad in (-0.1, float("nan"), -math.inf):
        with pytest.raises(ValueError, match="latency is >= 0 s"):
            h.record(bad)


def test_only_failed_joins_and_nothing_at_all():
    assert of([], failed=3).quantile(0.5) == math.inf
    empty = Histogram()
    assert empty.quantile(0.95) is None
    assert empty.summary() == {"count": 0, "failed": 0, "min_s": None, "max_s": None,
                               "mean_s": None, "p50_s": None, "p95_s": None, "p99_s": None}
    with pytest.raises(ValueError, match=r"in \(0, 1\]"):
        empty.quantile(95)


# -- crossing processes ------------------------------------------------------------------

@settings(max_examples=50, deadline=None)
@given(values=st.lists(st.floats(0.0, 100.0), max_size=200), failed=st.integers(0, 5))
def test_to_dict_round_trips_through_json(values, failed):
    h = of(values, failed)
    back = Histogram.from_dict(json.loads(json.dumps(h.to_dict())))
    assert back == h
    assert back.summary() == h.summary()


def test_from_dict_refuses_other_formats_and_bad_counts():
    d = of([0.1, 0.2]).to_dict()
    with pytest.raises(ValueError, match="compressed base64"):
        Histogram.from_dict({**d, "format": "sparse-log-linear"})
    with pytest.raises(ValueError, match="add up to"):
        Histogram.from_dict({**d, "count": 3})


def test_a_histogram_stays_small():
    rng = np.random.default_rng(1)
    h = of(rng.lognormal(-2.5, 0.8, 50_000).tolist())
    assert len(json.dumps(h.to_dict())) < 10_000   # 50,000 joins in about 5 kB
