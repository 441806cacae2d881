"""The game-day player against a real local stack: people's commands from another thread
(a note, a pause and resume, an answer that reverts a fault, an abort) land on the run's
one timeline, in order; the verdict is aborted with who and why; nothing is left injected."""

from __future__ import annotations

import json
import os
import time
from textwrap import dedent

import pytest

from chaos.gameday.plan import build
from chaos.gameday.run import run
from chaos.gameday.runbook import loads
from chaos.core.model import Verdict
from chaos.core.yamlfile import parse

from .conftest import bring_up
from .test_faults_network import assert_clean

pytestmark = pytest.mark.local
BASE = int(os.environ.get("CHAOS_TEST_GAMEDAY_BASE_PORT", 22000))

RUNBOOK = dedent("""\
    title: hand-driven drill
    roles: {commander: the incident commander}
    audience: {listeners: 6, thick_per_dc: 0}
    before_s: 6
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
    from chaos.targets import stack
    state = bring_up("local", "resilient", BASE)
    yield state
    stack.down()


def plan_of(text: str, state, **kw):
    book = loads(text, "drill.yaml")
    return build(book, state.topology, "drill.yaml", parse(text, "drill.yaml"), **kw)


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
    j = result.record
    assert j.verdict is Verdict.ABORTED, j.reason
    assert j.reason.startswith("aborted by alice") and "seen enough" in j.reason
    kinds = [(e.kind, e.who) for e in j.events
             if e.kind in ("note", "inject", "prompt", "pause", "resume", "answer", "revert", "abort")]
    assert kinds == [("note", "scribe"), ("inject", None), ("prompt", None), ("note", "alice"),
                     ("pause", "alice"), ("resume", "bob"), ("answer", "bob"), ("revert", None),
                     ("abort", "alice")], kinds
    gd = j.gameday
    assert gd.prompts[0].choice == "revert" and gd.prompts[0].who == "bob"
    assert gd.pauses[0].by == "alice" and gd.pauses[0].resumed_by == "bob"
    assert gd.aborted_by.who == "alice"
    assert [s.status for s in gd.steps] == ["done", "done", "done", "cut short"]
    (f,) = j.faults
    assert f.reverted and f.ended_s < gd.aborted_by.at_s
    assert json.loads((result.dir / "journal.json").read_text())["verdict"] == "aborted"
    html = (result.dir / "report.html").read_text()
    assert "edge-b looks slow from here" in html and "seen enough" in html
    assert_clean(space)


def test_auto_answers_by_script_and_only_runs_the_selected_steps(space, tmp_path):
    text = RUNBOOK.replace("default: keep", "default: keep\n    auto: revert\n    auto_after_s: 0.5")
    gp = plan_of(text.replace("wait: 40", "wait: 1"), space, only=["slow-b", "ask", "4"])
    result = run(gp, space, tmp_path, auto=True)
    j = result.record
    assert j.verdict is Verdict.PASSED, j.reason
    answer = next(e for e in j.events if e.kind == "answer")
    assert answer.choice == "revert" and answer.who == "auto"
    assert j.gameday.skipped == ["1-note"]
    assert not [e for e in j.events if e.kind == "note"]
    assert j.faults[0].reverted
    assert_clean(space)


# -- a real terminal: tmux, keys typed as a person would ------------------------------------

TERMINAL_RUNBOOK = dedent("""\
    title: terminal drill
    roles: {commander: the incident commander}
    audience: {listeners: 6, thick_per_dc: 0}
    before_s: 6
    after_s: 4
    recover_s: 1
    steps:
      - id: slow-b
        fault: latency
        link: listener.edge-b
        params: {latency_ms: 40}
      - id: ask
        prompt: keep the latency on?
        role: commander
        choices: [keep, revert]
        default: keep
        timeout_s: 120
      - id: long
        wait: 120
    """)


def _tmux(sock: str, *args: str) -> str:
    import subprocess
    return subprocess.run(["tmux", "-L", sock, *args], check=True, capture_output=True,
                          text=True, timeout=10).stdout


def _screen_has(sock: str, text: str, timeout_s: float = 60.0, absent: bool = False) -> str:
    deadline = time.monotonic() + timeout_s
    screen = ""
    while time.monotonic() < deadline:
        screen = _tmux(sock, "capture-pane", "-p", "-t", "gd")
        if (text in screen) != absent:
            return screen
        time.sleep(0.2)
    raise AssertionError(f"{'still' if absent else 'never'} saw {text!r} on the board:\n{screen}")


@pytest.mark.skipif(not __import__("shutil").which("tmux"), reason="needs tmux (fixtures/setup.sh installs it)")
def test_a_person_at_a_real_terminal_notes_answers_pauses_resumes_and_aborts(space, tmp_path):
    import shlex
    import sys
    from pathlib import Path

    from chaos.faults import Ledger
    rb = tmp_path / "drill.yaml"
    rb.write_text(TERMINAL_RUNBOOK)
    reports, done = tmp_path / "reports", tmp_path / "exit-code"
    chaos = Path(sys.executable).with_name("chaos")
    cmd = (f"env CHAOS_HOME={shlex.quote(os.environ['CHAOS_HOME'])} TERM=xterm-256color "
           f"{shlex.quote(str(chaos))} gameday {shlex.quote(str(rb))} --as carol "
           f"--reports {shlex.quote(str(reports))}; echo $? > {shlex.quote(str(done))}; sleep 30")
    sock = f"chaos-gd-{os.getpid()}"
    _tmux(sock, "new-session", "-d", "-s", "gd", "-x", "160", "-y", "50", cmd)
    try:
        _screen_has(sock, "PROMPT")
        _tmux(sock, "send-keys", "-t", "gd", "n")
        _screen_has(sock, "Note for the timeline")
        _tmux(sock, "send-keys", "-t", "gd", "-l", "edge-b sounds late")
        _tmux(sock, "send-keys", "-t", "gd", "Enter")
        _screen_has(sock, "carol: edge-b sounds late")
        _tmux(sock, "send-keys", "-t", "gd", "2")                  # answer: revert
        _screen_has(sock, "answered 'revert'")
        _tmux(sock, "send-keys", "-t", "gd", "p")
        _screen_has(sock, "PAUSED")
        _tmux(sock, "send-keys", "-t", "gd", "p")
        _screen_has(sock, "PAUSED", absent=True)
        _tmux(sock, "send-keys", "-t", "gd", "a")
        _screen_has(sock, "Abort the game day?")
        _tmux(sock, "send-keys", "-t", "gd", "-l", "drill over")
        _tmux(sock, "send-keys", "-t", "gd", "Enter")
        deadline = time.monotonic() + 90
        while not done.exists() and time.monotonic() < deadline:
            time.sleep(0.3)
        assert done.exists(), _tmux(sock, "capture-pane", "-p", "-t", "gd")
    finally:
        _tmux(sock, "kill-server")
    assert done.read_text().strip() == "1"                          # the verdict: aborted
    (journal,) = reports.glob("*/journal.json")
    j = json.loads(journal.read_text())
    assert j["verdict"] == "aborted" and "aborted by carol" in j["reason"] and "drill over" in j["reason"]
    seen = [(e["kind"], e.get("who")) for e in j["events"]
            if e["kind"] in ("inject", "prompt", "note", "answer", "pause", "resume", "abort")]
    assert seen == [("inject", None), ("prompt", None), ("note", "carol"), ("answer", "carol"),
                    ("pause", "carol"), ("resume", "carol"), ("abort", "carol")], seen
    assert j["gameday"]["prompts"][0]["choice"] == "revert"
    assert all(f["reverted"] for f in j["faults"])
    assert Ledger().active(space.stack_id) == []
    assert_clean(space)


def test_ctrl_c_aborts_an_auto_game_day_reverts_everything_and_exits_1(space, tmp_path):
    import signal
    import subprocess
    import sys
    from pathlib import Path

    from chaos.faults import Ledger
    rb = tmp_path / "drill.yaml"
    rb.write_text(TERMINAL_RUNBOOK)
    reports = tmp_path / "reports"
    chaos = Path(sys.executable).with_name("chaos")
    proc = subprocess.Popen([str(chaos), "gameday", str(rb), "--auto", "--reports", str(reports)],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            env={**os.environ, "COLUMNS": "200"})
    lines = []
    for line in proc.stdout:                      # bounded: the prompt waits 120 s at most
        lines.append(line)
        if "inject latency" in line:
            break
    time.sleep(1.0)
    proc.send_signal(signal.SIGINT)
    out, _ = proc.communicate(timeout=60)
    assert proc.returncode == 1, "".join(lines) + out
    (journal,) = reports.glob("*/journal.json")
    j = json.loads(journal.read_text())
    assert j["verdict"] == "aborted" and "Ctrl-C" in j["reason"]
    assert all(f["reverted"] for f in j["faults"])
    assert Ledger().active(space.stack_id) == []
    assert_clean(space)
