"""The run's method: the runner opens a probe session and plays this against its live
view (``await method.play(live)``, bounded by :func:`play_within`):

steady state for ``before_s`` -> the gate -> the method (fault steps injected and reverted
on schedule, halt conditions checked every 0.5 s) -> revert -> recovery for ``after_s``.

Whatever happens (a halt, Ctrl-C, an error, a cancellation), every fault still active is
reverted before this returns; the engine gives each revert its own deadline. Times are
run seconds (since the probe's t0).
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
from dataclasses import replace

from chaos.core import journal as jm
from chaos.experiment import Experiment, FaultStep
from chaos.faults.base import Action
from chaos.faults.engine import Engine
from chaos.core.model import Verdict
from chaos.session.joinprobe import run_join_probes
from chaos.faults.executors.client import ClientSlot
from chaos.session.clients import SessionClients
from chaos.session.probe import LiveRun
from chaos.core.slo import LIVE_SLIS, Objective
from chaos.core.timeline import FaultRun, Timeline
from chaos.runner.observe import SETTLE_S, live_series, live_window_end, now_s

HALT_EVERY_S = 0.5
GATE_WAIT_S = 10.0        # the longest the gate waits for a steady state not measured yet
GATE_RETRY_S = 0.5
HALT_WINDOW_S = 3.0       # a halt objective with no window is judged over the last 3 s


class Method:
    """What one experiment run plays against its probe session. A game day's player is a
    Method whose ``script`` is the runbook's steps; the hooks it may override are the public
    ones (``script``, ``gate``, ``inject``, ``revert``, ``revert_all``, ``stop``, ``until``).

    ``clients``: the run's slot for its session's client hub (echo, join storms), the one
    its engine's ``client`` executor was built on."""

    def __init__(self, exp: Experiment, engine: Engine, plans: list[tuple[FaultStep, list[Action]]],
                 progress=None, clients: ClientSlot | None = None) -> None:
        self.exp, self.engine = exp, engine
        self.clients = clients
        self.tl = Timeline([FaultRun(step, actions) for step, actions in plans])
        self.progress = progress or (lambda t, total, msg: None)
        self.abort = asyncio.Event()
        self.live: LiveRun | None = None
        self.end_s = exp.total_s      # moved on when reverts take longer than planned

    # -- clock and waiting ------------------------------------------------------------
    def now(self) -> float:
        return now_s(self.live.t0_ns)

    async def until(self, t_s: float) -> None:
        """Sleep until run time t_s, or less if the run is aborted."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.abort.wait(), timeout=max(0.0, t_s - self.now()))

    def stop(self, reason: str) -> None:
        if not self.tl.abort:
            self.tl.abort = reason
            self.tl.event(self.now(), "abort", reason)
        self.abort.set()

    def _on_sigint(self) -> None:
        if self.tl.interrupted:
            self.progress(self.now(), self.exp.total_s, "Ctrl-C again: still reverting faults")
            return
        self.tl.interrupted = True
        self.stop(f"interrupted (Ctrl-C) at t={self.now():.1f} s")

    # -- the play ---------------------------------------------------------------------
    async def play(self, live: LiveRun) -> None:
        """Play the timeline against an open probe session; every fault still active is
        reverted before this returns, whatever happened."""
        self.live = live
        loop = asyncio.get_running_loop()
        sigint = _install(loop, signal.SIGINT, self._on_sigint)
        a = self.exp.audience
        stop_joins = asyncio.Event()
        joins = asyncio.create_task(run_join_probes(
            live, a.join_every_s, live.joins, stop_joins))
        hub = SessionClients(live, self.clients)
        await hub.__aenter__()          # plugged into the run's slot until the end
        try:
            await self.script()
            if not self.abort.is_set():
                await self.until(self.end_s - 0.5)
            stop_joins.set()
            if not self.abort.is_set():
                await self.until(self.end_s)
            with contextlib.suppress(TimeoutError):  # the last join probes finish
                await asyncio.wait_for(asyncio.shield(joins), timeout=0 if self.abort.is_set()
                                       else a.join_timeout_s + 3.0)
        except Exception as e:  # noqa: BLE001 - recorded; the run ends and is judged inconclusive
            self.tl.error = f"{type(e).__name__}: {e}"
            self.stop(f"error during the method: {self.tl.error}")
        finally:
            stop_joins.set()
            await self.revert_all("the run ended")
            self.close_phases()
            joins.cancel()
            await asyncio.gather(joins, return_exceptions=True)
            try:
                await hub.__aexit__(None, None, None)
            except Exception as e:  # noqa: BLE001 - a storm lost or failed: not a clean run
                self.tl.error = self.tl.error or f"{type(e).__name__}: {e}"
                self.stop(f"a client-side fault failed: {type(e).__name__}: {e}")
            if sigint:
                loop.remove_signal_handler(signal.SIGINT)

    async def script(self) -> None:
        exp = self.exp
        self.progress(0.0, exp.total_s, "steady state")
        await self.until(exp.before_s)
        self.tl.phases["before"] = [0.0, self.now()]
        if self.abort.is_set():
            return
        if exp.gate and not await self.gate():
            return
        if not self.tl.faults:
            self.tl.phases["after"] = [self.now(), self.end_s]
            return
        start = self.now()
        self.tl.phases["during"] = [start, start]
        monitor = asyncio.create_task(self.watch_halts()) if exp.halts else None
        try:
            await self._schedule(start)
        finally:
            if monitor is not None:
                monitor.cancel()
                await asyncio.gather(monitor, return_exceptions=True)
        await self.revert_all("the method ended")
        self.tl.phases["during"][1] = self.now()
        if not self.abort.is_set():
            self.progress(self.now(), exp.total_s, "recovery")
            t = self.now()          # the after phase lasts as declared, however long reverts took
            self.end_s = t + exp.after_s
            self.tl.phases["recovery"] = [t, t + exp.recover_s]
            self.tl.phases["after"] = [t + exp.recover_s, self.end_s]

    def close_phases(self) -> None:
        """Phases end where the run did (an aborted method ends now)."""
        end = self.now()
        for name, span in self.tl.phases.items():
            if name == "during" and span[1] <= span[0]:
                span[1] = end
            span[1] = min(span[1], end)

    # -- the gate ---------------------------------------------------------------------
    async def gate(self) -> bool:
        """The steady state must hold before any fault: no faults on a sick stack.

        A steady state not measured yet (no sample at all, nothing failed: listener
        processes that started slowly on a busy machine) is waited for, at most
        GATE_WAIT_S, and the run is moved on by that much; anything else is judged now."""
        first = self.now()
        while True:
            t = self.now()
            bad = self._gate_results(t)
            unmeasured = all(r.verdict is Verdict.INCONCLUSIVE and not r.samples for r in bad)
            if not bad or not unmeasured or t - first >= GATE_WAIT_S or self.abort.is_set():
                break
            await asyncio.sleep(GATE_RETRY_S)
        if t > first + 0.5:
            self.end_s += t - first
            self.tl.phases["before"][1] = t
            self.tl.event(t, "gate", f"the steady state was measured {t - first:.1f} s late "
                          "(the probe's listeners were slow to report): the method starts later")
        if not bad:
            self.tl.event(t, "gate", "steady state held: the method may start")
            return True
        why = "; ".join(f"{r.name} {r.objective}: {_fmt(r.value)} ({r.verdict}"
                        + (f", first breach t={r.first_breach_s:.1f} s" if r.first_breach_s else "") + ")"
                        for r in bad)
        self.tl.gate = {"failed": [r.to_dict() for r in bad]}
        self.tl.event(t, "gate", f"steady state did not hold before the method: {why}; no fault injected")
        self.stop(f"steady state did not hold before the method ({why}); no fault was injected")
        return False

    def _gate_results(self, t: float) -> list:
        """The steady-state objectives that do not pass over [0, t) (live SLIs only)."""
        by_sli = live_series(self.live)
        bad = []
        for o in self.exp.steady_state:
            if o.sli not in LIVE_SLIS:
                continue
            span = t - SETTLE_S       # a window longer than the phase: judged over all of it
            o = replace(o, window_s=None) if o.window_s and o.window_s > span else o
            r = o.evaluate(by_sli[o.sli], 0.0, span, phase="before")
            if r.verdict is not Verdict.PASSED:
                bad.append(r)
        return bad

    # -- the schedule -----------------------------------------------------------------
    async def _schedule(self, start: float) -> None:
        timeline = sorted([(f.step.at_s, 1, f) for f in self.tl.faults]
                          + [(f.step.at_s + f.step.duration_s, 0, f) for f in self.tl.faults],
                          key=lambda x: (x[0], x[1]))
        for at, is_inject, f in timeline:
            await self.until(start + at)
            if self.abort.is_set():
                return
            if is_inject:
                if f.step.step is not None and self._sweep_broke(f):
                    return
                await self.inject(f)
            else:
                await self.revert(f, "its duration ended")

    async def inject(self, f: FaultRun) -> None:
        t = self.now()
        self.progress(t, self.exp.total_s, f"inject {f.step.describe()}")
        try:
            await asyncio.to_thread(self.engine.inject, f.actions)
        except Exception as e:  # noqa: BLE001 - the engine reverted what it had done
            f.inject_error = f"{type(e).__name__}: {e}"
            self.tl.event(t, "error", f"could not inject {f.step.describe()}: {f.inject_error}")
            self.stop(f"could not inject {f.step.describe()}: {f.inject_error}")
            return
        f.started_s = t
        self.tl.event(t, "inject", f"{f.step.describe()} injected",
                      fault=f.step.describe(), took_s=round(self.now() - t, 3))

    async def revert(self, f: FaultRun, why: str) -> None:
        if not f.active:
            return
        t = self.now()
        report = await asyncio.shield(asyncio.to_thread(self.engine.revert, f.actions))
        f.ended_s, f.reverted = t, report.ok
        f.revert_error = "; ".join(f"{a.describe()}: {e}" for a, e in report.failed)
        self.tl.event(t, "revert", f"{f.step.describe()} reverted ({why})"
                      + (f"; NOT reverted: {f.revert_error}" if f.revert_error else ""),
                      fault=f.step.describe(), took_s=round(self.now() - t, 3))
        self.progress(t, self.exp.total_s, f"reverted {f.step.describe()}")

    async def revert_all(self, why: str) -> None:
        for f in reversed(self.tl.faults):
            if f.active:
                await self.revert(f, why)

    def _sweep_broke(self, f: FaultRun) -> bool:
        """With stop_at_break: end the sweep once a step broke a live steady-state SLO."""
        sw = self.exp.sweep
        prev = [p for p in self.tl.faults if p.step.step is not None and p.ended_s is not None]
        if sw is None or not sw.stop_at_break or not prev:
            return False
        last = prev[-1]
        by_sli = live_series(self.live)
        for o in self.exp.steady_state:
            if o.sli in LIVE_SLIS:
                r = o.evaluate(by_sli[o.sli], last.started_s, last.ended_s, phase=f"step {last.step.step}")
                if r.verdict is Verdict.FAILED:
                    self.tl.event(self.now(), "step", f"sweep stopped: {o.sli} broke at "
                                  f"{last.step.describe()}; later steps not run")
                    return True
        return False

    # -- halt conditions --------------------------------------------------------------
    async def watch_halts(self) -> None:
        while not self.abort.is_set():
            await asyncio.sleep(HALT_EVERY_S)
            hit = self.check_halts()
            if hit is not None:
                self.tl.halt = hit
                self.tl.event(hit.at_s, "halt", hit.message)
                self.stop(hit.message)
                return

    def check_halts(self) -> jm.Halt | None:
        t = self.now()
        longest = max([o.window_s or HALT_WINDOW_S for o in self.exp.halts] + [0.0])
        by_sli = live_series(self.live, since_s=max(0.0, t - SETTLE_S - longest - 2.0))
        onset = min((f.started_s for f in self.tl.faults if f.started_s is not None), default=None)
        for o in self.exp.halts:
            w = o.window_s or HALT_WINDOW_S
            end = live_window_end(self.live, o.sli, t)
            if o.sli == "join_time":   # a join stamped at its request is known slow only once
                end -= min(o.threshold, self.exp.audience.join_timeout_s)   # it has been
            r = Objective(o.sli, o.stat, o.op, o.threshold, None).evaluate(
                by_sli[o.sli], max(0.0, end - w), end, phase="halt")
            if r.verdict is Verdict.FAILED:
                msg = (f"halted: {o.sli} {o.stat} {_fmt(r.value)} broke the limit {o.describe()} "
                       f"over the {w:g} s up to t={end:.1f} s (checked at t={t:.1f} s)")
                return jm.Halt(sli=o.sli, objective=o.describe(), value=r.value, at_s=round(t, 3),
                               onset_s=None if onset is None else round(onset, 3),
                               detected_after_s=None if onset is None else round(t - onset, 3),
                               message=msg)
        return None


def _fmt(v) -> str:
    return "nothing measured" if v is None else f"{v:.3g}"


def _install(loop, sig, handler) -> bool:
    try:
        loop.add_signal_handler(sig, handler)
        return True
    except (ValueError, RuntimeError, NotImplementedError):  # not the main thread
        return False


async def play_within(method: Method, live: LiveRun, seconds: float) -> None:
    """The runner drives its session: ``method`` plays until it returns, ``live.stop`` is
    set or ``seconds`` pass. A method still playing then is cancelled and awaited: its own
    clean-up (reverting faults) finishes before the session closes. Its error, if any,
    reaches the caller."""
    task = asyncio.ensure_future(method.play(live))
    stopper = asyncio.ensure_future(live.stop.wait())
    try:
        await asyncio.wait({task, stopper}, timeout=seconds, return_when=asyncio.FIRST_COMPLETED)
    finally:
        stopper.cancel()
        if not task.done():
            task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
