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
