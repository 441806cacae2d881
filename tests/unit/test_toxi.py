"""The toxiproxy wrapper against a real toxiproxy-server, and against one that hangs."""

import socket
import subprocess
import threading
import time

import pytest

from chaos.targets.local import toxiproxy_server
from chaos.targets.toxi import Toxiproxy, ToxiproxyError, ToxiproxyTimeout

pytestmark = pytest.mark.local


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def toxiproxy(tmp_path):
    binary = toxiproxy_server()
    if binary is None:
        pytest.skip("toxiproxy-server is not installed (fixtures/setup.sh installs it)")
    api, listen, upstream = _free_port(), _free_port(), _free_port()
    conf = tmp_path / "t.json"
    conf.write_text(f'[{{"name": "a.b", "listen": "127.0.0.1:{listen}", "upstream": "127.0.0.1:{upstream}"}}]')
    p = subprocess.Popen([binary, "-host", "127.0.0.1", "-port", str(api), "-config", str(conf)],
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    client = Toxiproxy(f"127.0.0.1:{api}", timeout_s=1.0)
    for _ in range(100):
        try:
            client.version()
            break
        except ToxiproxyError:
            time.sleep(0.05)
    yield client
    p.terminate()
    p.wait(5)


def test_add_and_remove_a_toxic(toxiproxy):
    toxiproxy.add_toxic("a.b", "latency", {"latency": 100, "jitter": 10})
    assert [t["type"] for t in toxiproxy.proxies()["a.b"]["toxics"]] == ["latency"]
    assert toxiproxy.remove_toxic("a.b", "latency_downstream") is True
    assert toxiproxy.remove_toxic("a.b", "latency_downstream") is False  # idempotent
    assert toxiproxy.proxies()["a.b"]["toxics"] == []


def test_disable_and_reset(toxiproxy):
    toxiproxy.set_enabled("a.b", False)
    toxiproxy.add_toxic("a.b", "timeout", {"timeout": 0}, stream="upstream")
    assert toxiproxy.proxies()["a.b"]["enabled"] is False
    toxiproxy.reset()
    after = toxiproxy.proxies()["a.b"]
    assert after["enabled"] is True and after["toxics"] == []


def test_unknown_proxy_is_a_clear_error(toxiproxy):
    with pytest.raises(ToxiproxyError, match="refused add toxic"):
        toxiproxy.add_toxic("no.such", "latency", {"latency": 1})


def test_a_hung_toxiproxy_cannot_hang_the_caller():
    # a server that accepts connections and never answers: the seam is the point here
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(16)
    held = []
    stop = threading.Event()

    def accept():
        srv.settimeout(0.1)
        while not stop.is_set():
            try:
                held.append(srv.accept()[0])
            except OSError:
                pass
    t = threading.Thread(target=accept, daemon=True)
    t.start()
    try:
        client = Toxiproxy(f"127.0.0.1:{srv.getsockname()[1]}", timeout_s=0.3)
        started = time.monotonic()
        with pytest.raises(ToxiproxyError):
            client.reset()
        assert time.monotonic() - started < 3.0
    finally:
        stop.set()
        t.join(2)
        for c in held:
            c.close()
        srv.close()


def test_nothing_listening_is_a_clear_error():
    client = Toxiproxy(f"127.0.0.1:{_free_port()}", timeout_s=0.5)
    with pytest.raises(ToxiproxyError, match="did not answer|failed"):
        client.proxies()


def test_a_revert_toxiproxy_never_answers_ends_in_a_clean_restart(monkeypatch):
    """The seam: a toxiproxy whose API hangs (every call times out). The revert polls for a
    bounded time, then restarts toxiproxy clean from its config instead of leaving the
    toxic on."""
    from chaos.faults.executors import toxi as exec_toxi
    from chaos.faults.base import Action
    from chaos.targets.toxi import ToxiproxyTimeout

    class Hung:
        def remove_toxic(self, *a, **k):
            raise ToxiproxyTimeout("did not answer")

        def proxies(self):
            raise ToxiproxyTimeout("did not answer")

        def set_enabled(self, *a, **k):
            raise ToxiproxyTimeout("did not answer")

    restarted = []
    monkeypatch.setattr(exec_toxi, "restart_toxiproxy", lambda state: restarted.append(state))
    monkeypatch.setattr(exec_toxi, "DRAIN_MAX_S", 0.3)
    action = Action("latency", "latency-1", "toxic", "listener.edge-a", "dc-a",
                    {"proxy": "listener.edge-a", "toxic": "latency", "attributes": {"latency": 3000},
                     "toxicity": 1.0, "undo": {"toxics": [{"name": "t1", "stream": "downstream"}]}})
    exec_toxi.ToxiExecutor(Hung(), state="the-stack").revert(action)
    assert restarted == ["the-stack"]
    exec_toxi.ToxiExecutor(Hung(), state="the-stack").revert(
        Action("link_down", "l-1", "proxy", "edge-a.origin-a", "dc-a", {"proxy": "edge-a.origin-a"}))
    assert restarted == ["the-stack", "the-stack"]
    with pytest.raises(ToxiproxyTimeout):      # no stack to restart: the failure is reported
        exec_toxi.ToxiExecutor(Hung()).revert(action)


def _sweep_state(address: str, source: str = "reference"):
    """A stack state whose toxiproxy is at address (its links: the fixture's one proxy)."""
    import dataclasses

    from chaos.adapters.space.reference import build
    from chaos.core.target import Link
    from chaos.targets.state import StackState
    topo = build("local", "resilient")
    link = Link("a.b", "test", "listener", "edge-a")
    topo = dataclasses.replace(topo, toxiproxy=address, source=source, links={"a.b": link})
    return StackState("space-toxisweep", "local", "resilient", "2024-01-01T00:00:00+00:00", topo, {})


def _steps(executor, stage):
    """Run one stage of the executor's sweep the way reset does; (what, swept or error)."""
    ran = []

    def step(what, fn):
        try:
            ran.append((what, fn()))
            return True
        except Exception as e:  # noqa: BLE001 - recorded, as reset reports it
            ran.append((what, e))
            return False
    executor.sweep(stage, step)
    return ran


def test_the_toxiproxy_sweep_removes_toxics_and_enables_proxies(toxiproxy):
    from chaos.faults.executors import toxi as exec_toxi
    from chaos.faults.base import SweepStage
    toxiproxy.add_toxic("a.b", "latency", {"latency": 100}, name="by-hand")
    toxiproxy.set_enabled("a.b", False)
    executor = exec_toxi.make(_sweep_state(f"{toxiproxy.host}:{toxiproxy.port}"))
    [(what, swept)] = _steps(executor, SweepStage.CLEAR)
    assert what == "resetting toxiproxy"
    assert swept.did == ["removed 1 toxic(s): by-hand on a.b", "enabled 1 proxy(ies): a.b"]
    assert swept.problems == []
    after = toxiproxy.proxies()["a.b"]
    assert after["enabled"] is True and after["toxics"] == []
    assert _steps(executor, SweepStage.CLEAR_AGAIN) == [], "it answered: nothing left to do"
    assert _steps(executor, SweepStage.RUN) == []


def test_a_toxiproxy_that_does_not_answer_is_restarted_then_reset_again(monkeypatch):
    from chaos.faults.executors import toxi as exec_toxi
    from chaos.faults.base import SweepStage
    from chaos.targets.toxi import ToxiproxyError
    restarted = []
    monkeypatch.setattr(exec_toxi, "restart_toxiproxy",
                        lambda state: restarted.append(state.stack_id) or ["restarted toxiproxy"])
    down = f"127.0.0.1:{_free_port()}"            # nothing listens there
    executor = exec_toxi.make(_sweep_state(down))
    clear = _steps(executor, SweepStage.CLEAR)
    assert [w for w, _ in clear] == ["resetting toxiproxy", "restarting a toxiproxy that does not answer"]
    assert clear[0][1] is None, "not answering before the restart is no problem yet"
    assert clear[1][1].did == ["restarted toxiproxy"] and restarted == ["space-toxisweep"]
    [(what, error)] = _steps(executor, SweepStage.CLEAR_AGAIN)
    assert what == "resetting toxiproxy" and isinstance(error, ToxiproxyError), \
        "still down after the stack runs again: reported"


def test_a_described_targets_toxiproxy_is_never_restarted(monkeypatch):
    from chaos.faults.executors import toxi as exec_toxi
    from chaos.faults.base import SweepStage
    monkeypatch.setattr(exec_toxi, "restart_toxiproxy", lambda state: pytest.fail("restarted"))
    executor = exec_toxi.make(_sweep_state(f"127.0.0.1:{_free_port()}", source="mine.yaml"))
    assert [w for w, _ in _steps(executor, SweepStage.CLEAR)] == ["resetting toxiproxy"]
    assert [w for w, _ in _steps(executor, SweepStage.CLEAR_AGAIN)] == ["resetting toxiproxy"]
