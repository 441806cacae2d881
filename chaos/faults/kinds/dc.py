"""Data-center faults: a whole DC lost (`dc_loss`), or alive but cut off (`dc_partition`).

dc_loss: every service of the DC goes (kill, stop or freeze), optionally only some kinds
of service (``kinds=edge,gateway``). Mechanism "lifecycle": signals to the DC's labelled
processes locally, docker kill / stop / pause by label. Revert brings them back: SIGCONT /
unpause, or a restart of what was killed or stopped. Each action carries the fault's
services in start order (``undo.restart_together``): the first revert starts every one of
them that is down, state tier first, and each revert then waits for its own service to be
healthy, so a DC comes back in about the slowest service's start-up time, not the sum.

dc_partition: the DC's services keep running but lose every path to the other DCs.
- Every toxiproxy link with one end in the DC and the other end in another DC is disabled
  (mechanism "proxy"): ``edge-b.origin-a``, ``gateway-b.redis-a``, and the links into the
  DC's services from the others (``edge-a.origin-b``, ``gateway-c.redis-b``).
- Clients on the host (listeners, speakers) are in no DC. Their links into the DC's
  services (``listener.edge-b``, ``speaker.origin-b``) are disabled too: in this stack they
  pass through toxiproxy, which sits on the backbone outside every DC, so in docker they
  are cut by the partition anyway; locally they are cut to match. A listener of the DC
  therefore loses its edge and must rejoin elsewhere; the DC's gateway stays reachable
  from the host (it is the public entry point: published on the ingress network in docker,
  on loopback locally) but cannot reach the state, so it refuses joins.
- where the runtime can disconnect networks (docker, the reference stack's compose
  networks): the DC's containers are also disconnected from the ``backbone`` network
  (mechanism "network"; revert reconnects them with their service name as alias). This
  also cuts what does not go through toxiproxy: Sentinel gossip, Redis replication and
  gateways asking other DCs' Sentinels. The local runtime has no per-DC network, so
  there that traffic still flows (loopback): a local partition of dc-a leaves redis-a
  visible to every Sentinel, and no failover happens, where the docker one fails over.
"""

from __future__ import annotations

import re
from typing import Any, ClassVar

from chaos.core.target import Link, Target

from chaos.core.errors import ConfigError
from chaos.faults.base import Action, Param, Selector, register
from chaos.targets.runtimes import runtime_of

# The reference stack's kinds, in the order a DC goes: front first; it comes back (revert
# runs in reverse) state first, like `stack up`. Other targets' kinds go after, by name.
LOSS_ORDER = ("gateway", "edge", "origin", "sentinel", "redis")
KIND_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")


def _loss_rank(kind: str) -> int:
    return LOSS_ORDER.index(kind) if kind in LOSS_ORDER else len(LOSS_ORDER)


class KindsParam(Param):
    """A comma-separated list of service kinds, or "all" (checked against the target when
    the fault is planned)."""

    def check(self, fault: str, name: str, value: Any) -> Any:
        parts = [p.strip() for p in str(value).split(",") if p.strip()]
        if not parts or (parts != ["all"] and not all(KIND_RE.match(p) for p in parts)):
            raise ConfigError(f"{fault}: {name}={value!r} is not accepted; use {self.accepted()}")
        return "all" if parts == ["all"] else ",".join(sorted(set(parts), key=lambda k: (_loss_rank(k), k)))

    def accepted(self) -> str:
        return "all, or a comma-separated list of service kinds (gateway,edge)"


def _one_dc(fault: str, topo: Target, target: Selector) -> str:
    if target.dc is None:
        raise ConfigError(f"{fault} needs a data center: --dc {' | '.join(topo.dcs)}")
    dcs = sorted({s.dc for s in topo.services.values() if s.dc})
    if target.dc not in dcs:
        raise ConfigError(f"{fault}: no data center {target.dc!r} in the stack; DCs are {', '.join(dcs)}")
    if target.link is not None:
        raise ConfigError(f"{fault} takes a whole data center, not links: drop --link "
                          "(link faults: latency, link_down, ...)")
    if str(target.count) != "all":
        raise ConfigError(f"{fault} takes a whole data center: drop --count {target.count} "
                          "(or use a service fault for part of it)")
    return target.dc


@register
class DcLoss:
    name: ClassVar[str] = "dc_loss"
    params: ClassVar[dict[str, Param]] = {
        "mode": Param(str, choices=("kill", "stop", "freeze"), default="kill"),
        "kinds": KindsParam(str, default="all"),
    }
    runtimes: ClassVar[tuple[str, ...]] = ("local", "docker")

    def actions(self, topo: Target, target: Selector, params: dict, fault_id: str) -> list[Action]:
        dc = _one_dc(self.name, topo, target)
        in_dc = sorted({s.kind for s in topo.in_dc(dc)})
        kinds = tuple(in_dc) if params["kinds"] == "all" else tuple(params["kinds"].split(","))
        unknown = [k for k in kinds if k not in in_dc]
        if unknown:
            raise ConfigError(f"{self.name}: {dc} has no service of kind {', '.join(unknown)}; "
                              f"its kinds are {', '.join(in_dc)}")
        # --service narrows further (a name or a kind of the DC); nothing matching is an error
        services = Selector(service=target.service, dc=dc).services(topo, kinds=kinds)
        services.sort(key=lambda s: (_loss_rank(s.kind), s.kind, s.name))
        # revert brings the DC back all at once (state first), not one health wait at a time
        together = [s.name for s in reversed(services)]
        return [Action(self.name, fault_id, "lifecycle", s.name, s.dc,
                       {"mode": params["mode"], "kind": s.kind, "runtime": topo.runtime,
                        "undo": {"restart_together": together}})
                for s in services]


def crossing_links(topo: Target, dc: str) -> list[Link]:
    """Links with one end in dc and the other outside it (another DC, or a host client)."""
    out = []
    for lk in topo.links.values():
        src = topo.services.get(lk.src)            # None: a listener or speaker on the host
        dst = topo.services[lk.dst]
        src_dc = src.dc if src is not None else None
        if (src_dc == dc) != (dst.dc == dc):
            out.append(lk)
    return sorted(out, key=lambda lk: lk.index)


@register
class DcPartition:
    name: ClassVar[str] = "dc_partition"
    params: ClassVar[dict[str, Param]] = {}
    runtimes: ClassVar[tuple[str, ...]] = ("local", "docker")

    def actions(self, topo: Target, target: Selector, params: dict, fault_id: str) -> list[Action]:
        dc = _one_dc(self.name, topo, target)
        if target.service is not None:
            raise ConfigError(f"{self.name} cuts a whole data center: drop --service")
        out = [Action(self.name, fault_id, "proxy", lk.name, dc,
                      {"proxy": lk.name, "enabled": False}) for lk in crossing_links(topo, dc)]
        if runtime_of(topo).partitions_networks(topo):   # the reference stack's compose networks
            # after the proxies: the links drop cleanly before the network goes silent;
            # revert (in reverse) reconnects the network before it enables the proxies
            out += [Action(self.name, fault_id, "network", s.name, dc,
                           {"network": "backbone", "aliases": [s.name]})
                    for s in sorted(topo.in_dc(dc), key=lambda s: s.name)]
        return out
