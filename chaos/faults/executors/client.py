"""Mechanism ``client``: faults the run's own clients play (``echo``, ``join_storm``).

The clients live in the event loop of a probe session, not on the stack, so this executor
only hands each action to the run's *hub* (``chaos.session.clients.SessionClients``). The
runner that owns the run makes a :class:`ClientSlot`, gives the executor built on it to its
fault engine, and plugs the session's hub into the slot while the session is open::

    slot = ClientSlot()
    engine = Engine(executors_for(state, {"client": ClientExecutor(state, slot)}), stack_id)
    with slot.plugged(hub):                           # hub: the open session's clients
        await asyncio.to_thread(engine.inject, actions)   # engine calls block: a thread
        ...

Nothing is process-global: two runs in one process have two slots. A hub implements
``start(action)`` and ``stop(action)``: called from the engine's worker threads, they
marshal to the hub's event loop and wait for the effect, with a timeout; ``stop`` of an
action it does not play is a no-op.

``inject`` with no hub plugged in fails (the fault needs a run's clients). ``revert`` with
none does nothing: the clients that played the fault belonged to a run that has ended (or
a process that is gone), so nothing of it is left on the stack. That is what ``chaos fault
inject``, ``chaos stack reset`` and the watchdog meet (their executors have no slot), and
it keeps revert idempotent.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator
from typing import Protocol

from chaos.targets.state import StackState
from chaos.faults.base import Action, Step, SweepStage
from chaos.faults.engine import FaultError


class Hub(Protocol):
    def start(self, action: Action) -> None: ...

    def stop(self, action: Action) -> None: ...


class ClientSlot:
    """Where one run's client hub is plugged in while its probe session is open."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._hub: Hub | None = None

    @property
    def hub(self) -> Hub | None:
        with self._lock:
            return self._hub

    @contextlib.contextmanager
    def plugged(self, hub: Hub) -> Iterator[Hub]:
        with self._lock:
            if self._hub is not None:
                raise FaultError(f"a client hub is already plugged into this run ({self._hub!r}): "
                                 "one probe session plays a run's client faults")
            self._hub = hub
        try:
            yield hub
        finally:
            with self._lock:
                if self._hub is hub:
                    self._hub = None


class ClientExecutor:
    mechanism = "client"

    def __init__(self, state: StackState | None = None, slot: ClientSlot | None = None) -> None:
        self.state = state
        self.slot = slot

    def _hub(self) -> Hub | None:
        return self.slot.hub if self.slot is not None else None

    def inject(self, a: Action) -> None:
        hub = self._hub()
        if hub is None:
            raise FaultError(
                f"{a.fault}: echo and join_storm are played by the experiment's own clients: "
                "they can only be injected during a probe/experiment run, not by `chaos fault "
                "inject`. Declare it in an experiment or a game day: their runner plugs the "
                "probe session's clients in")
        hub.start(a)

    def revert(self, a: Action) -> None:
        hub = self._hub()
        if hub is None:
            return  # the clients that played it are gone: nothing of it is left on the stack
        hub.stop(a)

    def sweep(self, stage: SweepStage, step: Step) -> None:
        return None  # client faults live in a run's event loop: none outlives its run


def make(state: StackState) -> ClientExecutor:
    return ClientExecutor(state)
