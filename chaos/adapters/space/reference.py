"""The reference space stack, described as a target.

``space.topology`` (the stack's own package) knows where every service and link of the
reference stack lives in each runtime and profile; this turns it into the framework's
target model, with the stack's dependencies and client paths, so that nothing outside
this adapter needs the stack's package.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from chaos.core.errors import ConfigError
from chaos.core.retry import RetryPolicy
from chaos.core.target import Link, Paths, Service, Target

if TYPE_CHECKING:
    from space import topology as _topo_t

# The reference stack's names, as its package (space.topology) defines them: kept here too so
# that the CLI and the plugin load without that package (a `pip install` of the framework alone,
# pointed at the user's own stack); tests/unit/test_topology.py checks they agree.
RUNTIMES = ("local", "docker")
PROFILES = ("resilient", "fragile")
DCS = ("dc-a", "dc-b", "dc-c")
DEFAULT_BASE_PORT = 17000
MAX_PER_DC = 9

NOT_INSTALLED = ("the reference stack's package (space) is not installed: run fixtures/setup.sh "
                 "from a clone of the project to get the reference stack, or point the command at "
                 "your own stack with --target FILE (a target description)")


def _topo():
    """The reference stack's own topology module (ConfigError when it is not installed)."""
    try:
        from space import topology
    except ImportError as e:
        raise ConfigError(NOT_INSTALLED) from e
    return topology
STACK_LABEL = "space"   # chaos.stack=<this> on every container of the reference stack

# How a breach is explained: which kinds a kind of service needs, and the nouns a sentence uses.
PATHS = Paths(join=("gateway", "edge"), audio=("edge",), speaker=("origin",))
NOUNS = {"origin": "the origin", "redis": "redis"}


def _depends(topo: "_topo_t.Topology") -> dict[str, tuple[str, ...]]:
    redis = tuple(s.name for s in sorted(topo.of_kind("redis"), key=lambda s: s.role != "primary"))
    origins = tuple(s.name for s in topo.origins())
    out: dict[str, tuple[str, ...]] = {}
    for s in topo.services.values():
        if s.kind == "gateway":
            out[s.name] = redis
        elif s.kind == "edge":
            out[s.name] = origins
        elif s.kind == "sentinel" or (s.kind == "redis" and s.role == "replica"):
            out[s.name] = tuple(r for r in redis if r != s.name)[:1]
        elif s.kind == "origin" and s.role == "standby":
            out[s.name] = origins[:1]
    return out


def from_topology(topo: "_topo_t.Topology") -> Target:
    services = {}
    for s in topo.services.values():
        labels = () if topo.runtime == "local" else (("chaos.service", s.name), ("chaos.stack", STACK_LABEL))
        services[s.name] = Service(s.name, s.kind, s.dc, s.bind, s.address, s.public, s.role, labels)
    links = {k: Link(lk.name, lk.kind, lk.src, lk.dst, lk.listen, lk.upstream, lk.connect, lk.index)
             for k, lk in topo.links.items()}
    r = topo.settings.retry
    return Target(name=f"space-{topo.profile}", runtime=topo.runtime, dcs=DCS, services=services,
                  links=links, toxiproxy=topo.services["toxiproxy"].public, depends=_depends(topo),
                  paths=PATHS, adapter="space", nouns=NOUNS,
                  client_retry=RetryPolicy(r.kind, r.base_s, r.cap_s, r.max_attempts),
                  profile=topo.profile, base_port=topo.base_port, source="reference")


def build(runtime: str = "local", profile: str = "resilient",
          base_port: int = DEFAULT_BASE_PORT, gateways_per_dc: int = 1,
          edges_per_dc: int = 1) -> Target:
    """The reference stack as a target (raises ValueError on an unknown runtime or profile,
    or a count of gateways or edges per DC it cannot run)."""
    return from_topology(_topo().build(runtime, profile, base_port, gateways_per_dc=gateways_per_dc,
                                     edges_per_dc=edges_per_dc))


def per_dc(target: Target, kind: str) -> int:
    """How many services of ``kind`` the reference target has in each DC (the most in any)."""
    return max((sum(1 for s in target.of_kind(kind) if s.dc == dc) for dc in target.dcs), default=1) or 1


def topology(target: Target) -> "_topo_t.Topology":
    """The stack's own topology for a reference target (its launchers need it)."""
    return _topo().build(target.runtime, target.profile, target.base_port,
                       gateways_per_dc=per_dc(target, "gateway"), edges_per_dc=per_dc(target, "edge"))
