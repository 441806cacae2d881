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

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from chaos.core.retry import KINDS as RETRY_KINDS

from chaos.core import validate as v
from chaos.core.errors import ConfigError
from chaos.faults.base import FaultSpec, Selector
from chaos.core.slo import DEFAULTS, LIVE_SLIS, Objective

PHASES = ("before", "during", "after")
NAME_RE = v.NAME_RE
NAME_RULE = "letters, digits, '_', '-', '.' (up to 64), it names the report directory"


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
    retry: str | None = None        # a chaos.core.retry kind; None: the stack profile's policy


@dataclass(frozen=True)
class Experiment:
    """One experiment: ``name`` (it names the report directory), what it ``expects`` in
    words, the ``steady_state`` judged before (the gate, unless ``gate`` is False) and after,
    the objectives ``during`` the method and ``after`` it, the ``method`` (fault steps) or a
    ``sweep``, the ``halts`` that stop it early, its times (``before_s``, ``after_s``,
    ``recover_s``), its ``audience`` and the ``seed`` of its test signal."""

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


MAX_LISTENERS, MAX_THICK_PER_DC = v.MAX_LISTENERS, v.MAX_THICK_PER_DC
MIN_JOIN_EVERY_S = 0.1          # join probes: three joins (one per DC) per interval
MAX_STEPS = 1000                # fault steps of a method, values of a sweep


def validate(exp: Experiment) -> None:
    """Everything that can be checked without the stack; raises ConfigError saying what."""
    v.instance("experiment", exp, Experiment, "chaos.experiment.Experiment(name=..., method=[...])")
    v.name("experiment name", exp.name, rule=NAME_RULE)
    where = f"experiment {exp.name}"
    v.text(f"{where}: title", exp.title, one_line=True, max_len=500)
    v.text(f"{where}: expects", exp.expects)
    v.flag(f"{where}: gate", exp.gate)
    v.seed(f"{where}: seed", exp.seed)
    before = v.seconds(f"{where}: before_s", exp.before_s, positive=True, example="e.g. before_s=6")
    after = v.seconds(f"{where}: after_s", exp.after_s, example="e.g. after_s=10")
    recover = v.seconds(f"{where}: recover_s", exp.recover_s, example="e.g. recover_s=3")
    groups = {g: v.items(f"{where}: {g}", getattr(exp, g), Objective,
                         "[chaos.core.slo.objective('join_time', threshold=...)]")
              for g in ("steady_state", "during", "after", "halts")}
    v.items(f"{where}: method", exp.method, FaultStep,
                     "[chaos.experiment.fault('latency', at_s=..., duration_s=..., ...)]",
                     max_items=MAX_STEPS)
    if exp.sweep is not None:
        _validate_sweep(where, exp.sweep)
    _validate_audience(where, exp.audience)
    steps = exp.steps()
    for s in steps:
        _validate_step(where, s)
    total = before + exp.method_s + after
    if total > v.MAX_RUN_S:
        raise ConfigError(f"{where}: the run would last {total:g} s (before_s + the method + "
                          f"after_s); accepted: at most {v.MAX_RUN_S:g} s; shorten it")
    if steps and after - recover < 1.0:
        raise ConfigError(f"{where}: after_s ({after:g} s) leaves less than 1 s after the "
                          f"recovery grace (recover_s={recover:g} s) to judge the steady state; "
                          "lengthen after_s")
    for group, items in groups.items():
        names = [o.sli for o in items]
        dup = {n for n in names if names.count(n) > 1}
        if dup:
            raise ConfigError(f"{where}: {group} declares {', '.join(sorted(dup))} twice")
        for o in items:   # a window longer than the run can never close
            v.window(f"{where}: {group}: objective for {o.sli}: window_s", o.window_s, total)
    for o in groups["halts"]:
        if o.sli not in LIVE_SLIS:
            raise ConfigError(f"{where}: halt on {o.sli} cannot be judged while the run goes on; "
                              f"halt on one of {', '.join(LIVE_SLIS)}")
    if groups["during"] and not steps:
        raise ConfigError(f"{where}: objectives `during` a method that has no fault")


def _validate_step(where: str, s: FaultStep) -> None:
    spec = s.spec
    v.instance(f"{where}: a fault step's spec", spec, FaultSpec, "fault('latency', ...)")
    v.text(f"{where}: fault name", spec.name, one_line=True, max_len=64, empty=False)
    v.instance(f"{where}: {spec.name} target", spec.target, Selector, "fault(..., service='edge-b')")
    v.mapping(f"{where}: {spec.name} params", spec.params, "fault('latency', latency_ms=200)")
    v.text(f"{where}: {spec.name} label", s.label, one_line=True, max_len=200)
    v.seconds(f"{where}: {s.describe()} at_s", s.at_s, example="e.g. at_s=0")
    d = v.number(f"{where}: {s.describe()} duration_s", s.duration_s, unit="s")
    if d <= 0:
        raise ConfigError(f"{where}: {s.describe()} ends before it starts (duration_s={d:g}); "
                          "give a duration > 0 s, e.g. duration_s=10")
    v.seconds(f"{where}: {s.describe()} duration_s", d, positive=True)


def _validate_sweep(where: str, sw: Sweep) -> None:
    v.instance(f"{where}: sweep", sw, Sweep, "Sweep('packet_drop', 'share', (0.02, 0.1), service='edge-b')")
    v.text(f"{where}: sweep name", sw.name, one_line=True, max_len=64, empty=False)
    v.name(f"{where}: sweep param", sw.param, rule="a parameter name of the fault, e.g. share")
    what = f"{where}: the sweep of {sw.name}.{sw.param}"
    if isinstance(sw.steps, (str, bytes, bytearray, Mapping)) or not isinstance(sw.steps, Sequence):
        v.fail(f"{what}: steps", sw.steps, "is not a list", "a list of numbers, e.g. steps=(0.01, 0.03, 0.1)")
    if not sw.steps:
        raise ConfigError(f"{what} has no steps; give the magnitudes to try, e.g. "
                          "steps=(0.01, 0.03, 0.1)")
    if len(sw.steps) > MAX_STEPS:
        v.fail(f"{what}: steps", f"{len(sw.steps)} values", "are too many", f"up to {MAX_STEPS}")
    for i, x in enumerate(sw.steps):
        v.number(f"{what}: steps[{i}]", x, example="a number, e.g. steps=(0.01, 0.03, 0.1)")
    v.seconds(f"{what}: step_s", sw.step_s, positive=True, example="e.g. step_s=10")
    v.seconds(f"{what}: gap_s", sw.gap_s, example="e.g. gap_s=0")
    for field_name in ("service", "dc", "link"):
        v.optional(v.text, f"{what}: {field_name}", getattr(sw, field_name), one_line=True, max_len=200)
    v.mapping(f"{what}: params", sw.params)
    v.text(f"{what}: unit", sw.unit, one_line=True, max_len=32)
    v.flag(f"{what}: stop_at_break", sw.stop_at_break)


def _validate_audience(where: str, a: Audience) -> None:
    v.instance(f"{where}: audience", a, Audience, "Audience(listeners=12, thick_per_dc=1)")
    v.integer(f"{where}: audience.listeners", a.listeners, lo=1, hi=MAX_LISTENERS)
    v.integer(f"{where}: audience.thick_per_dc", a.thick_per_dc, lo=0, hi=MAX_THICK_PER_DC)
    every = v.seconds(f"{where}: audience.join_every_s", a.join_every_s,
                      example=f"0 (no join probes), or at least {MIN_JOIN_EVERY_S:g} s")
    if 0 < every < MIN_JOIN_EVERY_S:
        v.fail(f"{where}: audience.join_every_s", a.join_every_s, "is too short",
               f"0 (no join probes), or {MIN_JOIN_EVERY_S:g} to {v.MAX_RUN_S:g} s")
    v.seconds(f"{where}: audience.join_timeout_s", a.join_timeout_s, positive=True, hi=600.0)
    v.optional(v.choice, f"{where}: audience.retry", a.retry, choices=RETRY_KINDS)
