"""The dead-man switch: reverts a stack's faults when the runner that made them stops.

``python -m chaos.faults.watchdog --stack-id ID --home CHAOS_HOME --heartbeat FILE
--runner-pid PID [--timeout 2]`` is a detached process (its own session: a Ctrl-C to the
runner does not reach it). It polls every 0.25 s:

- the heartbeat file is gone: the runner finished cleanly and reverted its own faults.
  Exit 0, reverting nothing.
- the runner's process is gone (killed, crashed: its pid is dead, a zombie, or another
  process now) or the heartbeat is older than the timeout (the runner hangs or is
  frozen): revert every active action in the ledger for the stack, through the same
  engine and executors as the runner (from the ledger and the stack state file alone),
  retrying what failed for a few rounds; write the reason beside the heartbeat
  (``FILE.tripped``) and exit 3.

The runner uses :func:`guard`::

    with guard(state) as hb:       # starts the watchdog, waits until it watches
        engine.inject(actions)     # heartbeats from a daemon thread meanwhile
        ...
        engine.revert(actions)
    # clean exit: heartbeat file removed, the watchdog exits without touching anything

If the block is left while the ledger still holds active faults of the stack (an
exception before the revert, a second Ctrl-C during it), the heartbeat file is left in
place and stops being touched: the watchdog trips after the timeout and reverts them.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as _dt
import json
import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from importlib import import_module
from pathlib import Path

from chaos.core.errors import ChaosError

POLL_S = 0.25
BEAT_S = 0.5
DEFAULT_TIMEOUT_S = 2.0
READY_WAIT_S = 20.0        # a watchdog starting on a busy 2-core machine: imports take time
STOP_WAIT_S = 3.0
REVERT_ROUNDS = 3
EXIT_CLEAN, EXIT_TRIPPED = 0, 3


def _log(msg: str) -> None:
    stamp = _dt.datetime.now().isoformat(timespec="milliseconds")
    print(f"{stamp} watchdog[{os.getpid()}] {msg}", flush=True)


def _preload(state) -> None:
    """Import what a revert needs now, not after the runner died (imports cost seconds
    on a busy machine): every executor, and what the stack's runtime says its reverts
    need (docker's SDK; nothing of it for a local stack)."""
    from chaos.faults import executors
    from chaos.faults.engine import Engine  # noqa: F401
    for module in sorted(set(executors.MECHANISMS.values())):
        try:
            import_module(f"chaos.faults.executors.{module}")
        except ImportError:
            pass                    # a mechanism not written yet: nothing of it to revert
    with contextlib.suppress(ImportError):
        import toxiproxy.api  # noqa: F401
    if state is None:
        return
    from chaos.targets.runtimes import runtime_of
    try:
        needs = runtime_of(state).revert_imports
    except ChaosError:
        return                      # reverting will say what is wrong with the stack
    for module in needs:
        with contextlib.suppress(ImportError):
            import_module(module)


def _runner_state(pid: int, ticks: int | None) -> str | None:
    """None while the runner lives; else why it counts as gone."""
    from chaos.targets.procs import start_ticks
    now = start_ticks(pid)
    if ticks is None or now is None:
        return f"runner pid {pid} is gone"
    if now != ticks:
        return f"runner pid {pid} is gone (the pid now belongs to another process)"
    return None


def revert_stack(stack_id: str, rounds: int = REVERT_ROUNDS,
                 owner_pid: int | None = None) -> tuple[int, list[str]]:
    """Revert every active action of the stack in the ledger (owner_pid: only those that
    process injected; another runner's faults are its own watchdog's); (reverted, failures)."""
    from chaos.targets.state import StackState
    from chaos.faults.engine import Engine
    from chaos.faults.executors import executors_for

    try:
        state = StackState.load(stack_id)
    except ChaosError as e:
        return 0, [f"stack {stack_id}: {e}"]
    if state is None:
        return 0, [f"stack {stack_id} is no longer up (no state file for it); nothing to "
                   "revert it with"]
    engine = Engine(executors_for(state), stack_id)
    reverted, failures = 0, []
    for i in range(rounds):
        report = engine.revert_all(pid=owner_pid)
        reverted += len(report.reverted)
        failures = [f"{a.describe()}: {why}" for a, why in report.failed]
        if report.ok:
            break
        _log(f"round {i + 1}: {len(failures)} step(s) could not be reverted ("
             + "; ".join(failures) + "); retrying")
        time.sleep(0.5)
    return reverted, failures


def watch(stack_id: str, heartbeat: Path, runner_pid: int, timeout_s: float) -> int:
    from chaos.targets.procs import start_ticks
    from chaos.targets.state import StackState

    runner_ticks = start_ticks(runner_pid)
    try:
        state = StackState.load(stack_id)
    except ChaosError:
        state = None        # reverting will say so; watching goes on
    _preload(state)
    _write(_sidecar(heartbeat, "watchdog"), json.dumps({"pid": os.getpid(), "stack_id": stack_id,
                                                        "runner_pid": runner_pid}))
    _log(f"watching runner {runner_pid} of stack {stack_id} (heartbeat {heartbeat}, "
         f"timeout {timeout_s:g} s)")
    while True:
        if not heartbeat.exists():
            _log("heartbeat removed: the runner finished cleanly")
            _cleanup(heartbeat, keep_tripped=False)
            return EXIT_CLEAN
        gone = _runner_state(runner_pid, runner_ticks)
        if gone is not None:
            return _trip(stack_id, heartbeat, gone, runner_alive=False, runner_pid=runner_pid)
        try:
            age = time.time() - heartbeat.stat().st_mtime
        except FileNotFoundError:
            continue                  # removed just now: the next pass exits cleanly
        if age > timeout_s:
            return _trip(stack_id, heartbeat, f"no heartbeat for {age:.1f} s (timeout "
                         f"{timeout_s:g} s)", runner_alive=True, runner_pid=runner_pid)
        time.sleep(POLL_S)


def _trip(stack_id: str, heartbeat: Path, reason: str, runner_alive: bool,
          runner_pid: int | None = None) -> int:
    t0 = time.monotonic()
    _log(f"tripped: {reason}; reverting the faults of {stack_id}")
    reverted, failures = revert_stack(stack_id, owner_pid=runner_pid)
    took = time.monotonic() - t0
    _log(f"reverted {reverted} step(s) in {took:.2f} s"
         + (f"; {len(failures)} could not be: " + "; ".join(failures) if failures else ""))
    record = {"reason": reason, "reverted": reverted, "failed": failures, "took_s": round(took, 3)}
    if runner_alive:   # it may want to know why its faults went away
        _write(_sidecar(heartbeat, "tripped"), json.dumps(record))
    _cleanup(heartbeat, keep_tripped=runner_alive)
    return EXIT_TRIPPED


def _sidecar(heartbeat: Path, what: str) -> Path:
    return heartbeat.with_name(f"{heartbeat.name}.{what}")


def _write(path: Path, text: str) -> None:
    from chaos.targets.state import write_atomic
    write_atomic(path, text)


def _cleanup(heartbeat: Path, keep_tripped: bool) -> None:
    _sidecar(heartbeat, "watchdog").unlink(missing_ok=True)
    if not keep_tripped:
        heartbeat.unlink(missing_ok=True)
        _sidecar(heartbeat, "tripped").unlink(missing_ok=True)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m chaos.faults.watchdog",
                                description="Revert a stack's faults when its runner stops.")
    p.add_argument("--stack-id", required=True)
    p.add_argument("--home", required=True, help="the runner's CHAOS_HOME (ledger, stack state)")
    p.add_argument("--heartbeat", required=True, help="the file the runner keeps touching")
    p.add_argument("--runner-pid", required=True, type=int)
    p.add_argument("--timeout", type=float, default=DEFAULT_TIMEOUT_S, metavar="S",
                   help=f"heartbeat older than S seconds trips it (default {DEFAULT_TIMEOUT_S:g})")
    args = p.parse_args(argv)
    if not args.timeout > 0:
        p.error(f"--timeout must be more than 0 s, got {args.timeout:g}")
    os.environ["CHAOS_HOME"] = args.home
    signal.signal(signal.SIGINT, signal.SIG_IGN)   # only the runner's end stops it
    return watch(args.stack_id, Path(args.heartbeat), args.runner_pid, args.timeout)


# -- the runner's side ----------------------------------------------------------------------

class Heartbeat:
    """The runner's handle on its watchdog."""

    def __init__(self, path: Path, proc: subprocess.Popen, timeout_s: float) -> None:
        self.path, self.proc, self.timeout_s = path, proc, timeout_s
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._beat, name="chaos-heartbeat", daemon=True)

    @property
    def watchdog_pid(self) -> int:
        return self.proc.pid

    def tripped(self) -> dict | None:
        """What the watchdog did if it tripped while this runner lived, else None."""
        try:
            doc = json.loads(_sidecar(self.path, "tripped").read_text())
        except (OSError, ValueError, RecursionError):
            return None
        return doc if isinstance(doc, dict) else {"reason": f"unreadable record: {str(doc)[:200]}"}

    def watching(self) -> bool:
        return self.proc.poll() is None

    def _beat(self) -> None:
        while not self._stop.wait(BEAT_S):
            try:
                os.utime(self.path)
            except FileNotFoundError:
                return

    def _wait_ready(self) -> None:
        from chaos.faults.engine import FaultError
        ready = _sidecar(self.path, "watchdog")
        deadline = time.monotonic() + READY_WAIT_S
        while not ready.exists():
            if self.proc.poll() is not None:
                raise FaultError(f"the watchdog exited at start (code {self.proc.returncode}); "
                                 "see its log in $CHAOS_HOME/faults/watchdog.log. No fault was injected.")
            if time.monotonic() > deadline:
                raise FaultError(f"the watchdog did not start watching within {READY_WAIT_S:g} s "
                                 "(a very busy machine?). No fault was injected.")
            time.sleep(0.05)
            os.utime(self.path)

    def _stop_watching(self, stack_id: str) -> None:
        from chaos.faults.ledger import Ledger
        self._stop.set()
        self._thread.join(timeout=2)
        try:
            left = Ledger().active(stack_id, pid=os.getpid())
        except Exception:  # noqa: BLE001 - an unreadable ledger: let the watchdog decide
            left = [None]
        if left:
            # faults are still on: leave the heartbeat to go stale; the watchdog reverts them
            print(f"chaos: {len(left)} fault step(s) still active; the watchdog (pid "
                  f"{self.proc.pid}) reverts them within {self.timeout_s + 1:g} s",
                  file=sys.stderr)
            return
        self.path.unlink(missing_ok=True)
        try:
            self.proc.wait(timeout=STOP_WAIT_S)
        except subprocess.TimeoutExpired:
            pass   # it is reverting (it tripped): let it finish on its own
        _sidecar(self.path, "tripped").unlink(missing_ok=True)


@contextlib.contextmanager
def guard(state, timeout_s: float = DEFAULT_TIMEOUT_S) -> Iterator[Heartbeat]:
    """Start a watchdog for this runner and stack, heartbeat while the block runs."""
    from chaos.targets.state import home

    wd_dir = home() / "faults" / "watchdog"
    wd_dir.mkdir(parents=True, exist_ok=True)
    path = wd_dir / f"heartbeat-{os.getpid()}-{uuid.uuid4().hex[:6]}"
    path.touch()
    log = open(home() / "faults" / "watchdog.log", "ab")  # noqa: SIM115 - the child keeps it
    try:
        proc = subprocess.Popen(
            [sys.executable, "-m", "chaos.faults.watchdog", "--stack-id", state.stack_id,
             "--home", str(home()), "--heartbeat", str(path), "--runner-pid", str(os.getpid()),
             "--timeout", str(timeout_s)],
            stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
            start_new_session=True, close_fds=True)
    finally:
        log.close()
    hb = Heartbeat(path, proc, timeout_s)
    try:
        hb._wait_ready()
    except BaseException:
        path.unlink(missing_ok=True)       # it exits cleanly on its own, reverting nothing
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=STOP_WAIT_S)
        if proc.poll() is None:
            proc.kill()                     # our own child, by its pid
        _cleanup(path, keep_tripped=False)
        raise
    hb._thread.start()
    try:
        yield hb
    finally:
        hb._stop_watching(state.stack_id)


if __name__ == "__main__":
    sys.exit(main())
