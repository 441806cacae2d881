"""The run's side of judging: a run's experiment and timeline as the history they record
(chaos.runner.history.of_run), judged by chaos.core.judge, which holds every rule."""

from __future__ import annotations

from chaos.core import journal as jm
from chaos.core.judge import (PHASED, RECOVERY_WINDOW_S, SATURATED, WHOLE_RUN, Judgement, bins,
                              fitted, judge, per_dc_slis, recovery_s)
from chaos.core.model import Verdict
from chaos.core.slo import Saturation, Series
from chaos.core.timeline import Timeline
from chaos.core import judge as core

__all__ = ["PHASED", "RECOVERY_WINDOW_S", "SATURATED", "WHOLE_RUN", "Judgement", "bins",
           "breaking_point", "fitted", "judge", "judge_slos", "per_dc_slis", "recovery_s", "verdict"]


def judge_slos(exp, tl: Timeline, overall: dict[str, Series], per_dc: dict[str, dict[str, Series]],
               end_s: float, saturation: Saturation | None = None) -> list[jm.Slo]:
    from chaos.runner.history import of_run
    return core.judge_slos(of_run(exp, tl, overall, per_dc, end_s=end_s, saturation=saturation))


def breaking_point(exp, tl: Timeline, overall: dict[str, Series]) -> jm.BreakingPoint | None:
    from chaos.runner.history import of_run
    return core.breaking_point(of_run(exp, tl, overall))


def verdict(tl: Timeline, slos, exp=None, *, storms=(), measured: bool = True,
            judge_error: str = "") -> tuple[Verdict, str]:
    """The run's verdict and why, from what its timeline and ``storms`` recorded."""
    from chaos.runner.history import of_run
    return core.verdict(of_run(exp, tl, storms=storms, measured=measured, judge_error=judge_error),
                        slos)
