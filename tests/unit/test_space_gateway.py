"""The gateway's pure parts: edge ranking and the join token bucket."""

from __future__ import annotations

import time

from space.gateway import FRESH_S, TokenBucket, rank_edges

NOW = 1_000_000.0


def load(listeners, capacity, dc, age_s=0.0):
    return {"listeners": listeners, "capacity": capacity, "dc": dc, "ts": NOW - age_s}


def test_own_dc_first_then_least_loaded():
    loads = {"edge-a": load(50, 100, "dc-a"), "edge-b": load(10, 100, "dc-b"),
             "edge-c": load(5, 100, "dc-c")}
    assert rank_edges(loads, "dc-a", NOW, admission=True) == ["edge-a", "edge-c", "edge-b"]


def test_stale_and_full_edges_left_out():
    loads = {"edge-a": load(100, 100, "dc-a"), "edge-b": load(10, 100, "dc-b", age_s=FRESH_S + 1),
             "edge-c": load(5, 100, "dc-c")}
    assert rank_edges(loads, "dc-a", NOW, admission=True) == ["edge-c"]
    # without admission control nothing is ever full
    assert rank_edges(loads, "dc-a", NOW, admission=False) == ["edge-a", "edge-c"]


def test_unlimited_capacity_is_never_full():
    assert rank_edges({"edge-b": load(10**6, None, "dc-b")}, "dc-a", NOW, admission=True) == ["edge-b"]


def test_token_bucket():
    bucket = TokenBucket(10.0)
    assert all(bucket.take() == 0.0 for _ in range(10))  # a one-second burst
    wait_s = bucket.take()
    assert 0 < wait_s <= 0.1 + 1e-6
    time.sleep(0.12)
    assert bucket.take() == 0.0
