"""Mechanism "network": disconnect a service's container from one of the stack's docker
networks, and connect it back.

The action names the service and the network by its ``chaos.network`` label (``backbone``,
``dc-a``, ...) and carries the aliases to reconnect with, so that a process that never saw
the injection puts it back. Containers and networks are found by label only. The local
runtime has no per-DC network: there the executor refuses.

Sweep (`chaos stack reset`, without the ledger): every container of the reference stack is
connected again to each network compose gave its service, under its service's name. A
described target's networks are the user's: left as they are.
"""

from __future__ import annotations

from functools import cached_property
from typing import ClassVar

from chaos.targets.state import StackState
from chaos.faults.base import Action, Step, SweepStage, Swept, sweep_containers
from chaos.faults.engine import FaultError

API_TIMEOUT_S = 10


class DockerNetwork:
    mechanism: ClassVar[str] = "network"

    def __init__(self, state: StackState) -> None:
        self.state = state

    @cached_property
    def client(self):
        from chaos.targets.images import docker_client
        return docker_client(timeout=API_TIMEOUT_S)

    def sweep(self, stage: SweepStage, step: Step) -> None:
        if stage is SweepStage.RUN and self.state.topology.is_reference():
            step("reconnecting containers to their networks", lambda: reconnect_all(self.state))

    def _find(self, action: Action):
        from chaos.targets.docker import containers_of, network
        name = action.params.get("network")
        net = network(self.client, name)
        if net is None:
            raise FaultError(f"the stack has no docker network labelled chaos.network={name}")
        containers = containers_of(self.client, self.state, action.target)
        if not containers:
            raise FaultError(f"no container of stack {self.state.stack_id} is found for "
                             f"{action.target}")
        return net, containers

    @staticmethod
    def _attached(c, net) -> bool:
        c.reload()
        nets = (c.attrs.get("NetworkSettings") or {}).get("Networks") or {}
        return any(n.get("NetworkID") == net.id for n in nets.values()) or net.name in nets

    def inject(self, action: Action) -> None:
        import docker
        net, containers = self._find(action)
        for c in containers:
            if not self._attached(c, net):
                continue
            try:
                net.disconnect(c, force=True)
            except docker.errors.NotFound:
                continue
            except docker.errors.APIError as e:
                raise FaultError(f"could not disconnect {action.target} from {net.name}: "
                                 f"{e.explanation}") from None

    def revert(self, action: Action) -> None:
        import docker
        net, containers = self._find(action)
        aliases = list(action.params.get("aliases") or [action.target])
        for c in containers:
            if self._attached(c, net):
                continue
            try:
                net.connect(c, aliases=aliases)
            except docker.errors.APIError as e:
                if self._attached(c, net):        # connected meanwhile (a parallel revert)
                    continue
                raise FaultError(f"could not reconnect {action.target} to {net.name}: "
                                 f"{e.explanation}") from None


def reconnect_all(state: StackState) -> Swept:
    """Connect every container of the stack to each network compose gave its service."""
    from chaos.targets.docker import expected_networks, network
    nets: dict[str, object] = {}

    def reconnect(client, name, c, swept: Swept) -> None:
        svc = state.topology.services.get(name)
        if svc is None:
            return
        attached = (c.attrs.get("NetworkSettings") or {}).get("Networks") or {}
        ids = {n.get("NetworkID") for n in attached.values()}
        for label in expected_networks(svc):
            if label not in nets:
                nets[label] = network(client, label)
            net = nets[label]
            if net is not None and net.id not in ids and net.name not in attached:
                net.connect(c, aliases=[name])
                swept.did.append(f"reconnected {name} to network {label}")
    return sweep_containers(state, reconnect)


class LocalNetwork:
    mechanism: ClassVar[str] = "network"

    def __init__(self, state: StackState) -> None:
        self.state = state

    def inject(self, action: Action) -> None:
        raise FaultError("network faults need the docker runtime; locally a partition "
                         "disables toxiproxy links (mechanism proxy)")

    def revert(self, action: Action) -> None:
        return None  # nothing can have been injected

    def sweep(self, stage: SweepStage, step: Step) -> None:
        return None  # no docker network: nothing can be left disconnected


def make(state: StackState):
    return DockerNetwork(state) if state.runtime == "docker" else LocalNetwork(state)
