"""A runbook turned into the framework's own declarations, and planned against the target.

    gp = build(book, topo, from_step="lose-dc-a")   # RunbookError with the step's line
    gp.experiment          # chaos.experiment.Experiment: steady state, halts, fault steps
    gp.faults              # [(FaultStep, [Action, ...])] planned against the topology
    print(gp.describe())   # the dry run

Every ``fault`` and ``load`` step becomes ``chaos.experiment.fault(...)``, every objective
``chaos.core.slo.objective(...)``; the experiment is checked by ``chaos.experiment.validate`` and
every fault planned by ``chaos.faults.base.plan``, as an experiment's are, before anything
runs. Times in the declarations are nominal (people answer prompts when they do): the
player injects and reverts by the steps, not by ``at_s``.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from chaos.core.errors import ConfigError
from chaos.experiment import Audience, Experiment, FaultStep, default_label, fault, validate
from chaos.faults.base import Action, plan
from chaos.core.slo import DEFAULTS
from chaos.core.yamlfile import Located
from chaos.gameday.runbook import (LIVE_SLIS, FaultStepSpec, LoadStepSpec, PromptStepSpec, RevertStepSpec,
                      Runbook, RunbookError, WaitStepSpec, located)


@dataclass(frozen=True)
class PlannedStep:
    index: int                  # 1-based, as the board and --from show it
    id: str
    kind: str
    spec: Any                   # the runbook's step model
    at_s: float                 # nominal start, seconds since the run started
    fault: FaultStep | None = None
    actions: tuple[Action, ...] = ()

    def summary(self) -> str:
        s = self.spec
        if self.fault is not None:
            until = f" for {s.duration_s:g} s" if s.duration_s else " until reverted"
            return f"{self.fault.describe()}{until}"
        if self.kind == "wait":
            w = s.wait
            if w.seconds is not None:
                return f"wait {w.seconds:g} s"
            return (f"wait until {', '.join(o.sli for o in w.until)} hold"
                    + (f" in {w.dc}" if w.dc else "") + f" (at most {w.timeout_s:g} s)")
        if self.kind == "prompt":
            who = f"{s.role}: " if s.role else ""
            return f"ask {who}{s.prompt} [{' / '.join(s.choices)}] ({s.timeout_s:g} s)"
        if self.kind == "check":
            judged = [replace(o.build(), window_s=None) for o in s.check]   # over the last over_s
            return "check " + ", ".join(f"{o.sli} {o.describe()}" for o in judged) \
                + f" over the last {s.over_s:g} s" + (f" in {s.dc}" if s.dc else "")
        if self.kind == "note":
            return f"note: {s.note}"
        return f"revert {s.revert}"


@dataclass(frozen=True)
class GamePlan:
    book: Runbook
    source: str
    experiment: Experiment
    steps: tuple[PlannedStep, ...]          # the selected steps, in order
    all_ids: tuple[str, ...]
    skipped: tuple[str, ...] = ()
    topology: Any = None
    faults: tuple[tuple[FaultStep, list[Action]], ...] = field(default=())
    target_file: str | None = None          # the target description it runs against (None: the reference stack)

    @property
    def bound_s(self) -> float:
        """The longest the run can last, pauses apart: every step is bounded."""
        book = self.book
        steps = sum(_bound(p.spec) for p in self.steps)
        return book.before_s + steps + book.after_s + 10.0

    def fault_step(self, step_id: str) -> PlannedStep | None:
        return next((p for p in self.steps if p.id == step_id and p.fault is not None), None)

    def describe(self) -> str:
        b, e = self.book, self.experiment
        lines = [f"game day {e.name}: {b.title}",
                 _target_words(self.topology),
                 f"steady state: {', '.join(o.sli + ' ' + o.describe() for o in e.steady_state)}"]
        if e.halts:
            lines.append(f"halts: {', '.join(o.sli + ' ' + o.describe() for o in e.halts)}")
        lines.append(f"t=0 s: {b.audience.listeners} listeners join; {b.before_s:g} s of steady "
                     "state" + (", then the gate" if b.gate else ""))
        for p in self.steps:
            lines.append(f"  {p.index:>2}. [{p.id}] t~{p.at_s:g} s  {p.summary()}")
            lines += [f"        - {a.describe()}" for a in p.actions]
        if self.skipped:
            lines.append(f"skipped (--from/--only): {', '.join(self.skipped)}")
        lines.append(f"then: everything still injected is reverted; {b.recover_s:g} s of recovery, "
                     f"{b.after_s - b.recover_s:g} s of steady state after. At most "
                     f"~{self.bound_s:.0f} s plus pauses (up to {b.max_pause_s:g} s).")
        return "\n".join(lines)


def _bound(spec: Any) -> float:
    if isinstance(spec, WaitStepSpec):
        return spec.wait.bound_s
    if isinstance(spec, PromptStepSpec):
        return spec.timeout_s
    return 0.0


def _nominal(spec: Any, auto: bool) -> float:
    """How long a step takes in the nominal timeline (a dry run's, an auto run's)."""
    if isinstance(spec, WaitStepSpec):
        return spec.wait.bound_s if spec.wait.seconds is not None else min(spec.wait.bound_s, 3.0)
    if isinstance(spec, PromptStepSpec):
        return spec.auto_after_s if auto else spec.timeout_s
    return 0.0


def select(ids: list[str], from_step: str | None, only: list[str] | None) -> list[str]:
    """The ids run by --from STEP / --only STEP,...: an id or a 1-based step number."""
    def resolve(token: str, what: str) -> str:
        token = token.strip()
        if token in ids:
            return token
        if token.isdigit() and 1 <= int(token) <= len(ids):
            return ids[int(token) - 1]
        raise ConfigError(f"{what} {token!r}: no such step; steps are {', '.join(ids)} "
                          f"(or their numbers 1 to {len(ids)})")
    chosen = list(ids)
    if from_step is not None:
        chosen = ids[ids.index(resolve(from_step, "from_step")):]
    if only:
        wanted = {resolve(t, "only") for t in only if t.strip()}
        chosen = [i for i in chosen if i in wanted]
    if not chosen:
        raise ConfigError("from_step and only leave no step to run; choose steps that overlap")
    return chosen


def build(book: Runbook, topo, source: str = "<runbook>", doc: Located | None = None,
          from_step: str | None = None, only: list[str] | None = None,
          auto: bool = True) -> GamePlan:
    ids = book.step_ids()
    chosen = select(ids, from_step, only)
    kept = set(chosen)

    def fail(i: int, field: str, message: str) -> RunbookError:
        loc = ("steps", i, field) if field else ("steps", i)
        p = located(doc, loc, message) if doc is not None else {
            "line": None, "column": None, "field": f"steps[{i}]", "message": message}
        where = f"{source}, line {p['line']}, column {p['column']}" if p["line"] else source
        return RunbookError(f"{where} ({p['field']}): {message}", [p])

    # a selection must not revert a fault it skips (a prompt's answer that would: no-op)
    for i, (sid, spec) in enumerate(zip(ids, book.steps)):
        if sid not in kept:
            continue
        targets = []
        if isinstance(spec, RevertStepSpec) and spec.revert != "all":
            targets.append(("revert", spec.revert))
        for field_name, target in targets:
            if target not in kept:
                raise fail(i, field_name, f"step {sid} reverts {target}, which this selection "
                                          f"skips; add {target} to only, or start earlier")

    t = book.before_s
    planned: list[PlannedStep] = []
    fault_steps: list[FaultStep] = []
    for i, (sid, spec) in enumerate(zip(ids, book.steps)):
        if sid not in kept:
            continue
        planned.append(PlannedStep(i + 1, sid, spec.kind, spec, round(t, 3)))
        t += _nominal(spec, auto)
    end_t = t
    # the declarations, with nominal durations for faults that last until reverted
    for n, p in enumerate(planned):
        spec = p.spec
        if not isinstance(spec, (FaultStepSpec, LoadStepSpec)):
            continue
        duration = spec.duration_s or max(1.0, _revert_time(planned, n, end_t) - p.at_s)
        at = p.at_s - book.before_s
        if isinstance(spec, FaultStepSpec):
            f = fault(spec.fault, at_s=at, duration_s=duration, service=spec.service, dc=spec.dc,
                      link=spec.link, count=spec.count, label=spec.label, **spec.params)
        else:
            f = fault("join_storm", at_s=at, duration_s=duration, label=spec.label, **spec.load)
        if not f.label:
            f = FaultStep(f.spec, f.at_s, f.duration_s, default_label(f.spec))
        planned[n] = PlannedStep(p.index, p.id, p.kind, spec, p.at_s, f)
        fault_steps.append(f)

    steady = (tuple(o.build() for o in book.steady_state) if book.steady_state is not None
              else tuple(DEFAULTS[s] for s in LIVE_SLIS))
    a = book.audience
    exp = Experiment(name=book.name or "gameday", title=book.title, expects=book.hypothesis,
                     steady_state=steady, during=tuple(o.build() for o in book.during),
                     after=tuple(o.build() for o in book.after), method=tuple(fault_steps),
                     halts=tuple(o.build() for o in book.halts), before_s=book.before_s,
                     after_s=book.after_s, recover_s=book.recover_s,
                     audience=Audience(a.listeners, a.thick_per_dc, a.join_every_s,
                                       a.join_timeout_s, a.retry), gate=book.gate)
    try:
        validate(exp)
    except ConfigError as e:
        raise RunbookError(f"{source}: {e}".replace("experiment ", "runbook ", 1)) from None

    # every fault planned against the target: a service, DC or link it lacks is refused here
    faults = []
    index_of = {sid: i for i, sid in enumerate(ids)}
    for n, p in enumerate(planned):
        if p.fault is None:
            continue
        try:
            actions = plan(p.fault.spec, topo, None)
        except ConfigError as e:
            field_name = next((f for f in ("dc", "service", "link") if getattr(p.spec, f, None)
                               and f in str(e)), "")
            raise fail(index_of[p.id], field_name or _kind_field(p.spec),
                       f"{e} ({_target_words(topo)})") from None
        planned[n] = PlannedStep(p.index, p.id, p.kind, p.spec, p.at_s, p.fault, tuple(actions))
        faults.append((p.fault, actions))
    for n, p in enumerate(planned):
        dc = getattr(getattr(p.spec, "wait", None), "dc", None) or getattr(p.spec, "dc", None)
        if p.kind in ("wait", "check") and dc is not None:
            dcs = sorted({s.dc for s in topo.services.values() if s.dc})
            if dc not in dcs:
                raise fail(index_of[p.id], "wait" if p.kind == "wait" else "dc",
                           f"no data center {dc!r} in the target; DCs are {', '.join(dcs)}")
    skipped = tuple(i for i in ids if i not in kept)
    return GamePlan(book, source, exp, tuple(planned), tuple(ids), skipped, topo, tuple(faults))


def _target_words(topo) -> str:
    if getattr(topo, "source", "reference") not in (None, "", "reference"):
        return f"target {topo.name}, described in {topo.source}"
    return f"target: {topo.runtime} runtime, {topo.profile} profile"


def _kind_field(spec: Any) -> str:
    return "load" if isinstance(spec, LoadStepSpec) else "fault"


def _revert_time(planned: list[PlannedStep], n: int, end_t: float) -> float:
    fid = planned[n].id
    for p in planned[n + 1:]:
        if isinstance(p.spec, RevertStepSpec) and p.spec.revert in (fid, "all"):
            return p.at_s
    return end_t


def target_file(book: Runbook, source: str | Path, target: str | Path | None = None) -> Path | None:
    """The target description a runbook runs against: ``target`` (``--target FILE``) first,
    else the runbook's ``target: {file: ...}`` (relative to the runbook's folder); None: the
    reference stack."""
    if target is not None:
        return Path(target)
    if book.target.file is not None:
        f = Path(book.target.file)
        return f if f.is_absolute() else Path(source).resolve().parent / f
    return None


def topology_for(book: Runbook, state=None, source: str | Path = ".", target: str | Path | None = None):
    """The target a runbook is planned against: a target description's (see
    :func:`target_file`), else the running stack's when it is the runbook's target, else the
    reference stack's for the target's runtime and profile."""
    f = target_file(book, source, target)
    if f is not None:
        from chaos.targets.file import load as load_target
        return load_target(f)
    from chaos.adapters.space.reference import build as reference
    tg = book.target
    if state is not None and state.runtime == tg.runtime and state.profile == tg.profile:
        return state.topology
    return reference(tg.runtime, tg.profile)


def load_plan(path: str | Path, state=None, from_step: str | None = None,
              only: list[str] | None = None, auto: bool = True,
              target: str | Path | None = None) -> GamePlan:
    """Load, validate and plan a runbook file: everything checked before anything runs.
    ``target``: a target description to run against instead of the runbook's own target."""
    from chaos.core.yamlfile import parse
    from chaos.gameday.runbook import load
    book = load(path)
    doc = parse(Path(path).read_text(encoding="utf-8"), str(path))
    f = target_file(book, path, target)
    gp = build(book, topology_for(book, state, path, target), str(path), doc, from_step, only, auto)
    return replace(gp, target_file=None if f is None else str(f))
