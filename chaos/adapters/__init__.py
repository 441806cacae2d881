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
