"""Scale-out: one join storm fired by many shards on an engine, with one set of results.

shard.py (the contract: index, count, segment, sink), plan.py (what every shard is told),
hdr.py (per-second HdrHistograms in the standard format), wire.py (the line protocol),
shardmain.py (a shard's process), coordinator.py (T0, clock offsets, merging, judging,
halting, dead shards), engines.py (local processes, Docker Swarm), k8s.py (Indexed Job
manifests), run.py (the whole run).
"""

from .coordinator import Coordinator, JoinObjective, ScaledResult
from .engines import ENGINES
from .hdr import JoinHdr
from .plan import StormPlan
from .run import plan_for, run_plan, run_scaled
from .shard import Shard, from_env, segment, segment_sizes

__all__ = ["ENGINES", "Coordinator", "JoinHdr", "JoinObjective", "ScaledResult", "Shard",
           "StormPlan", "from_env", "plan_for", "run_plan", "run_scaled", "segment",
           "segment_sizes"]
