"""The shard contract: what one shard of a scaled-out join storm knows.

A shard knows its index (0..count-1), the shard count, its exact segment of the arrival
schedule, the start time T0 agreed by the coordinator before any arrival, and where to
send its results (the coordinator's address, ``host:port``).

Segments: the schedule's arrivals, sorted, are dealt round-robin (shard i fires arrivals
i, i+N, i+2N, ...). Every arrival belongs to exactly one shard, the shards' counts differ
by at most one, and each shard's rate is the schedule's divided by N at every instant
(bursts included), so no shard is the one that carries the peak.

The index comes from the engine: ``CHAOS_SHARD_INDEX`` (the local engine), Kubernetes
Indexed Jobs' ``JOB_COMPLETION_INDEX`` (0-based), or Docker Swarm's task slot
(``CHAOS_SHARD_SLOT={{.Task.Slot}}``, 1-based).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from chaos.core.errors import ConfigError

MAX_SHARDS = 1024


@dataclass(frozen=True)
class Shard:
    index: int
    count: int
    sink: str          # host:port of the coordinator

    def __post_init__(self) -> None:
        if isinstance(self.count, bool) or not isinstance(self.count, int) \
                or not 1 <= self.count <= MAX_SHARDS:
            raise ConfigError(f"shards must be an integer from 1 to {MAX_SHARDS}, got {self.count!r}")
        if isinstance(self.index, bool) or not isinstance(self.index, int) \
                or not 0 <= self.index < self.count:
            raise ConfigError(f"shard index must be from 0 to {self.count - 1} (of {self.count} "
                              f"shards), got {self.index!r}")
        host, sep, port = str(self.sink).rpartition(":")
        if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
            raise ConfigError(f"the results sink must be host:port (the coordinator's address, "
                              f"e.g. 10.0.0.5:31900), got {self.sink!r}")

    @property
    def address(self) -> tuple[str, int]:
        host, _, port = self.sink.rpartition(":")
        return host, int(port)

    def segment(self, offsets: np.ndarray) -> np.ndarray:
        """This shard's arrivals of the whole schedule's sorted offsets."""
        return segment(offsets, self.index, self.count)


def segment(offsets: np.ndarray, index: int, count: int) -> np.ndarray:
    return np.asarray(offsets)[index::count]


def segment_sizes(total: int, count: int) -> list[int]:
    """How many arrivals each shard fires: the first total % count shards one more."""
    return [total // count + (1 if i < total % count else 0) for i in range(count)]


def from_env(env: Mapping[str, str] | None = None) -> Shard:
    """The shard this process is, from what its engine put in the environment."""
    env = os.environ if env is None else env
    count, sink = env.get("CHAOS_SHARD_COUNT"), env.get("CHAOS_SCALE_SINK")
    if not count or not sink:
        raise ConfigError("a shard needs CHAOS_SHARD_COUNT (the number of shards) and "
                          "CHAOS_SCALE_SINK (the coordinator's host:port) in its environment")
    if "CHAOS_SHARD_INDEX" in env:
        raw, base = env["CHAOS_SHARD_INDEX"], 0
    elif "JOB_COMPLETION_INDEX" in env:
        raw, base = env["JOB_COMPLETION_INDEX"], 0
    elif "CHAOS_SHARD_SLOT" in env:
        raw, base = env["CHAOS_SHARD_SLOT"], 1   # Swarm task slots count from 1
    else:
        raise ConfigError("a shard needs its index: CHAOS_SHARD_INDEX, JOB_COMPLETION_INDEX "
                          "(Kubernetes Indexed Job) or CHAOS_SHARD_SLOT (Swarm {{.Task.Slot}})")
    try:
        index, n = int(raw) - base, int(count)
    except ValueError:
        raise ConfigError(f"shard index {raw!r} and count {count!r} must be integers") from None
    return Shard(index, n, sink)


# how every engine starts a shard: the command, and the environment that gives it its place
SHARD_CMD = ("python3", "-m", "chaos.scale.shardmain")


def shard_env(index_var: str | None, count: int, sink: str) -> dict[str, str]:
    env = {"CHAOS_SHARD_COUNT": str(count), "CHAOS_SCALE_SINK": sink}
    if index_var:
        env["CHAOS_SHARD_INDEX"] = index_var
    return env
