import math

import pytest

from chaos.audio import sli
from chaos.audio.record import ListenerRecord
from chaos.audio.reception import Produced, SecondBins

T0 = 1_000_000_000_000
FRAME_NS = 20_000_000


def produced(n):
    return Produced.of([(seq, T0 + seq * FRAME_NS) for seq in range(n)])


def record(index, seqs, latency_ms=10, join_s=0.2, started_s=0.0, bins=None):
    """A listener that heard these seqs, aggregated as a live one does."""
    r = ListenerRecord(index, "dc-a", started_ns=T0 + int(started_s * 1e9), join_s=join_s)
    bins = bins if bins is not None else SecondBins(T0, 0.4)
    for seq in seqs:
        capture = T0 + seq * FRAME_NS
        r.rx.heard(seq, capture, capture + int(latency_ms * 1e6), bins)
    return r


def test_join_time_keeps_failed_joins_as_infinite():
    s = sli.join_time([record(0, [], join_s=0.3, started_s=1.0), record(1, [], join_s=None, started_s=2.0)], T0)
    assert list(s.t_s) == [1.0, 2.0] and s.values[0] == 0.3 and math.isinf(s.values[1])


def test_delivery_counts_from_the_listeners_first_frame_and_places_losses_when_spoken():
    bins = SecondBins(T0, 0.4)
    r = record(0, [s for s in range(10, 100) if s not in (50, 51)], bins=bins)
    s = sli.audio_delivered([bins], produced(100))
    assert s.events() == 90                      # frames 10..99: 40 in second 0, 50 in second 1
    assert list(s.t_s) == [0.5, 1.5] and list(s.weights) == [40, 50]
    assert list(s.values) == pytest.approx([1.0, 48 / 50])   # frames 50, 51 lost in second 1
    assert r.rx.missing == 2 and r.frames_heard == 88 and r.first_seq == 10 and r.last_seq == 99


def test_delivery_per_window_is_the_share_of_its_frames():
    from chaos.core.slo import objective
    bins = SecondBins(T0, 0.4)
    record(0, range(100), bins=bins)
    record(1, range(50, 100), bins=bins)                     # joined a second later
    s = sli.audio_delivered([bins], produced(100))
    assert list(s.weights) == [50, 100] and list(s.values) == [1.0, 1.0]
    bins2 = SecondBins(T0, 0.4)
    record(0, range(50), bins=bins2)                          # second 1: all 50 lost
    r = objective("audio_delivered", window_s=None).evaluate(sli.audio_delivered([bins2], produced(100)), 0, 2)
    assert r.value == pytest.approx(0.5) and r.samples == 100


def test_frames_later_than_the_playout_deadline_are_not_delivered():
    bins = SecondBins(T0, 0.4)
    record(0, range(100), latency_ms=500, bins=bins)
    assert sli.audio_delivered([bins], produced(100)).values.sum() == 0


def test_mouth_to_ear_per_received_frame():
    bins = SecondBins(T0, 0.4)
    record(0, range(5), latency_ms=30, bins=bins)
    s = sli.mouth_to_ear([bins])
    assert s.events() == 5 and list(s.values) == pytest.approx([0.03], rel=0.03)


def test_audience_retained_after_an_outage():
    stayed = record(0, [s for s in range(3000) if not 500 <= s < 1000])   # silent 10-20 s, back
    gone = record(1, range(500))                                           # never came back
    late = record(2, range(2000, 3000))                                    # joined after the fault
    s = sli.audience_retained([stayed, gone, late], onset_s=10.0, recovered_by_s=20.0)
    assert list(s.values) == [0.5] and list(s.t_s) == [20.0]
    assert len(sli.audience_retained([late], 10.0, 20.0)) == 0  # nobody to retain


def test_freeze_share_places_gaps_in_the_seconds_they_happened():
    from chaos.audio.analysis.gaps import Interval
    from chaos.audio.sli import freeze_share
    samples = freeze_share([Interval(3.5, 1.0)], t0_s=1.0, listening_s=6.0)
    # the second the gap starts in is stamped where it starts: a breach is never placed before it
    assert [t for t, _ in samples] == [1.0, 2.0, 3.5, 4.0, 5.0, 6.0]
    assert [round(v, 6) for _, v in samples] == [0.0, 0.0, 0.5, 0.5, 0.0, 0.0]
    assert sum(v for _, v in samples) / len(samples) == pytest.approx(1.0 / 6.0)


def test_dead_air_is_the_longest_run_touching_each_second():
    from chaos.audio.analysis.gaps import Interval
    from chaos.audio.sli import dead_air
    samples = dead_air([Interval(2.2, 2.5), Interval(6.1, 0.3)], t0_s=0.0, listening_s=8.0)
    by_t = dict(samples)
    assert by_t[0.0] == 0.0 and by_t[2.2] == by_t[3.0] == by_t[4.0] == 2.5   # placed where it began
    assert by_t[5.0] == 0.0 and by_t[6.1] == 0.3 and max(by_t.values()) == 2.5
    assert [t for t, _ in samples] == sorted(t for t, _ in samples)
