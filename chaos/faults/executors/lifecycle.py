"""Mechanism "lifecycle": kill, stop or freeze a service, and bring it back.

An action names a service and a mode (kill | stop | freeze). How a service goes and comes
back is its runtime's (``take_down``, ``bring_back`` of ``chaos.targets.runtimes.runtime_of``):

- local: the service's labelled processes (found by label, checked with ``procs.is_ours``
  just before each signal). kill = SIGKILL, stop = SIGTERM (SIGKILL after a grace, like
  docker stop), freeze = SIGSTOP. Revert: SIGCONT whatever is alive; restart what is not,
  with the argv, labels, cwd and log `stack up` gave it (``LocalRuntime.restart``, which
  waits until it is healthy).
- docker: the containers labelled chaos.stack=space and chaos.service=<name>. kill =
  docker kill, stop = docker stop, freeze = docker pause. Revert: unpause a paused one,
  start an exited one (a `restart: on-failure` policy does not undo a docker kill), and
  wait until it runs. Docker's own health check runs every few seconds; `chaos stack
  reset` waits for it.

Everything comes from the stack itself, found again at each call, so that a process that
never saw the injection (the watchdog, `chaos stack reset`) reverts it from the ledger alone.

A dc_loss action carries the fault's services in start order (``undo.restart_together``):
its revert first starts every one of them that is down (locally in start order without
waiting, in docker side by side), then waits for its own, so that a DC comes back in
about one service's start-up time rather than the sum of them.

Both are idempotent: reverting a service that is already back does nothing.

Sweep (`chaos stack reset`, without the ledger): the runtime's ``resume_all``: locally,
every labelled process of the stack gets SIGCONT (checked with ``procs.is_ours`` first); in
docker, every container of the stack that is paused is unpaused, one that has exited is
started. After the ledger's first revert, where the runtime restarts what is missing
(locally), every service of the reference stack that is still not running is started as
`stack up` started it (state tier first, side by side), then waited for.
"""

from __future__ import annotations

from typing import ClassVar

from chaos.targets.runtimes import runtime_of
from chaos.targets.state import StackState
from chaos.faults.base import Action, Step, SweepStage
from chaos.faults.engine import FaultError

MODES = ("kill", "stop", "freeze")


def _mode(action: Action) -> str:
    mode = action.params.get("mode")
    if mode not in MODES:
        raise FaultError(f"{action.describe()}: unknown lifecycle mode {mode!r}; use {', '.join(MODES)}")
    return mode


class Lifecycle:
    mechanism: ClassVar[str] = "lifecycle"

    def __init__(self, state: StackState) -> None:
        self.state = state
        self.runtime = runtime_of(state)

    def sweep(self, stage: SweepStage, step: Step) -> None:
        if stage is SweepStage.RUN:
            step(self.runtime.resume_words, lambda: self.runtime.resume_all(self.state))
        elif (stage is SweepStage.START and self.runtime.restarts_missing
              and self.state.topology.is_reference()):
            # a described target's processes are the user's to start
            step("restarting services that are not running",
                 lambda: self.runtime.restart_missing(self.state))

    def inject(self, action: Action) -> None:
        self.runtime.take_down(self.state, action.target, _mode(action))

    def revert(self, action: Action) -> None:
        mode = _mode(action)
        together = (action.params.get("undo") or {}).get("restart_together") or []
        self.runtime.bring_back(self.state, action.target, mode, list(together))


def make(state: StackState) -> Lifecycle:
    return Lifecycle(state)
