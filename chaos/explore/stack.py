"""One exploration against a running stack: the strategy, the live runner, the store, the
search and its printed result, as ``chaos explore`` and the shipped experiments use it."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from chaos.core.errors import ConfigError
from chaos.faults.base import plan
from chaos.core.slo import Objective, objective
from chaos.targets.state import StackState
from chaos.explore import result as _result
from chaos.explore.live import AUDIENCE, RUN_SHAPE, LiveRunner
from chaos.explore.reduce import Grid
from chaos.explore.schedule import Schedule
from chaos.explore.search import Exploration, explore
from chaos.explore.spaces import Space, as_spaces
from chaos.explore.store import Store, store_key
from chaos.explore.strategies import schedules

DEFAULT_SLOS = ("join_time", "audio_delivered")


@dataclass
class Explored:
    exploration: Exploration
    text: str
    doc: dict

    @property
    def found(self) -> bool:
        return self.exploration.found


def plans(schedule: Schedule, target) -> bool:
    """Does every fault of ``schedule`` plan against ``target``? (stored examples)"""
    try:
        for st in schedule.method:
            plan(st.spec, target)
        return True
    except ConfigError:
        return False


def explore_stack(state: StackState, *, faults: Sequence[str | Space] = ("dc_loss", "latency", "packet_drop"),
                  steady_state: Sequence[Objective] | None = None, budget_s: float = 600.0,
                  max_faults: int = 3, span_s: float = 20.0, grid_s: float = 2.0,
                  min_duration_s: float = 2.0, repeats: int = 3, max_examples: int = 100,
                  shrink_runs: int = 4, seed: int | None = None, reports_dir: str = "reports",
                  store_dir: str | None = None, reproduce: str = "",
                  progress: Callable[[str], None] = lambda m: None) -> Explored:
    """Search for the smallest schedule of ``faults`` that breaks ``steady_state`` on the
    running stack ``state``, within ``budget_s`` seconds."""
    if isinstance(budget_s, bool) or not isinstance(budget_s, (int, float)) or not budget_s > 0:
        raise ConfigError(f"budget_s={budget_s!r}: give the search a time budget in seconds > 0")
    if isinstance(repeats, bool) or not isinstance(repeats, int) or not 1 <= repeats <= 20:
        raise ConfigError(f"repeats={repeats!r}: runs of the minimal schedule, 1 to 20 (3 is usual)")
    slos = tuple(steady_state) if steady_state else tuple(objective(s) for s in DEFAULT_SLOS)
    spaces = as_spaces(faults)
    target = state.topology
    strategy = schedules(spaces, target=target, max_faults=max_faults, span_s=span_s,
                         grid_s=grid_s, min_duration_s=min_duration_s)
    store = None
    if store_dir is not None:
        store = Store(store_dir, store_key(target.name, spaces, slos), valid=lambda s: plans(s, target))
    runner = LiveRunner(state, slos, reports_dir, reproduce)
    found = explore(strategy, slos, runner, budget_s=budget_s, spaces=spaces, target=target,
                    repeats=repeats, max_examples=max_examples, shrink_runs=shrink_runs,
                    store=store, grid=Grid(grid_s, min_duration_s), seed=seed, progress=progress)
    text = _result.render(found, run_shape=RUN_SHAPE, audience=AUDIENCE, reproduce=reproduce)
    return Explored(found, text, _result.to_dict(found))


def replay(state: StackState, path: str, repeats: int = 3, reports_dir: str = "reports",
           progress: Callable[[str], None] = lambda m: None) -> tuple[int, int, list]:
    """Run a stored schedule (``reports/<run-id>/schedule.json``) ``repeats`` times:
    (runs that broke, counted runs, outcomes)."""
    from chaos.explore.live import load_schedule_doc
    schedule, slos, shape, audience = load_schedule_doc(path)
    if not plans(schedule, state.topology):
        raise ConfigError(f"{path}: the schedule does not plan against stack {state.stack_id}; "
                          "replay it against the stack it was found on")
    runner = LiveRunner(state, slos or tuple(objective(s) for s in DEFAULT_SLOS), reports_dir,
                        f"chaos explore --replay {Path(path)}", shape, audience)
    outs = []
    for i in range(repeats):
        progress(f"replay {i + 1} of {repeats}: {schedule.describe()}")
        outs.append(runner(schedule, f"replay-{schedule.key()}-{i + 1}"))
    counted = [o for o in outs if o.counted]
    return sum(o.failed for o in counted), len(counted), outs
