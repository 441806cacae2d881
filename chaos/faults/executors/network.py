"""Mechanism "network": disconnect a service's container from one of the stack's docker
networks, and connect it back.

The action names the service and the network by its ``chaos.network`` label (``backbone``,
``dc-a``, ...) and carries the aliases to reconnect with, so that a process that never saw
the injection puts it back. How is the runtime's (``disconnect``, ``connect``,
``reconnect_all``): docker finds containers and networks by label only. A runtime that
does not disconnect networks (local: no per-DC network) refuses.

Sweep (`chaos stack reset`, without the ledger): every container of the reference stack is
connected again to each network compose gave its service, under its service's name. A
described target's networks are the user's: left as they are.
"""

from __future__ import annotations

from typing import ClassVar

from chaos.targets.runtimes import runtime_of
from chaos.targets.state import StackState
from chaos.faults.base import Action, Step, SweepStage
from chaos.faults.engine import FaultError


class Network:
    mechanism: ClassVar[str] = "network"

    def __init__(self, state: StackState) -> None:
        self.state = state
        self.runtime = runtime_of(state)

    def sweep(self, stage: SweepStage, step: Step) -> None:
        # no network to disconnect: nothing can be left disconnected
        if (stage is SweepStage.RUN and self.runtime.disconnects_networks
                and self.state.topology.is_reference()):
            step("reconnecting containers to their networks",
                 lambda: self.runtime.reconnect_all(self.state))

    def inject(self, action: Action) -> None:
        if not self.runtime.disconnects_networks:
            raise FaultError("network faults need the docker runtime; locally a partition "
                             "disables toxiproxy links (mechanism proxy)")
        self.runtime.disconnect(self.state, action.target, action.params.get("network"))

    def revert(self, action: Action) -> None:
        if not self.runtime.disconnects_networks:
            return None  # nothing can have been injected
        self.runtime.connect(self.state, action.target, action.params.get("network"),
                             list(action.params.get("aliases") or [action.target]))


def make(state: StackState) -> Network:
    return Network(state)
