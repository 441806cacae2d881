"""Every verdict rule in one pure function over a recorded history (chaos.core.judge): the
run, the game day and ``chaos report --rejudge`` judge alike, so that a run judged again with
looser objectives never comes out kinder than the rules allow.

The histories here are written by the runner's own ``_finish`` (and a game day player's own
check); the seam is the probe: its SLI series (``all_series``, the player's ``live_series``)
and a storm's result with a dead shard."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import shutil
import time
from pathlib import Path
from textwrap import dedent

import numpy as np
import pytest

from chaos import report
from chaos.adapters.space.reference import build
from chaos.cli import main
from chaos.core.errors import ConfigError
from chaos.core.history import History, read
from chaos.core.journal import Journal
from chaos.core.judge import judge, verdict
from chaos.core.model import Verdict
from chaos.core.slo import Series, objective
from chaos.experiment import Experiment, fault
from chaos.runner import method as method_mod
from chaos.runner import preflight
from chaos.runner.history import recorded, save
from chaos.session.probe import ProbeResult
from chaos.session.watch import ProbeHealth
from chaos.targets.state import StackState

TOPO = build("local", "resilient", 18000)
JOURNALS = sorted((Path(__file__).parent / "journals").glob("*.json"))
T = np.arange(0.0, 20.0, 0.1)


def _state() -> StackState:
    return StackState("space-test", "local", "resilient", "now", TOPO, {})


def _series(join_s: float) -> dict[str, Series]:
    """The live SLIs over 20 s: joins of ``join_s`` while the fault is on (6-9 s), fast
    otherwise; audio delivered and on time throughout."""
    return {"join_time": Series("join_time", T, np.where((T >= 6) & (T < 9), join_s, 0.2)),
            "audio_delivered": Series("audio_delivered", T, np.ones_like(T)),
            "mouth_to_ear": Series("mouth_to_ear", T, np.full_like(T, 0.1))}


class DeadShardStorm:
    """A scaled-out storm's result with one shard dead (ScaledResult.to_dict's shape)."""
    peak_concurrent = 100
    achieved_rate_per_s = 10.0

    def to_dict(self) -> dict:
        return {"engine": "swarm", "shards": 4, "dead": [
            {"index": 2, "at_s": 3.14, "share": 0.25, "arrivals": 200, "resolved": 74, "lost": 126}]}


def _result(storms=()) -> ProbeResult:
    return ProbeResult(listeners_requested=0, seconds=20.0, space="x", t0_ns=0, records=[],
                       thick=[], produced=None, speaker_origin=None, storms=list(storms),
                       bins={dc: [] for dc in TOPO.dcs}, health=ProbeHealth())


def _probe_measured(monkeypatch, overall):
    monkeypatch.setattr("chaos.runner.observe.all_series",
                        lambda result, onset, last: (overall, {dc: overall for dc in TOPO.dcs}))


def _played(tl):
    for f in tl.faults:
        f.started_s, f.ended_s, f.reverted = 6.0, 9.0, True
    tl.phases = {"before": [0.0, 6.0], "during": [6.0, 9.0], "after": [9.0, 20.0]}


def _finish(tmp_path, exp, method, result, amend=None):
    from chaos.runner import finish as _finish
    out = tmp_path / "run"
    out.mkdir()
    return _finish(exp, _state(), "run-1", out, dt.datetime.now(dt.timezone.utc), 20.0, method,
                   result, "", amend=amend)


def _run(tmp_path, monkeypatch, storms=(), stop=None):
    """A run whose joins were slow (3 s) under its fault, recorded by the runner
    (``stop(timeline)``: what stopped it early)."""
    monkeypatch.setattr("chaos.targets.stack.require_healthy", lambda s: None)
    exp = Experiment("lost", steady_state=[objective("join_time")],
                     during=[objective("join_time")],
                     method=[fault("link_down", 0, 3, link="listener.edge-a")])
    plans, _ = preflight(exp, _state())
    m = method_mod.Method(exp, None, plans)
    _played(m.tl)
    if stop is not None:
        stop(m.tl)
    _probe_measured(monkeypatch, _series(3.0))
    return _finish(tmp_path, exp, m, _result(storms))


def _rejudge(run_dir: Path, *objectives: str) -> dict:
    args = ["report", str(run_dir / "journal.json"), "--rejudge"]
    for o in objectives:
        args += ["--objective", o]
    code = main(args)
    report.load(run_dir / "rejudged" / "journal.json")          # a valid journal, checked strictly
    doc = json.loads((run_dir / "rejudged" / "journal.json").read_text())
    assert code == {"passed": 0, "failed": 1, "aborted": 1, "inconclusive": 4}[doc["verdict"]]
    return doc


# -- a run that lost a shard ------------------------------------------------------------------

def test_a_run_that_lost_a_shard_stays_inconclusive_judged_again_with_looser_objectives(
        tmp_path, monkeypatch):
    rr = _run(tmp_path, monkeypatch, storms=[DeadShardStorm()])
    assert rr.journal["verdict"] == "failed", rr.journal["reason"]
    assert "shard 2 of 4 (swarm engine) died" in rr.journal["reason"]
    again = _rejudge(rr.dir, "join_time=10")
    assert again["verdict"] == "inconclusive", again["reason"]
    assert "shard 2 of 4 (swarm engine) died" in again["reason"]
    assert again["rejudged"]["was"]["verdict"] == "failed"


def test_without_a_lost_shard_the_looser_objective_passes_the_same_run(tmp_path, monkeypatch):
    rr = _run(tmp_path, monkeypatch)
    assert rr.journal["verdict"] == "failed"
    assert _rejudge(rr.dir, "join_time=10")["verdict"] == "passed"
    assert _rejudge(rr.dir)["verdict"] == "failed"


def _ctrl_c(tl):
    tl.interrupted, tl.abort = True, "interrupted (Ctrl-C) at t=7.0 s"
    tl.event(7.0, "abort", tl.abort)


def _gate(tl):
    tl.gate, tl.abort = {"failed": []}, "steady state did not hold before the method (x)"
    tl.event(6.0, "abort", tl.abort)


@pytest.mark.parametrize("stop, was", [(_ctrl_c, "aborted"), (_gate, "inconclusive")],
                         ids=["ctrl-c", "gate"])
def test_a_run_stopped_early_keeps_its_verdict_and_reason_judged_again(tmp_path, monkeypatch,
                                                                      stop, was):
    rr = _run(tmp_path, monkeypatch, stop=stop)
    assert rr.journal["verdict"] == was
    again = _rejudge(rr.dir, "join_time=10")
    assert (again["verdict"], again["reason"]) == (was, rr.journal["reason"])


# -- a game day that failed on a required check ------------------------------------------------

RUNBOOK = dedent("""\
    title: drill
    target: {runtime: local, profile: resilient}
    audience: {listeners: 2, thick_per_dc: 0}
    steps:
      - id: down-a
        fault: link_down
        link: listener.edge-a
        duration_s: 3
      - id: joins
        check: [join_time]
        over_s: 5
    """)


class Clock:
    """What the player's clock needs of a live run: its start, 10 s ago."""
    def __init__(self):
        self.t0_ns = time.time_ns() - 10_000_000_000


def _gameday(tmp_path, monkeypatch):
    from chaos.core.yamlfile import parse
    from chaos.gameday import run as gameday_run
    from chaos.gameday.plan import build as plan, topology_for
    from chaos.gameday.player import Player
    from chaos.gameday.runbook import loads
    book = loads(RUNBOOK, "rb.yaml")
    gp = plan(book, topology_for(book), "rb.yaml", parse(RUNBOOK, "rb.yaml"))
    player = Player(gp, None, auto=True, who="alice")
    player.live = Clock()
    live = _series(3.0)
    monkeypatch.setattr("chaos.gameday.player.live_series", lambda live_run, dc=None: live)
    [check] = [p for p in gp.steps if p.id == "joins"]
    assert asyncio.run(player._do_check(check)) is False        # the joins were slow: it broke
    assert player.tl.checks[0]["verdict"] == "failed" and player.tl.checks[0]["required"]
    _played(player.tl)
    _probe_measured(monkeypatch, _series(3.0))
    return _finish(tmp_path, gp.experiment, player, _result(),
                   amend=lambda doc: gameday_run._amend(doc, player))


def _gameday_check(tmp_path, monkeypatch, live, runbook=RUNBOOK):
    """A game day whose check ``joins`` sees the live SLIs ``live``; the run's own probe
    measured a healthy stack throughout (so only the check can decide against it)."""
    from chaos.core.yamlfile import parse
    from chaos.gameday import run as gameday_run
    from chaos.gameday.plan import build as plan, topology_for
    from chaos.gameday.player import Player
    from chaos.gameday.runbook import loads
    book = loads(runbook, "rb.yaml")
    gp = plan(book, topology_for(book), "rb.yaml", parse(runbook, "rb.yaml"))
    player = Player(gp, None, auto=True, who="alice")
    player.live = Clock()
    monkeypatch.setattr("chaos.gameday.player.live_series", lambda live_run, dc=None: live)
    [check] = [p for p in gp.steps if p.id == "joins"]
    asyncio.run(player._do_check(check))
    _played(player.tl)
    _probe_measured(monkeypatch, _series(0.2))
    rr = _finish(tmp_path, gp.experiment, player, _result(),
                 amend=lambda doc: gameday_run._amend(doc, player))
    return rr, player


def _no_joins() -> dict[str, Series]:
    """The live SLIs with no join measured at all (the join probes never reported)."""
    live = _series(0.2)
    live["join_time"] = Series("join_time", np.zeros(0), np.zeros(0))
    return live


def test_a_required_check_that_measured_nothing_leaves_the_game_day_inconclusive(tmp_path, monkeypatch):
    rr, player = _gameday_check(tmp_path, monkeypatch, _no_joins())
    assert player.tl.checks[0]["verdict"] == "inconclusive" and player.tl.checks[0]["required"]
    j = rr.journal
    assert all(s["verdict"] == "passed" for s in j["slos"] if s["required"])  # only the check is unsure
    assert j["verdict"] == "inconclusive", j["reason"]
    assert j["reason"].startswith("required check joins at t=")
    assert "measured nothing: join_time p95 <= 2 s not judged (nothing was measured)" in j["reason"]
    from chaos.core.exits import Exit, for_verdict
    assert for_verdict(j["verdict"]) is Exit.INCONCLUSIVE
    for objectives in ((), ("join_time=30",)):       # no objective makes it pass
        again = _rejudge(rr.dir, *objectives)
        assert (again["verdict"], again["reason"]) == ("inconclusive", j["reason"])


def test_a_check_that_is_not_required_and_measured_nothing_decides_nothing(tmp_path, monkeypatch):
    book = RUNBOOK.replace("    over_s: 5\n", "    over_s: 5\n    required: false\n")
    assert "required: false" in book
    rr, player = _gameday_check(tmp_path, monkeypatch, _no_joins(), book)
    assert player.tl.checks[0]["verdict"] == "inconclusive" and not player.tl.checks[0]["required"]
    assert rr.journal["verdict"] == "passed"


def test_a_required_check_that_broke_fails_the_game_day_through_the_judge(tmp_path, monkeypatch):
    rr, player = _gameday_check(tmp_path, monkeypatch, _series(3.0))
    assert player.tl.checks[0]["verdict"] == "failed"
    assert rr.journal["verdict"] == "failed" and rr.journal["reason"].startswith("check joins at t=")
    assert player.verdict(Verdict.PASSED, "every required SLO held") == \
        (Verdict.PASSED, "every required SLO held")   # the player adds no rule of its own


def test_a_game_day_that_failed_on_a_required_check_stays_failed_judged_again(tmp_path, monkeypatch):
    rr = _gameday(tmp_path, monkeypatch)
    j = rr.journal
    assert j["verdict"] == "failed" and j["reason"].startswith("check joins at t="), j["reason"]
    assert all(s["verdict"] == "passed" for s in j["slos"] if s["required"])  # only the check broke
    for objectives in ((), ("join_time=30",), ("join_time=30", "audio_delivered=0.5")):
        again = _rejudge(rr.dir, *objectives)
        assert again["verdict"] == "failed", (objectives, again["reason"])
        assert again["reason"].startswith("check joins at t=")


# -- the judge is pure -----------------------------------------------------------------------

def test_the_judge_is_pure_and_judges_the_recorded_history_as_the_run_did(tmp_path, monkeypatch):
    rr = _run(tmp_path, monkeypatch, storms=[DeadShardStorm()])
    h = recorded(rr.journal, rr.dir)
    first, second = judge(h), judge(h)
    assert first == second
    assert judge(recorded(rr.journal, rr.dir)) == first        # read again: the same history
    assert (str(first.verdict), first.reason) == (rr.journal["verdict"], rr.journal["reason"])
    assert [(e.name, e.phase, e.verdict, e.value) for e in first.slos] == [
        (e["name"], e["phase"], e["verdict"], e.get("value")) for e in rr.journal["slos"]]
    looser = h.objectives.overridden([objective("join_time", threshold=10.0)])
    assert judge(h, looser) == judge(h, looser) and judge(h) == first   # the history is unchanged


# -- a damaged history ------------------------------------------------------------------------

def _corrupt_middle(p: Path) -> None:
    b = bytearray(p.read_bytes())
    for i in range(len(b) // 3, len(b) // 3 + 64):
        b[i] ^= 0xFF
    p.write_bytes(bytes(b))


@pytest.mark.parametrize("damage", [
    lambda p: p.write_bytes(p.read_bytes()[: len(p.read_bytes()) // 2]),   # cut short
    _corrupt_middle,                                                        # bytes flipped
    lambda p: p.write_bytes(b""),                                           # empty
    lambda p: p.write_bytes(b"PK\x03\x04" + b"\0" * 40),                   # a zip's start only
], ids=["truncated", "flipped", "empty", "zip-start"])
def test_a_damaged_history_is_a_config_error_that_says_what_to_do(tmp_path, damage):
    t = np.arange(0.0, 50.0, 0.01)
    s = Series("join_time", t, np.random.default_rng(1).random(len(t)))
    save(tmp_path, {"join_time": s}, {"dc-a": {"join_time": s}}, ProbeHealth())
    damage(tmp_path / "history.npz")
    with pytest.raises(ConfigError, match="damaged|not a history") as e:
        read(tmp_path)
    assert "judged again" in str(e.value)


def test_a_history_whose_probe_health_is_not_json_is_a_config_error(tmp_path):
    s = Series("join_time", np.array([0.5]), np.array([0.2]))
    np.savez_compressed(tmp_path / "history.npz", **{"all|join_time|t": s.t_s, "all|join_time|v": s.values,
                                                     "health.json": np.frombuffer(b"\xff{", np.uint8)})
    with pytest.raises(ConfigError, match="probe health is damaged"):
        read(tmp_path)


# -- the journals of real runs ----------------------------------------------------------------

@pytest.mark.parametrize("path", JOURNALS, ids=lambda p: p.stem)
def test_the_rules_over_a_journals_record_give_its_verdict(path):
    """What a journal records (its stops, faults, storms, checks, SLOs) is enough for the
    rules to say its verdict and reason again."""
    j = json.loads(path.read_text())
    h = History.of_journal(Journal.model_validate(j), {}, {})
    assert verdict(h, j["slos"]) == (j["verdict"], j["reason"])


def _history_from_series(j: dict, out: Path) -> None:
    """A history for a journal that kept none: its charts' points as the samples."""
    def one(points):
        pairs = [(t + 0.5, v) for t, v in zip(points["t_s"], points["value"]) if v is not None]
        return Series.of(name, pairs)
    overall, per_dc = {}, {}
    for name, doc in j["series"].items():
        overall[name] = one(doc)
        for dc, pts in (doc.get("per_dc") or {}).items():
            per_dc.setdefault(dc, {})[name] = one(pts)
    save(out, overall, per_dc)


KINDNESS = {"passed": 0, "inconclusive": 1, "failed": 1, "aborted": 2}


@pytest.mark.parametrize("path", JOURNALS, ids=lambda p: p.stem)
def test_every_journal_reads_renders_and_is_judged_again_never_kinder(path, tmp_path):
    run = tmp_path / path.stem
    run.mkdir()
    shutil.copy(path, run / "journal.json")
    report.load(run / "journal.json")                  # reads, checked strictly
    j = json.loads(path.read_text())
    assert main(["report", str(run / "journal.json"), "--out", str(tmp_path / "out")]) == 0
    _history_from_series(j, run)
    for objectives in ((), ("join_time=30", "audio_delivered=0.5", "mouth_to_ear=5")):
        again = _rejudge(run, *objectives)
        assert (run / "rejudged" / "report.html").exists()
        if j["verdict"] != "passed":
            assert again["verdict"] != "passed", again["reason"]
        if j["verdict"] == "aborted":
            assert (again["verdict"], again["reason"]) == (j["verdict"], j["reason"])
        assert KINDNESS[again["verdict"]] >= KINDNESS[j["verdict"]] or j["verdict"] == "passed"


# -- the rules, in the order they decide ------------------------------------------------------

def _h(**kw) -> History:
    from chaos.core.history import Objectives, Phase
    return History(Objectives(), (Phase("before", 0.0, 6.0),), 20.0, **kw)


def _slo(v: str, required: bool = True) -> dict:
    return {"name": "join_time", "phase": "during", "verdict": v, "objective": "p95 <= 2 s",
            "required": required}


def test_the_rules_decide_in_order_and_none_is_undone_by_a_passing_slo():
    from chaos.core.history import Broken, Check, FaultWindow, LostShard, Stop, Unmeasured
    from chaos.core.model import Verdict
    ok = [_slo("passed")]
    lost = (LostShard(2, 4, "swarm", 3.14, 0.25, 200, 126),)
    broke = (Check("c", 9.0, True, "failed", (Broken("join_time", "p95 <= 2 s", 3.0),)),)
    stuck = (FaultWindow("latency(edge-a)", 6.0, 9.0, False, "toxiproxy gone"),)
    assert verdict(_h(), ok) == (Verdict.PASSED, "every required SLO held")
    assert verdict(_h(stop=Stop(aborted="interrupted (Ctrl-C)", halt="halted: x")), ok) == \
        (Verdict.ABORTED, "interrupted (Ctrl-C)")
    assert verdict(_h(stop=Stop(halt="halted: x", stopped="halted: x")), ok) == (Verdict.ABORTED, "halted: x")
    assert verdict(_h(stop=Stop(stopped="the gate")), ok) == (Verdict.INCONCLUSIVE, "the gate")
    assert verdict(_h(faults=stuck), ok)[0] is Verdict.FAILED
    assert verdict(_h(), [_slo("failed")])[0] is Verdict.FAILED
    assert verdict(_h(), [_slo("failed", required=False)])[0] is Verdict.PASSED
    assert verdict(_h(lost_shards=lost), ok)[0] is Verdict.INCONCLUSIVE
    assert verdict(_h(lost_shards=lost), [_slo("failed")])[0] is Verdict.FAILED
    assert verdict(_h(measured=False), ok)[0] is Verdict.INCONCLUSIVE
    assert verdict(_h(judge_error="ZeroDivisionError"), ok) == \
        (Verdict.INCONCLUSIVE, "the run could not be judged: ZeroDivisionError")
    assert verdict(_h(checks=broke), ok) == \
        (Verdict.FAILED, "check c at t=9 s: join_time p95 <= 2 s was 3")
    assert verdict(_h(checks=(Check("c", 9.0, False, "failed"),)), ok)[0] is Verdict.PASSED
    unsure = (Check("c", 9.0, True, "inconclusive", (), (Unmeasured("join_time", "p95 <= 2 s",
                                                                    "nothing was measured"),)),)
    assert verdict(_h(checks=unsure), ok) == (
        Verdict.INCONCLUSIVE, "required check c at t=9 s measured nothing: join_time p95 <= 2 s "
        "not judged (nothing was measured)")
    assert verdict(_h(checks=(Check("c", 9.0, True, ""),)), ok) == (
        Verdict.INCONCLUSIVE, "required check c at t=9 s measured nothing: its verdict was not recorded")
    assert verdict(_h(checks=(Check("c", 9.0, False, "inconclusive"),)), ok)[0] is Verdict.PASSED
    assert verdict(_h(checks=unsure + broke), ok)[0] is Verdict.FAILED      # broken beats unsure
    assert verdict(_h(checks=unsure), [_slo("failed")])[0] is Verdict.FAILED
    # a required check that broke fails a run that was otherwise only inconclusive
    assert verdict(_h(checks=broke, lost_shards=lost), ok) == (
        Verdict.FAILED, "check c at t=9 s: join_time p95 <= 2 s was 3; also every required SLO "
        "held; " + lost[0].describe())


def test_a_check_step_that_measured_nothing_is_shown_inconclusive_not_failed(monkeypatch):
    from chaos.core.yamlfile import parse
    from chaos.gameday.plan import build as plan, topology_for
    from chaos.gameday.player import Player
    from chaos.gameday.runbook import loads
    book_text = dedent("""\
        title: drill
        target: {runtime: local, profile: resilient}
        audience: {listeners: 2, thick_per_dc: 0}
        steps:
          - id: joins
            check: [join_time]
            over_s: 5
          - id: said
            note: the joins were not measured
        """)
    book = loads(book_text, "rb.yaml")
    gp = plan(book, topology_for(book), "rb.yaml", parse(book_text, "rb.yaml"))
    player = Player(gp, None, auto=True, who="alice")
    player.live = Clock()
    monkeypatch.setattr("chaos.gameday.player.live_series", lambda live_run, dc=None: _no_joins())
    asyncio.run(player._steps())
    assert player.status == {"joins": "inconclusive", "said": "done"}
