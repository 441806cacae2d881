"""A run's history, and judging it again.

A run records its history (chaos.core.history): every SLI's timed samples, overall and per
DC, and the probes' seconds in ``history.npz`` beside the journal; the declaration
(``experiment.declaration``), the phases, the faults' windows, the stops, the storms and a
game day's checks in the journal. Judging is a pure function of that history
(chaos.core.judge), so ``chaos report JOURNAL --rejudge`` judges a past run again with other
objectives (``rejudge``), under every rule the run was judged by, without running anything.
"""

from __future__ import annotations

import copy
from pathlib import Path

from chaos.core import history as ch
from chaos.core.errors import ConfigError
from chaos.core.history import History, Objectives, objective_doc
from chaos.core.journal import Journal
from chaos.core.slo import Objective, Series, objective

FILE = ch.FILE
GROUPS = Objectives.GROUPS
MAX_ENTRIES = ch.MAX_ENTRIES


def save(out_dir: Path, overall: dict[str, Series], per_dc: dict[str, dict[str, Series]],
         health=None) -> Path:
    """``health``: the probe processes' seconds (``chaos.session.watch.ProbeHealth``), which
    judging sets aside where the probe was saturated."""
    doc = None if health is None else {"tolerated_lag_ms": dict(health.tolerated_lag_ms),
                                       "processes": [p.to_dict() for p in health.processes]}
    return ch.write(out_dir, overall, per_dc, doc)


def _saturation(run_dir: Path, doc: dict | None):
    """The probe processes' seconds the run recorded (None: it recorded none)."""
    from chaos.session.watch import ProbeHealth, ProcessHealth
    if doc is None:
        return None
    try:
        return ProbeHealth([ProcessHealth.from_dict(p) for p in doc["processes"]],
                           {str(k): float(v) for k, v in doc["tolerated_lag_ms"].items()})
    except (ValueError, KeyError, TypeError, AttributeError) as e:
        raise ConfigError(f"{Path(run_dir) / FILE}: its probe health is damaged "
                          f"({type(e).__name__}); it cannot be judged again") from None


def load_health(run_dir: Path):
    """The probe processes' seconds the run recorded (None: it recorded none)."""
    return _saturation(run_dir, ch.read(run_dir).health)


def load(run_dir: Path) -> tuple[dict[str, Series], dict[str, dict[str, Series]]]:
    samples = ch.read(run_dir)
    return dict(samples.overall), {dc: dict(by) for dc, by in samples.per_dc.items()}


def of_run(exp, tl, overall=None, per_dc=None, *, end_s: float | None = None, saturation=None,
           storms=(), measured: bool = True, judge_error: str = "") -> History:
    """The history a run records: its experiment's objectives and sweep, its timeline
    (chaos.core.timeline.Timeline), its samples, its storms' results (journal dicts)."""
    sw = getattr(exp, "sweep", None)
    sweep = None
    if sw is not None:
        where = ", ".join(v for v in (sw.service, sw.dc, sw.link) if v)
        sweep = ch.Sweep(sw.param, sw.unit, sw.name, f"{sw.name} on {where}" if where else sw.name)
    phases = tuple(ch.Phase(n, float(a), float(b)) for n, (a, b) in tl.phases.items())
    faults = tuple(ch.FaultWindow(
        label=f.step.describe(), started_s=f.started_s, ended_s=f.ended_s, reverted=f.reverted,
        revert_error=f.revert_error, step=f.step.step,
        value=None if sweep is None else f.step.spec.params.get(sweep.param)) for f in tl.faults)
    halt = ""
    if tl.halt is not None:
        from chaos.core.journal import Halt
        halt = Halt.model_validate(tl.halt).message or "halted"
    stop = ch.Stop(aborted=(tl.abort or "interrupted (Ctrl-C)") if tl.interrupted else "", halt=halt,
                   stopped=tl.abort or ("the steady state did not hold before the method"
                                        if tl.gate is not None else ""))
    return History(
        objectives=Objectives() if exp is None else Objectives.of(exp), phases=phases,
        end_s=max([p.end_s for p in phases] + [0.0]) if end_s is None else end_s, faults=faults,
        stop=stop, overall=overall or {}, per_dc=per_dc or {}, saturation=saturation,
        lost_shards=ch.lost_shards(storms), checks=tuple(ch.Check.of(c) for c in tl.checks),
        sweep=sweep, measured=measured, judge_error=judge_error)


def recorded(journal: dict | Journal, run_dir: Path) -> History:
    """A past run's history: its journal and the samples beside it."""
    decl = (journal.experiment.declaration if isinstance(journal, Journal)
            else (journal.get("experiment") or {}).get("declaration"))
    if not isinstance(decl, dict):
        raise ConfigError(ch.NO_DECLARATION)
    j = journal if isinstance(journal, Journal) else Journal.model_validate(journal)
    samples = ch.read(run_dir)
    return History.of_journal(j, samples.overall, samples.per_dc,
                              _saturation(run_dir, samples.health))


def declaration(exp) -> dict:
    """What judging needs of an experiment's declaration, for the journal."""
    return Objectives.of(exp).doc()


def _objective_doc(o: Objective) -> dict:
    return objective_doc(o)


def parse_override(text: str) -> Objective:
    """``join_time=3``, ``audio_delivered=0.99@10`` (a 10 s window): an SLI's default
    objective with another threshold (and window)."""
    name, sep, rest = text.partition("=")
    value, _, window = rest.partition("@")
    if not sep or not name.strip() or not value.strip():
        raise ConfigError(f"--objective {text!r}: write SLI=THRESHOLD or SLI=THRESHOLD@WINDOW_S, "
                          "e.g. join_time=3 or audio_delivered=0.99@10")
    try:
        kw = {"threshold": _number(value)}
        if window.strip():
            kw["window_s"] = _number(window)
    except ValueError:
        raise ConfigError(f"--objective {text!r}: the threshold and window must be numbers "
                          "written in ASCII digits, e.g. join_time=3 or audio_delivered=0.99@10") from None
    return objective(name.strip(), **kw)


def _number(text: str) -> float:
    """A number as the CLI takes one: ASCII only (Python's float() also reads '١' as 1)."""
    from chaos.core.validate import parse_scalar
    x = parse_scalar(text)
    if isinstance(x, str) or isinstance(x, bool) or not text.strip().isascii():
        raise ValueError(text)
    return float(x)


def rejudge(journal: dict, run_dir: Path, overrides: list[Objective] = ()) -> Journal:
    """The journal judged again from its history, with ``overrides`` replacing the
    objectives of their SLIs (an SLI declared nowhere joins the steady state), under every
    rule the run was judged by: no objective undoes a halt, an abort, a lost shard, a fault
    not reverted or a game day's broken required check."""
    from chaos.core.judge import judge
    from chaos.core.model import finite

    h = recorded(journal, run_dir)
    judged = judge(h, h.objectives.overridden(overrides))
    out = copy.deepcopy(journal)
    out["slos"] = [e.dump() for e in judged.slos]
    out["verdict"], out["reason"] = str(judged.verdict), judged.reason
    if judged.breaking_point is not None:
        out["breaking_point"] = judged.breaking_point.dump()
    out["rejudged"] = {"objectives": [objective_doc(o) for o in overrides],
                       "was": {"verdict": journal.get("verdict"), "reason": journal.get("reason")}}
    return Journal.model_validate(finite(out))
