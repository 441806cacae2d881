"""Probes that aggregate as they go and know their own limits: per-second bins whose
memory does not grow with the run, weighted samples judged as the events they stand for,
a loop watch that sees its own lag, and judging that sets aside what a saturated probe
measured (inconclusive, never failed)."""

import asyncio
import time
from array import array

import numpy as np
import pytest

from chaos.audio import sli
from chaos.core.model import Verdict
from chaos.audio.reception import Produced, Reception, SecondBins
from chaos.session.watch import LoopWatch, ProbeHealth, ProcessHealth
from chaos.core.slo import Series, _stat, objective, percentile

T0 = 1_700_000_000_000_000_000
FRAME_NS = 20_000_000


# -- weighted samples ------------------------------------------------------------------------

@pytest.mark.parametrize("stat", ["p50", "p95", "p99", "mean", "max", "min"])
def test_a_weighted_sample_is_judged_as_that_many_equal_samples(stat):
    rng = np.random.default_rng(7)
    v = np.round(rng.uniform(0, 1, 40), 3)
    w = rng.integers(1, 9, 40).astype(float)
    expanded = np.repeat(v, w.astype(int))
    assert _stat(stat, v, w) == pytest.approx(_stat(stat, expanded))


def test_weighted_series_windows_count_events_not_samples():
    s = Series.weighted("mouth_to_ear", [0.5, 0.5, 1.5], [0.01, 0.9, 0.01], [99, 1, 100])
    r = objective("mouth_to_ear", window_s=None).evaluate(s, 0, 2)
    assert r.verdict is Verdict.PASSED and r.samples == 200   # 1 slow frame in 200: p95 fast
    assert percentile(np.repeat([0.01, 0.9, 0.01], [99, 1, 100]), 95) == r.value


# -- judging with the probe's limits ---------------------------------------------------------

def health(lags: dict[int, float], label="listeners-0", slis=None) -> ProbeHealth:
    p = ProcessHealth(label, 123, 0, array("f", [lags.get(s, 5.0) for s in range(20)]),
                      array("f", [95.0] * 20), array("f", [80.0] * 20), slis)
    return ProbeHealth([p])


def delivered(bad_seconds=()) -> Series:
    """audio_delivered per second over 20 s: 1.0, or 0.5 in the bad seconds."""
    t = np.arange(20) + 0.5
    v = np.array([0.5 if s in bad_seconds else 1.0 for s in range(20)])
    return Series.weighted("audio_delivered", t, v, np.full(20, 50.0))


def test_a_breach_while_the_probe_lagged_is_inconclusive_with_the_lag_not_failed():
    o = objective("audio_delivered")
    r = o.evaluate(delivered({8, 9}), 0, 20, saturation=health({9: 850.0}))
    assert r.verdict is Verdict.INCONCLUSIVE
    assert r.note.startswith("the probe, not the stack, was saturated: lag 850 ms, CPU 95 %")
    assert "listeners-0 at t=9 s" in r.note
    assert o.evaluate(delivered({8, 9}), 0, 20).verdict is Verdict.FAILED   # blind to it: blamed


def test_a_breach_where_the_probe_kept_up_still_fails():
    r = objective("audio_delivered").evaluate(delivered({3, 15}), 0, 20,
                                                saturation=health({15: 900.0}))
    assert r.verdict is Verdict.FAILED and r.first_breach_s == pytest.approx(5.0)   # [0, 5) closed


def test_lag_within_what_the_sli_tolerates_changes_nothing():
    h = health({5: 60.0})        # over mouth_to_ear's 40 ms, under audio_delivered's 100 ms
    assert objective("audio_delivered").evaluate(delivered(), 0, 20, saturation=h).verdict is Verdict.PASSED


def test_what_held_even_under_a_lagging_probe_passes():
    """A lagging probe only makes the stack look worse (frames read late): what holds with
    the lagging seconds' samples too holds, and the note says the probe lagged."""
    h = health({5: 60.0})        # over mouth_to_ear's 40 ms
    m2e = Series.weighted("mouth_to_ear", np.arange(20) + 0.5, np.full(20, 0.02), np.full(20, 50.0))
    r = objective("mouth_to_ear").evaluate(m2e, 0, 20, saturation=h)
    assert r.verdict is Verdict.PASSED and "it held although the probe, not the stack, was saturated" in r.note
    late = m2e.values.copy()
    late[4:6] = 0.9              # late only in the seconds set aside: maybe the probe's fault
    r = objective("mouth_to_ear").evaluate(
        Series.weighted("mouth_to_ear", m2e.t_s, late, m2e.weights), 0, 20, saturation=h)
    assert r.verdict is Verdict.INCONCLUSIVE and r.note.startswith("the probe, not the stack, was saturated")


def test_a_process_counts_only_for_the_slis_it_measures():
    h = health({5: 900.0}, slis=frozenset({"join_time", "audio_delivered"}))
    assert h.blind("freeze", 0, 20) == [] and h.blind("audio_delivered", 0, 20) == [(4.0, 6.0)]


def test_spans_set_aside_merge_and_stay_in_the_judged_range():
    h = health({0: 500.0, 1: 500.0, 7: 500.0})
    assert h.blind("audio_delivered", 0, 20) == [(0.0, 2.0), (6.0, 8.0)]
    assert h.blind("audio_delivered", 6.5, 7.5) == [(6.5, 7.5)]
    assert [x["t_s"] for x in h.saturated_seconds()] == [0, 1, 7]


# -- the loop watch ----------------------------------------------------------------------------

def test_the_watch_sees_its_loop_blocked_and_its_cpu():
    import resource

    def cpu_s():
        r = resource.getrusage(resource.RUSAGE_SELF)
        return r.ru_utime + r.ru_stime

    async def main():
        w = LoopWatch(time.time_ns(), "probe").start()
        await asyncio.sleep(1.1)
        c0 = cpu_s()
        time.sleep(0.4)                      # the loop is blocked, busy elsewhere
        t_end = time.monotonic() + 1.0
        while time.monotonic() < t_end:      # a busy second
            await asyncio.sleep(0)
        used = cpu_s() - c0
        await asyncio.sleep(1.1)
        return await w.stop(), used

    h, used = asyncio.run(main())
    assert len(h.lag_ms) >= 3
    assert max(h.lag_ms) >= 300 and min(h.lag_ms) < 100
    # what the watch says the process used is what the kernel counted (however busy the
    # shared machine let it be)
    assert sum(h.cpu_pct) / 100 == pytest.approx(used, abs=0.15 + 0.3 * used)
    assert all(m > 10 for m in h.rss_mb)
    assert ProcessHealth.from_dict(h.to_dict()).lag_ms.tolist() == pytest.approx(h.lag_ms.tolist(), abs=0.1)


# -- bounded aggregation -------------------------------------------------------------------

def feed(bins, listeners, seconds, start_s=0, latency_ms=12):
    for sec in range(start_s, start_s + seconds):
        for k in range(50):
            seq = sec * 50 + k
            cap = T0 + seq * FRAME_NS
            for i, rx in enumerate(listeners):
                rx.heard(seq, cap, cap + int((latency_ms + i % 7) * 1e6), bins)


def test_streamed_bins_keep_memory_flat_whatever_the_run_length():
    bins = SecondBins(T0, 0.4)
    listeners = [Reception() for _ in range(40)]
    feed(bins, listeners, 20)
    bins.take(19)
    early = bins.nbytes()
    for s in range(20, 200, 10):
        feed(bins, listeners, 10, start_s=s)
        bins.take(s + 9)
    assert bins.nbytes() < early + 200 * 8 * 2, (early, bins.nbytes())   # two counters a second
    assert sum(len(rx.heard_by_s) for rx in listeners) == 40 * 200        # one counter a second


def test_streamed_deltas_merge_to_what_one_process_would_have_counted():
    whole, parts, merged = SecondBins(T0, 0.4), SecondBins(T0, 0.4), SecondBins(T0, 0.4)
    a, b = [Reception() for _ in range(5)], [Reception() for _ in range(5)]
    feed(whole, a, 6)
    feed(parts, b, 3)
    merged.merge_delta(parts.take(2))
    feed(parts, b, 3, start_s=3)
    merged.merge_delta(parts.take(6))
    for s in range(6):
        assert merged.received[s] == whole.received[s] and merged.on_time[s] == whole.on_time[s]
        v1, c1 = whole.latency(s)
        v2, c2 = merged.latency(s)
        assert dict(zip(v1, c1)) == dict(zip(v2, c2))
    produced = Produced.of([(s, T0 + s * FRAME_NS) for s in range(300)])
    d1, d2 = sli.audio_delivered([whole], produced), sli.audio_delivered([merged], produced)
    assert list(d1.values) == list(d2.values) and d1.events() == d2.events() == 5 * 300


def test_a_late_frame_counts_in_its_seconds_latency_even_after_the_second_was_handed_over():
    bins, merged = SecondBins(T0, 0.4), SecondBins(T0, 0.4)
    rx = Reception()
    rx.heard(0, T0, T0 + 10_000_000, bins)
    merged.merge_delta(bins.take(1))
    rx.heard(1, T0 + FRAME_NS, T0 + 2_000_000_000, bins)     # 2 s late, after the hand-over
    bins.add(3, 1)                                            # time goes on
    merged.merge_delta(bins.take(2))
    values, counts = merged.latency(0)
    assert counts.sum() == 2 and values.max() == pytest.approx(1.98, rel=0.05)


def test_produced_frames_cost_sixteen_bytes_and_read_as_tuples():
    p = Produced.of([(s, T0 + s * FRAME_NS) for s in range(1000)])
    assert len(p) == 1000 and p[-1] == (999, T0 + 999 * FRAME_NS) and dict(p)[10] == T0 + 10 * FRAME_NS
    assert p.seqs.itemsize + p.capture_ns.itemsize == 16
    assert p.between(100, 110)[:, 0].tolist() == list(range(100, 110))
    n, first = p.per_second(T0)
    assert n.tolist() == [50] * 20 and first[:3].tolist() == [0, 50, 100]


# -- the verdict, the journal's words -----------------------------------------------------

def test_the_verdict_and_the_report_say_the_probe_was_the_limit():
    from chaos.report import narrative
    from chaos.runner.judge import verdict
    from chaos.runner.method import Timeline
    note = ("the probe, not the stack, was saturated: lag 704 ms, CPU 13 % (listeners-0 at "
            "t=8 s; 9 s over the 100 ms audio_delivered tolerates, 10 s of samples set aside)")
    slos = [{"name": "audio_delivered", "phase": "during", "verdict": "inconclusive",
             "required": True, "note": note, "objective": "mean >= 0.995", "value": 1.0},
            {"name": "join_time", "phase": "during", "verdict": "passed", "required": True,
             "note": "", "objective": "p95 <= 2 s", "value": 0.2}]
    v, reason = verdict(Timeline([]), slos)
    assert str(v) == "inconclusive" and reason == f"audio_delivered (during): {note}"
    journal = {"verdict": "inconclusive", "reason": reason, "slos": slos,
               "probe": {"saturated_s": [{"t_s": 8, "process": "listeners-0", "lag_ms": 704.0,
                                          "cpu_pct": 13.0}]}}
    said = narrative.sentences(journal)
    assert any(s.startswith("the probe, not the stack, was saturated for audio_delivered [during]: "
                            "lag 704 ms") for s in said), said
    assert any("listeners-0 704 ms behind at t=8 s" in s for s in said), said
    assert not any(s.startswith("not measured") for s in said), said
