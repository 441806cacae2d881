"""Which executor carries out which mechanism, for a given stack.

Each executor module exposes ``make(state) -> Executor``; it is imported only when a fault
needs it (docker stays unimported for a local run).
"""

from __future__ import annotations

from collections.abc import Callable
from importlib import import_module

from ..targets.state import StackState
from .base import Executor

MECHANISMS = {
    "toxic": "exec_toxi",       # a toxiproxy toxic on a link
    "proxy": "exec_toxi",       # a toxiproxy proxy disabled (link down, partition)
    "iptables": "exec_iptables",  # random packet drop in a service's network namespace
    "cpu": "exec_cpu",          # a service held to a fraction of a CPU
    "lifecycle": "exec_lifecycle",  # kill / stop / freeze a service, and bring it back
    "network": "exec_network",  # docker network disconnect / connect
    "client": "exec_client",    # faults the framework's own clients play (echo, join storm)
}


def executors_for(state: StackState) -> Callable[[str], Executor]:
    cache: dict[str, Executor] = {}

    def get(mechanism: str) -> Executor:
        if mechanism not in cache:
            module = MECHANISMS.get(mechanism)
            if module is None:
                raise KeyError(f"no executor for mechanism {mechanism!r}")
            cache[mechanism] = import_module(f"chaos.faults.{module}").make(state)
        return cache[mechanism]
    return get
