"""A run's timeline as it is played: the phases, each fault's window, the events, and why
the run stopped early (a halt, the gate, Ctrl-C, an error). The method
(chaos.runner.method) writes it while the run goes on; judging reads it
(chaos.core.history.History.of_run).

A fault run holds its step and its actions, declared in the layers above; the timeline
needs of them only what the protocols below name.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol

from chaos.core import journal as jm


class FaultSpecLike(Protocol):
    name: str
    params: dict[str, Any]


class FaultStepLike(Protocol):
    """One fault of the method (chaos.experiment.FaultStep)."""
    spec: Any
    at_s: float
    duration_s: float
    step: int | None             # in a sweep: the step's index

    def describe(self) -> str: ...


class ActionLike(Protocol):
    """One planned action of a fault (chaos.faults.base.Action)."""
    target: str
    fault_id: str

    def describe(self) -> str: ...


@dataclass
class FaultRun:
    step: FaultStepLike
    actions: list[ActionLike]
    started_s: float | None = None
    ended_s: float | None = None
    reverted: bool = False
    revert_error: str = ""
    inject_error: str = ""

    @property
    def active(self) -> bool:
        return self.started_s is not None and not self.reverted


@dataclass
class Timeline:
    faults: list[FaultRun]
    events: list[dict] = field(default_factory=list)
    phases: dict[str, list[float]] = field(default_factory=dict)
    gate: dict | None = None              # the gate's verdicts when it failed
    halt: jm.Halt | None = None
    abort: str = ""                       # why the run stopped early ("" if it did not)
    interrupted: bool = False             # Ctrl-C
    error: str = ""
    checks: list[dict] = field(default_factory=list)   # a game day's checks and their outcomes

    def event(self, t_s: float, kind: str, message: str, **extra) -> None:
        self.events.append({"t_s": round(t_s, 3), "kind": kind, "message": message, **extra})
