"""How a run's join storms are fired: on which engine, over how many shards.

    ScaleOut()                              # one machine, the load generator's processes
    ScaleOut("swarm", 4)                    # a Swarm service of 4 shard tasks
    ScaleOut("k8s", 16, sink="10.0.0.5:31900")   # an Indexed Job of 16 pods, written to k8s/
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field

from chaos.core.errors import ConfigError
from chaos.scale.engines import ENGINES
from chaos.scale.shard import MAX_SHARDS, Shard


@dataclass(frozen=True)
class ScaleOut:
    engine: str = "local"
    shards: int = 1
    sink: str | None = None         # host:port the shards reach the coordinator at (k8s, remote swarm)
    image: str | None = field(default_factory=lambda: os.environ.get("CHAOS_IMAGE"))  # None: built here
    manifests_dir: str = "k8s"
    mounts: tuple[str, ...] = ()    # swarm: bind mounts source:target (a working copy)
    env: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.engine not in ENGINES:
            raise ConfigError(f"unknown engine {self.engine!r}; use one of: {', '.join(ENGINES)}")
        if isinstance(self.shards, bool) or not isinstance(self.shards, int) \
                or not 1 <= self.shards <= MAX_SHARDS:
            raise ConfigError(f"shards must be an integer from 1 to {MAX_SHARDS}, got {self.shards!r}")
        if self.sink is not None:
            Shard(0, self.shards, self.sink)   # the contract's own check of host:port
        if self.engine == "k8s" and self.sink is None:
            raise ConfigError("the k8s engine needs sink: the host:port at which the cluster's "
                              "pods reach this machine (e.g. sink='10.0.0.5:31900')")

    @property
    def scaled(self) -> bool:
        """Shards on an engine rather than the load generator's own processes."""
        return self.shards > 1 or self.engine != "local"

    def describe(self) -> str:
        return f"{self.engine} engine, {self.shards} shard{'s' if self.shards != 1 else ''}"

    def to_dict(self) -> dict:
        return {"engine": self.engine, "shards": self.shards}

    def engine_options(self, run_s: float) -> dict:
        if self.engine == "swarm":
            return {"image": self.image, "mounts": self.mounts, "env": dict(self.env)}
        if self.engine == "k8s":
            from chaos.scale.image import SHARD_IMAGE
            return {"out_dir": self.manifests_dir, "image": self.image or SHARD_IMAGE,
                    "run_s": run_s}
        return {}

    def listen(self) -> tuple[str, int, str | None]:
        """(bind host, port, advertised sink): on every interface when a sink is given."""
        if self.sink is None:
            return "127.0.0.1", 0, None
        host, _, port = self.sink.rpartition(":")
        return "0.0.0.0", int(port), self.sink
