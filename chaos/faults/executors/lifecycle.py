"""Mechanism "lifecycle": kill, stop or freeze a service, and bring it back.

An action names a service and a mode (kill | stop | freeze). Everything else comes from
the stack itself, found again at each call, so that a process that never saw the
injection (the watchdog, `chaos stack reset`) reverts it from the ledger alone:

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

A dc_loss action carries the fault's services in start order (``undo.restart_together``):
its revert first starts every one of them that is down (locally in start order without
waiting, in docker side by side), then waits for its own, so that a DC comes back in
about one service's start-up time rather than the sum of them.

Both are idempotent: reverting a service that is already back does nothing.

Sweep (`chaos stack reset`, without the ledger): locally, every labelled process of the
stack gets SIGCONT (checked with ``procs.is_ours`` first); after the ledger's first revert,
every service of the reference stack that is still not running is started as `stack up`
started it (state tier first, side by side), then waited for. In docker, every container of
the stack that is paused is unpaused, one that has exited is started.
"""

from __future__ import annotations

import os
import signal
import time
from functools import cached_property
from pathlib import Path
from typing import ClassVar

from chaos.core.errors import StackError
from chaos.targets import procs
from chaos.targets.state import StackState
from chaos.faults.base import Action, Step, SweepStage, Swept, sweep_containers
from chaos.faults.engine import FaultError

STOP_GRACE_S = 3.0          # SIGTERM -> SIGKILL, locally and for docker stop
RUNNING_WAIT_S = 8.0        # docker: from start/unpause to "running"
FREEZE_WAIT_S = 3.0         # local: from SIGSTOP to the process really stopped
MODES = ("kill", "stop", "freeze")


def _mode(action: Action) -> str:
    mode = action.params.get("mode")
    if mode not in MODES:
        raise FaultError(f"{action.describe()}: unknown lifecycle mode {mode!r}; use {', '.join(MODES)}")
    return mode


def procs_by_service(stack_id: str) -> dict[str, list[procs.Proc]]:
    from chaos.targets.local import procs_by_service as scan
    return scan(stack_id)


class LocalLifecycle:
    mechanism: ClassVar[str] = "lifecycle"

    def __init__(self, state: StackState) -> None:
        from chaos.targets.local import LocalRuntime
        self.state = state
        self.runtime = LocalRuntime(state.stack_id)

    def sweep(self, stage: SweepStage, step: Step) -> None:
        if stage is SweepStage.RUN:
            step("resuming stopped processes", lambda: resume_local(self.state))
        elif stage is SweepStage.START and self.state.topology.is_reference():
            # a described target's processes are the user's to start
            step("restarting services that are not running",
                 lambda: restart_dead(self.state.stack_id))

    def _ours(self, service: str) -> list[procs.Proc]:
        return procs_by_service(self.state.stack_id).get(service, [])

    def _signal(self, p: procs.Proc, sig: int) -> bool:
        return procs.signal_ours(p, self.state.stack_id, sig)

    def inject(self, action: Action) -> None:
        mode = _mode(action)
        found = self._ours(action.target)
        if mode == "freeze":
            stopped = [p for p in found if self._signal(p, signal.SIGSTOP)]
            _wait_stopped(stopped, FREEZE_WAIT_S)
            return
        if mode == "kill":
            for p in found:
                self._signal(p, signal.SIGKILL)
            _wait_gone(found, 1.0)
            return
        for p in found:                      # stop: SIGTERM, then SIGKILL after the grace
            self._signal(p, signal.SIGCONT)
            self._signal(p, signal.SIGTERM)
        for p in _wait_gone(found, STOP_GRACE_S):
            self._signal(p, signal.SIGKILL)
        _wait_gone(found, 1.0)

    def revert(self, action: Action) -> None:
        _mode(action)
        alive = [p for p in self._ours(action.target) if self._signal(p, signal.SIGCONT)]
        if alive and action.params.get("mode") == "freeze":
            return
        try:
            # killed or stopped (or frozen and died meanwhile): start it again, with the
            # rest of its fault that is down too (start order, no waiting: they start side
            # by side); then wait until this one is healthy
            together = (action.params.get("undo") or {}).get("restart_together") or []
            running = procs_by_service(self.state.stack_id)
            for name in [*together, action.target]:
                if name in self.state.topology.services and not running.get(name):
                    self.runtime.restart(self.state, name, wait=False)
            self.runtime.restart(self.state, action.target)
        except StackError as e:
            raise FaultError(f"{action.target} did not come back: {e}") from None


def resume_local(state: StackState) -> Swept:
    """SIGCONT every labelled process of the stack that is ours (a stopped one is named)."""
    from chaos.targets.local import service_of
    resumed = []
    for pid in procs.find_labelled(state.stack_id):
        ticks = procs.start_ticks(pid)
        if ticks is None:
            continue
        p = procs.Proc(service_of(pid, state.stack_id) or "?", pid, ticks, "")
        stopped = _state(pid) in ("T", "t")
        if procs.is_ours(p, state.stack_id):
            try:
                os.kill(pid, signal.SIGCONT)
            except ProcessLookupError:
                continue
            if stopped:
                resumed.append(f"{p.service} (pid {pid})")
    swept = Swept()
    if resumed:
        swept.did.append(f"resumed {len(resumed)} stopped process(es): {', '.join(sorted(resumed))}")
    return swept


def restart_dead(stack_id: str) -> Swept:
    """Start every service that is down (state tier first, side by side), then wait for
    each to be healthy."""
    from chaos.targets.local import _ORDER, LocalRuntime
    state = StackState.load(stack_id)   # fresh: the ledger's revert changes pids
    rt = LocalRuntime(stack_id)
    running = procs_by_service(stack_id)
    dead = sorted((s for s in state.topology.services.values() if not running.get(s.name)),
                  key=lambda s: (_ORDER.index(s.kind), s.name))
    swept, started = Swept(), []
    for svc in dead:
        try:
            rt.restart(state, svc.name, wait=False)
            started.append(svc)
        except StackError as e:
            swept.problems.append(f"could not restart {svc.name}: {e}")
    for svc in started:
        try:
            p = rt.restart(state, svc.name)
            swept.did.append(f"restarted {svc.name} (pid {p.pid})")
        except StackError as e:
            swept.problems.append(f"could not restart {svc.name}: {e}")
    return swept


def _wait_stopped(found: list[procs.Proc], within_s: float) -> None:
    """A stop signal is acted on by its target when it next runs (on a busy machine, some
    time later): wait (bounded) until each is really stopped, so that injected means frozen."""
    deadline = time.monotonic() + within_s
    left = list(found)
    while left and time.monotonic() < deadline:
        left = [p for p in left if procs.start_ticks(p.pid) == p.start_ticks
                and _state(p.pid) not in ("T", "t")]
        if left:
            time.sleep(0.01)


def _state(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return ""


def _wait_gone(found: list[procs.Proc], within_s: float) -> list[procs.Proc]:
    """Wait (bounded) until the processes are gone; return those still there."""
    deadline = time.monotonic() + within_s
    left = list(found)
    while left:
        for p in left:
            try:
                os.waitpid(p.pid, os.WNOHANG)   # our own child (restarted by us): reap it
            except ChildProcessError:
                pass
        left = [p for p in left if procs.start_ticks(p.pid) == p.start_ticks]
        if not left or time.monotonic() > deadline:
            break
        time.sleep(0.05)
    return left


class DockerLifecycle:
    mechanism: ClassVar[str] = "lifecycle"

    def __init__(self, state: StackState) -> None:
        self.state = state

    @cached_property
    def client(self):
        from chaos.targets.images import docker_client
        return docker_client(timeout=int(RUNNING_WAIT_S) + 2)

    def sweep(self, stage: SweepStage, step: Step) -> None:
        if stage is SweepStage.RUN:
            step("bringing every container back", lambda: containers_back(self.state))

    def _containers(self, action: Action) -> list:
        from chaos.targets.docker import containers_of
        return containers_of(self.client, self.state, action.target)

    def inject(self, action: Action) -> None:
        import docker
        mode = _mode(action)
        for c in self._containers(action):
            c.reload()
            try:
                if c.status == "paused" and mode != "freeze":
                    c.unpause()   # kill or stop a frozen container: it must hear the signal
                    c.reload()
                if c.status != "running":
                    continue          # already down (or paused, for freeze): nothing to do
                if mode == "kill":
                    c.kill()
                elif mode == "stop":
                    c.stop(timeout=int(STOP_GRACE_S))
                else:
                    c.pause()
            except docker.errors.NotFound:
                continue
            except docker.errors.APIError as e:
                raise FaultError(f"docker refused to {mode} {action.target}: {e.explanation}") from None

    def _start_together(self, action: Action) -> None:
        """Start the fault's other containers that are down, side by side (each start is a
        blocking API call of up to a second on a busy machine)."""
        import concurrent.futures as cf

        import docker

        from chaos.targets.docker import containers_of
        names = set((action.params.get("undo") or {}).get("restart_together") or []) - {action.target}
        if not names:
            return
        down = [c for name in sorted(names & set(self.state.topology.services))
                for c in containers_of(self.client, self.state, name)
                if c.status in ("exited", "created", "dead")]

        def start(c) -> None:
            try:
                c.start()
            except docker.errors.APIError:
                pass          # its own revert reports it
        if down:
            with cf.ThreadPoolExecutor(max_workers=min(8, len(down))) as pool:
                list(pool.map(start, down))

    def revert(self, action: Action) -> None:
        import docker
        _mode(action)
        self._start_together(action)
        for c in self._containers(action):
            try:
                c.reload()
                if c.status == "paused":
                    c.unpause()
                elif c.status in ("exited", "created", "dead"):
                    c.start()
                elif c.status == "restarting":
                    pass          # docker is bringing it back already
                self._wait_running(c, action)
            except docker.errors.NotFound:
                raise FaultError(f"the container of {action.target} is gone: "
                                 "`chaos stack down` and `up` to recreate the stack") from None
            except docker.errors.APIError as e:
                raise FaultError(f"docker could not bring {action.target} back: {e.explanation}") from None

    def _wait_running(self, c, action: Action) -> None:
        deadline = time.monotonic() + RUNNING_WAIT_S
        while True:
            c.reload()
            if c.status == "running":
                return
            if time.monotonic() > deadline:
                raise FaultError(f"{action.target} is {c.status}, not running, "
                                 f"{RUNNING_WAIT_S:g} s after it was brought back")
            time.sleep(0.1)


def containers_back(state: StackState) -> Swept:
    """Unpause every paused container of the stack, start every one that has exited."""
    def back(client, name, c, swept: Swept) -> None:
        if c.status == "paused":
            c.unpause()
            swept.did.append(f"unpaused {name}")
        elif c.status in ("exited", "created", "dead"):
            c.start()
            swept.did.append(f"started {name} (was {c.status})")
    return sweep_containers(state, back)


def make(state: StackState):
    if state.runtime == "docker":
        return DockerLifecycle(state)
    return LocalLifecycle(state)
