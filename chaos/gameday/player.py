"""The game-day player: plays a runbook's steps inside a probe run, with people in the loop.

Headless: no terminal here. It is the experiment runner's method
(``chaos.runner.method.Method``) with the runbook's steps as its ``script``, so
faults go in and out through the same fault engine (ledger first, each revert under its
own deadline), the same gate and halt conditions apply, and the same timeline feeds the
judge and the journal. The human side goes on that timeline too: prompts, answers (who,
when, after how long), notes, pauses, reverts by hand and aborts.

Commands come from any thread (the board's, a test's) through :meth:`Player.command`;
they run in the player's event loop. What a board shows is :attr:`Player.view`, a frozen
snapshot the player replaces as things change: a board reads it and never owns it.

Pausing holds the schedule: steps do not advance and the clocks of timed faults, waits and
prompts stop; active faults stay on, halts are still watched, and revert and abort still
work. Pauses add up to at most the runbook's ``max_pause_s``; then the schedule resumes.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import getpass
import math
import threading
from collections import deque
from dataclasses import dataclass, replace

from chaos.faults.engine import Engine
from chaos.core.model import Verdict, value_words as _fmt
from chaos.runner.method import FaultRun, Method
from chaos.runner.observe import live_series, live_window_end
from chaos.core.slo import DEFAULTS, Objective
from chaos.gameday.plan import GamePlan, PlannedStep

VIEW_EVERY_S = 0.25
SLI_EVERY_S = 1.0
SLI_WINDOW_S = 5.0
TREND_POINTS = 30
WAIT_POLL_S = 0.5
COMMANDS = ("note", "pause", "resume", "revert", "abort", "answer")


@dataclass(frozen=True)
class StepView:
    index: int
    id: str
    kind: str
    summary: str
    status: str                     # pending | running | done | skipped | failed | aborted


@dataclass(frozen=True)
class FaultView:
    id: str                         # the runbook step that injected it
    label: str
    started_s: float
    left_s: float | None            # None: until reverted


@dataclass(frozen=True)
class PromptView:
    step: str
    question: str
    role: str | None
    choices: tuple[str, ...]
    default: str | None
    left_s: float


@dataclass(frozen=True)
class SliView:
    sli: str
    scope: str                      # "all" or a DC
    value: float | None
    verdict: str                    # passed | failed | inconclusive
    objective: str
    unit: str
    trend: tuple[float | None, ...]


@dataclass(frozen=True)
class BoardView:
    title: str
    t_s: float = 0.0
    phase: str = "starting"
    paused: bool = False
    pause_left_s: float = 0.0
    steps: tuple[StepView, ...] = ()
    current: int | None = None      # index into steps
    faults: tuple[FaultView, ...] = ()
    prompt: PromptView | None = None
    slis: tuple[SliView, ...] = ()
    events: tuple[dict, ...] = ()
    finished: bool = False
    verdict: str = ""
    reason: str = ""


class Player(Method):
    """Plays one game plan against the probe session its run (chaos.runner.Run) opened."""

    def __init__(self, gp: GamePlan, engine: Engine, auto: bool = False, progress=None,
                 who: str | None = None, live_view: bool = False, clients=None) -> None:
        super().__init__(gp.experiment, engine, list(gp.faults), progress, clients)
        self.gp, self.auto, self.live_view = gp, auto, live_view
        self.who = who or _user()
        self.runs: dict[str, FaultRun] = {}
        runs = iter(self.tl.faults)
        for p in gp.steps:
            if p.fault is not None:
                self.runs[p.id] = next(runs)
        self.status = {p.id: "pending" for p in gp.steps}
        self.current: int | None = None
        self.phase = "starting"
        self.loop: asyncio.AbstractEventLoop | None = None
        self._lock = threading.Lock()
        self._pending: list[tuple[str, dict]] = []   # commands given before the run started
        self._wake = asyncio.Event()
        self._paused_at: float | None = None
        self._paused_total = 0.0
        self._pause_log: list[dict] = []
        self._deadlines: dict[str, float] = {}      # fault step id -> schedule-clock end
        self._prompt: tuple[PlannedStep, asyncio.Future, float] | None = None
        self._reverting: set[int] = set()
        self._timers: list[asyncio.Task] = []
        self._trend: dict[tuple[str, str], deque] = {}
        self._slis: tuple[SliView, ...] = ()
        self.human_abort: dict | None = None        # who aborted and why
        self.script_abort: dict | None = None       # a prompt, wait or check that aborted
        self.checks: list[dict] = self.tl.checks     # recorded in the history: judged there
        self.prompts: list[dict] = []
        self.notes: list[dict] = []
        self.finished = False
        self.view = BoardView(gp.book.title, steps=self._steps_view())

    # -- commands (any thread) ------------------------------------------------------------
    def command(self, name: str, **kw) -> None:
        """note(text, who), pause(who), resume(who), revert(step, who), abort(reason, who),
        answer(choice, who): run in the player's loop, in the order given."""
        if name not in COMMANDS:
            raise ValueError(f"unknown command {name!r}; use one of {', '.join(COMMANDS)}")
        with self._lock:
            loop = self.loop
            if loop is None:
                self._pending.append((name, kw))
                return
        if loop.is_closed() or self.finished:
            return
        with contextlib.suppress(RuntimeError):      # the loop closed meanwhile: nothing to do
            loop.call_soon_threadsafe(self._apply, name, kw)

    def _apply(self, name: str, kw: dict) -> None:
        try:
            self._command(name, kw)
        except Exception as e:  # noqa: BLE001 - a command that failed is recorded, the run goes on
            self.tl.event(self.now(), "error", f"the command {name} failed: {type(e).__name__}: {e}")
        self._poke()

    def _command(self, name: str, kw: dict) -> None:
        who = kw.get("who") or self.who
        t = self.now()
        if name == "note":
            text = str(kw.get("text", "")).strip()
            if text:
                self._note(t, text, who)
        elif name == "pause":
            if self._paused_at is None and not self.abort.is_set():
                self._paused_at = t
                self._pause_log.append({"at_s": round(t, 3), "by": who, "ended_s": None})
                self.tl.event(t, "pause", f"{who} paused the schedule", who=who, at=_wall())
        elif name == "resume":
            self._resume(who, f"{who} resumed the schedule")
        elif name == "revert":
            step = kw.get("step")
            f = self.runs.get(step)
            if f is None or not f.active:
                self.tl.event(t, "revert", f"{who} asked to revert {step}: it is not active",
                              who=who, step=step)
            else:
                self.tl.event(t, "revert", f"{who} reverts {f.step.describe()} by hand",
                              who=who, step=step, at=_wall())
                self._spawn(self.revert(f, f"by hand, {who}"))
        elif name == "abort":
            reason = str(kw.get("reason") or "no reason given").strip()
            if not self.abort.is_set():
                self.human_abort = {"who": who, "reason": reason, "at_s": round(t, 3), "at": _wall()}
                self.stop(f"aborted by {who}: {reason}", who=who, reason=reason)
        elif name == "answer":
            if self._prompt is not None and not self._prompt[1].done():
                self._prompt[1].set_result((str(kw.get("choice")), who, "answered"))

    def _note(self, t: float, text: str, who: str) -> None:
        self.notes.append({"t_s": round(t, 3), "who": who, "text": text, "at": _wall()})
        self.tl.event(t, "note", text, who=who, at=_wall())

    def _resume(self, who: str, message: str) -> None:
        if self._paused_at is None:
            return
        t = self.now()
        self._paused_total += t - self._paused_at
        self._paused_at = None
        self._pause_log[-1]["ended_s"] = round(t, 3)
        self._pause_log[-1]["resumed_by"] = who
        self.tl.event(t, "resume", message, who=who, at=_wall(),
                      paused_s=round(t - self._pause_log[-1]["at_s"], 3))

    def _spawn(self, coro) -> None:
        task = asyncio.ensure_future(coro)
        self._timers.append(task)

    def _poke(self) -> None:
        self._wake.set()
        self._refresh()

    def stop(self, why: str, **extra) -> None:
        first = not self.abort.is_set() and not self.tl.abort
        super().stop(why)
        if first and extra and self.tl.events and self.tl.events[-1]["kind"] == "abort":
            self.tl.events[-1].update(extra, at=_wall())    # who aborted, and why
        self._poke()

    # -- clocks ---------------------------------------------------------------------------
    def sched_now(self) -> float:
        """Run time less the time spent paused: the clock of the runbook's schedule."""
        t = self.now()
        return t - self._paused_total - (t - self._paused_at if self._paused_at is not None else 0.0)

    @property
    def paused(self) -> bool:
        return self._paused_at is not None

    def _pause_left(self) -> float:
        used = self._paused_total + (self.now() - self._paused_at if self.paused else 0.0)
        return max(0.0, self.gp.book.max_pause_s - used)

    async def _hold(self, seconds: float, until: asyncio.Future | None = None) -> str:
        """Wait ``seconds`` of schedule time: "done" (``until`` resolved first), "timeout",
        or "abort". Pauses stop the clock, up to the pause budget."""
        deadline = self.sched_now() + seconds
        while True:
            if self.abort.is_set():
                return "abort"
            if until is not None and until.done():
                return "done"
            if self.paused and self._pause_left() <= 0:
                self._resume("schedule", "the pause budget (max_pause_s) is used up: the "
                                         "schedule resumes")
            left = deadline - self.sched_now()
            if left <= 0 and not self.paused:
                return "timeout"
            self._wake.clear()
            wait = self._pause_left() if self.paused else left
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout=max(0.01, wait))

    async def _while_paused(self) -> None:
        while self.paused and not self.abort.is_set():
            await self._hold(0.0)

    # -- the hook -------------------------------------------------------------------------
    async def play(self, live) -> None:
        loop = asyncio.get_running_loop()
        with self._lock:
            self.loop, pending, self._pending = loop, self._pending, []
        for name, kw in pending:
            loop.call_soon(self._apply, name, kw)     # once Method has set self.live
        viewer = asyncio.create_task(self._keep_view())
        try:
            await super().play(live)
        finally:
            for task in self._timers:
                task.cancel()
            await asyncio.gather(*self._timers, return_exceptions=True)
            self.phase = "finished"
            viewer.cancel()
            await asyncio.gather(viewer, return_exceptions=True)
            self._refresh()

    async def script(self) -> None:
        book = self.gp.book
        self.phase = "steady state"
        self.progress(0.0, self.gp.bound_s, "steady state")
        await self.until(book.before_s)
        self.tl.phases["before"] = [0.0, self.now()]
        if self.abort.is_set():
            return
        if self.exp.gate:
            self.phase = "gate"
            if not await self.gate():
                return
        start = self.now()
        self.tl.phases["during"] = [start, start]
        self.phase = "steps"
        monitor = asyncio.create_task(self.watch_halts()) if self.exp.halts else None
        try:
            await self._steps()
        finally:
            if monitor is not None:
                monitor.cancel()
                await asyncio.gather(monitor, return_exceptions=True)
        self.current = None
        await self._run_out()
        await self.revert_all("the runbook's steps ended")
        self.tl.phases["during"][1] = self.now()
        if not self.abort.is_set():
            self.phase = "recovery"
            self.progress(self.now(), self.gp.bound_s, "recovery")
            t = self.now()
            self.end_s = t + book.after_s
            self.tl.phases["recovery"] = [t, t + book.recover_s]
            self.tl.phases["after"] = [t + book.recover_s, self.end_s]

    async def _steps(self) -> None:
        for n, p in enumerate(self.gp.steps):
            await self._while_paused()
            if self.abort.is_set():
                break
            self.current = n
            self.status[p.id] = "running"
            t = self.now()
            self.tl.event(t, "step", f"step {p.index} [{p.id}]: {p.summary()}", step=p.id,
                          step_kind=p.kind)
            self.progress(t, self.gp.bound_s, f"step {p.index} [{p.id}] {p.summary()}")
            self._refresh()
            ok = await getattr(self, f"_do_{p.kind}")(p)
            unsure = p.kind == "check" and bool(self.checks) and self.checks[-1]["step"] == p.id \
                and self.checks[-1]["verdict"] == "inconclusive"    # it measured nothing
            self.status[p.id] = ("inconclusive" if unsure else "failed" if ok is False
                                 else "cut short" if self.abort.is_set() else "done")
        for p in self.gp.steps:
            if self.status[p.id] in ("pending", "running"):
                self.status[p.id] = "not run"
        self._refresh()

    # -- steps ----------------------------------------------------------------------------
    async def _do_fault(self, p: PlannedStep) -> bool:
        f = self.runs[p.id]
        await self.inject(f)
        if f.started_s is None:
            return False
        if p.spec.duration_s:
            self._deadlines[p.id] = self.sched_now() + p.spec.duration_s
            self._spawn(self._expire(f, p.spec.duration_s, p.id))
        return True

    _do_load = _do_fault

    async def _expire(self, f: FaultRun, seconds: float, step_id: str) -> None:
        if await self._hold(seconds) == "timeout" and f.active:
            await self.revert(f, "its duration ended")
        self._deadlines.pop(step_id, None)

    async def _run_out(self) -> None:
        """After the last step, timed faults still on run out their duration."""
        while not self.abort.is_set():
            left = [end - self.sched_now() for sid, end in self._deadlines.items()
                    if self.runs[sid].active]
            if not left:
                return
            self.phase = "timed faults run out"
            await self._hold(max(0.05, min(left)))
            await asyncio.sleep(0)      # let the timer that expired revert its fault

    async def revert(self, f: FaultRun, why: str) -> None:
        if id(f) in self._reverting:
            return          # a revert of it is under way (by hand, by its timer, at the end)
        self._reverting.add(id(f))
        try:
            await super().revert(f, why)
        finally:
            self._reverting.discard(id(f))
            self._poke()

    async def revert_all(self, why: str) -> None:
        for f in reversed(self.tl.faults):
            if f.active:
                await self.revert(f, why)
        while any(f.active for f in self.tl.faults) and self._reverting:
            await asyncio.sleep(0.05)     # a revert by hand still running: wait for it

    async def _do_wait(self, p: PlannedStep) -> bool:
        w = p.spec.wait
        if w.seconds is not None:
            await self._hold(w.seconds)     # an abort cuts it short: not a failure of the step
            return True
        objectives = [o.build() for o in w.until]
        deadline = self.sched_now() + w.timeout_s
        while True:
            failing = [r for r in self._judge_now(objectives, w.over_s, w.dc) if r.verdict is not Verdict.PASSED]
            if not failing:
                self.tl.event(self.now(), "wait", f"[{p.id}] {', '.join(o.sli for o in objectives)} "
                              f"held over the last {w.over_s:g} s", step=p.id)
                return True
            left = deadline - self.sched_now()
            if left <= 0:
                why = "; ".join(f"{r.name} {_fmt(r.value)} ({r.verdict})" for r in failing)
                self.tl.event(self.now(), "wait", f"[{p.id}] timed out after {w.timeout_s:g} s: "
                              f"{why}", step=p.id, on_timeout=w.on_timeout)
                if w.on_timeout == "abort":
                    self._script_stop(p, f"wait {p.id} timed out ({why})")
                return w.on_timeout != "abort"
            if await self._hold(min(WAIT_POLL_S, left)) == "abort":
                return True

    async def _do_prompt(self, p: PlannedStep) -> bool:
        s = p.spec
        fut: asyncio.Future = self.loop.create_future()
        asked = self.now()
        self._prompt = (p, fut, self.sched_now() + s.timeout_s)
        role = f" to {s.role}" + (f" ({self.gp.book.roles[s.role]})" if s.role in self.gp.book.roles else "") \
            if s.role else ""
        self.tl.event(asked, "prompt", f"asked{role}: {s.prompt} [{' / '.join(s.choices)}]",
                      step=p.id, role=s.role, choices=list(s.choices), timeout_s=s.timeout_s,
                      at=_wall())
        if self.auto:
            answer = s.auto or s.default
            if answer is not None:
                self._spawn(self._auto_answer(fut, answer, s.auto_after_s))
        self._refresh()
        try:
            outcome = await self._hold(s.timeout_s, fut)
        finally:
            self._prompt = None
        t = self.now()
        record = {"step": p.id, "question": s.prompt, "role": s.role, "asked_s": round(asked, 3),
                  "choices": list(s.choices)}
        if outcome == "abort":
            record.update(outcome="abort", answered_s=None)
            self.prompts.append(record)
            return True
        if outcome == "done":
            choice, who, how = fut.result()
            if choice not in s.choices:
                choice = s.choices[0] if len(s.choices) == 1 else choice
        else:
            how, who = "timed out", "nobody"
            if s.on_timeout == "abort" or (self.auto and s.on_timeout == "default" and s.default is None):
                record.update(outcome="timed out", answered_s=None)
                self.prompts.append(record)
                self.tl.event(t, "answer", f"nobody answered {s.prompt!r} within {s.timeout_s:g} s: "
                              "the game day aborts", step=p.id, who=None)
                self._script_stop(p, f"prompt {p.id} was not answered within {s.timeout_s:g} s")
                return False
            choice = s.default if s.on_timeout == "default" else None
        waited = round(t - asked, 3)
        record.update(outcome=how, choice=choice, who=who, answered_s=round(t, 3), waited_s=waited,
                      at=_wall())
        self.prompts.append(record)
        if choice is None:
            self.tl.event(t, "answer", f"nobody answered {s.prompt!r} within {s.timeout_s:g} s; "
                          "the runbook continues", step=p.id, who=None, waited_s=waited)
            return True
        words = {"answered": f"{who} answered", "auto": f"{who} answered (--auto)",
                 "timed out": "no answer in time: the default"}[how]
        action = s.action(choice)
        self.tl.event(t, "answer", f"{words} {choice!r} to {s.prompt!r} after {waited:g} s"
                      + ("" if action == "continue" else f"; then: {action}"), step=p.id,
                      who=who, role=s.role, choice=choice, waited_s=waited, at=_wall())
        await self._then(p, action, who)
        return True

    async def _auto_answer(self, fut: asyncio.Future, choice: str, after_s: float) -> None:
        if await self._hold(after_s) == "timeout" and not fut.done():
            fut.set_result((choice, "auto", "auto"))
            self._poke()

    async def _then(self, p: PlannedStep, action: str, who: str) -> None:
        if action == "abort":
            self.human_abort = {"who": who, "reason": f"answered to abort at {p.id}",
                                "at_s": round(self.now(), 3), "at": _wall()}
            self.stop(f"aborted by {who}: the answer to {p.id} was to abort", who=who,
                       reason=f"answered to abort at {p.id}")
        elif action.startswith("revert"):
            target = action.split()[1]
            if target == "all":
                await self.revert_all(f"the answer to {p.id}")
                return
            f = self.runs.get(target)
            if f is None or not f.active:
                self.tl.event(self.now(), "revert", f"the answer to {p.id} reverts {target}: "
                              "it is not active (skipped or already reverted)", step=p.id)
                return
            await self.revert(f, f"the answer to {p.id} ({who})")

    async def _do_check(self, p: PlannedStep) -> bool:
        s = p.spec
        results = self._judge_now([o.build() for o in s.check], s.over_s, s.dc)
        t = self.now()
        bad = [r for r in results if r.verdict is not Verdict.PASSED]
        entry = {"step": p.id, "t_s": round(t, 3), "over_s": s.over_s, "dc": s.dc,
                 "required": s.required, "results": [r.to_dict() for r in results],
                 "verdict": str(Verdict.PASSED if not bad else (
                     Verdict.FAILED if any(r.verdict is Verdict.FAILED for r in bad)
                     else Verdict.INCONCLUSIVE))}
        self.checks.append(entry)
        words = "; ".join(f"{r.name} {r.objective}: {_fmt(r.value)} {r.verdict}" for r in results)
        self.tl.event(t, "check", f"[{p.id}] {words} (last {s.over_s:g} s"
                      + (f", {s.dc}" if s.dc else "") + ")", step=p.id, verdict=entry["verdict"])
        if bad and s.on_fail == "abort":
            self._script_stop(p, f"check {p.id} did not hold: {words}")
        return not bad

    async def _do_note(self, p: PlannedStep) -> bool:
        self._note(self.now(), p.spec.note, p.spec.author)
        return True

    async def _do_revert(self, p: PlannedStep) -> bool:
        what = p.spec.revert
        if what == "all":
            await self.revert_all(f"runbook step {p.id}")
        else:
            f = self.runs.get(what)
            if f is not None and f.active:
                await self.revert(f, f"runbook step {p.id}")
        return True

    def _script_stop(self, p: PlannedStep, reason: str) -> None:
        if not self.abort.is_set():
            self.script_abort = {"step": p.id, "reason": reason, "at_s": round(self.now(), 3)}
        self.stop(reason)

    # -- SLIs now -------------------------------------------------------------------------
    def _judge_now(self, objectives: list[Objective], over_s: float, dc: str | None):
        t = self.now()
        series = live_series(self.live, dc)
        out = []
        for o in objectives:
            end = live_window_end(self.live, o.sli, t)
            out.append(replace(o, window_s=None).evaluate(series[o.sli], max(0.0, end - over_s),
                                                          end, phase="now"))
        return out

    def _objective(self, sli: str) -> Objective:
        for group in (self.exp.steady_state, self.exp.during):
            for o in group:
                if o.sli == sli:
                    return o
        return DEFAULTS[sli]

    def _measure(self) -> None:
        out = []
        for scope in ("all", *self.live.topo.dcs):
            series = live_series(self.live, None if scope == "all" else scope)
            t = self.now()
            for sli in ("join_time", "audio_delivered", "mouth_to_ear"):
                o = self._objective(sli)
                end = live_window_end(self.live, sli, t)
                r = replace(o, window_s=None).evaluate(series[sli], max(0.0, end - SLI_WINDOW_S),
                                                       end, phase="now")
                trend = self._trend.setdefault((sli, scope), deque(maxlen=TREND_POINTS))
                value = r.value if r.value is None or math.isfinite(r.value) else math.inf
                trend.append(value)
                out.append(SliView(sli, scope, value, str(r.verdict), o.describe(), o.unit,
                                   tuple(trend)))
        self._slis = tuple(out)

    # -- the view -------------------------------------------------------------------------
    async def _keep_view(self) -> None:
        next_sli = 0.0
        while True:
            if self.live_view and self.live is not None and self.now() >= next_sli:
                next_sli = self.now() + SLI_EVERY_S
                try:
                    await asyncio.to_thread(self._measure)
                except Exception:  # noqa: BLE001 - the board misses one reading, the run goes on
                    pass
            self._refresh()
            await asyncio.sleep(VIEW_EVERY_S)

    def _steps_view(self) -> tuple[StepView, ...]:
        return tuple(StepView(p.index, p.id, p.kind, p.summary(), self.status[p.id])
                     for p in self.gp.steps)

    def _refresh(self) -> None:
        if self.live is None:
            return
        sched = self.sched_now()
        faults = []
        for sid, f in self.runs.items():
            if f.active:
                end = self._deadlines.get(sid)
                faults.append(FaultView(sid, f.step.describe(), round(f.started_s, 3),
                                        None if end is None else max(0.0, end - sched)))
        prompt = None
        if self._prompt is not None:
            p, fut, deadline = self._prompt
            s = p.spec
            prompt = PromptView(p.id, s.prompt, s.role, tuple(s.choices), s.default,
                                max(0.0, deadline - sched))
        self.view = BoardView(
            self.gp.book.title, round(self.now(), 2), self.phase, self.paused,
            self._pause_left(), self._steps_view(), self.current, tuple(faults), prompt,
            self._slis, tuple(dict(e) for e in self.tl.events[-200:]), self.finished,
            self.view.verdict, self.view.reason)

    def finish(self, verdict: str, reason: str) -> None:
        """The run was judged: the board shows the verdict, and may close."""
        self.finished = True
        self.view = replace(self.view, finished=True, verdict=verdict, reason=reason,
                            phase="finished")

    # -- the record -----------------------------------------------------------------------
    def record(self) -> dict:
        """The human side of the run, for the journal (``gameday``)."""
        return {
            "runbook": self.gp.source, "title": self.gp.book.title,
            "hypothesis": self.gp.book.hypothesis, "roles": dict(self.gp.book.roles),
            "auto": self.auto, "operator": self.who,
            "steps": [{"index": p.index, "id": p.id, "kind": p.kind, "summary": p.summary(),
                       "status": self.status[p.id]} for p in self.gp.steps],
            "skipped": list(self.gp.skipped),
            "prompts": self.prompts, "notes": self.notes, "checks": self.checks,
            "pauses": self._pause_log, "aborted_by": self.human_abort,
            "stopped_by_step": self.script_abort,
        }

    def verdict(self, verdict: Verdict, reason: str) -> tuple[Verdict, str]:
        """The run's verdict, with the game day's own causes: an abort by a person or by the
        runbook is ``aborted``. (A required check that broke, or that measured nothing, is
        judged with the run's history: chaos.core.judge.)"""
        if self.human_abort is not None:
            h = self.human_abort
            return Verdict.ABORTED, f"aborted by {h['who']} at t={h['at_s']:g} s: {h['reason']}"
        if self.script_abort is not None:
            return Verdict.ABORTED, self.script_abort["reason"]
        return verdict, reason


def _wall() -> str:
    return dt.datetime.now(dt.timezone.utc).isoformat(timespec="milliseconds")


def _user() -> str:
    try:
        return getpass.getuser()
    except Exception:  # noqa: BLE001 - no user name in this environment
        return "operator"
