"""What a runtime of the reference stack looks like to the rest of the framework."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol

from chaos.core.target import Target

Progress = Callable[[str], None]


def quiet(_: str) -> None:
    pass


@dataclass(frozen=True)
class ServiceStatus:
    name: str
    kind: str
    dc: str | None
    healthy: bool
    address: str           # where the framework reaches it (public if it has one)
    detail: str = ""       # e.g. "role=standby", "exited (137)"

    def to_dict(self) -> dict:
        return {"name": self.name, "kind": self.kind, "dc": self.dc, "healthy": self.healthy,
                "address": self.address, "detail": self.detail}


@dataclass
class Swept:
    """What one sweep step of `chaos stack reset` put back (``did``) and what it found but
    could not (``problems``), as lines of the reset's report."""
    did: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)


@dataclass
class UpResult:
    """What a runtime started: kept in the stack state file so that `down` can undo it."""
    runtime_state: dict = field(default_factory=dict)


class Runtime(Protocol):
    """A runtime of a stack: how it starts, reports and stops, and what faults may ask of it.

    Fault kinds ask it what they may plan (``refusal``, ``service_fault_refusal``,
    ``partitions_networks``, ``caps_cpu_by_quota``, ``shares_host_netns``); executors ask it
    how (``take_down``, ``bring_back``, ``netns_prefix``, ``restart_clean``, ...); nothing
    outside the runtime compares runtime names. ``chaos.targets.runtimes.runtime_of`` gives
    the runtime object of a stack or a topology.
    """
    name: str

    def preflight(self, topo: Target) -> None:
        """Raise a StackError (MissingTool, PortInUse, ...) before anything starts."""

    def up(self, topo: Target, timeout_s: float, progress: Progress) -> dict:
        """Start every service and wait until all are healthy; return the runtime state.

        On failure, remove whatever was started before raising a StackError.
        """

    def status(self, topo: Target, runtime_state: dict) -> list[ServiceStatus]:
        ...

    def down(self, topo: Target, runtime_state: dict, progress: Progress) -> list[str]:
        """Remove everything `up` created; return what was removed, in words."""


class FaultSide:
    """What every runtime answers alike for faults (see ``Runtime``)."""
    name: str = ""
    revert_imports: tuple[str, ...] = ()    # modules a revert needs, preloaded by the watchdog

    def refusal(self, fault: str, runtimes: tuple[str, ...]) -> str | None:
        """Why a fault kind that runs on ``runtimes`` cannot be planned here (None: it can)."""
        if self.name in runtimes:
            return None
        return f"{fault} cannot run on the {self.name} runtime; it needs {' or '.join(runtimes)}"
