"""The network and CPU fault kinds, planned against real topologies: which actions, on what,
with which parameters; bad parameters and selectors refused with the accepted values; the
executors' pure parts (iptables rules, toxic names) and the duty-cycle helper on a real
process."""

from __future__ import annotations

import itertools
import json
import os
import shutil
import signal
import subprocess
import sys
import time

import pytest

from chaos.core.errors import ConfigError
from chaos.faults import Action, FaultSpec, Selector, catalogue, plan
from chaos.faults.executors import iptables as ipt
from chaos.faults.executors.dutycycle import run as dutycycle_run
from chaos.faults.kinds.toxics import toxic_name
from chaos.targets import procs
from chaos.adapters.space.reference import build

LOCAL = build("local", "resilient", 35000)
DOCKER = build("docker", "resilient")
FRAGILE = build("local", "fragile")
MINE = ("latency", "bandwidth", "link_down", "reset", "timeout", "slicer", "slow_state",
        "packet_drop", "cpu_starve")
TOXIC_KINDS = ("latency", "bandwidth", "reset", "timeout", "slicer")
REQUIRED = {"latency": {"latency_ms": 100}, "bandwidth": {"rate_kbps": 64},
            "packet_drop": {"share": 0.05}, "cpu_starve": {"share": 0.5}}


def one(spec: FaultSpec, topo=LOCAL, fault_id="f-1") -> Action:
    actions = plan(spec, topo, fault_id)
    assert len(actions) == 1, actions
    return actions[0]


# -- what a plan is made of --------------------------------------------------------------

def test_every_kind_is_registered_for_both_runtimes():
    registry = catalogue()
    for name in MINE:
        assert name in registry, name
        assert set(registry[name].runtimes) == {"local", "docker"}


def test_latency_on_a_listener_link_is_one_toxic_named_after_the_fault():
    a = one(FaultSpec("latency", Selector(link="listener.edge-a"), {"latency_ms": 200}))
    assert (a.fault, a.fault_id, a.mechanism, a.target, a.dc) == (
        "latency", "f-1", "toxic", "listener.edge-a", "dc-a")
    assert a.params == {"proxy": "listener.edge-a", "toxic": "latency", "stream": "downstream",
                        "toxicity": 1.0, "attributes": {"latency": 200, "jitter": 0},
                        "undo": {"toxics": [{"name": "chaos.f-1.latency.downstream",
                                             "stream": "downstream"}]}}
    assert a.describe() == ("latency: toxic on listener.edge-a (dc-a) [proxy=listener.edge-a, "
                            "toxic=latency, stream=downstream, toxicity=1.0, "
                            "attributes={'latency': 200, 'jitter': 0}]")


def test_both_streams_are_two_toxics_in_one_action():
    a = one(FaultSpec("latency", Selector(link="edge-b.origin-a"),
                      {"latency_ms": 50, "jitter_ms": 10, "stream": "both", "toxicity": 0.5}))
    assert [(t["stream"], t["name"]) for t in a.params["undo"]["toxics"]] == [
        ("downstream", "chaos.f-1.latency.downstream"), ("upstream", "chaos.f-1.latency.upstream")]
    assert (a.params["stream"], a.params["toxicity"]) == ("both", 0.5)
    assert a.dc == "dc-b", "the DC whose users feel it: the edge's, not the origin's"


def test_a_service_selector_takes_every_link_touching_it():
    actions = plan(FaultSpec("timeout", Selector(service="edge-b")), LOCAL, "f-1")
    assert [a.target for a in actions] == ["edge-b.origin-a", "edge-b.origin-b", "listener.edge-b"]
    assert all(a.params["attributes"] == {"timeout": 0} for a in actions)
    fragile = plan(FaultSpec("timeout", Selector(service="edge-b")), FRAGILE, "f-1")
    assert [a.target for a in fragile] == ["edge-b.origin-a", "listener.edge-b"]


def test_link_globs_and_blast_radius():
    actions = plan(FaultSpec("reset", Selector(link="edge-*.origin-a"), {"timeout_ms": 100}),
                   LOCAL, "f-1")
    assert [a.target for a in actions] == ["edge-a.origin-a", "edge-b.origin-a", "edge-c.origin-a"]
    assert actions[0].params["toxic"] == "reset_peer"
    assert actions[0].params["attributes"] == {"timeout": 100}
    assert len(plan(FaultSpec("reset", Selector(link="edge-*.origin-a", count="one")), LOCAL)) == 1


def test_toxic_attributes_in_toxiproxy_units():
    bw = one(FaultSpec("bandwidth", Selector(link="listener.edge-c"), {"rate_kbps": 64}))
    assert bw.params["attributes"] == {"rate": 8}, "64 kbit/s is 8 KB/s"
    sl = one(FaultSpec("slicer", Selector(link="listener.edge-c"),
                       {"average_size": 100, "size_variation": 20, "delay_us": 500}))
    assert sl.params["attributes"] == {"average_size": 100, "size_variation": 20,
                                                    "delay": 500}


def test_link_down_disables_the_proxy():
    a = one(FaultSpec("link_down", Selector(link="listener.edge-a")))
    assert (a.mechanism, a.target, a.params) == ("proxy", "listener.edge-a",
                                                 {"proxy": "listener.edge-a", "enabled": False})


def test_slow_state_modes_on_gateway_redis_links_only():
    slow = plan(FaultSpec("slow_state", params={"latency_ms": 300}), LOCAL, "s-1")
    assert sorted(a.target for a in slow) == sorted(
        f"gateway-{x}.redis-{y}" for x in "abc" for y in "ab")
    p = slow[0].params
    assert (p["toxic"], p["stream"], p["attributes"]) == (
        "latency", "downstream", {"latency": 300, "jitter": 0})
    down = plan(FaultSpec("slow_state", Selector(service="redis-a"), {"mode": "down"}), LOCAL, "s-2")
    assert [a.target for a in down] == ["gateway-a.redis-a", "gateway-b.redis-a", "gateway-c.redis-a"]
    assert {(a.params["toxic"], x["stream"], a.params["attributes"]["timeout"])
            for a in down for x in a.params["undo"]["toxics"]} == {("timeout", "downstream", 0),
                                                                  ("timeout", "upstream", 0)}
    refused = plan(FaultSpec("slow_state", Selector(dc="dc-c"), {"mode": "refused"}), LOCAL, "s-3")
    assert {a.mechanism for a in refused} == {"proxy"}
    assert [a.target for a in refused] == ["gateway-c.redis-a", "gateway-c.redis-b"]
    assert [a.target for a in plan(FaultSpec("slow_state"), FRAGILE)] == [
        "gateway-a.redis-a", "gateway-b.redis-a", "gateway-c.redis-a"]


def test_packet_drop_matches_the_services_address_and_port_locally():
    a = one(FaultSpec("packet_drop", Selector(service="edge-b"), {"share": 0.05}))
    assert (a.mechanism, a.target, a.dc) == ("iptables", "edge-b", "dc-b")
    assert a.params == {"service": "edge-b", "runtime": "local", "share": 0.05,
                        "direction": "both", "port": 35100, "address": "127.0.2.20"}
    rules = ipt.rule_specs(a, "chaos:space-1:f-1")
    assert rules == [
        ("INPUT", ["-d", "127.0.2.20", "-p", "tcp", "--dport", "35100", "-m", "statistic",
                   "--mode", "random", "--probability", "0.050000", "-m", "comment", "--comment",
                   "chaos:space-1:f-1", "-j", "DROP"]),
        ("OUTPUT", ["-s", "127.0.2.20", "-p", "tcp", "--sport", "35100", "-m", "statistic",
                    "--mode", "random", "--probability", "0.050000", "-m", "comment", "--comment",
                    "chaos:space-1:f-1", "-j", "DROP"])]


def test_packet_drop_in_a_container_matches_its_port_only():
    a = one(FaultSpec("packet_drop", Selector(service="edge-b"), {"share": 0.1, "direction": "in"}),
            DOCKER)
    assert a.params == {"service": "edge-b", "runtime": "docker", "share": 0.1, "direction": "in",
                        "port": 8100}
    [(chain, spec)] = ipt.rule_specs(a, "chaos:s:f-1")
    assert chain == "INPUT" and spec[:4] == ["-p", "tcp", "--dport", "8100"]
    assert "-d" not in spec and "-s" not in spec


def test_a_revert_recognises_only_its_own_rules_in_iptables_output():
    a = one(FaultSpec("packet_drop", Selector(service="edge-b"), {"share": 0.05}))
    line = ('-A INPUT -d 127.0.2.20/32 -p tcp -m tcp --dport 35100 -m statistic --mode random '
            '--probability 0.04999999981 -m comment --comment "chaos:space-1:f-1" -j DROP')
    import shlex
    assert ipt.is_own_rule(shlex.split(line), a, "chaos:space-1:f-1")
    assert not ipt.is_own_rule(shlex.split(line), a, "chaos:space-1:f-2"), "another fault's"
    assert not ipt.is_own_rule(shlex.split(line.replace("35100", "36100")), a, "chaos:space-1:f-1")
    assert not ipt.is_own_rule(shlex.split(line.replace("127.0.2.20", "127.0.3.20")), a,
                               "chaos:space-1:f-1"), "another service's (edge-c)"
    out = line.replace("-A INPUT -d", "-A OUTPUT -s").replace("--dport", "--sport")
    assert ipt.is_own_rule(shlex.split(out), a, "chaos:space-1:f-1")


def test_cpu_starve_is_a_quota_in_docker_and_a_duty_cycle_locally():
    d = one(FaultSpec("cpu_starve", Selector(service="edge-c"), {"share": 0.05}), DOCKER)
    assert (d.mechanism, d.target, d.dc) == ("cpu", "edge-c", "dc-c")
    assert d.params == {"service": "edge-c", "runtime": "docker", "share": 0.05,
                        "period_us": 100000, "cpu_quota": 5000}
    low = one(FaultSpec("cpu_starve", Selector(service="edge-c"), {"share": 0.01}), DOCKER)
    assert low.params["cpu_quota"] == 1000, "docker's minimum quota"
    loc = one(FaultSpec("cpu_starve", Selector(service="edge-c"), {"share": 0.05}))
    assert "cpu_quota" not in loc.params and loc.params["runtime"] == "local"
    edges = plan(FaultSpec("cpu_starve", Selector(service="edge"), {"share": 0.2}), LOCAL)
    assert [a.target for a in edges] == ["edge-a", "edge-b", "edge-c"]


@pytest.mark.parametrize("name", MINE)
def test_actions_survive_the_ledger_round_trip(name):
    sel = Selector(service="edge-b") if name in ("packet_drop", "cpu_starve") else Selector(
        link="listener.edge-b") if name != "slow_state" else Selector()
    for topo in (LOCAL, DOCKER):
        actions = plan(FaultSpec(name, sel, REQUIRED.get(name, {})), topo)
        assert actions
        for a in actions:
            assert Action.from_dict(json.loads(json.dumps(a.to_dict()))) == a
        assert len({a.key for a in actions}) == len(actions), "the ledger keys actions by key"


# -- names never collide ------------------------------------------------------------------

def test_no_two_toxics_on_a_proxy_share_a_name():
    seen: dict[tuple[str, str], str] = {}
    for fid, name in itertools.product(("f-1", "f-2", "latency-abc123"), TOXIC_KINDS + ("slow_state",)):
        params = {**REQUIRED.get(name, {}), **({"stream": "both"} if name != "slow_state" else {})}
        for mode in (("slow", "down") if name == "slow_state" else (None,)):
            p = {**params, **({"mode": mode} if mode else {})}
            for a in plan(FaultSpec(name, Selector(), p), LOCAL, f"{fid}-{mode}" if mode else fid):
                for t in a.params["undo"]["toxics"]:
                    key = (a.params["proxy"], t["name"])
                    assert key not in seen, f"{key} used by {seen.get(key)} and {name}/{fid}"
                    seen[key] = f"{name}/{fid}"
    assert len(seen) > 100


def test_toxic_names_are_url_safe_and_distinct():
    assert toxic_name("f-1", "latency", "upstream") == "chaos.f-1.latency.upstream"
    odd = [toxic_name(f, "latency", "downstream") for f in ("a/b", "a_b", "a b", "a?b")]
    assert len(set(odd)) == 4
    assert all("/" not in n and " " not in n and "?" not in n for n in odd)


# -- refused, with the accepted values -----------------------------------------------------

@pytest.mark.parametrize("name, params, message", [
    ("packet_drop", {"share": 1.5}, r"share=1.5 is out of range; accepted: 0 to 1"),
    ("packet_drop", {"share": -0.05}, r"share=-0.05 is out of range; accepted: 0 to 1"),
    ("packet_drop", {}, r"share is required"),
    ("packet_drop", {"share": 0.1, "direction": "sideways"},
     r"direction='sideways' is not accepted; use one of in, out, both"),
    ("latency", {"latency_ms": -5}, r"latency_ms=-5 is out of range; accepted: 0 to 600000 ms"),
    ("latency", {"latency_ms": 100, "jitter_ms": 150}, r"jitter_ms=150 is larger than latency_ms=100"),
    ("latency", {"latency_ms": "slow"}, r"latency_ms='slow' is not a number"),
    ("latency", {"latency_ms": 100, "stream": "sideways"}, r"use one of downstream, upstream, both"),
    ("latency", {"latency_ms": 100, "toxicity": 2}, r"toxicity=2 is out of range; accepted: 0 to 1"),
    ("latency", {"latency": 100}, r"unknown parameter\(s\) latency; accepted: latency_ms"),
    ("bandwidth", {"rate_kbps": 1}, r"rate_kbps=1 is out of range; accepted: 8 to 10000000 kbit/s"),
    ("slicer", {"average_size": 10, "size_variation": 10}, r"size_variation=10 must be smaller"),
    ("cpu_starve", {"share": 0}, r"share=0 is out of range; accepted: 0.01 to 1 CPU"),
    ("cpu_starve", {"share": 1.5}, r"share=1.5 is out of range"),
    ("slow_state", {"mode": "gone"}, r"mode='gone' is not accepted; use one of slow, down, refused"),
    ("link_down", {"latency_ms": 5}, r"unknown parameter"),
])
def test_bad_parameters_are_refused_with_what_is_accepted(name, params, message):
    sel = Selector(service="edge-b") if name in ("packet_drop", "cpu_starve") else Selector(
        link="listener.edge-b") if name != "slow_state" else Selector()
    with pytest.raises(ConfigError, match=message):
        plan(FaultSpec(name, sel, params), LOCAL)


def test_selectors_that_match_nothing_are_refused():
    with pytest.raises(ConfigError, match=r"no link of the stack matches link=listener.edge-d; "
                                          r"links are .*listener.edge-a"):
        plan(FaultSpec("latency", Selector(link="listener.edge-d"), {"latency_ms": 10}), LOCAL)
    with pytest.raises(ConfigError, match=r"no link of the stack matches link=listener.\*; links are "
                                          r"gateway-a.redis-a"):
        plan(FaultSpec("slow_state", Selector(link="listener.*")), LOCAL)
    with pytest.raises(ConfigError, match=r"no service of the stack matches service=toxiproxy"):
        plan(FaultSpec("packet_drop", Selector(service="toxiproxy"), {"share": 0.1}), LOCAL)
    with pytest.raises(ConfigError, match=r"no service of the stack matches service=origin-b"):
        plan(FaultSpec("cpu_starve", Selector(service="origin-b"), {"share": 0.1}), FRAGILE)
    with pytest.raises(ConfigError, match=r"blast radius 4 but only 3 match"):
        plan(FaultSpec("link_down", Selector(link="listener.*", count="4")), LOCAL)


# -- executors: what can be checked without a stack ----------------------------------------

def test_packet_drop_without_root_is_a_config_error_before_any_rule(monkeypatch, tmp_path):
    from chaos.targets.state import StackState
    calls = []
    monkeypatch.setattr(ipt.os, "geteuid", lambda: 1000)
    monkeypatch.setattr(ipt, "_run", lambda argv, check=True: calls.append(argv))
    state = StackState("space-x", "local", "resilient", "now", LOCAL, {})
    a = one(FaultSpec("packet_drop", Selector(service="edge-b"), {"share": 0.05}))
    with pytest.raises(ConfigError, match=r"cannot be injected: changing iptables needs root and "
                                          r"this runs as uid 1000"):
        ipt.make(state).inject(a)
    assert calls == [], "nothing ran"


def test_packet_drop_without_iptables_says_how_to_get_it(monkeypatch):
    from chaos.targets.state import StackState
    monkeypatch.setattr(ipt, "iptables_binary", lambda: None)
    state = StackState("space-x", "local", "resilient", "now", LOCAL, {})
    a = one(FaultSpec("packet_drop", Selector(service="edge-b"), {"share": 0.05}))
    with pytest.raises(ConfigError, match=r"iptables is not installed \(Debian package iptables"):
        ipt.make(state).inject(a)
    ipt.make(state).revert(a)  # no iptables: nothing of ours can be there, revert is a no-op


# -- the duty-cycle helper, on a real (labelled) process -----------------------------------

def _state(pid: int) -> str:
    with open(f"/proc/{pid}/stat") as f:
        return f.read().rsplit(")", 1)[1].split()[0]


@pytest.fixture
def sleeper(tmp_path):
    p = procs.spawn("sleeper", None, ["sleep", "30"], "stack-dc-test", tmp_path / "s.log", tmp_path)
    yield p
    procs.terminate([p.pid])


def test_the_duty_cycle_stops_and_continues_and_leaves_the_target_running(sleeper, tmp_path):
    stop = tmp_path / "stop"
    out = subprocess.Popen([sys.executable, "-m", "chaos.faults.executors.dutycycle", "--pid", str(sleeper.pid),
                            "--start-ticks", str(sleeper.start_ticks), "--share", "0.2",
                            "--stack-id", "stack-dc-test", "--period-ms", "100",
                            "--stop-file", str(stop), "--max-s", "20"],
                           stdout=subprocess.PIPE, text=True)
    states = []
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and len(states) < 300:
        states.append(_state(sleeper.pid))
        time.sleep(0.005)
    stop.touch()
    assert out.wait(5) == 0
    assert "ended: stop file" in out.stdout.read()
    assert "T" in states, "it was stopped"
    assert states.count("T") > len(states) / 2, "and stopped most of the time at 0.2 CPU"
    assert _state(sleeper.pid) != "T", "left running"


def test_the_duty_cycle_on_sigterm_leaves_the_target_running(sleeper):
    p = subprocess.Popen([sys.executable, "-m", "chaos.faults.executors.dutycycle", "--pid", str(sleeper.pid),
                          "--start-ticks", str(sleeper.start_ticks), "--share", "0.01",
                          "--stack-id", "stack-dc-test", "--max-s", "20"], stdout=subprocess.PIPE,
                         text=True)
    deadline = time.monotonic() + 10
    while _state(sleeper.pid) != "T" and time.monotonic() < deadline:
        time.sleep(0.01)
    assert _state(sleeper.pid) == "T"
    p.send_signal(signal.SIGTERM)
    assert p.wait(5) == 0
    assert "signal SIGTERM" in p.stdout.read()
    assert _state(sleeper.pid) != "T"


def test_the_duty_cycle_never_signals_a_process_of_another_stack(sleeper, tmp_path):
    why = dutycycle_run(sleeper, "another-stack", 0.05, 0.05, None, None, 2.0)
    assert "is not a process of stack another-stack" in why
    assert _state(sleeper.pid) != "T"
    stranger = procs.Proc("x", sleeper.pid, sleeper.start_ticks + 1, "")  # a recycled pid
    assert "not a process" in dutycycle_run(stranger, "stack-dc-test", 0.05, 0.05, None, None, 2.0)


def test_the_duty_cycle_ends_when_its_parent_dies(sleeper):
    parent = subprocess.Popen(["sleep", "0.5"])
    ticks = procs.start_ticks(parent.pid)
    t = time.monotonic()
    why = dutycycle_run(sleeper, "stack-dc-test", 0.1, 0.1, None, (parent.pid, ticks), 20.0)
    parent.wait()
    assert why == f"parent {parent.pid} is gone" and time.monotonic() - t < 10
    assert _state(sleeper.pid) != "T"
    assert os.path.exists(f"/proc/{sleeper.pid}")


def test_stop_helpers_ends_every_helper_of_a_stack_and_continues_its_target(sleeper, tmp_path):
    from chaos.faults.executors import cpu as exec_cpu
    env = {**os.environ, procs.LABEL: "stack-dc-test", "CHAOS_SERVICE": exec_cpu.HELPER_SERVICE,
           "CHAOS_FAULT": "f-1/sleeper"}
    helper = subprocess.Popen([sys.executable, "-m", "chaos.faults.executors.dutycycle", "--pid", str(sleeper.pid),
                               "--start-ticks", str(sleeper.start_ticks), "--share", "0.01",
                               "--stack-id", "stack-dc-test", "--max-s", "20"],
                              env=env, stdout=subprocess.DEVNULL)
    deadline = time.monotonic() + 10
    while _state(sleeper.pid) != "T" and time.monotonic() < deadline:
        time.sleep(0.01)
    assert [h.pid for h in exec_cpu.helpers("stack-dc-test", service="sleeper")] == [helper.pid]
    assert exec_cpu.helpers("another-stack") == []
    assert exec_cpu.stop_helpers("stack-dc-test") == [helper.pid]
    assert helper.wait(5) == 0
    assert _state(sleeper.pid) != "T"
    assert exec_cpu.helpers("stack-dc-test") == []


@pytest.mark.skipif(os.geteuid() != 0 or ipt.iptables_binary() is None, reason="needs root and iptables")
def test_sweep_host_deletes_only_its_stacks_rules():
    import uuid
    mine, other = f"sweep-{uuid.uuid4().hex[:6]}", f"sweep-{uuid.uuid4().hex[:6]}"
    binary = ipt.iptables_binary()
    spec = ["-d", "127.0.99.99", "-p", "tcp", "--dport", "9", "-j", "DROP", "-m", "comment", "--comment"]
    try:
        for sid in (mine, other):
            subprocess.run([binary, "-w", "3", "-I", "INPUT", *spec, f"chaos:{sid}:f-1"], check=True)
        assert len(ipt.host_rules(f"chaos:{mine}:")) == 1
        assert len(ipt.sweep_host(mine)) == 1
        assert ipt.host_rules(f"chaos:{mine}:") == []
        assert len(ipt.host_rules(f"chaos:{other}:")) == 1, "another stack's rule stays"
    finally:
        ipt.sweep_host(mine)
        ipt.sweep_host(other)


@pytest.fixture
def netns():
    """A network namespace of its own (its rules are nobody else's); the command prefix that
    enters it."""
    import uuid
    if os.geteuid() != 0 or ipt.iptables_binary() is None or shutil.which("ip") is None:
        pytest.skip("needs root, iptables and ip")
    name = f"chaos-sweep-{uuid.uuid4().hex[:8]}"
    if subprocess.run(["ip", "netns", "add", name], capture_output=True).returncode != 0:
        pytest.skip("cannot create a network namespace here")
    yield ["ip", "netns", "exec", name]
    subprocess.run(["ip", "netns", "delete", name], capture_output=True)


def test_the_iptables_sweep_deletes_chaos_rules_of_every_table_and_backend(netns):
    def add(binary, *rule):
        subprocess.run([*netns, binary, "-w", "3", *rule], check=True, capture_output=True)
    drop = ["-p", "tcp", "--dport", "9", "-j", "DROP", "-m", "comment", "--comment"]
    add("iptables", "-I", "INPUT", *drop, "chaos:mine:f-1")
    add("iptables", "-t", "mangle", "-I", "PREROUTING", *drop, "chaos:mine:f-2")
    add("iptables", "-I", "OUTPUT", *drop, "chaos:live-stack:f-1")
    add("iptables", "-I", "INPUT", *drop, "not ours")
    backends = 2 if shutil.which("iptables-legacy") and shutil.which("iptables-legacy-save") else 1
    if backends == 2:
        add("iptables-legacy", "-I", "INPUT", *drop, "chaos:mine:f-3")
    deleted = ipt.sweep_rules(netns, keep=lambda comment: comment.startswith("chaos:live-stack:"))
    assert len(deleted) == 2 + (backends == 2)
    assert {d.split()[0] for d in deleted} == {"filter", "mangle"}
    assert all("chaos:mine:" in d for d in deleted)
    left = subprocess.run([*netns, "iptables-save"], capture_output=True, text=True).stdout
    assert "chaos:mine:" not in left
    assert "chaos:live-stack:f-1" in left and "not ours" in left, "kept"
    assert ipt.sweep_rules(netns, keep=lambda comment: comment.startswith("chaos:live-stack:")) == []
