"""Generated fault schedules: Hypothesis finds a schedule that breaks the steady state and
the search reduces it to the smallest one that still does.

The public API (everything else in ``chaos.explore`` is internal)::

    from chaos.explore import schedules, space, explore_stack

    schedules(faults=("dc_loss", "latency", "packet_drop"), max_faults=3, span_s=20)
    schedules(faults=(space("dc_loss", dcs=("dc-c",)), space("latency", latency_ms=(10, 90))))

    result = explore_stack(state, faults=("dc_loss", "latency"), budget_s=600)
    print(result.text)

In pytest, the ``chaos_explore`` fixture runs a drawn schedule against the test's stack
(``@given(schedule=schedules(...))``); on the command line, ``chaos explore``.
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

__all__ = ["Exploration", "Outcome", "Schedule", "Space", "Step", "explore", "explore_stack",
           "schedules", "space"]

_WHERE = {"Schedule": "schedule", "Step": "schedule", "Space": "spaces", "space": "spaces",
          "schedules": "strategies", "explore": "search", "Exploration": "search",
          "Outcome": "trials", "explore_stack": "stack"}


def __getattr__(name: str) -> Any:
    if name in _WHERE:
        return getattr(import_module(f"{__name__}.{_WHERE[name]}"), name)
    raise AttributeError(f"module 'chaos.explore' has no attribute {name!r}")
