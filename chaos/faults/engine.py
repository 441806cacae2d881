"""Inject and revert actions through their executors, each step under its own deadline.

A revert always runs every action it is given, even when some fail or hang: one stuck
executor never keeps the others from putting the stack back. What was reverted leaves the
ledger; what was not stays there, for the next reset, and is reported.
"""

from __future__ import annotations

import concurrent.futures as cf
from collections.abc import Callable
from dataclasses import dataclass, field

from chaos.core.errors import ChaosError, FaultError  # noqa: F401 - re-exported
from chaos.faults.base import Action, Executor
from chaos.faults.ledger import Ledger

INJECT_DEADLINE_S = 10.0
REVERT_DEADLINE_S = 10.0


@dataclass
class RevertReport:
    reverted: list[Action] = field(default_factory=list)
    failed: list[tuple[Action, str]] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.failed


def _bounded(fn: Callable[[], None], deadline_s: float, what: str) -> None:
    pool = cf.ThreadPoolExecutor(max_workers=1, thread_name_prefix="fault")
    future = pool.submit(fn)
    try:
        future.result(timeout=deadline_s)
    except cf.TimeoutError:
        raise FaultError(f"{what} did not finish within {deadline_s:g} s") from None
    finally:
        pool.shutdown(wait=False, cancel_futures=True)


class Engine:
    def __init__(self, executor_for: Callable[[str], Executor], stack_id: str,
                 ledger: Ledger | None = None) -> None:
        self.executor_for, self.stack_id = executor_for, stack_id
        self.ledger = ledger or Ledger()

    def inject(self, actions: list[Action], deadline_s: float = INJECT_DEADLINE_S) -> None:
        """All or nothing: on a failure, what was injected is reverted before raising."""
        self.ledger.add(actions, self.stack_id)  # intent first: a crash now is still revertible
        done: list[Action] = []
        try:
            for a in actions:
                _bounded(lambda a=a: self.executor_for(a.mechanism).inject(a), deadline_s,
                         f"injecting {a.describe()}")
                done.append(a)
        except BaseException as e:
            report = self.revert(actions, REVERT_DEADLINE_S)
            if isinstance(e, ChaosError):
                raise FaultError(f"{e}; reverted {len(report.reverted)} step(s)"
                                 + (f", {len(report.failed)} could not be" if report.failed else "")) from e
            raise

    def revert(self, actions: list[Action], deadline_s: float = REVERT_DEADLINE_S) -> RevertReport:
        """Revert every action (in reverse order), each under its own deadline."""
        report = RevertReport()
        for a in reversed(actions):
            try:
                _bounded(lambda a=a: self.executor_for(a.mechanism).revert(a), deadline_s,
                         f"reverting {a.describe()}")
                report.reverted.append(a)
            except Exception as e:  # noqa: BLE001 - report it and go on with the others
                report.failed.append((a, f"{type(e).__name__}: {e}"))
        self.ledger.remove(report.reverted)
        return report

    def revert_all(self, deadline_s: float = REVERT_DEADLINE_S, pid: int | None = None) -> RevertReport:
        """Every active action of the stack (pid: only those that process injected)."""
        return self.revert(self.ledger.active(self.stack_id, pid), deadline_s)
