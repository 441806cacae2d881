"""Audio adapters: how our clients speak a target's audio protocol.

An adapter gives a target's probes their speaker, thin and thick listeners and join
client. Each lives in its own module (or package) and is found by the protocol's name
that a target declares (``adapter: space``); only an adapter may import a stack's own
packages. Adding one (HLS, WebRTC) is one new module registered here.
"""

from __future__ import annotations

from importlib import import_module

from chaos.core.errors import ConfigError

# protocol name -> module that implements it
ADAPTERS = {
    "space": "chaos.adapters.space",
    "http-stream": "chaos.adapters.httpstream",
}


def names() -> tuple[str, ...]:
    return tuple(ADAPTERS)


def check(protocol: str) -> None:
    if protocol not in ADAPTERS:
        raise ConfigError(f"unknown audio protocol {protocol!r}; this framework speaks "
                          f"{', '.join(ADAPTERS)} (an adapter is one module in chaos/adapters/)")


def get(protocol: str):
    """The adapter module for a protocol (imported on first use)."""
    check(protocol)
    return import_module(ADAPTERS[protocol])


def storm_routes(topo, options) -> dict:
    """Where a target's join-storm arrivals go (the adapter's ``storm_routes``, as the load
    worker's fields: ``gateways``, and optionally ``home_gateways`` and ``url_rewrite``).
    ConfigError when the target's adapter has no join storm client or the target gives it
    nowhere to go."""
    adapter = get(topo.adapter)
    if not getattr(adapter, "STORMS", False):
        raise ConfigError(f"the {topo.adapter} adapter of target {topo.name} has no join storm "
                          "client: leave join storms and arriving audiences (rate) out")
    return {**adapter.storm_routes(topo, options), "adapter": topo.adapter}
