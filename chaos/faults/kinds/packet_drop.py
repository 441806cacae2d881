"""``packet_drop``: a random share of the IP packets of a service's traffic is lost.

iptables ``-m statistic --mode random --probability <share> -j DROP`` on the service's
listening port, in the service's network namespace (exec_iptables.py):

- docker: inside the container's namespace, ``--dport <container port>`` inbound (INPUT)
  and ``--sport <container port>`` outbound (OUTPUT);
- local: every process shares the host's namespace, so the rules also name the service's
  own loopback address: ``-d 127.0.2.20 --dport 17100`` inbound, ``-s 127.0.2.20 --sport
  17100`` outbound. Another stack on other addresses or ports is untouched.

``direction``: ``in`` (to the service), ``out`` (from it) or ``both`` (the default; the
share is lost in each direction). Only the service's listening port is hit: the
connections it opens itself (an edge to its origin) keep their packets.

What the clients see is not loss: every link is TCP, which retransmits, so a dropped
segment arrives late and holds back what follows it. With round trips of microseconds
(loopback, a docker bridge) Linux recovers a loss within about one 20 ms frame interval
(RACK, tail loss probe); a lost SYN or SYN-ACK costs 1 s (then 3 s) on a new connection.
Measured on this project's machine with 3 listeners per DC, edge-b dropping:

    share   dc-b frames > 25 ms   dc-b worst frame   audio_delivered (0.4 s deadline)
    5 %     ~ the other DCs'      +15 ms             100 %
    30 %    ~15 % (others ~1 %)   ~90 ms             100 %; some joins slow or moved
    50 %    ~35 % (others ~5 %)   ~250 ms            100 % (98.5 % within 0.1 s)

So on a LAN-like path random loss is a latency and join-time fault long before it is an
audio-loss fault; with real round trips (tens of ms) every loss costs at least a round trip.
"""

from __future__ import annotations

from typing import ClassVar

from chaos.core.errors import ConfigError
from chaos.core.target import Service, Target

from chaos.faults.base import Action, Param, Selector, register
from chaos.targets.runtimes import runtime_of

DIRECTIONS = ("in", "out", "both")


def service_kinds(topo: Target) -> tuple[str, ...]:
    """Every kind of service but toxiproxy (it carries the links: a link fault's job)."""
    return tuple(sorted({s.kind for s in topo.services.values() if s.kind != "toxiproxy"}))


def drop_action(topo: Target, svc: Service, fault_id: str, share: float, direction: str) -> Action:
    where = svc.bind or svc.address
    if not where:
        raise ConfigError(f"packet_drop on {svc.name}: the target gives no address (host:port) "
                          "for it, so its traffic cannot be matched; add `address:` to the service")
    host, port = where.rsplit(":", 1)
    params = {"service": svc.name, "runtime": topo.runtime, "share": share,
              "direction": direction, "port": int(port)}
    if runtime_of(topo).shares_host_netns:
        params["address"] = host  # the host's namespace is shared: match the service's address too
    return Action("packet_drop", fault_id, "iptables", svc.name, svc.dc, params)


@register
class PacketDrop:
    name = "packet_drop"
    params: ClassVar[dict[str, Param]] = {
        "share": Param(float, 0.0, 1.0, required=True),
        "direction": Param(str, choices=DIRECTIONS, default="both"),
    }
    runtimes: ClassVar[tuple[str, ...]] = ("local", "docker")

    def actions(self, topo: Target, target: Selector, params: dict, fault_id: str) -> list[Action]:
        return [drop_action(topo, svc, fault_id, params["share"], params["direction"])
                for svc in target.services(topo, kinds=service_kinds(topo))]
