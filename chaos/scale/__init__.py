"""Scale-out: one join storm fired by many shards on an engine, with one set of results.

shard.py (the contract: index, count, segment, sink), plan.py (what every shard is told),
wire.py (the line protocol), shardmain.py (a shard's process: per-second snapshots, HdrHistograms
through chaos.audio.histogram), coordinator.py (T0, clock offsets, merging, judging,
halting, dead shards), engines.py (local processes, Docker Swarm), k8s.py (Indexed Job
manifests), config.py (ScaleOut: engine and shards of a run), verdict.py (dead shards in a
run's verdict), run.py (the whole run).

Names are imported on first use, so that a shard's process loads only what it runs.
"""

from importlib import import_module

_WHERE = {"Coordinator": "coordinator", "ShardPool": "coordinator", "shard_pool": "run", "JoinObjective": "coordinator",
          "ScaledResult": "coordinator", "ENGINES": "engines", 
          "StormPlan": "plan", "ScaleOut": "config", "fire": "config", "plan_for": "run",
          "run_plan": "run", "run_scaled": "run", "Shard": "shard", "from_env": "shard",
          "segment": "shard", "segment_sizes": "shard"}

__all__ = sorted(_WHERE)


def __getattr__(name: str):
    if name not in _WHERE:
        raise AttributeError(f"module 'chaos.scale' has no attribute {name!r}")
    return getattr(import_module(f".{_WHERE[name]}", __name__), name)
