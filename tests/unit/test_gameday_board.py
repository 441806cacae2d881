"""The game-day board, headless (App.run_test and a Pilot pressing keys): it draws the
player's view and sends people's actions back as commands; it owns nothing of the run.
The player is replaced by its seam (a view and a command method): that seam is the point."""

from __future__ import annotations

import asyncio
import math
from dataclasses import replace
from types import SimpleNamespace

from chaos.gameday.board import Board, header, prompt_panel, sli_table, spark, timeline
from chaos.gameday.player import BoardView, FaultView, PromptView, SliView, StepView


class FakePlayer:
    def __init__(self, view: BoardView) -> None:
        self.view, self.who, self.commands = view, "alice", []
        self.gp = SimpleNamespace(book=SimpleNamespace(title=view.title))

    def command(self, name: str, **kw) -> None:
        self.commands.append((name, kw))
        if name == "pause":
            self.view = replace(self.view, paused=True)
        elif name == "resume":
            self.view = replace(self.view, paused=False)


VIEW = BoardView(
    title="DC lost at peak", t_s=12.5, phase="steps",
    steps=(StepView(1, "storm", "load", "join_storm(rate=40) for 14 s", "done"),
           StepView(2, "lose-dc-a", "fault", "dc_loss(dc-a) until reverted", "done"),
           StepView(3, "fail-over", "prompt", "ask commander: fail over?", "running"),
           StepView(4, "4-wait", "wait", "wait 4 s", "pending")),
    current=2,
    faults=(FaultView("storm", "join_storm(rate=40)", 6.0, 7.5),
            FaultView("lose-dc-a", "dc_loss(dc-a)", 8.6, None)),
    prompt=PromptView("fail-over", "dc-a is gone. Fail over?", "commander",
                      ("fail over", "hold"), "fail over", 27.0),
    slis=(SliView("join_time", "all", 0.8, "passed", "p95 <= 2 s", "s", (0.1, 0.2, 0.8)),
          SliView("join_time", "dc-a", math.inf, "failed", "p95 <= 2 s", "s", (0.1, math.inf)),
          SliView("audio_delivered", "all", 0.42, "failed", "mean >= 0.995", "", (1.0, 0.42))),
    events=({"t_s": 6.0, "kind": "note", "message": "game day opens", "who": "scribe"},
            {"t_s": 8.6, "kind": "inject", "message": "dc_loss(dc-a) injected"}))


def test_the_view_renders_slis_faults_steps_prompt_and_timeline_in_words():
    from rich.console import Console
    console = Console(width=140, record=True, color_system=None)
    for r in (header(VIEW), sli_table(VIEW), prompt_panel(VIEW), timeline(VIEW)):
        console.print(r)
    text = console.export_text()
    assert "DC lost at peak" in text and "t=12.5 s" in text
    assert "0.8 s" in text and "∞" in text and "42 %" in text
    assert "dc-a is gone. Fail over?" in text and "[1] fail over" in text and "27 s left" in text
    assert "scribe: game day opens" in text
    assert str(spark((0.0, 1.0, None, math.inf), False)) == "▁█ █"


def test_keys_send_notes_pauses_answers_reverts_and_aborts_to_the_player():
    player = FakePlayer(VIEW)

    async def drive():
        app = Board(player, close_after_s=600)    # closing itself is left to the terminal test
        async with app.run_test(size=(140, 45)) as pilot:
            await pilot.pause()
            assert "dc-a is gone" in str(app.query_one("#prompt").render())
            await pilot.press("n")
            await pilot.press(*"edge-b slow")
            await pilot.press("enter")
            await pilot.press("p")
            await pilot.pause(0.3)
            assert "PAUSED" in str(app.query_one("#header").render())
            await pilot.press("p")
            await pilot.press("2")                    # answer: hold
            await pilot.press("r")
            await pilot.press("2")                    # revert the second active fault
            await pilot.press("a")
            await pilot.press("escape")               # thought better of it
            await pilot.press("a")
            await pilot.press(*"enough")
            await pilot.press("enter")
            await pilot.press("ctrl+c")
            await pilot.press("q")                    # not finished: stays open
            await pilot.pause()
            assert app.is_running
            player.view = replace(player.view, finished=True, verdict="aborted", reason="by alice")
            await pilot.pause(0.4)
            assert "ABORTED" in str(app.query_one("#header").render())
            assert app._board_closing                        # it closes itself once judged
        return app

    asyncio.run(drive())
    assert player.commands == [
        ("note", {"text": "edge-b slow", "who": "alice"}),
        ("pause", {"who": "alice"}),
        ("resume", {"who": "alice"}),
        ("answer", {"choice": "hold", "who": "alice"}),
        ("revert", {"step": "lose-dc-a", "who": "alice"}),
        ("abort", {"reason": "enough", "who": "alice"}),
        ("abort", {"reason": "Ctrl-C on the board", "who": "alice"}),
    ]
