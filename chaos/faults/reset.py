"""Session-level reset: put the whole stack back, whatever the ledger says.

The ledger reverts what the framework knows it did; this is the safety net for the rest
(a crash between two writes, a toxic added by hand, a fault from an older run). Each
executor sweeps what its own mechanism can leave behind (``sweep`` on every executor that
executors.py registers, see ``base.Sweeper``); this module only runs the sweeps, stage by
stage (``base.SweepStage``; within a stage in executors.py's order), around the ledger's
reverts. In order:

1. helpers: the duty-cycle helpers of the stack stop (exec_cpu): they would stop processes
   again behind our back;
2. run: everything runs again: SIGCONT every stopped labelled process (local); lift CPU
   quotas (exec_cpu), unpause or start every labelled container (exec_lifecycle),
   reconnect the networks compose gave it (exec_network) (docker);
3. clear: delete every iptables rule whose comment starts with ``chaos:``, in each
   container's namespace and on the host (exec_iptables; on the host, rules of another
   local stack that is still running are left alone: the machine may be shared);
4. clear: toxiproxy reset: every toxic removed, every proxy enabled (exec_toxi; again
   after step 6 if toxiproxy itself was down). A toxiproxy that runs but does not answer
   is restarted: the DELETE of a latency toxic under traffic can hang its whole API
   (Shopify/toxiproxy#412, #558), and it comes back clean from its config (its links'
   connections are cut once);
5. revert the ledger's actions for the stack (killed services come back in start order);
6. start: restart any local service that is still not running, as `stack up` started it
   (exec_lifecycle); then clear-again: the toxiproxy reset of step 4 if it was down then;
7. revert what is left in the ledger once more (now that the stack runs again);
8. wait until `stack status` is all healthy, within a deadline.

Steps 3 and 4 come before anything waits for a service to be healthy: a leftover drop
rule or toxic would make that wait fail. One step failing, or one executor failing to load
or to sweep, is reported as a problem and every other step still runs.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

from chaos.core.errors import ChaosError
from chaos.targets.base import Progress, quiet
from chaos.targets.runtimes import runtime_of
from chaos.targets.state import StackState
from chaos.faults import executors
from chaos.faults.base import SweepStage, Swept

BEFORE_LEDGER = (SweepStage.HELPERS, SweepStage.RUN, SweepStage.CLEAR)
AFTER_LEDGER = (SweepStage.START, SweepStage.CLEAR_AGAIN)


@dataclass
class ResetReport:
    stack_id: str
    did: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    unhealthy: list[str] = field(default_factory=list)
    took_s: float = 0.0

    @property
    def healthy(self) -> bool:
        return not self.unhealthy

    def to_dict(self) -> dict:
        return {"stack_id": self.stack_id, "healthy": self.healthy, "did": self.did,
                "problems": self.problems, "unhealthy": self.unhealthy,
                "took_s": round(self.took_s, 2)}


def _explain(e: Exception) -> str:
    return str(e) if isinstance(e, ChaosError) else f"{type(e).__name__}: {e}"


def reset(state: StackState | None = None, progress: Progress = quiet,
          healthy_wait_s: float | None = None) -> ResetReport:
    from chaos.targets import stack
    state = state or stack.current()
    t0 = time.monotonic()
    rep = ResetReport(state.stack_id)

    def step(what: str, fn: Callable[[], Swept | None]) -> bool:
        progress(what)
        try:
            swept = fn()
        except Exception as e:  # noqa: BLE001 - one step failing must not stop the others
            rep.problems.append(f"{what}: {_explain(e)}")
            return False
        if swept is not None:
            rep.did += swept.did
            rep.problems += swept.problems
        return True

    sweepers = []
    for module in executors.modules():
        try:
            sweepers.append((module, executors.sweeper(module, state)))
        except Exception as e:  # noqa: BLE001 - the other mechanisms are still swept
            rep.problems.append(f"{module}: could not be loaded to sweep: {_explain(e)}")

    def sweep(stage: SweepStage) -> None:
        for module, executor in sweepers:
            try:
                executor.sweep(stage, step)
            except Exception as e:  # noqa: BLE001 - a sweep's own bug: the others still run
                rep.problems.append(f"{module}: sweeping ({stage}) failed: {_explain(e)}")

    for stage in BEFORE_LEDGER:      # clear before anything waits for a service's health
        sweep(stage)
    step("reverting the ledger", lambda: _revert_ledger(state.stack_id))
    for stage in AFTER_LEDGER:
        sweep(stage)
    step("reverting what is left in the ledger", lambda: _revert_ledger(state.stack_id, again=True))
    progress("waiting until every service is healthy")
    rep.unhealthy = _wait_healthy(state.stack_id,
                                  healthy_wait_s or runtime_of(state).reset_healthy_wait_s)
    rep.took_s = time.monotonic() - t0
    if not rep.did:
        rep.did.append("nothing: no fault was found on the stack")
    return rep


def _revert_ledger(stack_id: str, again: bool = False) -> Swept:
    from chaos.faults.engine import Engine
    from chaos.faults.ledger import Ledger

    swept = Swept()
    if not Ledger().active(stack_id):
        return swept
    state = StackState.load(stack_id)   # fresh: restarts change pids
    report = Engine(executors.executors_for(state), stack_id).revert_all()
    if report.reverted:
        swept.did.append(f"reverted {len(report.reverted)} fault step(s) from the ledger"
                         + (" (second pass)" if again else "") + ": "
                         + "; ".join(a.describe() for a in report.reverted))
    if again:      # after a first pass, failures are retried once the stack runs again
        swept.problems += [f"could not revert {a.describe()}: {why}" for a, why in report.failed]
    return swept


def _wait_healthy(stack_id: str, within_s: float) -> list[str]:
    from chaos.targets import stack
    deadline = time.monotonic() + within_s
    while True:
        state = StackState.load(stack_id)
        if state is None:
            return ["the stack's state file is gone"]
        try:
            sick = [f"{s.name} ({s.detail or 'unhealthy'})" for s in stack.status(state) if not s.healthy]
        except ChaosError as e:
            sick = [str(e)]
        if not sick or time.monotonic() > deadline:
            return sick
        time.sleep(0.5)
