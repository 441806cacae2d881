"""Scale-out without a stack: the shard contract, the segments, HdrHistogram snapshots and
their merge, the plan on the wire, and Kubernetes manifests checked against the API's own
typed models."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from chaos.core.errors import ConfigError
from chaos.load import ArrivalSchedule, Burst, Ramp, StormOptions
from chaos.core.retry import RetryPolicy
from chaos.audio.histogram import Histogram
from chaos.scale import Shard, StormPlan, from_env, segment, segment_sizes
from chaos.scale.k8s import JobSpec, job_manifest, write_manifests


# -- the contract ------------------------------------------------------------------------------

@settings(max_examples=60, deadline=None)
@given(rate=st.floats(1, 400), duration=st.floats(1, 20), shards=st.integers(1, 16),
       seed=st.integers(0, 1000), burst=st.integers(1, 500))
def test_every_arrival_belongs_to_exactly_one_shard(rate, duration, shards, seed, burst):
    sched = ArrivalSchedule(rate, duration, bursts=(Burst(duration / 2, burst),), seed=seed)
    offsets = sched.offsets_array()
    parts = [segment(offsets, i, shards) for i in range(shards)]
    assert sorted(np.concatenate(parts).tolist()) == offsets.tolist()
    assert [len(p) for p in parts] == segment_sizes(len(offsets), shards)
    assert max(map(len, parts)) - min(map(len, parts)) <= 1


def test_each_shard_carries_its_share_of_the_rate_in_every_second():
    sched = ArrivalSchedule.ramp_up(400, ramp_s=5, hold_s=5, seed=3, process="even")
    offsets = sched.offsets_array()
    whole = np.bincount(offsets.astype(int), minlength=10)
    for i in range(4):
        per_s = np.bincount(segment(offsets, i, 4).astype(int), minlength=10)
        assert np.all(np.abs(per_s - whole / 4) <= 1), (i, per_s, whole)


def test_the_index_comes_from_the_engine():
    base = {"CHAOS_SHARD_COUNT": "4", "CHAOS_SCALE_SINK": "10.0.0.5:31900"}
    assert from_env({**base, "CHAOS_SHARD_INDEX": "2"}) == Shard(2, 4, "10.0.0.5:31900")
    assert from_env({**base, "JOB_COMPLETION_INDEX": "3"}).index == 3
    assert from_env({**base, "CHAOS_SHARD_SLOT": "1"}).index == 0   # Swarm slots count from 1
    assert from_env({**base, "CHAOS_SHARD_SLOT": "4"}).address == ("10.0.0.5", 31900)


@pytest.mark.parametrize("env, words", [
    ({"CHAOS_SHARD_COUNT": "4"}, "CHAOS_SCALE_SINK"),
    ({"CHAOS_SHARD_COUNT": "4", "CHAOS_SCALE_SINK": "h:1"}, "JOB_COMPLETION_INDEX"),
    ({"CHAOS_SHARD_COUNT": "4", "CHAOS_SCALE_SINK": "h:1", "CHAOS_SHARD_SLOT": "5"}, "from 0 to 3"),
    ({"CHAOS_SHARD_COUNT": "x", "CHAOS_SCALE_SINK": "h:1", "CHAOS_SHARD_INDEX": "0"}, "integers"),
    ({"CHAOS_SHARD_COUNT": "2", "CHAOS_SCALE_SINK": "nohost", "CHAOS_SHARD_INDEX": "0"}, "host:port"),
])
def test_a_bad_contract_is_a_config_error_that_says_what_to_write(env, words):
    with pytest.raises(ConfigError, match=words):
        from_env(env)


# -- HdrHistograms ---------------------------------------------------------------------------------

@settings(max_examples=40, deadline=None)
@given(values=st.lists(st.one_of(st.floats(0, 30), st.just(math.inf)), min_size=1, max_size=400),
       shards=st.integers(1, 6), seconds=st.integers(1, 5))
def test_merged_snapshots_give_the_percentiles_of_one_histogram_of_all_joins(values, shards, seconds):
    whole = Histogram()
    parts = [[Histogram() for _ in range(seconds)] for _ in range(shards)]
    for k, v in enumerate(values):
        whole.record(v)
        parts[k % shards][(k // shards) % seconds].record(v)
    # through the wire format, as the coordinator receives them
    merged = Histogram.merged(Histogram.from_dict(json.loads(json.dumps(p.to_dict())))
                            for shard in parts for p in shard)
    assert merged.total == whole.total == len(values)
    for q in (0.5, 0.9, 0.95, 0.99, 1.0):
        assert merged.quantile(q) == whole.quantile(q)


def test_a_quantile_is_within_a_tenth_of_a_percent_and_failed_joins_rank_last():
    h = Histogram()
    values = np.random.default_rng(1).lognormal(-2, 1, 5000)
    for v in values:
        h.record(float(v))
    for q in (0.5, 0.95, 0.99):
        exact = float(np.sort(values)[math.ceil(q * len(values)) - 1])
        assert h.quantile(q) == pytest.approx(exact, rel=1e-3)
    for _ in range(600):        # 600 of 5600 failed: p95 is +inf
        h.record(math.inf)
    assert h.failed == 600 and h.quantile(0.95) == math.inf
    assert h.quantile(0.5) < 1


def test_the_snapshot_is_hdrhistograms_standard_compressed_format():
    from hdrh.histogram import HdrHistogram
    h = Histogram()
    for v in (0.010, 0.020, 0.5):
        h.record(v)
    wire = h.to_dict()["hdr"]
    other = HdrHistogram.decode(wire.encode())          # any HdrHistogram reader
    assert other.get_total_count() == 3
    assert other.get_max_value() == pytest.approx(500_000, rel=1e-3)
    assert Histogram().to_dict()["hdr"] is None


def test_a_negative_join_time_is_a_bug():
    with pytest.raises(ValueError, match=">= 0 s"):
        Histogram().record(-0.1)


# -- the plan --------------------------------------------------------------------------------------

def test_the_plan_survives_json_and_gives_every_shard_the_same_schedule():
    sched = ArrivalSchedule(120, 10, ramps=(Ramp(2, 3, 120, 300),), bursts=(Burst(5, 50, 1),),
                            seed=9, max_joins=2000)
    plan = StormPlan(sched, StormOptions(workers=1, hold_s=None, retry=RetryPolicy("fixed", 0.2)),
                     {"dc-a": ("127.0.1.10:1",), "dc-b": ("127.0.2.10:1",)}, "space-1", "spk")
    back = StormPlan.from_json(json.loads(json.dumps(plan.to_json())))
    assert back == plan
    assert np.array_equal(back.schedule.offsets_array(), sched.offsets_array())
    spec = back.worker_spec(Shard(1, 3, "127.0.0.1:9"))
    assert len(np.frombuffer(spec.offsets)) == plan.arrivals_per_shard(3)[1]
    assert spec.index == 1 and spec.workers == 3   # home DCs dealt over the whole audience
    assert spec.adapter == "space"
    stream = StormPlan(sched, plan.options, {"dc-a": ("127.0.0.1:21101",)}, "/live.opus", None,
                       "http-stream")
    again = StormPlan.from_json(json.loads(json.dumps(stream.to_json())))
    assert again == stream and again.worker_spec(Shard(0, 2, "127.0.0.1:9")).adapter == "http-stream"


# -- Kubernetes ------------------------------------------------------------------------------------

def _typed(manifest: dict):
    """The manifest as the official client's typed model: its models forbid unknown fields
    and check every type (strict)."""
    from kubernetes.client import ApiClient
    from kubernetes.client.models import V1Job
    job = V1Job.model_validate(manifest)
    return job, ApiClient().sanitize_for_serialization(job)


def test_the_indexed_job_is_valid_for_the_kubernetes_api(tmp_path):
    path, how = write_manifests(JobSpec(4, "10.0.0.5:31900", "registry.example/chaos:1",
                                        run_s=130), tmp_path)
    manifest = yaml.safe_load(path.read_text())
    job, back = _typed(manifest)
    assert back == manifest                                  # nothing dropped or converted
    assert job.spec.completion_mode == "Indexed"
    assert job.spec.completions == job.spec.parallelism == 4
    assert job.spec.backoff_limit == 0 and job.spec.template.spec.restart_policy == "Never"
    assert job.spec.active_deadline_seconds == 130 + 300
    env = {e.name: e.value for e in job.spec.template.spec.containers[0].env}
    assert env == {"CHAOS_SHARD_COUNT": "4", "CHAOS_SCALE_SINK": "10.0.0.5:31900"}
    assert f"kubectl apply -f {path}" in how


@pytest.mark.parametrize("where, value, words", [
    (("spec", "completionsMode"), "Indexed", "Extra inputs are not permitted"),   # misspelt
    (("spec", "parallelism"), "2", "valid integer"),                             # wrong type
])
def test_the_typed_check_catches_a_wrong_manifest(where, value, words):
    from pydantic import ValidationError
    bad = job_manifest(JobSpec(2, "h:1"))
    bad[where[0]][where[1]] = value
    with pytest.raises(ValidationError, match=words):
        _typed(bad)


@pytest.mark.parametrize("kw, words", [
    ({"shards": 0, "sink": "h:1"}, "from 1 to"),
    ({"shards": 2, "sink": "h"}, "host:port"),
    ({"shards": 2, "sink": "h:1", "name": "Chaos_Shards"}, "lower-case"),
])
def test_a_bad_job_is_refused_with_what_to_write(kw, words):
    with pytest.raises(ConfigError, match=words):
        JobSpec(**kw)


def test_the_verdict_names_a_dead_shard_and_the_share_it_carried():
    from chaos.scale.verdict import dead_shards
    storms = [{"engine": "swarm", "shards": 4, "dead": [
        {"index": 2, "at_s": 3.14, "share": 0.25, "arrivals": 200, "resolved": 74, "lost": 126}]},
        {"engine": "local", "shards": 1}]
    assert dead_shards(storms) == [
        "shard 2 of 4 (swarm engine) died at 3.1 s of its storm, carrying 25.0% of the "
        "audience (200 arrivals, 126 never resolved)"]
