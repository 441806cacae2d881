"""What starting the reference stack needs from its own package: service command lines,
Redis and toxiproxy configuration, compose variables. Used by ``chaos stack up`` (the
local and docker runtimes in ``chaos.targets``) and nothing else."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import space
from space import redisconf
from space import topology as _topo

from chaos.core.target import Service, Target
from chaos.adapters.space.reference import topology

MASTER_NAME = redisconf.MASTER_NAME     # the Sentinel master name of the stack's Redis


def fixtures_dir() -> Path:
    """The reference stack's fixtures/ folder (its package lives in it)."""
    return Path(space.__file__).resolve().parent.parent


def topology_json(target: Target) -> str:
    """The topology file the stack's services read (``--topology``)."""
    return topology(target).to_json()


def toxiproxy_config(target: Target) -> str:
    return json.dumps(_topo.toxiproxy_config(topology(target)), indent=2)


def redis_conf(target: Target, name: str, workdir: str) -> str:
    return redisconf.render(topology(target), name, workdir)


def service_argv(svc: Service, topo_file: Path) -> list[str]:
    """A space service (gateway, edge, origin) as a local process."""
    return [sys.executable, "-m", f"space.{svc.kind}", "--name", svc.name, "--topology", str(topo_file)]


def compose_env(target: Target) -> dict[str, str]:
    return _topo.compose_env(topology(target))
