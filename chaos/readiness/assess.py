"""One readiness assessment: measure, decide, write the evidence.

    a = assess(Demand.of(600_000, "50000/min"), survive="dc_loss", quick=True)
    a.verdict.verdict, a.verdict.sentence, a.files["readiness.json"]

Order: the target's single points of failure (from its ``depends``), the join path's
capacity at 1..n units, the fan-out's, then (``survive="dc_loss"``) one DC lost under an
arriving audience. Every measurement is an ordinary run (reports/<run-id>/); the
assessment's own folder, reports/readiness-<time>/, holds readiness.json and
readiness.html naming those runs. A ``budget_s`` stops starting measurements once spent
(what was skipped is said, and a verdict missing a measurement is INCONCLUSIVE).
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from chaos.core.errors import ConfigError
from chaos.faults.kinds.client import MAX_RATE
from chaos.report import fmt
from chaos.targets.state import StackState
from chaos.readiness import spof as spof_mod
from chaos.readiness.demand import Demand, Fleet
from chaos.readiness.measure import LossRun, Plan, Point, measure_loss, measure_tier, tiers_for
from chaos.readiness.verdict import Verdict, decide

SURVIVE = ("none", "dc_loss")
MIN_LOSS_RATE = 5.0           # joins/s during the dc_loss run, at least (fewer arrivals judge nothing)
HEALTHY_WAIT_S = 30.0         # between runs: the stack back to health after a sweep broke it

Progress = Callable[[str, float, float, str], None]     # (measurement, t_s, total_s, message)


@dataclass(frozen=True)
class Assessment:
    doc: dict
    verdict: Verdict
    dir: Path
    files: dict[str, Path] = field(default_factory=dict)

    @property
    def exit_code(self) -> int:
        return self.verdict.exit_code


def check_options(headroom: float, survive: str, budget_s: float | None) -> None:
    if isinstance(headroom, bool) or not isinstance(headroom, (int, float)) or not 0 <= headroom <= 10:
        raise ConfigError(f"headroom must be a share from 0 to 10 (0.3: 30 % spare), got {headroom!r}")
    if survive not in SURVIVE:
        raise ConfigError(f"survive must be one of {', '.join(SURVIVE)}, got {survive!r}")
    if budget_s is not None and (isinstance(budget_s, bool) or not isinstance(budget_s, (int, float))
                                 or not budget_s > 0):
        raise ConfigError(f"budget_s must be more than 0 s, got {budget_s!r}")


def scale_of(demand: Demand, fleet: Fleet, machine: Fleet, points: list[Point],
             target=None) -> dict:
    """What this machine measured against the event: the highest load put on the stack as a
    share of the demand, and the machine's units of each measured tier (gateways, edges) as
    a share of the fleet's."""
    rates = [s.achieved for p in points if p.tier == "join" for s in p.steps if s.achieved]
    held = [s.load for p in points if p.tier == "fanout" for s in p.steps if s.load]
    r = max(rates, default=0.0) / demand.join_rate_per_s
    a = max(held, default=0.0) / demand.audience
    keys = list(dict.fromkeys(t.fleet_key for t in tiers_for(target).values()))
    share = {k: machine.units(k) / max(fleet.units(k), 1) for k in keys}
    return {"join_rate": r, "audience": a, **share,
            "described": (f"this machine put at most {fmt.sig(max(rates, default=0), 4)} joins/s "
                          f"({fmt.sig(r)} of the demand's {fmt.sig(demand.join_rate_per_s, 4)}/s) and "
                          f"{fmt.sig(max(held, default=0), 4)} listeners at once ({fmt.sig(a)} of "
                          f"{demand.audience:,}) on "
                          + " and ".join(f"{machine.units(k)} {k}" for k in keys)
                          + " (" + " and ".join(f"{fmt.sig(share[k])}" for k in keys) + " of the fleet's)")}


def assess(demand: Demand, state: StackState, *, fleet: Fleet | None = None, headroom: float = 0.3,
           survive: str = "none", quick: bool = False, budget_s: float | None = None,
           reports_dir: str | Path = "reports", plan: Plan | None = None,
           progress: Progress | None = None) -> Assessment:
    check_options(headroom, survive, budget_s)
    from chaos.targets import stack
    from chaos.readiness.evidence import write
    say = progress or (lambda what, t, total, msg: None)
    target = state.topology
    tiers = tiers_for(target)      # before anything runs: the target gives the tiers' kinds
    machine = Fleet.of_target(target)
    fleet = fleet or machine
    plan = plan or (Plan.quick() if quick else Plan())
    ndcs = len(target.dcs)
    plan_units = tuple(u for u in plan.units if u <= ndcs)
    fan_units = tuple(u for u in plan.fanout_units if u <= ndcs)
    started = dt.datetime.now(dt.timezone.utc)
    t0 = time.monotonic()
    spofs = spof_mod.find(target)
    stack.require_healthy(state)
    points: list[Point] = []
    skipped: list[str] = []
    todo = [(tiers["join"], u) for u in plan_units] + [(tiers["fanout"], u) for u in fan_units]
    for tier, units in todo:
        what = f"{tier.name} x{units}"
        if budget_s is not None and time.monotonic() - t0 > budget_s:
            skipped.append(f"{what}: the budget ({budget_s:g} s) was spent")
            continue
        stack.wait_healthy(state, HEALTHY_WAIT_S)
        points.append(measure_tier(state, tier, units, plan, reports_dir,
                                   lambda t, total, msg, w=what: say(w, t, total, msg)))
        say(what, 1.0, 1.0, points[-1].words)
    loss: LossRun | None = None
    if survive == "dc_loss":
        dc = spof_mod.dc_to_lose(target, spofs)
        rate, required = loss_load(demand, fleet, machine, dc, tiers["join"].fleet_key, plan)
        if budget_s is not None and time.monotonic() - t0 > budget_s:
            skipped.append(f"dc_loss of {dc}: the budget ({budget_s:g} s) was spent")
        else:
            stack.wait_healthy(state, HEALTHY_WAIT_S)
            loss = measure_loss(state, dc, rate, plan, reports_dir,
                                lambda t, total, msg: say(f"dc_loss {dc}", t, total, msg),
                                required_per_s=required)
            say(f"dc_loss {dc}", 1.0, 1.0, f"{loss.verdict}: {loss.reason}")
    v = decide(demand, fleet, points, headroom, survive == "dc_loss", spofs, loss, target)
    doc = {
        "kind": "readiness", "date": started.isoformat(timespec="seconds"),
        "elapsed_s": round(time.monotonic() - t0, 1), "quick": quick, "budget_s": budget_s,
        "target": {"name": target.name, "runtime": target.runtime, "profile": target.profile,
                   "source": target.source, "fingerprint": target.fingerprint(),
                   "dcs": list(target.dcs)},
        "demand": demand.to_dict(), "fleet": fleet.to_dict(), "machine_fleet": machine.to_dict(),
        "headroom_wanted": headroom, "survive": survive,
        "scale": scale_of(demand, fleet, machine, points, target),
        "plan": {"step_s": plan.step_s, "units": list(plan_units), "fanout_units": list(fan_units),
                 "max_rate_per_s": plan.max_rate_per_s},
        "measurements": [p.to_dict() for p in points], "skipped": skipped,
        "run_ids": [p.run_id for p in points] + ([loss.run_id] if loss else []),
        "machine_load": _loadavg(),
        **v.to_dict(),
    }
    out = Path(reports_dir) / f"readiness-{started.strftime('%Y%m%dT%H%M%SZ')}"
    files = write(doc, out)
    return Assessment(doc, v, out, files)


def loss_load(demand: Demand, fleet: Fleet, machine: Fleet, dc: str, key: str = "gateways",
              plan: Plan | None = None) -> tuple[float, float]:
    """(the rate the dc_loss run arrives at, the rate the survivors must carry), in joins/s.

    With ``dc`` lost, the event's whole arrival rate falls on the fleet's surviving units;
    this machine's survivors must carry the same rate per unit, so the run arrives at
    demand / fleet survivors x machine survivors (for a fleet shaped like the machine, the
    demand at the machine's scale). The run is bounded only by the load caps (the client
    fault's MAX_RATE, the plan's ``max_rate_per_s``); a clipped run is said by the verdict."""
    fleet_lost = dc if dc in fleet.per_dc else fleet.largest_dc(key)
    fleet_left = fleet.units(key, without_dc=fleet_lost)
    machine_left = machine.units(key, without_dc=dc)
    if fleet_left > 0 and machine_left > 0:
        required = demand.join_rate_per_s * machine_left / fleet_left
    else:       # nothing survives somewhere: the N-1 verdict says so; arrive at the demand's share
        required = demand.join_rate_per_s * machine.units(key) / max(fleet.units(key), 1)
    caps = [MAX_RATE] + ([plan.max_rate_per_s] if plan and plan.max_rate_per_s is not None else [])
    rate = min([required, *caps])
    return max(MIN_LOSS_RATE, round(rate, 1)), round(required, 3)


def _loadavg() -> list[float] | None:
    import os
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except OSError:
        return None
