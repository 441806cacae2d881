"""What the event needs and what will serve it: the demand, and the production fleet.

    demand = Demand.of(audience=600_000, join_rate="50000/min")
    fleet = load_fleet("fleet.yaml")            # or Fleet.of_target(target): the target's own

A fleet file (YAML) gives the production fleet per DC and tier, and may carry the event too
(flags given on the command line win)::

    event: {audience: 600000, join_rate: 50000/min}
    fleet:
      dc-a: {gateways: 40, edges: 600, origins: 2}
      dc-b: {gateways: 40, edges: 600, origins: 2}
      dc-c: {gateways: 40, edges: 600}

A fleet's tiers are the target's kinds of service, in the plural (``plural``: the kind plus
"s"): gateways and edges for the reference stack, ``relays`` for an Icecast target whose
listeners join at relays. Readiness measures two of them (``tier_kinds``): the kind a
listener joins through (the first of the target's ``paths.join``) and the kind it hears
from (the first of ``paths.audio``); they may be the same kind.

The event's ramp and session length are not part of the demand: readiness measures each
tier's capacity by stepped open-loop sweeps to the knee and judges the peak (the audience
at once, the peak arrival rate), so a ramp or a session would change nothing it measures.
They are refused (``UNUSED``), on the command line and in a fleet file, rather than taken
and ignored.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field

from chaos.core.errors import ConfigError
from chaos.core.arrivals import parse_rate
from chaos.core.target import Target

MAX_UNITS = 100_000
_DURATION = re.compile(r"^\s*([0-9]*\.?[0-9]+)\s*(s|m|min|h)?\s*$")
_UNIT_S = {None: 1.0, "s": 1.0, "m": 60.0, "min": 60.0, "h": 3600.0}
MAX_AUDIENCE = 100_000_000


def parse_duration(text: str | float | int, what: str) -> float:
    """Seconds from 600, "600s", "10m", "10min" or "1h"."""
    if isinstance(text, (int, float)) and not isinstance(text, bool):
        s = float(text)
    else:
        m = _DURATION.match(str(text))
        if not m:
            raise ConfigError(f"{what} {text!r} is not a duration; write seconds (600) or "
                              "with a unit: 600s, 10m, 1h")
        s = float(m.group(1)) * _UNIT_S[m.group(2)]
    if not math.isfinite(s) or s < 0:
        raise ConfigError(f"{what} must be 0 s or more, got {text!r}")
    return s


@dataclass(frozen=True)
class Demand:
    """The event at its peak: ``audience`` listeners at once, arriving at up to
    ``join_rate_per_s``."""
    audience: int
    join_rate_per_s: float

    @classmethod
    def of(cls, audience, join_rate) -> Demand:
        if isinstance(audience, bool) or not isinstance(audience, int) or not 1 <= audience <= MAX_AUDIENCE:
            raise ConfigError(f"audience must be a whole number of listeners from 1 to "
                              f"{MAX_AUDIENCE:,}, got {audience!r}")
        rate = parse_rate(join_rate) if isinstance(join_rate, str) else float(join_rate)
        if not rate > 0 or not math.isfinite(rate):
            raise ConfigError(f"join_rate must be more than 0 joins/s, got {join_rate!r}")
        return cls(audience, rate)

    def to_dict(self) -> dict:
        return {"audience": self.audience, "join_rate_per_s": round(self.join_rate_per_s, 3),
                "join_rate_per_min": round(self.join_rate_per_s * 60)}


# what readiness was once given and never used: refused with this reason
UNUSED = {
    "ramp": "the sweeps step open-loop arrivals up to the knee and the verdict judges the peak "
            "rate, so a time to the peak changes nothing measured",
    "session": "each step holds its listeners for the step, and the verdict judges the peak "
               "audience, so how long listeners stay changes nothing measured",
}


def refuse_unused(name: str, where: str) -> ConfigError:
    """The error for an event field readiness does not use (``--ramp``, ``event.session``)."""
    return ConfigError(f"{where}: readiness does not use the event's {name}: {UNUSED[name]}; "
                       f"leave it out (--audience and --join-rate give the peak that is judged)")


def plural(kind: str) -> str:
    """A kind of service as a fleet file's tier: gateway -> gateways, redis -> redis."""
    return kind if kind.endswith("s") else kind + "s"


def tier_kinds(target: Target) -> tuple[str, str]:
    """The kinds readiness measures: (the join tier's, the fan-out tier's). ConfigError,
    saying what to declare, when the target's paths do not give them."""
    kinds = {s.kind for s in target.services.values()}
    join = next(iter(target.paths.join), None)
    audio = next(iter(target.paths.audio), None)
    missing = [f"paths.{name} (the kinds a listener {does})" for name, does, k in
               (("join", "joins through", join), ("audio", "hears from", audio)) if k is None]
    if missing:
        raise ConfigError(f"readiness needs target {target.name}'s {' and '.join(missing)}, e.g. "
                          "paths: {join: [relay], audio: [relay]}")
    unknown = [k for k in (join, audio) if k not in kinds]
    if unknown:
        raise ConfigError(f"target {target.name} has no service of kind {', '.join(unknown)} "
                          f"(its paths name it); its kinds are {', '.join(sorted(kinds))}")
    return join, audio


@dataclass(frozen=True)
class Fleet:
    """Units per DC and tier: ``{"dc-a": {"gateways": 40, "edges": 600}, ...}``."""
    per_dc: dict[str, dict[str, int]] = field(default_factory=dict)
    source: str = ""            # the file, or "the target's own"

    def units(self, tier: str, without_dc: str | None = None) -> int:
        return sum(t.get(tier, 0) for dc, t in self.per_dc.items() if dc != without_dc)

    def largest_dc(self, tier: str) -> str | None:
        """The DC whose loss costs the tier the most units."""
        return max(self.per_dc, key=lambda dc: self.per_dc[dc].get(tier, 0), default=None)

    @property
    def tiers(self) -> tuple[str, ...]:
        return tuple(sorted({t for units in self.per_dc.values() for t in units}))

    @classmethod
    def of_target(cls, target: Target) -> Fleet:
        kinds = sorted({s.kind for s in target.services.values() if s.dc})
        per_dc = {dc: {plural(k): sum(1 for s in target.in_dc(dc) if s.kind == k) for k in kinds}
                  for dc in target.dcs}
        return cls(per_dc, "the target's own")

    def to_dict(self) -> dict:
        return {"per_dc": self.per_dc, "source": self.source,
                "total": {t: self.units(t) for t in self.tiers}}


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


Units = Annotated[int, Field(ge=0, le=MAX_UNITS)]


class _Event(_Strict):
    audience: int | None = Field(default=None, ge=1, le=MAX_AUDIENCE)
    join_rate: str | float | None = None
    ramp: str | float | None = None
    session: str | float | None = None


class _FleetFile(_Strict):
    event: _Event | None = None
    fleet: dict[str, dict[str, Units]]


def load_fleet(path: str | Path, target: Target | None = None) -> tuple[Fleet, dict]:
    """The fleet of a YAML file, and its ``event`` section (possibly empty) as keyword
    arguments for ``Demand.of``. With ``target``, every DC must be one of the target's,
    every tier one of its kinds (plural), and the tiers readiness measures must have units."""
    from chaos.core import yamlfile
    doc = yamlfile.read(path, "a fleet file")
    model = yamlfile.validate(doc, _FleetFile, "fleet file")
    example = ("give each DC its units of the target's kinds in the plural, e.g. dc-a: "
               "{gateways: 40, edges: 600} (reference stack) or dc-a: {relays: 20} (Icecast)")
    if target is not None:
        tiers = {plural(s.kind) for s in target.services.values()}
        bad = [(("fleet", dc), f"DC {dc!r} is not one of the target's ({', '.join(target.dcs)})")
               for dc in model.fleet if dc not in target.dcs]
        bad += [(("fleet", dc, t), f"unknown tier: target {target.name}'s are "
                 f"{', '.join(sorted(tiers))}") for dc, units in model.fleet.items()
                for t in units if t not in tiers]
        if bad:
            raise yamlfile.fail(doc, "fleet file", bad)
        need = sorted({plural(k) for k in tier_kinds(target)})
        example = "give e.g. dc-a: {" + ", ".join(f"{t}: 40" for t in need) + "}"
    else:
        need = sorted({t for units in model.fleet.values() for t in units})
    unused = [(("event", k), f"readiness does not use the event's {k}: {UNUSED[k]}; leave it out")
              for k in UNUSED if model.event is not None and getattr(model.event, k) is not None]
    if unused:
        raise yamlfile.fail(doc, "fleet file", unused)
    if not model.fleet or not any(units.get(t) for units in model.fleet.values() for t in need):
        raise yamlfile.fail(doc, "fleet file", [(("fleet",), f"no {' or '.join(need) or 'units'} "
                                                 f"in any DC; {example}")])
    fleet = Fleet({dc: dict(units) for dc, units in model.fleet.items()}, str(path))
    event = {k: v for k, v in (model.event.model_dump() if model.event else {}).items()
             if v is not None and k not in UNUSED}
    return fleet, event
