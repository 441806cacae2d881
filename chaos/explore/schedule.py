"""A fault schedule: the faults of an experiment's method, as plain hashable data.

A ``Schedule`` is what the strategies draw, what the search runs, caches, shrinks and
stores: a tuple of ``Step``s (a fault kind, where, with what, from when, for how long).
It turns into a valid ``Experiment`` method (``method``), into an ``Experiment`` to run
(``experiment(...)``), and into Python source to paste (``to_python``). Being frozen
and hashable, the same schedule drawn twice is recognised as the same (one cache entry).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from chaos.experiment import Audience, Experiment, FaultStep, fault
from chaos.core.slo import Objective

PARAM_ORDER = ("mode", "kinds", "latency_ms", "jitter_ms", "share", "rate_kbps", "rate", "burst")


@dataclass(frozen=True, order=True)
class Step:
    """One fault of a schedule: ``kind`` on a DC, a service or a link, with ``params``
    (sorted name/value pairs), on at ``at_s`` for ``duration_s``."""
    at_s: float
    duration_s: float
    kind: str
    dc: str | None = None
    service: str | None = None
    link: str | None = None
    params: tuple[tuple[str, Any], ...] = ()

    @property
    def ends_s(self) -> float:
        return self.at_s + self.duration_s

    def fault_step(self) -> FaultStep:
        return fault(self.kind, at_s=self.at_s, duration_s=self.duration_s, service=self.service,
                     dc=self.dc, link=self.link, **dict(self.params))

    def label(self) -> str:
        return self.fault_step().describe()

    def source(self) -> str:
        """``fault("latency", at_s=2, duration_s=6, link="listener.edge-a", latency_ms=300)``"""
        args = [repr(self.kind), f"at_s={self.at_s:g}", f"duration_s={self.duration_s:g}"]
        args += [f"{k}={v!r}" for k, v in (("service", self.service), ("dc", self.dc),
                                           ("link", self.link)) if v is not None]
        args += [f"{k}={_num(v)}" for k, v in self.params]
        return f"fault({', '.join(args)})"

    def to_dict(self) -> dict:
        return {"kind": self.kind, "at_s": self.at_s, "duration_s": self.duration_s,
                "dc": self.dc, "service": self.service, "link": self.link,
                "params": dict(self.params)}

    @classmethod
    def from_dict(cls, d: Mapping) -> Step:
        return cls(float(d["at_s"]), float(d["duration_s"]), str(d["kind"]), d.get("dc"),
                   d.get("service"), d.get("link"), params_of(d.get("params") or {}))


def params_of(params: Mapping[str, Any]) -> tuple[tuple[str, Any], ...]:
    rank = {k: i for i, k in enumerate(PARAM_ORDER)}
    return tuple(sorted(params.items(), key=lambda kv: (rank.get(kv[0], len(rank)), kv[0])))


def _num(v: Any) -> str:
    return f"{v:g}" if isinstance(v, float) else repr(v)


@dataclass(frozen=True)
class Schedule:
    """Faults over time, in start order. ``method`` is a valid Experiment method."""
    steps: tuple[Step, ...] = field(default=())

    def __post_init__(self) -> None:
        object.__setattr__(self, "steps", tuple(sorted(self.steps)))

    def __len__(self) -> int:
        return len(self.steps)

    def __iter__(self):
        return iter(self.steps)

    @property
    def method(self) -> tuple[FaultStep, ...]:
        return tuple(s.fault_step() for s in self.steps)

    @property
    def span_s(self) -> float:
        return max((s.ends_s for s in self.steps), default=0.0)

    def key(self) -> str:
        """A short stable id: names the runs of this schedule and its stored entry."""
        text = json.dumps(self.to_dict(), sort_keys=True)
        return hashlib.sha256(text.encode()).hexdigest()[:10]

    def describe(self) -> str:
        return "; ".join(f"{s.label()} at {s.at_s:g}-{s.ends_s:g} s" for s in self.steps) or "no fault"

    def experiment(self, name: str, steady_state: Sequence[Objective], *, before_s: float = 4.0,
                   after_s: float = 6.0, recover_s: float = 2.0,
                   audience: Audience | None = None, seed: int = 0) -> Experiment:
        """The schedule as an experiment: ``steady_state`` must hold before, during and after."""
        return Experiment(name=name, title=f"explored: {self.describe()}",
                          expects="the steady state holds under this schedule",
                          steady_state=tuple(steady_state), during=tuple(steady_state),
                          method=self.method, before_s=before_s, after_s=after_s,
                          recover_s=recover_s, audience=audience or Audience(), seed=seed)

    def to_python(self, name: str, steady_state: Sequence[Objective], **kw: Any) -> str:
        """Source of the experiment, to paste into a test."""
        exp = self.experiment(name, steady_state, **kw)
        objs = ", ".join(_objective_source(o) for o in steady_state)
        steps = "".join(f"\n        {s.source()}," for s in self.steps)
        a = exp.audience
        audience = (f"Audience(listeners={a.listeners}, thick_per_dc={a.thick_per_dc})"
                    if a != Audience() else "Audience()")
        return (f"Experiment(\n    name={name!r},\n    method=[{steps}\n    ],\n"
                f"    steady_state=[{objs}],\n    during=[{objs}],\n"
                f"    before_s={exp.before_s:g}, after_s={exp.after_s:g}, recover_s={exp.recover_s:g},\n"
                f"    audience={audience})")

    def to_dict(self) -> dict:
        return {"steps": [s.to_dict() for s in self.steps]}

    @classmethod
    def from_dict(cls, d: Mapping) -> Schedule:
        return cls(tuple(Step.from_dict(s) for s in d.get("steps") or ()))


def _objective_source(o: Objective) -> str:
    from chaos.core.slo import DEFAULTS
    d = DEFAULTS.get(o.sli)
    if d == o:
        return f"objective({o.sli!r})"
    kw = [f"threshold={o.threshold:g}"]
    if d is None or d.window_s != o.window_s:
        kw.append(f"window_s={o.window_s!r}")
    if d is None or d.stat != o.stat:
        kw.append(f"stat={o.stat!r}")
    return f"objective({o.sli!r}, {', '.join(kw)})"
