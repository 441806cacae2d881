"""Fault kinds and executors ask the stack's runtime object what it can do and how; they
never compare runtime names (STYLE.md: ask the owner)."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from chaos.adapters.space.reference import build
from chaos.core.errors import ChaosError, ConfigError, FaultError, UnknownMechanism
from chaos.faults import FaultSpec, Selector, plan
from chaos.faults.executors import executors_for
from chaos.targets.docker import DockerRuntime
from chaos.targets.local import LocalRuntime
from chaos.targets.runtimes import runtime_of
from chaos.targets.state import StackState

ROOT = Path(__file__).resolve().parents[2]
LOCAL = build("local", "resilient")
DOCKER = build("docker", "resilient")
NAME_COMPARE = re.compile(r"runtime ==|runtime !=|\.runtime in\b")


def _state(topo) -> StackState:
    return StackState("space-rt000000", topo.runtime, topo.profile, "now", topo, {})


def test_no_fault_module_compares_runtime_names():
    found = [f"{p.relative_to(ROOT)}:{i}: {line.strip()}"
             for p in sorted((ROOT / "chaos" / "faults").rglob("*.py"))
             for i, line in enumerate(p.read_text().splitlines(), 1) if NAME_COMPARE.search(line)]
    assert found == [], "ask the runtime object (chaos.targets.runtimes.runtime_of) instead"


def test_the_runtime_object_of_a_stack_and_of_a_topology():
    assert isinstance(runtime_of(LOCAL), LocalRuntime)
    assert isinstance(runtime_of(DOCKER), DockerRuntime)
    rt = runtime_of(_state(DOCKER))
    assert isinstance(rt, DockerRuntime) and rt.stack_id == "space-rt000000"
    with pytest.raises(ConfigError, match="unknown runtime 'k8s'; use one of: local, docker"):
        from chaos.targets.runtimes import by_name
        by_name("k8s")


def test_what_each_runtime_says_faults_may_do():
    local, docker = LocalRuntime(), DockerRuntime()
    assert local.shares_host_netns and not docker.shares_host_netns
    assert docker.disconnects_networks and not local.disconnects_networks
    assert docker.partitions_networks(DOCKER) and not local.partitions_networks(LOCAL)
    assert docker.caps_cpu_by_quota and not local.caps_cpu_by_quota
    assert docker.cpu_quota_us(0.005, 100_000) == 1000, "docker's minimum quota is 1 ms"
    assert docker.cpu_quota_us(0.25, 100_000) == 25_000
    assert docker.revert_imports == ("docker",) and local.revert_imports == ()
    assert local.refusal("cpu_starve", ("local", "docker")) is None
    assert local.refusal("x", ("docker",)) == "x cannot run on the local runtime; it needs docker"


def test_plans_follow_what_the_runtime_says():
    [local_cpu] = plan(FaultSpec("cpu_starve", Selector(service="edge-b"), {"share": 0.2}), LOCAL)
    [docker_cpu] = plan(FaultSpec("cpu_starve", Selector(service="edge-b"), {"share": 0.2}), DOCKER)
    assert "cpu_quota" not in local_cpu.params and docker_cpu.params["cpu_quota"] == 20_000
    [local_drop] = plan(FaultSpec("packet_drop", Selector(service="edge-b"), {"share": 0.1}), LOCAL)
    [docker_drop] = plan(FaultSpec("packet_drop", Selector(service="edge-b"), {"share": 0.1}), DOCKER)
    assert local_drop.params["address"] and "address" not in docker_drop.params
    part = lambda topo: {a.mechanism for a in plan(FaultSpec("dc_partition", Selector(dc="dc-b")), topo)}  # noqa: E731
    assert part(LOCAL) == {"proxy"} and part(DOCKER) == {"proxy", "network"}


def test_a_network_fault_on_the_local_runtime_is_refused_and_its_revert_does_nothing():
    from chaos.faults.base import Action
    ex = executors_for(_state(LOCAL))("network")
    a = Action("dc_partition", "p-1", "network", "edge-b", "dc-b", {"network": "backbone"})
    with pytest.raises(FaultError, match="network faults need the docker runtime"):
        ex.inject(a)
    ex.revert(a)
    ex.sweep("run", lambda what, fn: pytest.fail(f"swept: {what}"))


def test_an_unknown_mechanism_is_a_chaos_error_that_says_what_to_do():
    get = executors_for(_state(LOCAL))
    with pytest.raises(UnknownMechanism) as e:
        get("teleport")
    assert isinstance(e.value, ChaosError) and isinstance(e.value, FaultError)
    msg = str(e.value)
    assert msg.startswith("no executor for mechanism 'teleport'; this version carries out ")
    assert "iptables" in msg and "`chaos stack reset`" in msg


def test_a_local_stack_never_imports_the_docker_sdk(tmp_path):
    """Planning, making every executor and the watchdog's preload of a local stack."""
    code = f"""
import os, sys
os.environ["CHAOS_HOME"] = {str(tmp_path)!r}
from chaos.adapters.space.reference import build
from chaos.faults import FaultSpec, Selector, plan
from chaos.faults import executors
from chaos.faults.watchdog import _preload
from chaos.targets.state import StackState
topo = build("local", "resilient")
state = StackState("space-rt000000", "local", "resilient", "now", topo, {{}})
for name, params in (("dc_loss", {{}}), ("dc_partition", {{}})):
    plan(FaultSpec(name, Selector(dc="dc-b"), params), topo)
plan(FaultSpec("cpu_starve", Selector(service="edge-b"), {{"share": 0.2}}), topo)
plan(FaultSpec("packet_drop", Selector(service="edge-b"), {{"share": 0.2}}), topo)
for module in executors.modules():
    executors.sweeper(module, state)
_preload(state)
print("docker" in sys.modules)
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                         cwd=ROOT)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "False"
