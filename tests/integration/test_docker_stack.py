"""The docker runtime end to end: images built offline, compose up, health, labels,
networks, a probe through the published entry points, and a clean down.

Needs a running docker engine and a compose tool; skipped with the reason otherwise.
The first run builds the images (about three minutes); later runs reuse them.
"""

from __future__ import annotations

import asyncio
import json
import shutil
import subprocess
import urllib.request
from pathlib import Path

import pytest

from chaos.targets import stack
from chaos.core.errors import StackAlreadyUp, StackError
from chaos.targets import images
from chaos.targets.docker import PROJECT, STACK_LABEL, DockerRuntime, find_compose
from chaos.adapters.space.launch import compose_env
from chaos.adapters.space.reference import DCS, build

pytestmark = [pytest.mark.docker, pytest.mark.timeout(900)]
BASE = 23000
DC_NETWORKS = ("dc-a", "dc-b", "dc-c", "backbone")


def _engine_or_skip():
    try:
        client = images.docker_client(timeout=5)
    except Exception as e:
        pytest.skip(f"docker engine not reachable ({str(e)[:160]})")
    try:
        find_compose()
    except Exception as e:
        client.close()
        pytest.skip(f"no compose tool ({e})")
    return client


@pytest.fixture(scope="module")
def client():
    c = _engine_or_skip()
    yield c
    c.close()


def _labelled(client, kind: str):
    coll = client.containers if kind == "containers" else client.networks
    kwargs = {"all": True} if kind == "containers" else {}
    return coll.list(filters={"label": [STACK_LABEL]}, **kwargs)


@pytest.fixture(scope="module")
def resilient(client, chaos_home):
    if _labelled(client, "containers"):
        pytest.skip("a docker space stack is already running here; not touching it")
    images.ensure_images(print)   # the first build is slow: not part of the up timeout
    try:
        state = stack.up("docker", "resilient", BASE, timeout_s=180)
    except StackAlreadyUp as e:
        pytest.skip(str(e))
    except BaseException:
        stack.down()
        raise
    yield state
    stack.down()


def test_every_service_is_healthy(resilient):
    rows = stack.status()
    assert {r.name for r in rows} == set(build("docker", "resilient").services)
    assert all(r.healthy for r in rows), [r for r in rows if not r.healthy]
    assert {r.dc for r in rows if r.kind == "edge"} == set(DCS)


def test_gateways_answer_on_loopback(resilient):
    for gw in resilient.topology.of_kind("gateway"):
        assert gw.public.startswith("127.0.0.1:")
        with urllib.request.urlopen(f"http://{gw.public}/health", timeout=5) as r:
            body = json.loads(r.read())
        assert r.status == 200 and body.get("service") == gw.name
    with urllib.request.urlopen(f"http://{resilient.topology.services['toxiproxy'].public}"
                                "/proxies", timeout=5) as r:
        proxies = json.loads(r.read())
    assert set(proxies) == set(resilient.topology.links)


def test_containers_carry_their_labels(client, resilient):
    topo = resilient.topology
    containers = _labelled(client, "containers")
    by_service = {c.labels["chaos.service"]: c for c in containers}
    assert set(by_service) == set(topo.services)
    for name, c in by_service.items():
        svc = topo.services[name]
        assert c.labels["chaos.stack"] == "space"
        assert c.labels["chaos.kind"] == svc.kind
        assert c.labels["chaos.dc"] == (svc.dc or "")
        assert c.labels["chaos.stack_id"] == resilient.stack_id
        assert c.labels["com.docker.compose.project"] == PROJECT
        assert c.attrs["Config"]["Hostname"] == name


def test_dc_networks_are_internal_and_only_entry_points_publish(client, resilient):
    nets = {n.attrs["Labels"].get("chaos.network"): n for n in _labelled(client, "networks")}
    assert set(nets) == {*DC_NETWORKS, "ingress"}
    for name in DC_NETWORKS:
        assert nets[name].attrs["Internal"] is True, name
    assert nets["ingress"].attrs["Internal"] is False
    for c in _labelled(client, "containers"):
        svc = resilient.topology.services[c.labels["chaos.service"]]
        attached = {n.split("_", 1)[1] for n in c.attrs["NetworkSettings"]["Networks"]}
        expected = {"backbone"} | ({svc.dc} if svc.dc else set())
        if svc.kind in ("gateway", "toxiproxy"):
            expected.add("ingress")
        assert attached == expected, svc.name
        bindings = [b for bs in (c.attrs["HostConfig"]["PortBindings"] or {}).values()
                    for b in bs or []]
        assert bool(bindings) == (svc.public is not None), svc.name
        assert all(b["HostIp"] == "127.0.0.1" for b in bindings), svc.name
    published = {int(b["HostPort"]) for c in _labelled(client, "containers")
                 for bs in (c.attrs["HostConfig"]["PortBindings"] or {}).values()
                 for b in bs or []}
    assert published == {int(v) for k, v in compose_env(resilient.topology).items()
                         if k.startswith("CHAOS_PORT_")}


def test_a_probe_hears_audio_through_the_published_links(resilient):
    from chaos.session.probe import run_probe
    result = asyncio.run(run_probe(resilient.topology, listeners=6, seconds=3))
    assert result.listeners_joined == 6
    slos = {s.name: s for s in result.slos}
    assert slos["audio_delivered"].value >= 0.99


def test_down_leaves_nothing(client, resilient):
    removed = stack.down()
    assert any(r.startswith("container ") for r in removed)
    assert any(r.startswith("network ") for r in removed)
    assert _labelled(client, "containers") == []
    assert _labelled(client, "networks") == []
    assert stack.down() == []


# --- a service that dies while starting: a clear error, and nothing left behind ----------

def test_a_crashing_service_fails_up_with_its_logs_and_is_torn_down(client, tmp_path,
                                                                   monkeypatch):
    if _labelled(client, "containers"):
        pytest.skip("a docker space stack is already running here; not touching it")
    images.ensure_images(print)
    fixtures = images.fixtures_dir()
    copy = tmp_path / "fixtures"
    shutil.copytree(fixtures, copy, ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
    compose = (copy / "compose.yaml").read_text()
    crash = '["sh", "-c", "echo edge-c cannot start: boom >&2; exit 3"]'
    original = '["/opt/space/bin/python", "-m", "space.edge", "--name", "edge-c"]'
    assert original in compose
    (copy / "compose.yaml").write_text(compose.replace(original, crash))
    monkeypatch.setenv("CHAOS_FIXTURES", str(copy))   # same image inputs: no rebuild
    rt = DockerRuntime("space-crashtest", fixtures=copy)
    topo = build("docker", "fragile", BASE)
    rt.preflight(topo)
    with pytest.raises(StackError) as err:
        rt.up(topo, 120, print)
    text = str(err.value)
    assert "edge-c" in text and "exited (3)" in text and "boom" in text
    assert _labelled(client, "containers") == []
    assert _labelled(client, "networks") == []


def test_preflight_names_a_busy_port(client):
    import socket
    from chaos.core.errors import PortInUse
    topo = build("docker", "fragile", BASE + 100)
    busy = int(compose_env(topo)["CHAOS_PORT_GATEWAY_B"])
    with socket.socket() as s:
        s.bind(("127.0.0.1", busy))
        s.listen()
        if _labelled(client, "containers"):
            pytest.skip("a docker space stack is already running here")
        with pytest.raises(PortInUse, match=f"{busy} \\(CHAOS_PORT_GATEWAY_B\\)"):
            DockerRuntime().preflight(topo)


def test_compose_file_publishes_what_the_topology_names():
    """Every CHAOS_PORT_* variable of compose_env is substituted (needs only the compose tool)."""
    try:
        compose = find_compose()
    except Exception as e:
        pytest.skip(f"no compose tool ({e})")
    topo = build("docker", "resilient", BASE)
    env_vars = compose_env(topo)
    fake = {k: str(40000 + i) for i, k in enumerate(sorted(env_vars)) if k.startswith("CHAOS_PORT_")}
    env = {**dict(__import__("os").environ), **env_vars, **fake, "COMPOSE_PROFILES": "resilient"}
    compose_file = Path(images.fixtures_dir()) / "compose.yaml"
    out = subprocess.run([*compose, "-p", PROJECT, "-f", str(compose_file), "config"],
                         capture_output=True, text=True, timeout=60, env=env)
    assert out.returncode == 0, out.stderr
    for var, port in fake.items():
        assert port in out.stdout, f"{var} is not used in compose.yaml"
    services = subprocess.run([*compose, "-p", PROJECT, "-f", str(compose_file), "config",
                               "--services"], capture_output=True, text=True, timeout=60,
                              env=env).stdout.split()
    assert set(services) == set(topo.services)
