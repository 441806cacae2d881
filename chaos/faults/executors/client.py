"""Mechanism ``client``: faults the run's own clients play (``echo``, ``join_storm``).

The clients live in the event loop of a probe or experiment run, not on the stack, so
this executor only hands each action to the run's *hub* (``chaos.session.clients.
SessionClients``), attached for the length of the run::

    with exec_client.attach(SessionClients(live)) as hub:
        await asyncio.to_thread(engine.inject, actions)     # engine calls block: a thread
        ...
        await asyncio.to_thread(engine.revert, actions)
        await hub.aclose()

One hub at a time per process. A hub implements ``start(action)`` and ``stop(action)``:
called from the engine's worker threads, they marshal to the hub's event loop and wait
for the effect, with a timeout; ``stop`` of an action it does not play is a no-op.

``inject`` with no hub attached fails (the fault needs a run's clients). ``revert`` with
no hub attached does nothing: the clients that played the fault belonged to a run that
has ended (or a process that is gone), so nothing of it is left on the stack. That is
what ``chaos stack reset`` and the watchdog meet, and it keeps revert idempotent.
"""

from __future__ import annotations

import threading
from typing import Protocol

from chaos.targets.state import StackState
from chaos.faults.base import Action, Step, SweepStage
from chaos.faults.engine import FaultError


class Hub(Protocol):
    def start(self, action: Action) -> None: ...

    def stop(self, action: Action) -> None: ...


_lock = threading.Lock()
_hub: Hub | None = None


class Attachment:
    """``attach``'s context manager; ``hub`` is the hub it attached."""

    def __init__(self, hub: Hub) -> None:
        self.hub = hub
        self._attached = False

    def __enter__(self) -> Hub:
        global _hub
        with _lock:
            if _hub is not None:
                raise FaultError(f"a client hub is already attached ({_hub!r}): one probe run "
                                 "plays client faults at a time in a process")
            _hub = self.hub
            self._attached = True
        return self.hub

    def __exit__(self, *exc) -> None:
        global _hub
        with _lock:
            if self._attached and _hub is self.hub:
                _hub = None
            self._attached = False


def attach(hub: Hub) -> Attachment:
    """Attach the hub that plays client faults for this process while the ``with`` lasts."""
    return Attachment(hub)


def attached() -> Hub | None:
    with _lock:
        return _hub


class ClientExecutor:
    mechanism = "client"

    def __init__(self, state: StackState | None = None) -> None:
        self.state = state

    def inject(self, a: Action) -> None:
        hub = attached()
        if hub is None:
            raise FaultError(
                f"{a.fault}: echo and join_storm are played by the experiment's own clients: "
                "they can only be injected during a probe/experiment run, not by `chaos fault "
                "inject`. Declare it in an experiment (or a run_probe(during=...) hook that "
                "attaches chaos.session.clients.SessionClients)")
        hub.start(a)

    def revert(self, a: Action) -> None:
        hub = attached()
        if hub is None:
            return  # the clients that played it are gone: nothing of it is left on the stack
        hub.stop(a)

    def sweep(self, stage: SweepStage, step: Step) -> None:
        return None  # client faults live in a run's event loop: none outlives its run


def make(state: StackState) -> ClientExecutor:
    return ClientExecutor(state)
