"""The measurements a verdict rests on, each an ordinary run with its journal.

- A tier's capacity at ``units`` units: a ``Sweep`` of ``join_storm`` (open-loop arrivals)
  against the listeners of ``units`` DCs only (each DC is one unit of the tier's kind: a
  gateway and an edge of the reference stack, a relay of an Icecast target), stepped up until a step breaks the tier's SLOs (the sweep's
  ``stop_at_break``); the capacity is the last step that held, its uncertainty half the
  bracket to the first step that broke. The join path holds while ``join_time`` does (p95
  <= 2 s); the fan-out while ``audio_delivered`` and ``mouth_to_ear`` do, with every
  arrival staying joined (so a step's load is the listeners held at once).
- Generator validity, per step, from the storm's own figures: a step whose arrivals were
  not fired at the requested rate on schedule measured the generator, not the stack: it is
  ``inconclusive``, never a pass, and the sweep's capacity is then a lower bound.
- Survivability: a ``dc_loss`` run of one DC under an arriving audience; join_time during
  the loss and audience_retained after it, per DC.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

from chaos.core import journal as jm
from chaos.core.journal import Journal
from chaos.core.model import Phase, Verdict
from chaos.faults.kinds.client import MAX_RATE
from chaos.experiment import Audience, Experiment, Sweep, fault
from chaos.core.slo import DEFAULTS, objective
from chaos.core.target import Target
from chaos.report import fmt
from chaos.targets.state import StackState
from chaos.readiness.demand import plural, tier_kinds

# a step's arrivals fired at >= this share of the requested rate, and on schedule
MIN_ACHIEVED_SHARE = 0.9
MAX_LATENESS_P99_S = 0.25
HELD_S = 600.0                    # join_storm hold_s: stay until the step's storm ends


@dataclass(frozen=True)
class Tier:
    name: str                     # "join" | "fanout"
    fleet_key: str                # the fleet's tier that scales it (the reference's; tiers_for)
    slos: tuple[str, ...]         # the SLOs a step must hold
    unit: str                     # what its capacity counts
    load: str                     # the step's load measure: "rate" | "concurrent"
    hold_s: float                 # join_storm hold_s: 0 leaves at once, HELD_S stays


JOIN = Tier("join", "gateways", ("join_time",), "joins/s", "rate", 0.0)
FANOUT = Tier("fanout", "edges", ("audio_delivered", "mouth_to_ear"), "listeners", "concurrent",
              HELD_S)
TIERS = {t.name: t for t in (JOIN, FANOUT)}


def tiers_for(target: Target | None) -> dict[str, Tier]:
    """The join and fan-out tiers of a target, scaled by the fleet's units of the kinds a
    listener joins through and hears from (``tier_kinds``); the reference's without one."""
    if target is None:
        return dict(TIERS)
    join, audio = tier_kinds(target)
    return {"join": replace(JOIN, fleet_key=plural(join)),
            "fanout": replace(FANOUT, fleet_key=plural(audio))}


@dataclass(frozen=True)
class Plan:
    """How long each measurement takes: the quick form for CI, the default for a report.
    Steps are join_storm rates per unit (joins/s); the fan-out's load is its rate times
    step_s listeners held at once."""
    step_s: float = 6.0
    gap_s: float = 1.0
    units: tuple[int, ...] = (1, 2, 3)
    fanout_units: tuple[int, ...] = (1, 2, 3)
    join_steps: tuple[float, ...] = (30, 45, 68, 100, 150, 225, 340, 500, 750)
    fanout_steps: tuple[float, ...] = (8, 15, 25, 40, 60, 90, 135, 200)
    max_rate_per_s: float | None = None     # the generator's cap (None: the fault's own)
    listeners_per_unit: int = 3
    loss_s: float = 8.0

    @classmethod
    def quick(cls) -> Plan:
        return cls(step_s=4.0, gap_s=0.5, units=(1, 2, 3), fanout_units=(1,),
                   join_steps=(40, 80, 160, 320, 640), fanout_steps=(10, 25, 50, 100, 200),
                   listeners_per_unit=2, loss_s=6.0)

    def steps_for(self, tier: Tier) -> tuple[float, ...]:
        return self.join_steps if tier is JOIN or tier.name == "join" else self.fanout_steps


@dataclass(frozen=True)
class Step:
    index: int
    requested: float              # joins/s asked of the generator
    achieved: float | None        # joins/s it fired
    load: float | None            # the tier's load measure at this step
    valid: bool                   # the generator delivered the rate on schedule
    why: str                      # why not
    held: bool | None             # the tier's SLOs held (None: not judged)
    slos: dict = field(default_factory=dict)

    @property
    def verdict(self) -> str:
        if not self.valid:
            return "inconclusive"
        return {True: "passed", False: "failed", None: "inconclusive"}[self.held]

    def to_dict(self) -> dict:
        return {"index": self.index, "requested_per_s": self.requested,
                "achieved_per_s": self.achieved, "load": self.load, "valid": self.valid,
                "why": self.why, "verdict": self.verdict, "slos": self.slos}


@dataclass(frozen=True)
class Point:
    """One tier at one fleet size: the sweep's steps and where it turned."""
    tier: str
    units: int
    dcs: tuple[str, ...]
    run_id: str
    run_verdict: str
    steps: tuple[Step, ...]
    capacity: float | None        # the last valid step that held
    capacity_sd: float
    knee: float | None            # the first valid step that broke (None: none did)
    limit: str                    # "knee" | "generator" | "sweep" | "none"
    words: str

    def to_dict(self) -> dict:
        return {"tier": self.tier, "units": self.units, "dcs": list(self.dcs), "run_id": self.run_id,
                "run_verdict": self.run_verdict, "capacity": self.capacity,
                "capacity_sd": self.capacity_sd, "knee": self.knee, "limit": self.limit,
                "words": self.words, "steps": [s.to_dict() for s in self.steps]}


def sub_target(target: Target, dcs: Sequence[str]) -> Target:
    """The target as clients of ``dcs`` see it: the tiers' units elsewhere (gateways and
    edges of the reference stack) left out."""
    kinds = set(tier_kinds(target))
    keep = {n: s for n, s in target.services.items() if s.kind not in kinds or s.dc in dcs}
    return replace(target, dcs=tuple(dcs), services=keep)


def sweep_steps(tier: Tier, units: int, plan: Plan) -> tuple[float, ...]:
    steps = [min(r * units, MAX_RATE) for r in plan.steps_for(tier)]
    if plan.max_rate_per_s is not None:
        steps = [min(r, plan.max_rate_per_s) for r in steps]
    return tuple(float(r) for r in sorted(set(steps)))


def experiment(tier: Tier, units: int, plan: Plan) -> Experiment:
    sw = Sweep("join_storm", "rate", sweep_steps(tier, units, plan), step_s=plan.step_s,
               gap_s=plan.gap_s, params={"hold_s": tier.hold_s}, unit="joins/s", stop_at_break=True)
    return Experiment(
        name=f"readiness-{tier.name}-{units}u",
        expects=f"the {tier.name} path holds its SLOs ({', '.join(tier.slos)}) up to its knee "
                f"with {units} unit(s)",
        # the tier's own SLOs are the steady state: they gate the run and stop the sweep
        steady_state=tuple(DEFAULTS[name] for name in tier.slos),
        sweep=sw, before_s=3.0, after_s=3.0, recover_s=1.0,
        audience=Audience(listeners=plan.listeners_per_unit * units, thick_per_dc=0,
                          join_every_s=1.0))


def _step_validity(storm: jm.Storm | None, requested: float) -> tuple[bool, str, float | None]:
    """Did the generator fire the step's schedule, on time? (Its arrivals are Poisson, so the
    schedule's own count, not the nominal rate, is what it had to fire.)"""
    if storm is None:
        return False, "the generator reported nothing for this step", None
    achieved = float(storm.achieved_rate_per_s or 0.0)
    arrivals, fired = int(storm.arrivals or 0), int(storm.fired or 0)
    late = storm.lateness_p99_s
    if arrivals and fired < MIN_ACHIEVED_SHARE * arrivals:
        return False, (f"the generator fired {fired} of the {arrivals} arrivals scheduled at "
                       f"{requested:g} joins/s (under {MIN_ACHIEVED_SHARE:.0%})"), achieved
    span = float(storm.scheduled_s or 0.0)
    # a Poisson schedule of n arrivals may fall short of the rate by chance (3 sd: 3/sqrt(n))
    floor = 1.0 - max(1.0 - MIN_ACHIEVED_SHARE, 3.0 / math.sqrt(max(requested * span, 1.0)))
    if span > 0 and achieved < floor * requested:
        return False, (f"the generator fired {fmt.sig(achieved, 4)} joins/s of the {requested:g} requested "
                       f"(under {floor:.0%})"), achieved
    if late is not None and late > MAX_LATENESS_P99_S:
        return False, (f"the generator was behind its schedule at {requested:g} joins/s (lateness "
                       f"p99 {fmt.sig(late)} s, limit {MAX_LATENESS_P99_S} s)"), achieved
    return True, "", achieved


def steps_of(journal: Journal | dict, tier: Tier) -> list[Step]:
    """Each sweep step of a run (its typed journal; a dict is read into it): its load, the
    generator's validity, the tier's SLOs."""
    from chaos.report.schema import typed
    journal = typed(journal)
    bp = journal.breaking_point or jm.BreakingPoint()
    storms = sorted(journal.storms or [], key=lambda s: s.started_ns or 0)
    stopped = _stopped_at(journal, tier)
    out = []
    for i, row in enumerate(bp.steps or []):
        requested = float(row.value)
        storm = storms[i] if i < len(storms) else None
        valid, why, achieved = _step_validity(storm, requested)
        load = achieved if tier.load == "rate" else (
            float(storm.peak_concurrent) if storm is not None and storm.peak_concurrent is not None else None)
        slos = dict(row.slos or {})
        verdicts = [(slos.get(name) or jm.StepSlo()).verdict for name in tier.slos]
        held = None if any(v not in (Verdict.PASSED, Verdict.FAILED) for v in verdicts) else all(
            v is Verdict.PASSED for v in verdicts)
        if row.label in stopped:
            # the run stopped the sweep here: a window of the step broke the SLO, even if
            # the step as a whole held
            held = False
            for name in stopped[row.label]:
                slos[name] = (slos.get(name) or jm.StepSlo()).amended(
                    verdict=Verdict.FAILED, note="broke in a window of the step")
        out.append(Step(row.index, requested, achieved, load, valid, why, held,
                        {name: None if slos.get(name) is None else slos[name].dump() for name in tier.slos}))
    return out


def _stopped_at(journal: Journal, tier: Tier) -> dict[str, list[str]]:
    """The step where the run stopped the sweep (its live, windowed judgement), and the SLOs."""
    out: dict[str, list[str]] = {}
    for e in journal.events:
        m = _STOPPED.match(str(e.message or "")) if e.kind == "step" else None
        if m and m.group(1) in tier.slos:
            out.setdefault(m.group(2), []).append(m.group(1))
    return out


_STOPPED = re.compile(r"^sweep stopped: (\w+) broke at (.+); later steps not run$")


def point_of(journal: Journal | dict, tier: Tier, units: int, dcs: Sequence[str],
             capped_at: float | None = None) -> Point:
    """Where a run's sweep turned (from its typed journal; a dict is read into it): capacity,
    knee and what limited it, in words. ``capped_at``: the generator's cap, when it clipped
    the sweep's steps."""
    from chaos.report.schema import typed
    journal = typed(journal)
    steps = steps_of(journal, tier)
    good = [s for s in steps if s.valid and s.held and s.load is not None]
    broke = [s for s in steps if s.valid and s.held is False]
    invalid = [s for s in steps if not s.valid]
    first_broken = broke[0] if broke else None
    below = [s for s in good if first_broken is None or s.index < first_broken.index]
    capacity = below[-1].load if below else None
    knee = first_broken.load if first_broken else None
    unit = tier.unit
    if first_broken is not None:
        limit = "knee"
        lo = capacity if capacity is not None else 0.0
        # the capacity lies somewhere in the bracket to the knee: a uniform's sd
        sd = max((knee or lo) - lo, 0.0) / math.sqrt(12) if knee is not None else 0.0
        words = (f"{tier.name} with {units} unit(s) held to {fmt.sig(lo, 4)} {unit} and broke at "
                 f"{fmt.sig(knee, 4)} {unit} ({', '.join(n for n, e in first_broken.slos.items() if e and e.get('verdict') == 'failed')})")
    elif journal.verdict in (Verdict.INCONCLUSIVE, Verdict.ABORTED) and "join_storm" in str(journal.reason):
        # the run ended early because the generator itself could not start or keep up
        limit = "generator"
        sd = 0.0
        words = (f"{tier.name} with {units} unit(s) held to {fmt.sig(capacity or 0, 4)} {unit}; then the "
                 f"generator was the limit: {journal.reason}")
    elif capped_at is not None:
        limit = "generator"
        sd = 0.0
        words = (f"{tier.name} with {units} unit(s) held to {fmt.sig(capacity or 0, 4)} {unit}; the generator "
                 f"was the limit: it is capped at {capped_at:g} joins/s. The stack's capacity is at "
                 "least that")
    elif invalid and (not good or invalid[-1].index > good[-1].index):
        limit = "generator"
        sd = 0.0
        words = (f"{tier.name} with {units} unit(s) held to {fmt.sig(capacity or 0, 4)} {unit}; beyond it "
                 f"the generator was the limit: {invalid[0].why}. The stack's capacity is at least that")
    elif good:
        limit = "sweep"
        sd = 0.0
        words = (f"{tier.name} with {units} unit(s) held at every step, up to {fmt.sig(capacity, 4)} {unit}: "
                 "the knee is above the sweep (a lower bound)")
    else:
        limit = "none"
        sd = 0.0
        words = (f"{tier.name} with {units} unit(s): nothing was measured "
                 f"(run {journal.verdict}: {journal.reason})")
    return Point(tier.name, units, tuple(dcs), journal.run_id or "", str(journal.verdict or ""),
                 tuple(steps), capacity, sd, knee, limit, words)


def measure_tier(state: StackState, tier: Tier, units: int, plan: Plan, reports_dir: str | Path,
                 progress: Callable[[float, float, str], None] | None = None) -> Point:
    from chaos.runner import run
    dcs = tuple(state.topology.dcs[:units])
    sub = replace(state, topology=sub_target(state.topology, dcs))
    result = run(experiment(tier, units, plan), sub, reports_dir, progress=progress,
                 reproduce="chaos readiness (a capacity sweep)")
    cap = plan.max_rate_per_s
    clipped = cap is not None and any(r * units > cap for r in plan.steps_for(tier))
    return point_of(result.record, tier, units, dcs, cap if clipped else None)


@dataclass(frozen=True)
class LossRun:
    dc: str
    rate_per_s: float
    run_id: str
    verdict: str
    reason: str
    broke_elsewhere: dict          # SLO -> the surviving DCs where it broke
    held: bool | None
    required_per_s: float | None = None    # what the survivors must carry (None: not stated)

    def short_of_load(self) -> bool:
        """The run arrived at less than the survivors must carry (a load cap clipped it)."""
        return self.required_per_s is not None and self.rate_per_s < 0.99 * self.required_per_s

    def to_dict(self) -> dict:
        return {"dc": self.dc, "rate_per_s": self.rate_per_s, "required_per_s": self.required_per_s,
                "run_id": self.run_id, "verdict": self.verdict, "reason": self.reason,
                "broke_elsewhere": self.broke_elsewhere, "held": self.held}


def loss_experiment(dc: str, rate_per_s: float, plan: Plan) -> Experiment:
    return Experiment(
        name=f"readiness-dc-loss-{dc}",
        expects=f"{dc} is lost under an arriving audience ({fmt.quantity(rate_per_s, 'joins/s')}); the other "
                "DCs keep joining and the audience comes back",
        method=[fault("join_storm", at_s=0.0, duration_s=plan.loss_s + 4.0, rate=rate_per_s),
                fault("dc_loss", dc=dc, at_s=2.0, duration_s=plan.loss_s, mode="kill")],
        steady_state=(DEFAULTS["join_time"],),    # the failover's question: joins and who comes back
        during=[objective("join_time", threshold=5.0)],
        after=[objective("audience_retained")],
        before_s=4.0, after_s=8.0, recover_s=3.0,
        audience=Audience(listeners=3 * len(plan.units), thick_per_dc=0, join_every_s=1.0))


def measure_loss(state: StackState, dc: str, rate_per_s: float, plan: Plan,
                 reports_dir: str | Path, progress=None, required_per_s: float | None = None) -> LossRun:
    from chaos.runner import run
    result = run(loss_experiment(dc, rate_per_s, plan), state, reports_dir, progress=progress,
                 reproduce=f"chaos readiness --survive dc_loss (dc_loss of {dc})")
    return loss_of(result.record, dc, rate_per_s, required_per_s)


def loss_of(journal: Journal | dict, dc: str, rate_per_s: float,
            required_per_s: float | None = None) -> LossRun:
    """The dc_loss run's result (from its typed journal; a dict is read into it): the SLOs
    that broke in the surviving DCs, and whether the failover held."""
    from chaos.report.schema import typed
    journal = typed(journal)
    broke: dict[str, list[str]] = {}
    for s in journal.slos:
        if not s.required or s.phase not in (Phase.DURING, Phase.AFTER):
            continue
        bad = sorted(d for d, v in (s.per_dc or {}).items() if d != dc and v.verdict is Verdict.FAILED)
        if bad:
            broke[f"{s.name} ({s.phase})"] = bad
    v = journal.verdict
    held = True if v is Verdict.PASSED else (False if v is Verdict.FAILED else None)
    rate = rate_per_s if math.isfinite(rate_per_s) else 0.0
    return LossRun(dc, rate, journal.run_id or "", str(v or ""), journal.reason or "", broke, held,
                   required_per_s)
