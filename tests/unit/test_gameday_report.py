"""A game day's journal in the report: the people's side on every chart (pauses shaded,
a marker per note, prompt, answer, pause, resume and abort) and a Game day section."""

from __future__ import annotations

from chaos.report import html

from .test_report import passed_journal


def gameday_journal() -> dict:
    j = passed_journal()
    j["verdict"], j["reason"] = "aborted", "aborted by alice at t=9 s: enough"
    j["events"] += [
        {"t_s": 3.0, "kind": "prompt", "message": "asked to commander: fail over? [yes / no]"},
        {"t_s": 4.0, "kind": "note", "message": "edge-b is slow", "who": "bob"},
        {"t_s": 5.0, "kind": "pause", "message": "alice paused the schedule", "who": "alice"},
        {"t_s": 7.0, "kind": "resume", "message": "alice resumed the schedule", "who": "alice"},
        {"t_s": 7.5, "kind": "answer", "message": "alice answered 'yes'", "who": "alice"},
        {"t_s": 9.0, "kind": "abort", "message": "aborted by alice: enough", "who": "alice"}]
    j["gameday"] = {
        "runbook": "experiments/gameday_x.yaml", "auto": False, "operator": "alice",
        "roles": {"commander": "alice"}, "skipped": [],
        "prompts": [{"step": "ask", "role": "commander", "question": "fail over?", "asked_s": 3.0,
                     "who": "alice", "choice": "yes", "waited_s": 4.5}],
        "steps": [{"index": 1, "id": "ask", "summary": "ask commander: fail over?", "status": "done"}],
        "pauses": [{"at_s": 5.0, "ended_s": 7.0, "by": "alice"}]}
    return j


def test_the_people_are_on_every_chart_and_in_their_own_section():
    page = html.page(gameday_journal())
    charts = [c for c in page.split('<svg class="sli-chart"')[1:]]
    assert charts
    for c in charts:
        for kind in ("prompt", "note", "pause", "resume", "answer", "abort"):
            assert f'data-kind="{kind}"' in c
        assert 'class="pause-window"' in c
    assert "bob: edge-b is slow" in page
    assert "<h2>Game day</h2>" in page and "Prompts and answers" in page
    assert "fail over?" in page and ">alice<" in page and "4.5 s" in page


def test_an_experiment_journal_has_no_game_day_section():
    page = html.page(passed_journal())
    assert "<h2>Game day</h2>" not in page and "person-event" not in page
