"""A run's history, and judging it again.

A run records its history (every SLI's timed samples, overall and per DC) in
``history.npz`` beside the journal; judging is a pure function of the declaration and that
history, so ``chaos report JOURNAL --rejudge`` can judge a past run again with other
objectives (``rejudge``) without running anything. The journal keeps the declaration
(``experiment.declaration``) and the timeline (phases, faults) that judging needs.
"""

from __future__ import annotations

import copy
import json
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace

import numpy as np

from chaos.core.errors import ConfigError
from chaos.core.journal import Journal
from chaos.core.slo import DEFAULTS, SLIS, Objective, Series, objective

FILE = "history.npz"
GROUPS = ("steady_state", "during", "after")
MAX_ENTRIES = 10_000


def save(out_dir: Path, overall: dict[str, Series], per_dc: dict[str, dict[str, Series]],
         health=None) -> Path:
    """``health``: the probe processes' seconds (``chaos.session.watch.ProbeHealth``), which
    judging sets aside where the probe was saturated."""
    arrays = {}
    if health is not None:
        doc = {"tolerated_lag_ms": dict(health.tolerated_lag_ms),
               "processes": [p.to_dict() for p in health.processes]}
        arrays["health.json"] = np.frombuffer(json.dumps(doc).encode(), dtype=np.uint8)
    for where, by in [("all", overall), *per_dc.items()]:
        for name, s in by.items():
            arrays[f"{where}|{name}|t"], arrays[f"{where}|{name}|v"] = s.t_s, s.values
            if s.weights is not None:     # an aggregated sample stands for that many events
                arrays[f"{where}|{name}|w"] = s.weights
    path = out_dir / FILE
    tmp = out_dir / f".{FILE}.tmp"
    with open(tmp, "wb") as f:
        np.savez_compressed(f, **arrays)
    tmp.replace(path)
    return path


def load_health(run_dir: Path):
    """The probe processes' seconds the run recorded (None: it recorded none)."""
    from chaos.session.watch import ProbeHealth, ProcessHealth
    try:
        data = np.load(Path(run_dir) / FILE, allow_pickle=False)
        if "health.json" not in data.files:
            return None
        doc = json.loads(data["health.json"].tobytes().decode())
        return ProbeHealth([ProcessHealth.from_dict(p) for p in doc["processes"]],
                           {str(k): float(v) for k, v in doc["tolerated_lag_ms"].items()})
    except (OSError, ValueError, KeyError, TypeError, zipfile.BadZipFile) as e:
        raise ConfigError(f"{Path(run_dir) / FILE}: its probe health is damaged "
                          f"({type(e).__name__}); it cannot be judged again") from None


def load(run_dir: Path) -> tuple[dict[str, Series], dict[str, dict[str, Series]]]:
    path = Path(run_dir) / FILE
    try:
        data = np.load(path, allow_pickle=False)
    except FileNotFoundError:
        raise ConfigError(f"{path}: no history beside this journal (runs record one since the "
                          "framework kept histories); only such runs can be judged again") from None
    except (OSError, ValueError, zipfile.BadZipFile) as e:
        raise ConfigError(f"{path} is damaged ({type(e).__name__}); it cannot be judged again") from None
    if len(data.files) > MAX_ENTRIES:
        raise ConfigError(f"{path} holds {len(data.files)} arrays; a history has far fewer: "
                          "not a history file of this framework")
    overall: dict[str, Series] = {}
    per_dc: dict[str, dict[str, Series]] = {}
    for key in data.files:
        parts = key.split("|")
        if len(parts) != 3 or parts[2] != "t" or parts[1] not in SLIS:
            continue
        where, name = parts[0], parts[1]
        t, v, w = data[key], data.get(f"{where}|{name}|v"), data.get(f"{where}|{name}|w")
        if v is None or t.shape != v.shape or t.ndim != 1 or (w is not None and w.shape != t.shape):
            raise ConfigError(f"{path}: the arrays of {name} ({where}) do not match; it is damaged")
        s = Series(name, t.astype(float), v.astype(float), None if w is None else w.astype(float))
        if where == "all":
            overall[name] = s
        else:
            per_dc.setdefault(where, {})[name] = s
    return overall, per_dc


def declaration(exp) -> dict:
    """What judging needs of an experiment's declaration, for the journal."""
    return {g: [_objective_doc(o) for o in getattr(exp, g)] for g in GROUPS}


def _objective_doc(o: Objective) -> dict:
    return {"sli": o.sli, "stat": o.stat, "op": o.op, "threshold": o.threshold,
            "window_s": o.window_s, "step_s": o.step_s}


def parse_override(text: str) -> Objective:
    """``join_time=3``, ``audio_delivered=0.99@10`` (a 10 s window): an SLI's default
    objective with another threshold (and window)."""
    name, sep, rest = text.partition("=")
    value, _, window = rest.partition("@")
    if not sep or not name.strip() or not value.strip():
        raise ConfigError(f"--objective {text!r}: write SLI=THRESHOLD or SLI=THRESHOLD@WINDOW_S, "
                          "e.g. join_time=3 or audio_delivered=0.99@10")
    try:
        kw = {"threshold": float(value)}
        if window.strip():
            kw["window_s"] = float(window)
    except ValueError:
        raise ConfigError(f"--objective {text!r}: the threshold and window must be numbers") from None
    return objective(name.strip(), **kw)


@dataclass
class _Fault:
    ended_s: float | None
    started_s: float | None
    reverted: bool
    revert_error: str
    step: object = field(default=None)


def rejudge(journal: dict, run_dir: Path, overrides: list[Objective] = ()) -> Journal:
    """The journal judged again from its history, with ``overrides`` replacing the
    objectives of their SLIs (an SLI declared nowhere joins the steady state). A run that
    was aborted or stopped by its gate keeps its verdict: no objective changes that."""
    from chaos.runner.judge import judge_slos, verdict

    decl = (journal.get("experiment") or {}).get("declaration")
    if not isinstance(decl, dict):
        raise ConfigError("this journal does not keep its experiment's declaration (runs record "
                          "it since the framework could judge again); it cannot be judged again")
    groups = {g: [_objective(d) for d in decl.get(g) or []] for g in GROUPS}
    for o in overrides:
        placed = False
        for g in GROUPS:
            for i, old in enumerate(groups[g]):
                if old.sli == o.sli:
                    groups[g][i], placed = o, True
        if not placed:
            groups["steady_state"].append(o)
    overall, per_dc = load(run_dir)
    exp = SimpleNamespace(**groups)
    phases = {p["name"]: [float(p["start_s"]), float(p["end_s"])] for p in journal.get("phases") or []}
    faults = [_Fault(f.get("ended_s"), f.get("started_s"), bool(f.get("reverted")),
                     str(f.get("revert_error") or ""), SimpleNamespace(describe=lambda f=f: f.get("label", "")))
              for f in journal.get("faults") or []]
    tl = SimpleNamespace(phases=phases, faults=faults, halt=None, gate=None, abort="",
                         interrupted=False)
    end_s = max([p[1] for p in phases.values()] + [0.0])
    out = copy.deepcopy(journal)
    slos = judge_slos(exp, tl, overall, per_dc, end_s, saturation=load_health(run_dir))
    out["slos"] = [e.dump() for e in slos]
    if journal.get("verdict") in ("passed", "failed"):
        v, reason = verdict(tl, slos)
        out["verdict"], out["reason"] = str(v), reason
    out["rejudged"] = {"objectives": [_objective_doc(o) for o in overrides],
                       "was": {"verdict": journal.get("verdict"), "reason": journal.get("reason")}}
    from chaos.core.model import finite
    return Journal.model_validate(finite(out))


def _objective(d: dict) -> Objective:
    if not isinstance(d, dict) or d.get("sli") not in DEFAULTS:
        raise ConfigError(f"the journal's declaration has a malformed objective: {d!r}")
    try:
        return Objective(d["sli"], d["stat"], d["op"], float(d["threshold"]),
                         None if d.get("window_s") is None else float(d["window_s"]),
                         float(d.get("step_s") or 1.0))
    except (KeyError, TypeError, ValueError) as e:
        raise ConfigError(f"the journal's declaration has a malformed objective {d!r}: {e}") from None
