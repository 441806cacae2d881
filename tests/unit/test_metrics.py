"""The live /metrics endpoint's pieces that need no stack: its configuration and phases."""

from __future__ import annotations

import urllib.request

import pytest

from chaos.core.errors import ConfigError
from chaos.runner import metrics


@pytest.mark.parametrize("env, want", [
    ({}, None),
    ({"CHAOS_METRICS_PORT": " "}, None),
    ({"CHAOS_METRICS_PORT": "9464"}, ("127.0.0.1", 9464)),
    ({"CHAOS_METRICS_PORT": "9464", "CHAOS_METRICS_ADDR": "0.0.0.0"}, ("0.0.0.0", 9464)),
])
def test_off_unless_a_port_is_given(env, want):
    assert metrics.configured(env) == want


@pytest.mark.parametrize("bad", ["0", "65536", "http", "９０９０", "-1", "94.6"])
def test_a_bad_port_says_what_to_give(bad):
    with pytest.raises(ConfigError, match="is not a port: give a number from 1 to 65535"):
        metrics.configured({"CHAOS_METRICS_PORT": bad})


def test_the_phase_is_the_latest_that_started():
    assert metrics.current_phase({}, 3.0) == "before"
    assert metrics.current_phase({"before": [0.0, 5.0]}, 5.0) == "before"
    assert metrics.current_phase({"before": [0.0, 5.0], "during": [5.0, 5.0]}, 7.0) == "during"
    ahead = {"before": [0.0, 5.0], "during": [5.0, 10.0], "recovery": [10.0, 12.0], "after": [12.0, 20.0]}
    assert metrics.current_phase(ahead, 10.5) == "recovery"
    assert metrics.current_phase(ahead, 12.0) == "after"


def test_the_endpoint_serves_the_runs_own_registry_and_closes():
    m = metrics.LiveMetrics("exp_a", "run-1", ("dc-a", "dc-b"))
    import socket
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    m.serve("127.0.0.1", port)
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as r:
            text = r.read().decode()
    finally:
        m.close()
    assert 'chaos_run_info{experiment="exp_a",run_id="run-1"} 1.0' in text
    assert 'chaos_join_duration_seconds_bucket{dc="dc-b",le="2.0"} 0.0' in text
    assert "python_gc" not in text          # not the process-global registry
    with pytest.raises(OSError):
        urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=2)


def test_a_join_counts_once_even_when_its_record_is_handed_in_anew(monkeypatch):
    from types import SimpleNamespace

    from chaos.audio.record import ListenerRecord
    m = metrics.LiveMetrics("exp_a", "run-1", ("dc-a",))
    first = ListenerRecord(index=3, home_dc="dc-a", started_ns=10, join_s=0.2)
    records = [first]
    live = SimpleNamespace(records=lambda: list(records), t0_ns=0, thin=None)
    tl = SimpleNamespace(faults=[], phases={})
    monkeypatch.setattr("chaos.runner.observe.live_horizon", lambda live: 0.0)   # joins only
    m.update(tl, live)
    records[0] = ListenerRecord(index=3, home_dc="dc-a", started_ns=10, join_s=0.2)  # a worker's final copy
    m.update(tl, live)
    count = m.registry.get_sample_value("chaos_join_duration_seconds_count", {"dc": "dc-a"})
    assert count == 1.0
