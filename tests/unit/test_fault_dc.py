"""Data-center faults planned against real topologies, the CLI's answers to bad input, and
the dead-man switch on a labelled stand-in process (no stack needed)."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from chaos.cli import main
from chaos.core.errors import ConfigError
from chaos.faults import Action, Engine, FaultSpec, Ledger, Selector, plan
from chaos.faults.kinds.dc import crossing_links
from chaos.targets import procs
from chaos.targets.docker import expected_networks
from chaos.targets.state import StackState
from chaos.adapters.space.reference import DCS, build

LOCAL = build("local", "resilient")
DOCKER = build("docker", "resilient")
FRAGILE = build("local", "fragile")


def targets(actions, mechanism=None):
    return [a.target for a in actions if mechanism is None or a.mechanism == mechanism]


# -- dc_loss ------------------------------------------------------------------------------

def test_dc_loss_takes_every_service_of_the_dc_front_first():
    actions = plan(FaultSpec("dc_loss", Selector(dc="dc-b")), LOCAL, "f1")
    assert targets(actions) == ["gateway-b", "edge-b", "origin-b", "sentinel-b", "redis-b"]
    assert {a.mechanism for a in actions} == {"lifecycle"}
    assert all(a.dc == "dc-b" and a.params["mode"] == "kill" for a in actions)
    assert "toxiproxy" not in targets(plan(FaultSpec("dc_loss", Selector(dc="dc-a")), LOCAL))


def test_dc_loss_of_dc_a_in_the_fragile_profile_takes_the_only_redis():
    actions = plan(FaultSpec("dc_loss", Selector(dc="dc-a"), {"mode": "freeze"}), FRAGILE)
    assert targets(actions) == ["gateway-a", "edge-a", "origin-a", "redis-a"]
    for a in actions:
        assert a.params == {"mode": "freeze", "kind": a.params["kind"], "runtime": "local",
                            "undo": {"restart_together": ["redis-a", "origin-a", "edge-a", "gateway-a"]}}
        assert "undo" not in a.describe(), "the dry run shows what is done, not the revert's details"


def test_dc_loss_kinds_filter_and_service_narrowing():
    acts = plan(FaultSpec("dc_loss", Selector(dc="dc-a"), {"kinds": "redis, edge"}), LOCAL)
    assert targets(acts) == ["edge-a", "redis-a"]
    assert targets(plan(FaultSpec("dc_loss", Selector(dc="dc-c", service="edge")), DOCKER)) == ["edge-c"]
    with pytest.raises(ConfigError, match="dc-a has no service of kind mysql; its kinds are edge, gateway"):
        plan(FaultSpec("dc_loss", Selector(dc="dc-a"), {"kinds": "mysql"}), LOCAL)
    with pytest.raises(ConfigError, match="kinds='no way'.*comma-separated list of service kinds"):
        plan(FaultSpec("dc_loss", Selector(dc="dc-a"), {"kinds": "no way"}), LOCAL)
    with pytest.raises(ConfigError, match="no service of the stack matches service=origin"):
        plan(FaultSpec("dc_loss", Selector(dc="dc-c", service="origin")), LOCAL)


@pytest.mark.parametrize("selector, message", [
    (Selector(), "needs a data center: --dc dc-a"),
    (Selector(dc="dc-z"), "no data center 'dc-z'"),
    (Selector(dc="dc-a", count="one"), "whole data center: drop --count one"),
    (Selector(dc="dc-a", link="edge-a.*"), "drop --link"),
])
def test_dc_faults_refuse_what_is_not_a_whole_dc(selector, message):
    for name in ("dc_loss", "dc_partition"):
        with pytest.raises(ConfigError, match=message):
            plan(FaultSpec(name, selector), LOCAL)


def test_dc_loss_modes_are_checked():
    with pytest.raises(ConfigError, match="mode='nuke' is not accepted; use one of kill, stop, freeze"):
        plan(FaultSpec("dc_loss", Selector(dc="dc-a"), {"mode": "nuke"}), LOCAL)


# -- dc_partition -------------------------------------------------------------------------

@pytest.mark.parametrize("topo", [LOCAL, DOCKER, FRAGILE], ids=["local", "docker", "fragile"])
@pytest.mark.parametrize("dc", DCS)
def test_partition_cuts_exactly_the_links_that_cross_the_dc(topo, dc):
    actions = plan(FaultSpec("dc_partition", Selector(dc=dc)), topo, "p1")
    proxies = targets(actions, "proxy")
    for lk in topo.links.values():
        src = topo.services.get(lk.src)
        ends = {src.dc if src else None, topo.services[lk.dst].dc}
        crosses = dc in ends and len(ends) == 2
        assert (lk.name in proxies) == crosses, lk.name
    assert all(a.params == {"proxy": a.target, "enabled": False} for a in actions if a.mechanism == "proxy")
    nets = [a for a in actions if a.mechanism == "network"]
    if topo.runtime == "docker":
        assert targets(nets) == sorted(s.name for s in topo.in_dc(dc))
        assert all(a.params == {"network": "backbone", "aliases": [a.target]} for a in nets)
        assert actions.index(nets[0]) > max(actions.index(a) for a in actions if a.mechanism == "proxy"), \
            "proxies go first, so that revert (in reverse) reconnects the network before them"
    else:
        assert nets == []


def test_partition_of_dc_b_names_the_links_both_ways():
    names = {lk.name for lk in crossing_links(LOCAL, "dc-b")}
    assert {"edge-b.origin-a", "gateway-b.redis-a", "edge-a.origin-b", "gateway-c.redis-b",
            "listener.edge-b", "speaker.origin-b"} <= names
    assert not names & {"edge-b.origin-b", "gateway-b.redis-b", "edge-a.origin-a", "listener.edge-a"}


def test_dc_actions_survive_the_ledger(tmp_path):
    actions = (plan(FaultSpec("dc_partition", Selector(dc="dc-a")), DOCKER, "p")
               + plan(FaultSpec("dc_loss", Selector(dc="dc-a")), DOCKER, "l"))
    assert len({a.key for a in actions}) == len(actions)
    ledger = Ledger(tmp_path / "active.json")
    ledger.add(actions, "s1")
    assert ledger.active("s1") == actions


def test_expected_networks_match_the_compose_file():
    compose = (Path(__file__).parents[2] / "fixtures" / "compose.yaml").read_text()
    found = {}
    for block in re.split(r"\n  (?=[a-z]+(?:-[abc])?:\n)", compose.split("\nservices:", 1)[1]):
        name = block.split(":", 1)[0].strip()
        m = re.search(r"networks: \[([^\]]*)\]", block)
        if name in DOCKER.services and m:
            found[name] = {n.strip() for n in m.group(1).split(",")}
    assert set(found) == set(DOCKER.services)
    for name, nets in found.items():
        assert set(expected_networks(DOCKER.services[name])) == nets, name


# -- the CLI's answers to bad input ------------------------------------------------------

@pytest.fixture
def home(tmp_path, monkeypatch):
    monkeypatch.setenv("CHAOS_HOME", str(tmp_path))
    return tmp_path


def fake_stack(topo, stack_id="space-test0000", runtime_state=None) -> StackState:
    state = StackState(stack_id, topo.runtime, topo.profile, "2024-01-01T00:00:00+00:00", topo,
                       runtime_state or {})
    state.save()
    return state


@pytest.mark.parametrize("argv, expect", [
    (["fault", "plan", "dc_meltdown", "--dc", "dc-a"], "unknown fault 'dc_meltdown'; use one of"),
    (["fault", "plan", "dc_loss", "--dc", "dc-a", "--param", "mode=nuke"], "mode='nuke' is not accepted"),
    (["fault", "plan", "dc_loss", "--dc", "dc-a", "--param", "speed=3"], "unknown parameter(s) speed"),
    (["fault", "plan", "dc_loss", "--dc", "dc-a", "--param", "mode"], "write it as key=value"),
    (["fault", "plan", "dc_loss", "--dc", "dc-q"], "no data center 'dc-q'"),
    (["fault", "plan", "dc_loss", "--dc", "dc-a", "--service", "mysql"], "no service of the stack matches"),
    (["fault", "plan", "latency", "--link", "db.*", "--param", "latency_ms=100"],
     "no link of the stack matches"),
    (["fault", "plan", "dc_loss", "--dc", "dc-a", "--count", "half"], "count='half' is not a blast radius"),
    (["fault", "inject", "dc_meltdown", "--dc", "dc-a", "--duration", "5"], "unknown fault"),
])
def test_bad_fault_input_exits_2_with_the_reason(home, argv, expect, capsys):
    assert main(argv) == 2
    assert expect in capsys.readouterr().err


def test_bad_flag_values_are_usage_errors(home, capsys):
    with pytest.raises(SystemExit) as e:
        main(["fault", "inject", "dc_loss", "--dc", "dc-a", "--duration", "0"])
    assert e.value.code == 2
    assert "argument --duration: 0 is out of range; accepted: more than 0" in capsys.readouterr().err


def test_a_label_outside_the_running_stack_is_refused_before_anything_starts(home, capsys):
    fake_stack(FRAGILE)                      # fragile: no origin-b, no sentinels
    assert main(["fault", "inject", "dc_loss", "--dc", "dc-b", "--service", "origin-b",
                 "--duration", "1"]) == 2
    assert "no service of the stack matches service=origin-b" in capsys.readouterr().err
    assert not (home / "faults" / "watchdog").exists(), "no watchdog was started"
    assert Ledger().active() == []


def test_inject_without_a_stack_says_how_to_start_one(home, capsys):
    assert main(["fault", "inject", "dc_loss", "--dc", "dc-b", "--duration", "1"]) == 5   # no stack: NOT_READY
    assert "chaos stack up" in capsys.readouterr().err


def test_plan_lists_the_steps_and_touches_nothing(home, capsys):
    assert main(["fault", "plan", "dc_partition", "--dc", "dc-c", "--runtime", "docker", "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["against"].startswith("a docker resilient topology")
    assert {a["mechanism"] for a in doc["actions"]} == {"proxy", "network"}
    assert not (home / "faults").exists()
    state = fake_stack(FRAGILE)
    assert main(["fault", "plan", "dc_loss", "--dc", "dc-a", "--param", "mode=stop"]) == 0
    out = capsys.readouterr().out
    assert f"stack {state.stack_id} (local, fragile): 4 step(s), dry run" in out
    assert "lifecycle on redis-a (dc-a) [mode=stop" in out


@pytest.mark.parametrize("argv", [["fault", "inject", "dc_loss", "--dc", "dc-a"],
                                  ["fault", "plan"], ["fault", "revert"]])
def test_missing_or_unknown_fault_arguments_exit_2_with_usage(home, argv, capsys):
    with pytest.raises(SystemExit) as e:
        main(argv)
    assert e.value.code == 2


# -- the dead-man switch, on a labelled stand-in process ----------------------------------

def spawn_stand_in(state_dir: Path, stack_id: str, service: str = "edge-a") -> procs.Proc:
    run_dir = state_dir / "local" / stack_id
    run_dir.mkdir(parents=True, exist_ok=True)
    return procs.spawn(service, "dc-a", ["sleep", "120"], stack_id, run_dir / "logs" / f"{service}.log",
                       run_dir)


RUNNER = textwrap.dedent("""
    import sys, time
    from chaos.faults import Engine, FaultSpec, Selector, plan
    from chaos.faults.executors import executors_for
    from chaos.faults.watchdog import guard
    from chaos.targets.state import StackState
    state = StackState.load()
    actions = plan(FaultSpec("dc_loss", Selector(dc="dc-a", service="edge-a"), {"mode": "freeze"}),
                   state.topology)
    with guard(state, timeout_s=float(sys.argv[1])) as hb:
        Engine(executors_for(state), state.stack_id).inject(actions)
        print("INJECTED", hb.watchdog_pid, flush=True)
        time.sleep(120)
""")


def proc_state(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return "gone"


@pytest.fixture
def stand_in(home):
    stack_id = "space-wdtest01"
    p = spawn_stand_in(home, stack_id)
    run_dir = home / "local" / stack_id
    state = fake_stack(LOCAL, stack_id, {"run_dir": str(run_dir), "procs": [p.to_dict()],
                                         "argv": {"edge-a": ["sleep", "120"]}})
    yield state, p
    procs.terminate(procs.find_labelled(stack_id))


def start_runner(timeout_s: float = 2.0) -> tuple[subprocess.Popen, int]:
    runner = subprocess.Popen([sys.executable, "-c", RUNNER, str(timeout_s)], stdout=subprocess.PIPE,
                              text=True, env=os.environ.copy())
    line = runner.stdout.readline()
    assert line.startswith("INJECTED"), line
    return runner, int(line.split()[1])


def wait_for(cond, within_s: float) -> float:
    t0 = time.monotonic()
    while not cond():
        assert time.monotonic() - t0 < within_s, f"not within {within_s} s"
        time.sleep(0.05)
    return time.monotonic() - t0


@pytest.mark.timeout(60)
def test_watchdog_reverts_when_the_runner_is_killed(stand_in):
    state, p = stand_in
    runner, wd_pid = start_runner()
    wait_for(lambda: proc_state(p.pid) == "T", 5.0)   # the runner froze the stand-in
    runner.send_signal(signal.SIGKILL)
    took = wait_for(lambda: proc_state(p.pid) != "T", 5.0)
    runner.wait()
    wait_for(lambda: procs.start_ticks(wd_pid) is None, 5.0)
    assert Ledger().active(state.stack_id) == []
    log = (Path(os.environ["CHAOS_HOME"]) / "faults" / "watchdog.log").read_text()
    assert f"runner pid {runner.pid} is gone" in log and "reverted 1 step(s)" in log
    assert not list((Path(os.environ["CHAOS_HOME"]) / "faults" / "watchdog").iterdir())
    assert took < 5.0


@pytest.mark.timeout(60)
def test_watchdog_reverts_when_the_runner_stops_heartbeating(stand_in):
    state, p = stand_in
    runner, wd_pid = start_runner(timeout_s=1.0)
    runner.send_signal(signal.SIGSTOP)       # alive, but silent
    try:
        took = wait_for(lambda: proc_state(p.pid) != "T", 5.0)
        assert took >= 0.5
        wait_for(lambda: procs.start_ticks(wd_pid) is None, 5.0)
        tripped = list((Path(os.environ["CHAOS_HOME"]) / "faults" / "watchdog").glob("*.tripped"))
        assert len(tripped) == 1 and "no heartbeat" in json.loads(tripped[0].read_text())["reason"]
    finally:
        runner.kill()
        runner.wait()


def test_a_clean_finish_stops_the_watchdog_without_reverting(stand_in):
    from chaos.faults.executors import executors_for
    from chaos.faults.watchdog import guard
    state, p = stand_in
    actions = plan(FaultSpec("dc_loss", Selector(dc="dc-a", service="edge-a"), {"mode": "freeze"}),
                   state.topology)
    engine = Engine(executors_for(state), state.stack_id)
    with guard(state) as hb:
        engine.inject(actions)
        wait_for(lambda: proc_state(p.pid) == "T", 5.0)
        assert engine.revert(actions).ok
        assert proc_state(p.pid) != "T"
        engine.inject(actions)              # frozen again: only the watchdog may undo it now
        engine.ledger.remove(actions)       # ... unless the ledger says nothing is active
    wait_for(lambda: procs.start_ticks(hb.watchdog_pid) is None, 5.0)
    wait_for(lambda: proc_state(p.pid) == "T", 5.0)   # a clean finish reverts nothing
    os.kill(p.pid, signal.SIGCONT)
    assert "finished cleanly" in (Path(os.environ["CHAOS_HOME"]) / "faults" / "watchdog.log").read_text()


def test_leaving_the_guard_with_faults_still_active_lets_the_watchdog_revert_them(stand_in):
    from chaos.faults.executors import executors_for
    from chaos.faults.watchdog import guard
    state, p = stand_in
    actions = plan(FaultSpec("dc_loss", Selector(dc="dc-a", service="edge-a"), {"mode": "freeze"}),
                   state.topology)
    with pytest.raises(RuntimeError):
        with guard(state, timeout_s=0.5):
            Engine(executors_for(state), state.stack_id).inject(actions)
            raise RuntimeError("the runner's own bug, before it reverted")
    wait_for(lambda: proc_state(p.pid) != "T", 5.0)
    # the watchdog clears the ledger just after its SIGCONT: wait for it, bounded
    wait_for(lambda: Ledger().active(state.stack_id) == [], 5.0)


def test_lifecycle_revert_restarts_a_killed_service_with_its_labels(stand_in, monkeypatch):
    from chaos.faults.executors import executors_for
    from chaos.targets import local
    state, p = stand_in
    monkeypatch.setattr(local.health, "check", lambda svc, timeout_s=1.0: (True, "stand-in"))
    actions = plan(FaultSpec("dc_loss", Selector(dc="dc-a", service="edge-a")), state.topology)
    engine = Engine(executors_for(state), state.stack_id)
    engine.inject(actions)
    assert procs.start_ticks(p.pid) is None
    assert engine.revert(actions).ok
    assert engine.revert(actions).ok, "idempotent"
    [new] = local.service_procs(state.stack_id, "edge-a")
    assert new.pid != p.pid and procs.labels(new.pid)["CHAOS_SERVICE"] == "edge-a"
    saved = {d["service"]: d for d in StackState.load().runtime_state["procs"]}
    assert saved["edge-a"]["pid"] == new.pid and saved["edge-a"]["log"] == p.log
    assert os.readlink(f"/proc/{new.pid}/cwd").endswith("/edge-a")


def test_action_params_are_plain_json():
    for a in plan(FaultSpec("dc_partition", Selector(dc="dc-b")), DOCKER) + \
            plan(FaultSpec("dc_loss", Selector(dc="dc-b")), DOCKER):
        assert Action.from_dict(json.loads(json.dumps(a.to_dict()))) == a


def test_reset_stops_only_the_duty_cycle_helpers_of_its_stack():
    from chaos.faults.executors.cpu import dutycycle_helpers, sweep_dutycycles
    sleeper = "import time; time.sleep(60)"
    helper = [sys.executable, "-c", sleeper, "chaos.faults.executors.dutycycle"]
    ours = subprocess.Popen([*helper, "--stack-id", "space-dc1"])
    other = subprocess.Popen([*helper, "--stack-id=space-dc2"])
    try:
        # both helpers found once each has exec'd (a process just forked shows its parent's
        # command line for a moment)
        wait_for(lambda: {p for p, _ in dutycycle_helpers("space-dc1")} == {ours.pid}
                 and {p for p, _ in dutycycle_helpers("space-dc2")} == {other.pid}, 5.0)
        swept = sweep_dutycycles("space-dc1")
        assert ours.wait(timeout=5) in (0, -signal.SIGTERM) and other.poll() is None
        assert swept.did == [f"stopped 1 duty-cycle helper(s) (pid {ours.pid})"]
    finally:
        for p in (ours, other):
            if p.poll() is None:
                p.kill()
                p.wait()
