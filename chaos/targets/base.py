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
class UpResult:
    """What a runtime started: kept in the stack state file so that `down` can undo it."""
    runtime_state: dict = field(default_factory=dict)


class Runtime(Protocol):
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
