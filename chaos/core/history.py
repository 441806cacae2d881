"""A run's recorded history: everything its verdict rests on, as one frozen value.

The objectives declared per phase (and the halt conditions), the phases, each fault's
window, why the run stopped early (a halt, Ctrl-C, the gate, an error), every SLI's timed
samples overall and per DC, the seconds the probes could not keep up, the shards that died
and the audience they carried, and a game day's checks with their outcomes. Judging is a
pure function of it (chaos.core.judge.judge): a run is judged from the history it
recorded, and ``chaos report --rejudge`` judges the same history again with other
objectives, under the same rules.

The SLI samples and the probes' seconds are kept in ``history.npz`` beside the journal
(``write``, ``read``); the rest is in the journal (``History.of_journal``).
"""

from __future__ import annotations

import json
import zipfile
import zlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from chaos.core import journal as jm
from chaos.core.errors import ConfigError
from chaos.core.slo import DEFAULTS, SLIS, Objective, Saturation, Series

FILE = "history.npz"
MAX_ENTRIES = 10_000
HEALTH = "health.json"
NO_DECLARATION = ("this journal does not keep its experiment's declaration (runs record it "
                  "since the framework could judge again); it cannot be judged again")


@dataclass(frozen=True)
class Objectives:
    """The objectives a run is judged against: the steady state (required before the method
    and after it), ``during`` (while faults are on), ``after`` (after it too), and the halt
    conditions (checked while the run went on; recorded, not judged again)."""
    steady_state: tuple[Objective, ...] = ()
    during: tuple[Objective, ...] = ()
    after: tuple[Objective, ...] = ()
    halts: tuple[Objective, ...] = ()

    GROUPS: ClassVar[tuple[str, ...]] = ("steady_state", "during", "after")

    @classmethod
    def of(cls, declared) -> Objectives:
        """From anything that declares them (an experiment)."""
        return cls(*(tuple(getattr(declared, g, ()) or ()) for g in cls.GROUPS + ("halts",)))

    def overridden(self, overrides: Iterable[Objective]) -> Objectives:
        """``overrides`` replacing the objectives of their SLIs wherever they are declared;
        an SLI declared nowhere joins the steady state."""
        groups = {g: list(getattr(self, g)) for g in self.GROUPS}
        for o in overrides:
            placed = False
            for g in self.GROUPS:
                for i, old in enumerate(groups[g]):
                    if old.sli == o.sli:
                        groups[g][i], placed = o, True
            if not placed:
                groups["steady_state"].append(o)
        return replace(self, **{g: tuple(v) for g, v in groups.items()})

    def doc(self) -> dict[str, list[dict]]:
        """For the journal (``experiment.declaration``)."""
        return {g: [objective_doc(o) for o in getattr(self, g)] for g in self.GROUPS + ("halts",)}

    @classmethod
    def from_doc(cls, decl: Mapping) -> Objectives:
        return cls(*(tuple(_objective(d) for d in (decl.get(g) or ())) for g in cls.GROUPS + ("halts",)))


def objective_doc(o: Objective) -> dict:
    return {"sli": o.sli, "stat": o.stat, "op": o.op, "threshold": o.threshold,
            "window_s": o.window_s, "step_s": o.step_s}


def _objective(d) -> Objective:
    if isinstance(d, jm.Part):
        d = d.dump()
    if not isinstance(d, Mapping) or d.get("sli") not in DEFAULTS:
        raise ConfigError(f"the journal's declaration has a malformed objective: {d!r}")
    try:
        return Objective(d["sli"], d["stat"], d["op"], float(d["threshold"]),
                         None if d.get("window_s") is None else float(d["window_s"]),
                         float(d.get("step_s") or 1.0))
    except (KeyError, TypeError, ValueError) as e:
        raise ConfigError(f"the journal's declaration has a malformed objective {d!r}: {e}") from None


@dataclass(frozen=True)
class Phase:
    name: str
    start_s: float
    end_s: float


@dataclass(frozen=True)
class FaultWindow:
    """When a fault was on, and whether it was put back."""
    label: str
    started_s: float | None
    ended_s: float | None
    reverted: bool
    revert_error: str = ""
    step: int | None = None         # in a sweep: the step's index
    value: Any = None               # in a sweep: the swept parameter's value at this step


@dataclass(frozen=True)
class Sweep:
    """A swept fault's parameter, for the breaking point."""
    param: str
    unit: str
    fault: str
    label: str


@dataclass(frozen=True)
class Stop:
    """Why the run stopped before its end, or did not end as planned."""
    aborted: str = ""       # aborted: Ctrl-C, a person or the runbook (why)
    halt: str = ""          # a halt condition broke (its message)
    stopped: str = ""       # stopped early: the gate did not hold, an error (why)


@dataclass(frozen=True)
class LostShard:
    """A shard of a join storm that died, and the share of the audience it carried."""
    index: int
    shards: int
    engine: str
    at_s: float
    share: float
    arrivals: int
    lost: int

    def describe(self) -> str:
        return (f"shard {self.index} of {self.shards} ({self.engine} engine) died at "
                f"{self.at_s:.1f} s of its storm, carrying {self.share:.1%} of the "
                f"audience ({self.arrivals:,} arrivals, {self.lost:,} never resolved)")


def lost_shards(storms: Iterable[Mapping]) -> tuple[LostShard, ...]:
    """The dead shards of the storms' results (journal dicts)."""
    out = []
    for s in storms:
        for d in s.get("dead") or ():
            out.append(LostShard(d["index"], s["shards"], s["engine"], d["at_s"], d["share"],
                                 d["arrivals"], d["lost"]))
    return tuple(out)


@dataclass(frozen=True)
class Broken:
    """One objective a check found broken."""
    name: str
    objective: str
    value: float | None


@dataclass(frozen=True)
class Unmeasured:
    """One objective a check could not judge, and why (the judge's note)."""
    name: str
    objective: str
    why: str


@dataclass(frozen=True)
class Check:
    """A game day's check of the SLIs at one moment, and what it found."""
    step: str
    t_s: float
    required: bool
    verdict: str
    broken: tuple[Broken, ...] = ()
    unmeasured: tuple[Unmeasured, ...] = ()

    @classmethod
    def of(cls, c: Mapping) -> Check:
        """From the record a game day keeps (chaos.gameday.player; the journal's ``checks``)."""
        results = [r.dump() if isinstance(r, jm.Part) else r for r in c.get("results") or ()]
        results = [r for r in results if isinstance(r, Mapping)]
        return cls(str(c.get("step") or ""), float(c.get("t_s") or 0.0), bool(c.get("required")),
                   str(c.get("verdict") or ""),
                   tuple(Broken(str(r.get("name")), str(r.get("objective")), r.get("value"))
                         for r in results if r.get("verdict") == "failed"),
                   tuple(Unmeasured(str(r.get("name")), str(r.get("objective")),
                                    str(r.get("note") or "nothing was measured"))
                         for r in results if r.get("verdict") not in ("passed", "failed")))


@dataclass(frozen=True, eq=False)   # samples are arrays: a history is itself, not equal to another
class History:
    """What a run recorded, and all its verdict rests on."""
    objectives: Objectives
    phases: tuple[Phase, ...]
    end_s: float                                  # the run's end, seconds since its start
    faults: tuple[FaultWindow, ...] = ()
    stop: Stop = Stop()
    overall: Mapping[str, Series] = field(default_factory=dict)
    per_dc: Mapping[str, Mapping[str, Series]] = field(default_factory=dict)
    saturation: Saturation | None = None          # the seconds the probes could not keep up
    lost_shards: tuple[LostShard, ...] = ()
    checks: tuple[Check, ...] = ()                # a game day's
    sweep: Sweep | None = None
    measured: bool = True                         # False: the probe did not finish
    judge_error: str = ""                         # judging failed when the run ended

    def judged_with(self, objectives: Objectives | None) -> History:
        return self if objectives is None else replace(self, objectives=objectives)

    @classmethod
    def of_journal(cls, journal: jm.Journal, overall: Mapping[str, Series],
                   per_dc: Mapping[str, Mapping[str, Series]],
                   saturation: Saturation | None = None) -> History:
        """A past run's history: its journal's facts and the samples it kept (``read``)."""
        decl = journal.experiment.declaration
        if not isinstance(decl, Mapping):
            raise ConfigError(NO_DECLARATION)
        phases = tuple(Phase(str(p.name), float(p.start_s), float(p.end_s))
                       for p in journal.phases or () if p.start_s is not None and p.end_s is not None)
        bp = journal.breaking_point
        sweep = None if bp is None or bp.param is None else \
            Sweep(bp.param, bp.unit or "", bp.fault or "", bp.label or "")
        faults = tuple(FaultWindow(
            label=f.label or f.name or "", started_s=f.started_s, ended_s=f.ended_s,
            reverted=bool(f.reverted), revert_error=f.revert_error or "", step=f.step,
            value=None if sweep is None else (f.params or {}).get(sweep.param))
            for f in journal.faults)
        storms = [s.dump() for s in journal.storms or ()]
        lost = lost_shards(storms)
        gameday = journal.gameday
        checks = tuple(Check.of(c.dump()) for c in (gameday.checks if gameday else None) or ())
        return cls(objectives=Objectives.from_doc(decl), phases=phases,
                   end_s=max([p.end_s for p in phases] + [0.0]), faults=faults,
                   stop=_stop_of(journal, lost), overall=overall, per_dc=per_dc,
                   saturation=saturation, lost_shards=lost, checks=checks, sweep=sweep,
                   judge_error=_judge_error(journal.error or ""))


def _stop_of(journal: jm.Journal, lost: tuple[LostShard, ...]) -> Stop:
    """Why a recorded run stopped early. The journal keeps the halt, and an event for the
    first reason the run stopped (``abort``); a run aborted otherwise (Ctrl-C, a person,
    the runbook) says why in its reason."""
    halt = (journal.halt.message or "halted") if journal.halt is not None else ""
    first = next((e.message for e in journal.events if e.kind == "abort" and e.message), "")
    aborted = ""
    if journal.verdict == "aborted" and not halt:
        aborted = journal.reason or "aborted"
        tail = "; ".join(x.describe() for x in lost)
        if lost and aborted.endswith("; " + tail):       # the dead shards are said again
            aborted = aborted[:-len(tail) - 2]
    return Stop(aborted=aborted, halt=halt, stopped=first)


def _judge_error(error: str) -> str:
    """The judging's own failure, from the journal's ``error`` (the run's; judging's; the
    game day record's)."""
    _, sep, rest = error.partition("judging: ")
    return rest.split("; game day record: ")[0] if sep else ""


# -- the samples on disk ---------------------------------------------------------------------

def write(out_dir: Path, overall: Mapping[str, Series], per_dc: Mapping[str, Mapping[str, Series]],
          health: dict | None = None) -> Path:
    """Every SLI's samples, and ``health`` (the probes' seconds, as their to_dict), written
    atomically to ``out_dir/history.npz``."""
    arrays = {}
    if health is not None:
        arrays[HEALTH] = np.frombuffer(json.dumps(health).encode(), dtype=np.uint8)
    for where, by in [("all", overall), *per_dc.items()]:
        for name, s in by.items():
            arrays[f"{where}|{name}|t"], arrays[f"{where}|{name}|v"] = s.t_s, s.values
            if s.weights is not None:     # an aggregated sample stands for that many events
                arrays[f"{where}|{name}|w"] = s.weights
    path = Path(out_dir) / FILE
    tmp = Path(out_dir) / f".{FILE}.tmp"
    with open(tmp, "wb") as f:
        np.savez_compressed(f, **arrays)
    tmp.replace(path)
    return path


# what a damaged or foreign file raises while it is read: never past read()
_DAMAGE = (OSError, EOFError, ValueError, KeyError, TypeError, UnicodeDecodeError,
           zipfile.BadZipFile, zlib.error, NotImplementedError, RuntimeError, MemoryError)
# (zipfile: NotImplementedError for a mangled version or compression field, RuntimeError for
# an "encrypted" entry; numpy: MemoryError for a header that claims an enormous array)


MAX_T_S = 10 * 86400.0        # a sample's time: well past any run's end


def _unfit(t: np.ndarray, v: np.ndarray, w: np.ndarray | None) -> str:
    """What is wrong with one SLI's arrays as read ("" if nothing): real numbers only
    (values may be infinite: a failed join), times finite and in order, weights >= 0."""
    for label, a in (("times", t), ("values", v), ("weights", w)):
        if a is not None and a.dtype.kind not in "iuf":
            return f"have {label} of type {a.dtype} (numbers expected)"
    tf = t.astype(float)
    if not np.all(np.isfinite(tf)) or np.any(np.abs(tf) > MAX_T_S):
        return f"have times that are not finite or beyond {MAX_T_S:g} s"
    if np.any(np.diff(tf) < 0):
        return "have times out of order"
    if w is not None:
        wf = w.astype(float)
        if not np.all(np.isfinite(wf)) or np.any(wf < 0):
            return "have weights that are negative or not finite"
    return ""


@dataclass(frozen=True, eq=False)
class Samples:
    """What ``history.npz`` holds."""
    overall: Mapping[str, Series]
    per_dc: Mapping[str, Mapping[str, Series]]
    health: dict | None           # the probes' seconds as written (None: none recorded)


def read(run_dir: Path) -> Samples:
    """``run_dir/history.npz``; a missing, damaged or foreign file is a ConfigError that
    says so and what can be done."""
    path = Path(run_dir) / FILE
    try:
        with np.load(path, allow_pickle=False) as data:
            if len(data.files) > MAX_ENTRIES:
                raise ConfigError(f"{path} holds {len(data.files)} arrays; a history has far "
                                  "fewer: not a history file of this framework")
            arrays = {k: data[k] for k in data.files}
    except FileNotFoundError:
        raise ConfigError(f"{path}: no history beside this journal (runs record one since the "
                          "framework kept histories); only such runs can be judged again") from None
    except _DAMAGE as e:
        raise ConfigError(f"{path} is damaged ({type(e).__name__}); it cannot be judged again: "
                          "run the experiment again for a new history") from None
    overall: dict[str, Series] = {}
    per_dc: dict[str, dict[str, Series]] = {}
    for key, t in arrays.items():
        parts = key.split("|")
        if len(parts) != 3 or parts[2] != "t" or parts[1] not in SLIS:
            continue
        where, name = parts[0], parts[1]
        v, w = arrays.get(f"{where}|{name}|v"), arrays.get(f"{where}|{name}|w")
        try:
            if v is None or t.shape != v.shape or t.ndim != 1 or (w is not None and w.shape != t.shape):
                raise ValueError("shapes")
            wrong = _unfit(t, v, w)
            s = None if wrong else Series(name, t.astype(float), v.astype(float),
                                          None if w is None else w.astype(float))
        except _DAMAGE:
            raise ConfigError(f"{path}: the arrays of {name} ({where}) do not match; it is "
                              "damaged and cannot be judged again") from None
        if wrong:
            raise ConfigError(f"{path}: the samples of {name} ({where}) {wrong}: not as a run "
                              "writes them; the file is damaged and cannot be judged again (run "
                              "the experiment again for a new history)")
        if where == "all":
            overall[name] = s
        else:
            per_dc.setdefault(where, {})[name] = s
    health = None
    if HEALTH in arrays:
        try:
            health = json.loads(arrays[HEALTH].tobytes().decode())
            if not isinstance(health, dict):
                raise TypeError("not an object")
        except _DAMAGE as e:
            raise ConfigError(f"{path}: its probe health is damaged ({type(e).__name__}); it "
                              "cannot be judged again") from None
    return Samples(overall, per_dc, health)
