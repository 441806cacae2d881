"""How a join storm's listeners behave: the declaration shared by the generator and its
workers (pickled to each worker process)."""

from __future__ import annotations

import math
import os
from dataclasses import dataclass

from chaos.core.retry import RetryPolicy

from chaos.core.errors import ConfigError

HOLD_TO_END = None     # hold_s: stay joined until the storm ends


@dataclass(frozen=True)
class StormOptions:
    """workers: processes (None: one per core). retry: the clients' policy between attempts
    (None: the stack profile's). join_timeout_s: from the first join request to the first
    audio frame; past it the join is failed (+inf). hold_s: seconds to stay joined after
    the first frame (0: leave at once; None: until the storm ends); max_held_per_worker:
    joined listeners one process keeps (past it, the longest-held leaves: ``evicted``).
    late_ms: an arrival started more than this after its schedule is a late start (the
    generator is saturating). grace_s: after the schedule, how long joins in flight may
    still finish before the hard stop (None: join_timeout_s + 2). http_keepalive: reuse
    connections to the gateways (False: one per join, like distinct phones). edge_direct:
    connect to the edges' own addresses instead of through toxiproxy (benchmarks only:
    no link fault applies; local runtime only). keep_samples: keep each join's time for
    time series (16 bytes a join). worker_nice: the workers' niceness change (negative:
    ahead of the stack for the CPU, as clients on their own devices would be; needs
    CAP_SYS_NICE, else it is reported and ignored)."""
    workers: int | None = None
    retry: RetryPolicy | None = None
    join_timeout_s: float = 5.0
    hold_s: float | None = 0.0
    max_held_per_worker: int = 2000
    late_ms: float = 20.0
    grace_s: float | None = None
    http_keepalive: bool = True
    edge_direct: bool = False
    keep_samples: bool = True
    worker_nice: int = 0

    def __post_init__(self) -> None:
        if self.workers is not None and (isinstance(self.workers, bool) or not isinstance(
                self.workers, int) or not 1 <= self.workers <= 64):
            raise ConfigError(f"workers must be an integer from 1 to 64 (or None: one per core, "
                              f"{os.cpu_count()} here), got {self.workers!r}")
        if self.retry is not None and not isinstance(self.retry, RetryPolicy):
            raise ConfigError(f"retry must be a chaos.core.retry.RetryPolicy, got {type(self.retry).__name__}")
        _seconds("join_timeout_s", self.join_timeout_s, positive=True)
        if self.hold_s is not None:
            _seconds("hold_s", self.hold_s, positive=False, extra=" (or None: until the storm ends)")
        if (isinstance(self.max_held_per_worker, bool) or not isinstance(self.max_held_per_worker, int)
                or self.max_held_per_worker < 1):
            raise ConfigError(f"max_held_per_worker must be an integer of at least 1, got "
                              f"{self.max_held_per_worker!r}")
        _seconds("late_ms", self.late_ms, positive=True, unit="ms")
        if isinstance(self.worker_nice, bool) or not isinstance(self.worker_nice, int) \
                or not -20 <= self.worker_nice <= 19:
            raise ConfigError(f"worker_nice must be an integer from -20 to 19, got {self.worker_nice!r}")
        if self.grace_s is not None:
            _seconds("grace_s", self.grace_s, positive=False, extra=" (or None: join_timeout_s + 2)")

    @property
    def grace(self) -> float:
        return self.join_timeout_s + 2.0 if self.grace_s is None else float(self.grace_s)

    def worker_count(self) -> int:
        return self.workers or os.cpu_count() or 1


def _seconds(name: str, v, positive: bool, unit: str = "s", extra: str = "") -> None:
    if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v) or v < 0 \
            or (positive and v == 0):
        raise ConfigError(f"{name} must be a finite number {'more than' if positive else 'of at least'} "
                          f"0 {unit}{extra}, got {v!r}")
