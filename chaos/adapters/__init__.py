"""Audio adapters: how our clients speak a target's audio protocol.

An adapter gives a target's probes their speaker, thin and thick listeners, join probes
and join storm client: one class per protocol implementing ``chaos.adapters.base.Adapter``,
in its own package, registered here by the protocol's name that a target declares
(``adapter: space``) and imported on first use. Only an adapter may import a stack's own
packages. Adding one (HLS, WebRTC) is one new package and one line in ``ADAPTERS``.
"""

from __future__ import annotations

from importlib import import_module

from chaos.adapters.base import Adapter, StormRoutes
from chaos.core.errors import ConfigError

# protocol name -> "module:class" that implements it
ADAPTERS = {
    "space": "chaos.adapters.space:SpaceAdapter",
    "http-stream": "chaos.adapters.httpstream:HttpStreamAdapter",
}

_LOADED: dict[str, Adapter] = {}


def names() -> tuple[str, ...]:
    return tuple(ADAPTERS)


def check(protocol: str) -> None:
    if protocol not in ADAPTERS:
        raise ConfigError(f"unknown audio protocol {protocol!r}; this framework speaks "
                          f"{', '.join(ADAPTERS)} (an adapter is one package in chaos/adapters/)")


def get(protocol: str) -> Adapter:
    """The adapter of a protocol (its package imported on first use)."""
    check(protocol)
    if protocol not in _LOADED:
        module, _, cls = ADAPTERS[protocol].partition(":")
        _LOADED[protocol] = getattr(import_module(module), cls)()
    return _LOADED[protocol]


def storm_routes(topo, options) -> StormRoutes:
    """Where a target's join-storm arrivals go (the adapter's ``storm_routes``, as the load
    worker's fields: ``gateways``, and optionally ``home_gateways`` and ``url_rewrite``,
    plus ``adapter``). ConfigError when the target's adapter has no join storm client or
    the target gives it nowhere to go."""
    adapter = get(topo.adapter)
    if not adapter.storms:
        raise ConfigError(f"the {topo.adapter} adapter of target {topo.name} has no join storm "
                          "client: leave join storms and arriving audiences (rate) out")
    return {**adapter.storm_routes(topo, options), "adapter": topo.adapter}
