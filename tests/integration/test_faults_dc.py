"""Data-center faults on real stacks: dc_loss (kill, freeze) and dc_partition, their
reverts, the dead-man switch after a SIGKILLed runner, and `chaos stack reset`.

Local stacks use base port 24000 (CHAOS_TEST_DC_BASE moves them; 16200 if 24000 is busy),
below Linux's ephemeral range (32768-60999). Inside that range (e.g. 36000) a proxy that
dc_partition disables frees its port, a client connection elsewhere on the machine can
take it as its ephemeral source port, and toxiproxy cannot listen there again until that
connection and its TIME_WAIT are gone: the revert then leaves the link down (seen here
while another engineer's load test ran). The docker stack is machine-wide (base 17000)
and these tests skip when one is already running.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import aiohttp
import pytest

from chaos.targets import stack
from chaos.cli import main
from chaos.core.errors import PortInUse, StackAlreadyUp
from chaos.faults import Engine, FaultSpec, Ledger, Selector, plan
from chaos.faults.executors import executors_for
from chaos.faults.kinds.dc import crossing_links
from chaos.faults.watchdog import guard
from chaos.adapters.space.joinapi import Refused, create_space, join
from chaos.session.probe import run_probe
from chaos.targets import procs
from chaos.targets.state import StackState
from chaos.targets.toxi import Toxiproxy
from space.topology import DCS

pytestmark = pytest.mark.timeout(900)
LOCAL_BASES = (int(os.environ.get("CHAOS_TEST_DC_BASE", "24000")), 16200)
DOCKER_BASE = 17000
ABORT_BUDGET_S = 5.0


class Stacks:
    """One stack at a time in this module's CHAOS_HOME; switching runtime or profile takes
    the previous one down."""

    def __init__(self) -> None:
        self.state: StackState | None = None

    def get(self, runtime: str, profile: str) -> StackState:
        if self.state and (self.state.runtime, self.state.profile) == (runtime, profile):
            return StackState.load()
        self.close()
        if runtime == "docker":
            _docker_or_skip()
        bases = LOCAL_BASES if runtime == "local" else (DOCKER_BASE,)
        for i, base in enumerate(bases):
            try:
                self.state = stack.up(runtime, profile, base)   # a failed up cleans up itself
                break
            except StackAlreadyUp as e:
                pytest.skip(str(e))
            except PortInUse as e:
                if i == len(bases) - 1:
                    raise
                print(f"base port {base}: {e}; trying {bases[i + 1]}")
        return self.state

    def close(self) -> None:
        if self.state is not None:
            self.state = None
            stack.down()


def _docker_or_skip() -> None:
    from chaos.targets.docker import has_labelled_containers
    from chaos.targets.images import docker_client, ensure_images
    try:
        docker_client(timeout=3).close()
    except Exception as e:  # noqa: BLE001 - any reason the engine is not there
        pytest.skip(f"no docker engine: {e}")
    if has_labelled_containers():
        pytest.skip("a docker space stack is already running on this engine; not touching it")
    ensure_images(print)


@pytest.fixture(scope="module")
def stacks(chaos_home):
    s = Stacks()
    yield s
    s.close()


# -- helpers ------------------------------------------------------------------------------

def engine(state: StackState) -> Engine:
    return Engine(executors_for(state), state.stack_id)


def dc_loss(state, dc, **params):
    return plan(FaultSpec("dc_loss", Selector(dc=dc), params), state.topology)


def proc_state(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return ""


def frozen_procs(stack_id: str) -> list[int]:
    return [p for p in procs.find_labelled(stack_id) if proc_state(p) in ("T", "t")]


def toxi(state) -> Toxiproxy:
    return Toxiproxy(state.topology.services["toxiproxy"].public)


def toxics(state) -> list[str]:
    return sorted(f"{n}:{t['name']}" for n, p in toxi(state).proxies().items() for t in p["toxics"])


def disabled(state) -> list[str]:
    return sorted(n for n, p in toxi(state).proxies().items() if not p["enabled"])


def chaos_rules(prefix: list[str], stack_id: str) -> list[str]:
    out = subprocess.run([*prefix, "iptables-save"], capture_output=True, text=True, timeout=10).stdout
    return [line for line in out.splitlines() if f"chaos:{stack_id}" in line]


def wait_healthy(within_s: float) -> None:
    deadline = time.monotonic() + within_s
    while True:
        sick = [f"{s.name} ({s.detail})" for s in stack.status() if not s.healthy]
        if not sick:
            return
        assert time.monotonic() < deadline, f"not healthy after {within_s:g} s: {sick}"
        time.sleep(1)


def probe_during(state, fault, at_s: float, listeners: int, seconds: float):
    """A probe of `seconds`, with fault() run (in a thread) `at_s` seconds in."""
    async def go():
        async def later():
            await asyncio.sleep(at_s)
            await asyncio.get_running_loop().run_in_executor(None, fault)
        task = asyncio.create_task(later())
        try:
            return await run_probe(state.topology, listeners, seconds, join_timeout_s=10,
                                   thick_per_dc=0)
        finally:
            await task
    return asyncio.run(go())


def eventually_home(state, dc: str, within_s: float = 30.0) -> None:
    """A listener of dc joins an edge of dc again: once the DC is back, the gateways learn
    it from the edges' load reports, so give it a few rounds."""
    deadline = time.monotonic() + within_s
    while True:
        back = asyncio.run(run_probe(state.topology, listeners=3, seconds=1.5, thick_per_dc=0))
        got = [r.dc for r in back.records if r.home_dc == dc]
        if got == [dc]:
            return
        assert time.monotonic() < deadline, f"a {dc} listener still joins {got} after {within_s:g} s"
        time.sleep(1)


def assert_moved_away(result, dc: str, lost_edge: str) -> None:
    last = result.produced[-1][0]
    moved = [r for r in result.records if r.home_dc == dc]
    assert moved
    for r in moved:
        assert r.edges_seen[0] == lost_edge, r
        assert r.dc != dc and r.edges_seen[-1] != lost_edge, f"still on {r.edges_seen}"
        assert r.reconnects >= 1
        assert r.last_seq is not None and r.last_seq >= last - 100, "hears the speaker again after the move"
    for r in result.records:
        if r.home_dc != dc:
            assert r.edges_seen == [f"edge-{r.home_dc[-1]}"], "the other DCs' listeners stay"


def assert_cut_off(result, dc: str, edge: str, cut_ns: int) -> None:
    """The DC's listeners lost their edge at the cut and heard nothing through it after;
    they either moved to another DC (and hear audio again) or are still knocking on their
    home DC's gateway, which refuses (state unavailable) with a retry hint they honour."""
    at_cut = max((seq for seq, capture_ns in result.produced if capture_ns <= cut_ns), default=0)
    last = result.produced[-1][0]
    home = [r for r in result.records if r.home_dc == dc]
    assert home
    for r in home:
        assert r.edges_seen[0] == edge and r.reconnects >= 1, r
        if r.edges_seen[-1] == edge:
            assert r.last_seq <= at_cut + 25, "nothing through the cut-off edge after the cut"
        else:
            assert r.dc != dc and r.last_seq >= last - 100, "moved, and hears the speaker again"
    for r in result.records:
        if r.home_dc != dc:
            assert r.edges_seen == [f"edge-{r.home_dc[-1]}"], "the other DCs' listeners stay"


RUNNER = textwrap.dedent("""
    import time
    from chaos.faults import Engine, FaultSpec, Selector, plan
    from chaos.faults.executors import executors_for
    from chaos.faults.watchdog import guard
    from chaos.targets.state import StackState
    state = StackState.load()
    topo = state.topology
    actions = (plan(FaultSpec("latency", Selector(link="listener.edge-a"), {"latency_ms": 300}), topo)
               + plan(FaultSpec("dc_loss", Selector(dc="dc-c"), {"mode": "freeze"}), topo)
               + plan(FaultSpec("packet_drop", Selector(service="edge-b"), {"share": 0.5}), topo))
    with guard(state) as hb:
        Engine(executors_for(state), state.stack_id).inject(actions)
        print("INJECTED", hb.watchdog_pid, flush=True)
        time.sleep(300)
""")


def start_runner() -> tuple[subprocess.Popen, int]:
    runner = subprocess.Popen([sys.executable, "-c", RUNNER], stdout=subprocess.PIPE, text=True)
    line = runner.stdout.readline()
    assert line.startswith("INJECTED"), f"the runner did not inject: {line!r}"
    return runner, int(line.split()[1])


def kill_and_time(runner: subprocess.Popen, wd_pid: int, all_reverted) -> float:
    runner.send_signal(signal.SIGKILL)
    t0 = time.monotonic()
    runner.wait()
    while not all_reverted():
        assert time.monotonic() - t0 < ABORT_BUDGET_S, \
            f"not reverted {ABORT_BUDGET_S:g} s after the runner was killed"
        time.sleep(0.05)
    took = time.monotonic() - t0
    deadline = time.monotonic() + 10
    while procs.start_ticks(wd_pid) is not None and time.monotonic() < deadline:
        time.sleep(0.05)
    assert procs.start_ticks(wd_pid) is None, "the watchdog exits once it has reverted"
    return took


# -- local: resilient ---------------------------------------------------------------------

@pytest.mark.local
def test_local_dc_loss_moves_dc_b_listeners_and_revert_restores_it(stacks):
    state = stacks.get("local", "resilient")
    before = {d["service"]: d["pid"] for d in state.runtime_state["procs"]}
    actions, eng = dc_loss(state, "dc-b"), engine(state)
    gone = {}

    def fault():
        eng.inject(actions)
        from chaos.targets.local import service_procs
        gone.update({s.name: service_procs(state.stack_id, s.name) for s in state.topology.in_dc("dc-b")})

    with guard(state):
        result = probe_during(state, fault, at_s=2.0, listeners=9, seconds=9)
        report = eng.revert(actions)
    assert gone and not any(gone.values()), f"every dc-b service was down: {gone}"
    assert report.ok, report.failed
    assert_moved_away(result, "dc-b", "edge-b")
    wait_healthy(30)
    after = {d["service"]: d["pid"] for d in StackState.load().runtime_state["procs"]}
    for svc in state.topology.in_dc("dc-b"):
        assert after[svc.name] != before[svc.name], "restarted, and the state file knows the new pid"
    eventually_home(state, "dc-b")
    assert Ledger().active(state.stack_id) == []


@pytest.mark.local
def test_local_dc_loss_freeze_and_revert(stacks):
    state = stacks.get("local", "resilient")
    actions, eng = dc_loss(state, "dc-c", mode="freeze"), engine(state)
    pids = {d["service"]: d["pid"] for d in state.runtime_state["procs"]}
    dc_c = {pids[s.name] for s in state.topology.in_dc("dc-c")}
    with guard(state):
        eng.inject(actions)
        try:
            assert set(frozen_procs(state.stack_id)) == dc_c
        finally:
            report = eng.revert(actions)
    assert report.ok and frozen_procs(state.stack_id) == []
    assert {d["service"]: d["pid"] for d in StackState.load().runtime_state["procs"]} == pids, \
        "thawed, not restarted"
    assert eng.revert(actions).ok, "a second revert is harmless"
    wait_healthy(20)


@pytest.mark.local
def test_local_dc_partition_cuts_dc_c_and_revert_heals_it(stacks):
    state = stacks.get("local", "resilient")
    actions = plan(FaultSpec("dc_partition", Selector(dc="dc-c")), state.topology)
    eng = engine(state)
    cut = sorted(lk.name for lk in crossing_links(state.topology, "dc-c"))
    seen = {}

    def fault():
        seen["cut_ns"] = time.time_ns()
        eng.inject(actions)
        seen["disabled"] = disabled(state)

    with guard(state):
        result = probe_during(state, fault, at_s=2.0, listeners=6, seconds=8)
        report = eng.revert(actions)
    assert report.ok
    assert seen["disabled"] == cut
    assert {"edge-c.origin-a", "gateway-c.redis-a", "listener.edge-c"} <= set(cut)
    assert_cut_off(result, "dc-c", "edge-c", seen["cut_ns"])
    assert disabled(state) == []
    wait_healthy(20)


@pytest.mark.local
def test_local_cli_inject_holds_then_reverts(stacks, capsys):
    state = stacks.get("local", "resilient")
    t0 = time.monotonic()
    assert main(["fault", "inject", "dc_partition", "--dc", "dc-a", "--duration", "2", "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    n = len(crossing_links(state.topology, "dc-a"))
    assert doc["reverted"] == n and doc["failed"] == [] and 2 <= doc["held_s"] < 5
    assert not doc["interrupted"] and doc["watchdog_tripped"] is None
    assert disabled(state) == [] and time.monotonic() - t0 < 30
    assert not list((Path(os.environ["CHAOS_HOME"]) / "faults" / "watchdog").iterdir())


@pytest.mark.local
def test_local_watchdog_reverts_everything_after_the_runner_is_killed(stacks):
    state = stacks.get("local", "resilient")
    runner, wd_pid = start_runner()
    assert toxics(state) and frozen_procs(state.stack_id) and chaos_rules([], state.stack_id)

    def all_reverted():
        return not (toxics(state) or frozen_procs(state.stack_id) or chaos_rules([], state.stack_id))
    took = kill_and_time(runner, wd_pid, all_reverted)
    print(f"local: reverted {took:.2f} s after SIGKILL")
    assert Ledger().active(state.stack_id) == []
    wait_healthy(20)


@pytest.mark.local
def test_local_stack_reset_undoes_faults_made_by_hand(stacks, capsys):
    from chaos.targets.local import service_procs
    state = stacks.get("local", "resilient")
    t = toxi(state)
    t.add_toxic("listener.edge-a", "latency", {"latency": 500}, name="by-hand")
    t.set_enabled("edge-b.origin-a", False)
    [frozen] = service_procs(state.stack_id, "edge-a")
    [killed] = service_procs(state.stack_id, "gateway-c")
    for p, sig in ((frozen, signal.SIGSTOP), (killed, signal.SIGKILL)):
        assert procs.is_ours(p, state.stack_id)
        os.kill(p.pid, sig)
    edge_b = state.topology.services["edge-b"]
    host, port = edge_b.address.rsplit(":", 1)
    subprocess.run(["iptables", "-w", "3", "-I", "INPUT", "-d", host, "-p", "tcp", "--dport", port,
                    "-m", "comment", "--comment", f"chaos:{state.stack_id}:by-hand", "-j", "DROP"],
                   check=True, timeout=10)
    rc = main(["stack", "reset"])
    captured = capsys.readouterr()
    out = captured.out
    assert rc == 0, out + captured.err
    assert "removed 1 toxic(s): by-hand on listener.edge-a" in out
    assert "enabled 1 proxy(ies): edge-b.origin-a" in out
    assert "resumed 1 stopped process(es): edge-a" in out
    assert "restarted gateway-c" in out and "deleted 1 iptables rule(s) in host" in out
    assert "every service is healthy" in out
    assert toxics(state) == [] and disabled(state) == [] and frozen_procs(state.stack_id) == []
    assert chaos_rules([], state.stack_id) == []
    assert all(s.healthy for s in stack.status())


# -- local: fragile -----------------------------------------------------------------------

async def _join_everywhere(topo, space: str) -> dict[str, str]:
    """Each DC's gateway's answer to a listener's join: 'ok' or the error."""
    out = {}
    async with aiohttp.ClientSession() as session:
        for gw in topo.of_kind("gateway"):
            try:
                await join(session, gw.public, space, "listener", 3.0)
                out[gw.dc] = "ok"
            except (Refused, aiohttp.ClientError, TimeoutError, OSError) as e:
                out[gw.dc] = f"{type(e).__name__}: {e}"[:160]
    return out


async def _create(topo) -> str:
    async with aiohttp.ClientSession() as session:
        return await create_space(session, [g.public for g in topo.of_kind("gateway")], "fragile-dc-a")


@pytest.mark.local
def test_local_fragile_dc_a_loss_fails_joins_in_every_dc(stacks):
    state = stacks.get("local", "fragile")
    space = asyncio.run(_create(state.topology))
    assert set(asyncio.run(_join_everywhere(state.topology, space)).values()) == {"ok"}
    actions, eng = dc_loss(state, "dc-a"), engine(state)
    assert "redis-a" in [a.target for a in actions]
    with guard(state):
        eng.inject(actions)
        try:
            answers = asyncio.run(_join_everywhere(state.topology, space))
        finally:
            report = eng.revert(actions)
    assert report.ok
    assert set(answers) == set(DCS) and "ok" not in answers.values(), answers
    assert "503" in answers["dc-b"] and "503" in answers["dc-c"], "the gateways answer: no state"
    wait_healthy(30)
    result = asyncio.run(run_probe(state.topology, listeners=3, seconds=2, thick_per_dc=0))
    assert result.listeners_joined == 3


# -- docker ---------------------------------------------------------------------------------

def _client():
    from chaos.targets.images import docker_client
    return docker_client(timeout=30)


def container_states(dc: str | None = None) -> dict[str, str]:
    from chaos.targets.docker import labelled
    client = _client()
    try:
        return {c.labels["chaos.service"]: c.status for c in labelled(client)
                if dc is None or c.labels.get("chaos.dc") == dc}
    finally:
        client.close()


def on_backbone(service: str) -> tuple[bool, list[str]]:
    from chaos.targets.docker import labelled, network
    client = _client()
    try:
        [c] = labelled(client, service)
        net = network(client, "backbone")
        nets = c.attrs["NetworkSettings"]["Networks"]
        for attached in nets.values():
            if attached["NetworkID"] == net.id:
                return True, attached.get("Aliases") or []
        return False, []
    finally:
        client.close()


def container_pid(service: str) -> int:
    from chaos.targets.docker import labelled
    client = _client()
    try:
        [c] = labelled(client, service)
        return int(c.attrs["State"]["Pid"])
    finally:
        client.close()


DOCKER_HEALTHY_S = 120


@pytest.mark.docker
def test_docker_dc_loss_moves_dc_b_listeners_and_revert_restores_it(stacks):
    state = stacks.get("docker", "resilient")
    actions, eng = dc_loss(state, "dc-b"), engine(state)
    seen = {}

    def fault():
        eng.inject(actions)
        seen.update(container_states("dc-b"))

    with guard(state):
        result = probe_during(state, fault, at_s=2.0, listeners=6, seconds=10)
        report = eng.revert(actions)
    assert report.ok, report.failed
    assert seen and set(seen.values()) == {"exited"}, seen
    assert_moved_away(result, "dc-b", "edge-b")
    assert set(container_states("dc-b").values()) == {"running"}
    wait_healthy(DOCKER_HEALTHY_S)


@pytest.mark.docker
def test_docker_dc_loss_freeze_and_revert(stacks):
    state = stacks.get("docker", "resilient")
    actions, eng = dc_loss(state, "dc-c", mode="freeze"), engine(state)
    with guard(state):
        eng.inject(actions)
        try:
            assert set(container_states("dc-c").values()) == {"paused"}
        finally:
            report = eng.revert(actions)
    assert report.ok and set(container_states("dc-c").values()) == {"running"}
    assert eng.revert(actions).ok
    wait_healthy(DOCKER_HEALTHY_S)


@pytest.mark.docker
def test_docker_dc_partition_disconnects_dc_c_and_revert_reconnects_it(stacks):
    state = stacks.get("docker", "resilient")
    actions = plan(FaultSpec("dc_partition", Selector(dc="dc-c")), state.topology)
    eng = engine(state)
    seen = {}

    def fault():
        seen["cut_ns"] = time.time_ns()
        eng.inject(actions)
        seen["disabled"] = disabled(state)
        seen["backbone"] = {s.name: on_backbone(s.name)[0] for s in state.topology.in_dc("dc-c")}

    with guard(state):
        result = probe_during(state, fault, at_s=2.0, listeners=6, seconds=10)
        report = eng.revert(actions)
    assert report.ok, report.failed
    assert seen["disabled"] == sorted(lk.name for lk in crossing_links(state.topology, "dc-c"))
    assert seen["backbone"] and not any(seen["backbone"].values())
    assert_cut_off(result, "dc-c", "edge-c", seen["cut_ns"])
    for s in state.topology.in_dc("dc-c"):
        attached, aliases = on_backbone(s.name)
        assert attached and s.name in aliases
    assert disabled(state) == []
    wait_healthy(DOCKER_HEALTHY_S)
    eventually_home(state, "dc-c")      # edge-c is reachable again


@pytest.mark.docker
def test_docker_watchdog_reverts_everything_after_the_runner_is_killed(stacks):
    state = stacks.get("docker", "resilient")
    runner, wd_pid = start_runner()
    edge_b_ns = ["nsenter", "-t", str(container_pid("edge-b")), "-n"]
    assert toxics(state) and "paused" in container_states("dc-c").values()
    assert chaos_rules(edge_b_ns, state.stack_id)

    def all_reverted():
        return not (toxics(state) or "paused" in container_states().values()
                    or chaos_rules(edge_b_ns, state.stack_id))
    took = kill_and_time(runner, wd_pid, all_reverted)
    print(f"docker: reverted {took:.2f} s after SIGKILL")
    assert Ledger().active(state.stack_id) == []
    wait_healthy(DOCKER_HEALTHY_S)


@pytest.mark.docker
def test_docker_stack_reset_undoes_faults_made_by_hand(stacks, capsys):
    from chaos.targets.docker import labelled, network
    state = stacks.get("docker", "resilient")
    toxi(state).add_toxic("listener.edge-a", "latency", {"latency": 500}, name="by-hand")
    client = _client()
    try:
        cs = {c.labels["chaos.service"]: c for c in labelled(client)}
        cs["edge-a"].pause()
        cs["gateway-c"].stop(timeout=2)
        network(client, "backbone").disconnect(cs["edge-b"], force=True)
    finally:
        client.close()
    subprocess.run(["nsenter", "-t", str(container_pid("edge-c")), "-n", "iptables", "-w", "3", "-I",
                    "INPUT", "-p", "tcp", "--dport", "8100", "-m", "comment", "--comment",
                    f"chaos:{state.stack_id}:by-hand", "-j", "DROP"], check=True, timeout=10)
    rc = main(["stack", "reset"])
    captured = capsys.readouterr()
    out = captured.out
    assert rc == 0, out + captured.err
    for line in ("removed 1 toxic(s): by-hand on listener.edge-a", "unpaused edge-a",
                 "started gateway-c", "reconnected edge-b to network backbone",
                 "deleted 1 iptables rule(s) in edge-c", "every service is healthy"):
        assert line in out, out
    assert set(container_states().values()) == {"running"}
    assert on_backbone("edge-b")[0] and toxics(state) == []
