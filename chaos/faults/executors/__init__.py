"""Which executor carries out which mechanism, for a given stack.

Each executor module exposes ``make(state) -> Executor``; it is imported only when a fault
needs it (docker stays unimported for a local run). The executor it makes also sweeps
(``base.Sweeper``): `chaos stack reset` finds every mechanism's sweep here, in this order.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from importlib import import_module

from chaos.core.errors import UnknownMechanism
from chaos.targets.state import StackState
from chaos.faults.base import Executor, Sweeper

# the order of the modules is the order of their sweeps within a reset's stage (a leftover
# drop rule is gone before a hung toxiproxy is restarted and waited for)
MECHANISMS = {
    "iptables": "iptables",  # random packet drop in a service's network namespace
    "toxic": "toxi",       # a toxiproxy toxic on a link
    "proxy": "toxi",       # a toxiproxy proxy disabled (link down, partition)
    "cpu": "cpu",          # a service held to a fraction of a CPU
    "lifecycle": "lifecycle",  # kill / stop / freeze a service, and bring it back
    "network": "network",  # docker network disconnect / connect
    "client": "client",    # faults the framework's own clients play (echo, join storm)
}


def executors_for(state: StackState,
                  given: Mapping[str, Executor] | None = None) -> Callable[[str], Executor]:
    """The executor of each mechanism for ``state``, made on first use. ``given``: executors
    the caller made itself (a runner hands in its ``client`` executor, plugged into its own
    probe session's clients)."""
    cache: dict[str, Executor] = dict(given or {})

    def get(mechanism: str) -> Executor:
        if mechanism not in cache:
            module = MECHANISMS.get(mechanism)
            if module is None:
                raise UnknownMechanism(
                    f"no executor for mechanism {mechanism!r}; this version carries out "
                    f"{', '.join(sorted(MECHANISMS))}. The action comes from a plan or a fault "
                    "ledger of another version: revert it with that version, or run `chaos "
                    "stack reset` to put the stack back whatever the ledger says")
            cache[mechanism] = import_module(f"chaos.faults.executors.{module}").make(state)
        return cache[mechanism]
    return get


def modules() -> list[str]:
    """Every executor module, once each, in registry order (the order of a reset's sweeps
    within a stage)."""
    return list(dict.fromkeys(MECHANISMS.values()))


def sweeper(module: str, state: StackState) -> Sweeper:
    """The executor of one module, for a reset's sweeps."""
    return import_module(f"chaos.faults.executors.{module}").make(state)
