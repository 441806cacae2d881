"""A worker process of a run's (a join storm's, a probe's crowd of listeners): how it is
set up, and its pipe to the parent.

    def main(spec, conn):                       # the process's entry point
        child.run(conn, lambda start: conn.send(("report", asyncio.run(serve(spec, conn)))))

    async def serve(spec, conn):
        child.on_parent(conn, "release", release)   # sets the event when the parent says so

The process ignores Ctrl-C (the parent decides), has a session of its own, dies with its
parent (PR_SET_PDEATHSIG, and EOF on the pipe: exit code 3), and may hold as many open
files as its hard limit allows. The pipe: ("ready", pid) -> , <- ("start", ...), then
the body's own messages, or ("error", traceback) if it fails.
"""

from __future__ import annotations

import asyncio
import ctypes
import os
import resource
import signal
import time
import traceback
from collections.abc import Callable

PARENT_GONE = 3                 # exit code: nobody is left to read what it would report


def run(conn, body: Callable[[tuple], None]) -> None:
    """Set the process up, say it is ready, and run ``body`` with the parent's start
    message (nothing, if the parent says anything else)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    _own_session()
    _die_with_parent()
    _raise_fd_limit()
    try:
        conn.send(("ready", os.getpid()))
        msg = conn.recv()
        if msg[0] != "start":
            return
        body(msg)
    except (EOFError, BrokenPipeError):
        os._exit(PARENT_GONE)
    except BaseException:  # noqa: BLE001 - the parent must hear why, whatever it was
        try:
            conn.send(("error", traceback.format_exc()[-4000:]))
        except OSError:
            pass
        raise
    finally:
        conn.close()


def on_parent(conn, word: str, event: asyncio.Event) -> None:
    """Set ``event`` when the parent sends (``word``, ...); exit when the parent is gone.
    Call from the event loop; ``loop.remove_reader(conn.fileno())`` stops it."""
    def on_message() -> None:
        try:
            msg = conn.recv()
        except (EOFError, OSError):
            os._exit(PARENT_GONE)
        if msg and msg[0] == word:
            event.set()

    asyncio.get_running_loop().add_reader(conn.fileno(), on_message)


def _die_with_parent() -> None:
    try:
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass  # not Linux: the pipe's EOF and the hard deadline still end the worker


def _own_session() -> None:
    """A session of its own, hence (with the kernel's autogroup scheduling, on by default)
    its own CPU share, like each of the stack's processes: otherwise K workers share one
    group's share against every stack process's, and a busy machine shows up as the
    generator falling behind."""
    try:
        os.setsid()
    except OSError:
        pass  # already a session leader


def _raise_fd_limit() -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


# -- the parent side: ending a run's worker processes ------------------------------------

TERM_GRACE_S = 2.0
REAP_POLL_S = 0.02


async def reap_workers(procs) -> None:
    """Join every worker; terminate (then kill) those still running. Runs on cancellation
    too, so that Ctrl-C leaves no process behind."""
    end = time.monotonic() + TERM_GRACE_S
    while any(p.is_alive() for p in procs) and time.monotonic() < end:
        await _sleep_shielded(REAP_POLL_S)
    for sig in ("terminate", "kill"):
        alive = signal_workers(procs, sig)
        if not alive:
            break
        end = time.monotonic() + TERM_GRACE_S
        while any(p.is_alive() for p in alive) and time.monotonic() < end:
            time.sleep(REAP_POLL_S)  # blocking on purpose: the loop may be cancelled already
    for p in procs:
        p.join(timeout=0.1)


def signal_workers(procs, how: str) -> list:
    """terminate() or kill() the workers still alive; returns them."""
    alive = [p for p in procs if p.is_alive()]
    for p in alive:
        getattr(p, how)()
    return alive


async def _sleep_shielded(s: float) -> None:
    try:
        await asyncio.sleep(s)
    except asyncio.CancelledError:
        time.sleep(s)  # a second Ctrl-C: carry on reaping
