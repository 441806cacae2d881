"""The game-day player against a real local stack: people's commands from another thread
(a note, a pause and resume, an answer that reverts a fault, an abort) land on the run's
one timeline, in order; the verdict is aborted with who and why; nothing is left injected."""

from __future__ import annotations

import json
import os
import threading
import time
from textwrap import dedent

import pytest

from chaos.gameday import yamlpos
from chaos.gameday.plan import build
from chaos.gameday.run import run
from chaos.gameday.runbook import loads

from .conftest import bring_up
from .test_faults_network import assert_clean

pytestmark = pytest.mark.local
BASE = int(os.environ.get("CHAOS_TEST_GAMEDAY_BASE_PORT", 22000))

RUNBOOK = dedent("""\
    title: hand-driven drill
    roles: {commander: the incident commander}
    audience: {listeners: 6, thick_per_dc: 0}
    before_s: 3
    after_s: 4
    recover_s: 1
    steps:
      - note: drill starts
        author: scribe
      - id: slow-b
        fault: latency
        link: listener.edge-b
        params: {latency_ms: 40}
      - id: ask
        prompt: revert the latency?
        role: commander
        choices: [revert, keep]
        default: keep
        timeout_s: 60
        then: {revert: revert slow-b}
      - id: long
        wait: 40
    """)


@pytest.fixture(scope="module")
def space(chaos_home):
    from chaos import stack
    state = bring_up("local", "resilient", BASE)
    yield state
    stack.down()


def plan_of(text: str, state, **kw):
    book = loads(text, "drill.yaml")
    return build(book, state.topology, "drill.yaml", yamlpos.parse(text, "drill.yaml"), **kw)


def wait_for(what, timeout_s: float = 30.0):
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        got = what()
        if got:
            return got
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


def test_people_drive_the_game_day_and_the_journal_holds_it_in_order(space, tmp_path):
    gp = plan_of(RUNBOOK, space)

    def people(player, core):
        wait_for(lambda: player.view.prompt is not None)
        player.command("note", text="edge-b looks slow from here", who="alice")
        player.command("pause", who="alice")
        wait_for(lambda: player.view.paused)
        left = player.view.prompt.left_s
        time.sleep(1.0)
        assert player.view.prompt.left_s == pytest.approx(left, abs=0.3)   # its clock stopped
        player.command("resume", who="bob")
        wait_for(lambda: not player.view.paused)
        player.command("answer", choice="revert", who="bob")
        wait_for(lambda: not player.view.faults and player.view.current == 3)
        player.command("abort", reason="seen enough", who="alice")
        core.join(timeout=60)
        assert player.view.finished and player.view.verdict == "aborted"

    result = run(gp, space, tmp_path, board=people, who="tester")
    j = result.journal
    assert j["verdict"] == "aborted", j["reason"]
    assert j["reason"].startswith("aborted by alice") and "seen enough" in j["reason"]
    kinds = [(e["kind"], e.get("who")) for e in j["events"]
             if e["kind"] in ("note", "inject", "prompt", "pause", "resume", "answer", "revert", "abort")]
    assert kinds == [("note", "scribe"), ("inject", None), ("prompt", None), ("note", "alice"),
                     ("pause", "alice"), ("resume", "bob"), ("answer", "bob"), ("revert", None),
                     ("abort", "alice")], kinds
    gd = j["gameday"]
    assert gd["prompts"][0]["choice"] == "revert" and gd["prompts"][0]["who"] == "bob"
    assert gd["pauses"][0]["by"] == "alice" and gd["pauses"][0]["resumed_by"] == "bob"
    assert gd["aborted_by"]["who"] == "alice"
    assert [s["status"] for s in gd["steps"]] == ["done", "done", "done", "cut short"]
    (f,) = j["faults"]
    assert f["reverted"] and f["ended_s"] < gd["aborted_by"]["at_s"]
    assert json.loads((result.dir / "journal.json").read_text())["verdict"] == "aborted"
    html = (result.dir / "report.html").read_text()
    assert "edge-b looks slow from here" in html and "seen enough" in html
    assert_clean(space)


def test_auto_answers_by_script_and_only_runs_the_selected_steps(space, tmp_path):
    text = RUNBOOK.replace("default: keep", "default: keep\n    auto: revert\n    auto_after_s: 0.5")
    gp = plan_of(text.replace("wait: 40", "wait: 1"), space, only=["slow-b", "ask", "4"])
    result = run(gp, space, tmp_path, auto=True)
    j = result.journal
    assert j["verdict"] == "passed", j["reason"]
    answer = next(e for e in j["events"] if e["kind"] == "answer")
    assert answer["choice"] == "revert" and answer["who"] == "auto"
    assert j["gameday"]["skipped"] == ["1-note"]
    assert not [e for e in j["events"] if e["kind"] == "note"]
    assert j["faults"][0]["reverted"]
    assert_clean(space)
