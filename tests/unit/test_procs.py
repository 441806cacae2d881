import sys

from chaos.targets import procs


def test_spawned_processes_are_labelled_and_stoppable(tmp_path):
    p = procs.spawn("svc-x", "dc-b", [sys.executable, "-c", "import time; time.sleep(60)"],
                    "stack-test-1", tmp_path / "x.log", tmp_path)
    try:
        assert procs.is_ours(p, "stack-test-1")
        assert not procs.is_ours(p, "another-stack")
        assert procs.labels(p.pid)["CHAOS_SERVICE"] == "svc-x"
        assert procs.labels(p.pid)["CHAOS_DC"] == "dc-b"
        assert p.pid in procs.find_labelled("stack-test-1")
    finally:
        assert procs.terminate([p.pid], grace_s=2) == [p.pid]
    assert not procs.is_ours(p, "stack-test-1")
    assert procs.find_labelled("stack-test-1") == []


def test_redis_server_is_recognised_although_it_wipes_its_environment(tmp_path):
    import socket
    import time

    import pytest

    from chaos.targets.local import redis_server
    if redis_server() is None:
        pytest.skip("redis-server is not installed (fixtures/setup.sh installs it)")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    p = procs.spawn("redis-x", "dc-a", [redis_server(), "--port", str(port), "--bind", "127.0.0.1",
                                        "--save", ""], "stack-test-4", tmp_path / "r.log", tmp_path)
    try:
        for _ in range(100):  # its process title overwrites the environment once it is up
            if "CHAOS_STACK" not in procs.labels(p.pid):
                break
            time.sleep(0.02)
        assert "CHAOS_STACK" not in procs.labels(p.pid), "redis no longer wipes it: simplify procs"
        assert procs.is_ours(p, "stack-test-4")
        assert p.pid in procs.find_labelled("stack-test-4")
    finally:
        procs.terminate([p.pid], grace_s=2)


def test_a_recycled_pid_is_not_ours(tmp_path):
    p = procs.spawn("svc", None, [sys.executable, "-c", "import time; time.sleep(60)"],
                    "stack-test-2", tmp_path / "y.log", tmp_path)
    forged = procs.Proc(p.service, p.pid, p.start_ticks + 1, p.log)
    try:
        assert not procs.is_ours(forged, "stack-test-2")
    finally:
        procs.terminate([p.pid], grace_s=2)


def test_a_frozen_process_still_stops(tmp_path):
    import os
    import signal
    p = procs.spawn("svc", None, [sys.executable, "-c", "import time; time.sleep(60)"],
                    "stack-test-3", tmp_path / "z.log", tmp_path)
    os.kill(p.pid, signal.SIGSTOP)
    procs.terminate([p.pid], grace_s=2)
    assert procs.start_ticks(p.pid) is None
