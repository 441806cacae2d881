"""A SIGSTOP/SIGCONT duty cycle that holds a local process to a share of a CPU.

    python -m chaos.faults.executors.dutycycle --pid P --start-ticks T --share S --stack-id ID \
        [--period-ms 100] [--stop-file F] [--ready-file F] [--parent-pid P --parent-ticks T] \
        [--max-s 3600]

Every period the target runs for share x period and is stopped for the rest. Each cycle,
before signalling, it checks that the target is still the labelled process of the stack
(``procs.is_ours``: same start time, same stack label). It stops when the stop file
appears, on SIGTERM / SIGINT / SIGHUP, when its parent (the runner) is gone, when the
target is gone, or after --max-s; however it stops (short of SIGKILL), the target is left
running (SIGCONT). The revert in exec_cpu.py sends SIGCONT itself as well, for the
SIGKILL case.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import time
from pathlib import Path

from chaos.targets import procs


class _Stop(Exception):
    pass


STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP)


def _on_signal(signum, frame):  # noqa: ARG001 - signal handler signature
    for sig in STOP_SIGNALS:  # once is enough: a second signal must not cut the clean-up short
        signal.signal(sig, signal.SIG_IGN)
    raise _Stop(signal.Signals(signum).name)


def _parent_alive(pid: int | None, ticks: int | None) -> bool:
    return pid is None or procs.start_ticks(pid) == ticks


def run(target: procs.Proc, stack_id: str, share: float, period_s: float, stop_file: Path | None,
        parent: tuple[int, int] | None, max_s: float, ready_file: Path | None = None) -> str:
    """The loop; returns why it stopped. The target is always left running."""
    run_s = max(0.0, min(1.0, share)) * period_s
    pause_s = period_s - run_s
    ppid, pticks = parent if parent else (None, None)
    deadline = time.monotonic() + max_s
    why = "max-s reached"
    try:
        if not procs.is_ours(target, stack_id):
            return f"target pid {target.pid} is not a process of stack {stack_id}"
        if ready_file is not None:
            ready_file.write_text(str(os.getpid()))
        while time.monotonic() < deadline:
            if stop_file is not None and stop_file.exists():
                why = "stop file"
                break
            if not _parent_alive(ppid, pticks):
                why = f"parent {ppid} is gone"
                break
            if not procs.is_ours(target, stack_id):
                why = f"target {target.pid} is gone"
                break
            os.kill(target.pid, signal.SIGCONT)
            time.sleep(run_s)
            if pause_s <= 0:
                continue
            if not procs.is_ours(target, stack_id):
                why = f"target {target.pid} is gone"
                break
            os.kill(target.pid, signal.SIGSTOP)
            time.sleep(pause_s)
    except _Stop as e:
        why = f"signal {e}"
    finally:
        # always: the target runs again (checked first: never signal a stranger)
        if procs.is_ours(target, stack_id):
            try:
                os.kill(target.pid, signal.SIGCONT)
            except ProcessLookupError:
                pass
    return why


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m chaos.faults.executors.dutycycle")
    p.add_argument("--pid", type=int, required=True)
    p.add_argument("--start-ticks", type=int, required=True)
    p.add_argument("--share", type=float, required=True)
    p.add_argument("--stack-id", required=True)
    p.add_argument("--period-ms", type=float, default=100.0)
    p.add_argument("--stop-file")
    p.add_argument("--ready-file")
    p.add_argument("--parent-pid", type=int)
    p.add_argument("--parent-ticks", type=int)
    p.add_argument("--max-s", type=float, default=3600.0)
    args = p.parse_args(argv)
    if not 0 < args.share <= 1 or not args.period_ms > 0 or not args.max_s > 0:
        p.error("--share must be in (0, 1], --period-ms and --max-s more than 0")
    for sig in STOP_SIGNALS:
        signal.signal(sig, _on_signal)
    parent = (args.parent_pid, args.parent_ticks) if args.parent_pid else None
    why = run(procs.Proc("target", args.pid, args.start_ticks, ""), args.stack_id, args.share,
              args.period_ms / 1000, Path(args.stop_file) if args.stop_file else None, parent,
              args.max_s, Path(args.ready_file) if args.ready_file else None)
    print(f"dutycycle on pid {args.pid} ({args.share:g} CPU) ended: {why}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
