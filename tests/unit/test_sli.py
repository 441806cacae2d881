import math

import pytest

from chaos import sli
from chaos.probes.record import ListenerRecord

T0 = 1_000_000_000_000
FRAME_NS = 20_000_000


def produced(n):
    return [(seq, T0 + seq * FRAME_NS) for seq in range(n)]


def record(index, seqs, latency_ms=10, join_s=0.2, started_s=0.0):
    r = ListenerRecord(index, "dc-a", started_ns=T0 + int(started_s * 1e9), join_s=join_s)
    r.seqs = list(seqs)
    r.latency_ns = [int(latency_ms * 1e6)] * len(r.seqs)
    return r


def test_join_time_keeps_failed_joins_as_infinite():
    s = sli.join_time([record(0, [], join_s=0.3, started_s=1.0), record(1, [], join_s=None, started_s=2.0)], T0)
    assert list(s.t_s) == [1.0, 2.0] and s.values[0] == 0.3 and math.isinf(s.values[1])


def test_delivery_counts_from_the_listeners_first_frame_and_places_losses_when_spoken():
    frames = produced(100)
    r = record(0, [s for s in range(10, 100) if s not in (50, 51)])
    s = sli.audio_delivered([r], frames, T0)
    assert len(s) == 90                          # frames 10..99
    assert s.values.sum() == 88
    lost_at = sorted(s.t_s[s.values == 0])
    assert lost_at == pytest.approx([1.0, 1.02])  # frames 50 and 51, at their capture times


def test_frames_later_than_the_playout_deadline_are_not_delivered():
    r = record(0, range(100), latency_ms=500)
    assert sli.audio_delivered([r], produced(100), T0, deadline_s=0.4).values.sum() == 0


def test_mouth_to_ear_per_received_frame():
    s = sli.mouth_to_ear([record(0, range(5), latency_ms=30)], produced(5), T0)
    assert list(s.values) == pytest.approx([0.03] * 5)


def test_audience_retained_after_an_outage():
    frames = produced(3000)  # 60 s
    stayed = record(0, [s for s in range(3000) if not 500 <= s < 1000])   # silent 10-20 s, back
    gone = record(1, range(500))                                           # never came back
    late = record(2, range(2000, 3000))                                    # joined after the fault
    s = sli.audience_retained([stayed, gone, late], frames, T0, onset_s=10.0, recovered_by_s=20.0)
    assert list(s.values) == [0.5] and list(s.t_s) == [20.0]
    assert len(sli.audience_retained([late], frames, T0, 10.0, 20.0)) == 0  # nobody to retain


def test_freeze_share_places_gaps_in_the_seconds_they_happened():
    from chaos.analysis.gaps import Interval
    from chaos.sli import freeze_share
    samples = freeze_share([Interval(3.5, 1.0)], t0_s=1.0, listening_s=6.0)
    # the second the gap starts in is stamped where it starts: a breach is never placed before it
    assert [t for t, _ in samples] == [1.0, 2.0, 3.5, 4.0, 5.0, 6.0]
    assert [round(v, 6) for _, v in samples] == [0.0, 0.0, 0.5, 0.5, 0.0, 0.0]
    assert sum(v for _, v in samples) / len(samples) == pytest.approx(1.0 / 6.0)


def test_dead_air_is_the_longest_run_touching_each_second():
    from chaos.analysis.gaps import Interval
    from chaos.sli import dead_air
    samples = dead_air([Interval(2.2, 2.5), Interval(6.1, 0.3)], t0_s=0.0, listening_s=8.0)
    by_t = dict(samples)
    assert by_t[0.0] == 0.0 and by_t[2.2] == by_t[3.0] == by_t[4.0] == 2.5   # placed where it began
    assert by_t[5.0] == 0.0 and by_t[6.1] == 0.3 and max(by_t.values()) == 2.5
    assert [t for t, _ in samples] == sorted(t for t, _ in samples)
