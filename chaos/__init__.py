"""chaos: chaos-engineering and SLO tests for live audio rooms.

The public API (everything else is internal and may change):

    from chaos import Experiment, fault, objective, Sweep, Audience, run

    result = run(Experiment(name="dc_b_lost",
                            method=[fault("dc_loss", dc="dc-b", at_s=0, duration_s=10)],
                            after=[objective("audience_retained")]),
                 target="chaos-target.yaml")      # or None: the reference stack that is up
    result.verdict, result.dir

Every error the framework raises on purpose is a ``ChaosError``. Names are imported on
first use, so ``import chaos`` stays light.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

__all__ = ["Audience", "ChaosError", "ConfigError", "Experiment", "Objective", "RunResult",
           "StackError", "Sweep", "Target", "fault", "load_target", "objective", "run"]

_WHERE = {
    "Audience": "chaos.experiment", "Experiment": "chaos.experiment", "Sweep": "chaos.experiment",
    "fault": "chaos.experiment", "Objective": "chaos.core.slo", "objective": "chaos.core.slo",
    "ChaosError": "chaos.core.errors", "ConfigError": "chaos.core.errors", "StackError": "chaos.core.errors",
    "RunResult": "chaos.runner", "Target": "chaos.core.target",
}

if TYPE_CHECKING:
    from chaos.core.errors import ChaosError, ConfigError, StackError
    from chaos.experiment import Audience, Experiment, Sweep, fault
    from chaos.runner import RunResult
    from chaos.core.slo import Objective, objective
    from chaos.core.target import Target


def load_target(path: str) -> Target:
    """A target from its description file (``chaos-target.yaml``), checked whole."""
    from chaos.targets.file import load
    return load(path)


def run(experiment: Experiment, target: Any = None, reports_dir: str = "reports",
        progress=None, reproduce: str = "") -> RunResult:
    """Run ``experiment`` against ``target``: a target file's path, a ``Target``, a stack
    state, or None for the reference stack that ``chaos stack up`` started. Writes
    ``reports_dir/<run-id>/`` and returns the result (its ``verdict``, ``record``: the typed
    journal, ``dir``)."""
    from chaos.targets import stack
    from chaos.runner import run as _run
    from chaos.targets.state import StackState

    if isinstance(target, StackState):
        state = target
    elif target is None:
        state = stack.current()
    else:
        from chaos.targets.external import attach
        from chaos.targets.file import check_live
        state = attach(target)
        check_live(state.topology)
    return _run(experiment, state, reports_dir, progress=progress, reproduce=reproduce)


def __getattr__(name: str) -> Any:
    if name in _WHERE:
        return getattr(import_module(_WHERE[name]), name)
    raise AttributeError(f"module 'chaos' has no attribute {name!r}")
