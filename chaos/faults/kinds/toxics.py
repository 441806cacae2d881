"""Faults on the links between tiers, through toxiproxy: one toxic (or a disabled proxy) per link.

Every link of the stack (``listener.edge-a``, ``edge-b.origin-a``, ``gateway-c.redis-a``...)
is a toxiproxy proxy, so any of them can be selected (``Selector(link=...)``, or by a
service or DC at either end). The kinds share one envelope, as toxiproxy's own toxics do:

- ``stream``: ``downstream`` (from the link's destination back to its source: audio from
  an edge to a listener, a reply from Redis to a gateway; toxiproxy's default),
  ``upstream`` (source to destination) or ``both`` (one toxic per direction);
- ``toxicity``: the share of connections the toxic applies to (toxiproxy picks per
  connection, not per packet).

Each toxic is named from the fault id, the kind and the stream
(``chaos.<fault id>.<kind>.<stream>``), so a revert removes exactly its own toxic and two
faults on one link never collide. ``link_down`` disables the proxy instead (the port
closes: new connections are refused, open ones are cut); its revert enables it again.

``slow_state`` is the control plane's fault: Redis answering slowly (mode ``slow``: a
latency toxic on the replies), not at all (mode ``down``: a ``timeout`` toxic with
timeout 0, both ways, swallows every byte, so calls hang until the gateway's own Redis
timeout of 1 s and joins are refused with 503 state_unavailable), or refusing connections
(mode ``refused``: the gateway->redis proxies disabled). Gateways reach Sentinel directly,
not through toxiproxy, so none of these triggers a Redis failover.
"""

from __future__ import annotations

import hashlib
import re
from typing import Any, ClassVar

from chaos.core.target import Link, Target

from chaos.core.errors import ConfigError
from chaos.faults.base import Action, Param, Selector, register

STREAMS = ("downstream", "upstream", "both")
ENVELOPE: dict[str, Param] = {
    "stream": Param(str, choices=STREAMS, default="downstream"),
    "toxicity": Param(float, 0.0, 1.0, default=1.0),
}
RUNTIMES = ("local", "docker")
MAX_MS = 600_000        # ten minutes: longer is not a delay but an outage (use link_down)
_SAFE = re.compile(r"[^A-Za-z0-9_.-]")


def toxic_name(fault_id: str, kind: str, stream: str) -> str:
    """A toxic's name: readable, safe in toxiproxy's URL paths, unique per (fault, kind, stream)."""
    safe = _SAFE.sub("_", fault_id)
    if safe != fault_id:  # two ids that differ only in unsafe characters stay apart
        safe += "-" + hashlib.sha1(fault_id.encode()).hexdigest()[:8]
    return f"chaos.{safe}.{kind}.{stream}"


def link_dc(topo: Target, lk: Link) -> str | None:
    """The DC whose users feel a fault on this link: the source's, or for a client link
    (listener, speaker) the destination's."""
    src = topo.services.get(lk.src)
    return src.dc if src is not None and src.dc else topo.services[lk.dst].dc


def toxic_action(fault: str, fault_id: str, topo: Target, lk: Link, toxic: str,
                 attributes: dict[str, Any], stream: str, toxicity: float) -> Action:
    """One action per link: "both" streams are two toxics, named apart, in one action (the
    ledger keys actions by fault, mechanism and link). ``undo`` holds the toxics' names."""
    streams = ("downstream", "upstream") if stream == "both" else (stream,)
    undo = {"toxics": [{"name": toxic_name(fault_id, fault, s), "stream": s} for s in streams]}
    return Action(fault, fault_id, "toxic", lk.name, link_dc(topo, lk),
                  {"proxy": lk.name, "toxic": toxic, "stream": stream, "toxicity": toxicity,
                   "attributes": dict(attributes), "undo": undo})


def proxy_down_action(fault: str, fault_id: str, topo: Target, lk: Link) -> Action:
    return Action(fault, fault_id, "proxy", lk.name, link_dc(topo, lk),
                  {"proxy": lk.name, "enabled": False})


class _ToxicKind:
    """A toxiproxy toxic on every selected link. Subclasses give the toxic's type, their own
    parameters and how those become the toxic's attributes."""
    name: ClassVar[str]
    toxic: ClassVar[str]
    own: ClassVar[dict[str, Param]] = {}
    params: ClassVar[dict[str, Param]]
    runtimes: ClassVar[tuple[str, ...]] = RUNTIMES

    def __init_subclass__(cls, **kw: Any) -> None:
        super().__init_subclass__(**kw)
        cls.params = {**cls.own, **ENVELOPE}

    def attributes(self, params: dict) -> dict[str, Any]:
        raise NotImplementedError

    def actions(self, topo: Target, target: Selector, params: dict, fault_id: str) -> list[Action]:
        attrs = self.attributes(params)
        return [toxic_action(self.name, fault_id, topo, lk, self.toxic, attrs, params["stream"],
                             params["toxicity"]) for lk in target.links(topo)]


@register
class Latency(_ToxicKind):
    """Delay (and jitter) on a link: every chunk waits latency_ms +- jitter_ms."""
    name = "latency"
    toxic = "latency"
    own = {"latency_ms": Param(int, 0, MAX_MS, required=True, unit="ms"),
           "jitter_ms": Param(int, 0, MAX_MS, default=0, unit="ms")}

    def attributes(self, params: dict) -> dict[str, Any]:
        if params["jitter_ms"] > params["latency_ms"]:
            raise ConfigError(f"latency: jitter_ms={params['jitter_ms']} is larger than "
                              f"latency_ms={params['latency_ms']}; a delay cannot go below 0 ms, "
                              "so keep jitter_ms <= latency_ms")
        return {"latency": params["latency_ms"], "jitter": params["jitter_ms"]}


@register
class Bandwidth(_ToxicKind):
    """A throughput cap. rate_kbps is kilobits per second (Opus speech is ~32 kbit/s);
    toxiproxy counts whole kilobytes per second, so the cap is rounded to a multiple of 8."""
    name = "bandwidth"
    toxic = "bandwidth"
    own = {"rate_kbps": Param(float, 8, 10_000_000, required=True, unit="kbit/s")}

    def attributes(self, params: dict) -> dict[str, Any]:
        return {"rate": max(1, round(params["rate_kbps"] / 8))}


@register
class Reset(_ToxicKind):
    """Connections are reset (TCP RST) after timeout_ms of data; 0: at the first data."""
    name = "reset"
    toxic = "reset_peer"
    own = {"timeout_ms": Param(int, 0, MAX_MS, default=0, unit="ms")}

    def attributes(self, params: dict) -> dict[str, Any]:
        return {"timeout": params["timeout_ms"]}


@register
class Timeout(_ToxicKind):
    """No data gets through; the connection is closed after timeout_ms (0: held open, silent,
    until the fault is reverted)."""
    name = "timeout"
    toxic = "timeout"
    own = {"timeout_ms": Param(int, 0, MAX_MS, default=0, unit="ms")}

    def attributes(self, params: dict) -> dict[str, Any]:
        return {"timeout": params["timeout_ms"]}


@register
class Slicer(_ToxicKind):
    """Data cut into small packets (average_size +- size_variation bytes), delay_us apart."""
    name = "slicer"
    toxic = "slicer"
    own = {"average_size": Param(int, 1, 65536, default=64, unit="bytes"),
           "size_variation": Param(int, 0, 65536, default=32, unit="bytes"),
           "delay_us": Param(int, 0, 10_000_000, default=1000, unit="us")}

    def attributes(self, params: dict) -> dict[str, Any]:
        if params["size_variation"] >= params["average_size"]:
            raise ConfigError(f"slicer: size_variation={params['size_variation']} must be smaller "
                              f"than average_size={params['average_size']} (slices cannot be empty)")
        return {"average_size": params["average_size"], "size_variation": params["size_variation"],
                "delay": params["delay_us"]}


@register
class LinkDown:
    """The link is gone: the proxy is disabled (its port closes, open connections are cut)."""
    name = "link_down"
    params: ClassVar[dict[str, Param]] = {}
    runtimes: ClassVar[tuple[str, ...]] = RUNTIMES

    def actions(self, topo: Target, target: Selector, params: dict, fault_id: str) -> list[Action]:
        return [proxy_down_action(self.name, fault_id, topo, lk) for lk in target.links(topo)]


@register
class SlowState:
    """Redis answers slowly (slow), not at all (down) or refuses (refused), on the
    gateway->redis links the selector picks (all of them by default)."""
    name = "slow_state"
    params: ClassVar[dict[str, Param]] = {
        "mode": Param(str, choices=("slow", "down", "refused"), default="slow"),
        "latency_ms": Param(int, 0, MAX_MS, default=500, unit="ms"),
        "jitter_ms": Param(int, 0, MAX_MS, default=0, unit="ms"),
        "toxicity": Param(float, 0.0, 1.0, default=1.0),
    }
    runtimes: ClassVar[tuple[str, ...]] = RUNTIMES
    LINK_KINDS = ("gateway_redis",)

    def actions(self, topo: Target, target: Selector, params: dict, fault_id: str) -> list[Action]:
        links = target.links(topo, kinds=self.LINK_KINDS)
        mode = params["mode"]
        if mode == "refused":
            return [proxy_down_action(self.name, fault_id, topo, lk) for lk in links]
        if mode == "down":
            return [toxic_action(self.name, fault_id, topo, lk, "timeout", {"timeout": 0}, "both",
                                 params["toxicity"]) for lk in links]
        if params["jitter_ms"] > params["latency_ms"]:
            raise ConfigError(f"slow_state: jitter_ms={params['jitter_ms']} is larger than "
                              f"latency_ms={params['latency_ms']}; keep jitter_ms <= latency_ms")
        attrs = {"latency": params["latency_ms"], "jitter": params["jitter_ms"]}
        # replies are late (downstream): one latency per request/response round trip
        return [toxic_action(self.name, fault_id, topo, lk, "latency", attrs, "downstream",
                             params["toxicity"]) for lk in links]
