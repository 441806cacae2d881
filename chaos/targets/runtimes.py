"""The runtime object of a stack or a topology: what faults ask instead of comparing names.

A described target runs on one of the same runtimes as the reference stack (its services
are local processes or docker containers): its runtime object is that runtime's, working
on the target's own description (labels, addresses). Only this module maps a runtime's
name to its object; the docker one is imported only for a docker stack, and the docker SDK
only when a container is touched.
"""

from __future__ import annotations

from chaos.core.errors import ConfigError
from chaos.core.target import RUNTIMES, Target
from chaos.targets.state import StackState


def by_name(name: str, stack_id: str = ""):
    if name == "local":
        from chaos.targets.local import LocalRuntime
        return LocalRuntime(stack_id)
    if name == "docker":
        from chaos.targets.docker import DockerRuntime
        return DockerRuntime(stack_id)
    raise ConfigError(f"unknown runtime {name!r}; use one of: {', '.join(RUNTIMES)}")


def runtime_of(where: StackState | Target):
    """The runtime object of a stack (``StackState``: it acts on that stack) or of a
    topology (``Target``: it answers what may be planned there)."""
    if isinstance(where, StackState):
        return by_name(where.runtime, where.stack_id)
    return by_name(where.runtime)
