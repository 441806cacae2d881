"""Live windows end where the live view's data ends (the listener processes' horizon)."""

import time
from types import SimpleNamespace

from chaos.runner.observe import SETTLE_S, live_horizon, live_window_end
from chaos.audio.sli import PLAYOUT_DEADLINE_S


def _live(age_s: float, closed_s: float):
    return SimpleNamespace(t0_ns=time.time_ns() - int(age_s * 1e9),
                           thin=SimpleNamespace(closed_s=closed_s))


def test_the_horizon_is_the_seconds_every_process_sent():
    assert live_horizon(_live(20.0, 14.0)) == 14.0


def test_the_horizon_waits_for_the_playout_deadline():
    h = live_horizon(_live(20.0, float("inf")))
    assert h == int(20.0 - PLAYOUT_DEADLINE_S - SETTLE_S)


def test_a_frame_window_ends_at_the_horizon_and_a_join_window_at_the_clock():
    live = _live(20.0, 12.0)
    assert live_window_end(live, "mouth_to_ear", 20.0) == 12.0
    assert live_window_end(live, "audio_delivered", 20.0) == 12.0
    assert live_window_end(live, "join_time", 20.0) == 20.0 - SETTLE_S


def test_nothing_sent_yet_is_second_zero():
    assert live_horizon(_live(0.1, 0.0)) == 0.0


def test_one_map_from_each_sli_to_how_it_is_computed():
    """The final series name every SLI of the registry, the live ones its live SLIs."""
    from chaos.core.slo import LIVE_SLIS, SLIS
    from chaos.session.probe import ProbeResult, series
    empty = ProbeResult(0, 1.0, "space-1", 0, [], [], [], None)
    assert set(series(empty)) == set(SLIS)
    assert "audience_retained" not in series(empty, retention=False)
    assert set(LIVE_SLIS) == {"join_time", "audio_delivered", "mouth_to_ear"}
