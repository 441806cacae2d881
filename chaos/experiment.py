"""An experiment, as declared next to its test: a steady state, a method, halt conditions.

    Experiment(
        name="dc_loss_dc_b",
        expects="listeners of dc-b move to the other DCs; nobody is lost",
        method=[fault("dc_loss", dc="dc-b", at_s=0, duration_s=12, mode="kill")],
        during=[objective("join_time")],          # must hold while the fault is on
        halts=[objective("join_time", threshold=10.0, window_s=3.0)],
    )

Times: ``before_s`` of steady state (the gate), then the method (fault steps at ``at_s``
seconds after its start, each for ``duration_s``), then ``after_s`` of recovery: the first
``recover_s`` of it are a grace period (phase ``recovery``, observed and timed), the rest
(phase ``after``) is where the steady state must hold again. Pure
declarations: ``validate`` checks everything that does not need the stack, and planning
the faults against the stack's topology (``chaos.runner``) checks the rest, all before
anything is injected.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from .errors import ConfigError
from .faults.base import FaultSpec, Selector
from .slo import DEFAULTS, LIVE_SLIS, Objective

PHASES = ("before", "during", "after")
NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")


@dataclass(frozen=True)
class FaultStep:
    """One fault of the method: on at ``at_s`` (seconds after the method starts) for
    ``duration_s``."""
    spec: FaultSpec
    at_s: float = 0.0
    duration_s: float = 10.0
    label: str = ""
    step: int | None = None         # in a sweep: the step's index

    def describe(self) -> str:
        return self.label or default_label(self.spec)


def default_label(spec: FaultSpec) -> str:
    """"dc_loss(dc-a)", "packet_drop(edge-b, rate=0.05)": how sentences name a fault."""
    where = [v for v in (spec.target.service, spec.target.dc, spec.target.link) if v]
    if spec.target.count != "all":
        where.append(f"count={spec.target.count}")
    main = {k: v for k, v in spec.params.items() if k in ("share", "rate", "latency_ms", "jitter_ms", "delay_ms", "rate_kbps", "kinds")}
    return f"{spec.name}({', '.join(where + [f'{k}={v:g}' if isinstance(v, float) else f'{k}={v}' for k, v in main.items()])})"


def fault(name: str, at_s: float = 0.0, duration_s: float = 10.0, *, service: str | None = None,
          dc: str | None = None, link: str | None = None, count: str = "all", label: str = "",
          **params: Any) -> FaultStep:
    """A fault step: ``fault("latency", link="edge-*.origin-a", latency_ms=300, jitter_ms=100)``."""
    spec = FaultSpec(name, Selector(service=service, dc=dc, link=link, count=count), dict(params))
    return FaultStep(spec, at_s, duration_s, label)


@dataclass(frozen=True)
class Sweep:
    """A magnitude stepped up until something breaks: ``param`` of fault ``name`` takes each
    value of ``steps`` for ``step_s`` seconds (with ``gap_s`` of no fault between steps)."""
    name: str
    param: str
    steps: Sequence[float]
    step_s: float = 10.0
    gap_s: float = 0.0
    service: str | None = None
    dc: str | None = None
    link: str | None = None
    count: str = "all"
    params: Mapping[str, Any] = field(default_factory=dict)
    unit: str = ""
    stop_at_break: bool = False     # end the sweep at the first step that broke a required SLO

    def fault_steps(self) -> list[FaultStep]:
        sel = Selector(service=self.service, dc=self.dc, link=self.link, count=self.count)
        out = []
        for i, value in enumerate(self.steps):
            spec = FaultSpec(self.name, sel, {**self.params, self.param: value})
            where = ", ".join(v for v in (self.service, self.dc, self.link) if v)
            out.append(FaultStep(spec, i * (self.step_s + self.gap_s), self.step_s,
                                 f"{self.name}({where}{', ' if where else ''}{self.param}={value:g})", i))
        return out


@dataclass(frozen=True)
class Audience:
    """Who listens. ``listeners`` thin listeners spread over the DCs join at the start and
    hold; ``thick_per_dc`` decode and analyse the audio; every ``join_every_s`` one fresh
    listener per DC joins and hangs up (join_time all along the run)."""
    listeners: int = 12
    thick_per_dc: int = 1
    join_every_s: float = 1.0
    join_timeout_s: float = 5.0
    retry: str | None = None        # a chaos.retry kind; None: the stack profile's policy


@dataclass(frozen=True)
class Experiment:
    name: str
    title: str = ""
    expects: str = ""
    steady_state: Sequence[Objective] = field(
        default_factory=lambda: tuple(DEFAULTS[s] for s in LIVE_SLIS))
    during: Sequence[Objective] = ()
    after: Sequence[Objective] = ()   # extra objectives for the recovery only (audience_retained)
    method: Sequence[FaultStep] = ()
    sweep: Sweep | None = None
    halts: Sequence[Objective] = ()
    before_s: float = 6.0
    after_s: float = 10.0
    recover_s: float = 3.0          # grace after the last revert before the steady state is judged
    audience: Audience = field(default_factory=Audience)
    gate: bool = True
    seed: int = 0

    def steps(self) -> list[FaultStep]:
        return list(self.method) + (self.sweep.fault_steps() if self.sweep else [])

    @property
    def method_s(self) -> float:
        return max((s.at_s + s.duration_s for s in self.steps()), default=0.0)

    @property
    def total_s(self) -> float:
        return self.before_s + self.method_s + self.after_s


def _seconds(what: str, v: Any, positive: bool = False) -> None:
    if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v) or v < 0 \
            or (positive and v == 0):
        raise ConfigError(f"{what} must be a number of seconds {'> 0' if positive else '>= 0'}, got {v!r}")


def validate(exp: Experiment) -> None:
    """Everything that can be checked without the stack; raises ConfigError saying what."""
    if not isinstance(exp.name, str) or not NAME_RE.match(exp.name):
        raise ConfigError(f"experiment name {exp.name!r}: use letters, digits, '_', '-', '.' "
                          "(up to 64), it names the report directory")
    where = f"experiment {exp.name}"
    _seconds(f"{where}: before_s", exp.before_s, positive=True)
    _seconds(f"{where}: after_s", exp.after_s)
    _seconds(f"{where}: recover_s", exp.recover_s)
    if exp.steps() and exp.after_s - exp.recover_s < 1.0:
        raise ConfigError(f"{where}: after_s ({exp.after_s:g} s) leaves less than 1 s after the "
                          f"recovery grace (recover_s={exp.recover_s:g} s) to judge the steady state; "
                          "lengthen after_s")
    for group in ("steady_state", "during", "after", "halts"):
        items = list(getattr(exp, group))
        for o in items:
            if not isinstance(o, Objective):
                raise ConfigError(f"{where}: {group} holds {o!r}; declare objectives with "
                                  "chaos.slo.objective('join_time', threshold=...)")
        names = [o.sli for o in items]
        dup = {n for n in names if names.count(n) > 1}
        if dup:
            raise ConfigError(f"{where}: {group} declares {', '.join(sorted(dup))} twice")
    for o in exp.halts:
        if o.sli not in LIVE_SLIS:
            raise ConfigError(f"{where}: halt on {o.sli} cannot be judged while the run goes on; "
                              f"halt on one of {', '.join(LIVE_SLIS)}")
    if exp.during and not exp.steps():
        raise ConfigError(f"{where}: objectives `during` a method that has no fault")
    if exp.sweep is not None:
        sw = exp.sweep
        if not sw.steps:
            raise ConfigError(f"{where}: the sweep of {sw.name}.{sw.param} has no steps; give the "
                              "magnitudes to try, e.g. steps=(0.01, 0.03, 0.1)")
        _seconds(f"{where}: sweep step_s", sw.step_s, positive=True)
        _seconds(f"{where}: sweep gap_s", sw.gap_s)
        for v in sw.steps:
            if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
                raise ConfigError(f"{where}: sweep step {v!r} is not a number")
    for s in exp.method:
        if not isinstance(s, FaultStep):
            raise ConfigError(f"{where}: the method holds {s!r}; declare fault steps with "
                              "chaos.experiment.fault('latency', at_s=..., duration_s=..., ...)")
    for s in exp.steps():
        _seconds(f"{where}: {s.describe()} at_s", s.at_s)
        if isinstance(s.duration_s, bool) or not isinstance(s.duration_s, (int, float)) \
                or not math.isfinite(s.duration_s) or s.duration_s <= 0:
            raise ConfigError(f"{where}: {s.describe()} ends before it starts (duration_s="
                              f"{s.duration_s!r}); give a duration > 0 s")
    a = exp.audience
    if isinstance(a.listeners, bool) or not isinstance(a.listeners, int) or a.listeners < 1:
        raise ConfigError(f"{where}: audience.listeners must be at least 1, got {a.listeners!r}")
    if isinstance(a.thick_per_dc, bool) or not isinstance(a.thick_per_dc, int) or a.thick_per_dc < 0:
        raise ConfigError(f"{where}: audience.thick_per_dc must be 0 or more, got {a.thick_per_dc!r}")
    _seconds(f"{where}: audience.join_every_s", a.join_every_s)
    _seconds(f"{where}: audience.join_timeout_s", a.join_timeout_s, positive=True)
