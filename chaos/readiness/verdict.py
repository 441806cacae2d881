"""The verdict: a pure function of the demand, the fleet and what was measured.

Per tier, the capacity measured at 1..n units is fitted (USL) and projected to the
production fleet, whole and without its largest DC (N-1); headroom = projected capacity /
demand - 1. Then, in this order:

- NO-GO: a single point of failure confirmed by the dc_loss run (clients of the surviving
  DCs broke), a failover that did not hold, or a tier whose projected capacity is below
  the demand (negative headroom), for the whole fleet or, when one DC must be survivable,
  for N-1; with the fleet that would be needed;
- INCONCLUSIVE: a tier whose capacity is known only as a lower bound below what is needed
  (the generator was the limit, or the sweep stopped below the knee), or not measured;
- GO-AT-RISK: every tier above the demand, but one below the headroom wanted (at the fit's
  lower one-sigma band);
- GO: every tier has the headroom wanted.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from enum import StrEnum

from chaos.core.slo import DEFAULTS, Objective
from chaos.readiness.demand import Demand, Fleet
from chaos.readiness.measure import TIERS, LossRun, Point, Tier, tiers_for
from chaos.report import fmt
from chaos.readiness.spof import Spof
from chaos.readiness import usl


class Readiness(StrEnum):
    GO = "GO"
    GO_AT_RISK = "GO-AT-RISK"
    NO_GO = "NO-GO"
    INCONCLUSIVE = "INCONCLUSIVE"


EXIT_CODES = {Readiness.GO: 0, Readiness.NO_GO: 1, Readiness.GO_AT_RISK: 3, Readiness.INCONCLUSIVE: 4}


def _words(o: Objective) -> str:
    """An objective as the reports say it: 'join_time p95 <= 2 s', 'audio_delivered >= 99.5 %'."""
    stat = f" {o.stat}" if o.stat.startswith("p") else ""
    return f"{o.sli}{stat} {o.op} {fmt.value(o.sli, o.unit, o.threshold)}"


# what each tier's steps must hold: the SLO registry's defaults (the sweeps judge by them)
TIER_SLO = {name: ", ".join(_words(DEFAULTS[sli]) for sli in t.slos) for name, t in TIERS.items()}


@dataclass(frozen=True)
class TierResult:
    tier: str
    unit: str
    demand: float
    units: int                       # the production fleet's units of this tier
    units_n1: int | None             # without the lost DC (None: not asked)
    lost_dc: str | None
    fit: usl.Fit | None
    capacity: float | None           # projected, whole fleet
    capacity_sd: float
    capacity_n1: float | None
    capacity_n1_sd: float
    headroom: float | None           # capacity / demand - 1
    headroom_n1: float | None
    lower_bound: bool                # capacity known only as "at least"
    limit_words: str
    beyond: str                      # words for a projection beyond the data
    needed_units: int | None         # for GO at the headroom wanted (N-1 if survivable)
    needed_per_dc: int | None
    verdict: Readiness
    why: str

    def binding_headroom(self) -> float | None:
        return self.headroom_n1 if self.headroom_n1 is not None else self.headroom

    def to_dict(self) -> dict:
        return {"tier": self.tier, "unit": self.unit, "slo": TIER_SLO.get(self.tier, ""),
                "demand": self.demand, "units": self.units, "units_n1": self.units_n1,
                "lost_dc": self.lost_dc, "usl": self.fit.to_dict() if self.fit else None,
                "capacity": self.capacity, "capacity_sd": self.capacity_sd,
                "capacity_n1": self.capacity_n1, "capacity_n1_sd": self.capacity_n1_sd,
                "headroom": self.headroom, "headroom_n1": self.headroom_n1,
                "lower_bound": self.lower_bound, "limit": self.limit_words, "beyond_data": self.beyond,
                "needed_units": self.needed_units, "needed_per_dc": self.needed_per_dc,
                "verdict": str(self.verdict), "why": self.why}


def _fit(points: Sequence[Point]) -> usl.Fit | None:
    measured = [p for p in points if p.capacity is not None and p.capacity > 0]
    knees = [p for p in measured if p.limit == "knee"]
    if len({p.units for p in knees}) >= 2:    # lower bounds are not capacities: fit the knees
        measured = knees
    if not measured:
        return None
    if len({p.units for p in measured}) >= 2:
        return usl.fit([p.units for p in measured], [p.capacity for p in measured],
                       [p.capacity_sd for p in measured])
    p = max(measured, key=lambda p: p.units)
    return usl.linear(p.units, p.capacity, p.capacity_sd)


def tier_result(tier: str, points: Sequence[Point], demand_value: float, fleet: Fleet,
                headroom: float, survive: bool, t: Tier | None = None) -> TierResult:
    t = t or tiers_for(None)[tier]
    key = t.fleet_key
    n = fleet.units(key)
    lost = fleet.largest_dc(key) if survive else None
    n1 = fleet.units(key, without_dc=lost) if survive else None
    ndcs = max(1, len([dc for dc, u in fleet.per_dc.items() if u.get(key, 0) > 0]))
    f = _fit(points)
    fitted = set(f.units) if f is not None else set()
    lower = any(p.limit in ("generator", "sweep") for p in points
                if p.capacity is not None and p.units in fitted) \
        or not any(p.limit == "knee" for p in points)
    limits = "; ".join(p.words for p in points)
    knees = [p for p in points if p.capacity is None and p.knee is not None]
    if f is None and knees and n:
        # broke at the first step: the knee, scaled linearly (the kindest projection), bounds it
        p = max(knees, key=lambda p: p.units)
        ub = p.knee / p.units * n
        if ub < demand_value:
            why = (f"{tier} broke at the sweep's first step ({p.knee:.4g} {t.unit} with {p.units} "
                   f"unit(s)); even scaled linearly to {n} units that is {ub:.4g}, below the demand "
                   f"of {demand_value:.4g}")
            return TierResult(tier, t.unit, demand_value, n, n1, lost, None, ub, 0.0, None, 0.0,
                              ub / demand_value - 1, None, False, limits, "", None, None,
                              Readiness.NO_GO, why)
    if f is None or n == 0:
        why = (f"{tier}: no capacity measured: " + limits) if f is None else \
            f"the fleet has no {key}; give them in the fleet file"
        return TierResult(tier, t.unit, demand_value, n, n1, lost, f, None, 0.0, None, 0.0, None,
                          None, lower, limits, "", None, None, Readiness.INCONCLUSIVE, why)
    # a lower bound measured at a fleet size (the generator, not the stack, stopped there)
    # is evidence too: the capacity there is at least that
    floor = {p.units: p.capacity for p in points
             if p.limit in ("generator", "sweep") and p.capacity is not None}

    def at(units: int) -> tuple[float, float, float]:
        c, sd = f.at(units)
        lb = floor.get(units, 0.0)
        return max(c, lb), sd, max(c - sd, lb)
    cap, cap_sd, cap_lo = at(n)
    cap_n1, cap_n1_sd, cap_n1_lo = at(n1) if n1 else (None, 0.0, 0.0)
    if n1 == 0:
        cap_n1, cap_n1_sd = 0.0, 0.0
    head = cap / demand_value - 1
    head_n1 = cap_n1 / demand_value - 1 if cap_n1 is not None else None
    beyond = f.beyond(n)
    need = f.units_for(demand_value * (1 + headroom))
    if need is not None and survive and ndcs > 1:
        per_dc = math.ceil(need / (ndcs - 1))
        need_total = per_dc * ndcs
    else:
        per_dc = math.ceil(need / ndcs) if need is not None else None
        need_total = per_dc * ndcs if per_dc is not None else None   # a fleet is per DC
    binding = head_n1 if head_n1 is not None else head
    binding_cap = cap_n1 if cap_n1 is not None else cap
    low = (cap_n1_lo if cap_n1 is not None else cap_lo) / demand_value - 1
    which = "without " + lost if cap_n1 is not None else "with the whole fleet"
    if binding < 0 and not lower:
        v = Readiness.NO_GO
        why = (f"{tier} capacity {which} is {binding_cap:.4g} {t.unit} against a demand of "
               f"{demand_value:.4g}: headroom {binding:+.0%}")
    elif binding < headroom and lower:
        v = Readiness.INCONCLUSIVE
        gen = any(p.limit == "generator" for p in points)
        why = (f"{tier} capacity {which} is at least {binding_cap:.4g} {t.unit} (needed "
               f"{demand_value * (1 + headroom):.4g}): "
               + ("the generator was the limit, not the stack" if gen else
                  "the sweep stopped below the knee") + "; the knee was not measured")
    elif low < headroom:
        v = Readiness.GO_AT_RISK
        why = (f"{tier} headroom {which} is {binding:+.0%} ({low:+.0%} at the fit's lower band), "
               f"below the {headroom:.0%} wanted")
    else:
        v = Readiness.GO
        why = f"{tier} headroom {which} is {binding:+.0%} (wanted {headroom:.0%})"
    return TierResult(tier, t.unit, demand_value, n, n1, lost, f, cap, cap_sd, cap_n1, cap_n1_sd,
                      head, head_n1, lower, limits, beyond, need_total, per_dc, v, why)


@dataclass(frozen=True)
class Verdict:
    verdict: Readiness
    sentence: str                    # one sentence a manager can read
    tiers: tuple[TierResult, ...]
    binding: dict | None             # the binding constraint: tier, slo, dc
    first_break: str                 # the first SLO that breaks as load grows
    spofs: tuple[Spof, ...] = ()
    loss: LossRun | None = None
    reasons: tuple[str, ...] = field(default_factory=tuple)

    @property
    def exit_code(self) -> int:
        return EXIT_CODES[self.verdict]

    def to_dict(self) -> dict:
        return {"verdict": str(self.verdict), "exit_code": self.exit_code, "sentence": self.sentence,
                "reasons": list(self.reasons), "binding_constraint": self.binding,
                "first_break": self.first_break, "tiers": [t.to_dict() for t in self.tiers],
                "single_points_of_failure": [s.to_dict() for s in self.spofs],
                "n_minus_1": self.loss.to_dict() if self.loss else None}


def _first_break(points: Sequence[Point], tiers: Sequence[TierResult]) -> str:
    """The SLO that breaks first as the event's load grows: the tier with the least headroom,
    with what its sweeps saw break at their knee."""
    ranked = sorted((t for t in tiers if t.binding_headroom() is not None),
                    key=lambda t: t.binding_headroom())
    if not ranked:
        return "nothing was measured"
    t = ranked[0]
    seen = []
    for p in points:
        if p.tier != t.tier or p.knee is None:
            continue
        step = next((s for s in p.steps if s.valid and s.held is False), None)
        if step is not None:
            seen += [n for n, e in step.slos.items() if e and e.get("verdict") == "failed"]
    slos = ", ".join(dict.fromkeys(seen)) or TIER_SLO.get(t.tier, t.tier)
    knees = [p for p in points if p.tier == t.tier and p.knee is not None]
    where = (f"; its sweeps broke at {', '.join(f'{p.knee:.4g} {t.unit} with {p.units} unit(s)' for p in knees)}"
             if knees else "; no sweep reached its knee")
    return f"the {t.tier} tier's {slos} breaks first (headroom {t.binding_headroom():+.0%}){where}"


def decide(demand: Demand, fleet: Fleet, points: Sequence[Point], headroom: float, survive: bool,
           spofs: Sequence[Spof] = (), loss: LossRun | None = None, target=None) -> Verdict:
    tiers = []
    kinds = tiers_for(target)
    for name, value in (("join", demand.join_rate_per_s), ("fanout", float(demand.audience))):
        pts = [p for p in points if p.tier == name]
        tiers.append(tier_result(name, pts, value, fleet, headroom, survive, kinds[name]))
    reasons: list[str] = []
    confirmed: list[Spof] = []
    if survive and loss is not None and loss.held is False:
        if spofs and loss.broke_elsewhere:
            confirmed = [s for s in spofs if s.dc == loss.dc]
        reasons.append(f"losing {loss.dc} under load broke "
                       + ("; ".join(f"{k} in {', '.join(v)}" for k, v in loss.broke_elsewhere.items())
                          or loss.reason) + f" (run {loss.run_id})")
    if confirmed:
        reasons.insert(0, "single point of failure: " + "; ".join(
            s.describe(target) if target is not None else f"{s.service} in {s.dc}" for s in confirmed))
    no_go = [t for t in tiers if t.verdict is Readiness.NO_GO]
    unsure = [t for t in tiers if t.verdict is Readiness.INCONCLUSIVE]
    risky = [t for t in tiers if t.verdict is Readiness.GO_AT_RISK]
    reasons += [t.why for t in tiers]
    if survive and loss is None:
        unsure_loss = "one DC must be survivable, but no dc_loss run was measured"
        reasons.append(unsure_loss)
    if confirmed or (survive and loss is not None and loss.held is False) or no_go:
        v = Readiness.NO_GO
    elif unsure or (survive and (loss is None or loss.held is None)):
        v = Readiness.INCONCLUSIVE
    elif risky:
        v = Readiness.GO_AT_RISK
    else:
        v = Readiness.GO
    ranked = sorted((t for t in tiers if t.binding_headroom() is not None),
                    key=lambda t: t.binding_headroom())
    binding = None
    if ranked:
        b = ranked[0]
        binding = {"tier": b.tier, "slo": TIER_SLO.get(b.tier, ""),
                   "dc": f"without {b.lost_dc}" if b.lost_dc else "all DCs",
                   "headroom": b.binding_headroom()}
    sentence = _sentence(v, tiers, confirmed, loss, binding)
    return Verdict(v, sentence, tuple(tiers), binding, _first_break(points, tiers), tuple(confirmed or spofs),
                   loss, tuple(reasons))


def _sentence(v: Readiness, tiers, confirmed, loss, binding) -> str:
    if confirmed:
        names = " and ".join(f"{s.kind} ({s.service})" for s in confirmed)
        return (f"NO-GO: losing {confirmed[0].dc} stops the event, because {names} "
                f"live{'s' if len(confirmed) == 1 else ''} only there; no fleet size fixes that.")
    if v is Readiness.NO_GO and loss is not None and loss.held is False:
        return f"NO-GO: the failover did not hold when {loss.dc} was lost under load."
    if v is Readiness.NO_GO:
        t = min((t for t in tiers if t.verdict is Readiness.NO_GO), key=lambda t: t.binding_headroom())
        need = (f"; it would need about {t.needed_units} units ({t.needed_per_dc} per DC)"
                if t.needed_units else "; no fleet of this design reaches it (the curve peaks below)")
        return (f"NO-GO: the {t.tier} tier can take {t.binding_headroom():+.0%} of the demand's load"
                f"{need}.")
    if v is Readiness.INCONCLUSIVE:
        t = next(t for t in tiers if t.verdict is Readiness.INCONCLUSIVE)
        return f"INCONCLUSIVE: {t.why}."
    h = binding["headroom"] if binding else 0.0
    where = f"{binding['tier']} tier, {binding['dc']}" if binding else ""
    if v is Readiness.GO_AT_RISK:
        return f"GO-AT-RISK: the event fits, with only {h:+.0%} headroom on the {where}."
    return f"GO: the event fits with {h:+.0%} headroom at the tightest point ({where})."
