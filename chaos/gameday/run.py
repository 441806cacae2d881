"""Run a game plan against the stack and write the same journal and report as experiments.

    result = run(gp, state, "reports", auto=True)             # headless
    result = run(gp, state, "reports", board=show)            # show(player, core_thread)

Everything was checked when the plan was built; here the stack must be the runbook's
target and healthy, and the report directory writable, before anything is injected. A
watchdog covers the run (a crash or SIGKILL of this process still reverts every fault).
Headless, the player runs in this thread and Ctrl-C aborts (faults reverted, verdict
``aborted``). With a board, the player and its probe run in a thread of their own, so that
drawing the board never delays the listeners' clocks; the board is called in this thread
and returns once the run has been judged. Closing the board early aborts the run.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable
from pathlib import Path

from chaos.core.errors import StackError
from chaos.core import journal as jm
from chaos.core.journal import Journal
from chaos.core.model import finite
from chaos.runner import Run, RunResult, retry_policy
from chaos.targets.state import StackState
from chaos.gameday.plan import GamePlan
from chaos.gameday.player import Player

STOP_SLACK_S = 60.0


def check_target(gp: GamePlan, state: StackState) -> None:
    tg = gp.book.target
    if gp.target_file is not None:
        from chaos.targets.external import stack_id
        if state.stack_id != stack_id(gp.topology):
            raise StackError(f"the game day {gp.source} was planned against the target described "
                             f"in {gp.target_file}, and the stack given is {state.stack_id}: run it "
                             f"with the state of that target (`chaos gameday {gp.source} "
                             f"--target {gp.target_file}`)")
        return
    if (state.runtime, state.profile) != (tg.runtime, tg.profile):
        raise StackError(f"the runbook {gp.source} targets the {tg.runtime} runtime with the "
                         f"{tg.profile} profile, and the stack up is {state.runtime}/{state.profile}: "
                         f"run `chaos stack down` then `chaos stack up --runtime {tg.runtime} "
                         f"--profile {tg.profile}`, or change the runbook's target")


def run(gp: GamePlan, state: StackState, reports_dir: str | Path = "reports", *, auto: bool = False,
        progress=None, board: Callable[[Player, threading.Thread], None] | None = None,
        who: str | None = None, reproduce: str = "") -> RunResult:
    """A game day is a run (chaos.runner.Run) whose method is the runbook's player."""
    from chaos.targets import stack
    from chaos.faults.watchdog import guard
    check_target(gp, state)
    stack.require_healthy(state)
    exp = gp.experiment
    r = Run(exp, state, reports_dir, retry=retry_policy(exp, state), space_prefix="gd", seed=0,
            seconds=gp.bound_s + gp.book.max_pause_s + STOP_SLACK_S, reproduce=reproduce)
    player = Player(gp, r.engine, auto=auto, progress=progress, who=who,
                    live_view=board is not None, clients=r.clients)
    box: dict = {}

    def play() -> None:
        try:
            r.play(player)
        except BaseException as e:  # noqa: BLE001 - judged inconclusive, the journal says why
            player.tl.error = f"{type(e).__name__}: {e}"
            player.tl.abort = player.tl.abort or f"the game day failed: {player.tl.error}"
        rr = r.finish(player, amend=lambda doc: _amend(doc, player))
        box["result"] = rr
        player.finish(rr.record.verdict, rr.record.reason)

    with guard(state) if gp.faults else contextlib.nullcontext():
        if board is None:
            play()
        else:
            # the listeners' and storms' worker processes are spawned while the board owns
            # the terminal; multiprocessing's resource tracker must start first, from the
            # real stderr (the board's stand-in has no file descriptor)
            from multiprocessing import resource_tracker
            resource_tracker.ensure_running()
            core = threading.Thread(target=play, name="chaos-gameday", daemon=True)
            core.start()
            try:
                board(player, core)
            finally:
                if core.is_alive() and not player.finished:
                    player.command("abort", reason="the board was closed", who=player.who)
                core.join()
    rr = box["result"]
    rr.interrupted = player.tl.interrupted     # type: ignore[attr-defined]
    return rr


def _amend(doc: Journal, player: Player) -> Journal:
    verdict, reason = player.verdict(doc.verdict, doc.reason)
    return doc.amended(verdict=verdict, reason=reason,
                       gameday=jm.Gameday.model_validate(finite(player.record())),
                       experiment=doc.experiment.amended(kind="gameday"))
