"""A run's worker process: the start handshake, the parent's word, a failure reported with
its traceback, and an exit when the parent is gone."""

from __future__ import annotations

import asyncio
import multiprocessing as mp
import os

from chaos.audio import child


def _serve(conn, parent_end) -> None:
    parent_end.close()                   # forked: only the parent holds its end, as spawned

    async def main():
        release = asyncio.Event()
        child.on_parent(conn, "release", release)
        conn.send(("waiting",))
        await asyncio.wait_for(release.wait(), 10)
        return {"pid": os.getpid(), "session_leader": os.getsid(0) == os.getpid()}
    child.run(conn, lambda start: conn.send(("report", start[1], asyncio.run(main()))))


def _fail(conn, parent_end) -> None:
    parent_end.close()
    child.run(conn, lambda start: 1 / 0)


def _start(target):
    ctx = mp.get_context("fork")
    parent, conn = ctx.Pipe()
    p = ctx.Process(target=target, args=(conn, parent), daemon=True)
    p.start()
    conn.close()
    assert parent.poll(10)
    kind, pid = parent.recv()
    assert kind == "ready" and pid == p.pid
    return p, parent


def test_a_worker_starts_on_the_parents_word_and_reports():
    p, parent = _start(_serve)
    parent.send(("start", 7))
    assert parent.poll(10) and parent.recv() == ("waiting",)
    parent.send(("release",))
    assert parent.poll(10)
    kind, start, report = parent.recv()
    p.join(10)
    assert (kind, start) == ("report", 7) and report == {"pid": p.pid, "session_leader": True}
    assert p.exitcode == 0


def test_a_failure_is_sent_with_its_traceback():
    p, parent = _start(_fail)
    parent.send(("start",))
    assert parent.poll(10)
    kind, text = parent.recv()
    p.join(10)
    assert kind == "error" and "ZeroDivisionError" in text and p.exitcode != 0


def test_a_worker_whose_parent_goes_exits():
    p, parent = _start(_serve)
    parent.send(("start", 1))
    assert parent.poll(10) and parent.recv() == ("waiting",)
    parent.close()                       # the parent's end of the pipe is gone
    p.join(10)
    assert p.exitcode == child.PARENT_GONE
