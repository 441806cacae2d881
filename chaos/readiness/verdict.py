"""The verdict: a pure function of the demand, the fleet and what was measured.

Per tier, the capacity measured at 1..n units is fitted (USL) and projected to the
production fleet, whole and without its largest DC (N-1), as a band: the capacity
+- BAND_SIGMAS of its uncertainty, its top no higher than linear scaling from a measured
fleet size allows (the USL's throughput per unit never rises with the fleet), its foot no
lower than a capacity measured at that size as "at least". Each fleet size's band is
judged against the demand (``band_verdict``), the worse of whole and N-1 counting:

- NO-GO: the band's top does not reach the demand; or a single point of failure confirmed
  by the dc_loss run (clients of the surviving DCs broke), or a failover that did not hold;
  with the fleet that would be needed;
- GO: the band's foot clears the demand with the headroom wanted, the band no wider than
  MAX_RELATIVE_BAND of the capacity, and the projection no further than MAX_EXTRAPOLATION
  times the largest fleet measured;
- GO-AT-RISK: the band's foot takes the demand, without the headroom wanted;
- INCONCLUSIVE: the band straddles the demand, is too wide to call GO, or reaches further
  past the data than MAX_EXTRAPOLATION (NO-GO still stands there: linear scaling bounds
  it); or something was not measured; always with what to measure next.

With one fleet size measured the fit is linear (sigma = kappa = 0, the kindest scaling),
and the tier's words say it is assumed.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from enum import StrEnum

from chaos.core.exits import Exit
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


EXIT_CODES = {Readiness.GO: Exit.OK, Readiness.NO_GO: Exit.NO, Readiness.GO_AT_RISK: Exit.AT_RISK,
              Readiness.INCONCLUSIVE: Exit.INCONCLUSIVE}

BAND_SIGMAS = 1.0          # the band judged: the capacity +- this many standard deviations
MAX_EXTRAPOLATION = 4.0    # a projection past this many times the largest fleet measured is no evidence
MAX_RELATIVE_BAND = 0.5    # a band whose foot lies further than this share below the capacity is too
                           # wide to call GO (the delta method's band means little there)


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
    capacity_lo: float | None = None     # the band judged, whole fleet (hi: inf for "at least")
    capacity_hi: float | None = None
    capacity_n1_lo: float | None = None
    capacity_n1_hi: float | None = None
    assumed_linear: bool = False         # one fleet size measured: sigma = kappa = 0 assumed
    times_beyond: float = 0.0            # the fleet size / the largest measured (the worse side)
    next_step: str = ""                  # what to measure next (INCONCLUSIVE)

    def binding_headroom(self) -> float | None:
        return self.headroom_n1 if self.headroom_n1 is not None else self.headroom

    def binding_band(self) -> tuple[float, float] | None:
        """The band (foot, top) of the fleet size that binds: N-1 when asked, else the whole."""
        if self.capacity_n1_lo is not None:
            return self.capacity_n1_lo, self.capacity_n1_hi if self.capacity_n1_hi is not None else math.inf
        if self.capacity_lo is not None:
            return self.capacity_lo, self.capacity_hi if self.capacity_hi is not None else math.inf
        return None

    def foot_headroom(self) -> float | None:
        """The headroom at the binding band's foot: what GO is judged by."""
        b = self.binding_band()
        return None if b is None else b[0] / self.demand - 1

    def to_dict(self) -> dict:
        return {"tier": self.tier, "unit": self.unit, "slo": TIER_SLO.get(self.tier, ""),
                "demand": self.demand, "units": self.units, "units_n1": self.units_n1,
                "lost_dc": self.lost_dc, "usl": self.fit.to_dict() if self.fit else None,
                "capacity": self.capacity, "capacity_sd": self.capacity_sd,
                "capacity_n1": self.capacity_n1, "capacity_n1_sd": self.capacity_n1_sd,
                "headroom": self.headroom, "headroom_n1": self.headroom_n1,
                "lower_bound": self.lower_bound, "limit": self.limit_words, "beyond_data": self.beyond,
                "needed_units": self.needed_units, "needed_per_dc": self.needed_per_dc,
                "capacity_band": _band(self.capacity_lo, self.capacity_hi),
                "capacity_n1_band": _band(self.capacity_n1_lo, self.capacity_n1_hi),
                "capacity_text": self.capacity_text(), "capacity_n1_text": self.capacity_text(n1=True),
                "headroom_text": fmt.share(self.headroom), "headroom_n1_text": fmt.share(self.headroom_n1),
                "assumed_linear": self.assumed_linear, "times_beyond_data": self.times_beyond,
                "verdict": str(self.verdict), "why": self.why, "next_step": self.next_step}

    def capacity_text(self, n1: bool = False) -> str:
        """The capacity as the reports write it: '944 ± 900 joins/s', 'at least 230 joins/s'."""
        c, sd, hi = ((self.capacity_n1, self.capacity_n1_sd, self.capacity_n1_hi) if n1 else
                     (self.capacity, self.capacity_sd, self.capacity_hi))
        lo = self.capacity_n1_lo if n1 else self.capacity_lo
        if c is None:
            return "-"
        if hi is not None and math.isinf(hi):
            return f"at least {fmt.quantity(lo if lo is not None else c, self.unit)}"
        return fmt.band(c, sd, self.unit)


def _band(lo: float | None, hi: float | None) -> list | None:
    """A band for readiness.json: [lo, hi], hi None for 'at least lo'."""
    if lo is None:
        return None
    return [lo, None if hi is None or math.isinf(hi) else hi]


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


def _kindest(points: Sequence[Point], units: int) -> float:
    """The most a fleet of ``units`` can take by the USL: its throughput per unit never rises
    with the fleet (sigma, kappa >= 0), so each fleet size measured at or below ``units``,
    scaled linearly from the top of its band, bounds it from above."""
    caps = [(p.capacity + max(p.capacity_sd, 0.02 * p.capacity)) / p.units * units for p in points
            if p.capacity is not None and p.limit == "knee" and 0 < p.units <= units]   # sd floor: usl.fit's
    return min(caps, default=math.inf)


def band_verdict(lo: float, hi: float, demand: float, headroom: float) -> Readiness:
    """The class of a capacity band [lo, hi] against the demand: GO only when the lower end
    clears the demand with the headroom wanted, NO-GO only when the upper end does not reach
    the demand; GO-AT-RISK when the lower end takes the demand without that headroom, and
    INCONCLUSIVE when the band straddles the demand."""
    if hi < demand:
        return Readiness.NO_GO
    if lo >= demand * (1 + headroom):
        return Readiness.GO
    if lo >= demand:
        return Readiness.GO_AT_RISK
    return Readiness.INCONCLUSIVE


_WORST = (Readiness.NO_GO, Readiness.INCONCLUSIVE, Readiness.GO_AT_RISK, Readiness.GO)


@dataclass(frozen=True)
class _Side:
    """One fleet size judged: the whole fleet, or N-1."""
    units: int
    cap: float
    sd: float
    lo: float
    hi: float
    times: float                # how far beyond the largest fleet measured (<= 1: within)
    verdict: Readiness
    why: str
    next: str


def _side(tier: str, t: Tier, f: usl.Fit, points: Sequence[Point], units: int, demand: float,
          headroom: float, which: str, lower: bool, floor: dict[int, float], largest: int) -> _Side:
    if units == 0:
        return _Side(0, 0.0, 0.0, 0.0, 0.0, 0.0, Readiness.NO_GO,
                     f"{tier} {which} has no units left against a demand of "
                     f"{fmt.quantity(demand, t.unit)}", "")
    c, sd = f.at(units)
    lb = floor.get(units, 0.0)
    if lb >= c:                  # measured at this size as "at least lb": that is the band's foot
        c, sd = lb, 0.0
    lo = max(c - BAND_SIGMAS * sd, lb, 0.0)
    measured_here = units in f.units or units in floor
    hi = math.inf if lower or units in floor else min(c + BAND_SIGMAS * sd, _kindest(points, units))
    times = units / largest
    v = band_verdict(lo, hi, demand, headroom)
    shown = (f"at least {fmt.quantity(lo, t.unit)}" if math.isinf(hi)
             else fmt.band(c, sd, t.unit) + f" (band {fmt.sig(lo)} to {fmt.sig(hi)})")
    head = (f"{fmt.share(lo / demand - 1)} at the band's foot" if math.isinf(hi) else
            f"{fmt.share(c / demand - 1)}, {fmt.share(lo / demand - 1)} at the band's foot")
    want = fmt.quantity(demand * (1 + headroom), t.unit)
    base = f"{tier} capacity {which} is {shown} against a demand of {fmt.quantity(demand, t.unit)}"
    nxt = ""
    if v is Readiness.NO_GO:
        why = f"{base}: even the band's top does not reach it"
    elif v is Readiness.GO:
        why = f"{base}: headroom {head} (wanted {fmt.share(headroom, signed=False)})"
    elif v is Readiness.GO_AT_RISK:
        why = (f"{base}: headroom {head}, below the {fmt.share(headroom, signed=False)} wanted "
               f"({want})")
    elif math.isinf(hi):
        gen = any(p.limit == "generator" for p in points)
        why = (f"{base}: " + ("the generator was the limit, not the stack" if gen else
                              "the sweep stopped below the knee") + "; the knee was not measured")
    else:
        why = f"{base}: the band straddles the demand"
    wide = not math.isinf(hi) and c > 0 and (c - lo) / c > MAX_RELATIVE_BAND
    if v is Readiness.GO and wide:
        v = Readiness.INCONCLUSIVE
        why = (f"{base}: the band is too wide to call GO (its foot {fmt.share((c - lo) / c, signed=False)} "
               f"below the capacity; at most {fmt.share(MAX_RELATIVE_BAND, signed=False)} may be)")
    if v is not Readiness.NO_GO and not measured_here and times > MAX_EXTRAPOLATION:
        v = Readiness.INCONCLUSIVE
        why = (f"{base}, but projected to {units} units: {fmt.sig(times)} times the largest fleet "
               f"measured ({largest}), beyond the {MAX_EXTRAPOLATION:g}x a projection may reach")
        nxt = (f"measure at {math.ceil(units / MAX_EXTRAPOLATION)} units or more (a projection to "
               f"{units} may reach {MAX_EXTRAPOLATION:g}x past the data)")
    if v is Readiness.INCONCLUSIVE and not nxt:
        gen = any(p.limit == "generator" for p in points)
        if lower and gen:
            nxt = (f"measure with a generator that fires more than the {fmt.quantity(lo, t.unit)} "
                   "reached (the generator, not the stack, was the limit)")
        elif lower:
            nxt = f"sweep past {fmt.quantity(lo, t.unit)} until a step breaks (the knee was not reached)"
        elif measured_here:
            nxt = (f"sweep {units} units again with finer steps near the knee, to narrow its bracket "
                   f"(± {fmt.sig(sd, 2)} {t.unit})")
        else:
            nxt = (f"measure at {units} units, or at more fleet sizes nearer it (the fit rests on "
                   f"{', '.join(str(u) for u in f.units)})")
    return _Side(units, c, sd, lo, hi, times, v, why, nxt)


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
            why = (f"{tier} broke at the sweep's first step ({fmt.quantity(p.knee, t.unit)} with "
                   f"{p.units} unit(s)); even scaled linearly to {n} units that is "
                   f"{fmt.quantity(ub, t.unit)}, below the demand of {fmt.quantity(demand_value, t.unit)}")
            return TierResult(tier, t.unit, demand_value, n, n1, lost, None, ub, 0.0, None, 0.0,
                              ub / demand_value - 1, None, False, limits, "", None, None,
                              Readiness.NO_GO, why, capacity_lo=0.0, capacity_hi=ub)
    if f is None or n == 0:
        why = (f"{tier}: no capacity measured: " + limits) if f is None else \
            f"the fleet has no {key}; give them in the fleet file"
        nxt = (f"sweep the {tier} tier at 1 unit or more" if f is None else
               f"give the fleet's {key} per DC (--fleet FILE)")
        return TierResult(tier, t.unit, demand_value, n, n1, lost, f, None, 0.0, None, 0.0, None,
                          None, lower, limits, "", None, None, Readiness.INCONCLUSIVE, why,
                          next_step=nxt)
    # a lower bound measured at a fleet size (the generator, not the stack, stopped there)
    # is evidence too: the capacity there is at least that
    floor = {p.units: p.capacity for p in points
             if p.limit in ("generator", "sweep") and p.capacity is not None}
    largest = max([*f.units, *floor])
    linear = len(set(f.units)) == 1
    whole = _side(tier, t, f, points, n, demand_value, headroom, "with the whole fleet", lower,
                  floor, largest)
    sides = [whole]
    if n1 is not None:
        sides.append(_side(tier, t, f, points, n1, demand_value, headroom, f"without {lost}",
                           lower, floor, largest))
    worst = min(sides, key=lambda s: (_WORST.index(s.verdict), s.lo))
    n1s = sides[1] if n1 is not None else None
    head = whole.cap / demand_value - 1
    head_n1 = n1s.cap / demand_value - 1 if n1s is not None else None
    beyond = f.beyond(n)
    need = f.units_for(demand_value * (1 + headroom))
    if need is not None and survive and ndcs > 1:
        per_dc = math.ceil(need / (ndcs - 1))
        need_total = per_dc * ndcs
    else:
        per_dc = math.ceil(need / ndcs) if need is not None else None
        need_total = per_dc * ndcs if per_dc is not None else None   # a fleet is per DC
    why = worst.why
    if linear:
        u = f.units[0]
        assumed = (f"assumed linear: one fleet size measured ({u} unit{'s' if u != 1 else ''}), "
                   "so sigma and kappa are taken as 0, the kindest scaling")
        why = f"{why}; {assumed}"
        beyond = f"{beyond}; {assumed}" if beyond else assumed
    v = worst.verdict
    return TierResult(tier, t.unit, demand_value, n, n1, lost, f, whole.cap, whole.sd,
                      n1s.cap if n1s else None, n1s.sd if n1s else 0.0, head, head_n1, lower,
                      limits, beyond, need_total, per_dc, v, why,
                      capacity_lo=whole.lo, capacity_hi=whole.hi,
                      capacity_n1_lo=n1s.lo if n1s else None, capacity_n1_hi=n1s.hi if n1s else None,
                      assumed_linear=linear, times_beyond=max(s.times for s in sides),
                      next_step=worst.next if v is Readiness.INCONCLUSIVE else "")


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
    where = (f"; its sweeps broke at "
             + ", ".join(f"{fmt.quantity(p.knee, t.unit)} with {p.units} unit(s)" for p in knees)
             if knees else "; no sweep reached its knee")
    return f"the {t.tier} tier's {slos} breaks first (headroom {fmt.share(t.binding_headroom())}){where}"


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
    reasons += [t.why + (f"; next: {t.next_step}" if t.next_step else "") for t in tiers]
    loss_unsure = ""
    if survive and loss is None:
        loss_unsure = ("one DC must be survivable, but no dc_loss run was measured; next: run "
                       "readiness with --survive dc_loss and a budget that reaches it")
    elif survive and loss.held is None:
        loss_unsure = (f"the dc_loss run of {loss.dc} judged nothing ({loss.verdict}: {loss.reason}); "
                       "next: run it again")
    elif survive and loss.held and loss.short_of_load():
        loss_unsure = (f"the failover held when {loss.dc} was lost, but at "
                       f"{fmt.quantity(loss.rate_per_s, 'joins/s')} of the "
                       f"{fmt.quantity(loss.required_per_s, 'joins/s')} the survivors must carry "
                       "(the generator's cap); next: measure it with a generator that fires that much")
    if loss_unsure:
        reasons.append(loss_unsure)
    if confirmed or (survive and loss is not None and loss.held is False) or no_go:
        v = Readiness.NO_GO
    elif unsure or loss_unsure:
        v = Readiness.INCONCLUSIVE
    elif risky:
        v = Readiness.GO_AT_RISK
    else:
        v = Readiness.GO
    ranked = sorted((t for t in tiers if t.foot_headroom() is not None), key=lambda t: t.foot_headroom())
    binding = None
    if ranked:
        b = ranked[0]
        binding = {"tier": b.tier, "slo": TIER_SLO.get(b.tier, ""),
                   "dc": f"without {b.lost_dc}" if b.lost_dc else "all DCs",
                   "headroom": b.binding_headroom(), "headroom_at_band_foot": b.foot_headroom()}
    sentence = _sentence(v, tiers, confirmed, loss, binding, loss_unsure)
    return Verdict(v, sentence, tuple(tiers), binding, _first_break(points, tiers), tuple(confirmed or spofs),
                   loss, tuple(reasons))


def _sentence(v: Readiness, tiers, confirmed, loss, binding, loss_unsure: str = "") -> str:
    if confirmed:
        names = " and ".join(f"{s.kind} ({s.service})" for s in confirmed)
        return (f"NO-GO: losing {confirmed[0].dc} stops the event, because {names} "
                f"live{'s' if len(confirmed) == 1 else ''} only there; no fleet size fixes that.")
    if v is Readiness.NO_GO and loss is not None and loss.held is False:
        return f"NO-GO: the failover did not hold when {loss.dc} was lost under load."
    if v is Readiness.NO_GO:
        t = min((t for t in tiers if t.verdict is Readiness.NO_GO),
                key=lambda t: t.binding_band()[1] / t.demand if t.binding_band() else t.headroom or 0.0)
        band = t.binding_band()
        top = band[1] if band is not None else t.capacity
        which = f"without {t.lost_dc}" if t.lost_dc else "with the whole fleet"
        need = (f"; it would need about {t.needed_units} units ({t.needed_per_dc} per DC)"
                if t.needed_units else "; no fleet of this design reaches it (the curve peaks below)")
        return (f"NO-GO: the {t.tier} tier {which} can take at most {fmt.quantity(top, t.unit)} "
                f"(the top of its band) against a demand of {fmt.quantity(t.demand, t.unit)}{need}.")
    if v is Readiness.INCONCLUSIVE:
        t = next((t for t in tiers if t.verdict is Readiness.INCONCLUSIVE), None)
        if t is None:
            return f"INCONCLUSIVE: {loss_unsure}."
        return f"INCONCLUSIVE: {t.why}" + (f"; next: {t.next_step}." if t.next_step else ".")
    foot = binding["headroom_at_band_foot"] if binding else 0.0
    where = f"{binding['tier']} tier, {binding['dc']}" if binding else ""
    linear = [t.tier for t in tiers if t.assumed_linear]
    assumed = (f" The {' and '.join(linear)} tier's scaling is assumed linear: one fleet size "
               "was measured." if linear else "")
    if v is Readiness.GO_AT_RISK:
        return (f"GO-AT-RISK: the event fits, with only {fmt.share(foot)} headroom at the foot of "
                f"the capacity band on the {where}.{assumed}")
    return (f"GO: the event fits with {fmt.share(foot)} headroom at the foot of the capacity band "
            f"at the tightest point ({where}).{assumed}")
