"""The live runner: reset the stack to a known state, run one schedule as an experiment,
read the outcome from its journal.

Between examples the whole stack is put back (``chaos.faults.reset.reset``: toxics,
drop rules, stopped or dead services) and must be healthy again before the next run, so
one example cannot leak into the next (a run's own gate refuses a sick stack too).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from chaos.core.errors import StackError
from chaos.core.journal import Journal
from chaos.core.model import Phase, Verdict
from chaos.experiment import Audience
from chaos.core.slo import Objective
from chaos.targets.state import StackState
from chaos.explore.schedule import Schedule
from chaos.explore.trials import Outcome, closeness

# short runs: the search's cost is its number of runs times their length
RUN_SHAPE = {"before_s": 4.0, "after_s": 6.0, "recover_s": 2.0}
AUDIENCE = Audience(listeners=6, thick_per_dc=0)


def outcome_of(journal: Journal | dict, steady_state: Sequence[Objective], run_dir: str = "") -> Outcome:
    """The outcome of a run from its journal (typed; a dict is read into it): the required
    SLOs of ``steady_state`` that broke once the method began, in a run whose verdict is
    failed, and how close each came (its worst phase). A breach before the method (the
    gate) is the stack's, not the schedule's: that run is inconclusive and says nothing."""
    from chaos.report import narrative
    from chaos.report.schema import typed
    journal = typed(journal)
    names = {o.sli for o in steady_state}
    broke: list[str] = []
    scores: dict[str, float] = {}
    failed_run = journal.verdict is Verdict.FAILED
    for s in journal.slos:
        if not s.required or s.name not in names or s.phase == Phase.BEFORE:
            continue
        name = s.name
        scores[name] = max(scores.get(name, 0.0), closeness(s.dump()))
        if failed_run and s.verdict is Verdict.FAILED and name not in broke:
            broke.append(name)
    return Outcome(journal.verdict or Verdict.INCONCLUSIVE, tuple(broke), scores,
                   tuple(narrative.sentences(journal)), run_dir, journal.reason or "",
                   float(journal.duration_s or 0.0))


@dataclass
class LiveRunner:
    state: StackState
    steady_state: tuple[Objective, ...]
    reports_dir: str = "reports"
    reproduce: str = ""
    run_shape: dict = field(default_factory=lambda: dict(RUN_SHAPE))
    audience: Audience = AUDIENCE
    progress: object = None

    def experiment(self, schedule: Schedule, name: str):
        return schedule.experiment(name, self.steady_state, audience=self.audience, **self.run_shape)

    def __call__(self, schedule: Schedule, name: str) -> Outcome:
        from chaos.faults.reset import reset
        from chaos.runner import run
        rep = reset(self.state)
        if not rep.healthy:
            return Outcome("inconclusive", reason="the stack was not healthy after its reset: "
                           + ", ".join(rep.unhealthy))
        try:
            result = run(self.experiment(schedule, name), self.state, self.reports_dir,
                         reproduce=self.reproduce)
        except StackError as e:        # the stack turned sick before the run: says nothing
            return Outcome("inconclusive", reason=str(e))
        (Path(result.dir) / "schedule.json").write_text(_schedule_doc(schedule, self))
        return outcome_of(result.record, self.steady_state, str(result.dir))


def _schedule_doc(schedule: Schedule, runner: LiveRunner) -> str:
    import json
    return json.dumps({**schedule.to_dict(),
                       "steady_state": [{"sli": o.sli, "threshold": o.threshold,
                                         "window_s": o.window_s, "stat": o.stat, "op": o.op}
                                        for o in runner.steady_state],
                       "run_shape": runner.run_shape,
                       "audience": {"listeners": runner.audience.listeners,
                                    "thick_per_dc": runner.audience.thick_per_dc}}, indent=2)


def load_schedule_doc(path: str) -> tuple[Schedule, tuple[Objective, ...], dict, Audience]:
    """A schedule.json written beside a run: the schedule and how it was run."""
    import json

    from chaos.core.errors import ConfigError
    try:
        d = json.loads(Path(path).read_text())
        objs = tuple(Objective(o["sli"], o["stat"], o["op"], float(o["threshold"]), o.get("window_s"))
                     for o in d.get("steady_state") or ())
        aud = Audience(**(d.get("audience") or {}))
        return Schedule.from_dict(d), objs, dict(d.get("run_shape") or RUN_SHAPE), aud
    except OSError as e:
        raise ConfigError(f"cannot read the schedule file {path}: {e.strerror}") from None
    except (ValueError, KeyError, TypeError) as e:
        raise ConfigError(f"{path} is not a schedule written by chaos explore ({e}); give a "
                          "reports/<run-id>/schedule.json") from None
